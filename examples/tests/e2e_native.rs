//! Native histograms from the attribute to a real Prometheus: the demo with
//! `--native-histograms`, scraped by Debian's Prometheus 2.42 started with
//! `--enable-feature=native-histograms` (which asks for the protobuf format),
//! answers `histogram_count` and `histogram_quantile` over native series, and
//! the native-aware recording rules and dashboard queries return data.
//!
//! Needs `prometheus` and `promtool` (the README's test command, `bash
//! .ci/test`, installs them): a missing binary fails the test.

use std::process::Command;

use mesh_metrics::rules::{self, SloConfig, record};
use mesh_metrics_tests::{TempDir, get, percent_encode, required_tool};

mod support;
use support::{eventually, query, start_demo};

fn native_slo() -> SloConfig {
    SloConfig { evaluation_interval: "1s".to_owned(), native_histograms: true, ..SloConfig::default() }
}

fn number(sample: &serde_json::Value) -> Option<f64> {
    sample["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_2_42_answers_quantiles_over_the_demos_native_histograms() {
    let binary = required_tool("prometheus");
    let dir = TempDir::new("mesh-metrics-e2e-native");
    let rule_file = rules::to_yaml(&rules::rule_file(&native_slo()).expect("valid objectives")).expect("rules");
    let rules_path = dir.path().join("rules.yml");
    std::fs::write(&rules_path, rule_file).expect("write rules.yml");
    let check = Command::new(required_tool("promtool")).arg("check").arg("rules").arg(&rules_path).output();
    let check = check.expect("run promtool");
    assert!(check.status.success(), "promtool check rules: {}", String::from_utf8_lossy(&check.stdout));

    // Classic buckets kept too: Prometheus 2.42 ingests the native part only.
    // 16 callers: enough calls within a minute for the quantile to settle.
    let (mut demo, target) = start_demo(&["--native-histograms", "--keep-classic-buckets", "--workers", "16"]);
    let (mut prometheus, api_addr) = support::start_prometheus(&binary, &dir, target, "native-histograms");
    let log_tail = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    let up = eventually("up == 1", &mut [&mut demo, &mut prometheus], || {
        query(api_addr, "up{job=\"mesh-demo\"}").first().and_then(number)
    });
    assert_eq!(up, 1.0, "the scrape failed; prometheus log:\n{}", log_tail());

    let forecast = "mcp_mesh_request_duration_seconds{agent=\"weather-agent\",method=\"get_forecast\"}";
    let count = eventually("histogram_count over native series", &mut [&mut demo, &mut prometheus], || {
        let result = query(api_addr, &format!("histogram_count(rate({forecast}[1m]))"));
        result.first().and_then(number).filter(|rate| *rate > 0.0)
    });
    // `eventually` fails the test if the rate never rises above 0.
    assert!(count > 0.0);
    // The demo sends classic buckets alongside (its text formats show them),
    // but Prometheus 2.42 ingests a histogram with native buckets as native
    // only: there are no classic bucket series.
    let text = get(target, "/metrics").expect("scrape the demo as text").body;
    assert!(text.contains(
        "mcp_mesh_request_duration_seconds_bucket{agent=\"weather-agent\",method=\"get_forecast\",le=\"0.005\"}"
    ));
    assert!(query(api_addr, "mcp_mesh_request_duration_seconds_bucket").is_empty(), "no classic _bucket series");

    // The demo's get_forecast fails at once for one location in five
    // ("atlantis"); the others sleep 5 + U{0..59} ms in 80% of calls and
    // longer in the rest. So P(d <= x) = 0.2 + 0.8 * 0.8 * (x - 4) / 60 for
    // whole milliseconds x in 5..=64, and the 40th percentile is at
    // x = 22.75 ms, plus up to 1 ms of the timer rounding up to its next
    // tick: 22.75 to 24.75 ms. A native histogram of schema 3 answers within
    // one bucket's growth (2^(1/8), 9.05%) of it, give or take the sample's
    // error (below).
    let quantile = format!("histogram_quantile(0.4, sum(rate({forecast}[5m])))");
    let p40 = eventually("histogram_quantile over native series", &mut [&mut demo, &mut prometheus], || {
        // Enough calls for the sample quantile to settle: with 3,000, its
        // standard error is sqrt(0.4 * 0.6 / 3000) / (0.64 / 60 ms) = 0.8 ms.
        let calls = query(api_addr, &format!("histogram_count(increase({forecast}[5m]))")).first().and_then(number)?;
        if calls < 3_000.0 {
            return None;
        }
        query(api_addr, &quantile).first().and_then(number).filter(|value| value.is_finite())
    });
    eprintln!("get_forecast p40 from Prometheus 2.42 over native buckets: {:.2} ms", p40 * 1e3);
    let (low, high) = (0.02275 / 1.0905, 0.02475 * 1.0905);
    assert!((low..=high).contains(&p40), "p40 {p40} s is not within the schema's error of 22.75-24.75 ms");

    // The native-aware recording rules return data.
    for rule in [record::REQUEST_DURATION_P95, record::SLO_LATENCY] {
        let value = eventually(rule, &mut [&mut demo, &mut prometheus], || {
            query(api_addr, &format!("{rule}{{agent=\"weather-agent\"}}")).first().and_then(number)
        });
        assert!(value.is_finite(), "{rule} = {value}");
    }
    let miss = format!("{}:rate5m", record::SLO_LATENCY_MISS_RATIO);
    let miss_ratio = eventually(&miss, &mut [&mut demo, &mut prometheus], || {
        query(api_addr, &format!("{miss}{{agent=\"weather-agent\"}}")).first().and_then(number)
    });
    // Over the 0.5 s objective: the 5% of the 80% of forecasts that sleep
    // 700 ms or more, less the tenth cut at 200 ms by their caller (3.6% of
    // forecasts), over forecasts and as many instant current-conditions
    // calls: 1.8%, give or take the sample.
    assert!((0.005..=0.05).contains(&miss_ratio), "latency miss ratio {miss_ratio}");

    // Every query of the native dashboard is one Prometheus 2.42 accepts.
    for (title, queries) in rules::panel_queries_for(true) {
        for (expr, _) in queries {
            let response = get(api_addr, &format!("/api/v1/query?query={}", percent_encode(&expr))).expect("query");
            let body: serde_json::Value = serde_json::from_str(&response.body).expect("JSON");
            assert_eq!(body["status"], "success", "panel {title:?}: Prometheus refused {expr:?}: {body}");
        }
    }
}
