//! The expansion of `#[derive(FromRow)]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, LitStr, Path};

/// How one field is read.
enum Source {
    /// From the column of this name.
    Column(String),
    /// From the whole row, as a nested `FromRow`.
    Flatten,
}

pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let krate = crate_path(input)?;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "FromRow can be derived for structs with named fields only",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "FromRow can be derived for structs with named fields only",
        ));
    };
    let mut reads = Vec::new();
    for field in &fields.named {
        let Some(name) = &field.ident else {
            continue;
        };
        let ty = &field.ty;
        let read = match source(field)? {
            Source::Column(column) => quote! { row.try_get::<_, #ty>(#column)? },
            Source::Flatten => {
                quote! { <#ty as #krate::FromRow>::from_row(row)? }
            }
        };
        reads.push(quote! { #name: #read });
    }
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics #krate::FromRow for #ident #ty_generics #where_clause {
            fn from_row(row: &#krate::Row) -> #krate::Result<Self> {
                ::core::result::Result::Ok(Self { #(#reads,)* })
            }
        }
    })
}

/// `#[uno_db(crate = "...")]` on the struct, else `::uno_db`.
fn crate_path(input: &DeriveInput) -> syn::Result<Path> {
    let mut path: Path = syn::parse_quote!(::uno_db);
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("uno_db")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                path = meta.value()?.parse::<LitStr>()?.parse()?;
                Ok(())
            } else {
                Err(meta.error("expected `crate = \"path\"` on the struct"))
            }
        })?;
    }
    Ok(path)
}

/// Where a field comes from: its attributes, else its own name.
fn source(field: &syn::Field) -> syn::Result<Source> {
    let mut found = None;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("uno_db")) {
        attr.parse_nested_meta(|meta| {
            let next = if meta.path.is_ident("rename") {
                Source::Column(meta.value()?.parse::<LitStr>()?.value())
            } else if meta.path.is_ident("flatten") {
                Source::Flatten
            } else {
                return Err(meta.error("expected `rename = \"column\"` or `flatten`"));
            };
            if found.replace(next).is_some() {
                return Err(meta.error("a field takes one of `rename` and `flatten`"));
            }
            Ok(())
        })?;
    }
    Ok(found.unwrap_or_else(|| {
        let name = field
            .ident
            .as_ref()
            .map(|ident| ident.to_string().trim_start_matches("r#").to_owned())
            .unwrap_or_default();
        Source::Column(name)
    }))
}
