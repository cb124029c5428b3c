//! One `ExportMetricsServiceRequest` (opentelemetry-proto, metrics v1) from
//! the registry and the `metrics` facade, read the way a scrape reads them:
//! counters as monotonic cumulative sums, gauges as gauges, histograms as
//! explicit-bucket cumulative histograms (native-only ones as exponential
//! histograms: the schema is the scale), with their exemplars' trace IDs.
//!
//! Names follow the OpenTelemetry–Prometheus compatibility rules: by default a
//! name is left as `/metrics` has it (`mcp_mesh_requests_total`); with
//! `strip_suffixes` the type suffix (`_total`) and the unit suffix
//! (`_seconds`) are removed. The unit goes in `unit` as UCUM (`s`, `By`).
//! What `/metrics` leaves out (a facade family whose sample names are ours)
//! is left out of a push too.
//!
//! Start times say where each cumulative series began: a registry series'
//! creation (an expired series that comes back starts again), the process'
//! start for counters read from the system, and for facade series the push
//! before they were first seen or last went down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::exemplar::Exemplar;
use crate::proto::Writer;
use crate::registry::native::{MIN_SCHEMA, NativeSnapshot, coarser};
use crate::registry::{Cell, Family, MetricKind};
use crate::render::classic;
use crate::render::from_classic::{self, Grouped, Sample, WholeHistogram, grouped, sample};

/// What every request carries besides the metrics.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// Resource attributes (`service.name`, `service.version`, the user's).
    pub(crate) resource: Vec<(String, String)>,
    /// Labels added to every series of ours (the builder's global labels).
    pub(crate) global: Vec<(String, String)>,
    /// When the process started: the start of counters read from the system.
    pub(crate) process_start_nanos: Option<u64>,
    /// Whether names lose their type and unit suffixes.
    pub(crate) strip_suffixes: bool,
}

/// Where each facade series' cumulative values start, carried from push to
/// push: `(start, last value)` by family and labels.
#[derive(Debug, Default)]
pub(crate) struct FacadeStarts {
    starts: HashMap<String, (u64, f64)>,
    /// When the previous push read its values (the install time at first).
    previous: u64,
}

impl FacadeStarts {
    pub(crate) fn new(installed_nanos: u64) -> Self {
        Self { starts: HashMap::new(), previous: installed_nanos }
    }

    /// The start of a series now at `value`: kept while it only grows, moved
    /// to the previous push when it is new or went down (it was reset).
    fn start(&self, next: &mut HashMap<String, (u64, f64)>, key: String, value: f64) -> u64 {
        let start = match self.starts.get(&key) {
            Some((start, last)) if value >= *last => *start,
            _ => self.previous,
        };
        next.insert(key, (start, value));
        start
    }
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
    pub(super) const METRIC_EXPONENTIAL_HISTOGRAM: u32 = 10;
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
    pub(super) const EXPONENTIAL_ATTRIBUTES: u32 = 1;
    pub(super) const EXPONENTIAL_START: u32 = 2;
    pub(super) const EXPONENTIAL_TIME: u32 = 3;
    pub(super) const EXPONENTIAL_COUNT: u32 = 4;
    pub(super) const EXPONENTIAL_SUM: u32 = 5;
    pub(super) const EXPONENTIAL_SCALE: u32 = 6;
    pub(super) const EXPONENTIAL_ZERO_COUNT: u32 = 7;
    pub(super) const EXPONENTIAL_POSITIVE: u32 = 8;
    pub(super) const EXPONENTIAL_NEGATIVE: u32 = 9;
    pub(super) const EXPONENTIAL_EXEMPLARS: u32 = 11;
    pub(super) const EXPONENTIAL_ZERO_THRESHOLD: u32 = 14;
    pub(super) const BUCKETS_OFFSET: u32 = 1;
    pub(super) const BUCKETS_COUNTS: u32 = 2;
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

/// The request body (not yet compressed), with values read at `now` (taken
/// before anything was read or collected).
pub(crate) fn request(
    context: &Context,
    families: &[Arc<Family>],
    facade: &str,
    now: u64,
    starts: &mut FacadeStarts,
) -> Vec<u8> {
    let points = Points { process_start: context.process_start_nanos, now };
    let clock = crate::exemplar::scrape_clock();
    let clashing = classic::clashing(families, facade);
    let mut next_starts = HashMap::new();
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
            for family in families.iter().filter(|f| !clashing.contains(&*f.descriptor().name)) {
                ours(scope_metrics, family, context, &points, clock);
            }
            for block in from_classic::blocks(facade).iter().filter(|block| !clashing.contains(block.name)) {
                facade_family(scope_metrics, block, context, &points, starts, &mut next_starts);
            }
        });
    });
    // Series not seen this time are forgotten: the table stays as large as
    // the facade is.
    starts.starts = next_starts;
    starts.previous = now;
    writer.into_bytes()
}

/// The times points of one request carry.
struct Points {
    process_start: Option<u64>,
    now: u64,
}

fn attribute(writer: &mut Writer, field_number: u32, key: &str, value: &str) {
    writer.message(field_number, |key_value| {
        key_value.string(field::KEY_VALUE_KEY, key);
        key_value.message(field::KEY_VALUE_VALUE, |any| any.string(field::ANY_VALUE_STRING, value));
    });
}

/// The OpenTelemetry metric name of a Prometheus family: as it is, or with
/// its type (`_total`) and unit (`_seconds`) suffixes removed.
fn metric_name(name: &str, kind: &str, unit: Option<&str>, strip: bool) -> String {
    if !strip {
        return name.to_owned();
    }
    let mut base = name;
    if kind == "counter" {
        base = base.strip_suffix("_total").filter(|b| !b.is_empty()).unwrap_or(base);
    }
    if let Some(unit) = unit {
        base = base.strip_suffix(&format!("_{unit}")).filter(|b| !b.is_empty()).unwrap_or(base);
    }
    base.to_owned()
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

fn ours(scope: &mut Writer, family: &Family, context: &Context, points: &Points, clock: (SystemTime, quanta::Instant)) {
    let global = &context.global;
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
        let unit = descriptor.unit.as_deref();
        metric.string(field::METRIC_NAME, &metric_name(&descriptor.name, kind, unit, context.strip_suffixes));
        metric.string(field::METRIC_DESCRIPTION, &descriptor.help);
        metric.string(field::METRIC_UNIT, descriptor.unit.as_deref().map(ucum).unwrap_or_default());
        // Native-only histograms are OTLP's exponential histograms (a
        // histogram that keeps classic buckets too is sent with those).
        let exponential = descriptor.kind == MetricKind::Histogram
            && series.iter().all(|series| matches!(series.cell(), Cell::Histogram(h) if !h.keeps_classic_buckets()));
        let data_field = match descriptor.kind {
            MetricKind::Counter => field::METRIC_SUM,
            MetricKind::Gauge => field::METRIC_GAUGE,
            MetricKind::Histogram if exponential => field::METRIC_EXPONENTIAL_HISTOGRAM,
            MetricKind::Histogram => field::METRIC_HISTOGRAM,
        };
        metric.message(data_field, |data| {
            if exponential {
                for series in &series {
                    let Cell::Histogram(histogram) = series.cell() else { continue };
                    let Some(native) = histogram.native() else { continue };
                    // A reset empties it: its counts begin at the later of its
                    // creation and its last reset (read with the counts), and
                    // no later than the point's time, which was taken first.
                    let (snapshot, reset_at) = native.snapshot_since();
                    let created = u64::from(series.created_unix_secs()) * 1_000_000_000;
                    let start = reset_at.map_or(created, |at| created.max(unix_nanos(at))).min(points.now);
                    data.message(field::DATA_POINTS, |point| {
                        attributes(point, field::EXPONENTIAL_ATTRIBUTES, series);
                        exponential_point(point, start, points.now, &snapshot);
                        // Exemplars from before a reset belong to counts no
                        // longer sent.
                        let since_start = |exemplar: &Exemplar| {
                            u64::try_from(exemplar.timestamp.as_nanos()).unwrap_or(u64::MAX) >= start
                        };
                        for exemplar in histogram.native_exemplars(clock).iter().filter(|e| since_start(e)) {
                            point.message(field::EXPONENTIAL_EXEMPLARS, |e| exemplar_fields(e, exemplar));
                        }
                    });
                }
                temporality(data, descriptor.kind);
                return;
            }
            let mut cumulative = Vec::new();
            for series in &series {
                let created = u64::from(series.created_unix_secs()) * 1_000_000_000;
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
                        let sum = sum_to_send(sum, layout.bounds().first().is_some_and(|b| *b < 0.0));
                        histogram_point(point, created, points.now, count, sum, &per_bucket, layout.bounds());
                        for index in 0..per_bucket.len() {
                            if let Some(exemplar) = histogram.read_exemplar(index, clock) {
                                point.message(field::HISTOGRAM_EXEMPLARS, |e| exemplar_fields(e, &exemplar));
                            }
                        }
                    }),
                    cell => data.message(field::DATA_POINTS, |point| {
                        attributes(point, field::NUMBER_ATTRIBUTES, series);
                        // A counter held in a gauge cell is read from the system
                        // (process, runtime): it counts from the process' start.
                        let (value, exemplar, start) = match cell {
                            Cell::Counter(counter) => (counter.get(), counter.read_exemplar(clock), Some(created)),
                            // Unknown if the process' start could not be read:
                            // left out rather than guessed.
                            Cell::Gauge(gauge) => (gauge.get(), None, points.process_start),
                            Cell::InFlight(in_flight) => (in_flight.get() as f64, None, Some(created)),
                            Cell::Histogram(_) => (0.0, None, Some(created)),
                        };
                        let start = start.filter(|_| descriptor.kind == MetricKind::Counter);
                        number_point(point, start, points.now, value);
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

/// A number point; `start` for a cumulative one (a gauge has none).
fn number_point(point: &mut Writer, start: Option<u64>, now: u64, value: f64) {
    if let Some(start) = start {
        point.fixed64(field::NUMBER_START, start);
    }
    point.fixed64(field::NUMBER_TIME, now);
    point.double(field::NUMBER_AS_DOUBLE, value);
}

fn histogram_point(
    point: &mut Writer,
    start: u64,
    now: u64,
    count: u64,
    sum: Option<f64>,
    buckets: &[u64],
    bounds: &[f64],
) {
    point.fixed64(field::HISTOGRAM_START, start);
    point.fixed64(field::HISTOGRAM_TIME, now);
    point.fixed64(field::HISTOGRAM_COUNT, count);
    if let Some(sum) = sum {
        point.double(field::HISTOGRAM_SUM, sum);
    }
    point.packed_fixed64(field::HISTOGRAM_BUCKET_COUNTS, buckets);
    point.packed_double(field::HISTOGRAM_EXPLICIT_BOUNDS, bounds);
}

/// A histogram's sum as OTLP wants it: left out once negative values may
/// have been recorded (`may_be_negative`: it has a bucket below zero), or if
/// it is negative or not a number.
fn sum_to_send(sum: f64, may_be_negative: bool) -> Option<f64> {
    (!may_be_negative && sum >= 0.0).then_some(sum)
}

/// A wall-clock time as nanoseconds since the Unix epoch (0 before it).
fn unix_nanos(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// The most buckets the positive or the negative range of an exponential
/// point spans: past it the point is sent at a coarser scale (neighbouring
/// buckets added together, none lost), as OpenTelemetry SDKs bound theirs.
/// Bucket counts are dense, so a few buckets far apart (at schema 8, values of
/// 1e-300 and 1e300 are 510,000 buckets apart) would otherwise be that many.
const MAX_EXPONENTIAL_SPAN: i64 = 2_048;

/// An exponential histogram point from a native histogram's reading.
fn exponential_point(point: &mut Writer, start: u64, now: u64, snapshot: &NativeSnapshot) {
    point.fixed64(field::EXPONENTIAL_START, start);
    point.fixed64(field::EXPONENTIAL_TIME, now);
    point.fixed64(field::EXPONENTIAL_COUNT, snapshot.count);
    if let Some(sum) = sum_to_send(snapshot.sum, !snapshot.negative.is_empty()) {
        point.double(field::EXPONENTIAL_SUM, sum);
    }
    let span = |buckets: &[(i32, u64)], by: i32| match (buckets.first(), buckets.last()) {
        (Some(&(first, _)), Some(&(last, _))) => i64::from(coarser(last, by)) - i64::from(coarser(first, by)) + 1,
        _ => 0,
    };
    let mut by = 0;
    while snapshot.schema - by > MIN_SCHEMA
        && span(&snapshot.positive, by).max(span(&snapshot.negative, by)) > MAX_EXPONENTIAL_SPAN
    {
        by += 1;
    }
    point.sint(field::EXPONENTIAL_SCALE, i64::from(snapshot.schema - by));
    point.fixed64(field::EXPONENTIAL_ZERO_COUNT, snapshot.zero_count);
    exponential_buckets(point, field::EXPONENTIAL_POSITIVE, &snapshot.positive, by);
    exponential_buckets(point, field::EXPONENTIAL_NEGATIVE, &snapshot.negative, by);
    point.double(field::EXPONENTIAL_ZERO_THRESHOLD, snapshot.zero_threshold);
}

/// `Buckets` from `(index, count)` in index order, `by` schemas coarser.
/// OTLP's bucket `i` holds `(base^i, base^(i+1)]` and Prometheus' `k` holds
/// `(base^(k-1), base^k]`, so the offset is one below the first index; counts
/// are dense from there.
fn exponential_buckets(point: &mut Writer, field_number: u32, buckets: &[(i32, u64)], by: i32) {
    let (Some(&(first, _)), Some(&(last, _))) = (buckets.first(), buckets.last()) else { return };
    let (first, last) = (coarser(first, by), coarser(last, by));
    let mut dense = vec![0u64; usize::try_from(i64::from(last) - i64::from(first) + 1).unwrap_or(0)];
    for &(index, count) in buckets {
        let offset = i64::from(coarser(index, by)) - i64::from(first);
        if let Some(slot) = usize::try_from(offset).ok().and_then(|i| dense.get_mut(i)) {
            *slot += count;
        }
    }
    point.message(field_number, |message| {
        message.sint(field::BUCKETS_OFFSET, i64::from(first) - 1);
        message.packed_uint(field::BUCKETS_COUNTS, &dense);
    });
}

fn exemplar_fields(writer: &mut Writer, exemplar: &Exemplar) {
    writer.fixed64(field::EXEMPLAR_TIME, u64::try_from(exemplar.timestamp.as_nanos()).unwrap_or(u64::MAX));
    writer.double(field::EXEMPLAR_AS_DOUBLE, exemplar.value);
    writer.bytes(field::EXEMPLAR_TRACE_ID, &exemplar.trace_id.to_u128().to_be_bytes());
}

/// One family of the facade, from its classic text. Only the samples the
/// family owns are read (its name, and a histogram's or summary's suffixes);
/// a histogram or summary series without `_count` (or, for a histogram, its
/// `+Inf` bucket) is left out and logged, never sent half-formed.
fn facade_family(
    scope: &mut Writer,
    block: &from_classic::Block<'_>,
    context: &Context,
    points: &Points,
    starts: &FacadeStarts,
    next: &mut HashMap<String, (u64, f64)>,
) {
    let suffixes: &[&str] = match block.kind {
        "histogram" => &["_bucket", "_sum", "_count"],
        "summary" => &["", "_sum", "_count"],
        _ => &[""],
    };
    let owned = |sample: &Sample| sample.name.strip_prefix(block.name).is_some_and(|suffix| suffixes.contains(&suffix));
    let samples: Vec<Sample> = block.samples.iter().filter_map(|line| sample(line)).filter(owned).collect();
    if samples.is_empty() {
        return;
    }
    let key = |labels: &[(String, String)]| {
        let mut key = block.name.to_owned();
        for (name, value) in labels.iter().filter(|(name, _)| name != "le" && name != "quantile") {
            key.push('\u{0}');
            key.push_str(name);
            key.push('=');
            key.push_str(value);
        }
        key
    };
    scope.message(field::SCOPE_METRICS_METRICS, |metric| {
        metric.string(field::METRIC_NAME, &metric_name(block.name, block.kind, None, context.strip_suffixes));
        metric.string(field::METRIC_DESCRIPTION, &from_classic::unescape_help(block.help.unwrap_or_default()));
        match block.kind {
            "counter" => metric.message(field::METRIC_SUM, |data| {
                for sample in &samples {
                    data.message(field::DATA_POINTS, |point| {
                        labels(point, field::NUMBER_ATTRIBUTES, &sample.labels, None);
                        let start = starts.start(next, key(&sample.labels), sample.value);
                        number_point(point, Some(start), points.now, sample.value);
                    });
                }
                temporality(data, MetricKind::Counter);
            }),
            "histogram" => metric.message(field::METRIC_HISTOGRAM, |data| {
                for series in grouped(block.name, &samples) {
                    let Some(histogram) = series.histogram() else {
                        warn_malformed(block.name);
                        continue;
                    };
                    data.message(field::DATA_POINTS, |point| {
                        labels(point, field::HISTOGRAM_ATTRIBUTES, series.labels, Some("le"));
                        let start = starts.start(next, key(series.labels), histogram.count as f64);
                        let (count, sum, buckets, bounds) =
                            (histogram.count, histogram.sum, &histogram.buckets, &histogram.bounds);
                        histogram_point(point, start, points.now, count, sum, buckets, bounds);
                    });
                }
                temporality(data, MetricKind::Histogram);
            }),
            "summary" => metric.message(field::METRIC_SUMMARY, |data| {
                for series in grouped(block.name, &samples) {
                    let (Some(count), Some(sum)) = (series.count, series.sum) else {
                        warn_malformed(block.name);
                        continue;
                    };
                    data.message(field::DATA_POINTS, |point| {
                        labels(point, field::SUMMARY_ATTRIBUTES, series.labels, Some("quantile"));
                        point.fixed64(field::SUMMARY_START, starts.start(next, key(series.labels), count));
                        point.fixed64(field::SUMMARY_TIME, points.now);
                        point.fixed64(field::SUMMARY_COUNT, count as u64);
                        point.double(field::SUMMARY_SUM, sum);
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
                        number_point(point, None, points.now, sample.value);
                    });
                }
            }),
        }
    });
}

fn warn_malformed(family: &str) {
    tracing::warn!(
        metric = family,
        "mesh-metrics: a facade histogram or summary series lacks its _count or +Inf bucket; it is left out of \
         the OTLP push"
    );
}

fn labels(writer: &mut Writer, field_number: u32, labels: &[(String, String)], except: Option<&str>) {
    for (name, value) in labels.iter().filter(|(name, _)| Some(name.as_str()) != except) {
        attribute(writer, field_number, name, value);
    }
}

/// A facade histogram series as OTLP wants it.
struct FacadeHistogram {
    count: u64,
    sum: Option<f64>,
    buckets: Vec<u64>,
    bounds: Vec<f64>,
}

impl Grouped<'_> {
    /// Per-bucket counts and finite bounds as OTLP wants them, or `None` if a
    /// bucket's `le` is not a number, the `+Inf` bucket or `_count` is
    /// missing, they disagree, or the cumulative counts go down or are not
    /// finite.
    fn histogram(&self) -> Option<FacadeHistogram> {
        let WholeHistogram { count, sum, buckets } = self.whole_histogram()?;
        let per_bucket = buckets
            .iter()
            .scan(0.0, |below, (_, total)| {
                let bucket = (total - *below) as u64;
                *below = *total;
                Some(bucket)
            })
            .collect();
        let bounds = buckets.iter().map(|(le, _)| *le).filter(|le| le.is_finite()).collect();
        let sum = sum.and_then(|sum| sum_to_send(sum, buckets.first().is_some_and(|(le, _)| *le < 0.0)));
        Some(FacadeHistogram { count: count as u64, sum, buckets: per_bucket, bounds })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_units_follow_the_compatibility_rules() {
        // By default a name is not altered.
        assert_eq!(metric_name("mcp_mesh_requests_total", "counter", None, false), "mcp_mesh_requests_total");
        // With strip_suffixes, the type and unit suffixes go.
        assert_eq!(metric_name("mcp_mesh_requests_total", "counter", None, true), "mcp_mesh_requests");
        assert_eq!(metric_name("latency_seconds", "histogram", Some("seconds"), true), "latency");
        assert_eq!(metric_name("queue_total", "gauge", None, true), "queue_total");
        assert_eq!(metric_name("_total", "counter", None, true), "_total");
        assert_eq!(ucum("seconds"), "s");
        assert_eq!(ucum("bytes"), "By");
    }

    #[test]
    fn a_native_reading_is_an_exponential_point_with_dense_buckets_one_index_lower() {
        let snapshot = NativeSnapshot {
            schema: 2,
            zero_threshold: 1e-3,
            zero_count: 4,
            count: 10,
            sum: 7.5,
            positive: vec![(-2, 1), (1, 3)],
            negative: vec![(0, 2)],
        };
        let mut point = Writer::default();
        exponential_point(&mut point, 1, 2, &snapshot);
        let bytes = point.into_bytes();
        let fields = crate::proto::fields(&bytes).expect("protobuf");
        let number = |wanted| {
            fields.iter().find_map(|(field, value)| match value {
                crate::proto::Value::Number(n) if *field == wanted => Some(*n),
                _ => None,
            })
        };
        let buckets = |wanted| {
            let bytes = fields.iter().find_map(|(field, value)| match value {
                crate::proto::Value::Bytes(b) if *field == wanted => Some(*b),
                _ => None,
            })?;
            let inner = crate::proto::fields(bytes)?;
            let offset = inner.iter().find_map(|(f, v)| match v {
                crate::proto::Value::Number(n) if *f == field::BUCKETS_OFFSET => Some(*n),
                _ => None,
            })?;
            let counts = inner.iter().find_map(|(f, v)| match v {
                crate::proto::Value::Bytes(b) if *f == field::BUCKETS_COUNTS => Some(b.to_vec()),
                _ => None,
            })?;
            Some((offset, counts))
        };
        assert_eq!(number(field::EXPONENTIAL_SCALE), Some(4), "scale 2, zigzag");
        assert_eq!(number(field::EXPONENTIAL_COUNT), Some(10));
        assert_eq!(number(field::EXPONENTIAL_ZERO_COUNT), Some(4));
        assert_eq!(number(field::EXPONENTIAL_ZERO_THRESHOLD), Some(1e-3f64.to_bits()));
        assert_eq!(number(field::EXPONENTIAL_SUM), None, "negative values were observed: no sum");
        // Offsets -3 and -1 (zigzag 5 and 1); counts as varints, zeros filling
        // the gap between index -2 and index 1.
        assert_eq!(buckets(field::EXPONENTIAL_POSITIVE), Some((5, vec![1, 0, 0, 3])));
        assert_eq!(buckets(field::EXPONENTIAL_NEGATIVE), Some((1, vec![2])));
    }

    /// `(scale, offset, counts, sum)` of the point written for `snapshot`.
    fn exponential(snapshot: &NativeSnapshot) -> (i64, i64, Vec<u64>, Option<f64>) {
        let mut point = Writer::default();
        exponential_point(&mut point, 1, 2, snapshot);
        let bytes = point.into_bytes();
        let fields = crate::proto::fields(&bytes).expect("protobuf");
        let unzig = |n: u64| (n >> 1) as i64 ^ -((n & 1) as i64);
        let (mut scale, mut offset, mut counts, mut sum) = (0, 0, Vec::new(), None);
        for (field_number, value) in &fields {
            match (*field_number, value) {
                (field::EXPONENTIAL_SCALE, crate::proto::Value::Number(n)) => scale = unzig(*n),
                (field::EXPONENTIAL_SUM, crate::proto::Value::Number(n)) => sum = Some(f64::from_bits(*n)),
                (field::EXPONENTIAL_POSITIVE, crate::proto::Value::Bytes(b)) => {
                    for (inner, value) in crate::proto::fields(b).expect("buckets") {
                        match (inner, value) {
                            (field::BUCKETS_OFFSET, crate::proto::Value::Number(n)) => offset = unzig(n),
                            (field::BUCKETS_COUNTS, crate::proto::Value::Bytes(b)) => {
                                // Packed varints.
                                let (mut value, mut shift) = (0u64, 0);
                                for byte in b {
                                    value |= u64::from(byte & 0x7f) << shift;
                                    if byte & 0x80 == 0 {
                                        counts.push(value);
                                        (value, shift) = (0, 0);
                                    } else {
                                        shift += 7;
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        (scale, offset, counts, sum)
    }

    #[test]
    fn buckets_far_apart_are_sent_coarser_with_none_lost() {
        let reading = |positive: Vec<(i32, u64)>| NativeSnapshot {
            schema: 8,
            zero_threshold: 1e-128,
            zero_count: 0,
            count: positive.iter().map(|b| b.1).sum(),
            sum: 2.0,
            positive,
            negative: Vec::new(),
        };
        // Close buckets: as they are, and the sum is sent (no negatives).
        assert_eq!(exponential(&reading(vec![(10, 1), (12, 2)])), (8, 9, vec![1, 0, 2], Some(2.0)));
        // 1e-300 and 1e300 at schema 8: about 510,000 buckets apart. Sent at
        // the finest scale that spans at most 2,048 buckets, with every count.
        let far = reading(vec![(-255_000, 3), (-254_999, 4), (255_000, 5)]);
        let (scale, offset, counts, _) = exponential(&far);
        let by = 8 - scale as i32;
        assert!(by > 0 && counts.len() as i64 <= MAX_EXPONENTIAL_SPAN, "scale {scale}, {} buckets", counts.len());
        assert!(counts.len() as i64 > MAX_EXPONENTIAL_SPAN / 2, "not coarser than needed: {} buckets", counts.len());
        assert_eq!(counts.iter().sum::<u64>(), 12);
        // Where the first bucket's upper bound falls at the scale sent.
        assert_eq!(
            offset + 1,
            i64::from(crate::registry::native::bucket_index(
                crate::registry::native::upper_bound(-255_000, 8),
                scale as i32
            ))
        );
        assert_eq!(counts.first(), Some(&7), "the two neighbours in one bucket");
        assert_eq!(counts.last(), Some(&5));
    }

    #[test]
    fn facade_histograms_are_whole_or_left_out() {
        let lines = [
            r#"lat_bucket{a="1",le="0.1"} 2"#,
            r#"lat_bucket{a="1",le="1"} 5"#,
            r#"lat_bucket{a="1",le="+Inf"} 6"#,
            r#"lat_sum{a="1"} 3.5"#,
            r#"lat_count{a="1"} 6"#,
            r#"lat_bucket{a="2",le="0.1"} 1"#,
            r#"lat_sum{a="2"} -1"#,
            r#"lat_count{a="2"} 1"#,
        ];
        let samples: Vec<Sample> = lines.iter().filter_map(|l| sample(l)).collect();
        let groups = grouped("lat", &samples);
        assert_eq!(groups.len(), 2);
        let whole = groups[0].histogram().expect("a whole histogram");
        assert_eq!((whole.count, whole.sum), (6, Some(3.5)));
        assert_eq!(whole.buckets, vec![2, 3, 1], "per bucket, +Inf last");
        assert_eq!(whole.bounds, vec![0.1, 1.0]);
        assert!(groups[1].histogram().is_none(), "no +Inf bucket: left out");
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
            let context = Context {
                resource: Vec::new(),
                global: Vec::new(),
                process_start_nanos: Some(0),
                strip_suffixes: false,
            };
            let body = request(&context, &registry.families(), "", 1, &mut FacadeStarts::new(0));
            let text = crate::render_classic(&registry);
            let scraped: f64 =
                text.lines().find_map(|l| l.strip_prefix("revenue_total ")).expect("sample").parse().expect("f64");
            let bits = scraped.to_bits().to_le_bytes();
            assert!(body.windows(8).any(|w| w == bits), "the push holds {scraped} exactly");
        }
    }

    /// A native histogram that reset itself starts its cumulative counts at
    /// the reset, not at its series' creation; its exemplars go with it.
    #[test]
    fn an_exponential_point_starts_at_the_last_reset_and_carries_exemplars() {
        let registry = Registry::new();
        let descriptor = Descriptor {
            name: "resetting_seconds".into(),
            help: "Latency".into(),
            kind: MetricKind::Histogram,
            label_names: (&[][..]).into(),
            unit: None,
        };
        let config = crate::registry::native::NativeConfig {
            max_buckets: 1,
            min_reset_duration: Some(std::time::Duration::ZERO),
            ..Default::default()
        };
        let layout = crate::registry::Layout::native_only(config);
        let family = registry.family_with_layout(&descriptor, Some(layout)).expect("family");
        let series = family
            .series(&[], |layout| Cell::Histogram(crate::registry::Histogram::new(layout.clone())))
            .expect("series");
        let Cell::Histogram(histogram) = series.cell() else { panic!("a histogram") };
        histogram.observe(1.0);
        histogram.observe(2.0); // a second bucket: over the limit, it resets
        let reset = histogram.native().and_then(|native| native.last_reset()).expect("it reset");
        let trace = crate::trace::TraceId::from_u128(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c).expect("trace");
        assert!(histogram.observe_traced(2.0, trace)); // in the one bucket: no second reset
        let context =
            Context { resource: Vec::new(), global: Vec::new(), process_start_nanos: None, strip_suffixes: false };
        let body =
            request(&context, &registry.families(), "", unix_nanos(SystemTime::now()), &mut FacadeStarts::new(0));
        let start = unix_nanos(reset).to_le_bytes();
        assert!(body.windows(8).any(|w| w == start), "the point starts at the reset");
        let created = (u64::from(series.created_unix_secs()) * 1_000_000_000).to_le_bytes();
        assert!(!body.windows(8).any(|w| w == created), "not at the series' creation");
        let trace = trace.to_u128().to_be_bytes();
        assert!(body.windows(16).any(|w| w == trace), "the exemplar's trace ID is pushed");
    }

    fn group(buckets: &[(f64, f64)], count: f64) -> Grouped<'static> {
        Grouped {
            labels: &[],
            buckets: buckets.iter().map(|b| Some(*b)).collect(),
            quantiles: Vec::new(),
            count: Some(count),
            sum: Some(1.0),
        }
    }

    /// Buckets that go down or are not finite are refused, not clamped: the
    /// per-bucket counts would no longer add up to the count.
    #[test]
    fn a_facade_histogram_with_inconsistent_buckets_is_refused() {
        let good = group(&[(0.1, 2.0), (1.0, 5.0), (f64::INFINITY, 6.0)], 6.0).histogram().expect("consistent");
        assert_eq!(good.buckets, [2, 3, 1]);
        assert!(group(&[(0.1, 4.0), (1.0, 3.0), (f64::INFINITY, 6.0)], 6.0).histogram().is_none());
        assert!(group(&[(0.1, f64::NAN), (1.0, 3.0), (f64::INFINITY, 6.0)], 6.0).histogram().is_none());
        assert!(group(&[(0.1, 1.0), (f64::INFINITY, 6.0)], 5.0).histogram().is_none());
    }
}
