//! Macros of uno-db, re-exported by the `uno-db` crate:
//! `#[derive(FromRow)]` (feature `derive`) and `#[uno_db::test]` (feature
//! `test`).

mod from_row;
mod test_attr;

use proc_macro::TokenStream;

/// Derives `FromRow` for a struct with named fields: each field is read
/// from the column of its name with `Row::try_get`, so a missing or
/// mistyped column is a `Decode` error naming it and an `Option` field
/// takes NULL.
///
/// Attributes:
/// - `#[uno_db(rename = "column")]` on a field: read another column;
/// - `#[uno_db(flatten)]` on a field: build it (a `FromRow` type) from the
///   same row;
/// - `#[uno_db(crate = "path")]` on the struct: where `FromRow`, `Row` and
///   `Result` live (default `::uno_db`; `uno_db_core` for code that uses
///   the core crate directly).
///
/// ```
/// use uno_db_core::{FromRow, Row, Type};
/// use uno_db_macros::FromRow;
///
/// #[derive(FromRow)]
/// #[uno_db(crate = "uno_db_core")] // through the facade: not needed
/// struct Todo {
///     id: i64,
///     #[uno_db(rename = "title")]
///     name: String,
///     note: Option<String>,
/// }
///
/// let row = Row::builder()
///     .column("id", Type::INT8, 1_i64)
///     .column("title", Type::TEXT, "write docs")
///     .column("note", Type::TEXT, None::<&str>)
///     .build()?;
/// let todo = Todo::from_row(&row)?;
/// assert_eq!((todo.id, todo.name.as_str(), todo.note), (1, "write docs", None));
/// # Ok::<(), uno_db_core::Error>(())
/// ```
#[proc_macro_derive(FromRow, attributes(uno_db))]
pub fn derive_from_row(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    from_row::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// A test with a fresh database of its own and an engine on it, like
/// `#[sqlx::test]`; through the `uno-db` crate (feature `test`) as
/// `#[uno_db::test]`.
///
/// The function takes its engine (or nothing): `Arc<dyn
/// uno_db::blocking::Engine>` for a plain `fn`, `Arc<dyn
/// uno_db::nonblocking::Engine>` for an `async fn`, which runs on a tokio
/// runtime of its own. The database comes from the test kit
/// (`uno_db_testkit::TestDb`: `UNO_DB_TEST_URL`, else the local server,
/// else a throwaway cluster) and is dropped afterwards, also when the test
/// panics. It may return `()` or a `Result`, as a `#[test]` may; other
/// attributes (`#[should_panic]`, `#[ignore]`) apply as usual. The `uno-db`
/// crate's `test` documents it with compiled examples.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse_macro_input!(item as syn::ItemFn);
    test_attr::expand(attr.into(), function)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
