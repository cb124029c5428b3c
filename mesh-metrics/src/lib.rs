//! Prometheus instrumentation for MCP Mesh agents.
//!
//! Put one attribute on a method and get, with no hand-written metric code,
//! the guide's request counter, latency histogram and in-flight gauge:
//!
//! ```
//! use mesh_metrics::instrumented;
//!
//! struct WeatherAgent;
//!
//! #[instrumented(agent = "weather-agent")]
//! impl WeatherAgent {
//!     pub fn get_current(&self, location: &str) -> Result<f64, String> {
//!         if location.is_empty() { return Err("no location".into()); }
//!         Ok(21.5)
//!     }
//! }
//!
//! let agent = WeatherAgent;
//! agent.get_current("Lisbon").unwrap();
//! let _ = agent.get_current("");
//!
//! let snapshot = mesh_metrics::snapshot();
//! let calls = |status| snapshot.value("mcp_mesh_requests_total",
//!     &[("agent", "weather-agent"), ("method", "get_current"), ("status", status)]);
//! assert_eq!((calls("success"), calls("error")), (1.0, 1.0));
//! ```
//!
//! Then serve them with [`Exporter`]:
//!
//! ```no_run
//! # async fn run() -> Result<(), mesh_metrics::Error> {
//! let exporter = mesh_metrics::Exporter::builder()
//!     .listen("127.0.0.1:9464".parse()?) // loopback is the default
//!     .agent_info("weather-agent", "1.0.0", &["weather_forecast", "weather_current"])
//!     .install()?;                       // recorder + /metrics
//! # exporter.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Business metrics are typed structs; the compiler checks their labels:
//!
//! ```
//! use mesh_metrics::{Counter, Gauge, LabelSet, LabelValue, Metrics};
//!
//! #[derive(Clone, Copy, LabelValue)]
//! enum Currency { Usd, Eur }
//!
//! #[derive(LabelSet)]
//! struct RevenueLabels { agent: &'static str, currency: Currency }
//!
//! #[derive(Metrics)]
//! #[metrics(prefix = "mcp_mesh_business")]
//! struct BusinessMetrics {
//!     /// Total revenue processed
//!     revenue_total: Counter<RevenueLabels>,
//!     /// Cache hit rate percentage
//!     #[metric(name = "mcp_mesh_cache_hit_rate")]
//!     cache_hit_rate: Gauge,
//! }
//!
//! let metrics = BusinessMetrics::register()?;
//! metrics.revenue_total.with(&RevenueLabels { agent: "analytics", currency: Currency::Eur }).add(42.5)?;
//! metrics.cache_hit_rate.set(93.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A label the set does not have, a value that is not a `Currency`, a counter
//! not named `_total` or a metric without a doc comment does not compile:
//!
//! ```compile_fail
//! # use mesh_metrics::{Counter, LabelSet, Metrics};
//! #[derive(LabelSet)]
//! struct Labels { user_id: String } // error: an unbounded label without #[label(unbounded)]
//! ```
//!
//! The metric names are the guide's ([`names`]); the design contract is
//! DESIGN.md in the repository.

#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod access;
pub mod collect;
mod error;
mod exemplar;
mod exporter;
pub mod guard;
mod http;
mod instrument;
pub mod labels;
pub mod metric;
pub mod names;
mod otlp;
mod proto;
pub mod registry;
mod render;
#[cfg(feature = "rules")]
pub mod rules;
mod scrape;
mod server_metrics;
pub mod trace;

pub use error::Error;
pub use exporter::{DEFAULT_LISTEN, Exporter, ExporterBuilder, ExporterHandle};
pub use instrument::Status;
pub use labels::{LabelSet, LabelValue};
pub use metric::{Counter, Gauge, Histogram, Metrics};
pub use otlp::OtlpConfig;
pub use registry::Snapshot;
pub use registry::native::NativeHistograms;
pub use render::{render_classic, render_openmetrics, render_protobuf};

/// Records request count, latency and in-flight calls of a fn, a method, or
/// every `pub fn` of an `impl` block (every fn of a trait impl).
///
/// Each call records
/// * `mcp_mesh_requests_total{agent, method, status}` — `status` is `success`,
///   `error` (an `Err`, a `?` exit, a panic) or `cancelled` (an async call whose
///   future was dropped before it finished);
/// * `mcp_mesh_request_duration_seconds{agent, method}` — wall time;
/// * `mcp_mesh_connections_active{agent, type}` — in flight, back to where it
///   was on every exit path.
///
/// The function's signature, attributes, docs and behaviour are unchanged:
/// only its body is wrapped, and a panic keeps unwinding. How a call is
/// measured comes from the signature: a fn whose return type is a future
/// (`impl Future`, `Pin<Box<dyn Future>>`, `BoxFuture`) is measured over the
/// future it returns, whatever its body looks like; a sync body's every exit
/// (`return`, also inside macros, `?`, the tail) is classified where it comes
/// out. Where the return type cannot say whether a value is an error (a type
/// parameter, an associated type), the macro refuses and asks for `error_if`,
/// `ok_if` or `infallible`:
///
/// ```compile_fail
/// # use mesh_metrics::instrumented;
/// #[instrumented(agent = "jobs")] // error: `R` is a type parameter; add error_if, ok_if or infallible
/// fn run<R>(job: impl FnOnce() -> R) -> R { job() }
/// ```
///
/// # Arguments
///
/// | key | value | default |
/// |---|---|---|
/// | `agent` | string literal | required (on the fn or its impl block) |
/// | `method` | string literal | the fn's name |
/// | `connection_type` | string literal, the gauge's `type` label | `"client"` |
/// | `error_if` | path of `fn(&Ret) -> bool`: `true` means error | `Err` is an error |
/// | `ok_if` | path of `fn(&Ret) -> bool`: `true` means success | `Err` is an error |
/// | `infallible` | (flag) every return is a success (a panic is still an error) | |
/// | `none_is` | `"success"` or `"error"`, for fns returning `Option` | `"success"` |
/// | `future` | (flag) the return type is a boxed future under a name the macro does not know | |
/// | `skip` | (flag) on a fn inside an instrumented impl block: leave it alone | |
/// | `crate` | path of this crate when renamed or re-exported | `::mesh_metrics` |
///
/// ```
/// # use mesh_metrics::instrumented;
/// #[derive(Debug)] struct Reply { code: u16 }
/// fn is_server_error(reply: &Reply) -> bool { reply.code >= 500 }
///
/// #[instrumented(agent = "gateway", method = "forward", error_if = is_server_error)]
/// async fn forward(code: u16) -> Reply { Reply { code } }
///
/// #[instrumented(agent = "cache", none_is = "error")]
/// fn lookup(key: &str) -> Option<u32> { key.parse().ok() }
/// # assert_eq!(lookup("7"), Some(7));
/// ```
///
/// Labels are literals so that each call site is resolved once; a value from a
/// variable does not compile:
///
/// ```compile_fail
/// # use mesh_metrics::instrumented;
/// const AGENT: &str = "weather-agent";
/// #[instrumented(agent = AGENT)] // error: `agent` takes a string literal
/// fn get_current() {}
/// ```
#[doc(inline)]
pub use mesh_metrics_macros::instrumented;
pub use mesh_metrics_macros::{LabelSet, LabelValue, Metrics};

/// A copy of every value in the process-wide registry.
pub fn snapshot() -> Snapshot {
    registry::global().snapshot()
}

/// Support for the generated code. Not public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::instrument::{
        CallGuard, CallSite, FutureStatus, Instrumented, IsOption, IsResult, NotAFuture, OtherStatus, Probe, Status,
        TypedStatus, build_future, option_status, result_status, run_sync,
    };
    pub use linkme;
    pub use std::boxed::Box;

    /// Every `#[instrumented]` call site in the program, registered at install.
    #[linkme::distributed_slice]
    pub static CALL_SITES: [&'static CallSite];
}
