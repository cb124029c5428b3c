//! OTLP push, read by the official OpenTelemetry protobuf definitions (the
//! Python `opentelemetry-proto` package in `support/otlp_receiver.py`):
//! names, attributes, values, buckets and exemplars agree with the same run's
//! `/metrics`; a receiver that fails and then recovers loses no count; a
//! partial success is reported, not retried; `shutdown().await` pushes last.
//!
//! Its own test binary: `install()` happens once per process.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mesh_metrics::trace::TraceId;
use mesh_metrics::{Histogram, Metrics, instrumented};
use mesh_metrics_tests::{ChildGuard, Format, Warnings, get, strict_parse, strict_parser};
use serde_json::Value;

const RECEIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/support/otlp_receiver.py");

#[instrumented(agent = "otlp-agent")]
fn checkout(#[trace_id] trace: TraceId, n: u64) -> Result<u64, String> {
    let _ = trace;
    if n % 5 == 0 { Err("declined".into()) } else { Ok(n) }
}

#[derive(Metrics)]
#[metrics(prefix = "otlp")]
struct Business {
    /// Payload sizes, as a native histogram.
    #[metric(native)]
    payload_bytes: Histogram,
}

/// Sizes pushed into the native histogram (away from bucket boundaries).
const PAYLOADS: [f64; 6] = [0.0, 100.0, 2_000.0, 2_100.0, 1e6, 1e6];

struct Receiver {
    _child: ChildGuard,
    stdin: ChildStdin,
    records: mpsc::Receiver<Value>,
    port: u16,
}

impl Receiver {
    fn start() -> Self {
        strict_parser(); // python3 with its packages, or a failure saying how to install them
        let mut child = ChildGuard::spawn(
            "otlp_receiver.py",
            Command::new("python3").arg(RECEIVER).stdin(Stdio::piped()).stdout(Stdio::piped()),
        );
        let stdin = child.child().stdin.take().expect("stdin");
        let stdout = child.child().stdout.take().expect("stdout");
        let (sender, records) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let record: Value = serde_json::from_str(&line).expect("a JSON line");
                if sender.send(record).is_err() {
                    break;
                }
            }
        });
        let first = records.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            panic!("the receiver did not start; it needs `python3 -m pip install opentelemetry-proto` (bash .ci/test installs it)")
        });
        let port = first["port"].as_u64().and_then(|p| u16::try_from(p).ok()).expect("a port");
        Self { _child: child, stdin, records, port }
    }

    fn command(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("command");
        self.stdin.flush().expect("flush");
    }

    /// The next record that satisfies `wanted`, within a generous time.
    fn next(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let record = self.records.recv_timeout(left).unwrap_or_else(|_| panic!("no push: {what}"));
            if wanted(&record) {
                return record;
            }
        }
    }
}

/// The metrics of a decoded request, by name.
fn metrics_of(record: &Value) -> BTreeMap<String, Value> {
    let scopes = record["request"]["resource_metrics"][0]["scope_metrics"].as_array().cloned().unwrap_or_default();
    scopes
        .iter()
        .flat_map(|scope| scope["metrics"].as_array().cloned().unwrap_or_default())
        .map(|metric| (metric["name"].as_str().unwrap_or_default().to_owned(), metric))
        .collect()
}

fn attributes(point: &Value) -> BTreeMap<String, String> {
    point["attributes"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|kv| {
                    (
                        kv["key"].as_str().unwrap_or_default().to_owned(),
                        kv["value"]["string_value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A 64-bit protobuf integer, which the JSON form writes as a string.
fn int(value: &Value) -> u64 {
    value.as_str().and_then(|s| s.parse().ok()).or_else(|| value.as_u64()).unwrap_or(0)
}

/// Decodes standard base64 (how the JSON form writes `bytes`).
fn base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = ALPHABET.iter().position(|c| *c == byte).expect("base64") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_what_is_scraped_and_loses_nothing_to_an_outage() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let warnings = Warnings::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(warnings.clone())).expect("subscriber");

    let mut receiver = Receiver::start();
    // The receiver is down from the start.
    receiver.command("fail 1000000");
    let mut config = mesh_metrics::OtlpConfig::new(format!("http://127.0.0.1:{}", receiver.port));
    config.interval = Duration::from_secs(1);
    config.timeout = Duration::from_secs(2);
    config.headers.push(("x-tenant".into(), "mesh".into()));
    config.resource.push(("deployment.environment".into(), "test".into()));
    let exporter = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("addr"))
        .agent_info("otlp-agent", "2.0.0", &["checkout"])
        .otlp(config)
        .install()
        .expect("install");
    let addr = exporter.local_addr();
    let business = Business::register().expect("register");
    for size in PAYLOADS {
        business.payload_bytes.observe(size).expect("observed");
    }

    // Calls made while every push fails.
    let mut traces = HashSet::new();
    for n in 0..50u64 {
        let trace = TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_0000 + u128::from(n)).expect("trace");
        traces.insert(trace.to_string());
        let _ = checkout(trace, n);
    }
    metrics::counter!("otlp_facade_total").increment(7);
    for _ in 0..3 {
        receiver.next("a refused push", |r| r["status"] == 503);
    }
    // The receiver recovers: the totals arrive whole.
    receiver.command("fail 0");
    receiver.next("a push after the outage", |r| r["status"] == 200);

    let scraped = tokio::task::spawn_blocking(move || get(addr, "/metrics")).await.expect("join").expect("scrape");
    let samples = strict_parse(Format::Classic, &scraped.body).unwrap_or_else(|e| panic!("{e}"));
    let push = receiver.next("a push after the scrape", |r| r["status"] == 200);

    assert_eq!(push["encoding"], "gzip");
    assert_eq!(push["path"], "/v1/metrics");
    assert_eq!(push["content_type"], "application/x-protobuf");
    assert_eq!(push["tenant"], "mesh");
    let resource: BTreeMap<String, String> = attributes(&push["request"]["resource_metrics"][0]["resource"]);
    assert_eq!(resource.get("service.name").map(String::as_str), Some("otlp-agent"));
    assert_eq!(resource.get("service.version").map(String::as_str), Some("2.0.0"));
    assert_eq!(resource.get("deployment.environment").map(String::as_str), Some("test"));

    let metrics = metrics_of(&push);
    // The request counter: a monotonic cumulative sum named without `_total`,
    // one point per label set, each equal to the scrape's.
    // Names are sent as /metrics serves them (the spec's default).
    let requests = &metrics["mcp_mesh_requests_total"];
    assert_eq!(requests["sum"]["aggregation_temporality"], "AGGREGATION_TEMPORALITY_CUMULATIVE");
    assert_eq!(requests["sum"]["is_monotonic"], true);
    let mut compared = 0;
    for point in requests["sum"]["data_points"].as_array().expect("points") {
        let labels = attributes(point);
        if labels.get("agent").map(String::as_str) != Some("otlp-agent") {
            continue;
        }
        let text = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let scraped =
            samples.iter().find(|s| s.name == "mcp_mesh_requests_total" && s.labels == text).expect("scraped");
        assert_eq!(point["as_double"].as_f64(), Some(scraped.value), "{text}");
        compared += 1;
    }
    assert_eq!(compared, 3, "success, error and cancelled");
    let total: f64 = samples
        .iter()
        .filter(|s| s.name == "mcp_mesh_requests_total" && s.labels.contains("agent=otlp-agent"))
        .map(|s| s.value)
        .sum();
    assert_eq!(total, 50.0, "every call made during the outage arrived");

    // The duration histogram: explicit buckets, cumulative, equal to the scrape's.
    let duration = &metrics["mcp_mesh_request_duration_seconds"];
    assert_eq!(duration["unit"], "s");
    let point = duration["histogram"]["data_points"]
        .as_array()
        .expect("points")
        .iter()
        .find(|p| attributes(p).get("agent").map(String::as_str) == Some("otlp-agent"))
        .expect("our series");
    let bounds: Vec<f64> =
        point["explicit_bounds"].as_array().expect("bounds").iter().filter_map(Value::as_f64).collect();
    let per_bucket: Vec<u64> = point["bucket_counts"].as_array().expect("counts").iter().map(int).collect();
    assert_eq!(per_bucket.len(), bounds.len() + 1);
    let scraped_buckets: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == "mcp_mesh_request_duration_seconds_bucket" && s.labels.contains("agent=otlp-agent"))
        .map(|s| s.value)
        .collect();
    let cumulative: Vec<f64> = per_bucket
        .iter()
        .scan(0u64, |total, n| {
            *total += n;
            Some(*total as f64)
        })
        .collect();
    assert_eq!(cumulative, scraped_buckets);
    assert_eq!(int(&point["count"]), 50);
    let scraped_sum = samples
        .iter()
        .find(|s| s.name == "mcp_mesh_request_duration_seconds_sum" && s.labels.contains("agent=otlp-agent"))
        .expect("sum")
        .value;
    assert_eq!(point["sum"].as_f64(), Some(scraped_sum));
    // Exemplars carry the trace IDs of our calls.
    let exemplars = point["exemplars"].as_array().expect("exemplars");
    assert!(!exemplars.is_empty());
    for exemplar in exemplars {
        let id: String =
            base64(exemplar["trace_id"].as_str().expect("trace id")).iter().map(|b| format!("{b:02x}")).collect();
        assert!(traces.contains(&id), "exemplar trace {id} is one of ours");
    }

    // The typed native histogram: an exponential histogram whose buckets are
    // where the definition puts each size (Prometheus' bucket k is OTLP's k-1).
    let payload = &metrics["otlp_payload_bytes"]["exponential_histogram"];
    assert_eq!(payload["aggregation_temporality"], "AGGREGATION_TEMPORALITY_CUMULATIVE");
    let point = &payload["data_points"][0];
    assert_eq!(point["scale"], 3);
    assert_eq!((int(&point["count"]), int(&point["zero_count"])), (6, 1));
    assert_eq!(point["sum"].as_f64(), Some(PAYLOADS.iter().sum::<f64>()));
    assert_eq!(point["zero_threshold"].as_f64(), Some(2f64.powi(-128)));
    let offset = point["positive"]["offset"].as_i64().unwrap_or(0); // proto3 leaves a 0 out
    let counts = point["positive"]["bucket_counts"].as_array().expect("bucket counts");
    let pushed: BTreeMap<i64, u64> = (offset..)
        .zip(counts.iter().map(int))
        .filter(|(_, count)| *count > 0)
        .map(|(i, count)| (i + 1, count))
        .collect();
    let mut expected = BTreeMap::new();
    for size in PAYLOADS.iter().filter(|size| **size > 0.0) {
        *expected.entry((size.log2() * 8.0).ceil() as i64).or_insert(0u64) += 1;
    }
    assert_eq!(pushed, expected);
    assert!(point.get("negative").is_none(), "no negative sizes: {point}");

    // The facade's counter, and the process and runtime collectors, are pushed too.
    let facade = &metrics["otlp_facade_total"];
    assert_eq!(facade["sum"]["data_points"][0]["as_double"].as_f64(), Some(7.0));
    assert!(metrics.contains_key("process_cpu_seconds_total"), "collected metrics are pushed");
    assert!(metrics.contains_key("tokio_workers"));

    // The outage shows in the exporter's own counter.
    let failures = mesh_metrics::snapshot().value("mcp_mesh_exporter_otlp_pushes_total", &[("result", "failure")]);
    assert!(failures >= 3.0, "{failures} failed pushes counted");

    // A 503 without Retry-After is retried within the same interval (after a
    // backoff of about 250 ms), and the retry gets through.
    let pushes =
        |result: &str| mesh_metrics::snapshot().value("mcp_mesh_exporter_otlp_pushes_total", &[("result", result)]);
    let (retries, successes) = (pushes("retry"), pushes("success"));
    receiver.command("flaky 1");
    receiver.next("a push refused once", |r| r["status"] == 503);
    receiver.next("its retry", |r| r["status"] == 200);
    assert_eq!(pushes("retry") - retries, 1.0, "one retry");
    assert!(pushes("success") > successes);

    // A partial success is reported, not retried.
    receiver.command("partial 4");
    receiver.next("a partially accepted push", |r| r["status"] == 200);
    let reported = || warnings.messages().iter().any(|w| w.contains("rejected=4"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reported() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reported(), "the partial success was logged: {:?}", warnings.messages());

    // The final push on shutdown carries the calls made just before it.
    for n in 1..=4u64 {
        let trace = TraceId::from_u128(0x1000 + u128::from(n)).expect("trace");
        let _ = checkout(trace, n);
    }
    exporter.shutdown().await;
    let total = |record: &Value| -> f64 {
        metrics_of(record)
            .get("mcp_mesh_requests_total")
            .and_then(|m| m["sum"]["data_points"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|p| attributes(p).get("agent").map(String::as_str) == Some("otlp-agent"))
            .filter_map(|p| p["as_double"].as_f64())
            .sum()
    };
    // Shutdown waited for the final push, which has every call.
    receiver.next("the push made at shutdown", |r| r["status"] == 200 && total(r) == 54.0);
}
