//! The statement methods of [`AsyncConnection`](crate::AsyncConnection)
//! and [`AsyncSession`](crate::AsyncSession): inherent `async fn`s, and the
//! [`Client`](uno_db_core::nonblocking::Client) impl that delegates to
//! them.
//!
//! Both, as tokio-postgres has its `Client` beside the boxed
//! `GenericClient`: the trait's futures are boxed (`async_trait`, so that
//! `dyn Client` works), and a statement's future is about 1.4 KB (1.1 KB of
//! it tokio-postgres's own), past what the allocator serves from its
//! per-thread cache: each boxed statement paid about 0.7 k instructions in
//! `malloc` and `free`. Called on the concrete type, the inherent method
//! wins method resolution and its future lives inside the caller's, with
//! nothing allocated.

/// Writes the inherent statement methods of `$ty` (which has
/// `fn pg(&mut self) -> Result<&mut PgConn>`) and its `Client` impl.
macro_rules! client_methods {
    ($ty:ident) => {
        impl $ty {
            /// Runs a statement and returns the number of rows it affected;
            /// [`Client::execute`](uno_db_core::nonblocking::Client::execute)
            /// without boxing its future.
            ///
            /// # Errors
            ///
            /// As [`Client::execute`](uno_db_core::nonblocking::Client::execute).
            pub async fn execute(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<u64> {
                self.pg()?.execute(sql, params).await
            }

            /// Runs a query and returns all its rows;
            /// [`Client::query`](uno_db_core::nonblocking::Client::query)
            /// without boxing its future.
            ///
            /// # Errors
            ///
            /// As [`Client::query`](uno_db_core::nonblocking::Client::query).
            pub async fn query(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Vec<Row>> {
                self.pg()?.query(sql, params).await
            }

            /// Runs a query that returns exactly one row;
            /// [`Client::query_one`](uno_db_core::nonblocking::Client::query_one)
            /// without boxing its future.
            ///
            /// # Errors
            ///
            /// As [`Client::query_one`](uno_db_core::nonblocking::Client::query_one).
            pub async fn query_one(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Row> {
                self.pg()?
                    .query_with(sql, params, uno_db_core::backend::OneRow)
                    .await
            }

            /// Runs a query that returns at most one row;
            /// [`Client::query_opt`](uno_db_core::nonblocking::Client::query_opt)
            /// without boxing its future.
            ///
            /// # Errors
            ///
            /// As [`Client::query_opt`](uno_db_core::nonblocking::Client::query_opt).
            pub async fn query_opt(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Option<Row>> {
                self.pg()?
                    .query_with(sql, params, uno_db_core::backend::OptionalRow)
                    .await
            }

            /// Runs `;`-separated statements in one round trip;
            /// [`Client::batch_execute`](uno_db_core::nonblocking::Client::batch_execute)
            /// without boxing its future.
            ///
            /// # Errors
            ///
            /// As [`Client::batch_execute`](uno_db_core::nonblocking::Client::batch_execute).
            pub async fn batch_execute(&mut self, sql: &str) -> Result<()> {
                self.pg()?.batch_execute(sql).await
            }

            /// Prepares and describes `sql`;
            /// [`Client::prepare`](uno_db_core::nonblocking::Client::prepare)
            /// without boxing its future.
            ///
            /// # Errors
            ///
            /// As [`Client::prepare`](uno_db_core::nonblocking::Client::prepare).
            pub async fn prepare(&mut self, sql: &str) -> Result<Statement> {
                self.pg()?.prepare(sql).await
            }

            /// Runs a query and returns its rows as the server sends them;
            /// [`Client::query_stream`](uno_db_core::nonblocking::Client::query_stream)
            /// without boxing its future.
            ///
            /// # Errors
            ///
            /// As [`Client::query_stream`](uno_db_core::nonblocking::Client::query_stream).
            pub async fn query_stream<'a>(
                &'a mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<RowStream<'a>> {
                self.pg()?.query_stream(sql, params).await
            }

            /// Starts `COPY ... FROM STDIN`;
            /// [`Client::copy_in`](uno_db_core::nonblocking::Client::copy_in)
            /// without boxing its future.
            ///
            /// # Errors
            ///
            /// As [`Client::copy_in`](uno_db_core::nonblocking::Client::copy_in).
            pub async fn copy_in<'a>(&'a mut self, sql: &str) -> Result<CopyInSink<'a>> {
                self.pg()?.copy_in(sql).await
            }

            /// Starts `COPY ... TO STDOUT`;
            /// [`Client::copy_out`](uno_db_core::nonblocking::Client::copy_out)
            /// without boxing its future.
            ///
            /// # Errors
            ///
            /// As [`Client::copy_out`](uno_db_core::nonblocking::Client::copy_out).
            pub async fn copy_out<'a>(&'a mut self, sql: &str) -> Result<CopyOutStream<'a>> {
                self.pg()?.copy_out(sql).await
            }
        }

        #[async_trait::async_trait]
        impl uno_db_core::nonblocking::Client for $ty {
            async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
                $ty::execute(self, sql, params).await
            }

            async fn query(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Vec<Row>> {
                $ty::query(self, sql, params).await
            }

            async fn query_one(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Row> {
                $ty::query_one(self, sql, params).await
            }

            async fn query_opt(
                &mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Option<Row>> {
                $ty::query_opt(self, sql, params).await
            }

            async fn batch_execute(&mut self, sql: &str) -> Result<()> {
                $ty::batch_execute(self, sql).await
            }

            async fn prepare(&mut self, sql: &str) -> Result<Statement> {
                $ty::prepare(self, sql).await
            }

            async fn query_stream<'a>(
                &'a mut self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<RowStream<'a>> {
                $ty::query_stream(self, sql, params).await
            }

            async fn copy_in<'a>(&'a mut self, sql: &str) -> Result<CopyInSink<'a>> {
                $ty::copy_in(self, sql).await
            }

            async fn copy_out<'a>(&'a mut self, sql: &str) -> Result<CopyOutStream<'a>> {
                $ty::copy_out(self, sql).await
            }
        }
    };
}

pub(crate) use client_methods;
