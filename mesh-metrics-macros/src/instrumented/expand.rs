//! Code generation for `#[instrumented]`.
//!
//! Only the body changes. The generated code calls `::mesh_metrics::__private`
//! with absolute paths, names its locals `__mesh_*`, and keeps the user's
//! attributes, docs, visibility, generics, signature and return type as written.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Block, ImplItem, ItemFn, ItemImpl, ReturnType, Type};

use super::args::{Args, NoneIs, Site, StatusRule};
use super::{async_shape, returns, trace_param};

/// Instruments one free fn (or a method given to the attribute on its own).
pub(crate) fn function(site: &Site, mut function: ItemFn) -> syn::Result<TokenStream> {
    check_sig(&function.sig)?;
    instrument_block(site, &mut function.sig, &mut function.block)?;
    function.attrs.extend(promql_docs(site));
    Ok(quote!(#function))
}

/// Instruments every `pub fn` of an impl block (every fn of a trait impl), or
/// those with their own `#[instrumented]`; `#[instrumented(skip)]` opts out.
pub(crate) fn impl_block(block_args: &Args, mut block: ItemImpl) -> syn::Result<TokenStream> {
    if let Some(method) = &block_args.method {
        return Err(syn::Error::new(
            method.span(),
            "`method` names a single fn; put #[instrumented(method = \"...\")] on the fn inside \
             the impl block",
        ));
    }
    if let Some(skip) = block_args.skip {
        return Err(syn::Error::new(skip, "`skip` goes on a fn inside the impl block, not on the block"));
    }
    let is_trait_impl = block.trait_.is_some();
    let mut errors: Option<syn::Error> = None;
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        let own = match take_own_args(&mut method.attrs) {
            Ok(own) => own,
            Err(error) => {
                push(&mut errors, error);
                continue;
            }
        };
        let wanted = own.is_some() || is_trait_impl || matches!(method.vis, syn::Visibility::Public(_));
        let own = own.unwrap_or_default();
        if own.skip.is_some() || !wanted {
            if let Err(error) = trace_param::reject(&mut method.sig) {
                push(&mut errors, error);
            }
            continue;
        }
        let resolved = check_sig(&method.sig).and_then(|()| own.resolve(Some(block_args), &method.sig));
        match resolved {
            Ok(site) => {
                if let Err(error) = instrument_block(&site, &mut method.sig, &mut method.block) {
                    push(&mut errors, error);
                }
                method.attrs.extend(promql_docs(&site));
            }
            Err(error) => push(&mut errors, error),
        }
    }
    match errors {
        Some(error) => Err(error),
        None => Ok(quote!(#block)),
    }
}

fn push(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(existing) => existing.combine(error),
        None => *errors = Some(error),
    }
}

/// Removes the method's own `#[instrumented(...)]` and parses it.
fn take_own_args(attrs: &mut Vec<syn::Attribute>) -> syn::Result<Option<Args>> {
    let Some(index) = attrs
        .iter()
        .position(|attr| attr.path().segments.last().is_some_and(|segment| segment.ident == "instrumented"))
    else {
        return Ok(None);
    };
    let attr = attrs.remove(index);
    let args = match &attr.meta {
        syn::Meta::Path(_) => Args::default(),
        syn::Meta::List(list) => syn::parse::Parser::parse2(super::args::parser(), list.tokens.clone())?,
        syn::Meta::NameValue(nv) => {
            return Err(syn::Error::new_spanned(nv, "write #[instrumented(key = \"value\", ...)]"));
        }
    };
    Ok(Some(args))
}

fn check_sig(sig: &syn::Signature) -> syn::Result<()> {
    if let Some(constness) = &sig.constness {
        return Err(syn::Error::new(
            constness.span(),
            "#[instrumented] cannot be used on a `const fn`: recording a call reads the clock",
        ));
    }
    Ok(())
}

fn instrument_block(site: &Site, sig: &mut syn::Signature, block: &mut Block) -> syn::Result<()> {
    let trace = trace_param::take(sig)?.map(|ident| {
        quote_spanned! {ident.span()=>
            let __mesh_trace = ::mesh_metrics::trace::AsTraceId::as_trace_id(&#ident);
        }
    });
    let statics = call_site_statics(site);
    let ret_ty = declared_return(&sig.output);
    let body = if sig.asyncness.is_some() {
        let inner = std::mem::replace(block, empty_block());
        let future = quote!(async move { #inner });
        let instrumented = instrumented_future(site, ret_ty.as_ref(), future, trace.is_some());
        quote!({ #statics #trace #instrumented.await })
    } else if let Some(future) = async_shape::future_body(sig, block) {
        let instrumented = instrumented_future(site, None, quote!(#future), trace.is_some());
        *future = syn::Expr::Verbatim(instrumented);
        let inner = std::mem::replace(block, empty_block());
        let stmts = &inner.stmts;
        quote!({ #statics #trace #(#stmts)* })
    } else {
        sync_body(site, sig, ret_ty.as_ref(), block, trace)
    };
    // Re-parsing our own tokens cannot fail for a body that parsed; if it ever
    // did, the user gets a compile error rather than a function with no body.
    *block = syn::parse2(body)?;
    Ok(())
}

/// A `# Metrics` section appended to the fn's rustdoc: the PromQL of its
/// request rate, error ratio and p95 latency, so `cargo doc` shows them next to
/// the code.
fn promql_docs(site: &Site) -> Vec<syn::Attribute> {
    // A PromQL string literal: `\` and `"` escaped.
    let quoted = |text: String| text.replace('\\', "\\\\").replace('"', "\\\"");
    let (agent, method) = (quoted(site.agent.value()), quoted(site.method.value()));
    let selector = format!("agent=\"{agent}\",method=\"{method}\"");
    let (requests, duration) = (crate::names::REQUESTS_TOTAL, crate::names::REQUEST_DURATION_SECONDS);
    let lines = [
        String::new(),
        "# Metrics".to_owned(),
        String::new(),
        format!("Recorded by `#[instrumented]` with `{selector}`. In Prometheus:"),
        String::new(),
        "```text".to_owned(),
        "# requests per second".to_owned(),
        format!("sum(rate({requests}{{{selector}}}[5m]))"),
        "# share of requests that failed".to_owned(),
        format!("sum(rate({requests}{{{selector},status=\"error\"}}[5m]))"),
        format!("  / sum(rate({requests}{{{selector}}}[5m]))"),
        "# 95th percentile latency, seconds".to_owned(),
        format!("histogram_quantile(0.95, sum by (le) (rate({duration}_bucket{{{selector}}}[5m])))"),
        "```".to_owned(),
    ];
    lines.into_iter().map(|line| syn::parse_quote!(#[doc = #line])).collect()
}

fn empty_block() -> Block {
    Block { brace_token: Default::default(), stmts: Vec::new() }
}

/// The statics of one call site: its labels, and its entry in the list the
/// exporter walks at install so every series exists at 0 from the first scrape.
fn call_site_statics(site: &Site) -> TokenStream {
    let Site { agent, method, connection_type, .. } = site;
    quote! {
        static __MESH_SITE: ::mesh_metrics::__private::CallSite =
            ::mesh_metrics::__private::CallSite::new(#agent, #method, #connection_type);
        #[::mesh_metrics::__private::linkme::distributed_slice(::mesh_metrics::__private::CALL_SITES)]
        #[linkme(crate = ::mesh_metrics::__private::linkme)]
        static __MESH_SITE_ENTRY: &::mesh_metrics::__private::CallSite = &__MESH_SITE;
    }
}

/// The return type when it can annotate a `let` (not `impl Trait`, not `!`).
fn declared_return(output: &ReturnType) -> Option<Type> {
    match output {
        ReturnType::Default => Some(syn::parse_quote!(())),
        ReturnType::Type(_, ty) if contains_impl_trait(ty) || matches!(**ty, Type::Never(_)) => None,
        ReturnType::Type(_, ty) => Some((**ty).clone()),
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    fn any_impl(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "impl",
            proc_macro2::TokenTree::Group(group) => any_impl(group.stream()),
            _ => false,
        })
    }
    any_impl(quote!(#ty))
}

/// `Instrumented::new(site, future, classify)`: counts from the first poll,
/// classifies the output when ready, and records `cancelled` if dropped first.
///
/// With a `#[trace_id]` parameter, its value (bound to `__mesh_trace`) is
/// handed to the future.
fn instrumented_future(site: &Site, ret_ty: Option<&Type>, future: TokenStream, traced: bool) -> TokenStream {
    let output = ret_ty.map_or_else(|| quote!(_), |ty| quote!(#ty));
    let status = status_of(&site.status, quote!(__mesh_ret));
    if traced {
        quote! {
            ::mesh_metrics::__private::Instrumented::<#output, _, _, _>::traced(
                &__MESH_SITE,
                #future,
                |__mesh_ret| #status,
                __mesh_trace,
            )
        }
    } else {
        quote! {
            ::mesh_metrics::__private::Instrumented::<#output, _, _>::new(
                &__MESH_SITE,
                #future,
                |__mesh_ret| #status,
            )
        }
    }
}

/// A sync body: a guard records `error` on panic and on `?` (see `residual`),
/// and every normal exit — the tail and each `return` — classifies its value.
///
/// Lint allowances go only on the statements generated here, never on a block
/// around the user's body, so the user's own warnings are reported as before.
fn sync_body(
    site: &Site,
    sig: &syn::Signature,
    ret_ty: Option<&Type>,
    block: &mut Block,
    trace: Option<TokenStream>,
) -> TokenStream {
    let annotation = ret_ty.map(|ty| quote!(: #ty));
    let status = status_of(&site.status, quote!(&__mesh_ret));
    // `let` then finish: the finish is unreachable when the value diverges
    // (`return loop {}`, a body that always returns), which is fine.
    let finish = |value: TokenStream| {
        quote_spanned! {value.span()=>
            {
                #[allow(clippy::let_unit_value)]
                let __mesh_ret #annotation = #value;
                #[allow(unreachable_code)]
                {
                    __mesh_call.finish(#status);
                    __mesh_ret
                }
            }
        }
    };
    returns::rewrite(block, &finish);
    let finished = finish(quote!(#block));
    let residual = residual_status(&site.status, &sig.output);
    let statics = call_site_statics(site);
    let enter = match trace {
        Some(trace) => quote! {
            #trace
            let __mesh_call = ::mesh_metrics::__private::CallGuard::enter_traced(&__MESH_SITE, #residual, __mesh_trace);
        },
        None => quote! {
            let __mesh_call = ::mesh_metrics::__private::CallGuard::enter(&__MESH_SITE, #residual);
        },
    };
    quote! {{
        #statics
        #enter
        #finished
    }}
}

/// The status of a return value bound to `value` (a reference expression).
fn status_of(rule: &StatusRule, value: TokenStream) -> TokenStream {
    let status = quote!(::mesh_metrics::__private::Status);
    match rule {
        StatusRule::ByType { none_is } => {
            let none_is_error = *none_is == NoneIs::Error;
            quote! {{
                #[allow(unused_imports)]
                use ::mesh_metrics::__private::{OtherStatus as _, TypedStatus as _};
                (&::mesh_metrics::__private::Probe(#value, #none_is_error)).__mesh_status()
            }}
        }
        StatusRule::ErrorIf(predicate) => quote! {
            if #predicate(#value) { #status::Error } else { #status::Success }
        },
        StatusRule::OkIf(predicate) => quote! {
            if #predicate(#value) { #status::Success } else { #status::Error }
        },
    }
}

/// What a guard dropped without a value records when not panicking: `?` left
/// with `Err` (an error) or `None` (as `none_is` says).
fn residual_status(rule: &StatusRule, output: &ReturnType) -> TokenStream {
    let returns_option = matches!(output, ReturnType::Type(_, ty) if matches!(&**ty,
        Type::Path(path) if path.path.segments.last().is_some_and(|s| s.ident == "Option")));
    let none_is_success = matches!(rule, StatusRule::ByType { none_is: NoneIs::Success });
    if returns_option && none_is_success {
        quote!(::mesh_metrics::__private::Status::Success)
    } else {
        quote!(::mesh_metrics::__private::Status::Error)
    }
}
