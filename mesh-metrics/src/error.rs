//! The one error type of mesh-metrics. Every message says what to do.

use std::net::{AddrParseError, SocketAddr};

/// Everything that can go wrong when configuring, installing or registering.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}; another process may hold the port, choose another with `.listen(...)`")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A listen address that does not parse.
    #[error("invalid listen address ({0}); write it as \"127.0.0.1:9464\"")]
    Address(#[from] AddrParseError),
    /// `install()` was called while an exporter is already installed.
    #[error(
        "a mesh-metrics exporter is already installed in this process; install once at start-up and keep its handle"
    )]
    AlreadyInstalled,
    /// Some other `metrics` recorder was installed first.
    #[error(
        "another `metrics` recorder is already installed in this process; mesh-metrics installs \
         metrics-exporter-prometheus as the recorder so facade metrics reach the same /metrics: remove the other one"
    )]
    RecorderAlreadySet,
    /// Histogram buckets that are not finite, strictly increasing and non-empty.
    #[error("invalid buckets for {metric}: {reason}")]
    Buckets {
        /// The metric (or `default`).
        metric: String,
        /// What is wrong.
        reason: String,
    },
    /// A label name outside the Prometheus grammar.
    #[error(
        "invalid label name {name:?}: label names match [a-zA-Z_][a-zA-Z0-9_]*, must not start with \"__\", \
         and `le` is reserved for histogram buckets"
    )]
    LabelName {
        /// The name given.
        name: String,
    },
    /// Buckets were changed a second time for a histogram that was re-laid
    /// once already (see [`Registry::set_layouts`](crate::registry::Registry::set_layouts)).
    #[error(
        "the buckets of the histogram {metric} were changed once already after it was used; \
         configure its buckets once, when the exporter is installed"
    )]
    LayoutAfterUse {
        /// The histogram.
        metric: String,
    },
    /// Native histograms were turned on (or off) for a histogram that already
    /// has series: native buckets cannot be made from classic ones.
    #[error(
        "the histogram {metric} already has {series} series with {had} buckets, made before install() (by \
         an instrumented call or a registration); native histograms must be chosen before a series exists: \
         install the exporter (with .native_histograms(..)) before the first instrumented call"
    )]
    NativeAfterUse {
        /// The histogram.
        metric: String,
        /// How many series it has.
        series: usize,
        /// `classic` or `native`: what they have.
        had: &'static str,
    },
    /// The same metric name registered with another type or label set.
    #[error(
        "{metric} is registered as {registered} and now requested as {requested}; a metric name has one type and one label set"
    )]
    Conflict {
        /// The metric.
        metric: String,
        /// What it was registered as.
        registered: String,
        /// What was asked for now.
        requested: String,
    },
    /// A wrong number of label values.
    #[error("{metric} has {expected} labels, but {got} values were given")]
    LabelCount {
        /// The metric.
        metric: String,
        /// Its number of labels.
        expected: usize,
        /// The number of values given.
        got: usize,
    },
    /// A metric name outside the Prometheus grammar.
    #[error("invalid metric name {name:?}: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*")]
    MetricName {
        /// The name given.
        name: String,
    },
    /// An allowlist entry that is not an address or CIDR block.
    #[error(
        "invalid client allowlist entry {entry:?}: {reason}; write an address or a CIDR block such as \"10.0.0.0/8\""
    )]
    Allowlist {
        /// The entry given.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// A bearer token that an `Authorization` header cannot carry.
    #[error("invalid bearer token: use one or more visible ASCII characters, without spaces")]
    Token,
    /// Listening beyond loopback without saying who may scrape.
    #[error(
        "listening on {addr}, where other hosts can connect, but only loopback clients may scrape: name them with \
         `.allow_client(\"10.0.0.0/8\")` (and perhaps `.bearer_token(..)`), or accept anyone with `.allow_any_client()`"
    )]
    Exposed {
        /// The listen address.
        addr: SocketAddr,
    },
    /// The OTLP configuration cannot work (see [`OtlpConfig`](crate::OtlpConfig)).
    #[error("OTLP push: {reason}")]
    Otlp {
        /// What is wrong, and what to write instead.
        reason: String,
    },
    /// The exporter's own runtime thread could not start.
    #[error("cannot start the exporter's runtime thread: {0}")]
    Runtime(#[source] std::io::Error),
}
