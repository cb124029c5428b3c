//! The classic Prometheus text format, version 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>).

use std::sync::Arc;

use super::from_classic::blocks;
use super::openmetrics::Claimed;
use super::{GlobalLabels, braces, escape, number, series_labels};
use crate::registry::{Cell, Family, MetricKind};

/// The sample names a classic family owns besides its own name.
pub(crate) const HISTOGRAM_SAMPLES: &[&str] = &["_bucket", "_sum", "_count"];
pub(crate) const SUMMARY_SAMPLES: &[&str] = &["_sum", "_count"];

/// Appends every family with at least one series. A family whose sample names
/// another family already claimed is left out (two families may not share a
/// sample name) and returned by name.
///
/// Every family claims its sample names, asked for by `wanted` or not: which
/// family owns a name must not depend on the filter.
pub(crate) fn render(
    out: &mut String,
    families: &[Arc<Family>],
    global: &GlobalLabels,
    claimed: &mut Claimed,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut skipped = Vec::new();
    let mut cumulative = Vec::new();
    let mut le = String::new();
    let mut labels = String::new();
    for family in families {
        let series = family.series_list();
        if series.is_empty() {
            continue;
        }
        let descriptor = family.descriptor();
        let name = &*descriptor.name;
        let owned = if descriptor.kind == MetricKind::Histogram { HISTOGRAM_SAMPLES } else { &[] };
        if !claimed.admit(name, (name, owned), wanted, &mut skipped) {
            continue;
        }
        let names = &*descriptor.label_names;
        let global = global.for_family(names);
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape::help(out, &descriptor.help, false);
        out.push_str("\n# TYPE ");
        out.push_str(name);
        out.push(' ');
        out.push_str(descriptor.kind.as_str());
        out.push('\n');
        for series in &series {
            labels.clear();
            series_labels(&mut labels, series.label_names(names), series.labels(), &global);
            match series.cell() {
                Cell::Counter(counter) => sample(out, name, "", &labels, None, counter.get()),
                Cell::Gauge(gauge) => sample(out, name, "", &labels, None, gauge.get()),
                Cell::InFlight(in_flight) => sample(out, name, "", &labels, None, in_flight.get() as f64),
                Cell::Histogram(histogram) => {
                    let (count, sum, layout) = histogram.read(&mut cumulative);
                    let bounds = layout.bounds();
                    for (i, bucket) in cumulative.iter().enumerate() {
                        le.clear();
                        match bounds.get(i) {
                            Some(bound) => number::float(&mut le, *bound),
                            None => le.push_str("+Inf"),
                        }
                        out.push_str(name);
                        out.push_str("_bucket");
                        braces(out, &labels, Some(("le", &le)));
                        out.push(' ');
                        number::integer(out, *bucket);
                        out.push('\n');
                    }
                    sample(out, name, "_sum", &labels, None, sum);
                    sample(out, name, "_count", &labels, None, count as f64);
                }
            }
        }
    }
    skipped
}

/// Appends the families of a classic exposition (the `metrics` facade's) that
/// `wanted` names, leaving out any whose sample names are already claimed;
/// returns their names.
pub(crate) fn append(
    out: &mut String,
    text: &str,
    claimed: &mut Claimed,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut skipped = Vec::new();
    for block in blocks(text) {
        let owned = match block.kind {
            "histogram" => HISTOGRAM_SAMPLES,
            "summary" => SUMMARY_SAMPLES,
            _ => &[],
        };
        if !claimed.claim(block.name, owned) {
            if wanted(block.name) {
                skipped.push(block.name.to_owned());
            }
            continue;
        }
        if !wanted(block.name) {
            continue;
        }
        if let Some(help) = block.help {
            out.push_str("# HELP ");
            out.push_str(block.name);
            out.push(' ');
            out.push_str(help);
            out.push('\n');
        }
        out.push_str("# TYPE ");
        out.push_str(block.name);
        out.push(' ');
        out.push_str(block.kind);
        out.push('\n');
        for line in &block.samples {
            out.push_str(line);
            out.push('\n');
        }
    }
    skipped
}

fn sample(out: &mut String, name: &str, suffix: &str, labels: &str, extra: Option<(&str, &str)>, value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    braces(out, labels, extra);
    out.push(' ');
    number::float(out, value);
    out.push('\n');
}

/// The names of the families the classic `/metrics` leaves out because a
/// sample name of theirs is another family's: ours first, then the facade's
/// (its classic text). A push leaves out the same ones.
pub(crate) fn clashing(families: &[Arc<Family>], facade: &str) -> std::collections::HashSet<String> {
    let mut claimed = Claimed::default();
    let mut clashing = std::collections::HashSet::new();
    // As `render` does: a family with no series claims nothing.
    for family in families.iter().filter(|family| !family.series_list().is_empty()) {
        let descriptor = family.descriptor();
        let owned = if descriptor.kind == MetricKind::Histogram { HISTOGRAM_SAMPLES } else { &[] };
        if !claimed.claim(&descriptor.name, owned) {
            clashing.insert(descriptor.name.to_string());
        }
    }
    for block in blocks(facade) {
        let owned = match block.kind {
            "histogram" => HISTOGRAM_SAMPLES,
            "summary" => SUMMARY_SAMPLES,
            _ => &[],
        };
        if !claimed.claim(block.name, owned) {
            clashing.insert(block.name.to_owned());
        }
    }
    clashing
}
