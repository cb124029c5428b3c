//! The storage of one series: relaxed atomics, nothing else.
//!
//! Relaxed ordering is enough: each value is read on its own at scrape time,
//! and Prometheus tolerates a histogram's `_sum` being a few observations ahead
//! of or behind its buckets, as every client library's histograms are.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use super::Layout;
use crate::exemplar::{Exemplar, Slot, Slots, Stamp};
use crate::trace::TraceId;

/// A monotonic counter. Whole increments are one `fetch_add`; fractional ones
/// (revenue, bytes per second) add to a separate `f64` part, allocated (with
/// the exemplar slot) the first time one is needed, so the common case never
/// pays for a compare-and-swap and a counter series stays small.
#[derive(Debug, Default)]
pub struct Counter {
    whole: AtomicU64,
    extras: OnceLock<Box<CounterExtras>>,
}

#[derive(Debug, Default)]
struct CounterExtras {
    fraction_bits: AtomicU64,
    exemplar: Slot,
}

impl Counter {
    /// Adds a whole number.
    #[inline]
    pub fn increment(&self, by: u64) {
        self.whole.fetch_add(by, Relaxed);
    }

    /// Adds a non-negative amount. Negative, NaN and infinite amounts are
    /// refused (a counter only goes up) and `false` is returned.
    pub fn add(&self, amount: f64) -> bool {
        if !(amount.is_finite() && amount >= 0.0) {
            return false;
        }
        if amount.fract() == 0.0 && amount < u64::MAX as f64 {
            self.increment(amount as u64);
        } else {
            add_f64(&self.extras().fraction_bits, amount);
        }
        true
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        let fraction = self.extras.get().map_or(0.0, |extras| f64::from_bits(extras.fraction_bits.load(Relaxed)));
        self.whole.load(Relaxed) as f64 + fraction
    }

    /// Adds a whole number with the trace it belongs to, kept as the exemplar.
    pub fn increment_traced(&self, by: u64, trace_id: TraceId) {
        self.increment(by);
        self.exemplar(trace_id, by as f64, Stamp::of(quanta::Instant::now()));
    }

    /// Keeps `amount` as the exemplar of the latest increment, for `trace_id`.
    #[inline]
    pub(crate) fn exemplar(&self, trace_id: TraceId, amount: f64, at: Stamp) {
        self.extras().exemplar.record(trace_id, amount, at);
    }

    /// The latest exemplar, if any increment carried a trace ID.
    pub(crate) fn read_exemplar(&self, clock: (std::time::SystemTime, quanta::Instant)) -> Option<Exemplar> {
        self.extras.get()?.exemplar.read(clock)
    }

    #[inline]
    fn extras(&self) -> &CounterExtras {
        self.extras.get_or_init(Box::default)
    }
}

/// A gauge holding any `f64`.
#[derive(Debug, Default)]
pub struct Gauge {
    bits: AtomicU64,
}

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: f64) {
        self.bits.store(value.to_bits(), Relaxed);
    }

    /// Adds `delta` (negative to decrease).
    pub fn add(&self, delta: f64) {
        add_f64(&self.bits, delta);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Relaxed))
    }
}

/// A gauge of whole things in flight: `+1` on entry, `-1` on exit, one
/// `fetch_add` each.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicI64,
}

impl InFlight {
    /// One more in flight.
    #[inline]
    pub fn enter(&self) {
        self.count.fetch_add(1, Relaxed);
    }

    /// One fewer in flight.
    #[inline]
    pub fn exit(&self) {
        self.count.fetch_sub(1, Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.count.load(Relaxed)
    }
}

/// A fixed-bucket histogram. Buckets are stored per bucket (not cumulative), so
/// an observation is one bucket `fetch_add` plus one add to the sum; the count
/// is the sum of the buckets, computed at scrape time. Its state lives behind
/// one pointer, so the cell of a counter or gauge series does not pay for it.
#[derive(Debug)]
pub struct Histogram(Box<HistogramState>);

#[derive(Debug)]
struct HistogramState {
    /// `[sum_nanos, sum_bits, bucket 0, ..., +Inf]`: the duration sum shares a
    /// cache line with the first (busiest) buckets, so a fast call under
    /// contention moves one line between cores, not two.
    ///
    /// `sum_nanos` adds durations exactly, in one `fetch_add`; `sum_bits` holds
    /// the sum of `observe` values as `f64` bits; buckets are per bucket.
    cells: Box<[AtomicU64]>,
    layout: Arc<Layout>,
    /// One exemplar per bucket, allocated by the first traced observation.
    exemplars: Slots,
}

/// Positions in `HistogramState::cells`.
const SUM_NANOS: usize = 0;
const SUM_BITS: usize = 1;
const FIRST_BUCKET: usize = 2;

impl Histogram {
    /// An empty histogram with these buckets.
    pub fn new(layout: Arc<Layout>) -> Self {
        let cells = (0..FIRST_BUCKET + layout.bounds().len() + 1).map(|_| AtomicU64::new(0)).collect();
        Self(Box::new(HistogramState { cells, layout, exemplars: Slots::default() }))
    }

    /// Records one observation. NaN is refused (it has no bucket and would
    /// poison the sum) and `false` is returned.
    pub fn observe(&self, value: f64) -> bool {
        self.observe_at(value).is_some()
    }

    /// Records one observation and returns the index of its bucket (`None`
    /// for a refused NaN).
    pub(crate) fn observe_at(&self, value: f64) -> Option<usize> {
        if value.is_nan() {
            return None;
        }
        let index = self.0.layout.bounds().partition_point(|bound| *bound < value);
        self.bump(index);
        if let Some(sum) = self.0.cells.get(SUM_BITS) {
            add_f64(sum, value);
        }
        Some(index)
    }

    /// Records one observation with the trace it belongs to, kept as the
    /// exemplar of its bucket. NaN is refused and `false` is returned.
    pub fn observe_traced(&self, value: f64, trace_id: TraceId) -> bool {
        let Some(index) = self.observe_at(value) else { return false };
        self.exemplar(index, trace_id, value, Stamp::of(quanta::Instant::now()));
        true
    }

    /// Records a duration given in nanoseconds; the sum stays exact.
    #[inline]
    pub fn observe_nanos(&self, nanos: u64) {
        self.observe_nanos_at(nanos);
    }

    /// Records a duration and returns the index of its bucket.
    #[inline]
    pub(crate) fn observe_nanos_at(&self, nanos: u64) -> usize {
        let state = &*self.0;
        let index = state.layout.nanos().iter().position(|bound| nanos <= *bound).unwrap_or(state.layout.nanos().len());
        self.bump(index);
        if let Some(sum) = state.cells.get(SUM_NANOS) {
            sum.fetch_add(nanos, Relaxed);
        }
        index
    }

    /// Keeps `value` as the exemplar of bucket `index`, for `trace_id`.
    #[inline]
    pub(crate) fn exemplar(&self, index: usize, trace_id: TraceId, value: f64, at: Stamp) {
        if let Some(slot) = self.0.exemplars.get_or_alloc(index, self.buckets().len()) {
            slot.record(trace_id, value, at);
        }
    }

    /// The latest exemplar of bucket `index` (one per bound, then `+Inf`).
    pub(crate) fn read_exemplar(
        &self,
        index: usize,
        clock: (std::time::SystemTime, quanta::Instant),
    ) -> Option<Exemplar> {
        self.0.exemplars.get(index)?.read(clock)
    }

    #[inline]
    fn bump(&self, index: usize) {
        if let Some(bucket) = self.buckets().get(index) {
            bucket.fetch_add(1, Relaxed);
        }
    }

    /// One per bound, then the `+Inf` bucket.
    #[inline]
    fn buckets(&self) -> &[AtomicU64] {
        self.0.cells.get(FIRST_BUCKET..).unwrap_or_default()
    }

    fn cell(&self, index: usize) -> u64 {
        self.0.cells.get(index).map_or(0, |cell| cell.load(Relaxed))
    }

    /// The layout this histogram was created with.
    pub fn layout(&self) -> &Arc<Layout> {
        &self.0.layout
    }

    /// Reads the cumulative bucket counts (one per bound, then `+Inf`) into
    /// `cumulative`, and returns `(count, sum)`.
    pub fn read(&self, cumulative: &mut Vec<u64>) -> (u64, f64) {
        cumulative.clear();
        let mut running = 0u64;
        for bucket in self.buckets() {
            running = running.wrapping_add(bucket.load(Relaxed));
            cumulative.push(running);
        }
        (running, self.sum())
    }

    /// The sum of all observations.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.cell(SUM_BITS)) + self.cell(SUM_NANOS) as f64 / 1e9
    }
}

fn add_f64(cell: &AtomicU64, delta: f64) {
    let mut current = cell.load(Relaxed);
    loop {
        let next = (f64::from_bits(current) + delta).to_bits();
        match cell.compare_exchange_weak(current, next, Relaxed, Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_keeps_whole_and_fractional_parts() {
        let counter = Counter::default();
        counter.increment(3);
        assert!(counter.add(2.5));
        assert!(counter.add(4.0));
        assert!(!counter.add(-1.0));
        assert!(!counter.add(f64::NAN));
        assert!(!counter.add(f64::INFINITY));
        assert_eq!(counter.get(), 9.5);
    }

    #[test]
    fn histogram_buckets_are_le_and_sum_is_exact_for_durations() {
        let layout = Arc::new(Layout::new(&[0.005, 0.01, 1.0]).expect("valid layout"));
        let histogram = Histogram::new(layout);
        histogram.observe_nanos(5_000_000); // exactly on the 5 ms bound: le
        histogram.observe_nanos(5_000_001);
        histogram.observe_nanos(2_000_000_000);
        assert!(histogram.observe(0.5));
        assert!(!histogram.observe(f64::NAN));
        let mut cumulative = Vec::new();
        let (count, sum) = histogram.read(&mut cumulative);
        assert_eq!(cumulative, vec![1, 2, 3, 4]);
        assert_eq!(count, 4);
        assert_eq!(sum, 0.5 + 2.010000001);
    }
}
