//! Adversarial input never breaks the exposition: label values with quotes,
//! backslashes, newlines, `}`, `#`, NUL, long and multi-byte UTF-8, empty;
//! values NaN, ±Inf, negative, huge; histogram observations of NaN and
//! negative. Both formats must parse with a strict, independent parser, each
//! label value must come back as written (cut to the length limit on a
//! character boundary), and every accepted measurement must be in the totals.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use mesh_metrics::registry::{self, Cell, Descriptor, Histogram, MetricKind};
use mesh_metrics::{ExporterHandle, guard};
use mesh_metrics_tests::{Format, ParsedSample, strict_parse};
use proptest::prelude::*;

fn exporter() -> &'static ExporterHandle {
    static EXPORTER: OnceLock<ExporterHandle> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        mesh_metrics::Exporter::builder().listen("127.0.0.1:0".parse().expect("address")).install().expect("install")
    })
}

/// Label values built from the characters that break naive writers.
fn label_value() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("\n".to_owned()),
        Just("}".to_owned()),
        Just("{".to_owned()),
        Just("#".to_owned()),
        Just("\0".to_owned()),
        Just(",".to_owned()),
        Just("=".to_owned()),
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        Just("é".to_owned()),
        Just("日本".to_owned()),
        Just("🦀".to_owned()),
        any::<char>().prop_map(String::from),
        "[a-z]{1,8}".prop_map(String::from),
    ];
    prop_oneof![
        3 => proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat()),
        1 => (".{0,4}", 250usize..300).prop_map(|(prefix, n)| format!("{prefix}{}", "é".repeat(n / 2))),
    ]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(1e300),
        -1e6..1e6f64,
        any::<f64>(),
    ]
}

fn descriptor(name: String, kind: MetricKind) -> Descriptor {
    Descriptor {
        name: Cow::Owned(name),
        help: Cow::Borrowed("adversarial \"help\" with \\ and\nnewline"),
        kind,
        label_names: Cow::Borrowed(&["value"]),
        unit: None,
    }
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// The parsed samples named `name`, by their `value` label.
fn by_value<'a>(samples: &'a [ParsedSample], name: &str) -> BTreeMap<String, Vec<&'a ParsedSample>> {
    let mut map: BTreeMap<String, Vec<&ParsedSample>> = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.name == name) {
        let value = sample.label_pairs.iter().find(|(k, _)| k == "value").map(|(_, v)| v.clone()).unwrap_or_default();
        map.entry(value).or_default().push(sample);
    }
    map
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn adversarial_measurements_survive_both_formats(
        gauges in proptest::collection::vec((label_value(), value()), 1..6),
        counters in proptest::collection::vec((label_value(), value()), 1..8),
        observations in proptest::collection::vec((label_value(), value()), 1..8),
    ) {
        let exporter = exporter();
        static CASE: AtomicUsize = AtomicUsize::new(0);
        let case = CASE.fetch_add(1, Ordering::Relaxed);
        let registry = registry::global();
        let cut = |v: &str| {
            let mut end = v.len().min(guard::DEFAULT_MAX_LABEL_VALUE_BYTES);
            while !v.is_char_boundary(end) { end -= 1; }
            v[..end].to_owned()
        };

        let gauge_name = format!("prop_gauge_{case}");
        let gauge_family = registry.family(&descriptor(gauge_name.clone(), MetricKind::Gauge)).expect("family");
        let mut gauge_expected: BTreeMap<String, f64> = BTreeMap::new();
        for (label, value) in &gauges {
            if let Cell::Gauge(gauge) = gauge_family.series(&[label], |_| Cell::Gauge(Default::default())).expect("series").cell() {
                gauge.set(*value);
            }
            gauge_expected.insert(cut(label), *value);
        }

        let counter_name = format!("prop_counter_{case}_total");
        let counter_family = registry.family(&descriptor(counter_name.clone(), MetricKind::Counter)).expect("family");
        let mut counter_expected: BTreeMap<String, f64> = BTreeMap::new();
        for (label, amount) in &counters {
            let series = counter_family.series(&[label], |_| Cell::Counter(Default::default())).expect("series");
            let accepted = match series.cell() { Cell::Counter(counter) => counter.add(*amount), _ => false };
            prop_assert_eq!(accepted, amount.is_finite() && *amount >= 0.0, "a counter takes exactly the finite, non-negative amounts");
            *counter_expected.entry(cut(label)).or_default() += if accepted { *amount } else { 0.0 };
        }

        let histogram_name = format!("prop_histogram_{case}");
        let histogram_family = registry.family(&descriptor(histogram_name.clone(), MetricKind::Histogram)).expect("family");
        let mut histogram_expected: BTreeMap<String, u64> = BTreeMap::new();
        for (label, observation) in &observations {
            let series = histogram_family
                .series(&[label], |layout| Cell::Histogram(Histogram::new(layout.clone())))
                .expect("series");
            let accepted = match series.cell() { Cell::Histogram(histogram) => histogram.observe(*observation), _ => false };
            prop_assert_eq!(accepted, !observation.is_nan(), "a histogram takes every observation but NaN");
            *histogram_expected.entry(cut(label)).or_default() += u64::from(accepted);
        }

        for (format, body) in [(Format::Classic, exporter.render()), (Format::OpenMetrics, exporter.render_openmetrics())] {
            let samples = strict_parse(format, &body).map_err(|e| TestCaseError::fail(format!("{format:?}: {e}")))?;

            let parsed = by_value(&samples, &gauge_name);
            prop_assert_eq!(parsed.keys().cloned().collect::<Vec<_>>(), gauge_expected.keys().cloned().collect::<Vec<_>>());
            for (label, expected) in &gauge_expected {
                let got = parsed[label][0].value;
                prop_assert!(close(got, *expected), "{:?} gauge {:?}: {} != {}", format, label, got, expected);
            }

            let parsed = by_value(&samples, &counter_name);
            prop_assert_eq!(parsed.keys().cloned().collect::<Vec<_>>(), counter_expected.keys().cloned().collect::<Vec<_>>());
            for (label, expected) in &counter_expected {
                let got = parsed[label][0].value;
                prop_assert!(close(got, *expected), "{:?} counter {:?}: {} != {}", format, label, got, expected);
            }

            // Every accepted observation is in the +Inf bucket (in both formats;
            // OpenMetrics leaves out `_count` when the sum is negative).
            let buckets = by_value(&samples, &format!("{histogram_name}_bucket"));
            for (label, expected) in &histogram_expected {
                let inf = buckets.get(label).and_then(|b| b.iter().find(|s| s.label_pairs.iter().any(|(k, v)| k == "le" && v == "+Inf")));
                prop_assert_eq!(inf.map(|s| s.value), Some(*expected as f64), "{:?} histogram {:?}", format, label);
            }
        }
    }
}
