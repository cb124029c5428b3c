//! The protobuf exposition, decoded with `metrics.proto`'s definitions
//! (`tests/metrics_proto.rs`, independent of the encoder) and checked against
//! the registry's own values: native spans and deltas, the zero bucket, the
//! empty histogram's span, classic buckets alongside, exemplars with their
//! timestamps, counters and gauges.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use mesh_metrics::registry::native::{DEFAULT_ZERO_THRESHOLD, NativeConfig};
use mesh_metrics::registry::{Cell, Descriptor, Histogram, Layout, MetricKind, Registry};
use mesh_metrics::trace::TraceId;
use mesh_metrics_tests::metrics_proto::{self, MetricFamily};

fn histogram_family(registry: &Registry, name: &'static str, layout: Layout) -> Arc<mesh_metrics::registry::Family> {
    let descriptor = Descriptor {
        name: Cow::Borrowed(name),
        help: Cow::Borrowed("Latency"),
        kind: MetricKind::Histogram,
        label_names: Cow::Borrowed(&["method"]),
        unit: Some(Cow::Borrowed("seconds")),
    };
    registry.family_with_layout(&descriptor, Some(layout)).expect("family")
}

fn observe(
    family: &mesh_metrics::registry::Family,
    method: &str,
    values: &[f64],
) -> Arc<mesh_metrics::registry::Series> {
    let series = family.series(&[method], |layout| Cell::Histogram(Histogram::new(layout.clone()))).expect("series");
    let Cell::Histogram(histogram) = series.cell() else { panic!("a histogram") };
    for value in values {
        assert!(histogram.observe(*value), "{value} observed");
    }
    series
}

fn decode(registry: &Registry) -> Vec<MetricFamily> {
    metrics_proto::decode_delimited(&mesh_metrics::render_protobuf(registry)).expect("valid metrics.proto")
}

/// The bucket of `value` at `schema` by the definition (base^(i-1), base^i],
/// base = 2^(2^-schema), computed in floating point from logarithms.
fn expected_index(value: f64, schema: i32) -> i32 {
    (value.abs().log2() * 2f64.powi(schema)).ceil() as i32
}

fn expected_buckets(values: &[f64], schema: i32, negative: bool) -> BTreeMap<i32, u64> {
    let mut buckets = BTreeMap::new();
    for value in values.iter().filter(|v| v.abs() > DEFAULT_ZERO_THRESHOLD && (**v < 0.0) == negative) {
        *buckets.entry(expected_index(*value, schema)).or_insert(0) += 1;
    }
    buckets
}

#[test]
fn native_buckets_decode_to_the_registrys_values() {
    let registry = Registry::new();
    let family = histogram_family(&registry, "native_seconds", Layout::native_only(NativeConfig::default()));
    // Away from bucket boundaries but 1.0 (an exact power of two, in bucket 0).
    let values = [0.0, 1.0, 0.0015, 0.0016, 3.0, 3.1, -2.5, 1e6, 1e-40, 0.3, 0.31];
    let series = observe(&family, "get", &values);
    observe(&family, "idle", &[]);

    let families = decode(&registry);
    assert_eq!(families.len(), 1);
    let family = &families[0];
    assert_eq!((family.name.as_str(), family.kind, family.unit.as_str()), ("native_seconds", 4, "seconds"));
    assert_eq!(family.help, "Latency");
    let get = family.metric.iter().find(|m| m.label == [("method".into(), "get".into())]).expect("the get series");
    let histogram = get.histogram.as_ref().expect("a histogram");
    assert!(histogram.is_native(), "Prometheus reads it as native");
    assert_eq!(histogram.schema, Some(3));
    assert_eq!(histogram.zero_threshold, Some(DEFAULT_ZERO_THRESHOLD));
    assert_eq!(histogram.zero_count, Some(2), "0 and 1e-40 are within 2^-128");
    assert_eq!(histogram.sample_count, values.len() as u64);
    assert!((histogram.sample_sum - values.iter().sum::<f64>()).abs() < 1e-6);
    assert!(histogram.bucket.is_empty(), "native only: no classic buckets");
    let positive = metrics_proto::Histogram::native_buckets(&histogram.positive_span, &histogram.positive_delta)
        .expect("spans and deltas agree");
    let negative = metrics_proto::Histogram::native_buckets(&histogram.negative_span, &histogram.negative_delta)
        .expect("spans and deltas agree");
    assert_eq!(positive, expected_buckets(&values, 3, false));
    assert_eq!(negative, expected_buckets(&values, 3, true));

    // The registry's own reading says the same.
    let Cell::Histogram(cell) = series.cell() else { panic!("a histogram") };
    let snapshot = cell.native().expect("native").snapshot();
    assert_eq!(snapshot.positive.into_iter().collect::<BTreeMap<_, _>>(), positive);
    assert_eq!(snapshot.count, histogram.sample_count);

    // An empty native histogram is still native (its zero threshold says so).
    let idle = family.metric.iter().find(|m| m.label == [("method".into(), "idle".into())]).expect("idle");
    let idle = idle.histogram.as_ref().expect("a histogram");
    assert!(idle.is_native() && idle.sample_count == 0 && idle.positive_delta.is_empty());
}

#[test]
fn an_empty_histogram_without_a_zero_threshold_carries_the_empty_span() {
    let registry = Registry::new();
    let config = NativeConfig { zero_threshold: 0.0, ..NativeConfig::default() };
    let family = histogram_family(&registry, "empty_seconds", Layout::native_only(config));
    observe(&family, "none", &[]);
    let families = decode(&registry);
    let histogram = families[0].metric[0].histogram.as_ref().expect("a histogram");
    assert_eq!(histogram.positive_span, vec![(0, 0)], "client_golang's no-op span marks it native");
    assert!(histogram.positive_delta.is_empty());
    // Prometheus 2.42 predates that convention: with no zero threshold, an
    // empty native histogram reads as classic there (the documented reason to
    // keep the threshold above 0).
    assert!(!histogram.is_native());
}

#[test]
fn classic_buckets_kept_alongside_carry_exemplars_with_timestamps() {
    let registry = Registry::new();
    let layout = Layout::new(&[0.1, 1.0]).expect("layout").with_native(NativeConfig::default());
    let family = histogram_family(&registry, "both_seconds", layout);
    let series = family.series(&["get"], |layout| Cell::Histogram(Histogram::new(layout.clone()))).expect("series");
    let Cell::Histogram(histogram) = series.cell() else { panic!("a histogram") };
    let trace = TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736).expect("non-zero");
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    for value in [0.05, 0.5, 0.7, 2.0] {
        histogram.observe(value);
    }
    histogram.observe_traced(0.06, trace);

    let families = decode(&registry);
    let decoded = families[0].metric[0].histogram.as_ref().expect("a histogram");
    assert!(decoded.is_native());
    assert_eq!(decoded.sample_count, 5);
    let classic: Vec<(f64, u64)> = decoded.bucket.iter().map(|b| (b.upper_bound, b.cumulative_count)).collect();
    assert_eq!(classic, vec![(0.1, 2), (1.0, 4)], "+Inf is left out: it is the count");
    let exemplar = decoded.bucket[0].exemplar.as_ref().expect("the traced bucket's exemplar");
    assert_eq!(exemplar.label, vec![("trace_id".into(), "4bf92f3577b34da6a3ce929d0e0e4736".into())]);
    assert_eq!(exemplar.value, 0.06);
    let (seconds, nanos) = exemplar.timestamp.expect("a timestamp");
    let at = std::time::Duration::new(seconds as u64, nanos as u32);
    assert!(at + std::time::Duration::from_secs(1) >= before && at <= before + std::time::Duration::from_secs(60));
    let positive = metrics_proto::Histogram::native_buckets(&decoded.positive_span, &decoded.positive_delta)
        .expect("spans and deltas agree");
    assert_eq!(positive, expected_buckets(&[0.05, 0.5, 0.7, 2.0, 0.06], 3, false));
}

#[test]
fn counters_and_gauges_decode_with_their_values_and_exemplars() {
    let registry = Registry::new();
    let counter = Descriptor {
        name: Cow::Borrowed("jobs_total"),
        help: Cow::Borrowed("Jobs"),
        kind: MetricKind::Counter,
        label_names: Cow::Borrowed(&["queue"]),
        unit: None,
    };
    let gauge = Descriptor { name: Cow::Borrowed("depth"), kind: MetricKind::Gauge, ..counter.clone() };
    let trace = TraceId::from_u128(7).expect("non-zero");
    let series = registry.family(&counter).expect("family").series(&["a\"b"], |_| Cell::Counter(Default::default()));
    if let Cell::Counter(counter) = series.expect("series").cell() {
        counter.increment_traced(3, trace);
        assert!(counter.add(0.5));
    }
    let series = registry.family(&gauge).expect("family").series(&["a"], |_| Cell::Gauge(Default::default()));
    if let Cell::Gauge(gauge) = series.expect("series").cell() {
        gauge.set(-2.25);
    }
    let families = decode(&registry);
    assert_eq!(families.len(), 2);
    assert_eq!((families[0].name.as_str(), families[0].kind), ("jobs_total", 0), "a counter keeps _total");
    let metric = &families[0].metric[0];
    assert_eq!(metric.label, vec![("queue".into(), "a\"b".into())], "label values are not escaped in protobuf");
    let counter = metric.counter.as_ref().expect("a counter");
    assert_eq!(counter.value, 3.5);
    assert_eq!(counter.exemplar.as_ref().map(|e| e.value), Some(3.0));
    assert_eq!((families[1].name.as_str(), families[1].kind), ("depth", 1));
    assert_eq!(families[1].metric[0].gauge, Some(-2.25));
}

#[test]
fn under_concurrent_observations_the_count_sent_is_the_native_buckets_sum() {
    let registry = Registry::new();
    let layout = Layout::new(&[0.001, 0.01, 0.1]).expect("layout").with_native(NativeConfig::default());
    let family = histogram_family(&registry, "busy_seconds", layout);
    let series = family.series(&["get"], |layout| Cell::Histogram(Histogram::striped(layout.clone()))).expect("series");
    let done = std::sync::atomic::AtomicBool::new(false);
    let writing = std::sync::Barrier::new(3);
    let last = std::thread::scope(|scope| {
        for thread in 0..2u64 {
            let (series, done, writing) = (&series, &done, &writing);
            scope.spawn(move || {
                let Cell::Histogram(histogram) = series.cell() else { panic!("a histogram") };
                let mut i = 0u64;
                histogram.observe_nanos(1_000 + thread);
                writing.wait(); // the reads start once both writers are writing
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    histogram.observe_nanos(1_000 + (i * 7_919 + thread) % 200_000_000);
                    i += 1;
                }
            });
        }
        writing.wait();
        let mut last = 0;
        let mut first = None;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        // 300 reads at least, and until the writers are seen to have moved the
        // count between reads (bounded, so a stuck writer fails the test).
        for read in 0.. {
            if read >= 300 && (first.is_some_and(|first| last > first) || std::time::Instant::now() > deadline) {
                break;
            }
            let families = decode(&registry);
            let histogram = families[0].metric[0].histogram.as_ref().expect("a histogram");
            let native = metrics_proto::Histogram::native_buckets(&histogram.positive_span, &histogram.positive_delta)
                .expect("spans and deltas agree");
            let buckets: u64 = native.values().sum::<u64>() + histogram.zero_count.unwrap_or(0);
            // True by construction (a reading's count is its buckets' sum),
            // kept as the decoder's check of spans, deltas and zero bucket.
            assert_eq!(histogram.sample_count, buckets, "the count is the native buckets' sum");
            // The sum holds the observations counted (each at least 1 µs,
            // under 0.21 s), give or take one being recorded per writer.
            let count = histogram.sample_count as f64;
            assert!(
                histogram.sample_sum >= (count - 2.0).max(0.0) * 1e-6 && histogram.sample_sum <= (count + 2.0) * 0.21,
                "sum {} for {count} observations",
                histogram.sample_sum
            );
            for bucket in &histogram.bucket {
                assert!(bucket.cumulative_count <= histogram.sample_count, "a classic bucket past the count");
            }
            assert!(histogram.sample_count >= last, "the count went down");
            last = histogram.sample_count;
            first.get_or_insert(last);
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (first.unwrap_or_default(), last)
    });
    let (first, last) = last;
    assert!(last > first, "observations were made during the reads: {first} then {last}");
}
