//! The test kit's conformance suite against this backend: the one place it
//! runs for it (not also from the workspace's `tests/it`).

uno_db_testkit::blocking_conformance!(uno_db_sync::SyncEngineFactory::new());
