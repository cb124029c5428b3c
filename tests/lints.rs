//! The generated code passes the strictest lint sets a user may enable:
//! `cargo clippy --all-targets -- -D warnings` (run by CI) lints this file with
//! clippy's pedantic group denied on every instrumented shape, and the
//! restriction lints that forbid a reachable panic (`unwrap`, `expect`,
//! `panic!`, indexing, arithmetic that can overflow) in the generated code.
#![deny(warnings, clippy::all, clippy::pedantic)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![deny(clippy::arithmetic_side_effects)]

use mesh_metrics::{Metrics as _, instrumented};

#[derive(Debug, PartialEq, Eq)]
pub struct Failure;

/// Sync, with `?`, early return and tail.
///
/// # Errors
/// When `input` is not a number.
#[instrumented(agent = "lints")]
pub fn parse(input: &str) -> Result<u32, Failure> {
    if input.is_empty() {
        return Ok(0);
    }
    let value = input.parse::<u32>().map_err(|_| Failure)?;
    Ok(value)
}

/// Unit-returning, with a bare `return`.
#[instrumented(agent = "lints")]
pub fn touch(flag: bool) {
    if flag {
        return;
    }
    std::hint::black_box(flag);
}

/// Async.
///
/// # Errors
/// Never, but it says so in its type.
#[instrumented(agent = "lints")]
pub async fn fetch(x: u32) -> Result<u32, Failure> {
    tokio::task::yield_now().await;
    Ok(x)
}

/// Option with `none_is`.
#[instrumented(agent = "lints", none_is = "error")]
#[must_use]
pub fn lookup(key: u32) -> Option<u32> {
    key.checked_sub(1)
}

pub struct Agent {
    count: u32,
}

#[instrumented(agent = "lints")]
impl Agent {
    #[must_use]
    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn bump(&mut self) -> &mut u32 {
        self.count = self.count.saturating_add(1);
        &mut self.count
    }
}

/// The derives, with every kind of label.
#[derive(Debug, Clone, Copy, mesh_metrics::LabelValue)]
pub enum Tier {
    /// Free.
    Free,
    /// Paid.
    Paid,
}

/// Labels of every kind.
#[derive(Debug, mesh_metrics::LabelSet)]
pub struct PlanLabels {
    /// Enumerable.
    pub tier: Tier,
    /// A flag.
    pub trial: bool,
    /// Static.
    pub agent: &'static str,
    /// Open-ended.
    #[label(unbounded)]
    pub region: String,
}

/// Only enumerable labels.
#[derive(Debug, mesh_metrics::LabelSet)]
pub struct TierLabels {
    /// Enumerable.
    pub tier: Tier,
}

/// Metrics of every kind.
#[derive(Debug, mesh_metrics::Metrics)]
#[metrics(prefix = "lints")]
pub struct PlanMetrics {
    /// Plans sold.
    pub plans_total: mesh_metrics::Counter<PlanLabels>,
    /// Plans active.
    pub active_plans: mesh_metrics::Gauge<TierLabels>,
    /// Checkout time, in seconds.
    #[metric(buckets = [0.5, 1, 2.5])]
    pub checkout_seconds: mesh_metrics::Histogram,
}

#[tokio::test]
#[allow(clippy::float_cmp)] // counts are whole numbers, compared exactly on purpose
#[allow(clippy::expect_used, clippy::panic, clippy::arithmetic_side_effects)] // the test itself, not generated code
async fn linted_shapes_still_behave() {
    assert_eq!(parse(""), Ok(0));
    assert_eq!(parse("x"), Err(Failure));
    touch(true);
    assert_eq!(fetch(3).await, Ok(3));
    assert_eq!(lookup(0), None);
    let mut agent = Agent { count: 0 };
    *agent.bump() += 1;
    assert_eq!(agent.count(), 2);
    let snapshot = mesh_metrics::snapshot();
    let status = |method, status| {
        snapshot.value("mcp_mesh_requests_total", &[("agent", "lints"), ("method", method), ("status", status)])
    };
    assert_eq!((status("parse", "success"), status("parse", "error")), (1.0, 1.0));
    assert_eq!(status("lookup", "error"), 1.0);
    assert_eq!(status("bump", "success"), 1.0);

    let plans = PlanMetrics::register().expect("register");
    let labels = PlanLabels { tier: Tier::Paid, trial: false, agent: "lints", region: "eu".to_owned() };
    plans.plans_total.with(&labels).inc();
    plans.active_plans.with(&TierLabels { tier: Tier::Free }).set(2.0);
    plans.checkout_seconds.observe_duration(std::time::Duration::from_millis(700));
    let snapshot = mesh_metrics::snapshot();
    assert_eq!(snapshot.value("lints_plans_total", &[("tier", "paid"), ("region", "eu")]), 1.0);
}
