//! Any label values and any numbers, recorded and rendered in both formats:
//! no panic, and no input can add or remove a line (an unescaped newline
//! would), so every document keeps its shape.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use mesh_metrics::registry::{Cell, Descriptor, Histogram, MetricKind, Registry};

fn descriptor(name: &'static str, kind: MetricKind) -> Descriptor {
    Descriptor { name: Cow::Borrowed(name), help: Cow::Borrowed("fuzz \"help\"\\\n"), kind, label_names: Cow::Borrowed(&["a", "b"]), unit: None }
}

fuzz_target!(|data: &[u8]| {
    let registry = Registry::new();
    let gauges = registry.family(&descriptor("fuzz_gauge", MetricKind::Gauge)).expect("valid");
    let counters = registry.family(&descriptor("fuzz_total", MetricKind::Counter)).expect("valid");
    let histograms = registry.family(&descriptor("fuzz_seconds", MetricKind::Histogram)).expect("valid");
    // Records of: 8 bytes of f64, then two label values split at 0xFF bytes.
    for record in data.split(|b| *b == 0xFE) {
        let (number, rest) = record.split_at(record.len().min(8));
        let mut bits = [0u8; 8];
        bits[..number.len()].copy_from_slice(number);
        let value = f64::from_le_bytes(bits);
        let mut labels = rest.splitn(2, |b| *b == 0xFF).map(String::from_utf8_lossy);
        let a = labels.next().unwrap_or_default();
        let b = labels.next().unwrap_or_default();
        let values = [a.as_ref(), b.as_ref()];
        if let Ok(series) = gauges.series(&values, |_| Cell::Gauge(Default::default()))
            && let Cell::Gauge(gauge) = series.cell()
        {
            gauge.set(value);
        }
        if let Ok(series) = counters.series(&values, |_| Cell::Counter(Default::default()))
            && let Cell::Counter(counter) = series.cell()
        {
            let _ = counter.add(value);
        }
        if let Ok(series) = histograms.series(&values, |layout| Cell::Histogram(Histogram::new(layout.clone())))
            && let Cell::Histogram(histogram) = series.cell()
        {
            let _ = histogram.observe(value);
        }
    }
    let series = |family: &mesh_metrics::registry::Family| family.series_list().len();
    let (g, c, h) = (series(&gauges), series(&counters), series(&histograms));
    let buckets = mesh_metrics::registry::DEFAULT_BUCKETS.len() + 1;

    // Classic: HELP and TYPE per family with series, then one line per sample.
    let classic = mesh_metrics::render_classic(&registry);
    let families = [g, c, h].iter().filter(|n| **n > 0).count();
    assert_eq!(classic.lines().count(), 2 * families + g + c + h * (buckets + 2), "{classic}");

    // OpenMetrics: the same, `_count`/`_sum` only where the sum is not negative, then # EOF.
    let openmetrics = mesh_metrics::render_openmetrics(&registry);
    assert!(openmetrics.ends_with("# EOF\n"));
    let sums = openmetrics.lines().filter(|l| l.starts_with("fuzz_seconds_sum")).count();
    assert_eq!(openmetrics.lines().count(), 2 * families + g + c + h * buckets + 2 * sums + 1, "{openmetrics}");
});
