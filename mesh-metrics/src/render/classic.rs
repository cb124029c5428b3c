//! The classic Prometheus text format, version 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>).

use std::sync::Arc;

use super::{GlobalLabels, braces, escape, number, series_labels};
use crate::registry::{Cell, Family};

/// Appends every family with at least one series.
pub(crate) fn render(out: &mut String, families: &[Arc<Family>], global: &GlobalLabels) {
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
}

fn sample(out: &mut String, name: &str, suffix: &str, labels: &str, extra: Option<(&str, &str)>, value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    braces(out, labels, extra);
    out.push(' ');
    number::float(out, value);
    out.push('\n');
}
