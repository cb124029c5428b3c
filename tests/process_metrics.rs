//! The process and tokio runtime metrics of a scrape agree with what the
//! operating system and the runtime say, read independently here; both
//! formats parse, and promtool has nothing to say about the names.
//!
//! Its own test binary: `install()` happens once per process. Linux only:
//! the reference values come from `/proc`.

#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use mesh_metrics_tests::{Format, ParsedSample, get, promtool_check_metrics, request, required_tool, strict_parse};

/// Bytes received and sent on every interface, from /proc/self/net/dev
/// without the library.
fn net_dev_bytes() -> [f64; 2] {
    let dev = std::fs::read_to_string("/proc/self/net/dev").expect("/proc/self/net/dev");
    let mut totals = [0.0, 0.0];
    for line in dev.lines().skip(2) {
        let (_, counters) = line.split_once(':').expect("an interface line");
        let fields: Vec<f64> = counters.split_whitespace().map(|n| n.parse().expect("a number")).collect();
        totals[0] += fields[0];
        totals[1] += fields[8];
    }
    totals
}

/// This process's CPU seconds, read from /proc/self/stat without the library.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let after_name = stat.rsplit_once(')').expect("comm").1;
    let fields: Vec<f64> = after_name.split_whitespace().skip(11).take(2).map(|f| f.parse().expect("ticks")).collect();
    (fields[0] + fields[1]) / 100.0
}

fn status_kib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = status.lines().find(|l| l.starts_with(key)).expect("key");
    line.split_whitespace().nth(1).expect("value").parse().expect("number")
}

fn value(samples: &[ParsedSample], name: &str, labels: &str) -> f64 {
    let found: Vec<&ParsedSample> = samples.iter().filter(|s| s.name == name && s.labels == labels).collect();
    assert_eq!(found.len(), 1, "{name}{{{labels}}} once");
    found[0].value
}

/// Burns `duration` of wall time on this thread.
fn burn(duration: Duration) {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < duration {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// Burns until this process has used `seconds` more CPU, however loaded the machine.
fn burn_cpu(seconds: f64) {
    let start = cpu_seconds();
    while cpu_seconds() - start < seconds {
        burn(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_and_runtime_metrics_agree_with_the_system() {
    let exporter =
        mesh_metrics::Exporter::builder().listen("127.0.0.1:0".parse().expect("addr")).install().expect("install");
    let addr = exporter.local_addr();

    // Known work: 400 ms of CPU on this thread, and busy tokio workers.
    let cpu_before = cpu_seconds();
    burn_cpu(0.4);
    let tasks: Vec<_> = (0..4).map(|_| tokio::spawn(async { burn(Duration::from_millis(50)) })).collect();
    for task in tasks {
        task.await.expect("task");
    }

    // Tasks alive during the scrape: parked until it is over.
    let (release, parked) = tokio::sync::watch::channel(false);
    let waiting: Vec<_> = (0..8)
        .map(|_| {
            let mut parked = parked.clone();
            tokio::spawn(async move { parked.wait_for(|released| *released).await.map(|_| ()) })
        })
        .collect();

    let network_before = net_dev_bytes();
    let fds_before = std::fs::read_dir("/proc/self/fd").expect("fd").count() as f64;
    let rss_before = status_kib("VmRSS:") * 1024.0;
    let cpu_low = cpu_seconds();
    let body = tokio::task::spawn_blocking(move || get(addr, "/metrics")).await.expect("join").expect("scrape").body;
    let cpu_high = cpu_seconds();
    let network_after = net_dev_bytes();
    release.send(true).expect("tasks waiting");
    for task in waiting {
        task.await.expect("task").expect("released");
    }
    let rss_after = status_kib("VmRSS:") * 1024.0;
    let samples = strict_parse(Format::Classic, &body).unwrap_or_else(|e| panic!("{e}\n{body}"));

    let cpu = value(&samples, "process_cpu_seconds_total", "");
    assert!(cpu >= cpu_low && cpu <= cpu_high, "cpu {cpu} read between {cpu_low} and {cpu_high}");
    assert!(cpu - cpu_before >= 0.4, "the 400 ms of CPU burned show: {cpu} - {cpu_before}");

    let rss = value(&samples, "process_resident_memory_bytes", "");
    let (low, high) = (rss_before.min(rss_after) * 0.9, rss_before.max(rss_after) * 1.1);
    assert!(rss >= low && rss <= high, "rss {rss} not within [{low}, {high}]");

    let fds = value(&samples, "process_open_fds", "");
    assert!((fds - fds_before).abs() <= 8.0, "open fds {fds}, /proc/self/fd had {fds_before}");

    let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
    let soft = |name: &str| -> f64 {
        let rest = limits.lines().find_map(|l| l.strip_prefix(name)).expect("limit");
        match rest.split_whitespace().next().expect("soft") {
            "unlimited" => u64::MAX as f64,
            n => n.parse().expect("number"),
        }
    };
    assert_eq!(value(&samples, "process_max_fds", ""), soft("Max open files"));
    assert_eq!(value(&samples, "process_virtual_memory_max_bytes", ""), soft("Max address space"));

    let boot: f64 = std::fs::read_to_string("/proc/stat")
        .expect("stat")
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .expect("btime")
        .trim()
        .parse()
        .expect("number");
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let started: f64 =
        stat.rsplit_once(')').expect("comm").1.split_whitespace().nth(19).expect("field").parse().expect("n");
    let start = value(&samples, "process_start_time_seconds", "");
    assert!((start - (boot + started / 100.0)).abs() < 1e-6, "start {start}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs_f64();
    assert!(start <= now && now - start < 3600.0, "the test process started within the hour");

    let threads = value(&samples, "process_threads", "");
    let threads_now = status_kib("Threads:");
    assert!((threads - threads_now).abs() <= 4.0, "threads {threads}, /proc says {threads_now}");
    assert!(value(&samples, "process_virtual_memory_bytes", "") >= rss);
    for (name, index) in [("process_network_receive_bytes_total", 0), ("process_network_transmit_bytes_total", 1)] {
        let (low, high) = (network_before[index], network_after[index]);
        let read = value(&samples, name, "");
        assert!(read >= low && read <= high, "{name} {read} read between {low} and {high} (/proc/self/net/dev)");
    }

    // The runtime this test runs in: two workers that did work.
    assert_eq!(value(&samples, "tokio_workers", "runtime=main"), 2.0);
    let busy: f64 = samples.iter().filter(|s| s.name == "tokio_worker_busy_seconds_total").map(|s| s.value).sum();
    assert!(busy >= 0.1, "the 4 × 50 ms of tasks show as busy time: {busy}");
    let workers: Vec<&str> =
        samples.iter().filter(|s| s.name == "tokio_worker_parks_total").map(|s| s.labels.as_str()).collect();
    assert_eq!(workers, ["runtime=main,worker=0", "runtime=main,worker=1"]);
    let alive = value(&samples, "tokio_alive_tasks", "runtime=main");
    assert!(alive >= 8.0, "the 8 parked tasks are alive: {alive}");
    assert!(value(&samples, "tokio_global_queue_depth", "runtime=main") >= 0.0);

    // OpenMetrics too, and promtool finds nothing to say about the names.
    let openmetrics = tokio::task::spawn_blocking(move || {
        request(addr, "GET", "/metrics", &[("Accept", "application/openmetrics-text; version=1.0.0")])
    })
    .await
    .expect("join")
    .expect("scrape");
    let om = strict_parse(Format::OpenMetrics, &openmetrics.body).unwrap_or_else(|e| panic!("{e}"));
    assert!(om.iter().any(|s| s.name == "process_cpu_seconds_total"));
    let lint = promtool_check_metrics(&required_tool("promtool"), &body).unwrap_or_else(|e| panic!("{e}"));
    let ours: Vec<&String> = lint.iter().filter(|l| l.starts_with("process_") || l.starts_with("tokio_")).collect();
    assert!(ours.is_empty(), "promtool check metrics: {ours:?}");
    exporter.shutdown().await;
}
