//! The cost of recording one call, side by side in one run (DESIGN §7):
//! the bare function, the floor (two clock reads and five relaxed atomic
//! adds), `#[instrumented]` sync and async, each with and without a trace ID
//! (an exemplar on the bucket and the counter), and the `metrics` facade on
//! `metrics-exporter-prometheus` with cached handles and with a lookup per call.
//!
//! `cargo bench -p mesh-metrics --bench record`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use mesh_metrics::instrumented;
use mesh_metrics::trace::{self, TraceId};

#[inline(never)]
fn bare(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[instrumented(agent = "bench", method = "sync")]
#[inline(never)]
fn instrumented_sync(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[instrumented(agent = "bench", method = "async")]
async fn instrumented_async(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[instrumented(agent = "bench", method = "sync_traced")]
#[inline(never)]
fn instrumented_sync_traced(#[trace_id] trace_id: TraceId, x: u64) -> u64 {
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

/// Polls a future that completes on its first poll, without a runtime.
fn poll_once<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the benchmarked future never waits"),
    }
}

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_one_call");
    group.bench_function("bare_fn", |b| b.iter(|| bare(black_box(7))));
    group.bench_function("floor_2_clock_reads_5_atomics", |b| b.iter(|| floor(black_box(7))));
    group.bench_function("instrumented_sync", |b| b.iter(|| instrumented_sync(black_box(7))));
    group.bench_function("instrumented_async", |b| b.iter(|| poll_once(instrumented_async(black_box(7)))));
    let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("trace id");
    group.bench_function("instrumented_sync_trace_id_param", |b| {
        b.iter(|| instrumented_sync_traced(black_box(trace_id), black_box(7)))
    });
    group.bench_function("instrumented_sync_in_trace_scope", |b| {
        let _scope = trace::enter(trace_id);
        b.iter(|| instrumented_sync(black_box(7)))
    });
    group.bench_function("instrumented_async_in_trace_scope", |b| {
        b.iter(|| poll_once(trace::scope(trace_id, instrumented_async(black_box(7)))))
    });

    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&mesh_metrics::registry::DEFAULT_BUCKETS)
        .expect("buckets")
        .build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let labels = [("agent", "bench"), ("method", "cached")];
        let requests = metrics::counter!("requests_total", &labels);
        let duration = metrics::histogram!("duration_seconds", &labels);
        let in_flight = metrics::gauge!("in_flight", &labels);
        group.bench_function("metrics_cached_handles", |b| {
            b.iter(|| {
                let start = quanta::Instant::now();
                in_flight.increment(1.0);
                let result = bare(black_box(7));
                duration.record(quanta::Instant::now().saturating_duration_since(start).as_secs_f64());
                requests.increment(1);
                in_flight.decrement(1.0);
                result
            })
        });
        group.bench_function("metrics_macros_lookup_per_call", |b| {
            b.iter(|| {
                let start = quanta::Instant::now();
                metrics::gauge!("in_flight", "agent" => "bench", "method" => "macro").increment(1.0);
                let result = bare(black_box(7));
                metrics::histogram!("duration_seconds", "agent" => "bench", "method" => "macro")
                    .record(quanta::Instant::now().saturating_duration_since(start).as_secs_f64());
                metrics::counter!("requests_total", "agent" => "bench", "method" => "macro").increment(1);
                metrics::gauge!("in_flight", "agent" => "bench", "method" => "macro").decrement(1.0);
                result
            })
        });
        // It keeps raw samples until upkeep; drain so memory stays flat.
        handle.run_upkeep();
    });
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
