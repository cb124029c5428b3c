//! Code generation for `#[instrumented]`.
//!
//! Only the body changes. The generated code calls `::mesh_metrics::__private`
//! with absolute paths, names its locals `__mesh_*`, and keeps the user's
//! attributes, docs, visibility, generics, signature and return type as written.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Block, ImplItem, ItemFn, ItemImpl, ReturnType, Type};

use super::args::{Args, NoneIs, Site};
use super::classify::{self, Generics, Outcome, Shape};
use super::trace_param;

/// Instruments one free fn (or a method given to the attribute on its own).
pub(crate) fn function(args: &Args, mut function: ItemFn) -> syn::Result<TokenStream> {
    check_const(&function.sig)?;
    let site = args.resolve(None, &function.sig)?;
    let generics = Generics::new(&function.sig, None);
    instrument_block(&site, &generics, &function.attrs, &mut function.sig, &mut function.block)?;
    function.attrs.extend(promql_docs(&site));
    Ok(quote!(#function))
}

/// Instruments every `pub fn` of an impl block (every fn of a trait impl), or
/// those with their own `#[instrumented]`; `#[instrumented(skip)]` opts out,
/// and a `const fn` is left alone unless it asks to be instrumented.
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
    if let Some(future) = block_args.future {
        return Err(syn::Error::new(future, "`future` describes one fn's return type; put it on that fn"));
    }
    let is_trait_impl = block.trait_.is_some();
    let (impl_generics, self_ty) = (block.generics.clone(), (*block.self_ty).clone());
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
        let asked = own.is_some();
        let wanted = asked || is_trait_impl || matches!(method.vis, syn::Visibility::Public(_));
        let own = own.unwrap_or_default();
        // A `const fn` cannot read the clock; one the user did not single out
        // is left as written, like a private fn.
        let skipped_const = method.sig.constness.is_some() && !asked;
        if own.skip.is_some() || !wanted || skipped_const {
            if let Err(error) = trace_param::reject(&mut method.sig) {
                push(&mut errors, error);
            }
            continue;
        }
        let generics = Generics::new(&method.sig, Some((&impl_generics, &self_ty)));
        let resolved = check_const(&method.sig).and_then(|()| own.resolve(Some(block_args), &method.sig));
        match resolved {
            Ok(site) => {
                if let Err(error) =
                    instrument_block(&site, &generics, &method.attrs, &mut method.sig, &mut method.block)
                {
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

fn check_const(sig: &syn::Signature) -> syn::Result<()> {
    if let Some(constness) = &sig.constness {
        return Err(syn::Error::new(
            constness.span(),
            "#[instrumented] cannot be used on a `const fn`: recording a call reads the clock; \
             remove `const`, or the attribute",
        ));
    }
    Ok(())
}

/// Replaces the body with one that measures it. The user's body becomes the
/// body of a closure called exactly once, so every way out of it — the tail,
/// `return` (also from inside the user's macros), `?` — comes out at one
/// place, where its value is classified.
fn instrument_block(
    site: &Site,
    generics: &Generics<'_>,
    attrs: &[syn::Attribute],
    sig: &mut syn::Signature,
    block: &mut Block,
) -> syn::Result<()> {
    let plan = classify::plan(site, sig, generics)?;
    let krate = &site.krate;
    let private = quote!(#krate::__private);
    let is_track_caller = |attr: &&syn::Attribute| {
        attr.path().is_ident("track_caller")
            || (attr.path().is_ident("cfg_attr") && {
                let tokens = attr.meta.to_token_stream().to_string();
                tokens.split(|c: char| !c.is_alphanumeric() && c != '_').any(|word| word == "track_caller")
            })
    };
    if let Some(track_caller) = attrs.iter().find(is_track_caller)
        && !matches!(plan.shape, Shape::Async)
    {
        return Err(syn::Error::new_spanned(
            track_caller,
            "#[instrumented] runs the body inside a closure, where `#[track_caller]` would report the \
             wrong location; remove one of the two attributes",
        ));
    }
    let trace_ident = trace_param::take(sig)?;
    let trace = trace_ident.as_ref().map(|ident| {
        quote_spanned! {ident.span()=>
            let __mesh_trace = #krate::trace::AsTraceId::as_trace_id(&#ident);
        }
    });
    let source = if trace.is_some() { quote!(__mesh_trace) } else { quote!(::core::option::Option::None) };
    let statics = call_site_statics(site, &sig.ident);
    let probe = plan.probe.as_ref().map(probe_item);
    let inner = std::mem::replace(block, empty_block());
    // The type the body evaluates to, `impl Trait` left to inference.
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => {
            let ty = classify::annotation(ty);
            quote!(#ty)
        }
    };
    let classify = classifier(&plan, &private);
    let inner = rebinding_params(sig, inner, trace_ident.as_ref());
    let call = match plan.shape {
        Shape::Async => quote! {
            #private::Instrumented::<#output, _, _>::new(&__MESH_SITE, async move #inner, #classify, #source).await
        },
        Shape::ReturnsFuture { boxed } => {
            let annotation = match &sig.output {
                ReturnType::Type(_, ty) if !contains_impl_trait(ty) => Some(quote!(-> #ty)),
                _ => None,
            };
            // A panic while the future is built is a call that failed.
            let instrumented = quote! {
                #private::build_future(&__MESH_SITE, #source, move || #annotation #inner, #classify)
            };
            if boxed { quote!(#private::Box::pin(#instrumented)) } else { instrumented }
        }
        Shape::Sync => quote! {
            #private::run_sync(&__MESH_SITE, #source, move || -> #output #inner, #classify)
        },
    };
    let body = quote! {{
        #statics
        #probe
        #trace
        #call
    }};
    // Re-parsing our own tokens cannot fail for a body that parsed; if it ever
    // did, the user gets a compile error rather than a function with no body.
    *block = syn::parse2(body)?;
    Ok(())
}

/// An item that fails to compile if `ty` names a generic parameter of an
/// enclosing impl block, which an attribute on a method cannot see (inner
/// items cannot use an outer item's generics: E0401).
fn probe_item(ty: &Type) -> TokenStream {
    struct Static;
    impl syn::visit_mut::VisitMut for Static {
        fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
            *lifetime = syn::Lifetime::new("'static", lifetime.span());
        }
        fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
            reference.lifetime = Some(syn::Lifetime::new("'static", reference.and_token.span));
            syn::visit_mut::visit_type_reference_mut(self, reference);
        }
    }
    let mut ty = ty.clone();
    syn::visit_mut::VisitMut::visit_type_mut(&mut Static, &mut ty);
    // Named so that rustc's "generic parameter used in this inner function"
    // label, which points at the attribute, says what to do.
    let name = syn::Ident::new(
        "__mesh_return_type_is_generic__put_the_attribute_on_the_impl_block_or_add_infallible_error_if_or_ok_if",
        proc_macro2::Span::call_site(),
    );
    quote_spanned! {ty.span()=>
        #[allow(dead_code, non_snake_case)]
        fn #name(_: ::core::marker::PhantomData<#ty>) {}
    }
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

/// The statics of one call site: its labels and where it is, and its entry
/// in the list the exporter walks at install so every series exists at 0
/// from the first scrape.
fn call_site_statics(site: &Site, ident: &syn::Ident) -> TokenStream {
    let Site { agent, method, connection_type, krate, .. } = site;
    let private = quote!(#krate::__private);
    let name = ident.to_string();
    let location = quote_spanned! {ident.span()=>
        ::core::concat!(::core::module_path!(), "::", #name, " at ", ::core::file!(), ":", ::core::line!())
    };
    let linkme = quote!(#private::linkme);
    quote! {
        static __MESH_SITE: #private::CallSite =
            #private::CallSite::new(#agent, #method, #connection_type, #location);
        #[#linkme::distributed_slice(#private::CALL_SITES)]
        #[linkme(crate = #linkme)]
        static __MESH_SITE_ENTRY: &#private::CallSite = &__MESH_SITE;
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

/// The body, starting with `let a = a;` for each parameter binding in
/// declaration order: the closure (or async block) then takes every
/// parameter whole, and drops them in reverse declaration order when the body
/// ends, as the fn did (`self`, captured as a whole, drops last, as before).
/// The compiler's own `async fn` lowering does the same.
///
/// A `mut` on a parameter moves to its rebinding (it is part of the pattern,
/// not of the fn's type, so callers see no change).
///
/// The `#[trace_id]` parameter was read before the body, so it is used even
/// when the body does not mention it.
fn rebinding_params(sig: &mut syn::Signature, mut body: Block, trace: Option<&syn::Ident>) -> Block {
    /// Collects the bindings, and moves their `mut` to the rebinding.
    struct Bindings(Vec<syn::PatIdent>);
    impl syn::visit_mut::VisitMut for Bindings {
        fn visit_pat_ident_mut(&mut self, binding: &mut syn::PatIdent) {
            if binding.by_ref.is_none() && binding.ident != "self" {
                self.0.push(binding.clone());
                binding.mutability = None;
            }
            syn::visit_mut::visit_pat_ident_mut(self, binding);
        }
    }
    let mut bindings = Bindings(Vec::new());
    for input in &mut sig.inputs {
        if let syn::FnArg::Typed(typed) = input {
            syn::visit_mut::VisitMut::visit_pat_mut(&mut bindings, &mut typed.pat);
        }
    }
    let rebinds = bindings.0.into_iter().map(|binding| -> syn::Stmt {
        let (mutability, ident) = (&binding.mutability, &binding.ident);
        let read_before = (Some(ident) == trace).then(|| quote!(#[allow(unused_variables)]));
        syn::parse_quote_spanned! {ident.span()=>
            #[allow(clippy::redundant_locals)]
            #read_before
            let #mutability #ident = #ident;
        }
    });
    body.stmts.splice(0..0, rebinds);
    body
}

/// A closure from a reference to the value to its status; it looks through
/// the references the value is behind.
fn classifier(plan: &super::classify::Plan, private: &TokenStream) -> TokenStream {
    let status = quote!(#private::Status);
    let value = quote!(__mesh_ret);
    let derefs = (0..plan.derefs).map(|_| quote!(let #value = &**#value;));
    let body = match &plan.outcome {
        Outcome::Success => quote!({ let _ = #value; #status::Success }),
        Outcome::Result => quote!(#private::result_status(#value)),
        Outcome::Option(none_is) => {
            let none_is_error = *none_is == NoneIs::Error;
            quote!(#private::option_status(#value, #none_is_error))
        }
        Outcome::ByType(none_is) => {
            let none_is_error = *none_is == NoneIs::Error;
            quote! {{
                #[allow(unused_imports)]
                use #private::{FutureStatus as _, OtherStatus as _, TypedStatus as _};
                (&#private::Probe(#value, #none_is_error)).__mesh_status()
            }}
        }
        Outcome::ErrorIf(predicate) => quote! {
            if #predicate(#value) { #status::Error } else { #status::Success }
        },
        Outcome::OkIf(predicate) => quote! {
            if #predicate(#value) { #status::Success } else { #status::Error }
        },
    };
    quote!(|#value| { #(#derefs)* #body })
}
