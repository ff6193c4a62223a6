//! `uno-db demo`.
use crate::cli::DemoArgs;
use crate::failure::Failure;
pub(crate) fn run(_runtime: &tokio::runtime::Runtime, _args: &DemoArgs) -> Result<u8, Failure> { Ok(0) }
