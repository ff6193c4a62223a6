//! [`TargetSessionAttrs`]: which server of a host list a connection must
//! reach, with libpq's names and meaning.

use crate::config::libpq_enum::libpq_enum;

libpq_enum! {
    /// Which kind of server a connection must reach, as libpq's
    /// `target_session_attrs`: hosts are tried in order (or shuffled, with
    /// `load_balance_hosts=random`) and a server of the wrong kind is
    /// passed over. The kernel checks the server's role with one query
    /// after connecting (`pg_is_in_recovery()` and `transaction_read_only`)
    /// and re-checks it on checkout every
    /// [`host_recheck_interval`](crate::ConnectionConfig::host_recheck_interval).
    ///
    /// ```
    /// use uno_db_core::{ConnectionConfig, TargetSessionAttrs};
    ///
    /// let config: ConnectionConfig =
    ///     "postgresql://db1:5432,db2:5433/orders?target_session_attrs=read-write".parse()?;
    /// assert_eq!(config.target_session_attrs(), TargetSessionAttrs::ReadWrite);
    /// assert!(config.target_session_attrs().needs_role_check());
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    pub enum TargetSessionAttrs ("target_session_attrs", "`any`, `read-write`, `read-only`, `primary`, `standby` or `prefer-standby`") {
        /// Any server that accepts the connection.
        #[default]
        Any = "any",
        /// A server whose sessions accept writes: not in recovery and
        /// `default_transaction_read_only` off.
        ReadWrite = "read-write",
        /// A server whose sessions are read-only: a standby, or a primary
        /// with `default_transaction_read_only` on.
        ReadOnly = "read-only",
        /// A server not in recovery (a primary), whatever its
        /// `default_transaction_read_only`.
        Primary = "primary",
        /// A server in recovery (a hot standby).
        Standby = "standby",
        /// A standby if any host is one, else any server.
        PreferStandby = "prefer-standby",
    }
}

impl TargetSessionAttrs {
    /// Whether a server's role must be checked after connecting (every
    /// mode but `any`).
    #[must_use]
    pub fn needs_role_check(self) -> bool {
        self != Self::Any
    }

    /// Whether a server with `role` is the kind this mode asks for. With
    /// `prefer-standby`, `strict` asks for the standby pass (only a
    /// standby qualifies); otherwise any server does.
    #[must_use]
    pub fn accepts(self, role: ServerRole, strict: bool) -> bool {
        match self {
            Self::Any => true,
            Self::ReadWrite => !role.in_recovery && !role.read_only,
            Self::ReadOnly => role.in_recovery || role.read_only,
            Self::Primary => !role.in_recovery,
            Self::Standby => role.in_recovery,
            Self::PreferStandby => !strict || role.in_recovery,
        }
    }
}

/// What a server said about itself: whether it is in recovery (a
/// standby) and whether its sessions default to read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerRole {
    /// `pg_is_in_recovery()`: a hot standby.
    pub in_recovery: bool,
    /// `transaction_read_only` of a new session: a standby, or
    /// `default_transaction_read_only` on.
    pub read_only: bool,
}

impl ServerRole {
    /// The role from the row of the kernel's role query
    /// (`pg_is_in_recovery()` as `t`/`f`, `transaction_read_only` as
    /// `on`/`off`); `None` when the row is not that.
    #[must_use]
    pub fn from_row(row: &[Option<&str>]) -> Option<Self> {
        let in_recovery = match row.first()? {
            Some("t") => true,
            Some("f") => false,
            _ => return None,
        };
        let read_only = match row.get(1)? {
            Some("on") => true,
            Some("off") => false,
            _ => return None,
        };
        Some(Self {
            in_recovery,
            read_only,
        })
    }

    /// The role as a word for errors and events: `primary`,
    /// `read-only primary` or `standby`.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match (self.in_recovery, self.read_only) {
            (true, _) => "standby",
            (false, true) => "read-only primary",
            (false, false) => "primary",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: ServerRole = ServerRole {
        in_recovery: false,
        read_only: false,
    };
    const READ_ONLY_PRIMARY: ServerRole = ServerRole {
        in_recovery: false,
        read_only: true,
    };
    const STANDBY: ServerRole = ServerRole {
        in_recovery: true,
        read_only: true,
    };

    /// libpq's table (`libpq-connect.html`, `target_session_attrs`).
    #[test]
    fn each_mode_accepts_what_libpq_accepts() {
        use TargetSessionAttrs::*;
        let table = [
            (Any, [true, true, true]),
            (ReadWrite, [true, false, false]),
            (ReadOnly, [false, true, true]),
            (Primary, [true, true, false]),
            (Standby, [false, false, true]),
        ];
        for (mode, expected) in table {
            let got = [PRIMARY, READ_ONLY_PRIMARY, STANDBY].map(|role| mode.accepts(role, true));
            assert_eq!(got, expected, "{mode}");
        }
        assert!(!PreferStandby.accepts(PRIMARY, true));
        assert!(PreferStandby.accepts(STANDBY, true));
        assert!(PreferStandby.accepts(PRIMARY, false));
        assert!(!Any.needs_role_check());
        assert!(PreferStandby.needs_role_check());
    }
}
