//! Idle expiry: series of unbounded labels that nobody updates go away and
//! free their slot in the guard; series in use and the fixed series of
//! `#[instrumented]` call sites stay.

use std::borrow::Cow;
use std::time::Duration;

use mesh_metrics::instrumented;
use mesh_metrics::registry::{self, Cell, Descriptor, MetricKind};

#[instrumented(agent = "idle-test")]
fn called_once() {}

fn has(body: &str, line_start: &str) -> bool {
    body.lines().any(|line| line.starts_with(line_start))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_series_expire_and_free_their_slot() {
    let exporter = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .idle_timeout(Duration::from_millis(300))
        .upkeep_interval(Duration::from_millis(50))
        .cardinality_limit_for("facade_visits_total", 1)
        .cardinality_limit_for("registry_carts_total", 1)
        .install()
        .expect("install");

    called_once();
    metrics::counter!("facade_visits_total", "user" => "a").increment(1);
    metrics::counter!("facade_visits_total", "user" => "b").increment(1);
    let busy = metrics::counter!("facade_busy_total", "user" => "z");
    const CARTS: Descriptor = Descriptor {
        name: Cow::Borrowed("registry_carts_total"),
        help: Cow::Borrowed("Carts by user"),
        kind: MetricKind::Counter,
        label_names: Cow::Borrowed(&["user"]),
        unit: None,
    };
    let carts = registry::global().family(&CARTS).expect("family");
    carts.expire_idle_series(true);
    let cart = |user: &str| carts.series(&[user], |_| Cell::Counter(Default::default())).expect("series");
    assert!(!cart("a").is_overflow());
    assert!(cart("b").is_overflow(), "limit 1");

    let before = exporter.render();
    assert!(has(&before, "facade_visits_total{user=\"a\"} 1"), "{before}");
    assert!(has(&before, "facade_visits_total{otel_metric_overflow=\"true\"} 1"), "{before}");
    assert!(has(&before, "registry_carts_total{user=\"a\"} 0"), "{before}");

    // Idle for the timeout plus the guard's margin, while `busy` keeps working.
    for _ in 0..20 {
        busy.increment(1);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let after = exporter.render();
    assert!(!has(&after, "facade_visits_total{user=\"a\"}"), "idle facade series expired:\n{after}");
    assert!(!has(&after, "registry_carts_total{user=\"a\"}"), "idle registry series expired:\n{after}");
    assert!(has(&after, "facade_busy_total{user=\"z\"} 20"), "a series in use stays:\n{after}");
    assert!(
        has(&after, "mcp_mesh_requests_total{agent=\"idle-test\",method=\"called_once\",status=\"success\"} 1"),
        "call-site series never expire:\n{after}"
    );

    // The freed slots admit new label sets.
    metrics::counter!("facade_visits_total", "user" => "c").increment(1);
    assert!(!cart("c").is_overflow());
    let refilled = exporter.render();
    assert!(has(&refilled, "facade_visits_total{user=\"c\"} 1"), "{refilled}");
    assert!(has(&refilled, "registry_carts_total{user=\"c\"} 0"), "{refilled}");
    exporter.shutdown().await;
}
