//! One engine per distinct configuration: the bookkeeping both backends'
//! factories share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::ConnectionConfig;
use crate::error::{Error, ErrorKind, Result};

/// The engines a factory made, keyed by their configuration (compared by the
/// full URL, password included), and whether the factory was disposed.
///
/// An engine disposed on its own is replaced by a fresh one on the next
/// request; after [`dispose_all`](Self::dispose_all) nothing more is made.
#[derive(Debug)]
pub struct EngineRegistry<E> {
    engines: Mutex<HashMap<String, Arc<E>>>,
    disposed: AtomicBool,
}

impl<E> Default for EngineRegistry<E> {
    fn default() -> Self {
        Self {
            engines: Mutex::new(HashMap::new()),
            disposed: AtomicBool::new(false),
        }
    }
}

impl<E> EngineRegistry<E> {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The live engine for `config`, or a new one from `create`.
    /// `is_disposed` tells whether a kept engine was disposed since.
    ///
    /// # Errors
    ///
    /// The registry was disposed ([`ErrorKind::PoolClosed`]), or `create`
    /// failed.
    pub fn get_or_create(
        &self,
        config: &ConnectionConfig,
        is_disposed: impl Fn(&E) -> bool,
        create: impl FnOnce() -> Result<E>,
    ) -> Result<Arc<E>> {
        if self.is_disposed() {
            return Err(Error::with_message(
                ErrorKind::PoolClosed,
                "the engine factory is disposed; it creates no more engines",
            ));
        }
        let key = config.to_url_with_password();
        // Held while creating, so that racing callers get one engine.
        let mut engines = self.engines.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(engine) = engines.get(&key).filter(|engine| !is_disposed(engine)) {
            return Ok(Arc::clone(engine));
        }
        let engine = Arc::new(create()?);
        engines.insert(key, Arc::clone(&engine));
        Ok(engine)
    }

    /// Marks the registry disposed and disposes every engine in it with
    /// `dispose`.
    pub fn dispose_all(&self, dispose: impl Fn(&E)) {
        self.disposed.store(true, Ordering::Release);
        let engines: Vec<Arc<E>> = self
            .engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, engine)| engine)
            .collect();
        for engine in engines {
            dispose(&engine);
        }
    }

    /// Whether [`dispose_all`](Self::dispose_all) was called.
    #[must_use]
    pub fn is_disposed(&self) -> bool {
        self.disposed.load(Ordering::Acquire)
    }

    /// The number of engines kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no engine is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    #[derive(Default)]
    struct FakeEngine {
        disposed: AtomicBool,
    }

    fn fake() -> Result<FakeEngine> {
        Ok(FakeEngine::default())
    }

    fn disposed(engine: &FakeEngine) -> bool {
        engine.disposed.load(Ordering::Acquire)
    }

    #[test]
    fn one_engine_per_config_and_fresh_after_its_dispose() {
        let registry = EngineRegistry::new();
        let a: ConnectionConfig = "postgresql://app@db/a".parse().unwrap();
        let b = a.to_builder().pool_size(3).build().unwrap();
        let first = registry.get_or_create(&a, disposed, fake).unwrap();
        assert!(Arc::ptr_eq(
            &first,
            &registry
                .get_or_create(&"postgresql://app@db/a".parse().unwrap(), disposed, fake)
                .unwrap()
        ));
        assert!(!Arc::ptr_eq(
            &first,
            &registry.get_or_create(&b, disposed, fake).unwrap()
        ));
        assert_eq!(registry.len(), 2);
        first.disposed.store(true, Ordering::Release);
        assert!(!Arc::ptr_eq(
            &first,
            &registry.get_or_create(&a, disposed, fake).unwrap()
        ));
    }

    #[test]
    fn a_failed_creation_keeps_nothing() {
        let registry: EngineRegistry<FakeEngine> = EngineRegistry::new();
        let config = ConnectionConfig::default();
        let error = registry
            .get_or_create(&config, disposed, || Err(Error::new(ErrorKind::Tls)))
            .err()
            .unwrap();
        assert_eq!(error.kind(), ErrorKind::Tls);
        assert!(registry.is_empty());
    }

    #[test]
    fn dispose_all_disposes_and_refuses_more() {
        let registry = EngineRegistry::new();
        let config = ConnectionConfig::default();
        let engine = registry.get_or_create(&config, disposed, fake).unwrap();
        registry.dispose_all(|e| e.disposed.store(true, Ordering::Release));
        assert!(disposed(&engine));
        assert!(registry.is_disposed() && registry.is_empty());
        let error = registry
            .get_or_create(&config, disposed, fake)
            .err()
            .unwrap();
        assert_eq!(error.kind(), ErrorKind::PoolClosed);
    }
}
