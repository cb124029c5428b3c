//! The derives: `LabelValue`, `LabelSet` and `Metrics`.

pub(crate) mod label_set;
pub(crate) mod label_value;
pub(crate) mod metrics;

use proc_macro2::TokenStream;

/// Turns an expansion result into tokens: the impl, or the compile errors.
pub(crate) fn finish(result: syn::Result<TokenStream>) -> TokenStream {
    result.unwrap_or_else(syn::Error::into_compile_error)
}

/// Parses `#[name(key = "...", flag, ...)]` attributes, handing each nested
/// item to `each`; errors are collected, not returned at the first.
pub(crate) fn nested(
    attrs: &[syn::Attribute],
    name: &str,
    errors: &mut crate::names::Errors,
    mut each: impl FnMut(&syn::meta::ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(name)) {
        let result = attr.parse_nested_meta(|meta| {
            if let Err(error) = each(&meta) {
                errors.push(error);
                // Skip the rest of this item's tokens, if any, and go on.
                if meta.input.peek(syn::Token![=]) {
                    let _: syn::Token![=] = meta.input.parse()?;
                    let _: syn::Expr = meta.input.parse()?;
                }
            }
            Ok(())
        });
        if let Err(error) = result {
            errors.push(error);
        }
    }
}

/// The string literal after `key =`.
/// Sets `slot` to `value` for the key `meta` names, or refuses a key given
/// twice (which value was meant cannot be known).
pub(crate) fn once<T>(slot: &mut Option<T>, value: T, meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if slot.is_some() {
        let key = meta.path.get_ident().map_or_else(String::new, ToString::to_string);
        return Err(meta.error(format!("`{key}` is given twice in this attribute; give each key once")));
    }
    *slot = Some(value);
    Ok(())
}

pub(crate) fn string_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<syn::LitStr> {
    let value = meta.value()?;
    let expr: syn::Expr = value.parse()?;
    match expr {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(text), .. }) => Ok(text),
        other => Err(syn::Error::new_spanned(other, "write a string literal here, e.g. \"usd\"")),
    }
}

/// `crate = path` (or a string holding one) on a container attribute: where
/// the runtime crate is when it is renamed or re-exported.
pub(crate) fn crate_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<syn::Path> {
    crate::instrumented::args::crate_value(meta)
}

/// The runtime crate's path: `crate = ...` if given, else `::mesh_metrics`.
pub(crate) fn runtime(krate: Option<syn::Path>) -> TokenStream {
    krate.map_or_else(|| quote::quote!(::mesh_metrics), |path| quote::quote!(#path))
}
