//! `#[uno_db::test]`: a test with a fresh database and an engine on it.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, ItemFn, ReturnType};

/// Expands the attribute on `function`: the test becomes an inner
/// function called by a `#[test]` that prepares (and afterwards drops) the
/// database and engine; an `async fn` runs on a tokio runtime of its own
/// with an async engine.
pub(crate) fn expand(attr: TokenStream, function: ItemFn) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "#[uno_db::test] takes no arguments",
        ));
    }
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "a #[uno_db::test] function cannot be generic",
        ));
    }
    let engine = match sig.inputs.len() {
        0 => None,
        1 => match &sig.inputs[0] {
            FnArg::Typed(engine) => Some(engine.clone()),
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new_spanned(
                    receiver,
                    "a #[uno_db::test] function cannot take self",
                ));
            }
        },
        _ => {
            return Err(syn::Error::new_spanned(
                &sig.inputs,
                "a #[uno_db::test] function takes at most one parameter: its engine \
                 (Arc<dyn uno_db::blocking::Engine>, or Arc<dyn uno_db::nonblocking::Engine> \
                 for an async fn)",
            ));
        }
    };
    let name = &sig.ident;
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let (param, call) = match &engine {
        Some(engine) => (quote!(#engine), quote!(|engine| __uno_db_test(engine))),
        None => (quote!(), quote!(|_engine| __uno_db_test())),
    };
    let (asyncness, runner) = if sig.asyncness.is_some() {
        (quote!(async), quote!(run_async))
    } else {
        (quote!(), quote!(run_blocking))
    };
    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #name() -> #output {
            #asyncness fn __uno_db_test(#param) -> #output #block
            ::uno_db::__test::#runner(stringify!(#name), #call)
        }
    })
}
