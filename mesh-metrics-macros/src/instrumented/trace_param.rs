//! The `#[trace_id]` parameter: where an exemplar's trace ID comes from when
//! the caller passes it explicitly.

use syn::spanned::Spanned;
use syn::{FnArg, Ident, Pat, Signature};

/// Removes `#[trace_id]` from the parameters of `sig` and returns the name of
/// the one it marked. More than one, a `self` receiver, or a pattern that does
/// not bind a single name is an error on the offending token.
pub(crate) fn take(sig: &mut Signature) -> syn::Result<Option<Ident>> {
    let mut found: Option<Ident> = None;
    let mut errors: Option<syn::Error> = None;
    let mut error = |e: syn::Error| match &mut errors {
        Some(existing) => existing.combine(e),
        None => errors = Some(e),
    };
    for input in &mut sig.inputs {
        let (attrs, pat) = match input {
            FnArg::Receiver(receiver) => (&mut receiver.attrs, None),
            FnArg::Typed(typed) => (&mut typed.attrs, Some(&*typed.pat)),
        };
        let Some(marker) = remove_marker(attrs) else { continue };
        if let Err(e) = marker.meta.require_path_only() {
            let _ = e;
            error(syn::Error::new_spanned(&marker.meta, "write `#[trace_id]` on its own, without arguments"));
            continue;
        }
        let ident = match pat {
            Some(Pat::Ident(pat)) if pat.subpat.is_none() => pat.ident.clone(),
            Some(other) => {
                error(syn::Error::new(
                    other.span(),
                    "#[trace_id] needs the parameter bound to a name, e.g. `#[trace_id] trace: TraceId`",
                ));
                continue;
            }
            None => {
                error(syn::Error::new_spanned(&marker, "#[trace_id] marks a parameter, not `self`"));
                continue;
            }
        };
        if found.is_some() {
            error(syn::Error::new(ident.span(), "only one parameter can be the #[trace_id]"));
            continue;
        }
        found = Some(ident);
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(found),
    }
}

/// Removes every `#[trace_id]` from `sig`, so that an item given back after an
/// error does not also fail on an unknown attribute.
pub(crate) fn strip(sig: &mut Signature) {
    for input in &mut sig.inputs {
        let attrs = match input {
            FnArg::Receiver(receiver) => &mut receiver.attrs,
            FnArg::Typed(typed) => &mut typed.attrs,
        };
        attrs.retain(|attr| !attr.path().is_ident("trace_id"));
    }
}

/// Removes `#[trace_id]` from a fn that is not instrumented, reporting it: it
/// would do nothing there.
pub(crate) fn reject(sig: &mut Signature) -> syn::Result<()> {
    for input in &mut sig.inputs {
        let attrs = match input {
            FnArg::Receiver(receiver) => &mut receiver.attrs,
            FnArg::Typed(typed) => &mut typed.attrs,
        };
        if let Some(marker) = remove_marker(attrs) {
            return Err(syn::Error::new_spanned(
                &marker,
                "#[trace_id] has no effect on a fn that is not instrumented; remove `#[instrumented(skip)]` \
                 or the #[trace_id]",
            ));
        }
    }
    Ok(())
}

fn remove_marker(attrs: &mut Vec<syn::Attribute>) -> Option<syn::Attribute> {
    let index = attrs.iter().position(|attr| attr.path().is_ident("trace_id"))?;
    Some(attrs.remove(index))
}
