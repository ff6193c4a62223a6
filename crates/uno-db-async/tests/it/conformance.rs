//! The shared conformance suite of the test kit, run against this backend.

uno_db_testkit::nonblocking_conformance!(uno_db_async::AsyncEngineFactory::new());
