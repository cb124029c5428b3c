//! Per-core shards lose nothing: many threads and tasks that move between a
//! runtime's workers call instrumented fns while another thread scrapes, and
//! every scrape is a valid exposition whose histograms have `+Inf == _count`,
//! whose counters never go down and whose in-flight gauges are never negative;
//! at rest the totals are exact and nothing is in flight.
//!
//! Its own test binary, so the counts are this test's alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mesh_metrics::instrumented;
use mesh_metrics::registry::{self, shard_count};
use mesh_metrics::trace::{self, TraceId};
use mesh_metrics_tests::{Format, exposition};

const AGENT: &str = "sharding";
const THREADS: u64 = 6;
const CALLS_PER_THREAD: u64 = 100_000;
const TASKS: u64 = 64;
const AWAITS_PER_TASK: u64 = 2_000;

#[instrumented(agent = "sharding")]
fn sync_call(n: u64) -> Result<u64, u64> {
    if n % 7 == 0 { Err(n) } else { Ok(n) }
}

#[instrumented(agent = "sharding")]
async fn async_call(n: u64) -> Result<u64, u64> {
    // Yield so the task is rescheduled, often onto another worker: the call
    // enters on one thread and ends on another.
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    if n % 5 == 0 { Err(n) } else { Ok(n) }
}

fn errors_below(limit: u64, every: u64) -> u64 {
    (0..limit).filter(|n| n % every == 0).count() as u64
}

/// One scrape, checked: parses strictly (which checks `+Inf == _count` and
/// buckets that never go down), and returns this agent's sample values.
fn scrape() -> HashMap<String, f64> {
    let text = mesh_metrics::render_openmetrics(registry::global());
    let samples = exposition::parse(Format::OpenMetrics, &text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    samples
        .into_iter()
        .filter(|sample| sample.label_pairs.iter().any(|(name, value)| name == "agent" && value == AGENT))
        .map(|sample| {
            let labels: Vec<String> =
                sample.label_pairs.iter().map(|(name, value)| format!("{name}=\"{value}\"")).collect();
            (format!("{}{{{}}}", sample.name, labels.join(",")), sample.value)
        })
        .collect()
}

fn sample(samples: &HashMap<String, f64>, name: &str, labels: &str) -> f64 {
    // A missing series is a failure, not a 0.
    let key = format!("{name}{{{labels}}}");
    samples.get(&key).copied().unwrap_or_else(|| panic!("no sample {key} in the scrape"))
}

#[test]
fn shards_add_up_in_every_scrape_and_exactly_at_rest() {
    assert!(shard_count().is_power_of_two() && shard_count() <= registry::MAX_SHARDS);
    let running = AtomicBool::new(true);
    let calling = AtomicBool::new(true);
    let scraping = AtomicBool::new(false);
    let scrapes = std::thread::scope(|scope| {
        let scraper = scope.spawn(|| {
            let mut previous: HashMap<String, f64> = HashMap::new();
            let mut scrapes_during_calls = 0u64;
            let mut partial_totals = 0u64;
            let sync_successes =
                format!("mcp_mesh_requests_total{{agent=\"{AGENT}\",method=\"sync_call\",status=\"success\"}}");
            let final_successes = (THREADS * CALLS_PER_THREAD - THREADS * errors_below(CALLS_PER_THREAD, 7)) as f64;
            scraping.store(true, Ordering::Relaxed);
            while running.load(Ordering::Relaxed) {
                let during_calls = calling.load(Ordering::Relaxed);
                let samples = scrape();
                for (key, value) in &samples {
                    if key.starts_with("mcp_mesh_connections_active") {
                        assert!(*value >= 0.0, "{key} = {value}: a negative number in flight");
                        assert!(*value <= (THREADS + TASKS) as f64, "{key} = {value}: more in flight than callers");
                    } else if ["_total", "_bucket", "_count", "_sum"].iter().any(|suffix| key.contains(suffix)) {
                        let before = previous.get(key).copied().unwrap_or(0.0);
                        assert!(*value >= before, "{key} went down between scrapes: {before} -> {value}");
                    }
                }
                let successes = samples.get(&sync_successes).copied().unwrap_or(0.0);
                partial_totals += u64::from(successes > 0.0 && successes < final_successes);
                previous = samples;
                scrapes_during_calls += u64::from(during_calls);
            }
            (scrapes_during_calls, partial_totals)
        });

        // The calls start once the scraper runs, however late it is scheduled.
        while !scraping.load(Ordering::Relaxed) {
            std::thread::yield_now();
        }
        // Sync callers on plain threads, half of them traced.
        let callers: Vec<_> = (0..THREADS)
            .map(|thread| {
                scope.spawn(move || {
                    let trace_id = TraceId::from_u128(u128::from(thread) + 1).expect("non-zero");
                    let _trace = (thread % 2 == 0).then(|| trace::enter(trace_id));
                    for n in 0..CALLS_PER_THREAD {
                        let _ = std::hint::black_box(sync_call(n));
                    }
                })
            })
            .collect();

        // Async callers: tasks on a 4-worker runtime, rescheduled at every yield.
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("runtime");
        runtime.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|task| {
                    tokio::spawn(async move {
                        let trace_id = TraceId::from_u128(u128::from(task) + 100).expect("non-zero");
                        for n in 0..AWAITS_PER_TASK {
                            let call = async_call(n);
                            let _ = if task % 2 == 0 { trace::scope(trace_id, call).await } else { call.await };
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("task");
            }
        });
        for caller in callers {
            caller.join().expect("caller");
        }
        calling.store(false, Ordering::Relaxed);
        // Scrape a while longer after the callers end, then stop.
        std::thread::sleep(Duration::from_millis(50));
        running.store(false, Ordering::Relaxed);
        scraper.join().expect("scraper")
    });
    let (scrapes, partial_totals) = scrapes;
    assert!(scrapes >= 1, "the scraper ran while calls were made: {scrapes} scrapes");
    assert!(partial_totals >= 1, "some scrape read the shards mid-run, with a partial total");
    eprintln!("{scrapes} scrapes while calls were made, {partial_totals} with a partial total");

    // At rest: exact totals, nothing in flight.
    let samples = scrape();
    let sync_errors = THREADS * errors_below(CALLS_PER_THREAD, 7);
    let async_errors = TASKS * errors_below(AWAITS_PER_TASK, 5);
    let requests = |method: &str, status: &str| {
        sample(
            &samples,
            "mcp_mesh_requests_total",
            &format!("agent=\"{AGENT}\",method=\"{method}\",status=\"{status}\""),
        )
    };
    assert_eq!(requests("sync_call", "success"), (THREADS * CALLS_PER_THREAD - sync_errors) as f64);
    assert_eq!(requests("sync_call", "error"), sync_errors as f64);
    assert_eq!(requests("async_call", "success"), (TASKS * AWAITS_PER_TASK - async_errors) as f64);
    assert_eq!(requests("async_call", "error"), async_errors as f64);
    assert_eq!(requests("async_call", "cancelled"), 0.0);
    for (method, calls) in [("sync_call", THREADS * CALLS_PER_THREAD), ("async_call", TASKS * AWAITS_PER_TASK)] {
        let labels = format!("agent=\"{AGENT}\",method=\"{method}\"");
        assert_eq!(sample(&samples, "mcp_mesh_request_duration_seconds_count", &labels), calls as f64);
        let inf_labels = format!("agent=\"{AGENT}\",le=\"+Inf\",method=\"{method}\"");
        let inf = sample(&samples, "mcp_mesh_request_duration_seconds_bucket", &inf_labels);
        assert_eq!(inf, calls as f64, "{method}: +Inf is every call");
    }
    let in_flight: Vec<_> = samples.iter().filter(|(key, _)| key.starts_with("mcp_mesh_connections_active")).collect();
    assert!(!in_flight.is_empty(), "the in-flight gauge is exposed");
    for (key, value) in in_flight {
        assert_eq!(*value, 0.0, "{key}: nothing is in flight at rest");
    }

    // Exemplars, read across the shards, carry the trace IDs the calls had.
    let text = mesh_metrics::render_openmetrics(registry::global());
    let traced: Vec<u128> = (1..=THREADS as u128).step_by(2).chain((100..100 + TASKS as u128).step_by(2)).collect();
    let mut exemplars = 0;
    for sample in exposition::parse(Format::OpenMetrics, &text).expect("valid") {
        let ours = sample.label_pairs.iter().any(|(name, value)| name == "agent" && value == AGENT);
        if let (true, Some(exemplar)) = (ours, &sample.exemplar) {
            let id = u128::from_str_radix(&exemplar.trace_id, 16).expect("hex");
            assert!(traced.contains(&id), "{}: exemplar trace ID {id:x} was never a call's", sample.name);
            exemplars += 1;
        }
    }
    assert!(exemplars > 0, "traced calls leave exemplars");
}
