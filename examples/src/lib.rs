//! Runnable agents from the Prometheus integration guide, instrumented with
//! mesh-metrics, and the pieces of the `mesh-demo` binary.

#![warn(missing_docs, unreachable_pub)]

pub mod analytics;
pub mod registry;
pub mod summary;
pub mod traffic;
pub mod weather;
