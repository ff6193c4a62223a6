//! The machinery that turns the field table (`table.rs`) into the
//! configuration: the resolved and layered structs, the getters and builder
//! setters, the `defaults` module, the `serde` form and one [`FieldInfo`]
//! per field, which URL and libpq parsing, URL generation, the environment,
//! validation and the generated tables of `docs/configuration.md` read.

use crate::config::table::{Fields, Inner};
use crate::config::validate::Violations;

/// Where a field sits in a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlForm {
    /// In the authority or path (`role:password@hosts:port/database`);
    /// its parameters are accepted in the query too.
    Authority,
    /// In the scheme (`postgresql+tokio-postgres://`); its parameter is
    /// refused in the query, as a URL has one place for it.
    Scheme,
    /// In the query, generated when the value is not the default.
    Query,
}

/// What the table says about one field, for the code that loops over
/// fields.
pub(crate) struct FieldInfo {
    /// The field's name: getter, setter, file key and violation field.
    #[cfg(test)]
    pub(crate) name: &'static str,
    /// Its URL query and libpq `key=value` parameters.
    pub(crate) params: &'static [&'static str],
    /// Its environment variables, in precedence order: the first variable
    /// of every field forms one layer over the second ones, and so on.
    pub(crate) env: &'static [&'static str],
    /// Where it sits in a URL.
    pub(crate) url: UrlForm,
    /// Whether its value is never shown.
    pub(crate) secret: bool,
    /// Sets the field in a layer from the text of parameter number `key`.
    pub(crate) apply: fn(&mut Fields, usize, &str) -> Result<(), String>,
    /// Sets the field in a layer from an environment variable.
    pub(crate) apply_env: fn(&mut Fields, &str) -> Result<(), String>,
    /// Appends the query parameters for the field when not at its default.
    pub(crate) emit: fn(&Inner, &mut Vec<(&'static str, String)>),
    /// Adds every rule the field breaks.
    pub(crate) check: fn(&Inner, &mut Violations),
    /// The doc lines of the row.
    #[cfg(test)]
    pub(crate) doc: &'static [&'static str],
    /// The Rust type, as written in the row.
    #[cfg(test)]
    pub(crate) rust_type: &'static str,
    /// The `defaults::` constant, if the row declares one.
    #[cfg(test)]
    pub(crate) default_const: Option<&'static str>,
    /// The configuration file keys.
    #[cfg(test)]
    pub(crate) serde: &'static [&'static str],
    /// A valid, non-default text for the first parameter.
    #[cfg(test)]
    pub(crate) example: &'static str,
    /// The accepted parameter text.
    #[cfg(test)]
    pub(crate) syntax: &'static str,
    /// The default, as `docs/configuration.md` shows it.
    #[cfg(test)]
    pub(crate) describe_default: fn() -> String,
    /// The rules, as `docs/configuration.md` shows them.
    #[cfg(test)]
    pub(crate) describe_rule: fn() -> Option<String>,
    /// The field of a configuration as configuration file JSON.
    #[cfg(all(test, feature = "serde"))]
    pub(crate) json: fn(&Inner) -> String,
}

impl FieldInfo {
    /// The field whose parameters include `key`, and `key`'s position.
    pub(crate) fn by_param(key: &str) -> Option<(&'static Self, usize)> {
        crate::config::table::FIELDS.iter().find_map(|field| {
            field
                .params
                .iter()
                .position(|param| *param == key)
                .map(|index| (field, index))
        })
    }
}

/// Declares the fields of `ConnectionConfig`, once each. Every row reads:
///
/// ```text
/// /// Doc lines: the getter's docs, the setter's, and the meaning column of
/// /// docs/configuration.md.
/// name: RustType {
///     default: value_expression[, const DEFAULTS_NAME: ConstType];
///     codec: Codec;                 // text and file form, from codec.rs
///     get: GetterReturnType;        // from FieldValue::out
///     set: plain | into | clearable(Inner, clear_name) | custom;
///     rule: Rule;                   // from validate.rs
///     url: Authority | Scheme | Query;
///     params: ["url_and_libpq_key", ...];
///     env: ["UNO_DB_NAME", "PGNAME"];   // precedence order, may be empty
///     serde: ["file_key", "alias"];
///     secret: false;
///     example: "valid non-default text";
/// }
/// ```
macro_rules! config_table {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $ty:ty {
            default: $default:expr $(, const $const_name:ident: $const_ty:ty)?;
            codec: $codec:ty;
            get: $get:ty;
            set: $set:ident $(($($set_args:tt)*))?;
            rule: $rule:expr;
            url: $url:ident;
            params: [$($param:literal),* $(,)?];
            env: [$($env:literal),* $(,)?];
            serde: [$($serde:literal),* $(,)?];
            secret: $secret:literal;
            example: $example:literal;
        }
    )*) => {
        /// The resolved fields of a configuration, validated once wrapped
        /// in [`ConnectionConfig`](crate::ConnectionConfig).
        #[derive(Clone)]
        pub(crate) struct Inner {
            $(pub(crate) $name: $ty,)*
        }

        /// One layer of settings (explicit, `DATABASE_URL`, `UNO_DB_*`,
        /// `PG*`): `None` = not set in this layer; for optional fields
        /// `Some(None)` = explicitly unset (for example `pool_recycle=off`).
        #[derive(Debug, Clone, Default)]
        pub(crate) struct Fields {
            $(pub(crate) $name: Option<$ty>,)*
        }

        impl Fields {
            /// Every field of `inner`, set.
            pub(crate) fn from_inner(inner: &Inner) -> Self {
                Self {
                    $($name: Some(inner.$name.clone()),)*
                }
            }

            /// This layer over `lower`: each field set here wins, the rest
            /// come from `lower`.
            pub(crate) fn or(self, lower: Self) -> Self {
                Self {
                    $($name: self.$name.or(lower.$name),)*
                }
            }

            /// Every field, unset ones at their default. Not validated.
            pub(crate) fn resolve(self) -> Inner {
                Inner {
                    $($name: self.$name.unwrap_or_else(|| {
                        $crate::config::codec::IntoValue::into_value($default)
                    }),)*
                }
            }
        }

        impl Inner {
            /// Whether every field is the same (secrets by value).
            pub(crate) fn same(&self, other: &Self) -> bool {
                use $crate::config::codec::FieldValue as _;
                true $(&& self.$name.same(&other.$name))*
            }

            /// Feeds every field, secrets included, to an identity hash.
            pub(crate) fn feed<H: ::std::hash::Hasher>(&self, state: &mut H) {
                use $crate::config::codec::FieldValue as _;
                $(self.$name.feed(state);)*
            }

            /// `Debug` for the fields, secrets masked.
            pub(crate) fn debug(
                &self,
                name: &str,
                f: &mut ::std::fmt::Formatter<'_>,
            ) -> ::std::fmt::Result {
                use $crate::config::codec::FieldValue as _;
                let mut out = f.debug_struct(name);
                $(
                    if $secret {
                        out.field(
                            stringify!($name),
                            &$crate::config::codec::Masked(self.$name.is_set()),
                        );
                    } else {
                        out.field(stringify!($name), &self.$name);
                    }
                )*
                out.finish()
            }
        }

        impl $crate::config::ConnectionConfig {
            $(
                $(#[doc = $doc])+
                #[must_use]
                pub fn $name(&self) -> $get {
                    $crate::config::codec::FieldValue::out(&self.inner.$name)
                }
            )*
        }

        impl $crate::config::ConnectionConfigBuilder {
            $(
                $crate::config::table_macro::config_setter! {
                    $set ($($($set_args)*)?) $name: $ty; $($doc)+
                }
            )*
        }

        /// The built-in default of every
        /// [`ConnectionConfig`](crate::ConnectionConfig) field that has a
        /// constant, generated from the field table; `docs/configuration.md`
        /// explains each choice.
        ///
        /// A default applies only when neither the builder, nor (when
        /// requested) the environment, sets the field. No default waits
        /// forever.
        pub mod defaults {
            #[allow(unused_imports, reason = "a row's constant may use any of them")]
            use super::*;

            $($crate::config::table_macro::default_const! {
                $name $default $(, $const_name: $const_ty)?
            })*
        }

        /// Every field, in table order: the order of validation, of URL
        /// query parameters, of `Debug` and of the documentation.
        pub(crate) const FIELDS: &[$crate::config::table_macro::FieldInfo] = &[$(
            $crate::config::table_macro::FieldInfo {
                #[cfg(test)]
                name: stringify!($name),
                params: &[$($param),*],
                env: &[$($env),*],
                url: $crate::config::table_macro::UrlForm::$url,
                secret: $secret,
                apply: |fields, key, text| {
                    <$codec as $crate::config::codec::Codec>::apply(&mut fields.$name, key, text)
                },
                apply_env: |fields, text| {
                    use $crate::config::codec::Codec as _;
                    let mut slot = None;
                    <$codec>::apply(&mut slot, 0, text)?;
                    if let Some(rule) = slot.as_ref().and_then(<$codec>::refuse_in_env) {
                        return Err(rule.to_owned());
                    }
                    fields.$name = slot;
                    Ok(())
                },
                emit: |config, out| {
                    let default: $ty = $crate::config::codec::IntoValue::into_value($default);
                    <$codec as $crate::config::codec::Codec>::emit(
                        &config.$name,
                        &default,
                        &[$($param),*],
                        out,
                    );
                },
                check: |config, out| {
                    let context = $crate::config::validate::Context {
                        field: stringify!($name),
                        secret: $secret,
                    };
                    $crate::config::validate::Rule::<$ty>::check(
                        &$rule,
                        &context,
                        &config.$name,
                        config,
                        out,
                    );
                },
                #[cfg(test)]
                doc: &[$($doc),+],
                #[cfg(test)]
                rust_type: stringify!($ty),
                #[cfg(test)]
                default_const: $crate::config::table_macro::optional_name!($($const_name)?),
                #[cfg(test)]
                serde: &[$($serde),*],
                #[cfg(test)]
                example: $example,
                #[cfg(test)]
                syntax: <$codec as $crate::config::codec::Codec>::SYNTAX,
                #[cfg(test)]
                describe_default: || {
                    let default: $ty = $crate::config::codec::IntoValue::into_value($default);
                    <$codec as $crate::config::codec::Codec>::describe(&default)
                },
                #[cfg(test)]
                describe_rule: || $crate::config::validate::Rule::<$ty>::describe(&$rule),
                #[cfg(all(test, feature = "serde"))]
                json: |config| <$codec as $crate::config::codec::Codec>::json(&config.$name),
            },
        )*];

        /// Every URL query and libpq parameter name.
        #[cfg(test)]
        pub(crate) const KEYS: &[&str] = &[$($($param,)*)*];

        /// Every configuration file key.
        #[cfg(feature = "serde")]
        pub(crate) const SERDE_KEYS: &[&str] = &[$($($serde,)*)*];

        /// Reads the configuration file form into a layer. A field given
        /// twice (under one key or two) is an error; so is an unknown key.
        #[cfg(feature = "serde")]
        pub(crate) fn deserialize_fields<'de, A: ::serde::de::MapAccess<'de>>(
            mut map: A,
        ) -> Result<Fields, A::Error> {
            use ::serde::de::Error as _;
            let mut fields = Fields::default();
            // (field, key) of every key read so far.
            let mut given: Vec<(&'static str, String)> = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                $(
                    if [$($serde),*].contains(&key.as_str()) {
                        let field = stringify!($name);
                        if let Some((_, first)) = given.iter().find(|(f, _)| *f == field) {
                            return Err(A::Error::custom(if *first == key {
                                format!("duplicate field `{key}`")
                            } else {
                                format!("set either `{first}` or `{key}`, not both")
                            }));
                        }
                        given.push((field, key));
                        let seed = $crate::config::serde::Seed::<$codec>::new();
                        if let Some(value) = map.next_value_seed(seed)? {
                            fields.$name = Some(value);
                        }
                        continue;
                    }
                )*
                return Err(A::Error::unknown_field(&key, SERDE_KEYS));
            }
            Ok(fields)
        }
    };
}

pub(crate) use config_table;

/// The builder setters of one row.
macro_rules! config_setter {
    (plain () $name:ident: $ty:ty; $($doc:literal)+) => {
        #[doc = concat!("Sets [`", stringify!($name), "`](crate::ConnectionConfig::", stringify!($name), "):")]
        $(#[doc = $doc])+
        pub fn $name(mut self, value: $ty) -> Self {
            self.explicit.$name = Some(value);
            self
        }
    };
    (into () $name:ident: $ty:ty; $($doc:literal)+) => {
        #[doc = concat!("Sets [`", stringify!($name), "`](crate::ConnectionConfig::", stringify!($name), "):")]
        $(#[doc = $doc])+
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            self.explicit.$name = Some(value.into());
            self
        }
    };
    (clearable ($inner:ty, $clear:ident) $name:ident: $ty:ty; $($doc:literal)+) => {
        #[doc = concat!("Sets [`", stringify!($name), "`](crate::ConnectionConfig::", stringify!($name), "):")]
        $(#[doc = $doc])+
        pub fn $name(mut self, value: impl Into<$inner>) -> Self {
            self.explicit.$name = Some(Some(value.into()));
            self
        }

        #[doc = concat!("Sets \"no `", stringify!($name), "`\", overriding the environment.")]
        pub fn $clear(mut self) -> Self {
            self.explicit.$name = Some(None);
            self
        }
    };
    // Written by hand in builder.rs.
    (custom () $name:ident: $ty:ty; $($doc:literal)+) => {};
}

pub(crate) use config_setter;

/// The `defaults::` constant of one row, if it declares one.
macro_rules! default_const {
    ($name:ident $default:expr) => {};
    ($name:ident $default:expr, $const_name:ident: $const_ty:ty) => {
        #[doc = concat!(
            "Default [`", stringify!($name), "`](crate::ConnectionConfig::", stringify!($name),
            "): `", stringify!($default), "`."
        )]
        pub const $const_name: $const_ty = $default;
    };
}

pub(crate) use default_const;

/// `Some("NAME")` or `None`.
#[cfg(test)]
macro_rules! optional_name {
    () => {
        None
    };
    ($name:ident) => {
        Some(stringify!($name))
    };
}

#[cfg(test)]
pub(crate) use optional_name;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

    use super::*;
    use crate::config::ConnectionConfig;
    use crate::config::table::FIELDS;

    fn parse(text: &str) -> ConnectionConfig {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// Every row's example, through every form the row declares, gives the
    /// same configuration, which differs from the default and round-trips.
    #[test]
    fn every_field_in_every_form() {
        let default = ConnectionConfig::default();
        for field in FIELDS {
            // These examples (`sslmode=require`, `sslnegotiation=direct`,
            // which implies `require`, `channel_binding=require`) are
            // configuration errors without TLS.
            if cfg!(not(feature = "tls"))
                && ["sslmode", "sslnegotiation", "channel_binding"].contains(&field.params[0])
            {
                continue;
            }
            let (name, example) = (field.name, field.example);
            let expected = parse(&format!("{}='{example}'", field.params[0]));
            assert_ne!(expected, default, "{name}: the example is the default");

            if field.url != UrlForm::Scheme {
                let value = utf8_percent_encode(example, NON_ALPHANUMERIC);
                let url = format!("postgresql://?{}={value}", field.params[0]);
                assert_eq!(parse(&url), expected, "{url}");
            }
            let url = expected.to_url_with_password();
            assert_eq!(parse(&url), expected, "{url}");
            assert_eq!(expected.to_builder().build().unwrap(), expected, "{name}");

            for variable in field.env {
                let env = [(*variable, example)];
                let from_env = ConnectionConfig::from_env_with(&env).unwrap();
                assert_eq!(from_env, expected, "{variable}");
            }

            #[cfg(feature = "serde")]
            for key in field.serde {
                let json = format!(r#"{{"{key}": {}}}"#, (field.json)(&expected.inner));
                let from_file: ConnectionConfig =
                    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
                assert_eq!(from_file, expected, "{json}");
            }

            if field.secret {
                let shown = [
                    expected.to_url(),
                    expected.to_string(),
                    format!("{expected:?}"),
                ];
                for text in shown {
                    assert!(!text.contains(example), "{name} shown: {text}");
                }
            } else {
                assert!(format!("{expected:?}").contains(&format!("{name}: ")));
            }
        }
    }

    #[test]
    fn names_are_unique_in_each_form() {
        let forms: [fn(&FieldInfo) -> &[&str]; 3] = [|f| f.params, |f| f.env, |f| f.serde];
        for names in forms {
            let mut seen = std::collections::HashSet::new();
            for name in FIELDS.iter().flat_map(names) {
                assert!(seen.insert(*name), "`{name}` is declared twice");
            }
        }
    }

    #[test]
    fn by_param_finds_the_field_and_position() {
        let (field, index) = FieldInfo::by_param("retry_multiplier").unwrap();
        assert_eq!((field.name, index), ("retry", 2));
        assert!(FieldInfo::by_param("nope").is_none());
    }
}
