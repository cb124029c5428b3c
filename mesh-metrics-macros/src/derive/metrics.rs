//! `#[derive(Metrics)]`: a struct of typed metrics, registered together.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

use super::{crate_value, nested, once, runtime, string_value};
use crate::names::{self, Errors, unraw};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

struct Metric {
    field: syn::Ident,
    ty: syn::Type,
    name: String,
    help: String,
    unit: Option<String>,
    buckets: Option<Vec<f64>>,
    native: bool,
}

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let ident = &input.ident;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            ident,
            "#[derive(Metrics)] goes on a struct whose fields are `mesh_metrics::Counter<L>`, `Gauge<L>` or `Histogram<L>`",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(
            &data.fields,
            "a metrics struct has named fields: the field name is the metric name",
        ));
    };
    if !input.generics.params.is_empty() {
        errors.add(&input.generics, "a metrics struct cannot be generic");
    }
    if fields.named.is_empty() {
        errors.add(
            ident,
            "a metrics struct needs at least one metric field, e.g. `requests_total: mesh_metrics::Counter<Labels>`",
        );
    }
    let mut prefix: Option<LitStr> = None;
    let mut krate: Option<syn::Path> = None;
    nested(&input.attrs, "metrics", &mut errors, |meta| {
        if meta.path.is_ident("crate") {
            krate = Some(crate_value(meta)?);
            Ok(())
        } else if meta.path.is_ident("prefix") {
            let value = string_value(meta)?;
            if !names::is_metric_name(&value.value()) {
                return Err(syn::Error::new_spanned(
                    &value,
                    "the prefix starts every metric name: letters, digits, `_` and `:`, not starting with a digit, \
                     e.g. \"mcp_mesh_business\"",
                ));
            }
            once(&mut prefix, value, meta)
        } else {
            Err(meta.error("#[metrics(...)] takes `prefix = \"...\"` and `crate = path`"))
        }
    });

    let mut metrics: Vec<Metric> = Vec::new();
    for field in &fields.named {
        let Some(field_ident) = &field.ident else { continue };
        let Some(kind) = kind_of(&field.ty) else {
            errors.add(
                &field.ty,
                "a metric field is `mesh_metrics::Counter<L>`, `mesh_metrics::Gauge<L>` or `mesh_metrics::Histogram<L>` \
                 (L a `#[derive(LabelSet)]` struct, or nothing for no labels)",
            );
            continue;
        };
        let mut explicit: Option<LitStr> = None;
        let mut unit: Option<LitStr> = None;
        let mut buckets: Option<(TokenStream, Vec<f64>)> = None;
        let mut native: Option<syn::Path> = None;
        nested(&field.attrs, "metric", &mut errors, |meta| {
            if meta.path.is_ident("name") {
                once(&mut explicit, string_value(meta)?, meta)?;
            } else if meta.path.is_ident("unit") {
                once(&mut unit, string_value(meta)?, meta)?;
            } else if meta.path.is_ident("buckets") {
                let array: syn::ExprArray = meta.value()?.parse()?;
                once(&mut buckets, (array.to_token_stream(), bounds(&array)?), meta)?;
            } else if meta.path.is_ident("native") {
                if meta.input.peek(syn::Token![=]) {
                    return Err(meta.error("`native` takes no value: write `#[metric(native)]`"));
                }
                once(&mut native, meta.path.clone(), meta)?;
            } else {
                return Err(meta
                    .error("#[metric(...)] takes `name = \"...\"`, `unit = \"...\"`, `buckets = [...]` and `native`"));
            }
            Ok(())
        });
        let (name, name_span) = match &explicit {
            Some(literal) => (literal.value(), literal.to_token_stream()),
            None => {
                let field_name = unraw(field_ident);
                let name =
                    prefix.as_ref().map_or_else(|| field_name.clone(), |p| format!("{}_{field_name}", p.value()));
                (name, field_ident.to_token_stream())
            }
        };
        check_name(&mut errors, &name, &name_span, kind);
        if let Some(unit) = &unit {
            let base = name.strip_suffix("_total").unwrap_or(&name);
            if !base.ends_with(&format!("_{}", unit.value())) {
                errors.add(
                    unit,
                    format!(
                        "OpenMetrics requires the unit to end the name: call it `{base}_{unit}{total}` or drop the unit",
                        unit = unit.value(),
                        total = if kind == Kind::Counter { "_total" } else { "" }
                    ),
                );
            }
        }
        if let Some((tokens, _)) = &buckets
            && kind != Kind::Histogram
        {
            errors.add(tokens, "`buckets` are for a `Histogram` field");
        }
        if let Some(path) = &native
            && kind != Kind::Histogram
        {
            errors.add(path, "`native` is for a `Histogram` field: native histograms have sparse buckets");
        }
        let help = names::doc_comment(&field.attrs).unwrap_or_else(|| {
            errors.add(
                field_ident,
                format!("`{name}` needs a doc comment (`/// ...`): it becomes the metric's HELP text"),
            );
            String::new()
        });
        if let Some(first) = metrics.iter().find(|metric| metric.name == name) {
            errors.add(
                &name_span,
                format!("the metric `{name}` is already field `{}`; each metric is declared once", first.field),
            );
        }
        metrics.push(Metric {
            field: field_ident.clone(),
            ty: field.ty.clone(),
            name,
            help,
            unit: unit.map(|u| u.value()),
            buckets: buckets.map(|(_, b)| b),
            native: native.is_some(),
        });
    }
    errors.finish()?;
    Ok(implementation(ident, &metrics, &runtime(krate)))
}

fn kind_of(ty: &syn::Type) -> Option<Kind> {
    let syn::Type::Path(path) = ty else { return None };
    match path.path.segments.last()?.ident.to_string().as_str() {
        "Counter" => Some(Kind::Counter),
        "Gauge" => Some(Kind::Gauge),
        "Histogram" => Some(Kind::Histogram),
        _ => None,
    }
}

fn check_name(errors: &mut Errors, name: &str, span: &TokenStream, kind: Kind) {
    if !names::is_metric_name(name) {
        errors.add(
            span,
            format!(
                "`{name}` is not a Prometheus metric name: use letters, digits, `_` and `:`, not starting with a digit"
            ),
        );
        return;
    }
    if kind == Kind::Counter && !name.ends_with("_total") {
        errors.add(span, format!("a counter's name ends in `_total`: call it `{name}_total`"));
    }
    if kind != Kind::Counter && name.ends_with("_total") {
        errors.add(
            span,
            format!(
                "`_total` marks a counter; this is a {}: drop the suffix",
                if kind == Kind::Gauge { "gauge" } else { "histogram" }
            ),
        );
    }
    if let Some((suffix, unit)) = names::time_not_in_seconds(name) {
        let base = name.strip_suffix("_total").unwrap_or(name);
        let stem = base.strip_suffix(suffix).unwrap_or(base);
        errors.add(
            span,
            format!(
                "`{name}` measures time in {unit}; Prometheus' base unit is the second: call it `{stem}_seconds{}` \
                 and record seconds (`observe_duration` does)",
                if name.ends_with("_total") { "_total" } else { "" }
            ),
        );
    }
}

/// The bounds of `buckets = [...]`: number literals, finite, strictly increasing.
fn bounds(array: &syn::ExprArray) -> syn::Result<Vec<f64>> {
    let mut bounds = Vec::new();
    for element in &array.elems {
        let value = match element {
            syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Float(f), .. }) => f.base10_parse::<f64>()?,
            syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse::<f64>()?,
            other => {
                return Err(syn::Error::new(other.span(), "bucket bounds are number literals, e.g. [0.1, 0.5, 1.0]"));
            }
        };
        if let Some(previous) = bounds.last()
            && value <= *previous
        {
            return Err(syn::Error::new(element.span(), "bucket bounds must be strictly increasing"));
        }
        bounds.push(value);
    }
    if bounds.is_empty() {
        return Err(syn::Error::new_spanned(array, "give at least one bucket bound; `+Inf` is added for you"));
    }
    Ok(bounds)
}

fn implementation(ident: &syn::Ident, metrics: &[Metric], krate: &TokenStream) -> TokenStream {
    let fields = metrics.iter().map(|metric| {
        let Metric { field, ty, name, help, unit, buckets, native } = metric;
        let unit = match unit {
            Some(unit) => quote!(::core::option::Option::Some(#unit)),
            None => quote!(::core::option::Option::None),
        };
        let buckets = match buckets {
            Some(bounds) => quote!(::core::option::Option::Some(&[#(#bounds),*])),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            #field: <#ty as #krate::metric::Register>::register(
                __mesh_registry,
                &#krate::metric::MetricDef { name: #name, help: #help, unit: #unit, buckets: #buckets, native: #native },
            )?
        }
    });
    quote! {
        #[automatically_derived]
        impl #krate::Metrics for #ident {
            fn register_in(
                __mesh_registry: &#krate::registry::Registry,
            ) -> ::core::result::Result<Self, #krate::Error> {
                ::core::result::Result::Ok(Self { #(#fields,)* })
            }
        }
    }
}
