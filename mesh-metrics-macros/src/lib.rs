//! Procedural macros for [`mesh-metrics`](https://docs.rs/mesh-metrics).
//!
//! Use them through the `mesh_metrics` crate, which re-exports them and owns the
//! runtime helpers (`::mesh_metrics::__private`) that the generated code calls.
//! Every entry point parses, validates and expands; errors are turned into
//! compile errors here, once, and the user's item is still emitted next to them
//! so the rest of the crate keeps type-checking.

#![warn(missing_docs, unreachable_pub)]

mod derive;
mod instrumented;
mod names;

use proc_macro::TokenStream;

/// Records request count, latency and in-flight calls for a function, a method
/// or every `pub fn` of an `impl` block. See `mesh_metrics::instrumented` for the
/// full documentation.
#[proc_macro_attribute]
pub fn instrumented(args: TokenStream, item: TokenStream) -> TokenStream {
    instrumented::expand(args.into(), item.into()).into()
}

/// Derives `mesh_metrics::LabelValue` for a fieldless enum: each variant is
/// one label value. See `mesh_metrics::LabelValue`.
#[proc_macro_derive(LabelValue, attributes(label))]
pub fn derive_label_value(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    derive::finish(derive::label_value::expand(input)).into()
}

/// Derives `mesh_metrics::LabelSet` for a struct whose fields are labels.
/// See `mesh_metrics::LabelSet`.
#[proc_macro_derive(LabelSet, attributes(label))]
pub fn derive_label_set(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    derive::finish(derive::label_set::expand(input)).into()
}

/// Derives registration for a struct of `mesh_metrics::Counter<L>`,
/// `Gauge<L>` and `Histogram<L>` fields. See `mesh_metrics::Metrics`.
#[proc_macro_derive(Metrics, attributes(metrics, metric))]
pub fn derive_metrics(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    derive::finish(derive::metrics::expand(input)).into()
}
