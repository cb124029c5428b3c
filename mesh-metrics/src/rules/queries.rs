//! A library of named, documented PromQL queries over the recorded series:
//! the guide's "Advanced Queries" and the questions an operator asks of a
//! mesh. The dashboard uses them; `mesh-metrics query [NAME]` prints them;
//! `promtool test rules` checks each one's value.

use super::SloConfig;
use super::promql::{number, record};
use crate::names::REQUEST_DURATION_SECONDS;

/// One query of the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedQuery {
    /// Its name, for `mesh-metrics query NAME`.
    pub name: &'static str,
    /// What it answers.
    pub description: &'static str,
    /// The PromQL.
    pub expr: String,
}

/// The library, with `config`'s thresholds.
pub fn queries(config: &SloConfig) -> Vec<NamedQuery> {
    let query = |name, description, expr: String| NamedQuery { name, description, expr };
    vec![
        query(
            "top-agents",
            "The five agents with the most requests per second.",
            format!("topk(5, sum by (agent) ({}))", record::REQUEST_RATE),
        ),
        query(
            "slowest-agents",
            "The five agents with the highest 95th percentile latency, in seconds.",
            format!("topk(5, max by (agent) ({}))", record::REQUEST_DURATION_P95),
        ),
        query(
            "agents-over-error-ratio",
            "The agents failing more than the alerting error ratio of their requests.",
            format!("max by (agent) ({}) > {}", record::ERROR_RATE, number(config.error_ratio_alert)),
        ),
        query(
            "latency-heatmap",
            "Requests per second in each latency bucket: a heatmap over time.",
            if config.native_histograms {
                format!("sum(rate({REQUEST_DURATION_SECONDS}[5m]))")
            } else {
                format!("sum by (le) (rate({REQUEST_DURATION_SECONDS}_bucket[5m]))")
            },
        ),
        query(
            "week-over-week",
            "Each agent's request rate as a ratio of its rate a week earlier (1.2: 20% more).",
            format!("sum by (agent) ({rate}) / sum by (agent) ({rate} offset 1w)", rate = record::REQUEST_RATE),
        ),
        query(
            "capacity-in-a-week",
            "Each agent's request rate a week from now, extrapolated from the last day.",
            format!("predict_linear(sum by (agent) ({})[1d:5m], 7 * 86400)", record::REQUEST_RATE),
        ),
    ]
}
