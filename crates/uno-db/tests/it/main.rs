//! The facade's own tests: that the README's run command works on a
//! machine with PostgreSQL's binaries but no server and no `DATABASE_URL`.
//! (The cross-backend tests are in the workspace's `tests/it`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod quickstart;
