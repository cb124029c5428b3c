//! The mesh demo scraped by a real Prometheus server with exemplar storage:
//! the trace IDs the demo's requests carried come back from
//! `/api/v1/query_exemplars`, and the guide's queries return data.
//!
//! Needs `prometheus` and `promtool` (Debian's package; the README's test
//! command, `bash .ci/test`, installs them): a missing binary fails the test.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mesh_metrics::rules::{self, SloConfig};
use mesh_metrics_tests::{ChildGuard, TempDir, get, percent_encode, promtool_check_metrics, required_tool};

mod support;
use support::{api, eventually, query, start_demo};

/// Writes the generated rules, evaluated every second so the test need not
/// wait, and starts Prometheus with exemplar storage.
fn start_prometheus(binary: &std::path::Path, dir: &TempDir, target: SocketAddr) -> (ChildGuard, SocketAddr) {
    let slo = SloConfig { evaluation_interval: "1s".to_owned(), ..SloConfig::default() };
    let rule_file = rules::to_yaml(&rules::rule_file(&slo).expect("valid objectives")).expect("rules");
    std::fs::write(dir.path().join("rules.yml"), rule_file).expect("write rules.yml");
    support::start_prometheus(binary, dir, target, "exemplar-storage")
}

#[test]
fn prometheus_stores_the_demo_trace_ids_as_exemplars() {
    let binary = required_tool("prometheus");
    let dir = TempDir::new("mesh-metrics-e2e");
    let trace_log = dir.path().join("traceparents.log");
    let (mut demo, target) = start_demo(&["--trace-log", trace_log.to_str().expect("utf-8 path"), "--workers", "4"]);
    let (mut prometheus, api_addr) = start_prometheus(&binary, &dir, target);
    let log_tail = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();

    let up = eventually("up == 1", &mut [&mut demo, &mut prometheus], || {
        query(api_addr, "up{job=\"mesh-demo\"}").first().map(|s| s["value"][1].clone())
    });
    assert_eq!(up, "1", "the scrape failed; prometheus log:\n{}", log_tail());

    // The demo's exposition lints clean (the guide's gauge named `_total` is
    // exposed as `mcp_mesh_registry_agents`).
    let body = get(target, "/metrics").expect("scrape the demo").body;
    assert!(body.contains("mcp_mesh_registry_agents{"), "the registry's gauge is there");
    let lint = promtool_check_metrics(&required_tool("promtool"), &body).unwrap_or_else(|e| panic!("{e}"));
    assert!(lint.is_empty(), "promtool check metrics on the demo: {lint:?}");

    let exemplars = eventually("exemplars", &mut [&mut demo, &mut prometheus], || {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        let path = format!(
            "/api/v1/query_exemplars?query={}&start={}&end={}",
            percent_encode("mcp_mesh_request_duration_seconds_bucket"),
            now - 300,
            now + 60
        );
        let ids: Vec<String> = api(api_addr, &path)?
            .as_array()?
            .iter()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .filter_map(|exemplar| exemplar["labels"]["trace_id"].as_str().map(str::to_owned))
            .collect();
        (!ids.is_empty()).then_some(ids)
    });
    let used: HashSet<String> = std::fs::read_to_string(&trace_log)
        .expect("the demo's trace log")
        .lines()
        .filter_map(|header| header.split('-').nth(1).map(str::to_owned))
        .collect();
    for id in &exemplars {
        assert!(used.contains(id), "Prometheus returned trace ID {id}, which the demo never used");
    }

    let counter_exemplars = eventually("counter exemplars", &mut [&mut demo, &mut prometheus], || {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        let path = format!(
            "/api/v1/query_exemplars?query={}&start={}&end={}",
            percent_encode("mcp_mesh_requests_total"),
            now - 300,
            now + 60
        );
        let ids: Vec<String> = api(api_addr, &path)?
            .as_array()?
            .iter()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .filter_map(|exemplar| exemplar["labels"]["trace_id"].as_str().map(str::to_owned))
            .collect();
        (!ids.is_empty()).then_some(ids)
    });
    let used_now: HashSet<String> = std::fs::read_to_string(&trace_log)
        .expect("the demo's trace log")
        .lines()
        .filter_map(|header| header.split('-').nth(1).map(str::to_owned))
        .collect();
    for id in &counter_exemplars {
        assert!(used_now.contains(id), "a counter exemplar holds trace ID {id}, which the demo never used");
    }

    let rate = eventually("rate() data", &mut [&mut demo, &mut prometheus], || {
        let result = query(api_addr, "rate(mcp_mesh_requests_total[1m])");
        let positive = result.iter().any(|s| s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()) > Some(0.0));
        positive.then_some(result.len())
    });
    assert!(rate >= 3, "one rate per agent/method/status series");
    let p95 = eventually("p95 data", &mut [&mut demo, &mut prometheus], || {
        let promql = "histogram_quantile(0.95, sum by (le) (rate(mcp_mesh_request_duration_seconds_bucket[1m])))";
        let result = query(api_addr, promql);
        let value = result.first()?["value"][1].as_str()?.parse::<f64>().ok()?;
        value.is_finite().then_some(value)
    });
    assert!(p95 > 0.0 && p95 <= 5.0, "p95 latency {p95} s");

    // The analytics agent's business metrics, by currency.
    let currencies = eventually("business metrics", &mut [&mut demo, &mut prometheus], || {
        let result = query(api_addr, "sum by (currency) (rate(mcp_mesh_business_revenue_total[1m]))");
        (result.len() == 3).then_some(result.len())
    });
    assert_eq!(currencies, 3);

    // The process and runtime metrics every Prometheus client exports: the
    // demo's CPU use shows as a rate, and its runtime's workers are there.
    let cpu = eventually("process CPU rate", &mut [&mut demo, &mut prometheus], || {
        let result = query(api_addr, "rate(process_cpu_seconds_total{job=\"mesh-demo\"}[1m]) > 0");
        result.first()?["value"][1].as_str()?.parse::<f64>().ok()
    });
    assert!(cpu > 0.0, "the demo uses CPU: {cpu}");
    let workers = eventually("tokio runtime metrics", &mut [&mut demo, &mut prometheus], || {
        let result = query(api_addr, "tokio_workers{job=\"mesh-demo\",runtime=\"main\"}");
        result.first()?["value"][1].as_str()?.parse::<f64>().ok()
    });
    assert!(workers >= 1.0, "the demo's main runtime has workers: {workers}");
    let busy = eventually("runtime busy ratio rule", &mut [&mut demo, &mut prometheus], || {
        let result = query(api_addr, "mcp_mesh:tokio_workers_busy:ratio5m{job=\"mesh-demo\"}");
        result.first()?["value"][1].as_str()?.parse::<f64>().ok()
    });
    assert!((0.0..=1.0).contains(&busy), "a busy ratio: {busy}");

    // The generated recording rules run on the demo's data, and every query of
    // the generated dashboard is one Prometheus accepts.
    let recorded = eventually("recording rules", &mut [&mut demo, &mut prometheus], || {
        let result = query(api_addr, "mcp_mesh:request_rate{agent=\"weather-agent\"}");
        (!result.is_empty()).then_some(result.len())
    });
    assert!(recorded >= 1);
    for (title, queries) in rules::panel_queries() {
        for (expr, _) in queries {
            let path = format!("/api/v1/query?query={}", percent_encode(&expr));
            let response = get(api_addr, &path).expect("query");
            let body: serde_json::Value = serde_json::from_str(&response.body).expect("JSON");
            assert_eq!(body["status"], "success", "panel {title:?}: Prometheus refused {expr:?}: {body}");
        }
    }

    // Hundreds of idle connections held open: the demo, at default settings,
    // still has slots for Prometheus, whose every scrape meanwhile succeeds.
    let idle: Vec<std::net::TcpStream> =
        (0..600).map(|_| std::net::TcpStream::connect(target).expect("an idle connection")).collect();
    let held_since = Instant::now();
    let scrapes_while_held =
        eventually("scrapes while 600 connections idle", &mut [&mut demo, &mut prometheus], || {
            let held = held_since.elapsed().as_secs();
            if held < 4 {
                return None;
            }
            // The scrapes of the last few seconds, all while the connections were held.
            let window = held - 1;
            let result = query(api_addr, &format!("min_over_time(up{{job=\"mesh-demo\"}}[{window}s])"));
            let count = query(api_addr, &format!("count_over_time(up{{job=\"mesh-demo\"}}[{window}s])"));
            let count = count.first()?["value"][1].as_str()?.parse::<f64>().ok()?;
            let min = result.first()?["value"][1].as_str()?.to_owned();
            (count >= 1.0).then_some(min)
        });
    assert_eq!(scrapes_while_held, "1", "every scrape succeeded while 600 connections idled; log:\n{}", log_tail());

    // Then 1,000 concurrent gzipped scrapes: each gets its whole body (idle
    // connections make room as needed), and Prometheus is scraping
    // successfully again afterwards.
    let scrapes: Vec<_> = (0..1_000)
        .map(|_| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || gzip_scrape(target))
                .expect("a scraping thread")
        })
        .collect();
    let bodies: Vec<Vec<u8>> = scrapes.into_iter().map(|scrape| scrape.join().expect("scrape")).collect();
    assert_eq!(bodies.len(), 1_000);
    let text = gunzip(&bodies[999]);
    assert!(text.contains("mcp_mesh_requests_total{"), "a complete exposition");
    drop(idle);
    let flood_over = Instant::now();
    let healthy = eventually("a scrape after the flood", &mut [&mut demo, &mut prometheus], || {
        if flood_over.elapsed() < Duration::from_secs(2) {
            return None;
        }
        let result = query(api_addr, "up{job=\"mesh-demo\"}");
        result.first()?["value"][1].as_str().map(str::to_owned)
    });
    assert_eq!(healthy, "1", "Prometheus scrapes the demo after the flood; log:\n{}", log_tail());
}

/// One scrape asking for gzip over a fresh connection: the body, checked
/// against its announced length and encoding.
fn gzip_scrape(target: SocketAddr) -> Vec<u8> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(target).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: demo\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("response");
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").expect("end of head") + 4;
    let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    let body = response.split_off(end);
    assert_eq!(body.len(), length, "a complete body");
    body
}

/// Decodes with Python's `gzip` module: a decoder that is not ours.
fn gunzip(body: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Command::new("python3")
        .args(["-c", "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().expect("stdin").write_all(body).expect("write");
    let output = child.wait_with_output().expect("python3 finishes");
    assert!(output.status.success(), "gzip decoding failed");
    String::from_utf8(output.stdout).expect("UTF-8")
}
