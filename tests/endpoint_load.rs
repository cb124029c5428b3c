//! The guide's load test, against the exporter's default settings: 1,000
//! concurrent scrapes of an exporter holding 10,000 series all get complete,
//! parseable bodies while instrumented calls keep running, and they share
//! renders rather than each paying for one. (How long the batch takes, and
//! its peak memory, are reported by the comparison bench, not asserted here.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mesh_metrics::instrumented;
use mesh_metrics::registry::{self, Cell, Descriptor, MetricKind};
use mesh_metrics_tests::{Format, strict_parse};

#[instrumented(agent = "load", method = "work")]
async fn work(n: u64) -> Result<u64, String> {
    tokio::task::yield_now().await;
    if n % 10 == 0 { Err("every tenth fails".into()) } else { Ok(n) }
}

/// One scrape over its own connection: the status line and the body.
async fn scrape(addr: std::net::SocketAddr) -> Result<(String, String), String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8(raw).map_err(|e| e.to_string())?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no end of head")?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no content-length")?;
    if body.len() != length {
        return Err(format!("body of {} bytes, announced {length}", body.len()));
    }
    Ok((head.lines().next().unwrap_or_default().to_owned(), body.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_scrapes_of_ten_thousand_series() {
    const SERIES: Descriptor = Descriptor {
        name: std::borrow::Cow::Borrowed("load_series_total"),
        help: std::borrow::Cow::Borrowed("Ten thousand series"),
        kind: MetricKind::Counter,
        label_names: std::borrow::Cow::Borrowed(&["shard", "id"]),
        unit: None,
    };
    let exporter = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .cardinality_limit_for("load_series_total", 10_000)
        .install()
        .expect("install");
    let family = registry::global().family(&SERIES).expect("family");
    for i in 0..10_000u32 {
        let series = family.series(&[&(i % 16).to_string(), &i.to_string()], |_| Cell::Counter(Default::default()));
        if let Cell::Counter(counter) = series.expect("series").cell() {
            counter.increment(u64::from(i));
        }
    }
    assert_eq!(family.admitted(), 10_000);

    // Instrumented calls keep running on other tasks throughout.
    let running = Arc::new(AtomicBool::new(true));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let running = running.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while running.load(Ordering::Relaxed) {
                    let _ = work(n).await;
                    n += 1;
                }
                n
            })
        })
        .collect();

    let addr = exporter.local_addr();
    // One scrape first, so the endpoint's own families exist in every body.
    assert_eq!(scrape(addr).await.expect("warm-up").0, "HTTP/1.1 200 OK");
    let renders =
        || mesh_metrics::snapshot().histogram("mcp_mesh_exporter_render_duration_seconds", &[("format", "classic")]).0;
    let renders_before = renders();
    let scrapes: Vec<_> = (0..1_000).map(|_| tokio::spawn(scrape(addr))).collect();
    let mut bodies = Vec::new();
    for scrape in scrapes {
        let (status, body) = scrape.await.expect("join").unwrap_or_else(|e| panic!("a scrape failed: {e}"));
        assert_eq!(status, "HTTP/1.1 200 OK");
        bodies.push(body);
    }
    let rendered = renders() - renders_before;
    assert!((1..1_000).contains(&rendered), "1,000 scrapes shared {rendered} renders");
    running.store(false, Ordering::Relaxed);
    let mut calls = 0;
    for caller in callers {
        calls += caller.await.expect("join");
    }
    assert!(calls > 0, "instrumented calls ran during the scrapes");

    // Every body is complete: all 10,000 series and every family, nothing cut.
    let families = bodies[0].matches("# TYPE ").count();
    for body in &bodies {
        assert_eq!(body.matches("load_series_total{").count(), 10_000);
        assert_eq!(body.matches("# TYPE ").count(), families);
        assert!(body.ends_with('\n'));
    }
    for body in [&bodies[0], &bodies[999]] {
        let samples = strict_parse(Format::Classic, body).unwrap_or_else(|e| panic!("{e}"));
        let total: f64 = samples.iter().filter(|s| s.name == "load_series_total").map(|s| s.value).sum();
        assert_eq!(total, f64::from((0..10_000u32).sum::<u32>()));
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    exporter.shutdown().await;
}
