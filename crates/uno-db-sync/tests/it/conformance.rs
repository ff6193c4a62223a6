//! The test kit's conformance suite, which both backends must pass.

uno_db_testkit::blocking_conformance!(uno_db_sync::SyncEngineFactory::new());
