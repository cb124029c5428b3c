//! One labelled series: its label values, kept in one allocation, and its cell.

use std::sync::atomic::{AtomicU32, Ordering};

use super::Cell;
use crate::guard;

/// The label names of every overflow series.
const OVERFLOW_NAMES: &[&str] = &[guard::OVERFLOW_LABEL.0];

/// One labelled series of a family.
#[derive(Debug)]
pub struct Series {
    /// Every label value as `<byte length>:<bytes>`, one after the other: one
    /// allocation per series, however many labels.
    labels: Box<str>,
    overflow: bool,
    /// The registry tick of its last lookup, for families whose idle series expire.
    last_used: AtomicU32,
    /// When it was created, in seconds since the Unix epoch (an expired
    /// series that comes back starts again at 0: its cumulative values start
    /// here, as OTLP's `start_time_unix_nano` must say).
    created: u32,
    cell: Cell,
}

impl Series {
    pub(crate) fn new<S: AsRef<str>>(values: &[S], overflow: bool, tick: u32, cell: Cell) -> Self {
        let mut labels = String::with_capacity(values.iter().map(|v| v.as_ref().len() + 4).sum());
        for value in values {
            let value = value.as_ref();
            labels.push_str(itoa::Buffer::new().format(value.len()));
            labels.push(':');
            labels.push_str(value);
        }
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| u32::try_from(since.as_secs()).unwrap_or(u32::MAX));
        Self { labels: labels.into_boxed_str(), overflow, last_used: AtomicU32::new(tick), created, cell }
    }

    /// When it was created, in seconds since the Unix epoch.
    pub fn created_unix_secs(&self) -> u32 {
        self.created
    }

    /// The label values, in the order of [`label_names`](Self::label_names).
    pub fn labels(&self) -> LabelValues<'_> {
        LabelValues { rest: &self.labels }
    }

    /// Whether the label values are exactly `values`.
    pub(crate) fn has_labels(&self, values: &[&str]) -> bool {
        let mut mine = self.labels();
        values.iter().all(|value| mine.next() == Some(value)) && mine.next().is_none()
    }

    /// The label names of this series: the family's, or for the overflow
    /// series its single `otel_metric_overflow` label.
    pub fn label_names<'a>(&self, family_names: &'a [&'static str]) -> &'a [&'static str] {
        if self.overflow { OVERFLOW_NAMES } else { family_names }
    }

    /// Whether this is the family's overflow series (see [`crate::guard`]).
    pub fn is_overflow(&self) -> bool {
        self.overflow
    }

    /// The value cell.
    pub fn cell(&self) -> &Cell {
        &self.cell
    }

    pub(crate) fn touch(&self, tick: u32) {
        self.last_used.store(tick, Ordering::Relaxed);
    }

    pub(crate) fn last_used(&self) -> u32 {
        self.last_used.load(Ordering::Relaxed)
    }
}

/// The label values of a series, in order.
#[derive(Debug, Clone)]
pub struct LabelValues<'a> {
    rest: &'a str,
}

impl<'a> Iterator for LabelValues<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        // `<decimal byte length>:<bytes>`, as `Series::new` wrote it.
        let mut length = 0usize;
        let mut digits = 0usize;
        for byte in self.rest.bytes() {
            if byte == b':' {
                break;
            }
            length = length.checked_mul(10)?.checked_add(usize::from(byte.wrapping_sub(b'0')))?;
            digits += 1;
        }
        let start = digits + 1;
        let value = self.rest.get(start..start.checked_add(length)?)?;
        self.rest = self.rest.get(start + length..).unwrap_or_default();
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_round_trip_whatever_they_hold() {
        let values = ["", "a:b", "12:x", "é\n\"}", ":"];
        let series = Series::new(&values, false, 0, Cell::Gauge(Default::default()));
        assert_eq!(series.labels().collect::<Vec<_>>(), values);
        assert!(series.has_labels(&values));
        assert!(!series.has_labels(&values[..4]));
        assert!(!series.has_labels(&["", "a:b", "12:x", "é\n\"}", ":", ""]));
        assert_eq!(Series::new::<&str>(&[], false, 0, Cell::Gauge(Default::default())).labels().count(), 0);
    }
}
