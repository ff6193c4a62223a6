//! The fake as the blocking family: factory, engine, connection, session.

use std::sync::Arc;
use std::time::Duration;

use postgres_types::ToSql;

use crate::blocking::{Client, Connection, Engine, EngineFactory, Listener, Session};
use crate::callbacks::BlockingCallbacks;
use crate::config::ConnectionConfig;
use crate::error::Result;
use crate::row::Row;
use crate::statement::Statement;
use crate::status::{CloseReport, PoolCounters, PoolStatus};
use crate::transaction_options::TransactionOptions;

use super::FakeDatabase;
use super::connection::{FakeConnection, FakeSession};

impl EngineFactory for FakeDatabase {
    fn engine(&self, config: &ConnectionConfig) -> Result<Arc<dyn Engine>> {
        Ok(Arc::new(self.with_config(config)))
    }

    fn callbacks(&self) -> &BlockingCallbacks {
        &self.shared.blocking_callbacks
    }

    /// Disposes the fake (every engine shares it); whether it was not
    /// disposed yet.
    fn dispose(&self, _config: &ConnectionConfig) -> bool {
        self.set_disposed()
    }

    fn dispose_all(&self) {
        self.set_disposed();
    }
}

impl Engine for FakeDatabase {
    fn connect(&self) -> Result<Box<dyn Connection>> {
        let mut conn: Box<dyn Connection> = Box::new(FakeConnection::open(self)?);
        self.shared.blocking_callbacks.run(&mut *conn)?;
        Ok(conn)
    }

    fn session(&self, options: &TransactionOptions) -> Result<Box<dyn Session>> {
        self.connect()?.begin(options)
    }

    fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    fn status(&self) -> PoolStatus {
        self.pool_status()
    }

    fn counters(&self) -> PoolCounters {
        self.pool_counters()
    }

    fn dispose(&self) {
        self.set_disposed();
    }

    fn is_disposed(&self) -> bool {
        self.disposed()
    }

    fn warm_up(&self) -> Result<()> {
        self.check_open()
    }

    fn close(&self, _deadline: Duration) -> CloseReport {
        self.drain()
    }

    fn set_pool_size(&self, _pool_size: usize) -> Result<()> {
        self.check_open()
    }

    fn set_max_overflow(&self, _max_overflow: usize) -> Result<()> {
        self.check_open()
    }

    fn listener(&self) -> Result<Box<dyn Listener>> {
        Err(super::no_listener())
    }
}

/// `Client` for the fake's connection and session, through the connection
/// `$client` gives.
macro_rules! fake_client {
    ($type:ty, |$this:ident| $client:expr) => {
        impl Client for $type {
            fn execute<'a>(
                &mut self,
                sql: &str,
                params: &'a [&'a (dyn ToSql + Sync)],
            ) -> Result<u64> {
                let $this = self;
                $client.execute(sql, params)
            }

            fn query<'a>(
                &mut self,
                sql: &str,
                params: &'a [&'a (dyn ToSql + Sync)],
            ) -> Result<Vec<Row>> {
                let $this = self;
                $client.query(sql, params)
            }

            fn query_one<'a>(
                &mut self,
                sql: &str,
                params: &'a [&'a (dyn ToSql + Sync)],
            ) -> Result<Row> {
                let $this = self;
                $client.query_one(sql, params)
            }

            fn query_opt<'a>(
                &mut self,
                sql: &str,
                params: &'a [&'a (dyn ToSql + Sync)],
            ) -> Result<Option<Row>> {
                let $this = self;
                $client.query_opt(sql, params)
            }

            fn batch_execute(&mut self, sql: &str) -> Result<()> {
                let $this = self;
                $client.batch_execute(sql)
            }

            fn prepare(&mut self, sql: &str) -> Result<Statement> {
                let $this = self;
                $client.prepare(sql)
            }
        }
    };
}

fake_client!(FakeConnection, |conn| conn);
fake_client!(FakeSession, |session| session.client());

impl Connection for FakeConnection {
    fn begin(self: Box<Self>, options: &TransactionOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new((*self).begin(options)?))
    }

    fn is_closed(&self) -> bool {
        FakeConnection::is_closed(self)
    }
}

impl Session for FakeSession {
    fn savepoint(&mut self, name: &str) -> Result<()> {
        FakeSession::savepoint(self, name)
    }

    fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        FakeSession::rollback_to_savepoint(self, name)
    }

    fn release_savepoint(&mut self, name: &str) -> Result<()> {
        FakeSession::release_savepoint(self, name)
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        FakeSession::commit(&mut self)
    }

    fn rollback(mut self: Box<Self>) -> Result<()> {
        FakeSession::rollback(&mut self)
    }
}
