//! The arguments of `#[instrumented(...)]`.
//!
//! Parsing collects every mistake in one pass (unknown key, duplicate key,
//! non-literal value, empty value) and reports them together, each spanned on
//! the offending token.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr, Path};

const KEYS: &str =
    "`agent`, `method`, `connection_type`, `error_if`, `ok_if`, `infallible`, `none_is`, `future`, `skip`, `crate`";

/// What `#[instrumented(...)]` said, before defaults are applied.
#[derive(Default, Clone)]
pub(crate) struct Args {
    pub(crate) agent: Option<LitStr>,
    pub(crate) method: Option<LitStr>,
    pub(crate) connection_type: Option<LitStr>,
    pub(crate) error_if: Option<Path>,
    pub(crate) ok_if: Option<Path>,
    pub(crate) infallible: Option<Span>,
    pub(crate) none_is: Option<NoneIs>,
    pub(crate) future: Option<Span>,
    pub(crate) skip: Option<Span>,
    pub(crate) krate: Option<Path>,
}

/// How a function returning `Option` reports `None`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoneIs {
    Success,
    Error,
}

/// How the status label is decided from the return value.
pub(crate) enum StatusRule {
    /// `Err` is an error, `None` as configured, anything else a success.
    ByType { none_is: NoneIs },
    /// `error_if = path`: the predicate says which values are errors.
    ErrorIf(Path),
    /// `ok_if = path`: the predicate says which values are successes.
    OkIf(Path),
    /// `infallible`: every return is a success (a panic is still an error).
    Infallible,
}

/// A fully resolved call site: every label known, ready to expand.
pub(crate) struct Site {
    pub(crate) agent: LitStr,
    pub(crate) method: LitStr,
    pub(crate) connection_type: LitStr,
    pub(crate) status: StatusRule,
    /// `future`: the return type is a boxed `dyn Future` under a name the
    /// macro does not know.
    pub(crate) future: Option<Span>,
    /// Where the runtime crate is: `::mesh_metrics` unless `crate = path`.
    pub(crate) krate: Path,
}

/// The parser for the attribute's argument list.
pub(crate) fn parser() -> impl Parser<Output = Args> {
    |input: syn::parse::ParseStream<'_>| {
        let mut args = Args::default();
        let mut errors: Option<syn::Error> = None;
        let meta_parser = syn::meta::parser(|meta| {
            if let Err(error) = args.parse_one(&meta) {
                push(&mut errors, error);
            }
            Ok(())
        });
        meta_parser.parse2(input.parse()?)?;
        match errors {
            Some(error) => Err(error),
            None => Ok(args),
        }
    }
}

fn push(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(existing) => existing.combine(error),
        None => *errors = Some(error),
    }
}

impl Args {
    fn parse_one(&mut self, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        let path = &meta.path;
        let key = path.get_ident().map(ToString::to_string).unwrap_or_default();
        match key.as_str() {
            "agent" => set(&mut self.agent, path, non_empty(string_value(meta, &key)?)?),
            "method" => set(&mut self.method, path, non_empty(string_value(meta, &key)?)?),
            "connection_type" => set(&mut self.connection_type, path, non_empty(string_value(meta, &key)?)?),
            "error_if" => set(&mut self.error_if, path, path_value(meta, &key)?),
            "ok_if" => set(&mut self.ok_if, path, path_value(meta, &key)?),
            "none_is" => {
                let value = string_value(meta, &key)?;
                let none_is = match value.value().as_str() {
                    "success" => NoneIs::Success,
                    "error" => NoneIs::Error,
                    _ => {
                        return Err(syn::Error::new(value.span(), "`none_is` takes \"success\" or \"error\""));
                    }
                };
                set(&mut self.none_is, path, none_is)
            }
            "skip" => set(&mut self.skip, path, flag(meta, "skip")?),
            "infallible" => set(&mut self.infallible, path, flag(meta, "infallible")?),
            "future" => set(&mut self.future, path, flag(meta, "future")?),
            "crate" => set(&mut self.krate, path, crate_value(meta)?),
            _ => {
                // Consume a `= value` or `(...)` so the next key still parses.
                if meta.input.peek(syn::Token![=]) {
                    let _: Expr = meta.value()?.parse()?;
                } else if meta.input.peek(syn::token::Paren) {
                    meta.parse_nested_meta(|_| Ok(()))?;
                }
                Err(syn::Error::new_spanned(
                    path,
                    format!(
                        "unknown key `{}` in #[instrumented]; expected one of: {KEYS}",
                        quote::quote!(#path).to_string().replace(' ', "")
                    ),
                ))
            }
        }
    }

    /// Applies the defaults for one function: `inherited` are the arguments of
    /// an enclosing `impl` block, overridden key by key by `self`.
    pub(crate) fn resolve(&self, inherited: Option<&Args>, sig: &syn::Signature) -> syn::Result<Site> {
        let pick = |own: &Option<LitStr>, block: fn(&Args) -> &Option<LitStr>| {
            own.clone().or_else(|| inherited.and_then(|args| block(args).clone()))
        };
        let agent = pick(&self.agent, |a| &a.agent).ok_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                "#[instrumented] needs the agent's name: write #[instrumented(agent = \"weather-agent\")] \
                 on the fn or on its impl block",
            )
        })?;
        let method = self.method.clone().unwrap_or_else(|| LitStr::new(&sig.ident.unraw_string(), sig.ident.span()));
        let connection_type = pick(&self.connection_type, |a| &a.connection_type)
            .unwrap_or_else(|| LitStr::new("client", Span::call_site()));
        let error_if = self.error_if.clone().or_else(|| inherited.and_then(|a| a.error_if.clone()));
        let ok_if = self.ok_if.clone().or_else(|| inherited.and_then(|a| a.ok_if.clone()));
        let infallible = self.infallible.or_else(|| inherited.and_then(|a| a.infallible));
        let none_is = self.none_is.or_else(|| inherited.and_then(|a| a.none_is));
        let status = match (error_if, ok_if, infallible) {
            (Some(_), Some(ok_if), _) => {
                return Err(syn::Error::new_spanned(
                    ok_if,
                    "`error_if` and `ok_if` say the same thing two ways; keep one of them",
                ));
            }
            (Some(_), None, Some(span)) | (None, Some(_), Some(span)) => {
                return Err(syn::Error::new(
                    span,
                    "`infallible` says every return is a success, which contradicts `error_if`/`ok_if`; keep one",
                ));
            }
            (Some(path), None, None) => StatusRule::ErrorIf(path),
            (None, Some(path), None) => StatusRule::OkIf(path),
            (None, None, Some(_)) => StatusRule::Infallible,
            (None, None, None) => StatusRule::ByType { none_is: none_is.unwrap_or(NoneIs::Success) },
        };
        let krate = self
            .krate
            .clone()
            .or_else(|| inherited.and_then(|a| a.krate.clone()))
            .unwrap_or_else(|| syn::parse_quote!(::mesh_metrics));
        Ok(Site { agent, method, connection_type, status, future: self.future, krate })
    }
}

trait UnrawString {
    fn unraw_string(&self) -> String;
}

impl UnrawString for syn::Ident {
    fn unraw_string(&self) -> String {
        let name = self.to_string();
        name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
    }
}

/// A key that takes no value, like `skip`.
fn flag(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<Span> {
    if meta.input.peek(syn::Token![=]) {
        // Consumed, so the keys after it still parse.
        let value: Expr = meta.value()?.parse()?;
        return Err(syn::Error::new_spanned(value, format!("`{key}` takes no value: write #[instrumented({key})]")));
    }
    if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
        return Err(meta.error(format!("`{key}` takes no value: write #[instrumented({key})]")));
    }
    Ok(meta.path.span())
}

fn set<T>(slot: &mut Option<T>, path: &Path, value: T) -> syn::Result<()> {
    if slot.is_some() {
        let key = path.get_ident().map(ToString::to_string).unwrap_or_default();
        return Err(syn::Error::new_spanned(
            path,
            format!("duplicate key `{key}` in #[instrumented]; give each key once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn string_value(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<LitStr> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(ExprLit { lit: Lit::Str(lit), .. }) => Ok(lit),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{key}` takes a string literal, e.g. {key} = \"{}\"; labels of \
                 #[instrumented] are fixed at compile time so each call site is resolved once",
                example_for(key)
            ),
        )),
    }
}

fn example_for(key: &str) -> &'static str {
    match key {
        "agent" => "weather-agent",
        "method" => "get_forecast",
        "connection_type" => "client",
        _ => "error",
    }
}

fn path_value(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<Path> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Path(path) if path.qself.is_none() => Ok(path.path),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{key}` takes the path of a predicate fn over a reference to the return value, \
                 e.g. {key} = is_retryable"
            ),
        )),
    }
}

/// `crate = path` or `crate = "path"`: where the runtime crate is when it is
/// renamed or re-exported (as serde's and tokio's `crate` keys).
pub(crate) fn crate_value(meta: &ParseNestedMeta<'_>) -> syn::Result<Path> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Path(path) if path.qself.is_none() => Ok(path.path),
        Expr::Lit(ExprLit { lit: Lit::Str(lit), .. }) => lit.parse(),
        other => Err(syn::Error::new_spanned(
            other,
            "`crate` takes the path of the mesh-metrics crate, e.g. crate = ::my_runtime::mesh_metrics",
        )),
    }
}

fn non_empty(lit: LitStr) -> syn::Result<LitStr> {
    if lit.value().is_empty() {
        return Err(syn::Error::new(lit.span(), "this label value is empty; give it a name, e.g. \"weather-agent\""));
    }
    Ok(lit)
}
