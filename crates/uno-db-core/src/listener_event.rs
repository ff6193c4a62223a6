//! [`ListenerEvent`]: what a listener's `next` hands out.

use crate::notification::Notification;

/// One item from a listener (`blocking::Listener`,
/// `nonblocking::Listener`): a notification, or the news that the
/// listener's connection was lost and replaced.
///
/// PostgreSQL keeps no notifications for a session that is gone: whatever
/// was sent while the listener was reconnecting is lost. The listener says
/// so with [`Reconnected`](Self::Reconnected) instead of carrying on as if
/// nothing happened, so that a consumer keeping a cache or a queue in step
/// with the database knows to re-read what it follows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenerEvent {
    /// A notification on a subscribed channel.
    Notification(Notification),
    /// The connection was lost and a new one opened, with every subscribed
    /// channel listened to again; notifications sent in between may have
    /// been missed. Comes before any notification of the new connection.
    Reconnected,
}

impl ListenerEvent {
    /// The notification, if this is one.
    #[must_use]
    pub fn notification(&self) -> Option<&Notification> {
        match self {
            Self::Notification(notification) => Some(notification),
            Self::Reconnected => None,
        }
    }

    /// Whether this is [`Reconnected`](Self::Reconnected).
    #[must_use]
    pub fn is_reconnected(&self) -> bool {
        matches!(self, Self::Reconnected)
    }
}

impl From<Notification> for ListenerEvent {
    fn from(notification: Notification) -> Self {
        Self::Notification(notification)
    }
}
