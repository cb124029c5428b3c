//! Procedural macros for [`mesh-metrics`](https://docs.rs/mesh-metrics).
//!
//! Use them through the `mesh_metrics` crate, which re-exports them and owns the
//! runtime helpers (`::mesh_metrics::__private`) that the generated code calls.
//! Every entry point parses, validates and expands; errors are turned into
//! compile errors here, once, and the user's item is still emitted next to them
//! so the rest of the crate keeps type-checking.

#![warn(missing_docs, unreachable_pub)]

mod instrumented;

use proc_macro::TokenStream;

/// Records request count, latency and in-flight calls for a function, a method
/// or every `pub fn` of an `impl` block. See `mesh_metrics::instrumented` for the
/// full documentation.
#[proc_macro_attribute]
pub fn instrumented(args: TokenStream, item: TokenStream) -> TokenStream {
    instrumented::expand(args.into(), item.into()).into()
}
