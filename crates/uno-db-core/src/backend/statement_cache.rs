//! The prepared-statement cache both backends keep per physical connection
//! (the `postgres` crate has none, and both backends need the same bound
//! and eviction).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Statements keyed by SQL text, evicting the least recently used beyond
/// `capacity`. Capacity 0 disables caching.
///
/// Recency is a counter per entry; eviction scans the entries, which is
/// cheap at the sizes a statement cache has (tens to a few hundred) next to
/// the network round trip it saves.
#[derive(Debug)]
pub struct StatementCache<S> {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, (S, u64), BuildHasherDefault<SqlHasher>>,
}

/// Hashes the SQL text of every statement sent, eight bytes a step (the
/// multiply-rotate of rustc's `FxHasher`): the default `SipHash` was a
/// tenth of our own instructions per cached statement. Flooding resistance
/// buys nothing here: the keys are the application's SQL, in a map
/// bounded by `capacity`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SqlHasher(u64);

impl SqlHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for SqlHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        }
        let mut rest = [0_u8; 8];
        let tail = words.remainder();
        rest[..tail.len()].copy_from_slice(tail);
        self.add(u64::from_le_bytes(rest));
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl<S: Clone> StatementCache<S> {
    /// An empty cache holding at most `capacity` statements.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tick: 0,
            entries: HashMap::default(),
        }
    }

    /// Whether the cache is switched on.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    /// The statement for `sql`, marking it recently used.
    pub fn get(&mut self, sql: &str) -> Option<S> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(sql).map(|(statement, used)| {
            *used = tick;
            statement.clone()
        })
    }

    /// The statement for `sql`, to update in place; not a use (its age in
    /// the cache stays).
    pub fn peek_mut(&mut self, sql: &str) -> Option<&mut S> {
        self.entries.get_mut(sql).map(|(statement, _)| statement)
    }

    /// Stores `statement` for `sql`, returning the statement evicted to make
    /// room, if any. Does nothing when disabled.
    pub fn insert(&mut self, sql: &str, statement: S) -> Option<S> {
        if !self.is_enabled() {
            return None;
        }
        self.tick += 1;
        let mut evicted = None;
        if !self.entries.contains_key(sql) && self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone());
            if let Some(key) = oldest {
                evicted = self.entries.remove(&key).map(|(statement, _)| statement);
            }
        }
        self.entries.insert(sql.to_owned(), (statement, self.tick));
        evicted
    }

    /// Forgets the statement for `sql` (for example after the server said
    /// its cached plan is stale).
    pub fn remove(&mut self, sql: &str) -> Option<S> {
        self.entries.remove(sql).map(|(statement, _)| statement)
    }

    /// Forgets every statement (the server dropped them all, for example
    /// after `DISCARD ALL`).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The number of cached statements.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no statement is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut cache = StatementCache::new(2);
        assert_eq!(cache.insert("a", 1), None);
        assert_eq!(cache.insert("b", 2), None);
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.insert("c", 3), Some(2), "b was used least recently");
        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.get("c"), Some(3));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn replacing_a_key_evicts_nothing() {
        let mut cache = StatementCache::new(1);
        cache.insert("a", 1);
        assert_eq!(cache.insert("a", 2), None);
        assert_eq!(cache.get("a"), Some(2));
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let mut cache = StatementCache::new(0);
        assert!(!cache.is_enabled());
        assert_eq!(cache.insert("a", 1), None);
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn remove_forgets() {
        let mut cache = StatementCache::new(4);
        cache.insert("a", 1);
        cache.remove("a");
        assert_eq!(cache.get("a"), None);
    }
}
