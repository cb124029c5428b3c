//! The cardinality guard: one policy, enforced where series are created.
//!
//! Per metric name at most N distinct label sets are admitted (default
//! [`DEFAULT_SERIES_LIMIT`]; overrides per exact name and per prefix; or no
//! limit for a metric). Past the limit nothing is dropped: the measurement goes
//! to one overflow series of that metric whose only label is
//! `otel_metric_overflow="true"`, the name the OpenTelemetry SDK gives its
//! overflow series, so `sum(rate(x[5m]))` still equals the true total.
//!
//! Admission happens when a series is looked up or registered, never on an
//! increment: a held handle (the cached handles of `#[instrumented]`) pays
//! nothing. It is enforced twice, by the same policy: in mesh-metrics'
//! registry ([`crate::registry::Family::series`]) and, for `metrics` facade
//! calls, by a `metrics_util` layer in front of `metrics-exporter-prometheus`
//! (`layer`). What it folded is published as
//! `mcp_mesh_cardinality_overflow_total{metric}` and the admitted series as
//! `mcp_mesh_cardinality_series{metric}`; each metric's first fold is logged.
//!
//! Label values longer than [`DEFAULT_MAX_LABEL_VALUE_BYTES`] (configurable)
//! are truncated on a UTF-8 character boundary.

pub(crate) mod layer;
mod publish;

pub use layer::{CardinalityLayer, Guarded};

pub(crate) use publish::publish;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::names;

/// Label sets admitted per metric name unless configured otherwise.
pub const DEFAULT_SERIES_LIMIT: usize = 2000;

/// Label values are truncated to this many bytes unless configured otherwise.
pub const DEFAULT_MAX_LABEL_VALUE_BYTES: usize = 256;

/// The single label of a metric's overflow series: `otel_metric_overflow="true"`.
pub const OVERFLOW_LABEL: (&str, &str) = ("otel_metric_overflow", "true");

/// How many label sets a metric may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many; further label sets share the overflow series.
    Series(usize),
    /// No limit (for a metric whose labels are known to be bounded).
    Unlimited,
}

/// The guard's configuration: limits by name, and the label value length.
#[derive(Debug, Clone)]
pub struct CardinalityPolicy {
    default: Limit,
    exact: HashMap<String, Limit>,
    prefixes: Vec<(String, Limit)>,
    max_label_value_bytes: usize,
}

impl Default for CardinalityPolicy {
    fn default() -> Self {
        Self {
            default: Limit::Series(DEFAULT_SERIES_LIMIT),
            exact: HashMap::new(),
            prefixes: Vec::new(),
            max_label_value_bytes: DEFAULT_MAX_LABEL_VALUE_BYTES,
        }
    }
}

impl CardinalityPolicy {
    /// Sets the limit of every metric without an override.
    pub fn default_limit(mut self, limit: Limit) -> Self {
        self.default = limit;
        self
    }

    /// Sets the limit of the metric named exactly `name` (beats any prefix).
    pub fn limit_for(mut self, name: impl Into<String>, limit: Limit) -> Self {
        self.exact.insert(name.into(), limit);
        self
    }

    /// Sets the limit of every metric whose name starts with `prefix`; the
    /// longest matching prefix wins.
    pub fn limit_for_prefix(mut self, prefix: impl Into<String>, limit: Limit) -> Self {
        let prefix = prefix.into();
        self.prefixes.retain(|(existing, _)| *existing != prefix);
        self.prefixes.push((prefix, limit));
        self.prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        self
    }

    /// Sets the longest label value kept, in bytes (at least 1).
    pub fn max_label_value_bytes(mut self, bytes: usize) -> Self {
        self.max_label_value_bytes = bytes.max(1);
        self
    }

    /// The limit that applies to `name`: exact override, else the longest
    /// prefix, else the default. The guard's own metrics are never limited.
    pub fn limit(&self, name: &str) -> Limit {
        if is_own(name) {
            return Limit::Unlimited;
        }
        if let Some(limit) = self.exact.get(name) {
            return *limit;
        }
        self.prefixes.iter().find(|(prefix, _)| name.starts_with(prefix.as_str())).map_or(self.default, |(_, l)| *l)
    }

    /// The longest label value kept, in bytes.
    pub fn label_value_bytes(&self) -> usize {
        self.max_label_value_bytes
    }

    /// The longest label value kept for metric `name`: the guard's own
    /// metrics, whose label is another metric's name, keep it whole.
    pub fn label_value_bytes_for(&self, name: &str) -> usize {
        if is_own(name) { usize::MAX } else { self.max_label_value_bytes }
    }

    /// `value`, cut to the byte limit on a UTF-8 character boundary.
    pub fn truncate<'a>(&self, value: &'a str) -> &'a str {
        truncate(value, self.max_label_value_bytes)
    }
}

/// The guard's own metrics: never limited, never truncated.
fn is_own(name: &str) -> bool {
    name == names::CARDINALITY_OVERFLOW_TOTAL || name == names::CARDINALITY_SERIES
}

/// `value` cut to at most `max` bytes, never inside a character.
pub(crate) fn truncate(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or_default()
}

/// What the guard did to one metric, for the published self-metrics.
#[derive(Debug, Default)]
pub(crate) struct Folds {
    /// Registrations or lookups sent to the overflow series.
    count: AtomicU64,
    /// How many of them were already added to the published counter.
    published: AtomicU64,
}

impl Folds {
    /// One more folded registration; `true` the first time (log it then).
    pub(crate) fn fold(&self) -> bool {
        self.count.fetch_add(1, Ordering::Relaxed) == 0
    }

    /// All folds so far.
    pub(crate) fn total(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Folds not yet published; concurrent scrapes never publish one twice.
    pub(crate) fn unpublished(&self) -> u64 {
        let total = self.count.load(Ordering::Relaxed);
        let before = self.published.fetch_max(total, Ordering::Relaxed);
        total.saturating_sub(before)
    }
}

/// Logs a metric's first fold.
pub(crate) fn warn_first_fold(metric: &str, limit: usize) {
    tracing::warn!(
        metric,
        limit,
        "mesh-metrics: metric reached its cardinality limit; further label sets are counted in its \
         overflow series {{otel_metric_overflow=\"true\"}}. A label probably holds an unbounded value \
         (an ID, a URL): drop it, or raise the limit for this metric on the exporter builder"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_beats_longest_prefix_beats_default() {
        let policy = CardinalityPolicy::default()
            .limit_for_prefix("app_", Limit::Series(10))
            .limit_for_prefix("app_http_", Limit::Series(50))
            .limit_for("app_http_requests_total", Limit::Unlimited);
        assert_eq!(policy.limit("other"), Limit::Series(DEFAULT_SERIES_LIMIT));
        assert_eq!(policy.limit("app_jobs_total"), Limit::Series(10));
        assert_eq!(policy.limit("app_http_bytes_total"), Limit::Series(50));
        assert_eq!(policy.limit("app_http_requests_total"), Limit::Unlimited);
        assert_eq!(policy.limit(names::CARDINALITY_OVERFLOW_TOTAL), Limit::Unlimited);
    }

    #[test]
    fn truncates_on_a_character_boundary() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "abc");
        // "é" is 2 bytes: a cut at 3 would split the second one.
        assert_eq!(truncate("éé", 3), "é");
        assert_eq!(truncate("日本", 2), "");
        assert_eq!(truncate("", 1), "");
    }

    #[test]
    fn folds_are_published_once_across_racing_scrapes() {
        let folds = Folds::default();
        assert!(folds.fold());
        assert!(!folds.fold());
        assert_eq!(folds.unpublished(), 2);
        assert_eq!(folds.unpublished(), 0);
        folds.fold();
        assert_eq!((folds.unpublished(), folds.total()), (1, 3));
    }
}
