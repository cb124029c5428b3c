//! The shapes users write that a body-shape reading got wrong: each is
//! measured over what it really does, with the status its value says.
//!
//! Each test uses its own agent name: the registry is process-wide and tests
//! run in parallel. Sync durations come from quanta's mock clock; async ones
//! from real sleeps, so only their lower bound is asserted.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mesh_metrics::instrumented;

fn statuses(agent: &str, method: &str) -> [f64; 3] {
    let snapshot = mesh_metrics::snapshot();
    ["success", "error", "cancelled"].map(|status| {
        snapshot.value("mcp_mesh_requests_total", &[("agent", agent), ("method", method), ("status", status)])
    })
}

fn in_flight(agent: &str) -> f64 {
    mesh_metrics::snapshot().value("mcp_mesh_connections_active", &[("agent", agent)])
}

fn duration(agent: &str, method: &str) -> (u64, f64) {
    mesh_metrics::snapshot().histogram("mcp_mesh_request_duration_seconds", &[("agent", agent), ("method", method)])
}

pub struct Agent {
    n: u32,
}

async fn slow_failure(n: u32) -> Result<u32, String> {
    tokio::time::sleep(Duration::from_millis(60)).await;
    Err(format!("failed {n}"))
}

#[instrumented(agent = "shape-futures")]
impl Agent {
    /// The clone-then-`async move` idiom: the work is in the future.
    pub fn clone_then_async_move(&self) -> impl Future<Output = Result<u32, String>> + Send + 'static {
        let n = self.n;
        async move {
            tokio::time::sleep(Duration::from_millis(60)).await;
            Err(format!("failed {n}"))
        }
    }

    /// A body that hands back another fn's future.
    pub fn delegating(&self) -> impl Future<Output = Result<u32, String>> + use<> {
        slow_failure(self.n)
    }

    /// A boxed future with an early `return`.
    pub fn boxed_early(&self, early: bool) -> Pin<Box<dyn Future<Output = Result<u32, String>> + Send>> {
        if early {
            return Box::pin(async { Ok(0) });
        }
        Box::pin(slow_failure(self.n))
    }
}

async fn measured_over_the_future(method: &str, future: impl Future<Output = Result<u32, String>>) {
    let agent = "shape-futures";
    let before = statuses(agent, method);
    let mut future = std::pin::pin!(future);
    assert_eq!(in_flight(agent), 0.0, "{method}: building the future is not a call");
    // One poll starts the call; it then sleeps.
    assert!(futures_poll_once(future.as_mut()).await.is_pending());
    assert_eq!(in_flight(agent), 1.0, "{method}: in flight while its future runs");
    assert!(future.await.is_err());
    let after = statuses(agent, method);
    assert_eq!(after[1] - before[1], 1.0, "{method}: the future's Err is an error");
    assert_eq!(after[0], before[0], "{method}: not a success");
    assert_eq!(in_flight(agent), 0.0);
    let (count, sum) = duration(agent, method);
    assert_eq!(count, 1, "{method}: one call");
    assert!(sum >= 0.06, "{method}: measured over the 60 ms the future ran, got {sum} s");
}

/// Polls once and reports what the poll returned.
async fn futures_poll_once<F: Future>(future: Pin<&mut F>) -> std::task::Poll<F::Output> {
    let mut future = Some(future);
    std::future::poll_fn(move |cx| std::task::Poll::Ready(future.take().map(|f| f.poll(cx)))).await.expect("polled")
}

#[tokio::test]
async fn futures_are_measured_by_type_whatever_the_body() {
    let agent = Agent { n: 7 };
    measured_over_the_future("clone_then_async_move", agent.clone_then_async_move()).await;
    measured_over_the_future("delegating", agent.delegating()).await;
    measured_over_the_future("boxed_early", agent.boxed_early(false)).await;
    assert_eq!(agent.boxed_early(true).await, Ok(0));
    assert_eq!(statuses("shape-futures", "boxed_early"), [1.0, 1.0, 0.0]);
}

#[instrumented(agent = "shape-future-cancel")]
fn cancellable() -> impl Future<Output = Result<(), ()>> {
    async {
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[tokio::test]
async fn a_returned_future_dropped_mid_flight_is_cancelled() {
    let timed_out = tokio::time::timeout(Duration::from_millis(10), cancellable()).await;
    assert!(timed_out.is_err());
    drop(cancellable()); // never polled: never a call
    assert_eq!(statuses("shape-future-cancel", "cancellable"), [0.0, 0.0, 1.0]);
    assert_eq!(in_flight("shape-future-cancel"), 0.0);
}

macro_rules! done {
    ($e:expr) => {
        return Ok($e)
    };
}

macro_rules! fail {
    () => {
        return Err("failed".to_owned())
    };
}

#[instrumented(agent = "shape-sync")]
fn macro_returns(n: u32, mock: &quanta::Mock) -> Result<u32, String> {
    mock.increment(Duration::from_millis(3));
    if n == 0 {
        fail!();
    }
    if n > 10 {
        done!(n);
    }
    let value = 'search: {
        for candidate in [n, n + 1] {
            if candidate % 2 == 0 {
                break 'search candidate;
            }
        }
        return Err("no even candidate".to_owned());
    };
    let first_even = |items: &[u32]| -> Option<u32> {
        for item in items {
            if item % 2 == 0 {
                return Some(*item);
            }
        }
        None
    };
    first_even(&[value]).ok_or_else(|| "odd".to_owned())
}

#[test]
fn returns_inside_macros_labelled_blocks_and_closures_are_classified_where_they_leave() {
    let (clock, mock) = quanta::Clock::mock();
    quanta::with_clock(&clock, || {
        assert_eq!(macro_returns(20, &mock), Ok(20)); // `return Ok` inside a macro
        assert!(macro_returns(0, &mock).is_err()); // `return Err` inside a macro
        assert_eq!(macro_returns(3, &mock), Ok(4)); // labelled block, closure returning Some
    });
    assert_eq!(statuses("shape-sync", "macro_returns"), [2.0, 1.0, 0.0]);
    let (count, sum) = duration("shape-sync", "macro_returns");
    assert_eq!(count, 3);
    assert!((sum - 0.009).abs() < 1e-12, "exact mock durations, got {sum}");
}

type Maybe<T> = Option<T>;

#[instrumented(agent = "shape-alias", none_is = "error")]
fn alias_option(input: Option<u32>, early: bool) -> Maybe<u32> {
    if early {
        return None;
    }
    let value = input?;
    Some(value)
}

#[test]
fn an_option_alias_is_classified_the_same_on_every_exit() {
    assert_eq!(alias_option(Some(1), false), Some(1));
    assert_eq!(alias_option(None, false), None); // `?` on None
    assert_eq!(alias_option(Some(1), true), None); // `return None`
    assert_eq!(statuses("shape-alias", "alias_option"), [1.0, 2.0, 0.0]);
}

fn panicking_predicate(_: &Result<u32, String>) -> bool {
    panic!("predicate bug")
}

#[instrumented(agent = "shape-predicate", error_if = panicking_predicate)]
async fn async_with_bad_predicate() -> Result<u32, String> {
    Ok(1)
}

#[instrumented(agent = "shape-predicate", error_if = panicking_predicate)]
fn sync_with_bad_predicate() -> Result<u32, String> {
    Ok(1)
}

#[tokio::test]
async fn a_panicking_predicate_is_an_error_and_restores_the_gauge() {
    let joined = tokio::spawn(async_with_bad_predicate()).await;
    assert!(joined.expect_err("the predicate panicked").is_panic(), "the panic keeps unwinding");
    let caught = std::panic::catch_unwind(sync_with_bad_predicate);
    assert!(caught.is_err(), "the panic keeps unwinding");
    assert_eq!(statuses("shape-predicate", "async_with_bad_predicate"), [0.0, 1.0, 0.0]);
    assert_eq!(statuses("shape-predicate", "sync_with_bad_predicate"), [0.0, 1.0, 0.0]);
    assert_eq!(in_flight("shape-predicate"), 0.0, "no call is left in flight");
}

struct Counter {
    hits: u32,
}

#[instrumented(agent = "shape-borrow")]
impl Counter {
    pub fn slot(&mut self) -> &mut u32 {
        &mut self.hits
    }

    pub fn generic_infallible<T: Clone>(&self, value: T) -> Vec<T> {
        vec![value; 2]
    }

    pub const fn zero() -> u32 {
        0
    }
}

#[test]
fn borrowing_generic_and_const_methods_keep_their_meaning() {
    let mut counter = Counter { hits: Counter::zero() };
    *counter.slot() += 2;
    assert_eq!(counter.hits, 2);
    assert_eq!(counter.generic_infallible('x'), vec!['x', 'x']);
    assert_eq!(statuses("shape-borrow", "slot"), [1.0, 0.0, 0.0]);
    assert_eq!(statuses("shape-borrow", "generic_infallible"), [1.0, 0.0, 0.0]);
    let snapshot = mesh_metrics::snapshot();
    let zero_recorded =
        snapshot.matching("mcp_mesh_requests_total", &[("agent", "shape-borrow"), ("method", "zero")]).next().is_some();
    assert!(!zero_recorded, "a const fn in an instrumented impl block is left alone");
}

#[instrumented(agent = "shape-mock")]
fn slow_sync(mock: &Arc<quanta::Mock>) -> u32 {
    mock.increment(Duration::from_millis(40));
    1
}

#[test]
fn a_sync_call_is_timed_over_its_body() {
    let (clock, mock) = quanta::Clock::mock();
    quanta::with_clock(&clock, || assert_eq!(slow_sync(&mock), 1));
    let (count, sum) = duration("shape-mock", "slow_sync");
    assert_eq!(count, 1);
    assert!((sum - 0.04).abs() < 1e-12);
}

/// Records the order in which guards are dropped.
struct Noisy(&'static str, Arc<std::sync::Mutex<Vec<&'static str>>>);

impl Drop for Noisy {
    fn drop(&mut self) {
        self.1.lock().expect("log").push(self.0);
    }
}

#[instrumented(agent = "shape-drops")]
fn uses_b_before_a(a: Noisy, b: Noisy, _unused: Noisy, (c, _d): (Noisy, u8)) -> usize {
    let _ = (b.0.len(), a.0.len(), c.0.len());
    0
}

fn declared_order(a: Noisy, b: Noisy, _unused: Noisy, (c, _d): (Noisy, u8)) -> usize {
    let _ = (b.0.len(), a.0.len(), c.0.len());
    0
}

#[test]
fn parameters_drop_in_the_order_the_fn_drops_them() {
    let run = |f: fn(Noisy, Noisy, Noisy, (Noisy, u8)) -> usize| {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let noisy = |name| Noisy(name, log.clone());
        f(noisy("a"), noisy("b"), noisy("unused"), (noisy("c"), 0));
        log.lock().expect("log").clone()
    };
    let plain = run(declared_order);
    assert_eq!(plain, ["c", "unused", "b", "a"], "what Rust does without the attribute");
    assert_eq!(run(uses_b_before_a), plain, "the instrumented fn drops its parameters the same way");
}

struct Cache {
    last: Result<u32, String>,
    found: Option<u32>,
}

#[instrumented(agent = "shape-refs", none_is = "error")]
impl Cache {
    pub fn last(&self) -> &Result<u32, String> {
        &self.last
    }

    pub fn found(&mut self) -> &mut Option<u32> {
        &mut self.found
    }
}

#[test]
fn a_result_or_option_behind_a_reference_is_classified_by_what_it_holds() {
    let mut cache = Cache { last: Err("stale".into()), found: None };
    assert!(cache.last().is_err());
    cache.last = Ok(1);
    assert!(cache.last().is_ok());
    assert!(cache.found().is_none());
    *cache.found() = Some(2);
    assert!(cache.found().is_some());
    assert_eq!(statuses("shape-refs", "last"), [1.0, 1.0, 0.0]);
    // `*cache.found() = Some(2)` returned `&mut None`: classified as it left.
    assert_eq!(statuses("shape-refs", "found"), [1.0, 2.0, 0.0]);
}

#[instrumented(agent = "shape-build-panic")]
fn builds_then_panics(panic_now: bool) -> impl Future<Output = u32> {
    assert!(!panic_now, "failed while building the future");
    async { 1 }
}

#[tokio::test]
async fn a_panic_while_building_a_future_is_an_error() {
    assert!(std::panic::catch_unwind(|| builds_then_panics(true)).is_err(), "the panic keeps unwinding");
    assert_eq!(builds_then_panics(false).await, 1);
    assert_eq!(statuses("shape-build-panic", "builds_then_panics"), [1.0, 1.0, 0.0]);
    assert_eq!(in_flight("shape-build-panic"), 0.0);
}

#[instrumented(agent = "shape-never")]
fn never_returns(code: i32) -> ! {
    std::panic::panic_any(code)
}

#[test]
fn a_diverging_fn_is_an_error_when_it_panics() {
    assert!(std::panic::catch_unwind(|| never_returns(3)).is_err());
    assert_eq!(statuses("shape-never", "never_returns"), [0.0, 1.0, 0.0]);
}
