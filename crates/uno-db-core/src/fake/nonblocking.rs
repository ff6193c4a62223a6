//! The fake as the async family: factory, engine, connection, session.
//! Nothing waits: every future is ready when first polled.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use postgres_types::ToSql;

use crate::callbacks::AsyncCallbacks;
use crate::config::ConnectionConfig;
use crate::error::Result;
use crate::nonblocking::{Client, Connection, Engine, EngineFactory, Listener, Session};
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

    fn callbacks(&self) -> &AsyncCallbacks {
        &self.shared.async_callbacks
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

#[async_trait]
impl Engine for FakeDatabase {
    async fn connect(&self) -> Result<Box<dyn Connection>> {
        let mut conn: Box<dyn Connection> = Box::new(FakeConnection::open(self)?);
        self.shared.async_callbacks.run(&mut *conn).await?;
        Ok(conn)
    }

    async fn session(&self, options: &TransactionOptions) -> Result<Box<dyn Session>> {
        self.connect().await?.begin(options).await
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

    async fn warm_up(&self) -> Result<()> {
        self.check_open()
    }

    async fn close(&self, _deadline: Duration) -> CloseReport {
        self.drain()
    }

    fn set_pool_size(&self, _pool_size: usize) -> Result<()> {
        self.check_open()
    }

    fn set_max_overflow(&self, _max_overflow: usize) -> Result<()> {
        self.check_open()
    }

    async fn listener(&self) -> Result<Box<dyn Listener>> {
        Err(super::no_listener())
    }
}

/// `Client` for the fake's connection and session, through the connection
/// `$client` gives.
macro_rules! fake_client {
    ($type:ty, |$this:ident| $client:expr) => {
        #[async_trait]
        impl Client for $type {
            async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
                let $this = self;
                $client.execute(sql, params)
            }

            async fn query(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Vec<Row>> {
                let $this = self;
                $client.query(sql, params)
            }

            async fn query_one(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Row> {
                let $this = self;
                $client.query_one(sql, params)
            }

            async fn query_opt(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Option<Row>> {
                let $this = self;
                $client.query_opt(sql, params)
            }

            async fn batch_execute(&mut self, sql: &str) -> Result<()> {
                let $this = self;
                $client.batch_execute(sql)
            }

            async fn prepare(&mut self, sql: &str) -> Result<Statement> {
                let $this = self;
                $client.prepare(sql)
            }
        }
    };
}

fake_client!(FakeConnection, |conn| conn);
fake_client!(FakeSession, |session| session.client());

#[async_trait]
impl Connection for FakeConnection {
    async fn begin(self: Box<Self>, options: &TransactionOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new((*self).begin(options)?))
    }

    fn is_closed(&self) -> bool {
        FakeConnection::is_closed(self)
    }
}

#[async_trait]
impl Session for FakeSession {
    async fn savepoint(&mut self, name: &str) -> Result<()> {
        FakeSession::savepoint(self, name)
    }

    async fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        FakeSession::rollback_to_savepoint(self, name)
    }

    async fn release_savepoint(&mut self, name: &str) -> Result<()> {
        FakeSession::release_savepoint(self, name)
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        FakeSession::commit(&mut self)
    }

    async fn rollback(mut self: Box<Self>) -> Result<()> {
        FakeSession::rollback(&mut self)
    }
}
