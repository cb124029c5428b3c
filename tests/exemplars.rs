//! Exemplars and OpenMetrics end to end in one process: trace IDs from each
//! source land on the right bucket and counter, and both formats served over
//! HTTP pass strict, independent parsers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesh_metrics::instrumented;
use mesh_metrics::trace::{self, TraceId};
use mesh_metrics_tests::{Format, ParsedSample, promtool_check_metrics, request, required_tool, strict_parse};

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[instrumented(agent = "exemplars", method = "from_param")]
fn from_param(#[trace_id] traceparent: &str, sleep: Duration) -> Result<(), String> {
    std::thread::sleep(sleep);
    Ok(())
}

#[instrumented(agent = "exemplars", method = "param_beats_scope")]
async fn param_beats_scope(#[trace_id] trace: Option<TraceId>) -> Result<(), String> {
    tokio::task::yield_now().await;
    Err("failed on purpose".into())
}

#[instrumented(agent = "exemplars", method = "from_scope")]
async fn from_scope() -> u32 {
    tokio::time::sleep(Duration::from_millis(30)).await;
    7
}

#[instrumented(agent = "exemplars", method = "cancelled")]
async fn cancelled() {
    std::future::pending::<()>().await;
}

#[instrumented(agent = "exemplars", method = "from_guard")]
fn from_guard() -> Option<u32> {
    None
}

#[instrumented(agent = "exemplars", method = "untraced")]
fn untraced() {}

fn id(hex: &str) -> TraceId {
    TraceId::from_hex(hex).expect("valid trace id")
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64()
}

/// The `_bucket` samples of one method, in order, and its counter samples.
fn of_method<'a>(samples: &'a [ParsedSample], method: &str) -> (Vec<&'a ParsedSample>, Vec<&'a ParsedSample>) {
    let label = format!("method={method}");
    let mine = |s: &&ParsedSample| s.labels.split(',').any(|pair| pair == label);
    let buckets = samples.iter().filter(|s| s.name == "mcp_mesh_request_duration_seconds_bucket").filter(mine);
    let counters = samples.iter().filter(|s| s.name == "mcp_mesh_requests_total").filter(mine);
    (buckets.collect(), counters.collect())
}

/// The exemplar of a method's traced observation: exactly one bucket carries
/// one, and its value lies within that bucket's bounds.
fn single_bucket_exemplar(samples: &[ParsedSample], method: &str) -> (String, f64, f64) {
    let (buckets, _) = of_method(samples, method);
    let le = |sample: &ParsedSample| -> f64 {
        sample.labels.split(',').find_map(|p| p.strip_prefix("le=")).expect("le").parse().expect("le value")
    };
    let with_exemplar: Vec<usize> = (0..buckets.len()).filter(|i| buckets[*i].exemplar.is_some()).collect();
    assert_eq!(with_exemplar.len(), 1, "{method}: one exemplar, on one bucket: {buckets:#?}");
    let index = with_exemplar[0];
    let exemplar = buckets[index].exemplar.clone().expect("checked above");
    let lower = if index == 0 { f64::NEG_INFINITY } else { le(buckets[index - 1]) };
    assert!(
        lower < exemplar.value && exemplar.value <= le(buckets[index]),
        "{method}: exemplar value {} outside its bucket ({lower}, {}]",
        exemplar.value,
        le(buckets[index])
    );
    (exemplar.trace_id, exemplar.value, exemplar.timestamp)
}

fn counter_exemplar(samples: &[ParsedSample], method: &str, status: &str) -> Option<String> {
    let (_, counters) = of_method(samples, method);
    let wanted = format!("status={status}");
    let counter = counters.iter().find(|c| c.labels.split(',').any(|pair| pair == wanted)).expect("counter series");
    for other in counters.iter().filter(|c| !c.labels.split(',').any(|pair| pair == wanted)) {
        assert!(other.exemplar.is_none(), "{method}: exemplar on a status that never happened: {other:?}");
    }
    counter.exemplar.as_ref().map(|e| {
        assert_eq!(e.value, 1.0, "a counter exemplar's value is its increment");
        e.trace_id.clone()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemplars_carry_each_source_of_trace_id_and_both_formats_parse() {
    let exporter = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .buckets_for("facade_latency_seconds", &[0.1, 1.0])
        .install()
        .expect("install");
    let addr = exporter.local_addr();

    let before = unix_now();
    from_param("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", Duration::from_millis(20)).expect("ok");
    {
        // The parameter beats the scope.
        let call = param_beats_scope(Some(id("11111111111111111111111111111111")));
        trace::scope(id("22222222222222222222222222222222"), call).await.expect_err("fails on purpose");
    }
    // The scope follows the future onto whichever worker polls it.
    let scoped = tokio::spawn(trace::scope(id("33333333333333333333333333333333"), from_scope()));
    assert_eq!(scoped.await.expect("join"), 7);
    // Dropped unfinished, scope and all: the cancellation still carries the ID.
    let scoped = trace::scope(id("55555555555555555555555555555555"), cancelled());
    tokio::time::timeout(Duration::from_millis(10), scoped).await.expect_err("never finishes");
    {
        let _trace = trace::enter(id("44444444444444444444444444444444"));
        assert_eq!(from_guard(), None);
    }
    untraced();
    // An invalid header means no trace ID, not a half-parsed one.
    from_param("00-not-a-trace", Duration::ZERO).expect("ok");
    let after = unix_now();

    metrics::counter!("facade_hits").increment(2);
    metrics::histogram!("facade_latency_seconds").record(-0.5);
    metrics::describe_gauge!("facade_temperature", "A \"quoted\" help\\text");
    metrics::gauge!("facade_temperature", "room" => "a\"b\\c\nd").set(f64::NAN);

    // Exemplars keep the time they were observed at, not the scrape's.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let scrape = move |headers: &'static [(&'static str, &'static str)]| {
        tokio::task::spawn_blocking(move || request(addr, "GET", "/metrics", headers))
    };
    let openmetrics = scrape(&[("Accept", OPENMETRICS)]).await.expect("join").expect("scrape");
    let classic = scrape(&[]).await.expect("join").expect("scrape");
    let scraped_at = unix_now();

    assert_eq!(openmetrics.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert_eq!(classic.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert!(openmetrics.body.ends_with("# EOF\n"), "{}", openmetrics.body);
    assert!(openmetrics.body.contains("# TYPE mcp_mesh_requests counter\n"), "{}", openmetrics.body);
    assert!(openmetrics.body.contains("# TYPE facade_hits unknown\n"), "{}", openmetrics.body);
    assert!(!classic.body.contains(" # {"), "no exemplars in the classic format:\n{}", classic.body);
    let type_lines =
        |body: &str| body.lines().filter(|l| l.starts_with("# TYPE ")).map(str::to_owned).collect::<Vec<_>>();
    // The endpoint's own families exist from the first scrape on: a later one
    // serves exactly what the handle renders.
    let again = scrape(&[("Accept", OPENMETRICS)]).await.expect("join").expect("scrape");
    assert_eq!(type_lines(&exporter.render_openmetrics()), type_lines(&again.body));

    let promtool = required_tool("promtool");
    let lint = promtool_check_metrics(&promtool, &classic.body).unwrap_or_else(|e| panic!("{e}\n{}", classic.body));
    // Only the facade metrics written badly on purpose draw style advice.
    assert!(lint.iter().all(|problem| problem.starts_with("facade_")), "promtool check metrics: {lint:?}");
    strict_parse(Format::Classic, &classic.body).unwrap_or_else(|e| panic!("classic: {e}\n{}", classic.body));
    let samples = strict_parse(Format::OpenMetrics, &openmetrics.body)
        .unwrap_or_else(|e| panic!("openmetrics: {e}\n{}", openmetrics.body));

    let (trace_id, value, timestamp) = single_bucket_exemplar(&samples, "from_param");
    assert_eq!(trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert!(value >= 0.02, "the exemplar holds the call's duration: {value}");
    assert!(
        (before..=after + 0.01).contains(&timestamp),
        "stamped at the observation: {before} <= {timestamp} <= {after}"
    );
    assert!(timestamp < scraped_at - 1.0, "not re-stamped at the scrape");
    assert_eq!(counter_exemplar(&samples, "from_param", "success").as_deref(), Some(trace_id.as_str()));

    assert_eq!(single_bucket_exemplar(&samples, "param_beats_scope").0, "11111111111111111111111111111111");
    assert_eq!(
        counter_exemplar(&samples, "param_beats_scope", "error").as_deref(),
        Some("11111111111111111111111111111111")
    );
    let (scoped_id, scoped_value, _) = single_bucket_exemplar(&samples, "from_scope");
    assert_eq!(scoped_id, "33333333333333333333333333333333");
    assert!(scoped_value >= 0.03, "{scoped_value}");
    assert_eq!(single_bucket_exemplar(&samples, "from_guard").0, "44444444444444444444444444444444");
    assert_eq!(
        counter_exemplar(&samples, "from_guard", "success").as_deref(),
        Some("44444444444444444444444444444444")
    );
    assert_eq!(
        counter_exemplar(&samples, "cancelled", "cancelled").as_deref(),
        Some("55555555555555555555555555555555")
    );

    let (buckets, counters) = of_method(&samples, "untraced");
    assert!(buckets.iter().chain(&counters).all(|s| s.exemplar.is_none()), "no trace ID, no exemplar");
    for sample in samples.iter().filter(|s| s.exemplar.is_some()) {
        assert!(sample.name.ends_with("_bucket") || sample.name.ends_with("_total"), "{sample:?}");
    }
    let facade_gauge = samples.iter().find(|s| s.name == "facade_temperature").expect("facade gauge");
    assert_eq!(facade_gauge.labels, "room=a\"b\\\\c\\nd");
    assert!(samples.iter().any(|s| s.name == "facade_latency_seconds_bucket"));
    exporter.shutdown().await;
}
