//! [`SendPlan`]: how one statement goes to the server, decided the same way
//! by both backends.

use postgres_types::{ToSql, Type};

/// How a statement is sent.
#[derive(Debug, Clone)]
pub enum SendPlan<S> {
    /// As a prepared statement (from the statement cache, or prepared just
    /// now): one round trip, no parse or plan work on the server.
    Prepared(S),
    /// As the unnamed statement with these parameter types, so that no
    /// named statement outlives the call (with the cache off, for example
    /// behind `PgBouncer` in transaction mode, which may route the next
    /// message to another server connection).
    Unnamed(Vec<Type>),
}

impl<S> SendPlan<S> {
    /// With the statement cache off, after describing a statement with
    /// parameters: send it unnamed with the described types, unless the
    /// caller passed the wrong number of parameters (then the prepared
    /// statement lets the driver report the mismatch before sending
    /// anything).
    #[must_use]
    pub fn described(statement: S, described: &[Type], given: usize) -> Self {
        if described.len() == given {
            Self::Unnamed(described.to_vec())
        } else {
            Self::Prepared(statement)
        }
    }
}

impl<S> SendPlan<S> {
    /// The plan for a statement whose parameter types are known from an
    /// earlier describe: the unnamed statement with those types.
    ///
    /// # Errors
    ///
    /// [`Encode`](crate::ErrorKind::Encode) when `given` is not the number
    /// of parameters the statement takes (the driver would find it only
    /// when the prepared statement is used, which a kept description is
    /// not).
    pub fn described_before(types: &[Type], given: usize) -> crate::Result<Self> {
        if types.len() == given {
            Ok(Self::Unnamed(types.to_vec()))
        } else {
            Err(super::parameter_count_mismatch(types.len(), given))
        }
    }
}

/// Pairs parameters with the types the server expects for them, for the
/// drivers' `*_typed` calls.
#[must_use]
pub fn typed_params<'a>(
    params: &[&'a (dyn ToSql + Sync)],
    types: &[Type],
) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params.iter().copied().zip(types.iter().cloned()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_count_mismatch_keeps_the_prepared_statement() {
        let plan = SendPlan::described("s", &[Type::INT4], 1);
        assert!(matches!(plan, SendPlan::Unnamed(types) if types == [Type::INT4]));
        assert!(matches!(
            SendPlan::described("s", &[Type::INT4], 2),
            SendPlan::Prepared("s")
        ));
        let kept = SendPlan::<()>::described_before(&[Type::INT4], 1).unwrap();
        assert!(matches!(kept, SendPlan::Unnamed(types) if types == [Type::INT4]));
        let wrong = SendPlan::<()>::described_before(&[Type::INT4], 2).unwrap_err();
        assert_eq!(wrong.kind(), crate::ErrorKind::Encode);
        assert!(
            wrong
                .to_string()
                .contains("takes 1 parameters, and 2 were given"),
            "{wrong}"
        );
        let typed = typed_params(&[&1_i32, &"x"], &[Type::INT4, Type::TEXT]);
        assert_eq!(typed.len(), 2);
        assert_eq!(typed[1].1, Type::TEXT);
    }
}
