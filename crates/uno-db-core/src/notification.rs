//! [`Notification`]: one `NOTIFY` as a listener receives it.

/// A notification sent with `NOTIFY channel, 'payload'` (or
/// `pg_notify(channel, payload)`) to a channel a listener subscribed to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    channel: String,
    payload: String,
    process_id: i32,
}

impl Notification {
    /// A notification on `channel` carrying `payload`, sent by the server
    /// process `process_id`. Backends build them from the driver's; tests
    /// build them by hand to script a mock listener.
    #[must_use]
    pub fn new(channel: impl Into<String>, payload: impl Into<String>, process_id: i32) -> Self {
        Self {
            channel: channel.into(),
            payload: payload.into(),
            process_id,
        }
    }

    /// The driver's notification (both drivers share the type).
    #[must_use]
    pub fn from_driver(notification: &tokio_postgres::Notification) -> Self {
        Self::new(
            notification.channel(),
            notification.payload(),
            notification.process_id(),
        )
    }

    /// The channel it was sent to, as given to `NOTIFY` (unquoted).
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The payload (empty when `NOTIFY` gave none).
    #[must_use]
    pub fn payload(&self) -> &str {
        &self.payload
    }

    /// The process id of the server backend that sent it
    /// (`pg_backend_pid()` of the notifying session).
    #[must_use]
    pub fn process_id(&self) -> i32 {
        self.process_id
    }
}
