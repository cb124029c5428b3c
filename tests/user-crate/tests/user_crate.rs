//! The numbers a user's crate records, checked through the registry.

use mesh_metrics_user_crate::{many, wide};

#[test]
fn five_thousand_sites_under_one_agent_each_keep_their_own_series() {
    many::call_every_site();
    let snapshot = runtime::snapshot();
    let overflow = snapshot.matching("mcp_mesh_requests_total", &[("otel_metric_overflow", "true")]).count();
    assert_eq!(overflow, 0, "call sites are bounded at compile time and never folded");
    for i in 0..many::SITES {
        let method = format!("site_{i}");
        let labels = |status| [("agent", "many-sites"), ("method", method.as_str()), ("status", status)];
        let (successes, errors) = (
            snapshot.value("mcp_mesh_requests_total", &labels("success")),
            snapshot.value("mcp_mesh_requests_total", &labels("error")),
        );
        assert_eq!((successes, errors), (1.0, if i % 2 == 1 { 1.0 } else { 0.0 }), "{method}");
    }
    let calls: u64 = (0..many::SITES)
        .map(|i| {
            snapshot
                .histogram(
                    "mcp_mesh_request_duration_seconds",
                    &[("agent", "many-sites"), ("method", &format!("site_{i}"))],
                )
                .0
        })
        .sum();
    assert_eq!(calls, (many::SITES + many::SITES / 2) as u64);
}

#[test]
fn an_all_enum_label_set_past_the_guard_limit_is_never_folded() {
    let metrics = <wide::WideMetrics as runtime::Metrics>::register().expect("register");
    assert_eq!(metrics.register(), "the user's register");
    for region in wide::Region::ALL {
        for tier in wide::Tier::ALL {
            for r in wide::R::ALL {
                metrics.events_total.with(&wide::WideLabels { region, tier, r }).inc();
            }
        }
    }
    // Once more each: a cached series, not a fresh lookup.
    for region in wide::Region::ALL {
        metrics.events_total.with(&wide::WideLabels { region, tier: wide::Tier::M, r: wide::R::A }).inc();
    }
    let snapshot = runtime::snapshot();
    let series: Vec<_> = snapshot.matching("user_crate_events_total", &[]).collect();
    assert_eq!(series.len(), 13 * 13 * 13, "one series per combination, none folded");
    assert!(series.iter().all(|s| s.labels.iter().all(|(name, _)| name != "otel_metric_overflow")));
    assert_eq!(snapshot.value("user_crate_events_total", &[]), (13 * 13 * 13 + 13) as f64);
    assert_eq!(snapshot.value("user_crate_events_total", &[("region", "b"), ("tier", "m"), ("r", "a")]), 2.0);
}
