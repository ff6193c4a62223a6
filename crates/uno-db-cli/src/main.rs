//! The `uno-db` command.
fn main() {}
