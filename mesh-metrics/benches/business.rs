//! A business-metric increment, side by side in one run: `with(&labels)` on
//! enum-only labels (an index into pre-resolved series), on labels with a
//! `&'static str` and on an unbounded `String` (both a registry lookup under
//! the guard), against a `metrics` handle held in a static and `counter!` with
//! a registry lookup per call, both on `metrics-exporter-prometheus`.
//!
//! `cargo bench -p mesh-metrics --bench business`

use std::hint::black_box;
use std::sync::LazyLock;

use criterion::{Criterion, criterion_group, criterion_main};
use mesh_metrics::{Counter, LabelSet, LabelValue, Metrics};

#[derive(Clone, Copy, LabelValue)]
#[allow(dead_code)] // values of the label; the bench records one
enum Currency {
    Usd,
    Eur,
    Gbp,
}

#[derive(Clone, Copy, LabelValue)]
#[allow(dead_code)]
enum Product {
    Basic,
    Pro,
}

#[derive(LabelSet)]
struct Bounded {
    currency: Currency,
    product: Product,
}

#[derive(LabelSet)]
struct WithAgent {
    agent: &'static str,
    currency: Currency,
    product: Product,
}

#[derive(LabelSet)]
struct Unbounded {
    #[label(unbounded)]
    customer: String,
}

#[derive(Metrics)]
#[metrics(prefix = "bench")]
struct BusinessMetrics {
    /// Revenue by enum-only labels.
    bounded_total: Counter<Bounded>,
    /// Revenue with the agent as a static string.
    with_agent_total: Counter<WithAgent>,
    /// Orders per customer.
    unbounded_total: Counter<Unbounded>,
}

static METRICS: LazyLock<BusinessMetrics> = LazyLock::new(|| BusinessMetrics::register().expect("register"));

fn business(c: &mut Criterion) {
    let mut group = c.benchmark_group("business_increment");
    let labels = Bounded { currency: Currency::Eur, product: Product::Pro };
    group.bench_function("with_bounded_labels", |b| b.iter(|| METRICS.bounded_total.with(black_box(&labels)).inc()));
    let labels = WithAgent { agent: "analytics", currency: Currency::Eur, product: Product::Pro };
    group.bench_function("with_static_str_label", |b| {
        b.iter(|| METRICS.with_agent_total.with(black_box(&labels)).inc())
    });
    let labels = Unbounded { customer: "customer-42".to_owned() };
    group.bench_function("with_unbounded_label", |b| b.iter(|| METRICS.unbounded_total.with(black_box(&labels)).inc()));

    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        let held = metrics::counter!("bench_held_total", "currency" => "eur", "product" => "pro");
        group.bench_function("metrics_held_handle", |b| b.iter(|| held.increment(black_box(1))));
        group.bench_function("metrics_counter_macro", |b| {
            b.iter(|| {
                metrics::counter!("bench_macro_total", "currency" => "eur", "product" => "pro").increment(black_box(1))
            })
        });
    });
    group.finish();
}

criterion_group!(benches, business);
criterion_main!(benches);
