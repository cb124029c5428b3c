//! `#[instrumented]`: parse the arguments, find the shape of the item, expand.

pub(crate) mod args;
mod classify;
mod expand;
mod trace_param;

use proc_macro2::TokenStream;
use quote::quote;

/// Entry point: never panics; every error becomes a `compile_error!` emitted
/// beside the user's unchanged item, so the rest of the crate still compiles.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let original = item.clone();
    try_expand(args, item).unwrap_or_else(|error| {
        let mut tokens = error.into_compile_error();
        tokens.extend(without_helper_attributes(original));
        tokens
    })
}

/// The user's item without the attributes only `#[instrumented]` understands
/// (`#[trace_id]` on parameters, `#[instrumented]` on fns of an impl block):
/// given back beside an error, they would each add an "unknown attribute" error.
fn without_helper_attributes(item: TokenStream) -> TokenStream {
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(mut function)) => {
            trace_param::strip(&mut function.sig);
            quote!(#function)
        }
        Ok(syn::Item::Impl(mut block)) => {
            for item in &mut block.items {
                if let syn::ImplItem::Fn(method) = item {
                    trace_param::strip(&mut method.sig);
                    method.attrs.retain(|attr| attr.path().segments.last().is_none_or(|s| s.ident != "instrumented"));
                }
            }
            quote!(#block)
        }
        _ => item,
    }
}

fn try_expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = syn::parse::Parser::parse2(args::parser(), args)?;
    match syn::parse2::<syn::Item>(item)? {
        syn::Item::Fn(function) => expand::function(&args, function),
        syn::Item::Impl(block) => expand::impl_block(&args, block),
        other => Err(not_a_fn(&other)),
    }
}

fn not_a_fn(item: &syn::Item) -> syn::Error {
    let (what, tokens) = match item {
        syn::Item::Struct(s) => ("a struct", {
            let (keyword, ident) = (&s.struct_token, &s.ident);
            quote!(#keyword #ident)
        }),
        syn::Item::Enum(e) => ("an enum", {
            let (keyword, ident) = (&e.enum_token, &e.ident);
            quote!(#keyword #ident)
        }),
        syn::Item::Trait(t) => ("a trait definition", {
            let (keyword, ident) = (&t.trait_token, &t.ident);
            quote!(#keyword #ident)
        }),
        other => ("this item", quote!(#other)),
    };
    syn::Error::new_spanned(
        tokens,
        format!(
            "#[instrumented] cannot be used on {what}; put it on a `fn`, an `async fn`, \
             a method, or an `impl` block"
        ),
    )
}
