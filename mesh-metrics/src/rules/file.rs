//! The rule file: recording rules, alerts and SLO burn-rate alerts, as a
//! Prometheus rule file or as a `PrometheusRule` object.

use std::collections::BTreeMap;

use serde::Serialize;

use super::SloConfig;
use super::promql::{self, WINDOWS, number, record};

/// A Prometheus rule file (`rule_files:` in `prometheus.yml`).
#[derive(Debug, Clone, Serialize)]
pub struct RuleFile {
    /// The rule groups.
    pub groups: Vec<Group>,
}

/// One rule group.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// How often it is evaluated.
    pub interval: String,
    /// Its rules, in order.
    pub rules: Vec<Rule>,
}

/// A recording rule or an alert.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Rule {
    /// `record: name` / `expr`.
    Record {
        /// The series it records.
        record: String,
        /// The PromQL.
        expr: String,
    },
    /// `alert: name` / `expr` / `for` / `labels` / `annotations`.
    Alert {
        /// The alert's name.
        alert: String,
        /// The PromQL: it fires for every series this returns.
        expr: String,
        /// How long the condition must hold.
        #[serde(rename = "for")]
        for_: String,
        /// Labels added to the alert (`severity`).
        labels: BTreeMap<String, String>,
        /// `summary` and `description`.
        annotations: BTreeMap<String, String>,
    },
}

fn recorded(name: &str, expr: String) -> Rule {
    Rule::Record { record: name.to_owned(), expr }
}

fn alert(name: &str, expr: String, for_: &str, severity: &str, summary: &str, description: &str) -> Rule {
    Rule::Alert {
        alert: name.to_owned(),
        expr,
        for_: for_.to_owned(),
        labels: BTreeMap::from([("severity".to_owned(), severity.to_owned())]),
        annotations: BTreeMap::from([
            ("summary".to_owned(), summary.to_owned()),
            ("description".to_owned(), description.to_owned()),
        ]),
    }
}

/// The guide's recording rules and alerts, and the SLO rules of `config`.
///
/// The objectives are validated first ([`SloConfig::validate`]): a latency
/// objective that is not a bucket bound would make every latency rule count a
/// bucket that does not exist.
pub fn rule_file(config: &SloConfig) -> Result<RuleFile, super::RulesError> {
    config.validate()?;
    let group = |name: &str, rules: Vec<Rule>| Group {
        name: name.to_owned(),
        interval: config.evaluation_interval.clone(),
        rules,
    };
    let recording = vec![
        recorded(record::REQUEST_RATE, promql::request_rate()),
        recorded(record::ERROR_RATE, promql::error_ratio(promql::BY_AGENT, "5m")),
        recorded(
            record::REQUEST_DURATION_P95,
            promql::quantile(0.95, promql::BY_AGENT, "5m", config.native_histograms),
        ),
        recorded(record::CONNECTIONS_SUM, promql::connections()),
        recorded(record::REGISTRY_HEALTH_SCORE, promql::registry_health_score(&config.registry_job)),
    ];
    let mut slo = vec![
        recorded(record::SLO_AVAILABILITY, promql::slo_availability()),
        recorded(record::SLO_LATENCY, promql::slo_latency(config.latency_seconds, config.native_histograms)),
    ];
    for window in WINDOWS {
        slo.push(recorded(
            &format!("{}:rate{window}", record::SLO_ERROR_RATIO),
            promql::error_ratio(promql::BY_AGENT, window),
        ));
    }
    for window in WINDOWS {
        slo.push(recorded(
            &format!("{}:rate{window}", record::SLO_LATENCY_MISS_RATIO),
            promql::latency_miss_ratio(config.latency_seconds, window, config.native_histograms),
        ));
    }
    // Each process and runtime, as scraped (by job and instance).
    let process = vec![
        recorded(record::PROCESS_CPU_RATE, promql::process_cpu_rate()),
        recorded(record::PROCESS_CPU_SATURATION, promql::process_cpu_saturation()),
        recorded(record::PROCESS_FDS_RATIO, promql::process_fds_ratio()),
        recorded(record::RUNTIME_BUSY_RATIO, promql::runtime_busy_ratio()),
    ];
    Ok(RuleFile {
        groups: vec![
            group("mcp_mesh.rules", recording),
            group("mcp_mesh.slo", slo),
            group("mcp_mesh.process", process),
            group("mcp_mesh.alerts", alerts(config)),
            group("prometheus.self", prometheus_alerts(config)),
        ],
    })
}

/// Prometheus watching itself. The guide's `PrometheusHighMemoryUsage`
/// divides the symbol table's bytes by the blocks' bytes, which measures no
/// memory; these measure what fails a Prometheus: memory against its limit,
/// series outgrowing what it is sized for, scrapes cut by a sample limit,
/// rules that fail to evaluate, compactions that fail, targets down.
fn prometheus_alerts(config: &SloConfig) -> Vec<Rule> {
    let job = &config.prometheus_job;
    vec![
        alert(
            "PrometheusMemoryNearLimit",
            format!(
                "process_resident_memory_bytes{{job=\"{job}\"}} / {} > 0.9",
                number(config.prometheus_memory_limit_bytes)
            ),
            "15m",
            "warning",
            "Prometheus is close to its memory limit",
            "{{ $labels.instance }} uses {{ $value | humanizePercentage }} of its memory limit; past it, it is killed.",
        ),
        alert(
            "PrometheusHeadSeriesGrowing",
            format!(
                "predict_linear(prometheus_tsdb_head_series{{job=\"{job}\"}}[1h], 4 * 3600) > {}",
                number(config.prometheus_series_limit)
            ),
            "30m",
            "warning",
            "Prometheus' series will outgrow what it is sized for within 4 hours",
            "{{ $labels.instance }} is on course for {{ $value | humanize }} head series: a label is probably unbounded.",
        ),
        alert(
            "PrometheusScrapeSampleLimitHit",
            "increase(prometheus_target_scrapes_exceeded_sample_limit_total[5m]) > 0".to_owned(),
            "0m",
            "warning",
            "Scrapes are rejected for exceeding their sample limit",
            "{{ $labels.instance }} rejected scrapes over their sample_limit in the last 5 minutes: their targets' series are lost.",
        ),
        alert(
            "PrometheusRuleEvaluationFailures",
            "increase(prometheus_rule_evaluation_failures_total[5m]) > 0".to_owned(),
            "5m",
            "critical",
            "Prometheus fails to evaluate rules",
            "{{ $labels.instance }} failed to evaluate rule group {{ $labels.rule_group }}: recording rules and alerts are missing.",
        ),
        alert(
            "PrometheusCompactionsFailed",
            "increase(prometheus_tsdb_compactions_failed_total[3h]) > 0".to_owned(),
            "0m",
            "warning",
            "Prometheus fails to compact its storage",
            "{{ $labels.instance }} failed a compaction in the last 3 hours: disk use grows and queries slow down.",
        ),
        alert(
            "PrometheusTargetDown",
            "up == 0".to_owned(),
            "5m",
            "warning",
            "A scrape target is down",
            "{{ $labels.instance }} of job {{ $labels.job }} has not answered a scrape for 5 minutes.",
        ),
    ]
}

fn alerts(config: &SloConfig) -> Vec<Rule> {
    let availability_budget = format!("(1 - {})", number(config.availability));
    let latency_budget = format!("(1 - {})", number(config.latency_objective));
    // Google SRE workbook: page on 2% of a 30-day budget in 1 h or 5% in 6 h;
    // ticket on 10% in 3 days (as 1 d and 3 d windows with their short partners).
    let page = [("1h", "5m", 14.4), ("6h", "30m", 6.0)];
    let ticket = [("1d", "2h", 3.0), ("3d", "6h", 1.0)];
    vec![
        alert(
            "MCPMeshTargetDown",
            "up{job=~\"mcp-mesh.*\"} == 0".to_owned(),
            "5m",
            "critical",
            "MCP Mesh target down",
            "Target {{ $labels.instance }} of job {{ $labels.job }} has been down for 5 minutes.",
        ),
        alert(
            "MCPMeshHighErrorRate",
            format!("{} > {}", record::ERROR_RATE, number(config.error_ratio_alert)),
            "5m",
            "warning",
            "MCP Mesh agent error rate is high",
            "{{ $labels.agent }} fails {{ $value | humanizePercentage }} of its requests.",
        ),
        alert(
            "MCPMeshLatencySLOViolation",
            format!("{} > {}", record::REQUEST_DURATION_P95, number(config.latency_seconds)),
            "10m",
            "warning",
            "MCP Mesh agent p95 latency above objective",
            "{{ $labels.agent }} p95 latency is {{ $value | humanizeDuration }}.",
        ),
        alert(
            "MCPMeshErrorBudgetBurnFast",
            promql::burn(record::SLO_ERROR_RATIO, &availability_budget, &page),
            "2m",
            "critical",
            "MCP Mesh agent is burning its error budget fast",
            "{{ $labels.agent }} would exhaust its availability error budget within days.",
        ),
        alert(
            "MCPMeshErrorBudgetBurnSlow",
            promql::burn(record::SLO_ERROR_RATIO, &availability_budget, &ticket),
            "15m",
            "warning",
            "MCP Mesh agent is burning its error budget",
            "{{ $labels.agent }} is using its availability error budget faster than it accrues.",
        ),
        alert(
            "MCPMeshLatencyBudgetBurnFast",
            promql::burn(record::SLO_LATENCY_MISS_RATIO, &latency_budget, &page),
            "2m",
            "critical",
            "MCP Mesh agent is burning its latency budget fast",
            "Too many of {{ $labels.agent }}'s requests are slower than the latency objective.",
        ),
        alert(
            "MCPMeshLatencyBudgetBurnSlow",
            promql::burn(record::SLO_LATENCY_MISS_RATIO, &latency_budget, &ticket),
            "15m",
            "warning",
            "MCP Mesh agent is burning its latency budget",
            "{{ $labels.agent }}'s slow requests use its latency budget faster than it accrues.",
        ),
        alert(
            "MCPMeshCardinalityOverflow",
            promql::cardinality_overflow(),
            "0m",
            "warning",
            "A metric reached its cardinality limit",
            "{{ $labels.metric }} folds new label sets into its otel_metric_overflow series: a label \
             probably carries an unbounded value.",
        ),
        alert(
            "MCPMeshFileDescriptorsExhausting",
            format!("{} > 0.8", record::PROCESS_FDS_RATIO),
            "10m",
            "warning",
            "A process is running out of file descriptors",
            "{{ $labels.instance }} has {{ $value | humanizePercentage }} of its file descriptors open; \
             at the limit it cannot accept connections.",
        ),
        alert(
            "MCPMeshProcessCPUSaturated",
            format!("{} > 0.9", record::PROCESS_CPU_SATURATION),
            "15m",
            "warning",
            "A process uses nearly all the CPU its runtime has workers for",
            "{{ $labels.instance }} uses {{ $value | humanizePercentage }} of one core per worker of its \
             main tokio runtime.",
        ),
        alert(
            "MCPMeshRuntimeBusy",
            format!("{} > 0.9", record::RUNTIME_BUSY_RATIO),
            "15m",
            "warning",
            "A tokio runtime's workers are busy all the time",
            "Runtime {{ $labels.runtime }} of {{ $labels.instance }} keeps its workers busy \
             {{ $value | humanizePercentage }} of the time: tasks wait to be polled.",
        ),
    ]
}

/// A `monitoring.coreos.com/v1` `PrometheusRule` (Prometheus Operator).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRule {
    api_version: &'static str,
    kind: &'static str,
    metadata: super::kubernetes::Metadata,
    spec: RuleFile,
}

/// The rule file as a `PrometheusRule` in `config.namespace`.
pub fn prometheus_rule(config: &SloConfig) -> Result<PrometheusRule, super::RulesError> {
    Ok(PrometheusRule {
        api_version: "monitoring.coreos.com/v1",
        kind: "PrometheusRule",
        metadata: super::kubernetes::Metadata::new(
            "mcp-mesh-rules",
            &config.namespace,
            &[("prometheus", "kube-prometheus"), ("role", "alert-rules"), ("app", "mcp-mesh")],
        ),
        spec: rule_file(config)?,
    })
}
