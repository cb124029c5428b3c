//! The demo's live summary, computed from the process's own metrics: request
//! rate, error ratio and p95 latency per method over the last interval, the
//! same numbers the guide's recording rules give in Prometheus.

use mesh_metrics::Snapshot;
use mesh_metrics::names::{REQUEST_DURATION_SECONDS, REQUESTS_TOTAL};

/// One method's numbers over an interval.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSummary {
    /// `agent/method`.
    pub name: String,
    /// Finished calls per second.
    pub rate: f64,
    /// Errors over finished calls (0 when there were none).
    pub error_ratio: f64,
    /// Cancelled calls per second.
    pub cancelled_rate: f64,
    /// 95th percentile latency in seconds, as `histogram_quantile` computes it.
    pub p95: Option<f64>,
}

/// The summary of every instrumented method between two snapshots.
pub fn between(before: &Snapshot, after: &Snapshot, seconds: f64) -> Vec<MethodSummary> {
    let mut methods: Vec<(String, String)> = after
        .matching(REQUESTS_TOTAL, &[])
        .filter_map(|series| Some((label(&series.labels, "agent")?, label(&series.labels, "method")?)))
        .collect();
    methods.sort();
    methods.dedup();
    methods
        .into_iter()
        .map(|(agent, method)| {
            let delta = |status: &str| {
                let labels = [("agent", agent.as_str()), ("method", method.as_str()), ("status", status)];
                after.value(REQUESTS_TOTAL, &labels) - before.value(REQUESTS_TOTAL, &labels)
            };
            let (success, error, cancelled) = (delta("success"), delta("error"), delta("cancelled"));
            let finished = success + error;
            let labels = [("agent", agent.as_str()), ("method", method.as_str())];
            let buckets: Vec<(f64, u64)> = after
                .buckets(REQUEST_DURATION_SECONDS, &labels)
                .into_iter()
                .zip(before.buckets(REQUEST_DURATION_SECONDS, &labels).into_iter().chain(std::iter::repeat((0.0, 0))))
                .map(|((le, now), (_, then))| (le, now.saturating_sub(then)))
                .collect();
            MethodSummary {
                name: format!("{agent}/{method}"),
                rate: (finished + cancelled) / seconds,
                error_ratio: if finished > 0.0 { error / finished } else { 0.0 },
                cancelled_rate: cancelled / seconds,
                p95: quantile(0.95, &buckets),
            }
        })
        .collect()
}

fn label(labels: &[(String, String)], name: &str) -> Option<String> {
    labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

/// Prometheus' `histogram_quantile`: linear interpolation inside the bucket
/// the rank falls in; the `+Inf` bucket answers with the highest finite bound.
pub fn quantile(q: f64, cumulative: &[(f64, u64)]) -> Option<f64> {
    let total = cumulative.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let index = cumulative.iter().position(|(_, count)| *count as f64 >= rank)?;
    let (upper, count) = cumulative[index];
    if upper.is_infinite() {
        return cumulative.get(index.checked_sub(1)?).map(|(le, _)| *le);
    }
    let (lower, below) = if index == 0 { (0.0, 0) } else { cumulative[index - 1] };
    let in_bucket = (count - below) as f64;
    Some(lower + (upper - lower) * ((rank - below as f64) / in_bucket))
}

/// The summary as a small table.
pub fn format(rows: &[MethodSummary]) -> String {
    let mut out = format!("{:<34} {:>8} {:>7} {:>10} {:>9}\n", "agent/method", "req/s", "errors", "cancel/s", "p95");
    for row in rows {
        let p95 = row.p95.map_or_else(|| "-".to_owned(), |p| format!("{:.0} ms", p * 1000.0));
        out.push_str(&format!(
            "{:<34} {:>8.1} {:>6.1}% {:>10.1} {:>9}\n",
            row.name,
            row.rate,
            row.error_ratio * 100.0,
            row.cancelled_rate,
            p95
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantile_interpolates_like_prometheus() {
        let buckets = [(0.1, 50), (0.5, 90), (1.0, 100), (f64::INFINITY, 100)];
        // rank 95 falls in (0.5, 1.0] holding 10: halfway.
        assert_eq!(quantile(0.95, &buckets), Some(0.75));
        assert_eq!(quantile(0.5, &buckets), Some(0.1));
        assert_eq!(quantile(0.5, &[(0.1, 0), (f64::INFINITY, 0)]), None);
        assert_eq!(quantile(0.99, &[(0.1, 1), (f64::INFINITY, 10)]), Some(0.1));
    }
}
