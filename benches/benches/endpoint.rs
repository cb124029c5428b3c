//! mesh-metrics' endpoint under the guide's load test, at the exporter's
//! default settings (BENCHMARKS.md, "The endpoint under load"). Its own
//! binary: it installs mesh-metrics' exporter, which sets the process's
//! `metrics` recorder, and `compare` installs metrics-exporter-prometheus'.
//!
//! `cargo bench -p mesh-metrics-benches --bench endpoint`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mesh_metrics::registry::{Cell, Descriptor, MetricKind};

const SERIES_LABELS: &[&str] = &["agent", "method"];

fn labels_of(i: usize) -> (String, String) {
    (format!("agent-{}", i % 100), format!("method-{i}"))
}

/// The guide's load test as a timing, against the exporter's default limits:
/// 1,000 concurrent scrapes, each over its own connection, of an exporter
/// holding 10,000 series, uncompressed and gzipped (what Prometheus asks
/// for); one scrape at a time in each encoding (the CPU a scrape costs); and,
/// once, the peak resident memory of 1,000 concurrent gzipped scrapes of
/// 100,000 series with the bytes each encoding puts on the wire.
fn endpoint(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let exporter = runtime.block_on(async {
        mesh_metrics::Exporter::builder()
            .listen("127.0.0.1:0".parse().expect("address"))
            .unlimited_cardinality("load_series_total")
            .install()
            .expect("install")
    });
    let descriptor = Descriptor {
        name: "load_series_total".into(),
        help: "Ten thousand series".into(),
        kind: MetricKind::Counter,
        label_names: SERIES_LABELS.into(),
        unit: None,
    };
    let family = mesh_metrics::registry::global().family(&descriptor).expect("family");
    let add_series = |range: std::ops::Range<usize>| {
        for i in range {
            let (agent, method) = labels_of(i);
            if let Ok(series) = family.series(&[&agent, &method], |_| Cell::Counter(Default::default()))
                && let Cell::Counter(counter) = series.cell()
            {
                counter.increment(i as u64);
            }
        }
    };
    add_series(0..10_000);
    let addr = exporter.local_addr();
    let scrape = move |encoding: &'static str| async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request =
            format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {encoding}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("request");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("response");
        assert!(response.starts_with(b"HTTP/1.1 200"), "a scrape failed");
        let head = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |end| end + 4);
        response.len() - head
    };
    let batch = move |encoding: &'static str| async move {
        let scrapes: Vec<_> = (0..1_000).map(|_| tokio::spawn(scrape(encoding))).collect();
        let mut bytes = 0;
        for scrape in scrapes {
            bytes += black_box(scrape.await.expect("join"));
        }
        bytes
    };
    let mut group = c.benchmark_group("endpoint");
    group.sample_size(10).measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_millis(500));
    for encoding in ["identity", "gzip"] {
        group.bench_function(format!("1000_concurrent_scrapes_of_10000_series_{encoding}"), |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    runtime.block_on(batch(encoding));
                }
                started.elapsed()
            })
        });
    }
    for encoding in ["identity", "gzip", "zstd"] {
        group.bench_function(format!("one_scrape_of_10000_series_{encoding}"), |b| {
            b.iter(|| runtime.block_on(scrape(encoding)))
        });
    }
    group.finish();

    // Bytes on the wire per scrape, and peak memory during the batch, at
    // 100,000 series. Printed: criterion has no row type for them.
    add_series(10_000..100_000);
    for encoding in ["identity", "gzip", "zstd"] {
        let bytes = runtime.block_on(scrape(encoding));
        println!("endpoint/body_bytes_of_100000_series_{encoding}: {bytes}");
    }
    let resident_before = vm_kib("VmRSS:");
    // Resets VmHWM (the peak) to the current RSS (Linux 4.0+).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let started = Instant::now();
    let bytes = runtime.block_on(batch("gzip"));
    let took = started.elapsed();
    let peak = vm_kib("VmHWM:");
    println!(
        "endpoint/1000_concurrent_gzip_scrapes_of_100000_series: {took:?}, {} MiB sent, resident {} MiB before, \
         peak {} MiB during (peak reset: {reset})",
        bytes >> 20,
        resident_before >> 10,
        peak >> 10
    );
    runtime.block_on(exporter.shutdown());
}

/// A `kB` line of `/proc/self/status`.
/// A `/proc/self/status` line in kB; the bench fails rather than print 0.
fn vm_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"))
}

criterion_group!(benches, endpoint);
criterion_main!(benches);
