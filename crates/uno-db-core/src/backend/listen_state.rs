//! [`ListenerState`]: what a listener is subscribed to and whether it owes
//! its consumer a [`ListenerEvent::Reconnected`]. The decisions both
//! backends' listeners share; they only do the I/O.

use crate::backend::connection_lost;
use crate::error::{Error, Result};
use crate::identifier::quote_identifier;
use crate::listener_event::ListenerEvent;

/// The state of one listener, across the connections it goes through.
///
/// A backend's listener asks it, in order:
///
/// 1. on `listen`/`unlisten`: the SQL ([`listen_sql`](Self::listen_sql),
///    [`unlisten_sql`](Self::unlisten_sql), which reject an invalid name
///    before anything is sent), calls [`unlistened`](Self::unlistened)
///    before an `UNLISTEN`, and hands the outcome to
///    [`listen_finished`](Self::listen_finished) or
///    [`unlisten_finished`](Self::unlisten_finished);
/// 2. after any error of its connection: [`is_lost`](Self::is_lost)
///    decides whether the connection is gone ([`lost`](Self::lost));
/// 3. on `next`, first [`pending_event`](Self::pending_event), then, when
///    [`needs_connection`](Self::needs_connection), opens a new connection
///    through the engine's connect path, runs
///    [`restore_sql`](Self::restore_sql) on it and calls
///    [`reconnected`](Self::reconnected), which makes the next
///    `pending_event` the [`ListenerEvent::Reconnected`] the consumer must
///    see before any notification of the new connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerState {
    /// Subscribed channels, in the order they were first listened to.
    channels: Vec<String>,
    /// The connection is gone; the next `next` opens another.
    lost: bool,
    /// A new connection restored the subscriptions and the consumer has
    /// not been told yet.
    owes_reconnected: bool,
}

impl ListenerState {
    /// A listener with no channels, on a live connection.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `LISTEN "channel"`, the name quoted as an identifier so that any
    /// text is taken as a channel name and never as SQL.
    ///
    /// # Errors
    ///
    /// The name is empty, longer than 63 bytes or contains NUL
    /// ([`Config`](crate::ErrorKind::Config)).
    pub fn listen_sql(channel: &str) -> Result<String> {
        Ok(format!("LISTEN {}", quote_identifier(channel)?))
    }

    /// `UNLISTEN "channel"`, quoted as [`listen_sql`](Self::listen_sql).
    ///
    /// # Errors
    ///
    /// As [`listen_sql`](Self::listen_sql).
    pub fn unlisten_sql(channel: &str) -> Result<String> {
        Ok(format!("UNLISTEN {}", quote_identifier(channel)?))
    }

    /// The `LISTEN` statements that restore every subscription on a new
    /// connection, as one batch; `None` without channels.
    #[must_use]
    pub fn restore_sql(&self) -> Option<String> {
        if self.channels.is_empty() {
            return None;
        }
        let statements: Vec<String> = self
            .channels
            .iter()
            // Recorded channels passed `listen_sql`, so they quote.
            .filter_map(|channel| Self::listen_sql(channel).ok())
            .collect();
        Some(statements.join("; "))
    }

    /// Records how `LISTEN` on `channel` went and hands the outcome back:
    /// a subscription that succeeded is restored after a reconnect; an
    /// error that means the connection is gone marks it
    /// [`lost`](Self::lost), and is returned either way.
    ///
    /// # Errors
    ///
    /// `outcome`'s error.
    pub fn listen_finished(&mut self, channel: &str, outcome: Result<()>) -> Result<()> {
        match outcome {
            Ok(()) => {
                self.listened(channel);
                Ok(())
            }
            Err(error) => {
                if Self::is_lost(&error) {
                    self.lost();
                }
                Err(error)
            }
        }
    }

    /// Records how `UNLISTEN` went (after [`unlistened`](Self::unlistened)):
    /// a connection lost meanwhile took the subscription with it, so that
    /// is success, and the connection is marked [`lost`](Self::lost).
    ///
    /// # Errors
    ///
    /// `outcome`'s error when the connection is still there.
    pub fn unlisten_finished(&mut self, outcome: Result<()>) -> Result<()> {
        match outcome {
            Err(error) if Self::is_lost(&error) => {
                self.lost();
                Ok(())
            }
            outcome => outcome,
        }
    }

    /// `LISTEN` on `channel` succeeded: it is restored after a reconnect.
    pub fn listened(&mut self, channel: &str) {
        if !self.channels.iter().any(|known| known == channel) {
            self.channels.push(channel.to_owned());
        }
    }

    /// `channel` is no longer wanted. Called before `UNLISTEN` is sent, so
    /// that a connection lost meanwhile does not bring it back: the lost
    /// session's subscription went with it.
    pub fn unlistened(&mut self, channel: &str) {
        self.channels.retain(|known| known != channel);
    }

    /// The subscribed channels, in the order they were first listened to.
    #[must_use]
    pub fn channels(&self) -> Vec<String> {
        self.channels.clone()
    }

    /// Whether `error`, from the listener's connection, means that
    /// connection is gone (class 08, 57P01 from `pg_terminate_backend`,
    /// `FATAL`, a failed socket), so that a new one must be opened.
    #[must_use]
    pub fn is_lost(error: &Error) -> bool {
        connection_lost(error)
    }

    /// The connection is gone (an error [`is_lost`](Self::is_lost) says so,
    /// or the driver reports it closed).
    pub fn lost(&mut self) {
        self.lost = true;
    }

    /// Whether the listener has no live connection and must open one
    /// before it can wait for notifications or send `LISTEN`.
    #[must_use]
    pub fn needs_connection(&self) -> bool {
        self.lost
    }

    /// A new connection is open and [`restore_sql`](Self::restore_sql) ran
    /// on it: the consumer is told before anything else.
    pub fn reconnected(&mut self) {
        self.lost = false;
        self.owes_reconnected = true;
    }

    /// The event the consumer must see before waiting for notifications:
    /// [`ListenerEvent::Reconnected`] once after each reconnect.
    pub fn pending_event(&mut self) -> Option<ListenerEvent> {
        std::mem::take(&mut self.owes_reconnected).then_some(ListenerEvent::Reconnected)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use tokio_postgres::error::SqlState;

    #[test]
    fn names_are_quoted_and_checked() {
        assert_eq!(
            ListenerState::listen_sql("jobs").unwrap(),
            "LISTEN \"jobs\""
        );
        assert_eq!(
            ListenerState::unlisten_sql("a\"; DROP TABLE x; --").unwrap(),
            "UNLISTEN \"a\"\"; DROP TABLE x; --\""
        );
        for bad in ["", "a\0b", &"x".repeat(64)] {
            assert_eq!(
                ListenerState::listen_sql(bad).unwrap_err().kind(),
                ErrorKind::Config
            );
        }
    }

    #[test]
    fn channels_are_kept_once_in_order_and_restored() {
        let mut state = ListenerState::new();
        assert_eq!(state.restore_sql(), None);
        state.listened("b");
        state.listened("a");
        state.listened("b");
        assert_eq!(state.channels(), ["b", "a"]);
        assert_eq!(
            state.restore_sql().as_deref(),
            Some("LISTEN \"b\"; LISTEN \"a\"")
        );
        state.unlistened("b");
        assert_eq!(state.channels(), ["a"]);
    }

    #[test]
    fn a_reconnect_is_reported_once() {
        let mut state = ListenerState::new();
        assert!(!state.needs_connection());
        assert_eq!(state.pending_event(), None);
        state.lost();
        assert!(state.needs_connection());
        assert_eq!(state.pending_event(), None);
        state.reconnected();
        assert!(!state.needs_connection());
        assert_eq!(state.pending_event(), Some(ListenerEvent::Reconnected));
        assert_eq!(state.pending_event(), None);
    }

    #[test]
    fn outcomes_record_channels_and_lost_connections() {
        let gone = || Error::new(ErrorKind::Closed);
        let refused = || {
            Error::with_message(ErrorKind::Database, "syntax").with_sqlstate(SqlState::SYNTAX_ERROR)
        };
        let mut state = ListenerState::new();
        state.listen_finished("a", Ok(())).unwrap();
        assert_eq!(state.channels(), ["a"]);
        assert!(state.listen_finished("b", Err(refused())).is_err());
        assert!(!state.needs_connection());
        assert!(state.listen_finished("b", Err(gone())).is_err());
        assert!(state.needs_connection());
        assert_eq!(state.channels(), ["a"]);

        let mut state = ListenerState::new();
        state.unlistened("a");
        assert!(state.unlisten_finished(Err(refused())).is_err());
        state.unlisten_finished(Err(gone())).unwrap();
        assert!(state.needs_connection(), "its subscription went with it");
    }

    #[test]
    fn lost_connections_are_recognised() {
        assert!(ListenerState::is_lost(&Error::new(ErrorKind::Closed)));
        let terminated = Error::with_message(ErrorKind::Database, "terminating connection")
            .with_sqlstate(SqlState::ADMIN_SHUTDOWN);
        assert!(ListenerState::is_lost(&terminated));
        let syntax = Error::with_message(ErrorKind::Database, "syntax")
            .with_sqlstate(SqlState::SYNTAX_ERROR);
        assert!(!ListenerState::is_lost(&syntax));
    }
}
