//! mesh-metrics against its peers, side by side in one run (BENCHMARKS.md):
//!
//! * recording one call (a request counter with a status, a latency histogram,
//!   an in-flight gauge): the bare fn, the floor (two clock reads and five
//!   relaxed atomics), `#[instrumented]` sync and async with and without a
//!   trace ID, `metrics` handles held and `metrics` macros per call (on
//!   `metrics-exporter-prometheus`), `autometrics` 3.0 `#[autometrics]` (its
//!   `metrics-0_24` backend, same exporter), and `prometheus-client` 0.26
//!   families with held handles and with `get_or_create` per call;
//! * the same with 2 threads on one series;
//! * a histogram observation, classic against native;
//! * a business-metric increment on bounded and unbounded labels;
//! * rendering 1k/10k/100k counter series and 10k histogram series, in the
//!   classic, OpenMetrics and protobuf formats (and 10k native histograms);
//! * resident memory per counter series (untraced and traced), after
//!   registration and after a render, and per instrumented call site with its
//!   per-core shards.
//!
//! `cargo bench -p mesh-metrics-benches --bench compare`

use std::hint::black_box;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mesh_metrics::registry::{Cell, Descriptor, Histogram as MeshHistogram, Layout, MetricKind, Registry};
use mesh_metrics::trace::{self, TraceId};
use mesh_metrics::{Counter, LabelSet, LabelValue, Metrics, instrumented};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as PcGauge;
use prometheus_client::metrics::histogram::Histogram as PcHistogram;

// ---------------------------------------------------------------- the work

#[inline(never)]
fn bare(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[instrumented(agent = "bench", method = "sync")]
#[inline(never)]
fn instrumented_sync(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[instrumented(agent = "bench", method = "sync_traced")]
#[inline(never)]
fn instrumented_sync_traced(#[trace_id] trace_id: TraceId, x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[instrumented(agent = "bench", method = "async")]
async fn instrumented_async(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[autometrics::autometrics]
#[inline(never)]
fn autometrics_sync(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

static FLOOR: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

#[inline(never)]
fn floor(x: u64) -> u64 {
    let start = quanta::Instant::now();
    FLOOR[0].fetch_add(1, Relaxed);
    let result = black_box(x).wrapping_mul(31);
    let nanos = quanta::Instant::now().saturating_duration_since(start).as_nanos() as u64;
    FLOOR[1].fetch_add(nanos, Relaxed);
    FLOOR[2].fetch_add(1, Relaxed);
    FLOOR[3].fetch_add(1, Relaxed);
    FLOOR[4].fetch_sub(1, Relaxed);
    result
}

thread_local! {
    static FLOOR_PER_THREAD: [AtomicU64; 5] = const { [const { AtomicU64::new(0) }; 5] };
}

/// The floor with each thread's five atomics its own (a thread-local): the
/// least two threads can pay when they share no cache line.
#[inline(never)]
fn floor_per_thread(x: u64) -> u64 {
    FLOOR_PER_THREAD.with(|cells| {
        let start = quanta::Instant::now();
        cells[0].fetch_add(1, Relaxed);
        let result = black_box(x).wrapping_mul(31);
        let nanos = quanta::Instant::now().saturating_duration_since(start).as_nanos() as u64;
        cells[1].fetch_add(nanos, Relaxed);
        cells[2].fetch_add(1, Relaxed);
        cells[3].fetch_add(1, Relaxed);
        cells[4].fetch_sub(1, Relaxed);
        result
    })
}

fn poll_once<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the benchmarked future never waits"),
    }
}

const TRACE: TraceId = match TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736) {
    Some(id) => id,
    None => unreachable!(),
};

const BOUNDS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The exporter every facade-based peer records into, installed as its users
/// install it: the process's global recorder, with its upkeep (which drains
/// histogram buffers) on a side thread at the builder's default interval, as
/// `PrometheusBuilder::install` runs it. This binary installs no other
/// recorder (mesh-metrics' exporter is benchmarked in `endpoint.rs`).
static PROMETHEUS: LazyLock<metrics_exporter_prometheus::PrometheusHandle> = LazyLock::new(|| {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&BOUNDS)
        .expect("buckets")
        .install_recorder()
        .expect("the only global recorder in this process");
    let upkeep = handle.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            upkeep.run_upkeep();
        }
    });
    handle
});

/// `PrometheusBuilder`'s default `upkeep_timeout`.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

// ------------------------------------------------------- prometheus-client

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    agent: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteLabels {
    agent: String,
    method: String,
}

struct PcMetrics {
    requests: Family<CallLabels, PcCounter>,
    duration: Family<SiteLabels, PcHistogram>,
    in_flight: Family<SiteLabels, PcGauge>,
}

static PC: LazyLock<PcMetrics> = LazyLock::new(|| PcMetrics {
    requests: Family::default(),
    duration: Family::new_with_constructor(|| PcHistogram::new(BOUNDS)),
    in_flight: Family::default(),
});

fn site() -> SiteLabels {
    SiteLabels { agent: "bench".into(), method: "pc".into() }
}

fn call_labels() -> CallLabels {
    CallLabels { agent: "bench".into(), method: "pc".into(), status: "success".into() }
}

// --------------------------------------------------------- one call, 1 and 2 threads

/// One way of recording a call.
type Call = Box<dyn Fn(u64) -> u64 + Send + Sync>;

/// Every way of recording one call, by name.
fn calls() -> Vec<(&'static str, Call)> {
    let pc_requests = PC.requests.get_or_create(&call_labels()).clone();
    let pc_duration = PC.duration.get_or_create(&site()).clone();
    let pc_in_flight = PC.in_flight.get_or_create(&site()).clone();
    LazyLock::force(&PROMETHEUS);
    let labels = [("agent", "bench"), ("method", "held")];
    let status = [("agent", "bench"), ("method", "held"), ("status", "success")];
    let m_requests = metrics::counter!("requests_total", &status);
    let m_duration = metrics::histogram!("duration_seconds", &labels);
    let m_in_flight = metrics::gauge!("in_flight", &labels);
    vec![
        ("bare_fn", Box::new(bare)),
        ("floor_2_clock_reads_5_atomics", Box::new(floor)),
        ("floor_per_thread_atomics", Box::new(floor_per_thread)),
        ("mesh_instrumented_sync", Box::new(instrumented_sync)),
        ("mesh_instrumented_async", Box::new(|x| poll_once(instrumented_async(x)))),
        ("mesh_instrumented_sync_with_trace_id", Box::new(|x| instrumented_sync_traced(TRACE, x))),
        ("mesh_instrumented_async_in_trace_scope", Box::new(|x| poll_once(trace::scope(TRACE, instrumented_async(x))))),
        (
            "metrics_held_handles",
            Box::new(move |x| {
                let start = quanta::Instant::now();
                m_in_flight.increment(1.0);
                let result = bare(x);
                m_duration.record(quanta::Instant::now().saturating_duration_since(start).as_secs_f64());
                m_requests.increment(1);
                m_in_flight.decrement(1.0);
                result
            }),
        ),
        (
            "metrics_macros_per_call",
            Box::new(|x| {
                let start = quanta::Instant::now();
                metrics::gauge!("in_flight", "agent" => "bench", "method" => "macro").increment(1.0);
                let result = bare(x);
                metrics::histogram!("duration_seconds", "agent" => "bench", "method" => "macro")
                    .record(quanta::Instant::now().saturating_duration_since(start).as_secs_f64());
                metrics::counter!("requests_total", "agent" => "bench", "method" => "macro", "status" => "success")
                    .increment(1);
                metrics::gauge!("in_flight", "agent" => "bench", "method" => "macro").decrement(1.0);
                result
            }),
        ),
        ("autometrics_3", Box::new(autometrics_sync)),
        (
            "prometheus_client_held_handles",
            Box::new(move |x| {
                let start = quanta::Instant::now();
                pc_in_flight.inc();
                let result = bare(x);
                pc_duration.observe(quanta::Instant::now().saturating_duration_since(start).as_secs_f64());
                pc_requests.inc();
                pc_in_flight.dec();
                result
            }),
        ),
        (
            "prometheus_client_get_or_create_per_call",
            Box::new(|x| {
                let start = quanta::Instant::now();
                PC.in_flight.get_or_create(&site()).inc();
                let result = bare(x);
                PC.duration
                    .get_or_create(&site())
                    .observe(quanta::Instant::now().saturating_duration_since(start).as_secs_f64());
                PC.requests.get_or_create(&call_labels()).inc();
                PC.in_flight.get_or_create(&site()).dec();
                result
            }),
        ),
    ]
}

/// The untraced mesh-metrics rows, measured before any trace scope exists in
/// the process: the fast path of a program that never traces.
fn calls_before_any_trace_scope() -> Vec<(&'static str, Call)> {
    vec![
        ("floor_2_clock_reads_5_atomics_no_trace_scope_yet", Box::new(floor)),
        ("floor_per_thread_atomics_no_trace_scope_yet", Box::new(floor_per_thread)),
        ("mesh_instrumented_sync_no_trace_scope_yet", Box::new(instrumented_sync)),
        ("mesh_instrumented_async_no_trace_scope_yet", Box::new(|x| poll_once(instrumented_async(x)))),
    ]
}

fn one_thread(c: &mut Criterion, calls: &[(&'static str, Call)]) {
    let mut group = c.benchmark_group("record_one_call");
    for (name, call) in calls {
        group.bench_function(*name, |b| b.iter(|| call(black_box(7))));
    }
    group.finish();
}

/// Two threads on one series: each thread makes `iters` calls; the time per
/// call is the wall time of the slower thread over `iters`.
fn two_threads(c: &mut Criterion, calls: &[(&'static str, Call)]) {
    let mut group = c.benchmark_group("record_one_call_2_threads");
    for (name, call) in calls {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let start = std::sync::Barrier::new(2);
                std::thread::scope(|scope| {
                    let threads: Vec<_> = (0..2)
                        .map(|_| {
                            scope.spawn(|| {
                                start.wait();
                                let began = Instant::now();
                                for _ in 0..iters {
                                    black_box(call(black_box(7)));
                                }
                                began.elapsed()
                            })
                        })
                        .collect();
                    threads.into_iter().map(|t| t.join().expect("thread")).max().unwrap_or_default()
                })
            })
        });
    }
    group.finish();
}

fn record(c: &mut Criterion) {
    // First, while no trace scope has ever been entered in this process.
    let before = calls_before_any_trace_scope();
    one_thread(c, &before);
    two_threads(c, &before);
    // Then as a traced program runs: a scope exists (the untraced rows now
    // look for a current trace ID at every call's end).
    poll_once(trace::scope(TRACE, async {}));
    let calls = calls();
    one_thread(c, &calls);
    two_threads(c, &calls);
}

// ------------------------------------------------------------ business metrics

#[derive(Clone, Copy, LabelValue)]
#[allow(dead_code)] // the label's values; the bench records one
enum Currency {
    Usd,
    Eur,
}

#[derive(LabelSet)]
struct Bounded {
    agent: &'static str,
    currency: Currency,
}

#[derive(LabelSet)]
struct EnumsOnly {
    currency: Currency,
}

#[derive(LabelSet)]
struct Unbounded {
    #[label(unbounded)]
    customer: String,
}

#[derive(Metrics)]
#[metrics(prefix = "compare")]
struct BusinessMetrics {
    /// Revenue by bounded labels.
    bounded_total: Counter<Bounded>,
    /// Revenue by enum labels only.
    enums_total: Counter<EnumsOnly>,
    /// Orders per customer.
    unbounded_total: Counter<Unbounded>,
}

fn business(c: &mut Criterion) {
    let metrics = BusinessMetrics::register().expect("register");
    let mut group = c.benchmark_group("business_increment");
    let enums = EnumsOnly { currency: Currency::Eur };
    group.bench_function("mesh_with_enum_labels", |b| b.iter(|| metrics.enums_total.with(black_box(&enums)).inc()));
    let bounded = Bounded { agent: "analytics", currency: Currency::Eur };
    group.bench_function("mesh_with_static_str_and_enum_labels", |b| {
        b.iter(|| metrics.bounded_total.with(black_box(&bounded)).inc())
    });
    let held = metrics.bounded_total.with(&bounded);
    group.bench_function("mesh_held_handle", |b| b.iter(|| held.inc()));
    let unbounded = Unbounded { customer: "customer-42".into() };
    group.bench_function("mesh_with_unbounded_label", |b| {
        b.iter(|| metrics.unbounded_total.with(black_box(&unbounded)).inc())
    });
    LazyLock::force(&PROMETHEUS);
    let held = metrics::counter!("business_total", "agent" => "analytics", "currency" => "eur");
    group.bench_function("metrics_held_handle", |b| b.iter(|| held.increment(black_box(1))));
    group.bench_function("metrics_counter_macro", |b| {
        b.iter(|| {
            metrics::counter!("business_total", "agent" => "analytics", "currency" => "eur").increment(black_box(1))
        })
    });
    let family: Family<SiteLabels, PcCounter> = Family::default();
    let held = family.get_or_create(&SiteLabels { agent: "analytics".into(), method: "eur".into() }).clone();
    group.bench_function("prometheus_client_held_handle", |b| b.iter(|| held.inc()));
    group.finish();
}

// ------------------------------------------------------------ histogram observe

/// One observation into a histogram, classic against native, on one thread:
/// durations that cycle through 64 values from 1 ms to 1 s (every default
/// bucket from 5 ms to 1 s, and about 80 native buckets).
fn observe(c: &mut Criterion) {
    let durations: Vec<u64> = (0..64).map(|i| (1e6 * 1000f64.powf(f64::from(i) / 63.0)) as u64).collect();
    let classic = Layout::default_latency();
    let native = *mesh_metrics::NativeHistograms::new().config();
    // A histogram that may reset counts each observation as it starts, so
    // that a reset can wait for those it drops: a third atomic add.
    let resets =
        *mesh_metrics::NativeHistograms::new().min_reset_duration(std::time::Duration::from_secs(3600)).config();
    let histograms = [
        ("classic", MeshHistogram::new(std::sync::Arc::new(classic.clone()))),
        ("classic_striped", MeshHistogram::striped(std::sync::Arc::new(classic.clone()))),
        ("native", MeshHistogram::new(std::sync::Arc::new(Layout::native_only(native)))),
        ("native_with_resets", MeshHistogram::new(std::sync::Arc::new(Layout::native_only(resets)))),
        ("native_and_classic", MeshHistogram::new(std::sync::Arc::new(classic.with_native(native)))),
    ];
    let mut group = c.benchmark_group("histogram_observe");
    for (name, histogram) in &histograms {
        let mut i = 0usize;
        group.bench_function(format!("{name}_duration"), |b| {
            b.iter(|| {
                i = (i + 1) & 63;
                histogram.observe_nanos(black_box(durations[i]))
            })
        });
        let mut i = 0usize;
        group.bench_function(format!("{name}_f64"), |b| {
            b.iter(|| {
                i = (i + 1) & 63;
                histogram.observe(black_box(durations[i] as f64 / 1e9))
            })
        });
    }
    group.finish();
    // Two threads on one histogram: a native histogram is one set of atomics
    // both threads write, as a classic one with one shard is; a call site's
    // classic histogram has a shard per thread.
    let mut group = c.benchmark_group("histogram_observe_2_threads");
    for (name, histogram) in
        histograms.iter().filter(|(name, _)| ["classic", "classic_striped", "native"].contains(name))
    {
        group.bench_function(format!("{name}_duration"), |b| {
            b.iter_custom(|iters| {
                let start = std::sync::Barrier::new(2);
                std::thread::scope(|scope| {
                    let threads: Vec<_> = (0..2)
                        .map(|_| {
                            scope.spawn(|| {
                                start.wait();
                                let began = Instant::now();
                                for i in 0..iters as usize {
                                    histogram.observe_nanos(black_box(durations[i & 63]));
                                }
                                began.elapsed()
                            })
                        })
                        .collect();
                    threads.into_iter().map(|t| t.join().expect("thread")).max().unwrap_or_default()
                })
            })
        });
    }
    group.finish();
}

// ------------------------------------------------------------------- rendering

const SERIES_LABELS: &[&str] = &["agent", "method"];

fn labels_of(i: usize) -> (String, String) {
    (format!("agent-{}", i % 100), format!("method-{i}"))
}

/// A registry whose guard admits every series (the renders are measured over
/// all of them), with one family of `kind` with `SERIES_LABELS`.
fn registry_with_family(
    name: &'static str,
    kind: MetricKind,
    layout: Option<Layout>,
) -> (Registry, std::sync::Arc<mesh_metrics::registry::Family>) {
    let registry = Registry::new();
    registry.set_policy(
        mesh_metrics::guard::CardinalityPolicy::default().default_limit(mesh_metrics::guard::Limit::Unlimited),
    );
    let descriptor =
        Descriptor { name: name.into(), help: "Render".into(), kind, label_names: SERIES_LABELS.into(), unit: None };
    let family = registry.family_with_layout(&descriptor, layout).expect("family");
    (registry, family)
}

/// `n` counter series; `traced` gives each an exemplar (as traced calls would),
/// which OpenMetrics renders.
fn mesh_counters(n: usize, traced: bool) -> Registry {
    let (registry, family) = registry_with_family("render_requests_total", MetricKind::Counter, None);
    for i in 0..n {
        let (agent, method) = labels_of(i);
        if let Cell::Counter(counter) =
            family.series(&[&agent, &method], |_| Cell::Counter(Default::default())).expect("series").cell()
        {
            if traced { counter.increment_traced(i as u64, TRACE) } else { counter.increment(i as u64) }
        }
    }
    registry
}

fn mesh_histograms(n: usize) -> Registry {
    let layout = Layout::new(&BOUNDS).expect("layout");
    let (registry, family) = registry_with_family("render_duration_seconds", MetricKind::Histogram, Some(layout));
    for i in 0..n {
        let (agent, method) = labels_of(i);
        let make = |layout: &std::sync::Arc<Layout>| Cell::Histogram(MeshHistogram::new(layout.clone()));
        if let Cell::Histogram(histogram) = family.series(&[&agent, &method], make).expect("series").cell() {
            // With a trace ID: OpenMetrics renders an exemplar on the bucket.
            histogram.observe_traced(0.001 * (i % 3000) as f64, TRACE);
        }
    }
    registry
}

/// `n` native-only histogram series, each with observations over 40 buckets.
fn mesh_native_histograms(n: usize) -> Registry {
    let layout = Layout::native_only(*mesh_metrics::NativeHistograms::new().config());
    let (registry, family) =
        registry_with_family("render_native_duration_seconds", MetricKind::Histogram, Some(layout));
    for i in 0..n {
        let (agent, method) = labels_of(i);
        let make = |layout: &std::sync::Arc<Layout>| Cell::Histogram(MeshHistogram::new(layout.clone()));
        if let Cell::Histogram(histogram) = family.series(&[&agent, &method], make).expect("series").cell() {
            for step in 0..40 {
                histogram.observe(0.001 * 1.09f64.powi(step + (i % 7) as i32));
            }
        }
    }
    registry
}

fn mep_counters(n: usize) -> metrics_exporter_prometheus::PrometheusHandle {
    let recorder =
        metrics_exporter_prometheus::PrometheusBuilder::new().set_buckets(&BOUNDS).expect("buckets").build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..n {
            let (agent, method) = labels_of(i);
            metrics::counter!("render_requests_total", "agent" => agent, "method" => method).increment(i as u64);
        }
    });
    handle
}

fn mep_histograms(n: usize) -> metrics_exporter_prometheus::PrometheusHandle {
    let recorder =
        metrics_exporter_prometheus::PrometheusBuilder::new().set_buckets(&BOUNDS).expect("buckets").build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..n {
            let (agent, method) = labels_of(i);
            metrics::histogram!("render_duration_seconds", "agent" => agent, "method" => method)
                .record(0.001 * (i % 3000) as f64);
        }
    });
    handle.run_upkeep();
    handle
}

fn pc_counters(n: usize) -> prometheus_client::registry::Registry {
    let mut registry = prometheus_client::registry::Registry::default();
    let family: Family<SiteLabels, PcCounter> = Family::default();
    for i in 0..n {
        let (agent, method) = labels_of(i);
        family.get_or_create(&SiteLabels { agent, method }).inc_by(i as u64);
    }
    registry.register("render_requests", "Requests", family);
    registry
}

fn pc_histograms(n: usize) -> prometheus_client::registry::Registry {
    let mut registry = prometheus_client::registry::Registry::default();
    let family: Family<SiteLabels, PcHistogram> = Family::new_with_constructor(|| PcHistogram::new(BOUNDS));
    for i in 0..n {
        let (agent, method) = labels_of(i);
        family.get_or_create(&SiteLabels { agent, method }).observe(0.001 * (i % 3000) as f64);
    }
    registry.register("render_duration_seconds", "Latency", family);
    registry
}

fn pc_encode(registry: &prometheus_client::registry::Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("encode");
    out
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    group.sample_size(10).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_millis(500));
    for n in [1_000, 10_000, 100_000] {
        let ours = mesh_counters(n, true);
        group.bench_with_input(BenchmarkId::new("mesh_classic_counters", n), &ours, |b, r| {
            b.iter(|| mesh_metrics::render_classic(r))
        });
        group.bench_with_input(BenchmarkId::new("mesh_openmetrics_counters", n), &ours, |b, r| {
            b.iter(|| mesh_metrics::render_openmetrics(r))
        });
        group.bench_with_input(BenchmarkId::new("mesh_protobuf_counters", n), &ours, |b, r| {
            b.iter(|| mesh_metrics::render_protobuf(r))
        });
        drop(ours);
        let pc = pc_counters(n);
        group.bench_with_input(BenchmarkId::new("prometheus_client_counters", n), &pc, |b, r| b.iter(|| pc_encode(r)));
        drop(pc);
        let mep = mep_counters(n);
        group.bench_with_input(BenchmarkId::new("metrics_exporter_prometheus_counters", n), &mep, |b, h| {
            b.iter(|| h.render())
        });
    }
    let n = 10_000;
    let ours = mesh_histograms(n);
    group.bench_with_input(BenchmarkId::new("mesh_classic_histograms", n), &ours, |b, r| {
        b.iter(|| mesh_metrics::render_classic(r))
    });
    group.bench_with_input(BenchmarkId::new("mesh_openmetrics_histograms", n), &ours, |b, r| {
        b.iter(|| mesh_metrics::render_openmetrics(r))
    });
    group.bench_with_input(BenchmarkId::new("mesh_protobuf_histograms", n), &ours, |b, r| {
        b.iter(|| mesh_metrics::render_protobuf(r))
    });
    drop(ours);
    let native = mesh_native_histograms(n);
    group.bench_with_input(BenchmarkId::new("mesh_protobuf_native_histograms", n), &native, |b, r| {
        b.iter(|| mesh_metrics::render_protobuf(r))
    });
    group.bench_with_input(BenchmarkId::new("mesh_classic_native_histograms", n), &native, |b, r| {
        b.iter(|| mesh_metrics::render_classic(r))
    });
    drop(native);
    let pc = pc_histograms(n);
    group.bench_with_input(BenchmarkId::new("prometheus_client_histograms", n), &pc, |b, r| b.iter(|| pc_encode(r)));
    drop(pc);
    let mep = mep_histograms(n);
    group.bench_with_input(BenchmarkId::new("metrics_exporter_prometheus_histograms", n), &mep, |b, h| {
        b.iter(|| h.render())
    });
    group.finish();
}

// ------------------------------------------------------------------ scrape-time collectors

/// What the process and tokio collectors add to a scrape, against the render
/// of 1,000 counter series measured in the same group (the baseline).
fn collectors(c: &mut Criterion) {
    let mut group = c.benchmark_group("collectors");
    group.sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    let baseline = mesh_counters(1_000, false);
    group.bench_function("baseline_render_classic_1000_counters", |b| {
        b.iter(|| mesh_metrics::render_classic(&baseline))
    });
    let registry = Registry::new();
    group.bench_function("process", |b| b.iter(|| mesh_metrics::collect::collect_process(&registry)));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("a 2-worker runtime");
    let handle = runtime.handle().clone();
    group.bench_function("tokio_runtime_2_workers", |b| {
        b.iter(|| mesh_metrics::collect::collect_runtime(&registry, "main", &handle))
    });
    group.finish();
}

// ---------------------------------------------------------------------- memory

/// The resident set, from `VmRSS` in `/proc/self/status` (in kB, whatever
/// the page size); a memory row cannot be measured without it.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:")?.split_whitespace().next()?.parse().ok())
        .expect("a VmRSS line in /proc/self/status");
    kib * 1024
}

/// Growth from `before` to `after`: resident memory that shrank while a
/// measurement grew it means the measurement is wrong, not zero.
fn grew(before: u64, after: u64) -> u64 {
    after.checked_sub(before).unwrap_or_else(|| panic!("resident memory shrank from {before} to {after} bytes"))
}

/// The memory measurements, each run in a process of its own: in one process
/// a measurement would reuse the pages an earlier one freed and look smaller.
const MEMORY_MEASUREMENTS: [&str; 6] = [
    "mesh_metrics",
    "mesh_metrics_traced",
    "prometheus_client",
    "metrics_exporter_prometheus",
    "mesh_call_site",
    "mesh_native_histogram_at_limit",
];

/// Set in the child process that runs one memory measurement.
const MEMORY_CHILD: &str = "MESH_BENCH_MEMORY";

/// Not a timing: resident memory per counter series and per call site,
/// printed once per run, first. Each measurement re-runs this bench binary
/// with [`MEMORY_CHILD`] set, which measures and exits before any timing.
fn memory(_: &mut Criterion) {
    if let Ok(name) = std::env::var(MEMORY_CHILD) {
        measure_memory(&name);
        std::process::exit(0);
    }
    let exe = std::env::current_exe().expect("the bench binary");
    for name in MEMORY_MEASUREMENTS {
        let output = std::process::Command::new(&exe)
            .args(["--bench", "memory-child-runs-no-timings"])
            .env(MEMORY_CHILD, name)
            .output()
            .expect("run the memory measurement");
        assert!(output.status.success(), "memory/{name}: {}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout);
        for line in stdout.lines().filter(|line| line.starts_with("memory/")) {
            println!("{line}");
        }
    }
}

fn measure_memory(name: &str) {
    const N: usize = 100_000;
    let measure = |name: &str, build: &dyn Fn() -> Box<dyn Fn() -> usize>| {
        let before = resident_bytes();
        let render = build();
        let registered = resident_bytes();
        let rendered_len = render();
        let rendered = resident_bytes();
        println!(
            "memory/{name}: {:.0} B per series after registration, {:.0} B after a render ({rendered_len} bytes rendered)",
            grew(before, registered) as f64 / N as f64,
            grew(before, rendered) as f64 / N as f64,
        );
        std::mem::forget(render);
    };
    match name {
        "mesh_metrics" => measure(name, &|| {
            let registry = mesh_counters(N, false);
            Box::new(move || mesh_metrics::render_classic(&registry).len())
        }),
        "mesh_metrics_traced" => measure(name, &|| {
            let registry = mesh_counters(N, true);
            Box::new(move || mesh_metrics::render_openmetrics(&registry).len())
        }),
        "prometheus_client" => measure(name, &|| {
            let registry = pc_counters(N);
            Box::new(move || pc_encode(&registry).len())
        }),
        "metrics_exporter_prometheus" => measure(name, &|| {
            let handle = mep_counters(N);
            Box::new(move || handle.render().len())
        }),
        "mesh_call_site" => call_site_memory(),
        "mesh_native_histogram_at_limit" => native_memory(),
        other => panic!("no memory measurement named {other}"),
    }
}

/// Resident memory per native histogram at its bucket limit (160 buckets at
/// schema 3: observations over 20 powers of two), after a scrape has read it,
/// and once past it (observations over 40 powers of two: the resolution
/// halves, and schema 2 has a table of its own).
fn native_memory() {
    const HISTOGRAMS: usize = 1_000;
    let config = *mesh_metrics::NativeHistograms::new().config();
    let before = resident_bytes();
    let histograms: Vec<MeshHistogram> = (0..HISTOGRAMS)
        .map(|_| {
            let histogram = MeshHistogram::new(std::sync::Arc::new(Layout::native_only(config)));
            for i in 0..160 {
                histogram.observe(2f64.powf(-10.0 + f64::from(i) / 8.0 + 0.01));
            }
            histogram
        })
        .collect();
    let filled = resident_bytes();
    let buckets = histograms[0].native().expect("a native histogram").snapshot().positive.len();
    for histogram in &histograms {
        black_box(histogram.native().map(|native| native.snapshot()));
    }
    let read = resident_bytes();
    for histogram in &histograms {
        for i in 160..320 {
            histogram.observe(2f64.powf(-10.0 + f64::from(i) / 8.0 + 0.01));
        }
    }
    let past = resident_bytes();
    let halved = histograms[0].native().expect("a native histogram").snapshot();
    println!(
        "memory/mesh_native_histogram_at_limit: {:.0} B per native histogram with {buckets} buckets, \
         {:.0} B after a scrape read each, {:.0} B past the limit (schema {}, {} buckets)",
        grew(before, filled) as f64 / HISTOGRAMS as f64,
        grew(before, read) as f64 / HISTOGRAMS as f64,
        grew(before, past) as f64 / HISTOGRAMS as f64,
        halved.schema,
        halved.positive.len(),
    );
    std::mem::forget(histograms);
}

/// Resident memory per `#[instrumented]` call site: its three status
/// counters, duration histogram (default buckets) and share of the in-flight
/// gauge, registered (as `install()` does for every site), then called from
/// as many threads as there are shards, all alive at once (a busy site on a
/// busy host), untraced and then traced (exemplar slots in every shard).
fn call_site_memory() {
    use mesh_metrics::__private::{CallSite, Status, run_sync};
    const SITES: usize = 10_000;
    let shards = mesh_metrics::registry::shard_count();
    let sites: Vec<&'static CallSite> = (0..SITES)
        .map(|i| {
            let method: &'static str = Box::leak(format!("method-{i}").into_boxed_str());
            &*Box::leak(Box::new(CallSite::new("memory", method, "http", "compare.rs")))
        })
        .collect();
    let named = resident_bytes();
    for site in &sites {
        site.register();
    }
    let registered = resident_bytes();
    let call_all = |trace: Option<TraceId>| {
        let alive = std::sync::Barrier::new(shards);
        std::thread::scope(|scope| {
            for _ in 0..shards {
                scope.spawn(|| {
                    alive.wait(); // every thread holds its own index (and shard)
                    for site in &sites {
                        black_box(run_sync(site, trace, || 1u32, |_| Status::Success));
                    }
                    alive.wait();
                });
            }
        });
        resident_bytes()
    };
    let called = call_all(None);
    let traced = call_all(Some(TRACE));
    let per_site = |from: u64, to: u64| grew(from, to) as f64 / SITES as f64;
    println!(
        "memory/mesh_call_site: {:.0} B per site registered, {:.0} B once called from {shards} threads \
         ({shards} shards), {:.0} B once traced calls kept exemplars in them",
        per_site(named, registered),
        per_site(named, called),
        per_site(named, traced),
    );
}

criterion_group!(benches, memory, record, observe, business, render, collectors);
criterion_main!(benches);
