//! Every way a call can end is counted once, with the right status, and the
//! in-flight gauge returns to where it was.
//!
//! Each test uses its own agent name: the registry is process-wide and tests
//! run in parallel. Durations come from quanta's mock clock, so histogram sums
//! are exact.

use std::sync::Arc;
use std::time::Duration;

use mesh_metrics::instrumented;

/// The counter of one status.
fn requests(agent: &str, method: &str, status: &str) -> f64 {
    mesh_metrics::snapshot()
        .value("mcp_mesh_requests_total", &[("agent", agent), ("method", method), ("status", status)])
}

fn statuses(agent: &str, method: &str) -> [f64; 3] {
    ["success", "error", "cancelled"].map(|status| requests(agent, method, status))
}

fn in_flight(agent: &str) -> f64 {
    mesh_metrics::snapshot().value("mcp_mesh_connections_active", &[("agent", agent)])
}

fn duration(agent: &str, method: &str) -> (u64, f64) {
    mesh_metrics::snapshot().histogram("mcp_mesh_request_duration_seconds", &[("agent", agent), ("method", method)])
}

/// Runs `f` with a mock clock that the instrumented body advances.
fn with_mock_clock<R>(f: impl FnOnce(&Arc<quanta::Mock>) -> R) -> R {
    let (clock, mock) = quanta::Clock::mock();
    quanta::with_clock(&clock, || f(&mock))
}

#[derive(Debug, PartialEq)]
struct Broken;

#[instrumented(agent = "exit-sync")]
fn parse(input: &str, mock: &quanta::Mock) -> Result<u32, Broken> {
    mock.increment(Duration::from_millis(30));
    if input == "early" {
        return Ok(7);
    }
    let value: u32 = input.parse().map_err(|_| Broken)?;
    if value == 0 {
        return Err(Broken);
    }
    Ok(value)
}

#[test]
fn sync_exits_are_counted_with_their_status_and_exact_duration() {
    with_mock_clock(|mock| {
        assert_eq!(parse("12", mock), Ok(12)); // tail Ok
        assert_eq!(parse("early", mock), Ok(7)); // early return Ok
        assert_eq!(parse("x", mock), Err(Broken)); // `?`
        assert_eq!(parse("0", mock), Err(Broken)); // early return Err
    });
    assert_eq!(statuses("exit-sync", "parse"), [2.0, 2.0, 0.0]);
    assert_eq!(in_flight("exit-sync"), 0.0);
    let (count, sum) = duration("exit-sync", "parse");
    assert_eq!(count, 4);
    assert!((sum - 0.12).abs() < 1e-12, "sum = {sum}");
    // 30 ms falls in the 0.05 bucket, not in 0.025.
    let buckets = mesh_metrics::snapshot().buckets("mcp_mesh_request_duration_seconds", &[("agent", "exit-sync")]);
    assert_eq!(buckets.iter().find(|(le, _)| *le == 0.025).map(|b| b.1), Some(0));
    assert_eq!(buckets.iter().find(|(le, _)| *le == 0.05).map(|b| b.1), Some(4));
}

#[instrumented(agent = "exit-panic")]
fn explode(mock: &quanta::Mock) -> u32 {
    mock.increment(Duration::from_millis(2));
    assert_eq!(in_flight("exit-panic"), 1.0, "in flight during the call");
    panic!("boom")
}

#[test]
fn a_panic_is_an_error_and_keeps_unwinding() {
    let caught = with_mock_clock(|mock| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| explode(mock))));
    let payload = caught.expect_err("the panic propagates");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    assert_eq!(statuses("exit-panic", "explode"), [0.0, 1.0, 0.0]);
    assert_eq!(in_flight("exit-panic"), 0.0);
    assert_eq!(duration("exit-panic", "explode"), (1, 0.002));
}

#[instrumented(agent = "exit-option")]
fn find(key: u32) -> Option<u32> {
    let found = (key > 0).then_some(key)?;
    Some(found * 2)
}

#[instrumented(agent = "exit-option", method = "find_strict", none_is = "error")]
fn find_strict(key: u32) -> Option<u32> {
    let found = (key > 0).then_some(key)?;
    Some(found * 2)
}

#[test]
fn option_none_is_configurable() {
    assert_eq!(find(2), Some(4));
    assert_eq!(find(0), None);
    assert_eq!(find_strict(2), Some(4));
    assert_eq!(find_strict(0), None);
    assert_eq!(statuses("exit-option", "find"), [2.0, 0.0, 0.0]);
    assert_eq!(statuses("exit-option", "find_strict"), [1.0, 1.0, 0.0]);
}

#[derive(Debug)]
struct Reply {
    code: u16,
}

fn is_server_error(reply: &Reply) -> bool {
    reply.code >= 500
}

fn is_cached(reply: &Reply) -> bool {
    reply.code == 304
}

#[instrumented(agent = "exit-predicate", error_if = is_server_error)]
fn forward(code: u16) -> Reply {
    if code == 0 {
        return Reply { code: 503 };
    }
    Reply { code }
}

#[instrumented(agent = "exit-predicate", ok_if = is_cached)]
fn revalidate(code: u16) -> Reply {
    Reply { code }
}

#[test]
fn predicates_decide_the_status() {
    assert_eq!(forward(200).code, 200);
    assert_eq!(forward(502).code, 502);
    assert_eq!(forward(0).code, 503);
    assert_eq!(revalidate(304).code, 304);
    assert_eq!(revalidate(200).code, 200);
    assert_eq!(statuses("exit-predicate", "forward"), [1.0, 2.0, 0.0]);
    assert_eq!(statuses("exit-predicate", "revalidate"), [1.0, 1.0, 0.0]);
}

#[instrumented(agent = "exit-async")]
async fn fetch(outcome: &str, gate: Option<tokio::sync::oneshot::Receiver<()>>) -> Result<String, String> {
    if let Some(gate) = gate {
        let _ = gate.await;
    }
    match outcome {
        "ok" => Ok("sunny".to_owned()),
        "early" => return Ok("early".to_owned()),
        "try" => {
            let n: u32 = outcome.parse().map_err(|_| "not a number".to_owned())?;
            Ok(n.to_string())
        }
        "panic" => panic!("async boom"),
        _ => Err("rain".to_owned()),
    }
}

#[tokio::test]
async fn async_exits_including_cancellation_and_panic() {
    assert_eq!(fetch("ok", None).await.as_deref(), Ok("sunny"));
    assert_eq!(fetch("early", None).await.as_deref(), Ok("early"));
    assert!(fetch("try", None).await.is_err());
    assert!(fetch("err", None).await.is_err());

    // Dropped while waiting: cancelled, and no longer in flight.
    let (_gate_tx, gate) = tokio::sync::oneshot::channel();
    let pending = tokio::time::timeout(Duration::from_millis(20), fetch("ok", Some(gate))).await;
    assert!(pending.is_err(), "timed out");

    // Never polled: never started, so nothing is recorded.
    drop(fetch("ok", None));

    // A panic inside a task: tokio catches it; we count an error, not a cancel.
    let joined = tokio::spawn(fetch("panic", None)).await;
    assert!(joined.expect_err("task panicked").is_panic());

    assert_eq!(statuses("exit-async", "fetch"), [2.0, 3.0, 1.0]);
    assert_eq!(in_flight("exit-async"), 0.0);
    assert_eq!(duration("exit-async", "fetch").0, 6);
}

#[instrumented(agent = "exit-concurrent")]
async fn slow_call(n: u64, hang: bool) -> Result<u64, ()> {
    tokio::time::sleep(Duration::from_millis(n % 7)).await;
    if hang {
        std::future::pending::<()>().await;
    }
    if n % 5 == 0 { Err(()) } else { Ok(n) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_tasks_leave_the_gauge_at_zero() {
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..1000u64 {
        // Every tenth call hangs and is cancelled mid-flight by its timeout.
        let hang = n % 10 == 3;
        tasks.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_millis(50), slow_call(n, hang)).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    let finished = (0..1000u64).filter(|n| n % 10 != 3);
    let errors = finished.clone().filter(|n| n % 5 == 0).count() as f64;
    let successes = finished.count() as f64 - errors;
    assert_eq!(statuses("exit-concurrent", "slow_call"), [successes, errors, 100.0]);
    assert_eq!(in_flight("exit-concurrent"), 0.0);
    assert_eq!(duration("exit-concurrent", "slow_call").0, 1000);
}

#[instrumented(agent = "exit-future")]
fn deferred(fail: bool) -> impl std::future::Future<Output = Result<u8, ()>> {
    async move {
        tokio::task::yield_now().await;
        if fail { Err(()) } else { Ok(1) }
    }
}

#[tokio::test]
async fn a_returned_future_is_counted_when_it_finishes_not_when_built() {
    let ok = deferred(false);
    let failing = deferred(true);
    assert_eq!(statuses("exit-future", "deferred"), [0.0, 0.0, 0.0], "building is not calling");
    assert_eq!(ok.await, Ok(1));
    assert_eq!(failing.await, Err(()));
    assert_eq!(statuses("exit-future", "deferred"), [1.0, 1.0, 0.0]);
    assert_eq!(in_flight("exit-future"), 0.0);
}
