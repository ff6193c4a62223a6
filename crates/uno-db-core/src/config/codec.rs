//! How the field table's values are read and written: [`FieldValue`] per
//! Rust type (getter, equality, identity hash), [`Codec`] per kind of text
//! (URL query, libpq `key=value`, environment, configuration file). A field
//! row names its codec; a new field of an existing kind needs nothing here.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{
    ChannelBinding, Driver, LoadBalanceHosts, PgBouncerMode, SslMode, SslNegotiation,
    TargetSessionAttrs, duration, options, params,
};
use crate::retry::RetryPolicy;

/// A field's Rust type: how the getter lends it, how two values compare and
/// how it feeds a [`ConfigKey`](crate::ConfigKey).
pub(crate) trait FieldValue: Clone + fmt::Debug {
    /// What the getter returns.
    type Out<'a>
    where
        Self: 'a;

    /// The getter's view of the value.
    fn out(&self) -> Self::Out<'_>;

    /// Whether two values are the same (secrets compared by value).
    fn same(&self, other: &Self) -> bool;

    /// Feeds the value, secrets included, to an identity hash.
    fn feed<H: Hasher>(&self, state: &mut H);

    /// Whether a secret is present, so that `Debug` can say `Some(***)`.
    fn is_set(&self) -> bool {
        true
    }
}

/// Copy types with `Eq` and `Hash`: lent by value.
macro_rules! copy_value {
    ($($ty:ty),* $(,)?) => {$(
        impl FieldValue for $ty {
            type Out<'a> = Self;

            fn out(&self) -> Self {
                *self
            }

            fn same(&self, other: &Self) -> bool {
                self == other
            }

            fn feed<H: Hasher>(&self, state: &mut H) {
                self.hash(state);
            }
        }
    )*};
}

copy_value!(
    u16,
    usize,
    bool,
    Duration,
    Option<Duration>,
    Driver,
    SslMode,
    SslNegotiation,
    ChannelBinding,
    TargetSessionAttrs,
    LoadBalanceHosts,
    PgBouncerMode
);

/// Owned types with `Eq` and `Hash`, lent as `$out` through `$view`.
macro_rules! borrowed_value {
    ($($ty:ty => $lifetime:lifetime $out:ty, $view:expr;)*) => {$(
        impl FieldValue for $ty {
            type Out<$lifetime> = $out;

            fn out(&self) -> Self::Out<'_> {
                $view(self)
            }

            fn same(&self, other: &Self) -> bool {
                self == other
            }

            fn feed<H: Hasher>(&self, state: &mut H) {
                self.hash(state);
            }
        }
    )*};
}

borrowed_value! {
    String => 'a &'a str, String::as_str;
    Option<String> => 'a Option<&'a str>, Option::as_deref;
    Vec<String> => 'a &'a [String], Vec::as_slice;
    Vec<u16> => 'a &'a [u16], Vec::as_slice;
    Vec<IpAddr> => 'a &'a [IpAddr], Vec::as_slice;
    Vec<(String, String)> => 'a &'a [(String, String)], Vec::as_slice;
}

impl FieldValue for Option<SecretString> {
    type Out<'a> = Option<&'a SecretString>;

    fn out(&self) -> Option<&SecretString> {
        self.as_ref()
    }

    fn same(&self, other: &Self) -> bool {
        self.as_ref().map(ExposeSecret::expose_secret)
            == other.as_ref().map(ExposeSecret::expose_secret)
    }

    fn feed<H: Hasher>(&self, state: &mut H) {
        self.as_ref().map(ExposeSecret::expose_secret).hash(state);
    }

    fn is_set(&self) -> bool {
        self.is_some()
    }
}

impl FieldValue for RetryPolicy {
    type Out<'a> = Self;

    fn out(&self) -> Self {
        *self
    }

    fn same(&self, other: &Self) -> bool {
        self == other
    }

    fn feed<H: Hasher>(&self, state: &mut H) {
        self.get_max_attempts().hash(state);
        self.get_initial_delay().hash(state);
        // `0.0 == -0.0` must give one key; validation already refuses NaN.
        let multiplier = self.get_multiplier();
        let multiplier = if multiplier == 0.0 { 0.0 } else { multiplier };
        multiplier.to_bits().hash(state);
        self.get_max_delay().hash(state);
        self.get_deadline().hash(state);
    }
}

/// Turns a row's default (often a `defaults::` constant of a simpler type)
/// into the field's type.
pub(crate) trait IntoValue<T> {
    fn into_value(self) -> T;
}

impl<T> IntoValue<T> for T {
    fn into_value(self) -> T {
        self
    }
}

impl IntoValue<String> for &str {
    fn into_value(self) -> String {
        self.to_owned()
    }
}

impl IntoValue<Vec<u16>> for u16 {
    fn into_value(self) -> Vec<u16> {
        vec![self]
    }
}

impl IntoValue<Vec<String>> for &str {
    fn into_value(self) -> Vec<String> {
        vec![self.to_owned()]
    }
}

/// One kind of field text. `parse(format(v))` gives `v` back.
pub(crate) trait Codec {
    type Value: FieldValue;

    /// The accepted text, for the parameter table of `docs/configuration.md`.
    #[cfg(test)]
    const SYNTAX: &'static str;

    /// Parses the text of a URL query parameter, a libpq value or an
    /// environment variable, or returns the rule it broke.
    fn parse(text: &str) -> Result<Self::Value, String>;

    /// The text that parses back to `value`.
    fn format(value: &Self::Value) -> String;

    /// `value` for the defaults column of `docs/configuration.md`.
    #[cfg(test)]
    fn describe(value: &Self::Value) -> String {
        format!("`{}`", Self::format(value))
    }

    /// Sets `slot` from the text of the row's parameter number `key`.
    /// Only multi-parameter fields (the retry policy) look at `key`.
    fn apply(slot: &mut Option<Self::Value>, key: usize, text: &str) -> Result<(), String> {
        let _ = key;
        *slot = Some(Self::parse(text)?);
        Ok(())
    }

    /// The URL query parameters for `value`: none when it is `default`.
    fn emit(
        value: &Self::Value,
        default: &Self::Value,
        keys: &'static [&'static str],
        out: &mut Vec<(&'static str, String)>,
    ) {
        if let Some(key) = keys.first()
            && !value.same(default)
        {
            out.push((key, Self::format(value)));
        }
    }

    /// Why `value` is refused from an environment variable although it is
    /// well formed (libpq reads `PGCONNECT_TIMEOUT=0` as "wait forever").
    fn refuse_in_env(value: &Self::Value) -> Option<&'static str> {
        let _ = value;
        None
    }

    /// Reads the configuration file form; `None` leaves the field unset.
    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(d: D)
    -> Result<Option<Self::Value>, D::Error>;

    /// The JSON a configuration file gives for `value`.
    #[cfg(all(test, feature = "serde"))]
    fn json(value: &Self::Value) -> String;
}

#[cfg(feature = "serde")]
use serde::Deserialize as _;

#[cfg(all(test, feature = "serde"))]
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Plain text (`role`, `database`).
pub(crate) enum Text {}

impl Codec for Text {
    type Value = String;
    #[cfg(test)]
    const SYNTAX: &'static str = "text";

    fn parse(text: &str) -> Result<String, String> {
        Ok(text.to_owned())
    }

    fn format(value: &String) -> String {
        value.clone()
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Option::<String>::deserialize(d)
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &String) -> String {
        json(value)
    }
}

/// Optional text (`schema`, `application_name`, `set_role`): a given value
/// is set, even when empty.
pub(crate) enum OptText {}

impl Codec for OptText {
    type Value = Option<String>;
    #[cfg(test)]
    const SYNTAX: &'static str = "text";

    fn parse(text: &str) -> Result<Option<String>, String> {
        Ok(Some(text.to_owned()))
    }

    fn format(value: &Option<String>) -> String {
        value.clone().unwrap_or_default()
    }

    #[cfg(test)]
    fn describe(value: &Option<String>) -> String {
        value
            .as_ref()
            .map_or_else(|| "none".to_owned(), |v| format!("`{v}`"))
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(|v| v.map(Some))
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &Option<String>) -> String {
        json(value)
    }
}

/// A secret (`password`). Errors and `Debug` never show it; the row's
/// `secret: true` makes sure of that.
pub(crate) enum Secret {}

impl Codec for Secret {
    type Value = Option<SecretString>;
    #[cfg(test)]
    const SYNTAX: &'static str = "text";

    fn parse(text: &str) -> Result<Option<SecretString>, String> {
        Ok(Some(SecretString::from(text)))
    }

    fn format(value: &Option<SecretString>) -> String {
        value
            .as_ref()
            .map(|v| v.expose_secret().to_owned())
            .unwrap_or_default()
    }

    #[cfg(test)]
    fn describe(value: &Option<SecretString>) -> String {
        if value.is_some() { "`***`" } else { "none" }.to_owned()
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<SecretString>>, D::Error> {
        crate::config::serde::password(d).map(|p| p.map(|p| Some(p.into())))
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &Option<SecretString>) -> String {
        json(&value.as_ref().map(ExposeSecret::expose_secret))
    }
}

/// Hosts: `a,b,[::1]` in text; a string or a list of strings in files.
pub(crate) enum Hosts {}

impl Codec for Hosts {
    type Value = Vec<String>;
    #[cfg(test)]
    const SYNTAX: &'static str = "comma-separated hosts (IPv6 with or without brackets)";

    fn parse(text: &str) -> Result<Vec<String>, String> {
        params::host_list(text)
    }

    fn format(value: &Vec<String>) -> String {
        value.join(",")
    }

    #[cfg(test)]
    fn describe(value: &Vec<String>) -> String {
        format!("`{value:?}`")
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<String>>, D::Error> {
        crate::config::serde::hosts(d)
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &Vec<String>) -> String {
        json(value)
    }
}

/// Ports: one for every host, or one per host (`5432,5433`).
pub(crate) enum Ports {}

impl Codec for Ports {
    type Value = Vec<u16>;
    #[cfg(test)]
    const SYNTAX: &'static str = "a port, or comma-separated ports, one per host";

    fn parse(text: &str) -> Result<Vec<u16>, String> {
        params::port_list(text)
    }

    fn format(value: &Vec<u16>) -> String {
        let text: Vec<String> = value.iter().map(u16::to_string).collect();
        text.join(",")
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u16>>, D::Error> {
        crate::config::serde::ports(d)
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &Vec<u16>) -> String {
        json(value)
    }
}

/// IP addresses, one per host (`hostaddr`).
pub(crate) enum HostAddrs {}

impl Codec for HostAddrs {
    type Value = Vec<IpAddr>;
    #[cfg(test)]
    const SYNTAX: &'static str = "comma-separated IP addresses, one per host";

    fn parse(text: &str) -> Result<Vec<IpAddr>, String> {
        params::address_list(text)
    }

    fn format(value: &Vec<IpAddr>) -> String {
        let text: Vec<String> = value.iter().map(IpAddr::to_string).collect();
        text.join(",")
    }

    #[cfg(test)]
    fn describe(value: &Vec<IpAddr>) -> String {
        if value.is_empty() {
            "none".to_owned()
        } else {
            format!("`{}`", Self::format(value))
        }
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<IpAddr>>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| params::address_list(&t).map_err(serde::de::Error::custom))
            .transpose()
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &Vec<IpAddr>) -> String {
        json(&Self::format(value))
    }
}

/// A driver, by scheme name.
pub(crate) enum DriverName {}

impl Codec for DriverName {
    type Value = Driver;
    #[cfg(test)]
    const SYNTAX: &'static str = "a scheme name such as `postgresql+postgres` \
        (not in URLs, which name the driver with their scheme)";

    fn parse(text: &str) -> Result<Driver, String> {
        Driver::parse_scheme(text)
    }

    fn format(value: &Driver) -> String {
        value.scheme().to_owned()
    }

    #[cfg(test)]
    fn describe(value: &Driver) -> String {
        format!("`{value:?}`")
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Driver>, D::Error> {
        Option::<Driver>::deserialize(d)
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &Driver) -> String {
        json(value.scheme())
    }
}

const FOREVER: &str = "must be greater than zero; waiting forever is not supported";

/// A required wait (`pool_timeout`): a duration, never zero from the
/// environment.
pub(crate) enum Wait {}

impl Codec for Wait {
    type Value = Duration;
    #[cfg(test)]
    const SYNTAX: &'static str = "duration";

    fn parse(text: &str) -> Result<Duration, String> {
        duration::parse(text)
    }

    fn format(value: &Duration) -> String {
        duration::format(*value)
    }

    fn refuse_in_env(value: &Duration) -> Option<&'static str> {
        value.is_zero().then_some(FOREVER)
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        crate::config::serde::required_duration(d)
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &Duration) -> String {
        json(&duration::format(*value))
    }
}

/// A required wait libpq also knows (`connect_timeout`): as [`Wait`], but
/// written as libpq's whole seconds when it is whole seconds.
pub(crate) enum Seconds {}

impl Codec for Seconds {
    type Value = Duration;
    #[cfg(test)]
    const SYNTAX: &'static str = "duration (libpq's whole seconds work)";

    fn parse(text: &str) -> Result<Duration, String> {
        duration::parse(text)
    }

    fn format(value: &Duration) -> String {
        if value.subsec_nanos() == 0 {
            value.as_secs().to_string()
        } else {
            duration::format(*value)
        }
    }

    #[cfg(test)]
    fn describe(value: &Duration) -> String {
        format!("`{}`", duration::format(*value))
    }

    fn refuse_in_env(value: &Duration) -> Option<&'static str> {
        value.is_zero().then_some(FOREVER)
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        crate::config::serde::required_duration(d)
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &Duration) -> String {
        json(&duration::format(*value))
    }
}

/// An optional duration: `off` or `none` is `None`. With `ZERO_IS_OFF`,
/// `0` is `None` too (the `PostgreSQL` convention for timeouts); without
/// it, `0` is a value that validation judges.
pub(crate) enum OptDuration<const ZERO_IS_OFF: bool = false> {}

impl<const ZERO_IS_OFF: bool> OptDuration<ZERO_IS_OFF> {
    fn zero_off(value: Option<Duration>) -> Option<Duration> {
        value.filter(|d| !(ZERO_IS_OFF && d.is_zero()))
    }
}

impl<const ZERO_IS_OFF: bool> Codec for OptDuration<ZERO_IS_OFF> {
    type Value = Option<Duration>;
    #[cfg(test)]
    const SYNTAX: &'static str = if ZERO_IS_OFF {
        "duration; `0`, `off` or `none` turn it off"
    } else {
        "duration, or `off` / `none`"
    };

    fn parse(text: &str) -> Result<Option<Duration>, String> {
        duration::parse_optional(text).map(Self::zero_off)
    }

    fn format(value: &Option<Duration>) -> String {
        duration::format_optional(*value)
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<Duration>>, D::Error> {
        crate::config::serde::optional_duration(d).map(|v| v.map(Self::zero_off))
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &Option<Duration>) -> String {
        json(&duration::format_optional(*value))
    }
}

/// A count.
pub(crate) enum Count {}

impl Codec for Count {
    type Value = usize;
    #[cfg(test)]
    const SYNTAX: &'static str = "non-negative integer";

    fn parse(text: &str) -> Result<usize, String> {
        params::integer(text)
    }

    fn format(value: &usize) -> String {
        value.to_string()
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        Option::<usize>::deserialize(d)
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &usize) -> String {
        json(value)
    }
}

/// A boolean.
pub(crate) enum Flag {}

impl Codec for Flag {
    type Value = bool;
    #[cfg(test)]
    const SYNTAX: &'static str = "`true`/`false`, `on`/`off`, `yes`/`no`, `1`/`0`";

    fn parse(text: &str) -> Result<bool, String> {
        params::boolean(text)
    }

    fn format(value: &bool) -> String {
        value.to_string()
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        Option::<bool>::deserialize(d)
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &bool) -> String {
        json(value)
    }
}

/// Server settings: libpq's `options` string in text, a table or a list of
/// pairs in files.
pub(crate) enum Settings {}

impl Codec for Settings {
    type Value = Vec<(String, String)>;
    #[cfg(test)]
    const SYNTAX: &'static str = "libpq form: `-c name=value` switches separated by spaces, \
        `\\` escaping a space or backslash (also `-cname=value` and `--name=value`)";

    fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
        options::decode(text)
    }

    fn format(value: &Vec<(String, String)>) -> String {
        options::encode(value)
    }

    #[cfg(test)]
    fn describe(value: &Vec<(String, String)>) -> String {
        if value.is_empty() {
            "empty".to_owned()
        } else {
            format!("`{}`", options::encode(value))
        }
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<(String, String)>>, D::Error> {
        crate::config::serde::ordered_options(d)
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &Vec<(String, String)>) -> String {
        json(value)
    }
}

/// The retry policy: one text parameter per policy field, in the row's
/// order `retry_max_attempts`, `retry_initial_delay`, `retry_multiplier`,
/// `retry_max_delay`, `retry_deadline`; a `RetryPolicy` table in files.
pub(crate) enum Retry {}

impl Codec for Retry {
    type Value = RetryPolicy;
    #[cfg(test)]
    const SYNTAX: &'static str = "`retry_max_attempts`: integer; `retry_multiplier`: number \
        (`2`, `1.5`); the others: duration";

    fn parse(text: &str) -> Result<RetryPolicy, String> {
        let mut slot = None;
        Self::apply(&mut slot, 0, text)?;
        Ok(slot.unwrap_or_default())
    }

    fn format(value: &RetryPolicy) -> String {
        value.get_max_attempts().to_string()
    }

    #[cfg(test)]
    fn describe(value: &RetryPolicy) -> String {
        if *value == RetryPolicy::default() {
            "`RetryPolicy::default()`".to_owned()
        } else {
            format!("`{value:?}`")
        }
    }

    /// Parameters set within one layer combine; the rest stay at their
    /// defaults.
    fn apply(slot: &mut Option<RetryPolicy>, key: usize, text: &str) -> Result<(), String> {
        let policy = slot.unwrap_or_default();
        let policy = match key {
            0 => policy.max_attempts(params::integer(text)?),
            1 => policy.initial_delay(duration::parse(text)?),
            2 => policy.multiplier(params::multiplier(text)?),
            3 => policy.max_delay(duration::parse(text)?),
            _ => policy.deadline(duration::parse(text)?),
        };
        *slot = Some(policy);
        Ok(())
    }

    fn emit(
        value: &RetryPolicy,
        default: &RetryPolicy,
        keys: &'static [&'static str],
        out: &mut Vec<(&'static str, String)>,
    ) {
        // Attempts and deadline are written when set, even to their default
        // values: being set is what makes them bound a checkout's retries.
        let text = |p: &RetryPolicy| {
            [
                p.max_attempts_set().map(|n| n.to_string()),
                Some(duration::format(p.get_initial_delay())),
                Some(p.get_multiplier().to_string()),
                Some(duration::format(p.get_max_delay())),
                p.deadline_set().map(duration::format),
            ]
        };
        for (key, (value, default)) in keys.iter().zip(text(value).into_iter().zip(text(default))) {
            if let Some(value) = value
                && Some(&value) != default.as_ref()
            {
                out.push((key, value));
            }
        }
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<RetryPolicy>, D::Error> {
        Option::<RetryPolicy>::deserialize(d)
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &RetryPolicy) -> String {
        let mut fields = vec![
            format!(
                r#""initial_delay": "{}""#,
                duration::format(value.get_initial_delay())
            ),
            format!(r#""multiplier": {}"#, value.get_multiplier()),
            format!(
                r#""max_delay": "{}""#,
                duration::format(value.get_max_delay())
            ),
        ];
        if let Some(attempts) = value.max_attempts_set() {
            fields.push(format!(r#""max_attempts": {attempts}"#));
        }
        if let Some(deadline) = value.deadline_set() {
            fields.push(format!(r#""deadline": "{}""#, duration::format(deadline)));
        }
        format!("{{{}}}", fields.join(", "))
    }
}

/// Stands in for a secret in `Debug` output: `Some(***)` or `None`.
pub(crate) struct Masked(pub(crate) bool);

impl fmt::Debug for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "Some(***)" } else { "None" })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn optional_durations_take_zero_as_off_only_when_asked() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(OptDuration::<false>::parse("0").unwrap(), secs(0));
        assert_eq!(OptDuration::<true>::parse("0").unwrap(), None);
        assert_eq!(OptDuration::<true>::parse("0s").unwrap(), None);
        assert_eq!(OptDuration::<true>::parse("off").unwrap(), None);
        assert_eq!(OptDuration::<true>::parse("30").unwrap(), secs(30));
        assert_eq!(OptDuration::<true>::format(&None), "off");
    }

    #[test]
    fn retry_parameters_combine_within_a_layer() {
        let mut slot = None;
        Retry::apply(&mut slot, 0, "7").unwrap();
        Retry::apply(&mut slot, 4, "3s").unwrap();
        let policy = slot.unwrap();
        assert_eq!(policy.get_max_attempts(), 7);
        assert_eq!(policy.get_deadline(), Duration::from_secs(3));
        assert_eq!(
            policy.get_initial_delay(),
            RetryPolicy::default().get_initial_delay()
        );
        // A malformed value leaves the slot as it was.
        let mut slot = None;
        assert!(Retry::apply(&mut slot, 2, "x").is_err());
        assert!(slot.is_none());
    }

    #[test]
    fn secrets_compare_and_hash_by_value_and_debug_masked() {
        use std::hash::DefaultHasher;
        let a = Some(SecretString::from("Zebra"));
        let b = Some(SecretString::from("Zebra"));
        let c = Some(SecretString::from("Quux"));
        assert!(a.same(&b) && !a.same(&c) && !a.same(&None));
        let hash = |v: &Option<SecretString>| {
            let mut h = DefaultHasher::new();
            v.feed(&mut h);
            h.finish()
        };
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(hash(&a), hash(&c));
        assert_eq!(format!("{:?}", Masked(a.is_set())), "Some(***)");
        assert_eq!(
            format!("{:?}", Masked(None::<SecretString>.is_set())),
            "None"
        );
    }
}
