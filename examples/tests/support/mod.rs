//! Helpers shared by the end-to-end tests: the demo, free ports, and the
//! Prometheus HTTP API.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mesh_metrics_tests::{ChildGuard, TempDir, get, percent_encode};

/// How long a test waits for a real server to show what it should.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn free_loopback_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr")
}

/// Starts the demo on an ephemeral port and returns it with its address,
/// read from the line it prints first.
pub fn start_demo(args: &[&str]) -> (ChildGuard, SocketAddr) {
    let mut demo = ChildGuard::spawn(
        "mesh-demo",
        Command::new(env!("CARGO_BIN_EXE_mesh-demo"))
            .args(["--listen", "127.0.0.1:0", "--duration", "300", "--summary", "3600"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    );
    let stdout = demo.child().stdout.take().expect("demo stdout");
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).expect("demo prints its address");
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in the demo's first line: {first:?}"));
    (demo, addr)
}

/// `GET` a Prometheus API path; the `data` of a successful answer.
pub fn api(prometheus: SocketAddr, path: &str) -> Option<serde_json::Value> {
    let response = get(prometheus, path).ok()?;
    let body: serde_json::Value = serde_json::from_str(&response.body).ok()?;
    (body["status"] == "success").then(|| body["data"].clone())
}

pub fn query(prometheus: SocketAddr, promql: &str) -> Vec<serde_json::Value> {
    let data = api(prometheus, &format!("/api/v1/query?query={}", percent_encode(promql)));
    data.and_then(|d| d["result"].as_array().cloned()).unwrap_or_default()
}

/// Polls `check` until it returns `Some` or `PATIENCE` runs out.
pub fn eventually<T>(what: &str, processes: &mut [&mut ChildGuard], mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check() {
            return found;
        }
        for process in processes.iter_mut() {
            process.assert_running();
        }
        assert!(Instant::now() < deadline, "gave up after {PATIENCE:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Starts `binary` (Prometheus) on a free loopback port, scraping `target`
/// every second and evaluating `dir/rules.yml` (which the caller writes)
/// every second, with `--enable-feature=feature`; its log goes to
/// `dir/prometheus.log`.
pub fn start_prometheus(
    binary: &std::path::Path,
    dir: &TempDir,
    target: SocketAddr,
    feature: &str,
) -> (ChildGuard, SocketAddr) {
    let listen = free_loopback_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - rules.yml\n\
             scrape_configs:\n  - job_name: mesh-demo\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    \
             static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("write prometheus.yml");
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("prometheus log");
    let prometheus = ChildGuard::spawn(
        "prometheus",
        Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={listen}"))
            .arg(format!("--enable-feature={feature}"))
            .stdout(Stdio::null())
            .stderr(log),
    );
    (prometheus, listen)
}
