//! What the cardinality guard costs, side by side in one run:
//! on the `metrics` facade, an increment on an existing series (held handle,
//! and `counter!` with its registration per call) and a first-time
//! registration, without the guard layer, with it, and past its limit; in
//! mesh-metrics' registry, the paths the guard makes differ (a lookup, a
//! value cut to the length limit, a label set admitted, one folded past the
//! limit); and the resident memory a flood of 1,000,000 distinct label values
//! leaves behind with and without it.
//!
//! `cargo bench -p mesh-metrics --bench guard`

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mesh_metrics::guard::{CardinalityLayer, CardinalityPolicy, Limit};
use mesh_metrics::registry::{Cell, Descriptor, MetricKind, Registry};
use metrics_util::layers::Layer as _;

fn prometheus() -> metrics_exporter_prometheus::PrometheusRecorder {
    metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder()
}

fn facade(c: &mut Criterion) {
    let mut group = c.benchmark_group("guard_facade");
    let plain = prometheus();
    // A limit that is never reached, to time admission itself...
    let roomy = CardinalityPolicy::default().default_limit(Limit::Series(usize::MAX / 2));
    let guarded = CardinalityLayer::new(roomy).layer(prometheus());
    // ...and the default one, which a flood of new label sets soon reaches.
    let folding = CardinalityLayer::new(CardinalityPolicy::default()).layer(prometheus());
    for (name, recorder) in
        [("unguarded", &plain as &dyn metrics::Recorder), ("guarded", &guarded), ("guarded_past_limit", &folding)]
    {
        metrics::with_local_recorder(recorder, || {
            let held = metrics::counter!("jobs_total", "queue" => "a");
            group.bench_function(format!("{name}/held_handle_increment"), |b| b.iter(|| held.increment(black_box(1))));
            group.bench_function(format!("{name}/counter_macro_existing_series"), |b| {
                b.iter(|| metrics::counter!("jobs_total", "queue" => "a").increment(black_box(1)))
            });
            let mut next = 0u64;
            group.bench_function(format!("{name}/counter_macro_new_series"), |b| {
                b.iter(|| {
                    next += 1;
                    metrics::counter!("fresh_total", "id" => next.to_string()).increment(1)
                })
            });
        });
    }
    group.finish();
}

const SESSIONS: Descriptor = Descriptor {
    name: Cow::Borrowed("sessions_total"),
    help: Cow::Borrowed("bench"),
    kind: MetricKind::Counter,
    label_names: Cow::Borrowed(&["user"]),
    unit: None,
};

/// The guard in mesh-metrics' own registry. A lookup of an existing series
/// takes the same path in every family (the guard's checks there are a length
/// compare per value), so the rows are the paths that do differ: a lookup, a
/// lookup whose value is over the length limit (cut on every call), a new
/// label set admitted under the limit, and one folded into the overflow
/// series past it.
fn registry(c: &mut Criterion) {
    let mut group = c.benchmark_group("guard_registry");
    let registry = Registry::new();
    registry.set_policy(
        CardinalityPolicy::default()
            .limit_for("sessions_total", Limit::Series(usize::MAX / 2))
            .limit_for("folded_total", Limit::Series(100)),
    );
    let counter = || Cell::Counter(Default::default());
    let family = registry.family(&SESSIONS).expect("family");
    group.bench_function("lookup_existing_series", |b| {
        b.iter(|| family.series(black_box(&["ada"]), |_| counter()).map(|s| s.is_overflow()))
    });
    let long = "x".repeat(mesh_metrics::guard::DEFAULT_MAX_LABEL_VALUE_BYTES + 44);
    group.bench_function("lookup_value_over_the_length_limit", |b| {
        b.iter(|| family.series(black_box(&[long.as_str()]), |_| counter()).map(|s| s.is_overflow()))
    });
    let mut next = 0u64;
    group.bench_function("new_label_set_admitted", |b| {
        b.iter(|| {
            next += 1;
            family.series(&[&next.to_string()], |_| counter()).map(|s| s.is_overflow())
        })
    });
    let folded = registry.family(&Descriptor { name: Cow::Borrowed("folded_total"), ..SESSIONS }).expect("family");
    for i in 0..100 {
        let _ = folded.series(&[&format!("seed-{i}")], |_| counter());
    }
    // Checked outside the timed loop: past the limit, a new label set folds.
    let folds = |value: &str| folded.series(&[value], |_| counter()).is_ok_and(|s| s.is_overflow());
    assert!(folds("before"), "past the limit, a new label set folds");
    let mut next = 0u64;
    group.bench_function("new_label_set_folded_past_the_limit", |b| {
        b.iter(|| {
            next += 1;
            folded.series(&[&next.to_string()], |_| counter()).map(|s| s.is_overflow())
        })
    });
    assert!(folds("after"), "past the limit, a new label set folds");
    group.finish();
}

/// Resident set size in bytes, from /proc (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Not a timing: the memory a flood leaves, printed once per run.
fn flood_memory(_: &mut Criterion) {
    const FLOOD: u32 = 1_000_000;
    let report = |what: &str, flood: &dyn Fn()| {
        let before = resident_bytes().unwrap_or(0);
        flood();
        let after = resident_bytes().unwrap_or(0);
        println!(
            "memory/{what}: {FLOOD} distinct label values grew resident memory by {:.1} MiB",
            (after.saturating_sub(before)) as f64 / 1048576.0
        );
    };
    report("registry_guarded_limit_2000", &|| {
        let registry = Registry::new();
        let family = registry.family(&SESSIONS).expect("family");
        for i in 0..FLOOD {
            let _ = family.series(&[&i.to_string()], |_| Cell::Counter(Default::default()));
        }
        std::mem::forget(registry);
    });
    report("facade_guarded_limit_2000", &|| {
        let guarded = CardinalityLayer::new(CardinalityPolicy::default()).layer(prometheus());
        metrics::with_local_recorder(&guarded, || {
            for i in 0..FLOOD {
                metrics::counter!("flood_total", "id" => i.to_string()).increment(1);
            }
        });
        std::mem::forget(guarded);
    });
    report("facade_unguarded", &|| {
        let plain = prometheus();
        metrics::with_local_recorder(&plain, || {
            for i in 0..FLOOD {
                metrics::counter!("flood_total", "id" => i.to_string()).increment(1);
            }
        });
        std::mem::forget(plain);
    });
}

// The memory report runs first, before the timings leave freed pages behind.
criterion_group!(benches, flood_memory, facade, registry);
criterion_main!(benches);
