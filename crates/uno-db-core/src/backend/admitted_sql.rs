//! [`AdmittedSql`]: which statements a multiplexed client already let onto
//! its shared connections, so that it reads their SQL once.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::sync::{Mutex, PoisonError};

use super::multiplex::admit_multiplexed;
use super::statement_cache::SqlHasher;
use super::striped::Striped;
use crate::error::Result;

/// The verdicts of [`admit_multiplexed`] on single statements, remembered
/// per stripe of threads, at most `capacity` statements a stripe.
///
/// Reading a statement's SQL for what it may do to the session is a scan
/// of every byte, about 850 instructions for `SELECT 1`, 7 % of the client's
/// work per multiplexed statement; looking it up here is a hash of the text.
/// Only admitted statements are kept (a refusal is an error the caller
/// handles, and reading it again costs nothing that matters); batches are
/// read every time (`batch_execute` is not on a hot path). A full stripe is
/// emptied, as the server's own plan cache would not be, because the keys
/// are the application's SQL: a bounded set of texts in a working program.
#[derive(Debug)]
pub struct AdmittedSql {
    capacity: usize,
    stripes: Striped<Mutex<HashSet<Box<str>, BuildHasherDefault<SqlHasher>>>>,
    admit: fn(&str, bool) -> Result<()>,
}

impl AdmittedSql {
    /// Remembers up to `capacity` statements per stripe (0: none, every
    /// statement is read).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self::with_rule(capacity, admit_multiplexed)
    }

    fn with_rule(capacity: usize, admit: fn(&str, bool) -> Result<()>) -> Self {
        Self {
            capacity,
            stripes: Striped::default(),
            admit,
        }
    }

    /// [`admit_multiplexed`], read once for a statement admitted before.
    ///
    /// # Errors
    ///
    /// As [`admit_multiplexed`].
    pub fn admit(&self, sql: &str, batch: bool) -> Result<()> {
        if batch || self.capacity == 0 {
            return (self.admit)(sql, batch);
        }
        let (_, stripe) = self.stripes.local();
        if lock(stripe).contains(sql) {
            return Ok(());
        }
        (self.admit)(sql, false)?;
        let mut admitted = lock(stripe);
        if admitted.len() >= self.capacity {
            admitted.clear();
        }
        admitted.insert(sql.into());
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn an_admitted_statement_is_read_once_and_a_refused_one_every_time() {
        static READS: AtomicUsize = AtomicUsize::new(0);
        fn counted(sql: &str, batch: bool) -> Result<()> {
            READS.fetch_add(1, Ordering::Relaxed);
            admit_multiplexed(sql, batch)
        }
        let admitted = AdmittedSql::with_rule(4, counted);
        for _ in 0..3 {
            admitted.admit("SELECT 1", false).unwrap();
        }
        assert_eq!(READS.load(Ordering::Relaxed), 1);
        for _ in 0..2 {
            let error = admitted.admit("SET search_path = x", false).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Unsupported);
        }
        assert_eq!(READS.load(Ordering::Relaxed), 3);
        // Batches are read every time.
        admitted.admit("SELECT 1", true).unwrap();
        admitted.admit("SELECT 1", true).unwrap();
        assert_eq!(READS.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn a_stripe_keeps_at_most_its_capacity() {
        let admitted = AdmittedSql::new(3);
        for n in 0..10 {
            admitted.admit(&format!("SELECT {n}"), false).unwrap();
            let (_, stripe) = admitted.stripes.local();
            assert!(lock(stripe).len() <= 3);
        }
        let nothing = AdmittedSql::new(0);
        nothing.admit("SELECT 1", false).unwrap();
        assert!(nothing.stripes.iter().all(|stripe| lock(stripe).is_empty()));
        assert!(nothing.admit("BEGIN", false).is_err());
    }
}
