//! The server processes behind an engine's open connections: each
//! connection learns its process id when it opens and the engine forgets
//! it when the connection is dropped. A drain that reaches its deadline
//! ends the server side of the connections still checked out with them
//! (their users' threads or tasks hold the sockets, so the pool cannot
//! close those itself).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// What a new connection runs to learn its server process id.
pub const BACKEND_PID_QUERY: &str = "SELECT pg_backend_pid()";

/// How often the forced close looks whether the processes it ended are
/// gone.
const GONE_POLL: Duration = Duration::from_millis(10);

/// The process ids of one engine's open connections, by connection id.
#[derive(Debug, Default)]
pub(super) struct LiveBackends {
    pids: Mutex<HashMap<u64, i32>>,
}

impl LiveBackends {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, i32>> {
        self.pids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers connection `id`'s process until the returned guard is
    /// dropped.
    pub(super) fn register(
        self: &Arc<Self>,
        id: u64,
        row: &[Option<String>],
    ) -> Result<BackendPid> {
        let pid = row
            .first()
            .and_then(Option::as_deref)
            .and_then(|text| text.parse::<i32>().ok())
            .ok_or_else(|| {
                Error::with_message(
                    ErrorKind::Decode,
                    format!("`{BACKEND_PID_QUERY}` gave no process id: {row:?}"),
                )
            })?;
        self.lock().insert(id, pid);
        Ok(BackendPid {
            registry: Arc::clone(self),
            id,
        })
    }

    /// The statement that ends every process still registered and waits,
    /// at most `wait`, until the server no longer lists them; `None` when
    /// there is none.
    ///
    /// A `DO` block, so that it is one round trip on any server version
    /// (`pg_terminate_backend`'s own wait needs PostgreSQL 14) and runs
    /// with the simple protocol; the ids are integers, written in.
    pub(super) fn terminate_sql(&self, wait: Duration) -> Option<String> {
        let mut pids: Vec<i32> = self.lock().values().copied().collect();
        if pids.is_empty() {
            return None;
        }
        pids.sort_unstable();
        let mut array = String::from("'{");
        for (i, pid) in pids.iter().enumerate() {
            if i > 0 {
                array.push(',');
            }
            let _ = write!(array, "{pid}");
        }
        array.push_str("}'::int4[]");
        let looks = (wait.as_millis() / GONE_POLL.as_millis()).max(1);
        Some(format!(
            "DO $uno_db$ BEGIN \
             PERFORM pg_terminate_backend(pid) FROM unnest({array}) AS pid; \
             FOR look IN 1..{looks} LOOP \
             PERFORM pg_stat_clear_snapshot(); \
             EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = ANY({array})); \
             PERFORM pg_sleep({poll}); \
             END LOOP; \
             END $uno_db$",
            poll = GONE_POLL.as_secs_f64(),
        ))
    }
}

/// One open connection's server process, known to its engine until this
/// is dropped (with the connection).
#[derive(Debug)]
pub struct BackendPid {
    registry: Arc<LiveBackends>,
    id: u64,
}

impl Drop for BackendPid {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_known_while_their_connections_live() {
        let live = Arc::new(LiveBackends::default());
        assert_eq!(live.terminate_sql(Duration::from_secs(1)), None);
        let first = live.register(1, &[Some("4242".to_owned())]).unwrap();
        let second = live.register(2, &[Some("17".to_owned())]).unwrap();
        let sql = live.terminate_sql(Duration::from_secs(1)).unwrap();
        assert!(sql.contains("unnest('{17,4242}'::int4[])"), "{sql}");
        assert!(sql.contains("FOR look IN 1..100 LOOP"), "{sql}");
        drop(second);
        let sql = live.terminate_sql(Duration::from_secs(1)).unwrap();
        assert!(sql.contains("unnest('{4242}'::int4[])"), "{sql}");
        drop(first);
        assert_eq!(live.terminate_sql(Duration::from_secs(1)), None);
    }

    #[test]
    fn a_row_without_a_process_id_is_a_decode_error() {
        let live = Arc::new(LiveBackends::default());
        for row in [vec![], vec![None], vec![Some("x".to_owned())]] {
            let error = live.register(1, &row).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Decode, "{error}");
        }
        assert_eq!(live.terminate_sql(Duration::from_secs(1)), None);
    }
}
