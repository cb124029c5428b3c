//! The classic Prometheus text format, version 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>).

use std::sync::Arc;

use super::{GlobalLabels, escape, labels, number};
use crate::registry::{Cell, Family, MetricKind};

/// Appends every family with at least one series.
pub(crate) fn render(out: &mut String, families: &[Arc<Family>], global: &GlobalLabels) {
    let mut cumulative = Vec::new();
    let mut le = String::new();
    for family in families {
        let series = family.series_list();
        if series.is_empty() {
            continue;
        }
        let descriptor = family.descriptor();
        let name = &*descriptor.name;
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
            let names = series.label_names(names);
            match series.cell() {
                Cell::Counter(counter) => scalar(out, name, "", names, series.labels(), &global, counter.get()),
                Cell::Gauge(gauge) => scalar(out, name, "", names, series.labels(), &global, gauge.get()),
                Cell::InFlight(in_flight) => {
                    scalar(out, name, "", names, series.labels(), &global, in_flight.get() as f64);
                }
                Cell::Histogram(histogram) => {
                    debug_assert_eq!(descriptor.kind, MetricKind::Histogram);
                    let (count, sum) = histogram.read(&mut cumulative);
                    let bounds = histogram.layout().bounds();
                    for (i, bucket) in cumulative.iter().enumerate() {
                        le.clear();
                        match bounds.get(i) {
                            Some(bound) => number::float(&mut le, *bound),
                            None => le.push_str("+Inf"),
                        }
                        out.push_str(name);
                        out.push_str("_bucket");
                        labels(out, names, series.labels(), &global, Some(("le", &le)));
                        out.push(' ');
                        number::integer(out, *bucket);
                        out.push('\n');
                    }
                    scalar(out, name, "_sum", names, series.labels(), &global, sum);
                    scalar(out, name, "_count", names, series.labels(), &global, count as f64);
                }
            }
        }
    }
}

fn scalar(out: &mut String, name: &str, suffix: &str, names: &[&str], values: &[Box<str>], global: &str, value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    labels(out, names, values, global, None);
    out.push(' ');
    number::float(out, value);
    out.push('\n');
}
