//! One `ExportMetricsServiceRequest` (opentelemetry-proto, metrics v1) from
//! the registry and the `metrics` facade, read the way a scrape reads them:
//! counters as monotonic cumulative sums, gauges as gauges, histograms as
//! explicit-bucket cumulative histograms, with their exemplars' trace IDs.
//!
//! Names follow the OpenTelemetry–Prometheus compatibility rules: a counter's
//! metric is named without `_total` (its OpenMetrics family name), and the
//! unit goes in `unit` (UCUM: `s`, `By`, ...); the name keeps its unit
//! suffix, so a Prometheus behind a Collector sees the names `/metrics` has.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::proto::Writer;
use crate::exemplar::Exemplar;
use crate::registry::{Cell, Family, MetricKind};
use crate::render::from_classic;

/// What every request carries besides the metrics.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// Resource attributes (`service.name`, `service.version`, the user's).
    pub(crate) resource: Vec<(String, String)>,
    /// Labels added to every series of ours (the builder's global labels).
    pub(crate) global: Vec<(String, String)>,
    /// When the cumulative series started: when the exporter was installed.
    pub(crate) start_nanos: u64,
}

// Field numbers of opentelemetry-proto (collector/metrics/v1, metrics/v1,
// common/v1, resource/v1).
mod field {
    pub(super) const REQUEST_RESOURCE_METRICS: u32 = 1;
    pub(super) const RESOURCE_METRICS_RESOURCE: u32 = 1;
    pub(super) const RESOURCE_METRICS_SCOPE_METRICS: u32 = 2;
    pub(super) const RESOURCE_ATTRIBUTES: u32 = 1;
    pub(super) const SCOPE_METRICS_SCOPE: u32 = 1;
    pub(super) const SCOPE_METRICS_METRICS: u32 = 2;
    pub(super) const SCOPE_NAME: u32 = 1;
    pub(super) const SCOPE_VERSION: u32 = 2;
    pub(super) const METRIC_NAME: u32 = 1;
    pub(super) const METRIC_DESCRIPTION: u32 = 2;
    pub(super) const METRIC_UNIT: u32 = 3;
    pub(super) const METRIC_GAUGE: u32 = 5;
    pub(super) const METRIC_SUM: u32 = 7;
    pub(super) const METRIC_HISTOGRAM: u32 = 9;
    pub(super) const METRIC_SUMMARY: u32 = 11;
    pub(super) const DATA_POINTS: u32 = 1;
    pub(super) const TEMPORALITY: u32 = 2;
    pub(super) const SUM_IS_MONOTONIC: u32 = 3;
    pub(super) const NUMBER_START: u32 = 2;
    pub(super) const NUMBER_TIME: u32 = 3;
    pub(super) const NUMBER_AS_DOUBLE: u32 = 4;
    pub(super) const NUMBER_EXEMPLARS: u32 = 5;
    pub(super) const NUMBER_ATTRIBUTES: u32 = 7;
    pub(super) const HISTOGRAM_START: u32 = 2;
    pub(super) const HISTOGRAM_TIME: u32 = 3;
    pub(super) const HISTOGRAM_COUNT: u32 = 4;
    pub(super) const HISTOGRAM_SUM: u32 = 5;
    pub(super) const HISTOGRAM_BUCKET_COUNTS: u32 = 6;
    pub(super) const HISTOGRAM_EXPLICIT_BOUNDS: u32 = 7;
    pub(super) const HISTOGRAM_EXEMPLARS: u32 = 8;
    pub(super) const HISTOGRAM_ATTRIBUTES: u32 = 9;
    pub(super) const SUMMARY_START: u32 = 2;
    pub(super) const SUMMARY_TIME: u32 = 3;
    pub(super) const SUMMARY_COUNT: u32 = 4;
    pub(super) const SUMMARY_SUM: u32 = 5;
    pub(super) const SUMMARY_QUANTILES: u32 = 6;
    pub(super) const SUMMARY_ATTRIBUTES: u32 = 7;
    pub(super) const QUANTILE: u32 = 1;
    pub(super) const QUANTILE_VALUE: u32 = 2;
    pub(super) const EXEMPLAR_TIME: u32 = 2;
    pub(super) const EXEMPLAR_AS_DOUBLE: u32 = 3;
    pub(super) const EXEMPLAR_TRACE_ID: u32 = 5;
    pub(super) const KEY_VALUE_KEY: u32 = 1;
    pub(super) const KEY_VALUE_VALUE: u32 = 2;
    pub(super) const ANY_VALUE_STRING: u32 = 1;
}

/// `AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE`.
const CUMULATIVE: u64 = 2;

/// The request body (not yet compressed).
pub(crate) fn request(context: &Context, families: &[Arc<Family>], facade: &str) -> Vec<u8> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
    let points = Points { start: context.start_nanos, now };
    let clock = crate::exemplar::scrape_clock();
    let mut writer = Writer::default();
    writer.message(field::REQUEST_RESOURCE_METRICS, |resource_metrics| {
        resource_metrics.message(field::RESOURCE_METRICS_RESOURCE, |resource| {
            for (key, value) in &context.resource {
                attribute(resource, field::RESOURCE_ATTRIBUTES, key, value);
            }
        });
        resource_metrics.message(field::RESOURCE_METRICS_SCOPE_METRICS, |scope_metrics| {
            scope_metrics.message(field::SCOPE_METRICS_SCOPE, |scope| {
                scope.string(field::SCOPE_NAME, "mesh-metrics");
                scope.string(field::SCOPE_VERSION, env!("CARGO_PKG_VERSION"));
            });
            for family in families {
                ours(scope_metrics, family, &context.global, &points, clock);
            }
            for block in from_classic::blocks(facade) {
                facade_family(scope_metrics, &block, &points);
            }
        });
    });
    writer.into_bytes()
}

/// The times every point of one request carries.
struct Points {
    start: u64,
    now: u64,
}

fn attribute(writer: &mut Writer, field_number: u32, key: &str, value: &str) {
    writer.message(field_number, |key_value| {
        key_value.string(field::KEY_VALUE_KEY, key);
        key_value.message(field::KEY_VALUE_VALUE, |any| any.string(field::ANY_VALUE_STRING, value));
    });
}

/// The OpenTelemetry metric name of a Prometheus family: a counter's without
/// `_total`.
fn metric_name(name: &str, kind: &str) -> String {
    match (kind, name.strip_suffix("_total")) {
        ("counter", Some(base)) if !base.is_empty() => base.to_owned(),
        _ => name.to_owned(),
    }
}

/// A Prometheus unit as UCUM, which OTLP's `unit` holds.
fn ucum(unit: &str) -> &str {
    match unit {
        "seconds" => "s",
        "milliseconds" => "ms",
        "bytes" => "By",
        "percent" => "%",
        "ratio" => "1",
        other => other,
    }
}

fn ours(
    scope: &mut Writer,
    family: &Family,
    global: &[(String, String)],
    points: &Points,
    clock: (SystemTime, quanta::Instant),
) {
    let series = family.series_list();
    if series.is_empty() {
        return;
    }
    let descriptor = family.descriptor();
    let kind = match descriptor.kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
    };
    let names = &*descriptor.label_names;
    let attributes = |writer: &mut Writer, field_number: u32, series: &crate::registry::Series| {
        let label_names = series.label_names(names);
        for (name, value) in label_names.iter().zip(series.labels()) {
            attribute(writer, field_number, name, value);
        }
        for (name, value) in global.iter().filter(|(name, _)| !label_names.contains(&name.as_str())) {
            attribute(writer, field_number, name, value);
        }
    };
    scope.message(field::SCOPE_METRICS_METRICS, |metric| {
        metric.string(field::METRIC_NAME, &metric_name(&descriptor.name, kind));
        metric.string(field::METRIC_DESCRIPTION, &descriptor.help);
        metric.string(field::METRIC_UNIT, descriptor.unit.as_deref().map(ucum).unwrap_or_default());
        let data_field = match descriptor.kind {
            MetricKind::Counter => field::METRIC_SUM,
            MetricKind::Gauge => field::METRIC_GAUGE,
            MetricKind::Histogram => field::METRIC_HISTOGRAM,
        };
        metric.message(data_field, |data| {
            let mut cumulative = Vec::new();
            for series in &series {
                match series.cell() {
                    Cell::Histogram(histogram) => data.message(field::DATA_POINTS, |point| {
                        attributes(point, field::HISTOGRAM_ATTRIBUTES, series);
                        let (count, sum, layout) = histogram.read(&mut cumulative);
                        let per_bucket: Vec<u64> = cumulative
                            .iter()
                            .scan(0u64, |below, &total| {
                                let bucket = total.saturating_sub(*below);
                                *below = total;
                                Some(bucket)
                            })
                            .collect();
                        histogram_point(point, points, count, sum, &per_bucket, layout.bounds());
                        for index in 0..per_bucket.len() {
                            if let Some(exemplar) = histogram.read_exemplar(index, clock) {
                                point.message(field::HISTOGRAM_EXEMPLARS, |e| exemplar_fields(e, &exemplar));
                            }
                        }
                    }),
                    cell => data.message(field::DATA_POINTS, |point| {
                        attributes(point, field::NUMBER_ATTRIBUTES, series);
                        let (value, exemplar) = match cell {
                            Cell::Counter(counter) => (counter.get(), counter.read_exemplar(clock)),
                            Cell::Gauge(gauge) => (gauge.get(), None),
                            Cell::InFlight(in_flight) => (in_flight.get() as f64, None),
                            Cell::Histogram(_) => (0.0, None),
                        };
                        number_point(point, points, descriptor.kind == MetricKind::Counter, value);
                        if let Some(exemplar) = exemplar {
                            point.message(field::NUMBER_EXEMPLARS, |e| exemplar_fields(e, &exemplar));
                        }
                    }),
                }
            }
            temporality(data, descriptor.kind);
        });
    });
}

/// `aggregation_temporality` (and `is_monotonic`) after the points.
fn temporality(data: &mut Writer, kind: MetricKind) {
    match kind {
        MetricKind::Counter => {
            data.uint(field::TEMPORALITY, CUMULATIVE);
            data.uint(field::SUM_IS_MONOTONIC, 1);
        }
        MetricKind::Histogram => data.uint(field::TEMPORALITY, CUMULATIVE),
        MetricKind::Gauge => {}
    }
}

fn number_point(point: &mut Writer, points: &Points, cumulative: bool, value: f64) {
    if cumulative {
        point.fixed64(field::NUMBER_START, points.start);
    }
    point.fixed64(field::NUMBER_TIME, points.now);
    point.double(field::NUMBER_AS_DOUBLE, value);
}

fn histogram_point(point: &mut Writer, points: &Points, count: u64, sum: f64, buckets: &[u64], bounds: &[f64]) {
    point.fixed64(field::HISTOGRAM_START, points.start);
    point.fixed64(field::HISTOGRAM_TIME, points.now);
    point.fixed64(field::HISTOGRAM_COUNT, count);
    // OTLP leaves the sum out of a histogram with negative observations.
    if sum >= 0.0 {
        point.double(field::HISTOGRAM_SUM, sum);
    }
    point.packed_fixed64(field::HISTOGRAM_BUCKET_COUNTS, buckets);
    point.packed_double(field::HISTOGRAM_EXPLICIT_BOUNDS, bounds);
}

fn exemplar_fields(writer: &mut Writer, exemplar: &Exemplar) {
    writer.fixed64(field::EXEMPLAR_TIME, u64::try_from(exemplar.timestamp.as_nanos()).unwrap_or(u64::MAX));
    writer.double(field::EXEMPLAR_AS_DOUBLE, exemplar.value);
    writer.bytes(field::EXEMPLAR_TRACE_ID, &exemplar.trace_id.to_u128().to_be_bytes());
}

/// One sample line of the facade's classic text.
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Reads `name{k="v",...} value` as metrics-exporter-prometheus writes it
/// (label values escape `\\`, `"` and newlines). `None` for anything else.
fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line.get(..name_end)?.to_owned();
    let mut rest = line.get(name_end..)?;
    let mut labels = Vec::new();
    if let Some(mut inside) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inside.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = inside.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.to_owned(), value));
            inside = after.get(end + 1..)?;
            inside = inside.strip_prefix(',').unwrap_or(inside);
        }
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number.parse().ok()?,
    };
    Some(Sample { name, labels, value })
}

/// One family of the facade, from its classic text.
fn facade_family(scope: &mut Writer, block: &from_classic::Block<'_>, points: &Points) {
    let samples: Vec<Sample> = block.samples.iter().filter_map(|line| sample(line)).collect();
    if samples.is_empty() {
        return;
    }
    scope.message(field::SCOPE_METRICS_METRICS, |metric| {
        metric.string(field::METRIC_NAME, &metric_name(block.name, block.kind));
        metric.string(field::METRIC_DESCRIPTION, block.help.unwrap_or_default());
        match block.kind {
            "counter" => metric.message(field::METRIC_SUM, |data| {
                for sample in &samples {
                    data.message(field::DATA_POINTS, |point| {
                        labels(point, field::NUMBER_ATTRIBUTES, &sample.labels, None);
                        number_point(point, points, true, sample.value);
                    });
                }
                temporality(data, MetricKind::Counter);
            }),
            "histogram" => metric.message(field::METRIC_HISTOGRAM, |data| {
                for series in grouped(block.name, &samples) {
                    data.message(field::DATA_POINTS, |point| {
                        labels(point, field::HISTOGRAM_ATTRIBUTES, series.labels, Some("le"));
                        let mut bounds = Vec::new();
                        let mut buckets = Vec::new();
                        let mut below = 0.0;
                        for (le, cumulative) in &series.buckets {
                            if le.is_finite() {
                                bounds.push(*le);
                            }
                            buckets.push((cumulative - below).max(0.0) as u64);
                            below = *cumulative;
                        }
                        histogram_point(point, points, series.count as u64, series.sum, &buckets, &bounds);
                    });
                }
                temporality(data, MetricKind::Histogram);
            }),
            "summary" => metric.message(field::METRIC_SUMMARY, |data| {
                for series in grouped(block.name, &samples) {
                    data.message(field::DATA_POINTS, |point| {
                        labels(point, field::SUMMARY_ATTRIBUTES, series.labels, Some("quantile"));
                        point.fixed64(field::SUMMARY_START, points.start);
                        point.fixed64(field::SUMMARY_TIME, points.now);
                        point.fixed64(field::SUMMARY_COUNT, series.count as u64);
                        point.double(field::SUMMARY_SUM, series.sum);
                        for (quantile, value) in &series.quantiles {
                            point.message(field::SUMMARY_QUANTILES, |q| {
                                q.double(field::QUANTILE, *quantile);
                                q.double(field::QUANTILE_VALUE, *value);
                            });
                        }
                    });
                }
            }),
            // Gauges, and untyped samples, which OpenTelemetry reads as gauges.
            _ => metric.message(field::METRIC_GAUGE, |data| {
                for sample in &samples {
                    data.message(field::DATA_POINTS, |point| {
                        labels(point, field::NUMBER_ATTRIBUTES, &sample.labels, None);
                        number_point(point, points, false, sample.value);
                    });
                }
            }),
        }
    });
}

fn labels(writer: &mut Writer, field_number: u32, labels: &[(String, String)], except: Option<&str>) {
    for (name, value) in labels.iter().filter(|(name, _)| Some(name.as_str()) != except) {
        attribute(writer, field_number, name, value);
    }
}

/// The samples of one histogram or summary series.
struct Grouped<'a> {
    labels: &'a [(String, String)],
    buckets: Vec<(f64, f64)>,
    quantiles: Vec<(f64, f64)>,
    count: f64,
    sum: f64,
}

/// Groups a histogram's or summary's samples by their labels (less `le` and
/// `quantile`), in the order they first appear.
fn grouped<'a>(family: &str, samples: &'a [Sample]) -> Vec<Grouped<'a>> {
    let mut groups: Vec<Grouped<'a>> = Vec::new();
    for sample in samples {
        let key: Vec<&(String, String)> =
            sample.labels.iter().filter(|(name, _)| name != "le" && name != "quantile").collect();
        let position = groups.iter().position(|group| {
            group.labels.iter().filter(|(name, _)| name != "le" && name != "quantile").eq(key.iter().copied())
        });
        let index = position.unwrap_or_else(|| {
            groups.push(Grouped {
                labels: &sample.labels,
                buckets: Vec::new(),
                quantiles: Vec::new(),
                count: 0.0,
                sum: 0.0,
            });
            groups.len() - 1
        });
        let Some(group) = groups.get_mut(index) else { continue };
        let label = |name: &str| sample.labels.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.parse::<f64>().ok());
        match sample.name.strip_prefix(family) {
            Some("_bucket") => {
                if let Some(le) = sample.labels.iter().find(|(n, _)| n == "le").map(|(_, v)| v.as_str()) {
                    let le = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
                    group.buckets.push((le, sample.value));
                }
            }
            Some("_count") => group.count = sample.value,
            Some("_sum") => group.sum = sample.value,
            Some("") => {
                if let Some(quantile) = label("quantile") {
                    group.quantiles.push((quantile, sample.value));
                }
            }
            _ => {}
        }
    }
    for group in &mut groups {
        group.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_facade_sample_lines() {
        let parsed = sample(r#"latency_bucket{room="a\"b\\c\nd",le="0.5"} 3"#).expect("a sample");
        assert_eq!(parsed.name, "latency_bucket");
        assert_eq!(parsed.labels, vec![("room".into(), "a\"b\\c\nd".into()), ("le".into(), "0.5".into())]);
        assert_eq!(parsed.value, 3.0);
        assert_eq!(sample("up 1").map(|s| s.value), Some(1.0));
        assert!(sample("x{a=\"unterminated} 1").is_none());
    }

    #[test]
    fn names_and_units_follow_the_compatibility_rules() {
        assert_eq!(metric_name("mcp_mesh_requests_total", "counter"), "mcp_mesh_requests");
        assert_eq!(metric_name("hits", "counter"), "hits");
        assert_eq!(metric_name("queue_total", "gauge"), "queue_total");
        assert_eq!(ucum("seconds"), "s");
        assert_eq!(ucum("bytes"), "By");
    }
}

#[cfg(test)]
mod agreement {
    use super::*;
    use crate::registry::{Descriptor, Registry};

    /// A counter's value is the same bits in a push and in a scrape.
    #[test]
    fn a_pushed_counter_is_the_scraped_counter() {
        let registry = Registry::new();
        let descriptor = Descriptor {
            name: "revenue_total".into(),
            help: "Revenue".into(),
            kind: MetricKind::Counter,
            label_names: (&[][..]).into(),
            unit: None,
        };
        let family = registry.family(&descriptor).expect("family");
        let series = family.series(&[], |_| Cell::Counter(Default::default())).expect("series");
        let Cell::Counter(counter) = series.cell() else { panic!("a counter") };
        for amount in [752.79, 172.07, 100.0, 0.01, 33.33] {
            assert!(counter.add(amount));
            let context = Context { resource: Vec::new(), global: Vec::new(), start_nanos: 0 };
            let body = request(&context, &registry.families(), "");
            let text = crate::render_classic(&registry);
            let scraped: f64 =
                text.lines().find_map(|l| l.strip_prefix("revenue_total ")).expect("sample").parse().expect("f64");
            let bits = scraped.to_bits().to_le_bytes();
            assert!(body.windows(8).any(|w| w == bits), "the push holds {scraped} exactly");
        }
    }
}
