//! What a call is, decided from the signature alone: how it is measured (a
//! sync body, an `async fn`, or a fn that returns a future) and how its value
//! becomes the `status` label.
//!
//! The body's shape never matters. Where the signature does not tell (a bare
//! type parameter, an associated type, an alias over a type parameter), this
//! refuses with an error on the return type that says what to write: a status
//! that is silently wrong is worse than a compile error.

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{GenericArgument, PathArguments, ReturnType, Type, TypeParamBound};

use super::args::{NoneIs, Site, StatusRule};

/// How the call is measured.
pub(crate) enum Shape {
    /// A sync fn: from entry to the body's value.
    Sync,
    /// An `async fn`: over the life of its future.
    Async,
    /// A sync fn whose return type is a future: over the life of the future
    /// it returns. `boxed` when the type is a `Pin<Box<dyn Future>>` (by any
    /// name), so the instrumented future is boxed again to fit it.
    ReturnsFuture { boxed: bool },
}

/// How the value (the body's, or the future's output) becomes a status.
pub(crate) enum Outcome {
    /// Every value is a success: `()`, `!`, an opaque `impl Trait`, or
    /// `infallible`.
    Success,
    /// `core::result::Result` by name (`Result`, `io::Result`, ...): `Err` is
    /// an error. Checked by type where it is used.
    Result,
    /// `core::option::Option` by name: `None` as `none_is` says.
    Option(NoneIs),
    /// A concrete type the signature names: resolved by type where the fn is
    /// defined (a `Result`/`Option` alias is classified as what it stands for).
    ByType(NoneIs),
    /// `error_if = path`.
    ErrorIf(syn::Path),
    /// `ok_if = path`.
    OkIf(syn::Path),
}

/// What the expansion needs to know about one fn.
pub(crate) struct Plan {
    pub(crate) shape: Shape,
    pub(crate) outcome: Outcome,
    /// Set when the return type names a type whose generic-ness the macro
    /// cannot see (a method's attribute does not see its impl block's
    /// generics): the expansion adds an item that fails to compile if it is
    /// one.
    pub(crate) probe: Option<Type>,
    /// How many references the value is behind (`&Result<..>` is 1): the
    /// classifier looks through them.
    pub(crate) derefs: usize,
}

/// The generic context the macro can see.
pub(crate) struct Generics<'a> {
    /// Type parameters of the fn and, for an attribute on an impl block, of
    /// the block.
    pub(crate) params: HashSet<String>,
    /// The impl block's self type, when the attribute is on the block.
    pub(crate) self_ty: Option<&'a Type>,
    /// Whether the attribute sits on the fn itself: the enclosing impl
    /// block's generics (if any) are then invisible.
    pub(crate) fn_level: bool,
}

impl<'a> Generics<'a> {
    pub(crate) fn new(sig: &syn::Signature, block: Option<(&'a syn::Generics, &'a Type)>) -> Self {
        let mut params: HashSet<String> = sig.generics.type_params().map(|p| p.ident.to_string()).collect();
        if let Some((generics, _)) = block {
            params.extend(generics.type_params().map(|p| p.ident.to_string()));
        }
        Self { params, self_ty: block.map(|(_, ty)| ty), fn_level: block.is_none() }
    }
}

pub(crate) fn plan(site: &Site, sig: &syn::Signature, generics: &Generics<'_>) -> syn::Result<Plan> {
    let declared: Type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let (shape, value_ty) = if sig.asyncness.is_some() {
        (Shape::Async, Some(declared.clone()))
    } else if let Some((boxed, output)) = future_type(&declared) {
        (Shape::ReturnsFuture { boxed }, output)
    } else if site.future.is_some() {
        // Marked by the user: a `Pin<Box<dyn Future>>` under a name we do not
        // know. Its output type is not in the signature.
        (Shape::ReturnsFuture { boxed: true }, None)
    } else {
        (Shape::Sync, Some(declared.clone()))
    };
    if let (Some(future), Shape::Sync) = (site.future, &shape) {
        return Err(syn::Error::new(future, "`future` is for a fn that returns a future; this one does not"));
    }
    let none_is = match &site.status {
        StatusRule::ByType { none_is } => *none_is,
        StatusRule::ErrorIf(path) => {
            return Ok(Plan { shape, outcome: Outcome::ErrorIf(path.clone()), probe: None, derefs: 0 });
        }
        StatusRule::OkIf(path) => {
            return Ok(Plan { shape, outcome: Outcome::OkIf(path.clone()), probe: None, derefs: 0 });
        }
        StatusRule::Infallible => return Ok(Plan { shape, outcome: Outcome::Success, probe: None, derefs: 0 }),
    };
    let Some(value_ty) = value_ty else {
        // A user-marked future: its output is classified by type where the fn
        // is defined, which is sound only if the declared type is concrete.
        check_concrete(&declared, generics, "the future's output")?;
        let probe = needs_probe(&declared, generics).then(|| declared.clone());
        return Ok(Plan { shape, outcome: Outcome::ByType(none_is), probe, derefs: 0 });
    };
    let (value_ty, derefs) = behind_references(&value_ty);
    let outcome = outcome_of(value_ty, none_is, generics)?;
    let probe = matches!(outcome, Outcome::ByType(_)) && needs_probe(value_ty, generics);
    Ok(Plan { shape, outcome, probe: probe.then(|| value_ty.clone()), derefs })
}

/// The type behind any references (and brackets), and how many references.
fn behind_references(ty: &Type) -> (&Type, usize) {
    match ty {
        Type::Paren(inner) => behind_references(&inner.elem),
        Type::Group(inner) => behind_references(&inner.elem),
        Type::Reference(reference) => {
            let (inner, derefs) = behind_references(&reference.elem);
            (inner, derefs + 1)
        }
        other => (other, 0),
    }
}

fn outcome_of(ty: &Type, none_is: NoneIs, generics: &Generics<'_>) -> syn::Result<Outcome> {
    match ty {
        Type::Never(_) | Type::ImplTrait(_) => return Ok(Outcome::Success),
        Type::Tuple(tuple) if tuple.elems.is_empty() => return Ok(Outcome::Success),
        Type::Path(path) if path.qself.is_none() => match last_ident(&path.path).as_deref() {
            Some("Result") => return Ok(Outcome::Result),
            Some("Option") => return Ok(Outcome::Option(none_is)),
            _ => {}
        },
        _ => {}
    }
    check_concrete(ty, generics, "the return value")?;
    Ok(Outcome::ByType(none_is))
}

/// Refuses a type whose head (is it a `Result`? an `Option`?) the compiler
/// only knows per call site, where the status cannot be decided any more.
fn check_concrete(ty: &Type, generics: &Generics<'_>, what: &str) -> syn::Result<()> {
    let fix = "say how to classify it: `error_if = path` or `ok_if = path` (a fn taking a reference to \
               the value), or `infallible` if every return is a success";
    let Type::Path(path) = ty else { return Ok(()) };
    if path.qself.is_some() {
        return Err(syn::Error::new(
            ty.span(),
            format!(
                "#[instrumented] cannot tell whether {what} of type `{}` is an error: it is an associated type; write the type it stands for, or {fix}",
                tokens(ty)
            ),
        ));
    }
    let segments = &path.path.segments;
    let first = segments.first().map(|s| s.ident.to_string()).unwrap_or_default();
    let is_param = |name: &str| generics.params.contains(name);
    if segments.len() == 1 && matches!(segments[0].arguments, PathArguments::None) {
        if is_param(&first) {
            return Err(syn::Error::new(
                ty.span(),
                format!(
                    "#[instrumented] cannot tell whether {what} of type `{first}` is an error: `{first}` is a type parameter, so it is only known where the fn is called; {fix}"
                ),
            ));
        }
        if first == "Self" && generics.self_ty.is_some_and(|self_ty| is_bare_param(self_ty, generics)) {
            return Err(syn::Error::new(
                ty.span(),
                format!(
                    "#[instrumented] cannot tell whether {what} of type `Self` is an error: this impl is for a type parameter; {fix}"
                ),
            ));
        }
        return Ok(());
    }
    if segments.len() > 1 && (is_param(&first) || first == "Self") {
        return Err(syn::Error::new(
            ty.span(),
            format!(
                "#[instrumented] cannot tell whether {what} of type `{}` is an error: it is an associated type; write the type it stands for, or {fix}",
                tokens(ty)
            ),
        ));
    }
    let head = last_ident(&path.path).unwrap_or_default();
    // `QueryResult<T>`, `MaybeOption<T>`: aliases of `Result`/`Option` by
    // name, whose head the compiler knows whatever `T` is.
    let result_or_option_alias = head.ends_with("Result") || head.ends_with("Option");
    if !KNOWN_CONTAINERS.contains(&head.as_str()) && !result_or_option_alias && mentions_param(ty, generics) {
        return Err(syn::Error::new(
            ty.span(),
            format!(
                "#[instrumented] cannot tell whether {what} of type `{}` is an error: it depends on a type parameter, and if `{head}` is an alias the macro cannot see through it; {fix}",
                tokens(ty)
            ),
        ));
    }
    Ok(())
}

/// Types that are never a `Result` or an `Option`, whatever their parameters.
const KNOWN_CONTAINERS: &[&str] = &[
    "Vec",
    "VecDeque",
    "Box",
    "Arc",
    "Rc",
    "HashMap",
    "HashSet",
    "BTreeMap",
    "BTreeSet",
    "Cow",
    "PhantomData",
    "Cell",
    "RefCell",
    "Mutex",
    "RwLock",
    "Pin",
    "String",
];

fn is_bare_param(ty: &Type, generics: &Generics<'_>) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.len() == 1
        && matches!(p.path.segments[0].arguments, PathArguments::None)
        && generics.params.contains(&p.path.segments[0].ident.to_string()))
}

fn mentions_param(ty: &Type, generics: &Generics<'_>) -> bool {
    fn walk(tokens: TokenStream, params: &HashSet<String>) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => params.contains(&ident.to_string()),
            proc_macro2::TokenTree::Group(group) => walk(group.stream(), params),
            _ => false,
        })
    }
    walk(quote!(#ty), &generics.params)
}

/// An attribute on a method does not see its impl block's generics: a return
/// type that could be one of them gets a compile-time probe (see [`Plan`]).
fn needs_probe(ty: &Type, generics: &Generics<'_>) -> bool {
    const PRIMITIVES: &[&str] = &[
        "bool", "char", "str", "String", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128",
        "isize", "f32", "f64", "Self",
    ];
    let (ty, _) = behind_references(ty);
    let Type::Path(path) = ty else { return false };
    let Some(first) = path.path.segments.first() else { return false };
    let mentions_self = quote!(#ty).into_iter().any(|t| matches!(t, proc_macro2::TokenTree::Ident(i) if i == "Self"));
    generics.fn_level
        && !mentions_self
        && !mentions_param(ty, generics)
        && path.qself.is_none()
        && path.path.leading_colon.is_none()
        && !generics.params.contains(&first.ident.to_string())
        && !PRIMITIVES.contains(&first.ident.to_string().as_str())
        && first.ident.to_string().chars().next().is_some_and(char::is_uppercase)
}

/// `impl Future<Output = T>`, `Pin<Box<dyn Future<Output = T> ..>>`,
/// `BoxFuture<'a, T>` or `LocalBoxFuture<'a, T>`: whether the value is boxed,
/// and `T` where the signature names it.
fn future_type(ty: &Type) -> Option<(bool, Option<Type>)> {
    match ty {
        Type::Paren(inner) => future_type(&inner.elem),
        Type::Group(inner) => future_type(&inner.elem),
        Type::ImplTrait(bounds) => future_output(&bounds.bounds).map(|output| (false, output)),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            let args = match &last.arguments {
                PathArguments::AngleBracketed(args) => Some(&args.args),
                _ => None,
            };
            match last.ident.to_string().as_str() {
                "BoxFuture" | "LocalBoxFuture" => {
                    let output = args?.iter().find_map(|arg| match arg {
                        GenericArgument::Type(ty) => Some(ty.clone()),
                        _ => None,
                    });
                    Some((true, output))
                }
                "Pin" => {
                    let Some(GenericArgument::Type(Type::Path(boxed))) = args?.first() else { return None };
                    let boxed = boxed.path.segments.last().filter(|s| s.ident == "Box")?;
                    let PathArguments::AngleBracketed(inner) = &boxed.arguments else { return None };
                    let Some(GenericArgument::Type(Type::TraitObject(object))) = inner.args.first() else {
                        return None;
                    };
                    future_output(&object.bounds).map(|output| (true, output))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn future_output(bounds: &syn::punctuated::Punctuated<TypeParamBound, syn::Token![+]>) -> Option<Option<Type>> {
    bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else { return None };
        let last = bound.path.segments.last().filter(|s| s.ident == "Future")?;
        let output = match &last.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
                GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(assoc.ty.clone()),
                _ => None,
            }),
            _ => None,
        };
        Some(output)
    })
}

fn last_ident(path: &syn::Path) -> Option<String> {
    path.segments.last().map(|s| s.ident.to_string())
}

fn tokens(ty: &Type) -> String {
    quote!(#ty).to_string().replace(" < ", "<").replace(" >", ">").replace(" ,", ",").replace(" :: ", "::")
}

/// `ty` as a closure's return annotation: `impl Trait` becomes `_` (inferred).
pub(crate) fn annotation(ty: &Type) -> Type {
    struct Infer;
    impl syn::visit_mut::VisitMut for Infer {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if matches!(ty, Type::ImplTrait(_)) {
                *ty = syn::parse_quote!(_);
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    let mut ty = ty.clone();
    syn::visit_mut::VisitMut::visit_type_mut(&mut Infer, &mut ty);
    ty
}
