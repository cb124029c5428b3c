//! The cardinality guard on the registry side: floods, every kind of cell,
//! truncation, expiry.

use std::sync::Arc;

use super::{Cell, Descriptor, Family, Histogram, MetricKind, Registry};
use crate::guard::{CardinalityPolicy, Limit, OVERFLOW_LABEL};

fn family(registry: &Registry, name: &'static str, kind: MetricKind) -> Arc<Family> {
    let descriptor = Descriptor {
        name: name.into(),
        help: "test".into(),
        kind,
        label_names: std::borrow::Cow::Borrowed(&["user"]),
        unit: None,
    };
    registry.family(&descriptor).expect("family")
}

fn counter() -> Cell {
    Cell::Counter(Default::default())
}

fn total(family: &Family) -> f64 {
    family
        .series_list()
        .iter()
        .map(|series| match series.cell() {
            Cell::Counter(counter) => counter.get(),
            _ => 0.0,
        })
        .sum()
}

#[test]
fn a_flood_of_distinct_values_leaves_limit_plus_one_series_and_the_true_total() {
    let registry = Registry::new();
    let logins = family(&registry, "logins_total", MetricKind::Counter);
    for i in 0..1_000_000u32 {
        let series = logins.series(&[&i.to_string()], |_| counter()).expect("series");
        if let Cell::Counter(counter) = series.cell() {
            counter.increment(1);
        }
    }
    let series = logins.series_list();
    assert_eq!(series.len(), 2000 + 1);
    assert_eq!(series.iter().filter(|s| s.is_overflow()).count(), 1);
    assert_eq!(total(&logins), 1_000_000.0);
    assert_eq!(logins.admitted(), 2000);
    assert_eq!(logins.folded(), 1_000_000 - 2000);
    // An admitted label set keeps its own series.
    let first = logins.series(&["0"], |_| counter()).expect("series");
    assert!(!first.is_overflow());
    assert_eq!(first.labels().collect::<Vec<_>>(), ["0"]);
    let overflow = series.iter().find(|s| s.is_overflow()).expect("overflow series");
    assert_eq!(overflow.label_names(&["user"]), &[OVERFLOW_LABEL.0]);
    assert_eq!(overflow.labels().collect::<Vec<_>>(), [OVERFLOW_LABEL.1]);
}

#[test]
fn two_threads_flooding_at_once_keep_the_bound_and_the_total() {
    let registry = Registry::new();
    registry.set_policy(CardinalityPolicy::default().limit_for("logins_total", Limit::Series(100)));
    let logins = family(&registry, "logins_total", MetricKind::Counter);
    std::thread::scope(|scope| {
        for thread in 0..2u32 {
            let logins = &logins;
            scope.spawn(move || {
                for i in 0..200_000u32 {
                    let value = format!("{thread}-{i}");
                    let series = logins.series(&[&value], |_| counter()).expect("series");
                    if let Cell::Counter(counter) = series.cell() {
                        counter.increment(1);
                    }
                }
            });
        }
    });
    assert_eq!(logins.series_list().len(), 101);
    assert_eq!(total(&logins), 400_000.0);
}

#[test]
fn gauges_and_histograms_fold_too() {
    let registry = Registry::new();
    registry.set_policy(CardinalityPolicy::default().default_limit(Limit::Series(3)));
    let temperature = family(&registry, "temperature_celsius", MetricKind::Gauge);
    for i in 0..10 {
        let series = temperature.series(&[&i.to_string()], |_| Cell::Gauge(Default::default())).expect("series");
        if let Cell::Gauge(gauge) = series.cell() {
            gauge.add(1.0);
        }
    }
    assert_eq!(temperature.series_list().len(), 4);
    let overflow = temperature.series_list().into_iter().find(|s| s.is_overflow()).expect("overflow");
    assert!(matches!(overflow.cell(), Cell::Gauge(g) if g.get() == 7.0));

    let latency = family(&registry, "latency_seconds", MetricKind::Histogram);
    for i in 0..10 {
        let make = |layout: &Arc<super::Layout>| Cell::Histogram(Histogram::new(layout.clone()));
        let series = latency.series(&[&i.to_string()], make).expect("series");
        if let Cell::Histogram(histogram) = series.cell() {
            histogram.observe(0.1);
        }
    }
    let counts: u64 = latency
        .series_list()
        .iter()
        .map(|s| match s.cell() {
            Cell::Histogram(h) => h.read(&mut Vec::new()).0,
            _ => 0,
        })
        .sum();
    assert_eq!((latency.series_list().len(), counts), (4, 10));
}

#[test]
fn unlimited_metrics_and_lowered_limits() {
    let registry = Registry::new();
    let ids = family(&registry, "bounded_ids_total", MetricKind::Counter);
    registry.set_policy(CardinalityPolicy::default().limit_for("bounded_ids_total", Limit::Unlimited));
    for i in 0..3000 {
        ids.series(&[&i.to_string()], |_| counter()).expect("series");
    }
    assert_eq!(ids.series_list().len(), 3000);
    // Lowered below what it holds: nothing is dropped, new label sets fold.
    registry.set_policy(CardinalityPolicy::default().limit_for("bounded_ids_total", Limit::Series(10)));
    assert!(!ids.series(&["5"], |_| counter()).expect("series").is_overflow());
    assert!(ids.series(&["new"], |_| counter()).expect("series").is_overflow());
    assert_eq!(ids.series_list().len(), 3001);
}

#[test]
fn long_values_are_cut_on_a_character_boundary_and_share_a_series() {
    let registry = Registry::new();
    registry.set_policy(CardinalityPolicy::default().max_label_value_bytes(5));
    let paths = family(&registry, "paths_total", MetricKind::Counter);
    let a = paths.series(&["ééé-a"], |_| counter()).expect("series");
    let b = paths.series(&["ééé-b"], |_| counter()).expect("series");
    assert_eq!(a.labels().collect::<Vec<_>>(), ["éé"], "6 bytes of é cut to 4, never inside a character");
    assert!(Arc::ptr_eq(&a, &b));
}

#[test]
fn idle_series_expire_only_when_unheld_and_free_their_slot() {
    let registry = Registry::new();
    registry.set_policy(CardinalityPolicy::default().limit_for("sessions_total", Limit::Series(2)));
    registry.set_idle_ticks(2);
    let sessions = family(&registry, "sessions_total", MetricKind::Counter);
    sessions.expire_idle_series(true);
    let held = sessions.series(&["held"], |_| counter()).expect("series");
    drop(sessions.series(&["idle"], |_| counter()).expect("series"));
    assert!(sessions.series(&["third"], |_| counter()).expect("series").is_overflow());
    let mut removed = 0;
    for _ in 0..4 {
        removed += registry.upkeep();
    }
    assert_eq!(removed, 1, "the idle, unheld series goes; the held one stays");
    assert!(!sessions.series(&["third"], |_| counter()).expect("series").is_overflow(), "its slot is free");
    assert!(sessions.series_list().iter().any(|s| Arc::ptr_eq(s, &held)));

    let fixed = family(&registry, "fixed_total", MetricKind::Counter);
    drop(fixed.series(&["x"], |_| counter()).expect("series"));
    for _ in 0..4 {
        registry.upkeep();
    }
    assert_eq!(fixed.series_list().len(), 1, "families that do not opt in never expire");
}

#[test]
fn the_first_fold_of_each_metric_is_logged_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct CountWarnings(Arc<AtomicUsize>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountWarnings {
        fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    use tracing_subscriber::layer::SubscriberExt as _;

    let warnings = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountWarnings(warnings.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let registry = Registry::new();
        registry.set_policy(CardinalityPolicy::default().default_limit(Limit::Series(1)));
        let a = family(&registry, "a_total", MetricKind::Counter);
        let b = family(&registry, "b_total", MetricKind::Counter);
        for i in 0..100 {
            a.series(&[&i.to_string()], |_| counter()).expect("series");
            b.series(&[&i.to_string()], |_| counter()).expect("series");
        }
    });
    assert_eq!(warnings.load(Ordering::Relaxed), 2, "one warning per metric, not one per fold");
}

#[test]
fn a_panic_while_a_lock_is_held_does_not_wedge_the_registry() {
    let registry = Registry::new();
    let jobs = family(&registry, "jobs_total", MetricKind::Counter);
    // The cell constructor runs under the series table's write lock: a panic
    // there poisons it.
    let poisoned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = jobs.series(&["boom"], |_| panic!("constructor failed"));
    }));
    assert!(poisoned.is_err());
    let series = jobs.series(&["after"], |_| counter()).expect("still works");
    if let Cell::Counter(counter) = series.cell() {
        counter.increment(2);
    }
    assert_eq!(total(&jobs), 2.0);
    assert_eq!(registry.snapshot().value("jobs_total", &[("user", "after")]), 2.0);
    registry.set_policy(CardinalityPolicy::default());
    assert_eq!(registry.upkeep(), 0);
}
