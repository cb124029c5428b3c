//! What the guide writes by hand, generated from the names the code records
//! (the `rules` cargo feature): recording rules and alerts (a Prometheus rule
//! file, or a `PrometheusRule`), `ServiceMonitor`/`PodMonitor` objects, a
//! `prometheus.yml`, and a Grafana dashboard. The `mesh-metrics` command-line
//! tool prints them.
//!
//! ```
//! use mesh_metrics::rules::{self, SloConfig};
//!
//! let config = SloConfig { availability: 0.999, latency_seconds: 0.5, ..SloConfig::default() };
//! let yaml = rules::to_yaml(&rules::rule_file(&config)?)?;
//! assert!(yaml.contains("record: mcp_mesh:request_rate"));
//! # Ok::<(), mesh_metrics::rules::RulesError>(())
//! ```
//!
//! Where the guide's PromQL has a trap, the generated rules do not: the
//! registry health score compares with `< bool 0.5` (the guide's `< 0.5`
//! filters, so the score vanishes exactly when the registry is slow), its terms
//! are matched on `namespace` (the guide adds `up`, labelled by job and
//! instance, to rule results labelled by agent, which matches nothing), ratios
//! divide sums with the same labels (no `ignoring(status) group_left` on
//! series that no longer have a `status`), the federation job selects
//! `{__name__=~"mcp_mesh:.*"}` (a bare regex is not a selector), and the agents'
//! discovery writes the pod's agent name to `agent_name`, not over the `agent`
//! label the metrics carry.

mod dashboard;
mod file;
mod helm;
mod kubernetes;
mod promql;
mod queries;
mod scrape;

pub use dashboard::{Dashboard, dashboard, dashboard_for};
pub use file::{Group, PrometheusRule, Rule, RuleFile, prometheus_rule, rule_file};
pub use helm::{HelmValuesOptions, SecretKey, helm_values};
pub use kubernetes::{Monitor, pod_monitor, service_monitors};
pub use promql::{panel_queries, panel_queries_for, record};
pub use queries::{NamedQuery, queries};
pub use scrape::{PrometheusConfig, ScrapeOptions, scrape_config};

/// The service-level objectives the SLO rules and burn-rate alerts use.
#[derive(Debug, Clone, PartialEq)]
pub struct SloConfig {
    /// The share of requests that must not fail (e.g. `0.999`).
    pub availability: f64,
    /// The latency a request must not exceed, in seconds: one of the
    /// histogram's bucket bounds (the default buckets' 0.5 by default).
    pub latency_seconds: f64,
    /// The share of requests that must be faster than `latency_seconds`.
    pub latency_objective: f64,
    /// The error ratio above which `MCPMeshHighErrorRate` fires.
    pub error_ratio_alert: f64,
    /// The job name of the registry's scrape job.
    pub registry_job: String,
    /// The namespace of the generated Kubernetes objects' rules.
    pub namespace: String,
    /// How often the rule groups are evaluated (`30s`, as the guide has it).
    pub evaluation_interval: String,
    /// The request-duration histogram's bucket bounds (the exporter's
    /// `.buckets(..)`; the guide's by default): `latency_seconds` must be one
    /// of them, or the latency rules would count a bucket that is not there.
    pub buckets: Vec<f64>,
    /// The job Prometheus scrapes itself under, for its self-monitoring alerts.
    pub prometheus_job: String,
    /// The memory Prometheus may use (its container limit), in bytes: its
    /// resident memory is alerted on against this.
    pub prometheus_memory_limit_bytes: f64,
    /// The head series Prometheus is sized for: growth that would pass it
    /// within 4 hours is alerted on.
    pub prometheus_series_limit: f64,
    /// The request duration is a native histogram
    /// ([`ExporterBuilder::native_histograms`](crate::ExporterBuilder::native_histograms)):
    /// the latency rules read its native buckets (`histogram_quantile` over
    /// the series itself, `histogram_fraction` for the latency objective, any
    /// latency allowed), which needs Prometheus 2.40+ with
    /// `--enable-feature=native-histograms`.
    pub native_histograms: bool,
}

impl Default for SloConfig {
    fn default() -> Self {
        Self {
            availability: 0.999,
            latency_seconds: 0.5,
            latency_objective: 0.99,
            error_ratio_alert: 0.05,
            registry_job: "mcp-mesh-registry".to_owned(),
            namespace: "monitoring".to_owned(),
            evaluation_interval: "30s".to_owned(),
            buckets: crate::registry::DEFAULT_BUCKETS.to_vec(),
            prometheus_job: "prometheus".to_owned(),
            // The guide's kube-prometheus-stack values: a 4 GiB memory limit.
            prometheus_memory_limit_bytes: 4.0 * 1024.0 * 1024.0 * 1024.0,
            prometheus_series_limit: 2_000_000.0,
            native_histograms: false,
        }
    }
}

impl SloConfig {
    /// Checks the objectives: ratios strictly between 0 and 1, a positive latency.
    pub fn validate(&self) -> Result<(), RulesError> {
        let ratio = |name: &'static str, value: f64| {
            if value > 0.0 && value < 1.0 { Ok(()) } else { Err(RulesError::Objective { name, value }) }
        };
        ratio("availability", self.availability)?;
        ratio("latency objective", self.latency_objective)?;
        ratio("error ratio alert", self.error_ratio_alert)?;
        if !(self.latency_seconds.is_finite() && self.latency_seconds > 0.0) {
            return Err(RulesError::Objective { name: "latency", value: self.latency_seconds });
        }
        for (name, value) in [
            ("Prometheus memory limit", self.prometheus_memory_limit_bytes),
            ("Prometheus series limit", self.prometheus_series_limit),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(RulesError::Objective { name, value });
            }
        }
        if !self.native_histograms && !self.buckets.contains(&self.latency_seconds) {
            let bounds = self.buckets.iter().map(|b| promql::number(*b)).collect::<Vec<_>>().join(", ");
            return Err(RulesError::LatencyNotABound { latency: self.latency_seconds, bounds });
        }
        Ok(())
    }
}

/// Why an artifact could not be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// An objective out of range.
    #[error("{name} must be between 0 and 1 (exclusive), or a positive number of seconds for latency; got {value}")]
    Objective {
        /// Which objective.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// `mesh-metrics query NAME` with a name the library does not have.
    #[error("no query named {name:?} in the library; the queries are: {known}")]
    UnknownQuery {
        /// The name given.
        name: String,
        /// The library's names, comma-separated.
        known: String,
    },
    /// The latency objective is not one of the histogram's bucket bounds.
    #[error(
        "the latency objective {latency} s is not a bucket bound of the request-duration histogram ({bounds}); \
         pick one of them, or give the buckets the exporter uses with --buckets"
    )]
    LatencyNotABound {
        /// The objective.
        latency: f64,
        /// The bounds, comma-separated.
        bounds: String,
    },
    /// Sharding asked for a shard outside `0..shards`.
    #[error("--shard {shard} is not below --shards {shards}: shards are numbered from 0")]
    Shard {
        /// The shard asked for.
        shard: u32,
        /// How many there are.
        shards: u32,
    },
    /// Sharding asked for on a configuration that scrapes no targets.
    #[error(
        "--shards splits the scrape targets, and this configuration has none (a federating server scrapes only \
         what it federates): give --target or --kubernetes, or leave out --shards and --shard"
    )]
    ShardsWithoutTargets,
    /// A `helm-values` option that the operator or Kubernetes would refuse.
    #[error("{field} {given:?} is not valid: write {expected}")]
    HelmValue {
        /// The option, as the command line names it.
        field: &'static str,
        /// What was given.
        given: String,
        /// What to write instead.
        expected: &'static str,
    },
    /// A Secret reference that Kubernetes would not accept.
    #[error(
        "{given:?} is not a Secret reference: write NAME or NAME:KEY, the name in lowercase letters, digits, \
         '-' and '.', the key in letters, digits, '-', '_' and '.'"
    )]
    SecretReference {
        /// What was given.
        given: String,
    },
    /// Serialising failed.
    #[error("cannot write YAML: {0}")]
    Yaml(#[from] yaml_serde::Error),
    /// Serialising failed.
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Any artifact as YAML.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, RulesError> {
    Ok(yaml_serde::to_string(value)?)
}

/// Several Kubernetes objects as one YAML stream (`---` between them).
pub fn to_yaml_documents<T: serde::Serialize>(values: &[T]) -> Result<String, RulesError> {
    let mut out = String::new();
    for value in values {
        out.push_str("---\n");
        out.push_str(&to_yaml(value)?);
    }
    Ok(out)
}

/// Any artifact as pretty-printed JSON.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String, RulesError> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}
