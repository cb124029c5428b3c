//! The cardinality guard end to end: floods through the `metrics` facade and
//! the registry leave limit + 1 series with the true totals, the guard says
//! what it did, and adversarial label values come back intact through strict
//! parsers of both formats.

use std::borrow::Cow;

use mesh_metrics::registry::{self, Cell, Descriptor, MetricKind};
use mesh_metrics_tests::{Format, ParsedSample, request, strict_parse};

const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0";

fn samples_named<'a>(samples: &'a [ParsedSample], name: &str) -> Vec<&'a ParsedSample> {
    samples.iter().filter(|s| s.name == name).collect()
}

fn value_of(samples: &[ParsedSample], name: &str, labels: &str) -> Option<f64> {
    samples.iter().find(|s| s.name == name && s.labels == labels).map(|s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_bounded_totals_are_kept_and_values_survive_escaping() {
    let exporter = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .cardinality_limit_for("facade_logins_total", 100)
        .cardinality_limit_for_prefix("facade_shared_", 10)
        .cardinality_limit_for("registry_sessions_total", 20)
        .max_label_value_bytes(16)
        .buckets_for("facade_shared_latency_seconds", &[0.1, 1.0])
        .install()
        .expect("install");
    let addr = exporter.local_addr();

    // 1,000,000 distinct values into one facade counter.
    tokio::task::spawn_blocking(|| {
        for i in 0..1_000_000u32 {
            metrics::counter!("facade_logins_total", "user" => i.to_string()).increment(1);
        }
    })
    .await
    .expect("flood");
    // The same from two threads at once, into gauges and histograms.
    let threads: Vec<_> = (0..2)
        .map(|thread| {
            std::thread::spawn(move || {
                for i in 0..50_000u32 {
                    let user = format!("{thread}-{i}");
                    metrics::counter!("facade_shared_jobs_total", "user" => user.clone()).increment(2);
                    metrics::gauge!("facade_shared_queue_depth", "user" => user.clone()).increment(1.0);
                    metrics::histogram!("facade_shared_latency_seconds", "user" => user).record(0.5);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("flood thread");
    }
    // A registry family, as the business-metrics derive uses.
    const SESSIONS: Descriptor = Descriptor {
        name: Cow::Borrowed("registry_sessions_total"),
        help: Cow::Borrowed("Sessions by user"),
        kind: MetricKind::Counter,
        label_names: Cow::Borrowed(&["user"]),
        unit: None,
    };
    let sessions = registry::global().family(&SESSIONS).expect("family");
    for i in 0..5_000u32 {
        if let Cell::Counter(counter) =
            sessions.series(&[&format!("s{i}")], |_| Cell::Counter(Default::default())).expect("series").cell()
        {
            counter.increment(1);
        }
    }

    // Adversarial values, each 16 bytes or cut to 16 on a character boundary.
    let adversarial =
        ["quote\"d", "back\\slash", "new\nline", "brace}", "hash # x", "", "日本語テキスト", "x".repeat(40).as_str()]
            .map(str::to_owned);
    const ODD: Descriptor = Descriptor {
        name: Cow::Borrowed("registry_odd_values"),
        help: Cow::Borrowed("Label values that need escaping: \"quotes\", \\ and\nnewlines"),
        kind: MetricKind::Gauge,
        label_names: Cow::Borrowed(&["value"]),
        unit: None,
    };
    let odd = registry::global().family(&ODD).expect("family");
    for value in &adversarial {
        if let Cell::Gauge(gauge) = odd.series(&[value], |_| Cell::Gauge(Default::default())).expect("series").cell() {
            gauge.set(1.0);
        }
        metrics::gauge!("facade_odd_values", "value" => value.clone()).set(1.0);
    }

    let scrape = |accept: &'static str| {
        tokio::task::spawn_blocking(move || {
            let headers: &[(&str, &str)] = if accept.is_empty() { &[] } else { &[("Accept", accept)] };
            request(addr, "GET", "/metrics", headers).expect("scrape").body
        })
    };
    let classic = scrape("").await.expect("join");
    let openmetrics = scrape(OPENMETRICS).await.expect("join");
    for (format, body) in [(Format::Classic, &classic), (Format::OpenMetrics, &openmetrics)] {
        let samples = strict_parse(format, body).unwrap_or_else(|e| panic!("{format:?}: {e}\n{body}"));

        let logins = samples_named(&samples, "facade_logins_total");
        assert_eq!(logins.len(), 101, "{format:?}: the limit plus the overflow series");
        assert_eq!(logins.iter().map(|s| s.value).sum::<f64>(), 1_000_000.0, "{format:?}: every increment counted");
        assert_eq!(value_of(&samples, "facade_logins_total", "otel_metric_overflow=true"), Some(999_900.0));
        assert_eq!(value_of(&samples, "mcp_mesh_cardinality_series", "metric=facade_logins_total"), Some(100.0));
        assert_eq!(
            value_of(&samples, "mcp_mesh_cardinality_overflow_total", "metric=facade_logins_total"),
            Some(999_900.0)
        );

        let jobs = samples_named(&samples, "facade_shared_jobs_total");
        assert_eq!((jobs.len(), jobs.iter().map(|s| s.value).sum::<f64>()), (11, 200_000.0), "{format:?}");
        let depth = samples_named(&samples, "facade_shared_queue_depth");
        assert_eq!((depth.len(), depth.iter().map(|s| s.value).sum::<f64>()), (11, 100_000.0), "{format:?}");
        let latency = samples_named(&samples, "facade_shared_latency_seconds_count");
        assert_eq!((latency.len(), latency.iter().map(|s| s.value).sum::<f64>()), (11, 100_000.0), "{format:?}");

        let sessions = samples_named(&samples, "registry_sessions_total");
        assert_eq!((sessions.len(), sessions.iter().map(|s| s.value).sum::<f64>()), (21, 5_000.0), "{format:?}");
        assert_eq!(
            value_of(&samples, "mcp_mesh_cardinality_overflow_total", "metric=registry_sessions_total"),
            Some(4_980.0)
        );

        for metric in ["registry_odd_values", "facade_odd_values"] {
            let mut got: Vec<String> = samples_named(&samples, metric).iter().map(|s| s.labels.clone()).collect();
            got.sort();
            let mut want: Vec<String> = [
                "value=quote\"d",
                "value=back\\\\slash",
                "value=new\\nline",
                "value=brace}",
                "value=hash # x",
                "value=",
                "value=日本語テキ",
                "value=xxxxxxxxxxxxxxxx",
            ]
            .map(str::to_owned)
            .to_vec();
            want.sort();
            assert_eq!(got, want, "{format:?} {metric}");
        }
    }
    exporter.shutdown().await;
}
