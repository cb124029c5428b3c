//! The OpenMetrics 1.0.0 text format, with exemplars
//! (<https://github.com/prometheus/OpenMetrics/blob/main/specification/OpenMetrics.md>).
//!
//! Where it differs from the classic format: a counter's family is named
//! without `_total` in `# HELP`/`# TYPE` (a counter whose name lacks `_total`
//! is exposed as `unknown`, under its own name); exemplars follow `_bucket` and
//! counter `_total` samples, never a gauge; a histogram whose sum could be
//! negative leaves out `_sum` and `_count`, as the specification requires; HELP
//! escapes `"`; no two families may claim the same sample name; and the
//! document ends with `# EOF`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{GlobalLabels, braces, escape, number, series_labels};
use crate::exemplar::Exemplar;
use crate::registry::{Cell, Family, Histogram, MetricKind};

/// The longest label set an exemplar may carry, in characters of names and
/// values. Ours is `trace_id` and 32 hex digits, so it always fits: checked here
/// at compile time rather than cut (or dropped) at run time.
const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;
const _: () = assert!("trace_id".len() + 32 <= MAX_EXEMPLAR_LABEL_CHARS);

/// The sample names each family has taken, so that a later family claiming
/// one of them (which would make the whole document invalid) is left out.
#[derive(Debug, Default)]
pub(crate) struct Claimed(HashSet<String>);

impl Claimed {
    /// Claims every sample name of a family of `kind` named `family`; `false`
    /// (and nothing claimed) if any is taken.
    pub(crate) fn claim(&mut self, family: &str, suffixes: &[&str]) -> bool {
        let names: Vec<String> =
            std::iter::once("").chain(suffixes.iter().copied()).map(|s| format!("{family}{s}")).collect();
        if names.iter().any(|name| self.0.contains(name)) {
            return false;
        }
        self.0.extend(names);
        true
    }

    /// Whether a render writes the family named `family`, whose sample names
    /// are `name` and `name` with each of `suffixes`. They are claimed whether
    /// it is asked for or not (which family owns a name must not depend on
    /// the filter); if another family took one, this one is left out, and
    /// named in `skipped` when it was asked for.
    pub(crate) fn admit(
        &mut self,
        family: &str,
        (name, suffixes): (&str, &[&str]),
        wanted: &dyn Fn(&str) -> bool,
        skipped: &mut Vec<String>,
    ) -> bool {
        if !self.claim(name, suffixes) {
            if wanted(family) {
                skipped.push(family.to_owned());
            }
            return false;
        }
        wanted(family)
    }
}

/// The sample-name suffixes a family of each OpenMetrics type owns.
pub(crate) const COUNTER_SUFFIXES: &[&str] = &["_total", "_created"];
pub(crate) const HISTOGRAM_SUFFIXES: &[&str] = &["_bucket", "_count", "_sum", "_created"];
pub(crate) const SUMMARY_SUFFIXES: &[&str] = &["_count", "_sum", "_created"];

/// How a registry family is exposed: its OpenMetrics family name and type.
fn exposed(name: &str, kind: MetricKind) -> (&str, &'static str, &'static [&'static str]) {
    match kind {
        MetricKind::Counter => match name.strip_suffix("_total") {
            Some(base) if !base.is_empty() => (base, "counter", COUNTER_SUFFIXES),
            _ => (name, "unknown", &[]),
        },
        MetricKind::Gauge => (name, "gauge", &[]),
        MetricKind::Histogram => (name, "histogram", HISTOGRAM_SUFFIXES),
    }
}

/// Appends every family with at least one series. Families whose sample
/// names are already claimed are skipped and returned by name.
pub(crate) fn render(
    out: &mut String,
    families: &[Arc<Family>],
    global: &GlobalLabels,
    claimed: &mut Claimed,
    clock: (SystemTime, quanta::Instant),
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut skipped = Vec::new();
    let mut scratch = Scratch::default();
    for family in families {
        let series = family.series_list();
        if series.is_empty() {
            continue;
        }
        let descriptor = family.descriptor();
        let (exposed_name, kind, suffixes) = exposed(&descriptor.name, descriptor.kind);
        if !claimed.admit(&descriptor.name, (exposed_name, suffixes), wanted, &mut skipped) {
            continue;
        }
        header(out, exposed_name, &descriptor.help, kind);
        if let Some(unit) = descriptor.unit.as_deref().filter(|unit| exposed_name.ends_with(&format!("_{unit}"))) {
            // OpenMetrics requires the unit to be the name's suffix; a unit
            // that is not is left out rather than invalidating the document.
            out.push_str("# UNIT ");
            out.push_str(exposed_name);
            out.push(' ');
            out.push_str(unit);
            out.push('\n');
        }
        let names = &*descriptor.label_names;
        let global = global.for_family(names);
        for series in &series {
            scratch.labels.clear();
            series_labels(&mut scratch.labels, series.label_names(names), series.labels(), &global);
            let labels = &scratch.labels;
            match series.cell() {
                Cell::Counter(counter) => {
                    let exemplar = if kind == "counter" { counter.read_exemplar(clock) } else { None };
                    scalar(out, &descriptor.name, labels, counter.get(), exemplar);
                }
                Cell::Gauge(gauge) => scalar(out, &descriptor.name, labels, gauge.get(), None),
                Cell::InFlight(in_flight) => scalar(out, &descriptor.name, labels, in_flight.get() as f64, None),
                Cell::Histogram(histogram) => {
                    let Scratch { cumulative, le, labels } = &mut scratch;
                    write_histogram(out, &descriptor.name, labels, histogram, clock, cumulative, le);
                }
            }
        }
    }
    skipped
}

/// Writes `# HELP` (when there is help) and `# TYPE`.
pub(crate) fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    if !help.is_empty() {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape::help(out, help, true);
        out.push('\n');
    }
    out.push_str("# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

#[derive(Default)]
struct Scratch {
    cumulative: Vec<u64>,
    le: String,
    labels: String,
}

fn scalar(out: &mut String, name: &str, labels: &str, value: f64, exemplar: Option<Exemplar>) {
    out.push_str(name);
    braces(out, labels, None);
    out.push(' ');
    number::float(out, value);
    if let Some(exemplar) = exemplar {
        write_trace_exemplar(out, &exemplar);
    }
    out.push('\n');
}

fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    histogram: &Histogram,
    clock: (SystemTime, quanta::Instant),
    cumulative: &mut Vec<u64>,
    le: &mut String,
) {
    let (count, sum, layout) = histogram.read(cumulative);
    let bounds = layout.bounds();
    for (i, bucket) in cumulative.iter().enumerate() {
        le.clear();
        match bounds.get(i) {
            Some(bound) => le.push_str(&number::canonical(*bound)),
            None => le.push_str("+Inf"),
        }
        out.push_str(name);
        out.push_str("_bucket");
        braces(out, labels, Some(("le", le)));
        out.push(' ');
        number::integer(out, *bucket);
        if let Some(exemplar) = histogram.read_exemplar(i, clock) {
            write_trace_exemplar(out, &exemplar);
        }
        out.push('\n');
    }
    // OpenMetrics: `_sum` is a counter, so it may not be negative (nor may
    // it appear at all when a bucket bound is negative); `_count` goes with it.
    let negative_bounds = bounds.first().is_some_and(|b| *b < 0.0);
    if negative_bounds || sum.is_nan() || sum < 0.0 {
        return;
    }
    for (suffix, value) in [("_count", count as f64), ("_sum", sum)] {
        out.push_str(name);
        out.push_str(suffix);
        braces(out, labels, None);
        out.push(' ');
        number::float(out, value);
        out.push('\n');
    }
}

/// ` # {trace_id="..."} value timestamp`, written straight into `out`
/// (32 hex digits and the name: always within the 128-character limit).
fn write_trace_exemplar(out: &mut String, exemplar: &Exemplar) {
    use std::fmt::Write as _;
    out.push_str(" # {trace_id=\"");
    let _ = write!(out, "{}", exemplar.trace_id);
    out.push_str("\"} ");
    number::float(out, exemplar.value);
    out.push(' ');
    timestamp(out, exemplar.timestamp);
}

/// Seconds since the epoch with milliseconds: `1700000000.123`.
fn timestamp(out: &mut String, at: Duration) {
    number::integer(out, at.as_secs());
    out.push('.');
    let millis = at.subsec_millis();
    out.push(char::from(b'0' + (millis / 100) as u8));
    out.push(char::from(b'0' + (millis / 10 % 10) as u8));
    out.push(char::from(b'0' + (millis % 10) as u8));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exemplar_carries_its_trace_id_value_and_observation_time() {
        let exemplar = Exemplar {
            trace_id: crate::trace::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
            value: 0.25,
            timestamp: Duration::from_millis(1_700_000_000_023),
        };
        let mut out = String::new();
        write_trace_exemplar(&mut out, &exemplar);
        assert_eq!(out, " # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 0.25 1700000000.023");
    }

    #[test]
    fn counters_without_total_are_unknown_and_names_are_claimed_once() {
        assert_eq!(exposed("requests_total", MetricKind::Counter).0, "requests");
        assert_eq!(exposed("requests", MetricKind::Counter).1, "unknown");
        assert_eq!(exposed("_total", MetricKind::Counter).1, "unknown");
        let mut claimed = Claimed::default();
        assert!(claimed.claim("requests", COUNTER_SUFFIXES));
        assert!(!claimed.claim("requests_total", &[]));
        assert!(claimed.claim("requests_seconds", HISTOGRAM_SUFFIXES));
    }
}
