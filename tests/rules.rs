//! The generated rules, objects and configs, checked by promtool: the rule
//! file loads, its recording rules compute what the hand-written unit tests
//! (`rules/rules_test.yml`) expect, its alerts fire when they should and stay
//! silent when they should not, and the scrape config is one Prometheus accepts.

use std::path::Path;
use std::process::Command;

use mesh_metrics::rules::{self, ScrapeOptions, SloConfig};
use mesh_metrics_tests::{TempDir, required_tool};

fn promtool(promtool: &Path, args: &[&str], dir: &Path) -> String {
    let output = Command::new(promtool).args(args).current_dir(dir).output().expect("promtool runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn generated_rules_load_compute_and_alert_as_specified() {
    let yaml = rules::to_yaml(&rules::rule_file(&SloConfig::default()).expect("valid objectives")).expect("yaml");
    assert!(yaml.contains("< bool 0.5"), "the health score compares:\n{yaml}");
    assert!(!yaml.contains("< 0.5"), "no filtering comparison:\n{yaml}");
    assert!(!yaml.contains("group_left"), "ratios match one to one:\n{yaml}");
    let promtool_path = required_tool("promtool");
    let dir = TempDir::new("mesh-metrics-rules");
    std::fs::write(dir.path().join("rules.yml"), &yaml).expect("write rules");
    let tests = concat!(env!("CARGO_MANIFEST_DIR"), "/rules/rules_test.yml");
    std::fs::copy(tests, dir.path().join("rules_test.yml")).expect("copy tests");
    let checked = promtool(&promtool_path, &["check", "rules", "rules.yml"], dir.path());
    assert!(checked.contains("SUCCESS"), "{checked}");
    promtool(&promtool_path, &["test", "rules", "rules_test.yml"], dir.path());
}

#[test]
fn other_objectives_change_the_thresholds_and_still_load() {
    let config =
        SloConfig { availability: 0.99, latency_seconds: 0.25, latency_objective: 0.95, ..SloConfig::default() };
    let yaml = rules::to_yaml(&rules::rule_file(&config).expect("valid objectives")).expect("yaml");
    assert!(yaml.contains("(14.4 * (1 - 0.99))"), "{yaml}");
    // The bucket in both forms its bound is written in (Prometheus 2 and 3).
    assert!(yaml.contains(r#"le=~"0\\.25""#), "{yaml}");
    let not_a_bound = SloConfig { latency_seconds: 0.3, ..SloConfig::default() };
    let refused = rules::rule_file(&not_a_bound).expect_err("0.3 s is not a bucket bound");
    assert!(refused.to_string().contains("0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5"), "{refused}");
    let custom = SloConfig { latency_seconds: 0.3, buckets: vec![0.1, 0.3, 1.0], ..SloConfig::default() };
    assert!(rules::rule_file(&custom).is_ok(), "a bound of the given buckets");
    assert!(yaml.contains("< bool 0.25"), "{yaml}");
    assert!(SloConfig { availability: 1.0, ..SloConfig::default() }.validate().is_err());
    assert!(SloConfig { latency_seconds: f64::NAN, ..SloConfig::default() }.validate().is_err());
    let promtool_path = required_tool("promtool");
    let dir = TempDir::new("mesh-metrics-rules-objectives");
    std::fs::write(dir.path().join("rules.yml"), &yaml).expect("write rules");
    promtool(&promtool_path, &["check", "rules", "rules.yml"], dir.path());
}

#[test]
fn the_prometheus_rule_object_carries_the_same_groups() {
    let object =
        rules::to_yaml(&rules::prometheus_rule(&SloConfig::default()).expect("valid objectives")).expect("yaml");
    let parsed: yaml_serde::Value = yaml_serde::from_str(&object).expect("valid YAML");
    assert_eq!(parsed["apiVersion"].as_str(), Some("monitoring.coreos.com/v1"));
    assert_eq!(parsed["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(parsed["metadata"]["namespace"].as_str(), Some("monitoring"));
    let spec = yaml_serde::to_string(&parsed["spec"]).expect("spec");
    assert_eq!(
        spec,
        rules::to_yaml(&rules::rule_file(&SloConfig::default()).expect("valid objectives")).expect("yaml")
    );
    let promtool_path = required_tool("promtool");
    let dir = TempDir::new("mesh-metrics-prometheus-rule");
    std::fs::write(dir.path().join("spec.yml"), spec).expect("write spec");
    promtool(&promtool_path, &["check", "rules", "spec.yml"], dir.path());
}

#[test]
fn discovery_objects_keep_the_metrics_agent_label() {
    let monitors = rules::to_yaml_documents(&rules::service_monitors("mcp-mesh")).expect("yaml");
    let pod = rules::to_yaml(&rules::pod_monitor("mcp-mesh")).expect("yaml");
    for text in [&monitors, &pod] {
        assert!(text.contains("targetLabel: agent_name"), "{text}");
        assert!(!text.contains("targetLabel: agent\n"), "must not overwrite the metrics' agent label:\n{text}");
    }
    let kinds: Vec<String> = monitors
        .split("---\n")
        .filter(|doc| !doc.trim().is_empty())
        .map(|doc| {
            let value: yaml_serde::Value = yaml_serde::from_str(doc).expect("valid YAML");
            format!(
                "{}/{}",
                value["kind"].as_str().unwrap_or_default(),
                value["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(kinds, ["ServiceMonitor/mcp-mesh-registry", "ServiceMonitor/mcp-mesh-agents"]);
    let pod: yaml_serde::Value = yaml_serde::from_str(&pod).expect("valid YAML");
    assert_eq!(pod["spec"]["podMetricsEndpoints"][0]["port"].as_str(), Some("metrics"));
}

#[test]
fn the_scrape_config_is_valid_with_federation_remote_write_and_shards() {
    let options = ScrapeOptions {
        static_targets: vec!["127.0.0.1:9464".into(), "127.0.0.1:9465".into()],
        federate: vec!["prometheus-us-east-1:9090".into()],
        remote_write: Some("https://mimir.example.com/api/v1/push".into()),
        rule_files: vec!["rules.yml".into()],
        alertmanagers: vec!["alertmanager:9093".into()],
        shard: Some((3, 2)),
        external_labels: [("cluster".to_owned(), "production".to_owned())].into(),
        // Debian's Prometheus is built without Kubernetes discovery.
        kubernetes: false,
    };
    let yaml = rules::to_yaml(&rules::scrape_config(&options).expect("config")).expect("yaml");
    for expected in
        ["action: hashmod", "modulus: 3", "regex: '2'", "'{__name__=~\"mcp_mesh:.*\"}'", "regex: mcp_mesh:.*"]
    {
        assert!(yaml.contains(expected), "missing {expected:?} in\n{yaml}");
    }
    let with_kubernetes =
        rules::to_yaml(&rules::scrape_config(&ScrapeOptions::default()).expect("config")).expect("yaml");
    assert!(with_kubernetes.contains("kubernetes_sd_configs") && with_kubernetes.contains("job_name: mcp-mesh-agents"));
    assert!(rules::scrape_config(&ScrapeOptions { shard: Some((2, 2)), ..ScrapeOptions::default() }).is_err());

    let promtool_path = required_tool("promtool");
    let dir = TempDir::new("mesh-metrics-scrape-config");
    std::fs::write(dir.path().join("prometheus.yml"), yaml).expect("write config");
    let rules_yaml = rules::to_yaml(&rules::rule_file(&SloConfig::default()).expect("valid objectives")).expect("yaml");
    std::fs::write(dir.path().join("rules.yml"), rules_yaml).expect("write rules");
    promtool(&promtool_path, &["check", "config", "prometheus.yml"], dir.path());
}

#[test]
fn the_dashboard_is_grafana_json_over_the_recording_rules() {
    let json = rules::to_json(&rules::dashboard()).expect("json");
    let dashboard: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    assert_eq!(
        titles,
        [
            "Request rate",
            "Error ratio",
            "Latency p50 / p95 / p99",
            "Latency heatmap",
            "In flight",
            "Top agents by request rate",
            "Cardinality overflow",
            "Process CPU",
            "Process resident memory",
            "Process file descriptors",
            "Process threads",
            "Runtime workers busy",
            "Runtime tasks and queue"
        ]
    );
    let exprs: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.iter().any(|e| e.contains("mcp_mesh:request_rate")));
    assert!(exprs.iter().all(|e| !e.contains('$')), "no Grafana-only variables in queries: {exprs:?}");
}

/// A whole-number latency objective matches its bucket however the bound was
/// written: `le="1"` (classic text, Prometheus 2) or `le="1.0"` (OpenMetrics'
/// canonical numbers, and what Prometheus 3 normalises every `le` to).
#[test]
fn a_whole_number_objective_matches_both_forms_of_its_bucket() {
    let config = SloConfig { latency_seconds: 1.0, ..SloConfig::default() };
    let yaml = rules::to_yaml(&rules::rule_file(&config).expect("valid objectives")).expect("yaml");
    let promtool_path = required_tool("promtool");
    let dir = TempDir::new("mesh-metrics-rules-le");
    std::fs::write(dir.path().join("rules.yml"), &yaml).expect("write rules");
    // Two agents, one scraped in each form; each has 10% of its requests over 1 s.
    let tests = r#"
rule_files:
  - rules.yml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'mcp_mesh_request_duration_seconds_bucket{agent="classic",namespace="mesh",le="1"}'
        values: '0+54x120'
      - series: 'mcp_mesh_request_duration_seconds_count{agent="classic",namespace="mesh"}'
        values: '0+60x120'
      - series: 'mcp_mesh_request_duration_seconds_bucket{agent="openmetrics",namespace="mesh",le="1.0"}'
        values: '0+54x120'
      - series: 'mcp_mesh_request_duration_seconds_count{agent="openmetrics",namespace="mesh"}'
        values: '0+60x120'
    promql_expr_test:
      - expr: round(mcp_mesh:slo:latency_miss_ratio:rate1h, 0.001)
        eval_time: 90m
        exp_samples:
          - labels: '{agent="classic",namespace="mesh"}'
            value: 0.1
          - labels: '{agent="openmetrics",namespace="mesh"}'
            value: 0.1
"#;
    std::fs::write(dir.path().join("le_test.yml"), tests).expect("write tests");
    promtool(&promtool_path, &["test", "rules", "le_test.yml"], dir.path());
}

/// Every query of the library, evaluated by promtool over series with known
/// values (through the generated recording rules it builds on).
#[test]
fn the_query_library_computes_what_it_says() {
    let config = SloConfig::default();
    let yaml = rules::to_yaml(&rules::rule_file(&config).expect("valid objectives")).expect("yaml");
    let library = rules::queries(&config);
    let expr = |name: &str| library.iter().find(|q| q.name == name).map(|q| q.expr.clone()).expect("in the library");
    assert_eq!(library.len(), 6, "a test below for every query");
    let promtool_path = required_tool("promtool");
    let dir = TempDir::new("mesh-metrics-rules-queries");
    std::fs::write(dir.path().join("rules.yml"), &yaml).expect("write rules");
    // Agent "a": 10 req/s, 10% errors, every request between 0.1 and 0.5 s.
    // Agent "b": 1 req/s, no errors, every request under 0.1 s.
    let traffic = r#"
      - series: 'mcp_mesh_requests_total{agent="a",namespace="mesh",status="success"}'
        values: '0+540x100'
      - series: 'mcp_mesh_requests_total{agent="a",namespace="mesh",status="error"}'
        values: '0+60x100'
      - series: 'mcp_mesh_requests_total{agent="b",namespace="mesh",status="success"}'
        values: '0+60x100'
      - series: 'mcp_mesh_request_duration_seconds_bucket{agent="a",namespace="mesh",le="0.1"}'
        values: '0x100'
      - series: 'mcp_mesh_request_duration_seconds_bucket{agent="a",namespace="mesh",le="0.5"}'
        values: '0+600x100'
      - series: 'mcp_mesh_request_duration_seconds_bucket{agent="a",namespace="mesh",le="+Inf"}'
        values: '0+600x100'
      - series: 'mcp_mesh_request_duration_seconds_bucket{agent="b",namespace="mesh",le="0.1"}'
        values: '0+60x100'
      - series: 'mcp_mesh_request_duration_seconds_bucket{agent="b",namespace="mesh",le="0.5"}'
        values: '0+60x100'
      - series: 'mcp_mesh_request_duration_seconds_bucket{agent="b",namespace="mesh",le="+Inf"}'
        values: '0+60x100'"#;
    let tests = format!(
        r#"
rule_files:
  - rules.yml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:{traffic}
    promql_expr_test:
      - expr: round({top}, 0.001)
        eval_time: 30m
        exp_samples:
          - labels: '{{agent="a"}}'
            value: 10
          - labels: '{{agent="b"}}'
            value: 1
      - expr: round({slowest}, 0.001)
        eval_time: 30m
        exp_samples:
          - labels: '{{agent="a"}}'
            value: 0.48
          - labels: '{{agent="b"}}'
            value: 0.095
      - expr: round({over}, 0.001)
        eval_time: 30m
        exp_samples:
          - labels: '{{agent="a"}}'
            value: 0.1
      - expr: round({heatmap}, 0.001)
        eval_time: 30m
        exp_samples:
          - labels: '{{le="0.1"}}'
            value: 1
          - labels: '{{le="0.5"}}'
            value: 11
          - labels: '{{le="+Inf"}}'
            value: 11
      - expr: round({capacity}, 0.001)
        eval_time: 95m
        exp_samples:
          - labels: '{{agent="a"}}'
            value: 10
          - labels: '{{agent="b"}}'
            value: 1
  # Agent "c" served 1 req/s for a week, then 2 req/s (minute samples, so
  # the 5-minute rate under the recording rule has data all along).
  - interval: 1m
    input_series:
      - series: 'mcp_mesh_requests_total{{agent="c",namespace="mesh",status="success"}}'
        values: '0+60x10080 604920+120x239'
    promql_expr_test:
      - expr: round({week}, 0.001)
        eval_time: 171h
        exp_samples:
          - labels: '{{agent="c"}}'
            value: 2
"#,
        top = expr("top-agents"),
        slowest = expr("slowest-agents"),
        over = expr("agents-over-error-ratio"),
        heatmap = expr("latency-heatmap"),
        capacity = expr("capacity-in-a-week"),
        week = expr("week-over-week"),
    );
    std::fs::write(dir.path().join("queries_test.yml"), tests).expect("write tests");
    promtool(&promtool_path, &["test", "rules", "queries_test.yml"], dir.path());
}
