//! Settings whose values are libpq's names (`sslmode`, `sslnegotiation`,
//! `channel_binding`): one macro writes each enum's names, parsing,
//! `Display`, `FromStr` and `serde`, and one codec reads them in every
//! configuration form.

use std::marker::PhantomData;

/// An enum whose values are written as libpq names.
pub(crate) trait LibpqEnum: crate::config::codec::FieldValue + Copy + 'static {
    /// The accepted names, for the docs' syntax column.
    #[cfg(test)]
    const SYNTAX: &'static str;

    /// libpq's name of the value.
    fn name(self) -> &'static str;

    /// Parses a libpq name (case-insensitive), reporting a failure as the
    /// rule it broke.
    fn parse_name(text: &str) -> Result<Self, String>;
}

/// Declares a libpq-named enum: the enum, `as_str`, `Display`, `FromStr`
/// (a [`Config`](crate::ErrorKind::Config) error naming the parameter) and,
/// with the `serde` feature, `Deserialize` from the name.
macro_rules! libpq_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($param:literal, $syntax:literal) {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $text:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )+
        }

        impl $name {
            /// libpq's name of this value.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl $crate::config::libpq_enum::LibpqEnum for $name {
            #[cfg(test)]
            const SYNTAX: &'static str = $syntax;

            fn name(self) -> &'static str {
                self.as_str()
            }

            fn parse_name(text: &str) -> Result<Self, String> {
                $(
                    if text.eq_ignore_ascii_case($text) {
                        return Ok(Self::$variant);
                    }
                )+
                Err(format!("must be one of {}", $syntax.replace('`', "")))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::Error;

            #[doc = concat!("Parses a libpq `", $param, "` name (case-insensitive).")]
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <Self as $crate::config::libpq_enum::LibpqEnum>::parse_name(s).map_err(|rule| {
                    $crate::error::Error::config(vec![
                        $crate::config_violation::ConfigViolation::new($param, s, rule),
                    ])
                })
            }
        }

        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                <Self as $crate::config::libpq_enum::LibpqEnum>::parse_name(&text)
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use libpq_enum;

/// The codec of a libpq-named field.
pub(crate) struct Named<T>(PhantomData<T>);

impl<T: LibpqEnum> crate::config::codec::Codec for Named<T> {
    type Value = T;
    #[cfg(test)]
    const SYNTAX: &'static str = T::SYNTAX;

    fn parse(text: &str) -> Result<T, String> {
        T::parse_name(text)
    }

    fn format(value: &T) -> String {
        value.name().to_owned()
    }

    #[cfg(test)]
    fn describe(value: &T) -> String {
        format!("`{value:?}`")
    }

    #[cfg(feature = "serde")]
    fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        let text = <Option<String> as serde::Deserialize>::deserialize(d)?;
        text.map(|text| T::parse_name(&text).map_err(serde::de::Error::custom))
            .transpose()
    }

    #[cfg(all(test, feature = "serde"))]
    fn json(value: &T) -> String {
        format!("\"{}\"", value.name())
    }
}
