//! The Prometheus protobuf exposition: a stream of length-delimited
//! `io.prometheus.client.MetricFamily` messages (`prometheus/client_model`'s
//! `metrics.proto`), the only format that carries native histograms to
//! Prometheus 2.x.
//!
//! Families are named and claimed as in the classic text format (a counter
//! keeps its `_total`; a family whose sample names another family took is
//! left out), so protobuf and classic text serve the same families.
//! Exemplars carry their timestamps.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::GlobalLabels;
use super::classic::{HISTOGRAM_SAMPLES, SUMMARY_SAMPLES};
use super::from_classic::{Block, Grouped, Sample, WholeHistogram, blocks, grouped, sample, unescape_help};
use super::openmetrics::Claimed;
use crate::exemplar::Exemplar;
use crate::proto::Writer;
use crate::registry::native::NativeSnapshot;
use crate::registry::{Cell, Family, Histogram, MetricKind};

/// `metrics.proto`'s field numbers.
mod field {
    pub(super) mod family {
        pub(crate) const NAME: u32 = 1;
        pub(crate) const HELP: u32 = 2;
        pub(crate) const TYPE: u32 = 3;
        pub(crate) const METRIC: u32 = 4;
        pub(crate) const UNIT: u32 = 5;
    }
    pub(super) mod metric {
        pub(crate) const LABEL: u32 = 1;
        pub(crate) const GAUGE: u32 = 2;
        pub(crate) const COUNTER: u32 = 3;
        pub(crate) const SUMMARY: u32 = 4;
        pub(crate) const UNTYPED: u32 = 5;
        pub(crate) const HISTOGRAM: u32 = 7;
    }
    pub(super) mod label {
        pub(crate) const NAME: u32 = 1;
        pub(crate) const VALUE: u32 = 2;
    }
    /// `Gauge.value`, `Counter.value`, `Untyped.value`.
    pub(super) const VALUE: u32 = 1;
    pub(super) const COUNTER_EXEMPLAR: u32 = 2;
    pub(super) mod summary {
        pub(crate) const COUNT: u32 = 1;
        pub(crate) const SUM: u32 = 2;
        pub(crate) const QUANTILE: u32 = 3;
        pub(crate) const QUANTILE_QUANTILE: u32 = 1;
        pub(crate) const QUANTILE_VALUE: u32 = 2;
    }
    pub(super) mod histogram {
        pub(crate) const COUNT: u32 = 1;
        pub(crate) const SUM: u32 = 2;
        pub(crate) const BUCKET: u32 = 3;
        pub(crate) const COUNT_FLOAT: u32 = 4;
        pub(crate) const SCHEMA: u32 = 5;
        pub(crate) const ZERO_THRESHOLD: u32 = 6;
        pub(crate) const ZERO_COUNT: u32 = 7;
        pub(crate) const NEGATIVE_SPAN: u32 = 9;
        pub(crate) const NEGATIVE_DELTA: u32 = 10;
        pub(crate) const POSITIVE_SPAN: u32 = 12;
        pub(crate) const POSITIVE_DELTA: u32 = 13;
        pub(crate) const EXEMPLARS: u32 = 16;
    }
    pub(super) mod bucket {
        pub(crate) const CUMULATIVE_COUNT: u32 = 1;
        pub(crate) const UPPER_BOUND: u32 = 2;
        pub(crate) const EXEMPLAR: u32 = 3;
        pub(crate) const CUMULATIVE_COUNT_FLOAT: u32 = 4;
    }
    pub(super) mod span {
        pub(crate) const OFFSET: u32 = 1;
        pub(crate) const LENGTH: u32 = 2;
    }
    pub(super) mod exemplar {
        pub(crate) const LABEL: u32 = 1;
        pub(crate) const VALUE: u32 = 2;
        pub(crate) const TIMESTAMP: u32 = 3;
    }
    pub(super) mod timestamp {
        pub(crate) const SECONDS: u32 = 1;
        pub(crate) const NANOS: u32 = 2;
    }
}

/// `MetricType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Counter = 0,
    Gauge = 1,
    Summary = 2,
    Untyped = 3,
    Histogram = 4,
}

/// A whole protobuf document: `families`, then the families of `facade` (a
/// classic exposition), each only if `wanted` names it. Returns it with the
/// names of the families left out, and why.
pub(crate) fn document(
    families: &[Arc<Family>],
    global: &GlobalLabels,
    facade: Option<&str>,
    wanted: &dyn Fn(&str) -> bool,
) -> (Vec<u8>, Vec<(String, LeftOut)>) {
    let mut out = Writer::default();
    let mut claimed = Claimed::default();
    let clock = crate::exemplar::scrape_clock();
    let mut skipped: Vec<(String, LeftOut)> =
        registry_families(&mut out, families, global, &mut claimed, clock, wanted)
            .into_iter()
            .map(|name| (name, LeftOut::Clash))
            .collect();
    if let Some(facade) = facade {
        for block in blocks(facade) {
            let wanted = wanted(block.name);
            if let Err(why) = facade_family(&mut out, &block, &mut claimed, wanted)
                && wanted
            {
                skipped.push((block.name.to_owned(), why));
            }
        }
    }
    (out.into_bytes(), skipped)
}

/// Why a family is not in a render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LeftOut {
    /// Another family took one of its sample names.
    Clash,
    /// A line of the facade's text for it could not be read.
    Unreadable,
}

fn registry_families(
    out: &mut Writer,
    families: &[Arc<Family>],
    global: &GlobalLabels,
    claimed: &mut Claimed,
    clock: (SystemTime, quanta::Instant),
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut skipped = Vec::new();
    let mut cumulative = Vec::new();
    for family in families {
        let series = family.series_list();
        if series.is_empty() {
            continue;
        }
        let descriptor = family.descriptor();
        // Sample names claimed as the classic text format claims them.
        let owned = if descriptor.kind == MetricKind::Histogram { HISTOGRAM_SAMPLES } else { &[] };
        if !claimed.admit(&descriptor.name, (&descriptor.name, owned), wanted, &mut skipped) {
            continue;
        }
        let names = &*descriptor.label_names;
        let global = global.pairs_for(names);
        let kind = match descriptor.kind {
            MetricKind::Counter => Type::Counter,
            MetricKind::Gauge => Type::Gauge,
            MetricKind::Histogram => Type::Histogram,
        };
        out.delimited(|message| {
            message.string(field::family::NAME, &descriptor.name);
            message.string(field::family::HELP, &descriptor.help);
            message.uint_present(field::family::TYPE, kind as u64);
            for series in &series {
                message.message(field::family::METRIC, |metric| {
                    for (name, value) in series.label_names(names).iter().zip(series.labels()) {
                        label(metric, name, value);
                    }
                    for (name, value) in &global {
                        label(metric, name, value);
                    }
                    match series.cell() {
                        Cell::Counter(counter) => metric.message(field::metric::COUNTER, |value| {
                            value.double(field::VALUE, counter.get());
                            if let Some(exemplar) = counter.read_exemplar(clock) {
                                value.message(field::COUNTER_EXEMPLAR, |out| write_exemplar(out, &exemplar));
                            }
                        }),
                        Cell::Gauge(gauge) => {
                            metric.message(field::metric::GAUGE, |value| value.double(field::VALUE, gauge.get()));
                        }
                        Cell::InFlight(in_flight) => metric.message(field::metric::GAUGE, |value| {
                            value.double(field::VALUE, in_flight.get() as f64);
                        }),
                        Cell::Histogram(histogram) => metric.message(field::metric::HISTOGRAM, |out| {
                            write_histogram(out, histogram, clock, &mut cumulative);
                        }),
                    }
                });
            }
            if let Some(unit) = descriptor.unit.as_deref() {
                message.string(field::family::UNIT, unit);
            }
        });
    }
    skipped
}

fn label(out: &mut Writer, name: &str, value: &str) {
    out.message(field::metric::LABEL, |pair| {
        pair.string(field::label::NAME, name);
        pair.string(field::label::VALUE, value);
    });
}

/// A histogram: its classic buckets (when it keeps them; `+Inf` is left out,
/// as the format allows and client_golang does) and, when it is native, its
/// schema, zero bucket, spans and deltas.
fn write_histogram(
    out: &mut Writer,
    histogram: &Histogram,
    clock: (SystemTime, quanta::Instant),
    cumulative: &mut Vec<u64>,
) {
    // The classic buckets first, then the native snapshot: an observation
    // reaches the native part before the classic one, so the native count
    // read second covers every classic bucket read first, and it is the
    // count sent (the native buckets add up to it exactly).
    let classic = histogram.keeps_classic_buckets().then(|| histogram.read(cumulative));
    let native = histogram.native().map(|native| native.snapshot());
    let (count, sum) = match (&native, &classic) {
        (Some(snapshot), _) => (snapshot.count, snapshot.sum),
        (None, Some((count, sum, _))) => (*count, *sum),
        (None, None) => (0, 0.0),
    };
    out.uint_present(field::histogram::COUNT, count);
    out.double(field::histogram::SUM, sum);
    if let Some((_, _, layout)) = classic {
        for (i, (bound, bucket)) in layout.bounds().iter().zip(cumulative.iter()).enumerate() {
            out.message(field::histogram::BUCKET, |out| {
                out.uint_present(field::bucket::CUMULATIVE_COUNT, *bucket);
                out.double(field::bucket::UPPER_BOUND, *bound);
                if let Some(exemplar) = histogram.read_exemplar(i, clock) {
                    out.message(field::bucket::EXEMPLAR, |out| write_exemplar(out, &exemplar));
                }
            });
        }
    }
    if let Some(snapshot) = &native {
        write_native(out, snapshot);
        for exemplar in histogram.native_exemplars(clock) {
            out.message(field::histogram::EXEMPLARS, |out| write_exemplar(out, &exemplar));
        }
    }
}

/// The native part of a histogram.
fn write_native(out: &mut Writer, snapshot: &NativeSnapshot) {
    out.sint(field::histogram::SCHEMA, i64::from(snapshot.schema));
    out.double(field::histogram::ZERO_THRESHOLD, snapshot.zero_threshold);
    out.uint_present(field::histogram::ZERO_COUNT, snapshot.zero_count);
    let (negative_spans, negative_deltas) = spans_and_deltas(&snapshot.negative);
    let (mut positive_spans, positive_deltas) = spans_and_deltas(&snapshot.positive);
    if snapshot.zero_threshold == 0.0
        && snapshot.zero_count == 0
        && positive_spans.is_empty()
        && negative_spans.is_empty()
    {
        // An empty span marks a histogram with no observations (and no zero
        // threshold) as native, as client_golang does.
        positive_spans.push((0, 0));
    }
    for (spans, field) in
        [(&negative_spans, field::histogram::NEGATIVE_SPAN), (&positive_spans, field::histogram::POSITIVE_SPAN)]
    {
        for (offset, length) in spans {
            out.message(field, |span| {
                span.sint(field::span::OFFSET, i64::from(*offset));
                span.uint_present(field::span::LENGTH, u64::from(*length));
            });
        }
    }
    out.packed_sint(field::histogram::NEGATIVE_DELTA, &negative_deltas);
    out.packed_sint(field::histogram::POSITIVE_DELTA, &positive_deltas);
}

/// Spans (`offset` from the end of the previous span, or the first index;
/// `length`) and count deltas of buckets sorted by index. Gaps of one or two
/// empty buckets are bridged with zero counts (fewer spans, as client_golang
/// does).
pub(crate) fn spans_and_deltas(buckets: &[(i32, u64)]) -> (Vec<(i32, u32)>, Vec<i64>) {
    let mut spans: Vec<(i32, u32)> = Vec::new();
    let mut deltas = Vec::new();
    let mut previous_count = 0i64;
    let mut next_index: Option<i32> = None;
    for &(index, count) in buckets {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        match (next_index, spans.last_mut()) {
            (Some(next), Some(span)) if index - next <= 2 => {
                for _ in next..index {
                    deltas.push(-previous_count);
                    previous_count = 0;
                    span.1 += 1;
                }
                span.1 += 1;
            }
            (Some(next), _) => spans.push((index - next, 1)),
            (None, _) => spans.push((index, 1)),
        }
        deltas.push(count - previous_count);
        previous_count = count;
        next_index = Some(index + 1);
    }
    (spans, deltas)
}

fn write_exemplar(out: &mut Writer, exemplar: &Exemplar) {
    out.message(field::exemplar::LABEL, |pair| {
        pair.string(field::label::NAME, "trace_id");
        pair.bytes(field::label::VALUE, &hex(exemplar.trace_id.to_u128()));
    });
    out.double(field::exemplar::VALUE, exemplar.value);
    out.message(field::exemplar::TIMESTAMP, |out| timestamp(out, exemplar.timestamp));
}

/// A trace ID's 32 lowercase hex digits, without allocating.
fn hex(id: u128) -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'0'; 32];
    for (i, digit) in out.iter_mut().enumerate() {
        let nibble = (id >> (4 * (31 - i))) as usize & 0xf;
        *digit = DIGITS.get(nibble).copied().unwrap_or(b'0');
    }
    out
}

fn timestamp(out: &mut Writer, at: Duration) {
    out.uint(field::timestamp::SECONDS, at.as_secs());
    out.uint(field::timestamp::NANOS, u64::from(at.subsec_nanos()));
}

/// One family of the `metrics` facade's classic text, written if `write`;
/// why it is left out if it is (and then nothing is written).
fn facade_family(out: &mut Writer, block: &Block<'_>, claimed: &mut Claimed, write: bool) -> Result<(), LeftOut> {
    let (kind, base, suffixes): (Type, &str, &[&str]) = match block.kind {
        "counter" => (Type::Counter, block.name, &[]),
        "gauge" => (Type::Gauge, block.name, &[]),
        "histogram" => (Type::Histogram, block.name, HISTOGRAM_SAMPLES),
        "summary" => (Type::Summary, block.name, SUMMARY_SAMPLES),
        _ => (Type::Untyped, block.name, &[]),
    };
    // A line the parser cannot read leaves the whole family out (and is
    // reported) rather than sending it with a count missing.
    let samples: Option<Vec<Sample>> = block.samples.iter().map(|line| sample(line)).collect();
    let Some(samples) = samples else { return Err(LeftOut::Unreadable) };
    // So does a histogram or summary series that is not whole (a bucket or
    // `_count` missing or inconsistent, a summary count that is not whole).
    let whole = match kind {
        Type::Histogram => grouped(block.name, &samples).iter().all(|group| group.whole_histogram().is_some()),
        Type::Summary => grouped(block.name, &samples).iter().all(|group| group.whole_summary_count().is_some()),
        Type::Counter | Type::Gauge | Type::Untyped => true,
    };
    if !whole {
        return Err(LeftOut::Unreadable);
    }
    let owns = |sample: &Sample| {
        sample.name.strip_prefix(base).is_some_and(|suffix| suffix.is_empty() || suffixes.contains(&suffix))
    };
    if !samples.iter().all(owns) || !claimed.claim(base, suffixes) {
        return Err(LeftOut::Clash);
    }
    if !write {
        return Ok(());
    }
    out.delimited(|message| {
        message.string(field::family::NAME, block.name);
        message.string(field::family::HELP, &unescape_help(block.help.unwrap_or_default()));
        message.uint_present(field::family::TYPE, kind as u64);
        match kind {
            Type::Histogram | Type::Summary => {
                for group in grouped(block.name, &samples) {
                    message.message(field::family::METRIC, |metric| {
                        let special = if kind == Type::Histogram { "le" } else { "quantile" };
                        for (name, value) in group.labels.iter().filter(|(name, _)| name != special) {
                            label(metric, name, value);
                        }
                        if let Some(histogram) = group.whole_histogram().filter(|_| kind == Type::Histogram) {
                            metric.message(field::metric::HISTOGRAM, |out| facade_histogram(out, &histogram));
                        } else if let Some(count) = group.whole_summary_count().filter(|_| kind == Type::Summary) {
                            metric.message(field::metric::SUMMARY, |out| facade_summary(out, &group, count));
                        }
                    });
                }
            }
            Type::Counter | Type::Gauge | Type::Untyped => {
                let field = match kind {
                    Type::Counter => field::metric::COUNTER,
                    Type::Gauge => field::metric::GAUGE,
                    _ => field::metric::UNTYPED,
                };
                for sample in &samples {
                    message.message(field::family::METRIC, |metric| {
                        for (name, value) in &sample.labels {
                            label(metric, name, value);
                        }
                        metric.message(field, |out| out.double(field::VALUE, sample.value));
                    });
                }
            }
        }
    });
    Ok(())
}

/// A facade histogram series, read whole: its count, sum and finite buckets
/// (`+Inf` is implied by the count).
fn facade_histogram(out: &mut Writer, histogram: &WholeHistogram) {
    count_field(out, field::histogram::COUNT, field::histogram::COUNT_FLOAT, histogram.count);
    if let Some(sum) = histogram.sum {
        out.double(field::histogram::SUM, sum);
    }
    for (bound, cumulative) in histogram.buckets.iter().filter(|(bound, _)| bound.is_finite()) {
        out.message(field::histogram::BUCKET, |bucket| {
            count_field(bucket, field::bucket::CUMULATIVE_COUNT, field::bucket::CUMULATIVE_COUNT_FLOAT, *cumulative);
            bucket.double(field::bucket::UPPER_BOUND, *bound);
        });
    }
}

/// A facade summary series: its (whole) count, sum and quantiles.
fn facade_summary(out: &mut Writer, group: &Grouped<'_>, count: u64) {
    out.uint_present(field::summary::COUNT, count);
    if let Some(sum) = group.sum {
        out.double(field::summary::SUM, sum);
    }
    for (quantile, value) in &group.quantiles {
        out.message(field::summary::QUANTILE, |out| {
            out.double(field::summary::QUANTILE_QUANTILE, *quantile);
            out.double(field::summary::QUANTILE_VALUE, *value);
        });
    }
}

/// A count read whole (finite, at or above zero): whole counts as `uint64`,
/// anything else in the message's `_float` field.
fn count_field(out: &mut Writer, whole: u32, float: u32, value: f64) {
    if value.fract() != 0.0 || !(0.0..u64::MAX as f64).contains(&value) {
        out.double(float, value);
    } else {
        out.uint_present(whole, value as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_bridge_small_gaps_and_deltas_are_differences() {
        assert_eq!(spans_and_deltas(&[]), (vec![], vec![]));
        // Buckets -2, -1 | 0 | 3 (gap of 2: bridged) | 10 (gap of 6: new span).
        let (spans, deltas) = spans_and_deltas(&[(-2, 4), (-1, 1), (0, 3), (3, 2), (10, 5)]);
        assert_eq!(spans, vec![(-2, 6), (6, 1)]);
        assert_eq!(deltas, vec![4, -3, 2, -3, 0, 2, 3]);
    }

    #[test]
    fn a_facade_family_with_a_line_it_cannot_read_is_left_out_and_said_why() {
        let facade = "# TYPE jobs_total counter\njobs_total{queue=\"a\"} 4\njobs_total{queue=\"b\" 5\n\
                      # TYPE depth gauge\ndepth 2.5\n";
        let (bytes, skipped) = document(&[], &GlobalLabels::default(), Some(facade), &|_| true);
        assert_eq!(skipped, vec![("jobs_total".to_owned(), LeftOut::Unreadable)]);
        let has = |name: &[u8]| bytes.windows(name.len()).any(|w| w == name);
        assert!(has(b"depth") && !has(b"jobs_total"), "the family it can read is sent, the other is not");
    }

    #[test]
    fn a_facade_histogram_or_summary_that_is_not_whole_is_left_out_and_said_why() {
        let facade = "# TYPE no_count histogram\nno_count_bucket{le=\"1\"} 1\nno_count_bucket{le=\"+Inf\"} 2\n\
                      no_count_sum 1.5\n\
                      # TYPE going_down histogram\ngoing_down_bucket{le=\"1\"} 3\ngoing_down_bucket{le=\"+Inf\"} 2\n\
                      going_down_sum 1\ngoing_down_count 2\n\
                      # TYPE half summary\nhalf{quantile=\"0.5\"} 1\nhalf_sum 1\nhalf_count 2.5\n\
                      # TYPE fine histogram\nfine_bucket{le=\"1\"} 1\nfine_bucket{le=\"+Inf\"} 2\nfine_sum 1.5\n\
                      fine_count 2\n";
        let (bytes, skipped) = document(&[], &GlobalLabels::default(), Some(facade), &|_| true);
        let unreadable = |name: &str| (name.to_owned(), LeftOut::Unreadable);
        assert_eq!(skipped, vec![unreadable("no_count"), unreadable("going_down"), unreadable("half")]);
        let has = |name: &[u8]| bytes.windows(name.len()).any(|w| w == name);
        assert!(has(b"fine") && !has(b"no_count") && !has(b"going_down") && !has(b"half"));
    }

    #[test]
    fn trace_ids_are_written_as_32_lowercase_hex_digits() {
        assert_eq!(&hex(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736), b"4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(&hex(1), b"00000000000000000000000000000001");
    }
}
