//! Compile-time checks that the test kit's handles can be shared between
//! threads (a test's body and its helpers).

use uno_db_testkit::{FaultProxy, TestCluster, TestDb, TestPgBouncer, TestReplicaSet};

const fn send_sync<T: Send + Sync>() {}

const _: () = {
    send_sync::<TestCluster>();
    send_sync::<TestDb>();
    send_sync::<FaultProxy>();
    send_sync::<TestReplicaSet>();
    send_sync::<TestPgBouncer>();
    send_sync::<uno_db_testkit::conformance::FailoverFigures>();
};
