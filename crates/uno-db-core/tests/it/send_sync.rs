//! Compile-time checks that the public types can cross threads and tasks.

use uno_db_core::*;

const fn send_sync<T: Send + Sync>() {}

const _: () = {
    send_sync::<ConnectionConfig>();
    send_sync::<Error>();
    send_sync::<RetryPolicy>();
    send_sync::<Backoff>();
    send_sync::<Row>();
    send_sync::<Statement>();
    send_sync::<PoolStatus>();
    send_sync::<PoolCounters>();
    send_sync::<backend::PoolMetrics>();
    send_sync::<backend::EngineCore>();
    send_sync::<backend::EngineRegistry<()>>();
    send_sync::<BlockingCallbacks>();
    send_sync::<AsyncCallbacks>();
    send_sync::<TransactionOptions>();
    send_sync::<PgBouncerMode>();
    send_sync::<TargetSessionAttrs>();
    send_sync::<LoadBalanceHosts>();
    send_sync::<Endpoint>();
    send_sync::<backend::DescribePlan>();
    send_sync::<backend::RoleCheck>();
    send_sync::<blocking::MockEngineFactory>();
    send_sync::<fake::FakeDatabase>();
    send_sync::<blocking::MockEngine>();
    send_sync::<nonblocking::MockEngineFactory>();
    send_sync::<nonblocking::MockEngine>();
    send_sync::<blocking::MockClient>();
    send_sync::<nonblocking::MockClient>();
};

const fn send<T: Send>() {}

const _: () = {
    send::<Box<dyn blocking::Connection>>();
    send::<Box<dyn blocking::Session>>();
    send::<Box<dyn nonblocking::Connection>>();
    send::<Box<dyn nonblocking::Session>>();
    send::<Box<dyn blocking::Client>>();
    send::<Box<dyn nonblocking::Client>>();
    send::<blocking::MockConnection>();
    send::<blocking::MockSession>();
    send::<nonblocking::MockConnection>();
    send::<nonblocking::MockSession>();
    send::<blocking::RowIter<'static>>();
    send::<blocking::CopyInWriter<'static>>();
    send::<blocking::CopyOutReader<'static>>();
    send::<nonblocking::RowStream<'static>>();
    send::<nonblocking::CopyInSink<'static>>();
    send::<nonblocking::CopyOutStream<'static>>();
};

// `Client` is object-safe, a boxed connection or session is a client as it
// is, and both coerce to `&mut dyn Client` (trait upcasting).
fn _blocking_clients(
    mut conn: Box<dyn blocking::Connection>,
    mut session: Box<dyn blocking::Session>,
) {
    fn takes(_: &mut impl blocking::Client) {}
    let _: &mut dyn blocking::Client = &mut *conn;
    let _: &mut dyn blocking::Client = &mut *session;
    takes(&mut conn);
    takes(&mut session);
    let _: Box<dyn blocking::Client> = conn;
}

fn _nonblocking_clients(
    mut conn: Box<dyn nonblocking::Connection>,
    mut session: Box<dyn nonblocking::Session>,
) {
    fn takes(_: &mut impl nonblocking::Client) {}
    let _: &mut dyn nonblocking::Client = &mut *conn;
    let _: &mut dyn nonblocking::Client = &mut *session;
    takes(&mut conn);
    takes(&mut session);
    let _: Box<dyn nonblocking::Client> = conn;
}

// The listener's types: events cross threads; listeners move to a task or
// thread of their own.
const _: () = {
    send_sync::<ListenerEvent>();
    send_sync::<Notification>();
    send_sync::<backend::ListenerState>();
    send::<Box<dyn blocking::Listener>>();
    send::<Box<dyn nonblocking::Listener>>();
    send::<blocking::MockListener>();
    send::<nonblocking::MockListener>();
};
