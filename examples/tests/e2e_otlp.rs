//! `mesh-demo --otlp URL` pushes every metric it serves on `/metrics`, and
//! the official OpenTelemetry decoder (the Python `opentelemetry-proto`
//! package, in `tests/support/otlp_receiver.py`) reads the same values: each
//! family of a scrape is in the push, and each counter of the push lies
//! between a scrape taken before it and one taken after it.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mesh_metrics_tests::{ChildGuard, Format, get, strict_parse, strict_parser};
use serde_json::Value;

const RECEIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/otlp_receiver.py");

fn records(child: &mut ChildGuard) -> mpsc::Receiver<Value> {
    let stdout = child.child().stdout.take().expect("stdout");
    let (sender, records) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(serde_json::from_str::<Value>(&line).expect("a JSON line")).is_err() {
                break;
            }
        }
    });
    records
}

fn scrape(demo: SocketAddr) -> Vec<mesh_metrics_tests::ParsedSample> {
    let body = get(demo, "/metrics").expect("scrape").body;
    strict_parse(Format::Classic, &body).unwrap_or_else(|e| panic!("{e}"))
}

fn unix_nanos() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time");
    u64::try_from(now.as_nanos()).expect("nanoseconds")
}

/// When a push read its values: the time of its first number point.
fn point_time(record: &Value) -> u64 {
    let metrics = &record["request"]["resource_metrics"][0]["scope_metrics"][0]["metrics"];
    metrics
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|m| {
            m["sum"]["data_points"][0]["time_unix_nano"]
                .as_str()
                .or(m["gauge"]["data_points"][0]["time_unix_nano"].as_str())
        })
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_demo_pushes_every_metric_it_serves() {
    strict_parser();
    let mut receiver = ChildGuard::spawn(
        "otlp_receiver.py",
        Command::new("python3").arg(RECEIVER).stdin(Stdio::piped()).stdout(Stdio::piped()),
    );
    let pushes = records(&mut receiver);
    let port =
        pushes.recv_timeout(Duration::from_secs(30)).expect("the receiver starts")["port"].as_u64().expect("port");

    let mut demo = ChildGuard::spawn(
        "mesh-demo",
        Command::new(env!("CARGO_BIN_EXE_mesh-demo"))
            .args(["--listen", "127.0.0.1:0", "--duration", "120", "--summary", "3600", "--otlp-interval", "0.5"])
            .arg("--otlp")
            .arg(format!("http://127.0.0.1:{port}"))
            .stdout(Stdio::piped()),
    );
    let stdout = demo.child().stdout.take().expect("demo stdout");
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).expect("the demo prints its address");
    let addr: SocketAddr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));

    // Let traffic and every collector produce their families first.
    std::thread::sleep(Duration::from_secs(2));
    // Pushes received so far are older than the scrape: set them aside.
    while pushes.try_recv().is_ok() {}
    let before = scrape(addr);
    let scraped_at = unix_nanos();
    // A push read after the first scrape (by its points' own time, not by
    // when it arrived), then a second scrape.
    let deadline = Instant::now() + Duration::from_secs(60);
    let push = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let record = pushes.recv_timeout(left).expect("pushes after the scrape");
        if record["status"] == 200 && point_time(&record) > scraped_at {
            break record;
        }
    };
    let after = scrape(addr);
    demo.assert_running();

    let metrics: Vec<Value> = push["request"]["resource_metrics"][0]["scope_metrics"]
        .as_array()
        .expect("scopes")
        .iter()
        .flat_map(|scope| scope["metrics"].as_array().cloned().unwrap_or_default())
        .collect();
    let pushed: BTreeSet<&str> = metrics.iter().filter_map(|m| m["name"].as_str()).collect();
    let family = |name: &str| {
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| name.strip_suffix(suffix)).unwrap_or(name).to_owned()
    };
    let scraped: BTreeSet<String> = before.iter().map(|s| family(&s.name)).collect();
    for name in &scraped {
        // Names are pushed as /metrics serves them (a histogram by its family).
        assert!(pushed.contains(name.as_str()), "{name} is served on /metrics but not pushed; pushed: {pushed:?}");
    }

    // Every counter point of the push lies between the two scrapes.
    let mut checked = 0;
    for metric in metrics.iter().filter(|m| m["sum"]["is_monotonic"] == true) {
        let name = metric["name"].as_str().unwrap_or_default().to_owned();
        for point in metric["sum"]["data_points"].as_array().cloned().unwrap_or_default() {
            let mut labels: Vec<(String, String)> = point["attributes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|kv| {
                    (
                        kv["key"].as_str().unwrap_or_default().to_owned(),
                        kv["value"]["string_value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            labels.sort();
            let find = |samples: &[mesh_metrics_tests::ParsedSample]| {
                samples.iter().find(|s| s.name == name && s.label_pairs == labels).map(|s| s.value)
            };
            let (Some(low), Some(high)) = (find(&before), find(&after)) else { continue };
            let value = point["as_double"].as_f64().expect("a value");
            assert!(
                low <= value && value <= high,
                "{name}{labels:?}: pushed {value} at {}, scraped {low} before {scraped_at} then {high}; the push: {}",
                point["time_unix_nano"],
                metric["sum"]
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "counters compared: {checked}");
}
