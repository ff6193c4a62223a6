//! The conformance suite against the blocking backend.

uno_db_testkit::blocking_conformance!(uno_db::SyncEngineFactory::new());
