//! Connection callbacks: named, ordered hooks that run on every new
//! physical connection before it is first handed out.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use crate::error::{BoxError, Error, Result};
use crate::{blocking, nonblocking};

/// A boxed, `Send` future, as async callbacks return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A blocking connection callback.
pub type BlockingCallback =
    dyn Fn(&mut dyn blocking::Connection) -> std::result::Result<(), BoxError> + Send + Sync;

/// An async connection callback.
pub type AsyncCallback = dyn for<'c> Fn(
        &'c mut dyn nonblocking::Connection,
    ) -> BoxFuture<'c, std::result::Result<(), BoxError>>
    + Send
    + Sync;

/// The callbacks of the blocking backend.
pub type BlockingCallbacks = CallbackRegistry<BlockingCallback>;

/// The callbacks of the async backend.
pub type AsyncCallbacks = CallbackRegistry<AsyncCallback>;

/// A named, ordered registry of connection callbacks.
///
/// Cloning shares the registry: a factory hands clones to its engines, so a
/// callback registered on the factory applies to connections opened by all
/// of them from then on. Callbacks run in registration order; registering
/// an existing name replaces that callback in place. The default registry
/// is empty and does nothing.
///
/// A callback that fails makes its connection be discarded: the caller gets
/// an [`ErrorKind::Callback`](crate::ErrorKind::Callback) error naming the
/// callback, and no half-initialised connection ever enters the pool.
pub struct CallbackRegistry<F: ?Sized> {
    entries: Arc<RwLock<Arc<[Entry<F>]>>>,
}

struct Entry<F: ?Sized> {
    name: Arc<str>,
    callback: Arc<F>,
}

impl<F: ?Sized> Clone for Entry<F> {
    fn clone(&self) -> Self {
        Self {
            name: Arc::clone(&self.name),
            callback: Arc::clone(&self.callback),
        }
    }
}

impl<F: ?Sized> Clone for CallbackRegistry<F> {
    fn clone(&self) -> Self {
        Self {
            entries: Arc::clone(&self.entries),
        }
    }
}

impl<F: ?Sized> Default for CallbackRegistry<F> {
    fn default() -> Self {
        Self {
            entries: Arc::new(RwLock::new(Arc::from(Vec::new()))),
        }
    }
}

impl<F: ?Sized> fmt::Debug for CallbackRegistry<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackRegistry")
            .field("names", &self.names())
            .finish()
    }
}

impl<F: ?Sized> CallbackRegistry<F> {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `callback` as `name`, after the existing ones, or in place
    /// of the one already called `name`. Returns whether one was replaced.
    pub fn register_arc(&self, name: &str, callback: Arc<F>) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<Entry<F>> = entries.iter().cloned().collect();
        let replaced = match list.iter_mut().find(|e| &*e.name == name) {
            Some(entry) => {
                entry.callback = callback;
                true
            }
            None => {
                list.push(Entry {
                    name: Arc::from(name),
                    callback,
                });
                false
            }
        };
        *entries = Arc::from(list);
        replaced
    }

    /// Removes the callback called `name`. Returns whether there was one.
    pub fn unregister(&self, name: &str) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let before = entries.len();
        let list: Vec<Entry<F>> = entries
            .iter()
            .filter(|e| &*e.name != name)
            .cloned()
            .collect();
        let removed = list.len() != before;
        *entries = Arc::from(list);
        removed
    }

    /// The registered names, in the order the callbacks run.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.snapshot().iter().map(|e| e.name.to_string()).collect()
    }

    /// Whether no callback is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.snapshot().is_empty()
    }

    // Runs take a snapshot so that (un)registering during a run neither
    // blocks nor changes the run in progress.
    fn snapshot(&self) -> Arc<[Entry<F>]> {
        Arc::clone(&self.entries.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl BlockingCallbacks {
    /// Registers a blocking callback as `name` (see
    /// [`register_arc`](Self::register_arc)).
    ///
    /// ```
    /// use uno_db_core::BlockingCallbacks;
    ///
    /// let callbacks = BlockingCallbacks::new();
    /// callbacks.register("utc", |conn| {
    ///     conn.batch_execute("SET TIME ZONE 'UTC'")?;
    ///     Ok(())
    /// });
    /// assert_eq!(callbacks.names(), ["utc"]);
    /// ```
    pub fn register<F>(&self, name: &str, callback: F) -> bool
    where
        F: Fn(&mut dyn blocking::Connection) -> std::result::Result<(), BoxError>
            + Send
            + Sync
            + 'static,
    {
        self.register_arc(name, Arc::new(callback))
    }

    /// Runs every callback, in order, on a new connection; stops at the
    /// first failure.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Callback`](crate::ErrorKind::Callback) naming the
    /// callback that failed, with its error as the source.
    pub fn run(&self, connection: &mut dyn blocking::Connection) -> Result<()> {
        for entry in self.snapshot().iter() {
            (entry.callback)(connection).map_err(|e| Error::callback(&entry.name, e))?;
        }
        Ok(())
    }
}

impl AsyncCallbacks {
    /// Registers an async callback as `name` (see
    /// [`register_arc`](Self::register_arc)).
    ///
    /// ```
    /// use uno_db_core::AsyncCallbacks;
    ///
    /// let callbacks = AsyncCallbacks::new();
    /// callbacks.register("utc", |conn| {
    ///     Box::pin(async move {
    ///         conn.batch_execute("SET TIME ZONE 'UTC'").await?;
    ///         Ok(())
    ///     })
    /// });
    /// assert_eq!(callbacks.names(), ["utc"]);
    /// ```
    pub fn register<F>(&self, name: &str, callback: F) -> bool
    where
        F: for<'c> Fn(
                &'c mut dyn nonblocking::Connection,
            ) -> BoxFuture<'c, std::result::Result<(), BoxError>>
            + Send
            + Sync
            + 'static,
    {
        self.register_arc(name, Arc::new(callback))
    }

    /// Runs every callback, in order, on a new connection; stops at the
    /// first failure.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Callback`](crate::ErrorKind::Callback) naming the
    /// callback that failed, with its error as the source.
    pub async fn run(&self, connection: &mut dyn nonblocking::Connection) -> Result<()> {
        let entries = self.snapshot();
        for entry in entries.iter() {
            (entry.callback)(connection)
                .await
                .map_err(|e| Error::callback(&entry.name, e))?;
        }
        Ok(())
    }
}
