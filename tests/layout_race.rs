//! One bucket layout per family whatever the start-up order: calls made
//! before `install()`, and calls racing it, all end up in the layout the
//! builder asked for, and none is lost. Also: install names both places when
//! two instrumented fns record as the same (agent, method).
//!
//! Its own test binary: `install()` happens once per process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mesh_metrics::instrumented;
use mesh_metrics_tests::Warnings;
use tracing_subscriber::layer::SubscriberExt as _;

#[instrumented(agent = "layout-race")]
fn early(n: u64) -> Result<u64, ()> {
    if n % 3 == 0 { Err(()) } else { Ok(n) }
}

mod first {
    #[mesh_metrics::instrumented(agent = "layout-race")]
    pub fn shared_name() -> u32 {
        1
    }
}

mod second {
    #[mesh_metrics::instrumented(agent = "layout-race")]
    pub fn shared_name() -> u32 {
        2
    }
}

#[test]
fn calls_before_and_during_install_end_in_one_layout_with_every_count() {
    let warnings = Warnings::default();
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(warnings.clone()));

    // Before install: the guide's default buckets.
    for n in 0..100 {
        let _ = early(n);
    }
    let calls = Arc::new(AtomicU64::new(100));
    let stop = Arc::new(AtomicBool::new(false));
    // The racers and install() start together.
    let start = Arc::new(std::sync::Barrier::new(4));
    let racers: Vec<_> = (0..3)
        .map(|_| {
            let (calls, stop, start) = (calls.clone(), stop.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let _ = early(n);
                    calls.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    start.wait();
    let exporter = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("addr"))
        .buckets(&[0.000_001, 0.5, 3.0])
        .install()
        .expect("install succeeds after early calls");
    // Calls go on after install, so the new layout is used as well as the old.
    let at_install = calls.load(Ordering::Relaxed);
    while calls.load(Ordering::Relaxed) < at_install + 3_000 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    for racer in racers {
        racer.join().expect("racer");
    }
    assert_eq!(first::shared_name() + second::shared_name(), 3);

    let snapshot = mesh_metrics::snapshot();
    let series: Vec<_> = snapshot
        .matching("mcp_mesh_request_duration_seconds", &[("agent", "layout-race"), ("method", "early")])
        .collect();
    assert_eq!(series.len(), 1);
    let buckets =
        snapshot.buckets("mcp_mesh_request_duration_seconds", &[("agent", "layout-race"), ("method", "early")]);
    let bounds: Vec<f64> = buckets.iter().map(|(le, _)| *le).collect();
    assert_eq!(bounds, vec![0.000_001, 0.5, 3.0, f64::INFINITY], "the configured layout, and only it");
    let total = calls.load(Ordering::Relaxed);
    assert_eq!(buckets.last().map(|b| b.1), Some(total), "+Inf counts every call, early or racing");
    let (count, _) =
        snapshot.histogram("mcp_mesh_request_duration_seconds", &[("agent", "layout-race"), ("method", "early")]);
    assert_eq!(count, total);
    let requests: f64 = ["success", "error"]
        .iter()
        .map(|status| {
            snapshot
                .value("mcp_mesh_requests_total", &[("agent", "layout-race"), ("method", "early"), ("status", status)])
        })
        .sum();
    assert_eq!(requests, total as f64);

    // The exposition has one `le` set for the family.
    let text = exporter.render();
    let les: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|line| line.starts_with("mcp_mesh_request_duration_seconds_bucket{"))
        .filter_map(|line| line.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(les.into_iter().collect::<Vec<_>>(), vec!["+Inf", "0.5", "1e-6", "3"]);

    let warnings = warnings.messages();
    let relaid: Vec<u64> =
        warnings.iter().filter_map(|w| w.split("observations=").nth(1)?.split(' ').next()?.parse().ok()).collect();
    assert_eq!(relaid.len(), 1, "install says how many early observations were re-laid: {warnings:?}");
    assert!((100..total).contains(&relaid[0]), "{} re-laid of {total}: some calls before, some after", relaid[0]);
    let shared: Vec<&String> = warnings.iter().filter(|w| w.contains("method=\"shared_name\"")).collect();
    assert_eq!(shared.len(), 1, "one warning for the shared (agent, method): {warnings:?}");
    assert!(
        shared[0].contains("layout_race::first::shared_name") && shared[0].contains("layout_race::second::shared_name")
    );
}
