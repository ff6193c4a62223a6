//! The conformance suite against the async backend.

uno_db_testkit::nonblocking_conformance!(uno_db::AsyncEngineFactory::new());
