//! [`ConfigKey`]: a configuration's identity, computed once when it is
//! built.

use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::OnceLock;

use crate::config::table::Inner;

/// The identity of a [`ConnectionConfig`](crate::ConnectionConfig) within
/// this process: equal configurations have equal keys, and configurations
/// that differ in any field, the password included, have different keys
/// (but for a 2⁻¹²⁸-ish chance). Computed once when the configuration is
/// built, so comparing and hashing keys is cheap; engine factories use it
/// to keep one engine per configuration.
///
/// The key is a 128-bit hash of every field, keyed with a random secret
/// drawn once per process: it holds no field in plain text, cannot be
/// checked against guessed passwords outside the process, and differs from
/// one run to the next. Never store or send it.
///
/// ```
/// use uno_db_core::ConnectionConfig;
///
/// let a: ConnectionConfig = "postgresql://app:one@db/orders".parse()?;
/// let b = ConnectionConfig::builder().role("app").password("one").host("db").database("orders").build()?;
/// let c = a.to_builder().password("two").build()?;
/// assert_eq!(a.key(), b.key());
/// assert_ne!(a.key(), c.key());
/// assert!(!format!("{:?}", a.key()).contains("one"));
/// # Ok::<(), uno_db_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigKey(u128);

impl ConfigKey {
    /// The key of `fields`.
    pub(crate) fn of(fields: &Inner) -> Self {
        // One secret per process; two differently seeded passes give 128
        // bits from a 64-bit keyed hash.
        static SECRET: OnceLock<RandomState> = OnceLock::new();
        let secret = SECRET.get_or_init(RandomState::new);
        let mut halves = [0_u128; 2];
        for (seed, half) in (1_u8..).zip(&mut halves) {
            let mut hasher = secret.build_hasher();
            hasher.write_u8(seed);
            fields.feed(&mut hasher);
            *half = u128::from(hasher.finish());
        }
        Self((halves[0] << 64) | halves[1])
    }
}

impl fmt::Debug for ConfigKey {
    /// The hash in hex: nothing of the configuration is readable from it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigKey({:032x})", self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::config::ConnectionConfig;
    use crate::config::table::FIELDS;

    #[test]
    fn equal_configurations_have_equal_keys_whatever_their_source() {
        let parsed: ConnectionConfig = "postgresql://app:pw@db:5433/orders?pool_size=3"
            .parse()
            .unwrap();
        let built = ConnectionConfig::builder()
            .role("app")
            .password("pw")
            .host("db")
            .port(5433)
            .database("orders")
            .pool_size(3)
            .build()
            .unwrap();
        assert_eq!(parsed.key(), built.key());
        assert_eq!(parsed.key(), parsed.to_builder().build().unwrap().key());
        assert_eq!(
            ConnectionConfig::default().key(),
            ConnectionConfig::builder().build().unwrap().key()
        );
    }

    #[test]
    fn every_field_changes_the_key() {
        let base = ConnectionConfig::default();
        for field in FIELDS {
            // These examples (`sslmode=require`, `sslnegotiation=direct`,
            // which implies `require`, `channel_binding=require`) are
            // configuration errors without TLS.
            if cfg!(not(feature = "tls"))
                && ["sslmode", "sslnegotiation", "channel_binding"].contains(&field.params[0])
            {
                continue;
            }
            let param = field.params[0];
            let changed: ConnectionConfig = format!("{param}='{}'", field.example)
                .parse()
                .unwrap_or_else(|e| panic!("{param}: {e}"));
            assert_ne!(changed, base, "{param}");
            assert_ne!(changed.key(), base.key(), "{param}");
        }
    }

    #[test]
    fn the_password_alone_changes_the_key_and_never_shows() {
        let a = ConnectionConfig::builder()
            .password("Zebra-Quux-1")
            .build()
            .unwrap();
        let b = a.to_builder().password("Zebra-Quux-2").build().unwrap();
        let none = a.to_builder().clear_password().build().unwrap();
        let empty = a.to_builder().password("").build().unwrap();
        assert_ne!(a.key(), b.key());
        assert_ne!(a.key(), none.key());
        assert_ne!(none.key(), empty.key());
        let debug = format!("{:?}", a.key());
        assert!(
            debug.starts_with("ConfigKey(") && !debug.contains("Zebra"),
            "{debug}"
        );
    }
}
