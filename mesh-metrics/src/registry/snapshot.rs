//! Point-in-time copies of the registry's values.

use std::sync::Arc;

use super::{Cell, Family, MetricKind};

/// Every family's values at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The families, in registration order.
    pub families: Vec<FamilySnapshot>,
}

/// One family's values.
#[derive(Debug, Clone)]
pub struct FamilySnapshot {
    /// The metric name.
    pub name: String,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Its series.
    pub series: Vec<SeriesSnapshot>,
}

/// One series' labels and value.
#[derive(Debug, Clone)]
pub struct SeriesSnapshot {
    /// `(name, value)` pairs.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: ValueSnapshot,
}

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSnapshot {
    /// A counter's or gauge's value.
    Scalar(f64),
    /// A histogram's buckets.
    Histogram {
        /// `(upper bound, cumulative count)`, ending with `(+Inf, count)`.
        buckets: Vec<(f64, u64)>,
        /// Number of observations.
        count: u64,
        /// Sum of observations.
        sum: f64,
    },
}

impl Snapshot {
    pub(crate) fn of(families: &[Arc<Family>]) -> Self {
        let families = families
            .iter()
            .map(|family| {
                let descriptor = family.descriptor();
                let series = family
                    .series_list()
                    .iter()
                    .map(|series| SeriesSnapshot {
                        labels: series
                            .label_names(&descriptor.label_names)
                            .iter()
                            .zip(series.labels())
                            .map(|(name, value)| ((*name).to_owned(), value.to_string()))
                            .collect(),
                        value: value_of(series.cell()),
                    })
                    .collect();
                FamilySnapshot { name: descriptor.name.to_string(), kind: descriptor.kind, series }
            })
            .collect();
        Self { families }
    }

    /// The series of `metric` whose labels include every pair of `labels`.
    pub fn matching<'a>(
        &'a self,
        metric: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a SeriesSnapshot> + 'a {
        self.families
            .iter()
            .filter(move |f| f.name == metric)
            .flat_map(|f| f.series.iter())
            .filter(move |s| labels.iter().all(|(name, value)| s.labels.iter().any(|(n, v)| n == name && v == value)))
    }

    /// The sum of the matching counters or gauges (0 when none match).
    pub fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(metric, labels)
            .map(|s| match s.value {
                ValueSnapshot::Scalar(v) => v,
                ValueSnapshot::Histogram { .. } => 0.0,
            })
            .sum()
    }

    /// The `(count, sum)` of the matching histograms added together.
    pub fn histogram(&self, metric: &str, labels: &[(&str, &str)]) -> (u64, f64) {
        self.matching(metric, labels).fold((0, 0.0), |(count, sum), s| match &s.value {
            ValueSnapshot::Histogram { count: c, sum: s, .. } => (count + c, sum + s),
            ValueSnapshot::Scalar(_) => (count, sum),
        })
    }

    /// The matching histograms' cumulative buckets added together.
    pub fn buckets(&self, metric: &str, labels: &[(&str, &str)]) -> Vec<(f64, u64)> {
        let mut total: Vec<(f64, u64)> = Vec::new();
        for series in self.matching(metric, labels) {
            if let ValueSnapshot::Histogram { buckets, .. } = &series.value {
                if total.is_empty() {
                    total = buckets.clone();
                } else {
                    for (sum, (_, count)) in total.iter_mut().zip(buckets) {
                        sum.1 += count;
                    }
                }
            }
        }
        total
    }
}

fn value_of(cell: &Cell) -> ValueSnapshot {
    match cell {
        Cell::Counter(counter) => ValueSnapshot::Scalar(counter.get()),
        Cell::Gauge(gauge) => ValueSnapshot::Scalar(gauge.get()),
        Cell::InFlight(in_flight) => ValueSnapshot::Scalar(in_flight.get() as f64),
        Cell::Histogram(histogram) => {
            let mut cumulative = Vec::new();
            let (count, sum, layout) = histogram.read(&mut cumulative);
            let bounds = layout.bounds().iter().copied().chain([f64::INFINITY]);
            ValueSnapshot::Histogram { buckets: bounds.zip(cumulative).collect(), count, sum }
        }
    }
}
