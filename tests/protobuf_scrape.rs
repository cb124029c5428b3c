//! `/metrics` in the protobuf format, as Prometheus 2.42 asks for it with
//! `--enable-feature=native-histograms`: negotiated on `Accept`, every family
//! in it (ours, typed business metrics, the `metrics` facade's), the request
//! duration as a native histogram, and the text formats still valid.
//!
//! Its own test binary: `install()` happens once per process.

use mesh_metrics::{Histogram, Metrics, NativeHistograms, instrumented};
use mesh_metrics_tests::metrics_proto::{self, MetricFamily};
use mesh_metrics_tests::{Format, request, strict_parse};

/// What Prometheus 2.42 sends when native histograms are enabled.
const PROMETHEUS_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
     encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;\
     version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[instrumented(agent = "proto-agent")]
async fn lookup(ms: u64) -> Result<u64, String> {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    if ms == 0 { Err("nothing".into()) } else { Ok(ms) }
}

#[derive(Metrics)]
#[metrics(prefix = "proto")]
struct Business {
    /// Payload sizes, as a native histogram.
    #[metric(native)]
    payload_bytes: Histogram,
}

fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    families.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no family {name} in {families:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_gets_every_family_in_protobuf_with_native_durations() {
    let exporter = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .native_histograms(NativeHistograms::new())
        .install()
        .expect("install");
    let addr = exporter.local_addr();
    for ms in [0, 3, 10, 30] {
        let _ = lookup(ms).await;
    }
    let business = Business::register().expect("register");
    for size in [100.0, 2_000.0, 2_100.0] {
        business.payload_bytes.observe(size).expect("observed");
    }
    assert!(business.payload_bytes.observe(f64::INFINITY).is_err(), "a native histogram has no +Inf bucket");
    metrics::counter!("facade_jobs_total", "queue" => "a").increment(4);
    metrics::gauge!("facade_depth").set(2.5);
    metrics::histogram!("facade_latency_seconds").record(0.02);

    let response =
        tokio::task::spawn_blocking(move || request(addr, "GET", "/metrics", &[("Accept", PROMETHEUS_ACCEPT)]))
            .await
            .expect("join")
            .expect("scrape");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")
    );
    let families = metrics_proto::decode_delimited(&response.bytes).expect("valid metrics.proto");

    // The status counter, as the registry counts it.
    let snapshot = mesh_metrics::snapshot();
    let requests = family(&families, "mcp_mesh_requests_total");
    assert_eq!(requests.kind, 0);
    // The calls above: 0 ms is an error, the others succeed.
    for (status, calls) in [("success", 3.0), ("error", 1.0)] {
        let labels = [("agent", "proto-agent"), ("method", "lookup"), ("status", status)];
        let decoded = requests
            .metric
            .iter()
            .find(|m| labels.iter().all(|(k, v)| m.label.contains(&((*k).into(), (*v).into()))))
            .and_then(|m| m.counter.as_ref())
            .map(|c| c.value);
        assert_eq!(decoded, Some(snapshot.value("mcp_mesh_requests_total", &labels)), "{status}");
        assert_eq!(decoded, Some(calls), "{status}: the calls made");
    }

    // The duration: native only, every call in its bucket.
    let duration = family(&families, "mcp_mesh_request_duration_seconds");
    let lookup = duration
        .metric
        .iter()
        .find(|m| m.label.contains(&("method".into(), "lookup".into())))
        .and_then(|m| m.histogram.as_ref())
        .expect("lookup's duration");
    assert!(lookup.is_native() && lookup.bucket.is_empty());
    assert_eq!((lookup.schema, lookup.sample_count), (Some(3), 4));
    let buckets = metrics_proto::Histogram::native_buckets(&lookup.positive_span, &lookup.positive_delta)
        .expect("spans and deltas agree");
    assert_eq!(buckets.values().sum::<u64>() + lookup.zero_count.unwrap_or(0), 4);
    // The 30 ms call is in a bucket whose range holds at least 30 ms.
    let slowest = *buckets.keys().max().expect("a bucket");
    assert!(2f64.powf(f64::from(slowest) / 8.0) >= 0.030, "bucket {slowest}");

    // The typed business histogram, native only too.
    let payload = family(&families, "proto_payload_bytes").metric[0].histogram.as_ref().expect("a histogram");
    let buckets = metrics_proto::Histogram::native_buckets(&payload.positive_span, &payload.positive_delta)
        .expect("spans and deltas agree");
    let expected: Vec<i32> = [100.0f64, 2_000.0, 2_100.0].iter().map(|v| (v.log2() * 8.0).ceil() as i32).collect();
    let mut got: Vec<i32> =
        buckets.iter().flat_map(|(index, count)| std::iter::repeat_n(*index, *count as usize)).collect();
    got.sort_unstable();
    assert_eq!(got, expected);

    // The facade's families, in protobuf too.
    let jobs = family(&families, "facade_jobs_total");
    assert_eq!((jobs.kind, jobs.metric[0].counter.as_ref().map(|c| c.value)), (0, Some(4.0)));
    assert_eq!(family(&families, "facade_depth").metric[0].gauge, Some(2.5));
    let latency = family(&families, "facade_latency_seconds").metric[0].histogram.as_ref().expect("a histogram");
    assert_eq!(latency.sample_count, 1);
    assert!(!latency.is_native() && !latency.bucket.is_empty(), "a classic facade histogram");

    // The text formats still parse, with the native-only duration as its
    // count, sum and +Inf bucket.
    let text = exporter.render_openmetrics();
    let samples = strict_parse(Format::OpenMetrics, &text).expect("valid OpenMetrics");
    let lookup_buckets: Vec<_> = samples
        .iter()
        .filter(|s| s.name == "mcp_mesh_request_duration_seconds_bucket" && s.labels.contains("lookup"))
        .collect();
    assert_eq!(lookup_buckets.len(), 1, "native only: just +Inf in text");
    assert_eq!(lookup_buckets[0].value, 4.0);
    strict_parse(Format::Classic, &exporter.render()).expect("valid classic text");
    exporter.shutdown().await;
}
