//! A bounded, least-recently-used map from SQL text to prepared statements,
//! one per physical connection.

use std::collections::HashMap;

/// Prepared statements by SQL text, at most `capacity` of them; the least
/// recently used one is evicted to make room. Generic so that its policy is
/// testable without a server.
#[derive(Debug)]
pub(crate) struct StatementCache<V> {
    capacity: usize,
    clock: u64,
    entries: HashMap<String, Entry<V>>,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    last_used: u64,
}

impl<V: Clone> StatementCache<V> {
    /// An empty cache holding at most `capacity` statements (0: disabled).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            clock: 0,
            entries: HashMap::new(),
        }
    }

    /// Whether the cache is in use at all.
    pub(crate) fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    /// The statement cached for `sql`, marking it recently used.
    pub(crate) fn get(&mut self, sql: &str) -> Option<V> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(sql).map(|entry| {
            entry.last_used = clock;
            entry.value.clone()
        })
    }

    /// Caches `value` for `sql`, evicting the least recently used entry if
    /// the cache is full. Evicted statements are dropped, which makes the
    /// driver close them on the server.
    pub(crate) fn insert(&mut self, sql: &str, value: V) {
        if self.capacity == 0 {
            return;
        }
        if !self.entries.contains_key(sql) && self.entries.len() >= self.capacity {
            // O(n) with n bounded by the capacity; evictions are rare once a
            // service's working set of statements is cached.
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.clock += 1;
        self.entries.insert(
            sql.to_owned(),
            Entry {
                value,
                last_used: self.clock,
            },
        );
    }

    /// Forgets `sql`, for a statement the server no longer accepts.
    pub(crate) fn remove(&mut self, sql: &str) {
        self.entries.remove(sql);
    }

    /// The number of cached statements.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut cache = StatementCache::new(2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        assert_eq!(cache.get("a"), Some(1));
        cache.insert("c", 3);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("b"), None, "b was the least recently used");
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.get("c"), Some(3));
    }

    #[test]
    fn reinserting_does_not_evict() {
        let mut cache = StatementCache::new(2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.insert("a", 10);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("a"), Some(10));
        assert_eq!(cache.get("b"), Some(2));
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let mut cache = StatementCache::new(0);
        assert!(!cache.is_enabled());
        cache.insert("a", 1);
        assert_eq!(cache.get("a"), None);
        cache.remove("a");
    }
}
