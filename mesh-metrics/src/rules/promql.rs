//! The PromQL, built from the metric names the code records.

use crate::names::{
    CARDINALITY_OVERFLOW_TOTAL, CONNECTIONS_ACTIVE, REQUEST_DURATION_SECONDS, REQUESTS_TOTAL, process, tokio,
};

/// The recording rules' names.
pub mod record {
    /// Requests per second, by agent and namespace.
    pub const REQUEST_RATE: &str = "mcp_mesh:request_rate";
    /// Share of requests that failed, by agent and namespace.
    pub const ERROR_RATE: &str = "mcp_mesh:error_rate";
    /// 95th percentile latency in seconds, by agent and namespace.
    pub const REQUEST_DURATION_P95: &str = "mcp_mesh:request_duration:p95";
    /// Calls in flight, by agent and namespace.
    pub const CONNECTIONS_SUM: &str = "mcp_mesh:connections:sum";
    /// The registry's health, 0 to 100, by namespace.
    pub const REGISTRY_HEALTH_SCORE: &str = "mcp_mesh:registry:health_score";
    /// Share of requests that did not fail over 5 minutes, by agent.
    pub const SLO_AVAILABILITY: &str = "mcp_mesh:slo:availability";
    /// 1 when the 95th percentile latency is under the objective, else 0, by agent.
    pub const SLO_LATENCY: &str = "mcp_mesh:slo:latency";
    /// Error ratio over a window (`…:rate5m`, `…:rate1h`, ...), by agent.
    pub const SLO_ERROR_RATIO: &str = "mcp_mesh:slo:error_ratio";
    /// Share of requests slower than the latency objective over a window, by agent.
    pub const SLO_LATENCY_MISS_RATIO: &str = "mcp_mesh:slo:latency_miss_ratio";
    /// CPU seconds per second of each process, over 5 minutes.
    pub const PROCESS_CPU_RATE: &str = "mcp_mesh:process_cpu_seconds:rate5m";
    /// CPU seconds per second over the main runtime's worker count (by
    /// default, the cores tokio saw): near 1 the process is CPU-bound.
    pub const PROCESS_CPU_SATURATION: &str = "mcp_mesh:process_cpu:saturation5m";
    /// Open file descriptors over the limit.
    pub const PROCESS_FDS_RATIO: &str = "mcp_mesh:process_fds:ratio";
    /// Share of the time a runtime's workers were busy, over 5 minutes.
    pub const RUNTIME_BUSY_RATIO: &str = "mcp_mesh:tokio_workers_busy:ratio5m";
}

/// The windows the burn-rate alerts look at.
pub(crate) const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

pub(crate) fn request_rate() -> String {
    format!("sum by (agent, namespace) (rate({REQUESTS_TOTAL}[5m]))")
}

/// Errors over all requests, both summed to the same labels so they match
/// one to one. An agent with requests but no `status="error"` series (one
/// not instrumented by us, or a series lost to a restart) has a ratio of 0,
/// not none: the `or` gives it a zero error rate.
pub(crate) fn error_ratio(by: &str, window: &str) -> String {
    format!(
        "(\n  sum by ({by}) (rate({REQUESTS_TOTAL}{{status=\"error\"}}[{window}]))\n  or\n  \
         sum by ({by}) (rate({REQUESTS_TOTAL}[{window}])) * 0\n)\n/\nsum by ({by}) (rate({REQUESTS_TOTAL}[{window}]))"
    )
}

/// The labels every per-agent rule aggregates to, in both groups.
pub(crate) const BY_AGENT: &str = "agent, namespace";

/// A selector for the bucket whose bound is `bound`, matching both ways the
/// bound is written: `le="1"` (the classic text format, Prometheus 2) and
/// `le="1.0"` (OpenMetrics' canonical numbers, which Prometheus 3 also
/// normalises ingested `le` values to).
pub(crate) fn le_matcher(bound: f64) -> String {
    let forms = [number(bound), crate::render::number::canonical(bound)];
    let mut alternatives: Vec<String> =
        forms.iter().map(|form| form.replace('.', "\\\\.").replace('+', "\\\\+")).collect();
    alternatives.dedup();
    format!("le=~\"{}\"", alternatives.join("|"))
}

/// The `q` quantile of the request duration over `window`, summed `by`
/// these labels (none: ""). Classic buckets are summed by `le` too; a native
/// histogram is a single series whose buckets Prometheus sums itself.
pub(crate) fn quantile(q: f64, by: &str, window: &str, native: bool) -> String {
    let duration = REQUEST_DURATION_SECONDS;
    match (native, by) {
        (true, "") => format!("histogram_quantile({q}, sum(rate({duration}[{window}])))"),
        (true, by) => format!("histogram_quantile({q}, sum by ({by}) (rate({duration}[{window}])))"),
        (false, "") => format!("histogram_quantile({q}, sum by (le) (rate({duration}_bucket[{window}])))"),
        (false, by) => format!("histogram_quantile({q}, sum by ({by}, le) (rate({duration}_bucket[{window}])))"),
    }
}

pub(crate) fn connections() -> String {
    format!("sum by (agent, namespace) ({CONNECTIONS_ACTIVE})")
}

/// The guide's health score, with its traps fixed: every term is reduced to
/// `namespace` so they match, and the latency term compares (`< bool`).
pub(crate) fn registry_health_score(registry_job: &str) -> String {
    format!(
        "(\n  max by (namespace) (up{{job=\"{registry_job}\"}}) * 100\n  \
         + (1 - max by (namespace) ({er}{{agent=\"registry\"}})) * 50\n  \
         + (max by (namespace) ({p95}{{agent=\"registry\"}}) < bool 0.5) * 50\n) / 2",
        er = record::ERROR_RATE,
        p95 = record::REQUEST_DURATION_P95,
    )
}

pub(crate) fn slo_availability() -> String {
    format!("1 - (\n{}\n)", error_ratio(BY_AGENT, "5m"))
}

pub(crate) fn slo_latency(latency: f64, native: bool) -> String {
    format!("{} < bool {}", quantile(0.95, BY_AGENT, "5m", native), number(latency))
}

/// Requests slower than `latency` over all requests. The bucket is matched
/// in both forms its bound may be written in (see [`le_matcher`]); a native
/// histogram answers with `histogram_fraction` (Prometheus 2.40+), for any
/// latency, interpolating within the bucket that holds it.
pub(crate) fn latency_miss_ratio(latency: f64, window: &str, native: bool) -> String {
    if native {
        return format!(
            "1 - histogram_fraction(0, {}, sum by ({BY_AGENT}) (rate({REQUEST_DURATION_SECONDS}[{window}])))",
            number(latency)
        );
    }
    format!(
        "1 - (\n  sum by ({BY_AGENT}) (rate({REQUEST_DURATION_SECONDS}_bucket{{{le}}}[{window}]))\n  /\n  \
         sum by ({BY_AGENT}) (rate({REQUEST_DURATION_SECONDS}_count[{window}]))\n)",
        le = le_matcher(latency)
    )
}

/// A burn-rate condition over a long and a short window, both above
/// `factor` times the error budget (Google SRE workbook, "multiwindow,
/// multi-burn-rate alerts").
pub(crate) fn burn(ratio_rule: &str, budget: &str, pairs: &[(&str, &str, f64)]) -> String {
    pairs
        .iter()
        .map(|(long, short, factor)| {
            let threshold = format!("({} * {budget})", number(*factor));
            format!("({ratio_rule}:rate{long} > {threshold}\nand\n{ratio_rule}:rate{short} > {threshold})")
        })
        .collect::<Vec<_>>()
        .join("\nor\n")
}

pub(crate) fn cardinality_overflow() -> String {
    format!("sum by (metric) (increase({CARDINALITY_OVERFLOW_TOTAL}[10m])) > 0")
}

/// The queries of the dashboard's panels, by title: each must be accepted by
/// Prometheus as is (no Grafana-only variables).
pub fn panel_queries() -> Vec<(&'static str, Vec<(String, String)>)> {
    panel_queries_for(false)
}

/// [`panel_queries`] for a request duration kept as classic buckets or, with
/// `native`, as a native histogram.
pub fn panel_queries_for(native: bool) -> Vec<(&'static str, Vec<(String, String)>)> {
    let by_agent = |rule: &str| format!("sum by (agent) ({rule})");
    vec![
        ("Request rate", vec![(by_agent(record::REQUEST_RATE), "{{agent}}".to_owned())]),
        ("Error ratio", vec![(format!("max by (agent) ({})", record::ERROR_RATE), "{{agent}}".to_owned())]),
        (
            "Latency p50 / p95 / p99",
            vec![
                (quantile(0.5, "", "5m", native), "p50".to_owned()),
                (format!("max({})", record::REQUEST_DURATION_P95), "p95".to_owned()),
                (quantile(0.99, "", "5m", native), "p99".to_owned()),
            ],
        ),
        (
            "Latency heatmap",
            vec![(library("latency-heatmap", native), if native { "latency" } else { "{{le}}" }.to_owned())],
        ),
        ("In flight", vec![(by_agent(record::CONNECTIONS_SUM), "{{agent}}".to_owned())]),
        ("Top agents by request rate", vec![(library("top-agents", native), "{{agent}}".to_owned())]),
        (
            "Cardinality overflow",
            vec![(format!("sum by (metric) (rate({CARDINALITY_OVERFLOW_TOTAL}[5m]))"), "{{metric}}".to_owned())],
        ),
        ("Process CPU", vec![(record::PROCESS_CPU_RATE.to_owned(), "{{instance}}".to_owned())]),
        ("Process resident memory", vec![(process::RESIDENT_MEMORY_BYTES.to_owned(), "{{instance}}".to_owned())]),
        (
            "Process file descriptors",
            vec![(format!("{} * 100", record::PROCESS_FDS_RATIO), "{{instance}} % of limit".to_owned())],
        ),
        ("Process threads", vec![(process::THREADS.to_owned(), "{{instance}}".to_owned())]),
        ("Runtime workers busy", vec![(record::RUNTIME_BUSY_RATIO.to_owned(), "{{instance}} {{runtime}}".to_owned())]),
        (
            "Runtime tasks and queue",
            vec![
                (tokio::ALIVE_TASKS.to_owned(), "{{instance}} {{runtime}} alive".to_owned()),
                (tokio::GLOBAL_QUEUE_DEPTH.to_owned(), "{{instance}} {{runtime}} queued".to_owned()),
            ],
        ),
    ]
}

pub(crate) fn process_cpu_rate() -> String {
    format!("rate({}[5m])", process::CPU_SECONDS_TOTAL)
}

/// CPU use against the workers of the runtime `install()` ran in.
pub(crate) fn process_cpu_saturation() -> String {
    format!("{} / ignoring(runtime) {}{{runtime=\"main\"}}", record::PROCESS_CPU_RATE, tokio::WORKERS)
}

pub(crate) fn process_fds_ratio() -> String {
    format!("{} / {}", process::OPEN_FDS, process::MAX_FDS)
}

/// Busy seconds per second summed over a runtime's workers, over its workers.
pub(crate) fn runtime_busy_ratio() -> String {
    format!("sum without (worker) (rate({}[5m])) / {}", tokio::WORKER_BUSY_SECONDS_TOTAL, tokio::WORKERS)
}

/// The expression of the query library's `name` (the dashboard shows the
/// library's queries, so both say the same).
fn library(name: &str, native: bool) -> String {
    super::queries(&super::SloConfig { native_histograms: native, ..super::SloConfig::default() })
        .into_iter()
        .find(|query| query.name == name)
        .map(|query| query.expr)
        .unwrap_or_default()
}

/// A number as the exposition and PromQL both read it.
pub(crate) fn number(value: f64) -> String {
    let mut out = String::new();
    crate::render::number::float(&mut out, value);
    out
}
