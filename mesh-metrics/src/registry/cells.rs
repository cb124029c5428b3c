//! The storage of one series: relaxed atomics, nothing else.
//!
//! Relaxed ordering is enough: each value is read on its own at scrape time,
//! and Prometheus tolerates a histogram's `_sum` being a few observations ahead
//! of or behind its buckets, as every client library's histograms are.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use super::Layout;
use super::nanos_sum::{Spilled, seconds, total_seconds};
use super::native::NativeHistogram;
use super::stripes::{Aligned, Stripes};
use crate::exemplar::{Exemplar, Slot, Slots, Stamp};
use crate::trace::TraceId;

/// A monotonic counter. Whole increments are one `fetch_add`; fractional ones
/// (revenue, bytes per second) add to a separate `f64` part, allocated (with
/// the exemplar slot) the first time one is needed, so the common case never
/// pays for a compare-and-swap and a counter series stays small.
///
/// A striped counter (an instrumented fn's status counter)
/// also has a shard per core for the increments of its call sites, so that
/// threads counting the same calls do not share a cache line.
#[derive(Debug, Default)]
pub struct Counter {
    whole: AtomicU64,
    extras: OnceLock<Box<CounterExtras>>,
}

#[derive(Debug, Default)]
struct CounterExtras {
    fraction_bits: AtomicU64,
    exemplar: Slot,
    stripes: Option<Stripes<CounterShard>>,
}

/// A striped counter's part on one core: its count and latest exemplar, in
/// one cache line.
#[derive(Debug, Default)]
struct CounterShard {
    count: AtomicU64,
    exemplar: Slot,
}

impl Counter {
    /// A counter with a shard per thread (see [`shard_count`](super::shard_count))
    /// for [`increment_at`](Self::increment_at): what an instrumented fn's
    /// status counter is.
    pub(crate) fn striped() -> Self {
        let extras = CounterExtras { stripes: Some(Stripes::per_thread()), ..CounterExtras::default() };
        Self { whole: AtomicU64::new(0), extras: OnceLock::from(Box::new(extras)) }
    }

    /// The shards, if it is striped.
    #[inline]
    fn stripes(&self) -> Option<&Stripes<CounterShard>> {
        self.extras.get()?.stripes.as_ref()
    }

    /// Adds a whole number in the shard of the thread with index `thread`
    /// (the whole part, if it is not striped).
    #[inline]
    pub(crate) fn increment_at(&self, thread: usize, by: u64) {
        match self.stripes() {
            Some(stripes) => {
                stripes.at(thread).count.fetch_add(by, Relaxed);
            }
            None => self.increment(by),
        }
    }

    /// Keeps an exemplar in the shard of the thread with index `thread`.
    #[inline]
    pub(crate) fn exemplar_at(&self, thread: usize, trace_id: TraceId, amount: f64, at: Stamp) {
        match self.stripes() {
            Some(stripes) => stripes.at(thread).exemplar.record(trace_id, amount, at),
            None => self.exemplar(trace_id, amount, at),
        }
    }

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
        let Some(extras) = self.extras.get() else { return self.whole.load(Relaxed) as f64 };
        let mut whole = self.whole.load(Relaxed);
        for shard in extras.stripes.iter().flat_map(Stripes::iter) {
            whole = whole.wrapping_add(shard.count.load(Relaxed));
        }
        whole as f64 + f64::from_bits(extras.fraction_bits.load(Relaxed))
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
        let extras = self.extras.get()?;
        let shards = extras.stripes.iter().flat_map(Stripes::iter).map(|shard| &shard.exemplar);
        latest(std::iter::once(&extras.exemplar).chain(shards), clock)
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
/// `fetch_add` each. A [`striped`](Self::striped) one (an instrumented fn's)
/// has a shard per thread (see [`shard_count`](super::shard_count)).
///
/// An exit goes to the shard its entry went to (what [`enter`](Self::enter)
/// returns), even when the call has moved to another thread since: every
/// shard then counts the calls in flight that entered it, never less than
/// zero, and a scrape that reads the shards one after another sums counts
/// that were each true when read.
#[derive(Debug)]
pub struct InFlight {
    shards: Stripes<AtomicI64>,
}

impl Default for InFlight {
    fn default() -> Self {
        Self { shards: Stripes::single() }
    }
}

/// One entry into an [`InFlight`] gauge, which its [`exit`](InFlight::exit)
/// consumes: the exit goes to the shard the entry went to.
#[must_use = "pass it to `InFlight::exit`, or the gauge stays up"]
#[derive(Debug)]
pub struct Entered(usize);

impl InFlight {
    /// A gauge with a shard per thread: what an instrumented fn's is.
    pub fn striped() -> Self {
        Self { shards: Stripes::per_thread() }
    }

    /// One more in flight.
    #[inline]
    pub fn enter(&self) -> Entered {
        let thread = self.shards.local_index();
        self.enter_at(thread);
        Entered(thread)
    }

    /// One fewer in flight: the one `entered` counted.
    #[inline]
    pub fn exit(&self, entered: Entered) {
        self.exit_at(entered.0);
    }

    /// One more in flight, in the shard of the thread with this index.
    #[inline]
    pub(crate) fn enter_at(&self, thread: usize) {
        self.shards.at(thread).fetch_add(1, Relaxed);
    }

    /// One fewer in flight, in the shard of the thread with this index, which
    /// must be the one the call entered.
    #[inline]
    pub(crate) fn exit_at(&self, entered: usize) {
        self.shards.at(entered).fetch_sub(1, Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.shards.iter().map(|shard| shard.load(Relaxed)).fold(0, i64::wrapping_add)
    }

    /// Each shard's count.
    #[cfg(test)]
    pub(crate) fn shard_values(&self) -> Vec<i64> {
        self.shards.iter().map(|shard| shard.load(Relaxed)).collect()
    }
}

/// A fixed-bucket histogram. Buckets are stored per bucket (not cumulative), so
/// an observation is one bucket `fetch_add` plus one add to the sum; the count
/// is the sum of the buckets, computed at scrape time. Its state lives behind
/// one pointer, so the cell of a counter or gauge series does not pay for it.
///
/// A [`striped`](Self::striped) histogram (an instrumented fn's duration) has
/// its buckets, sums and exemplars once per core (see
/// [`shard_count`](super::shard_count)), each shard allocated by the first
/// observation on its core; a scrape adds the shards up.
///
/// A histogram is re-laid at most once, when the exporter is installed with
/// other buckets after the histogram was first used (see
/// [`Registry::set_layouts`](super::Registry::set_layouts)): observations go
/// to a new state from then on, and the first state's counts are read into
/// the new layout at every scrape, so no observation is lost, even one that
/// raced the re-lay.
///
/// A layout with native buckets (see [`Layout::with_native`]) makes it a
/// native histogram too: observations also go to a
/// [`NativeHistogram`](super::native::NativeHistogram), and, when the layout
/// has no bounds, only there.
#[derive(Debug)]
pub struct Histogram {
    initial: Box<HistogramState>,
    relaid: OnceLock<Box<HistogramState>>,
    native: Option<Box<NativePart>>,
}

/// A histogram's native buckets.
#[derive(Debug)]
struct NativePart {
    histogram: NativeHistogram,
    /// Whether the classic buckets are kept too.
    classic: bool,
    /// The latest exemplars of a native-only histogram (a classic one keeps
    /// them per bucket), written round robin.
    exemplars: [Slot; NATIVE_EXEMPLARS],
    next_exemplar: AtomicU64,
}

/// How many exemplars a native-only histogram keeps.
const NATIVE_EXEMPLARS: usize = 4;

impl NativePart {
    fn exemplar(&self, trace_id: TraceId, value: f64, at: Stamp) {
        let slot = self.next_exemplar.fetch_add(1, Relaxed) as usize % NATIVE_EXEMPLARS;
        if let Some(slot) = self.exemplars.get(slot) {
            slot.record(trace_id, value, at);
        }
    }
}

#[derive(Debug)]
struct HistogramState {
    layout: Arc<Layout>,
    shards: Stripes<HistogramShard>,
}

/// A histogram's part on one thread.
#[derive(Debug)]
struct HistogramShard {
    /// `[sum_nanos, sum_bits, bucket 0, ..., +Inf]`, in cache lines of their
    /// own: the duration sum shares a line with the first (busiest) buckets,
    /// and no other shard's cells share any of them.
    ///
    /// `sum_nanos` adds durations exactly, in one `fetch_add`, and spills into
    /// `spilled` before it could wrap; `sum_bits` holds the sum of `observe`
    /// values as `f64` bits; buckets are per bucket.
    cells: Cells,
    /// One exemplar per bucket, allocated by the first traced observation.
    exemplars: Slots,
    /// The part of the nanosecond sum moved out of `sum_nanos`.
    spilled: Spilled,
}

/// Positions in `HistogramShard::cells`.
const SUM_NANOS: usize = 0;
const SUM_BITS: usize = 1;
const FIRST_BUCKET: usize = 2;

/// Atomic cells in whole cache lines.
#[derive(Debug)]
struct Cells {
    lines: Box<[Aligned<[AtomicU64; 8]>]>,
    len: usize,
}

impl Cells {
    fn new(len: usize) -> Self {
        let lines = (0..len.div_ceil(8)).map(|_| Aligned(Default::default())).collect();
        Self { lines, len }
    }

    #[inline]
    fn get(&self, index: usize) -> Option<&AtomicU64> {
        if index >= self.len {
            return None;
        }
        self.lines.get(index / 8)?.0.get(index % 8)
    }
}

impl HistogramShard {
    fn new(buckets: usize) -> Self {
        Self { cells: Cells::new(FIRST_BUCKET + buckets), exemplars: Slots::default(), spilled: Spilled::default() }
    }

    /// How many buckets: one per bound, then the `+Inf` bucket.
    fn bucket_count(&self) -> usize {
        self.cells.len - FIRST_BUCKET
    }

    /// Bucket `index`'s count.
    fn bucket(&self, index: usize) -> u64 {
        self.cells.get(FIRST_BUCKET + index).map_or(0, |cell| cell.load(Relaxed))
    }

    #[inline]
    fn bump(&self, index: usize) {
        if let Some(bucket) = self.cells.get(FIRST_BUCKET + index) {
            bucket.fetch_add(1, Relaxed);
        }
    }

    fn cell(&self, index: usize) -> u64 {
        self.cells.get(index).map_or(0, |cell| cell.load(Relaxed))
    }

    /// The exact nanosecond sum, read consistently with any spill.
    fn sum_nanos(&self) -> u128 {
        self.cells.get(SUM_NANOS).map_or(0, |low| self.spilled.total(low))
    }

    #[inline]
    fn observe_nanos(&self, index: usize, nanos: u64) {
        self.bump(index);
        if let Some(sum) = self.cells.get(SUM_NANOS) {
            self.spilled.add(sum, nanos);
        }
    }

    #[inline]
    fn exemplar(&self, index: usize, trace_id: TraceId, value: f64, at: Stamp) {
        if let Some(slot) = self.exemplars.get_or_alloc(index, self.bucket_count()) {
            slot.record(trace_id, value, at);
        }
    }
}

impl HistogramState {
    fn new(layout: Arc<Layout>, shards: Stripes<HistogramShard>) -> Self {
        Self { layout, shards }
    }

    /// The shard of the thread with this index.
    #[inline]
    fn shard(&self, thread: usize) -> &HistogramShard {
        self.shards.at_or(thread, || HistogramShard::new(self.layout.bounds().len() + 1))
    }

    /// Another state like this one (as many shards) in another layout.
    fn relaid(&self, layout: Arc<Layout>) -> Self {
        let shards = if self.shards.len() == 1 { Stripes::single() } else { Stripes::per_thread() };
        Self::new(layout, shards)
    }

    #[inline]
    fn observe_nanos(&self, thread: usize, nanos: u64) -> (&HistogramShard, usize) {
        let index = self.layout.nanos_bucket(nanos);
        let shard = self.shard(thread);
        shard.observe_nanos(index, nanos);
        (shard, index)
    }

    /// The sum: the shards' exact nanosecond sums added as integers and
    /// converted once, plus their `f64` sums.
    fn sum(&self) -> f64 {
        let nanos: u128 = self.shards.iter().map(HistogramShard::sum_nanos).sum();
        let values: f64 = self.shards.iter().map(|shard| f64::from_bits(shard.cell(SUM_BITS))).sum();
        values + total_seconds(nanos)
    }

    /// Adds this state's count of bucket `index` (one per bound, then `+Inf`)
    /// over all shards.
    fn bucket(&self, index: usize) -> u64 {
        self.shards.iter().fold(0, |total, shard| total.wrapping_add(shard.bucket(index)))
    }

    fn count(&self) -> u64 {
        (0..=self.layout.bounds().len()).fold(0, |total, index| total.wrapping_add(self.bucket(index)))
    }

    /// The latest exemplar of bucket `index` across the shards.
    fn read_exemplar(&self, index: usize, clock: (std::time::SystemTime, quanta::Instant)) -> Option<Exemplar> {
        latest(self.shards.iter().filter_map(|shard| shard.exemplars.get(index)), clock)
    }
}

impl Histogram {
    /// An empty histogram with these buckets, in one shard every thread shares.
    pub fn new(layout: Arc<Layout>) -> Self {
        Self::with_shards(layout, Stripes::single())
    }

    /// An empty histogram with these buckets and a shard per core (see
    /// [`shard_count`](super::shard_count)): what an instrumented fn's
    /// duration is.
    pub fn striped(layout: Arc<Layout>) -> Self {
        Self::with_shards(layout, Stripes::per_thread())
    }

    fn with_shards(layout: Arc<Layout>, shards: Stripes<HistogramShard>) -> Self {
        // A native-only histogram never writes its classic shards.
        let shards = if layout.keeps_classic_buckets() { shards } else { Stripes::single() };
        let native = layout.native().map(|config| {
            Box::new(NativePart {
                histogram: NativeHistogram::new(*config),
                classic: layout.keeps_classic_buckets(),
                exemplars: Default::default(),
                next_exemplar: AtomicU64::new(0),
            })
        });
        Self { initial: Box::new(HistogramState::new(layout, shards)), relaid: OnceLock::new(), native }
    }

    /// Its native buckets, if its layout has them.
    pub fn native(&self) -> Option<&NativeHistogram> {
        self.native.as_deref().map(|native| &native.histogram)
    }

    /// Whether it keeps classic buckets: all but native-only histograms.
    #[inline]
    pub fn keeps_classic_buckets(&self) -> bool {
        self.native.as_deref().is_none_or(|native| native.classic)
    }

    /// The latest exemplars of a native-only histogram.
    pub(crate) fn native_exemplars(&self, clock: (std::time::SystemTime, quanta::Instant)) -> Vec<Exemplar> {
        let Some(native) = self.native.as_deref().filter(|native| !native.classic) else { return Vec::new() };
        let mut exemplars: Vec<Exemplar> = native.exemplars.iter().filter_map(|slot| slot.read(clock)).collect();
        exemplars.sort_by_key(|exemplar| exemplar.timestamp);
        exemplars
    }

    /// The state observations go to now.
    #[inline]
    fn state(&self) -> &HistogramState {
        self.relaid.get().unwrap_or(&self.initial)
    }

    /// Records one observation. NaN is refused (it has no bucket and would
    /// poison the sum), and so are infinities by a native histogram; `false`
    /// is returned.
    pub fn observe(&self, value: f64) -> bool {
        if let Some(native) = &self.native {
            if !native.histogram.observe(value) {
                return false;
            }
            if !native.classic {
                return true;
            }
        }
        self.observe_in(self.state(), value).is_some()
    }

    fn observe_in<'s>(&self, state: &'s HistogramState, value: f64) -> Option<(&'s HistogramShard, usize)> {
        if value.is_nan() {
            return None;
        }
        let index = state.layout.bounds().partition_point(|bound| *bound < value);
        let shard = state.shard(state.shards.local_index());
        shard.bump(index);
        if let Some(sum) = shard.cells.get(SUM_BITS) {
            add_f64(sum, value);
        }
        Some((shard, index))
    }

    /// Records one observation with the trace it belongs to, kept as the
    /// exemplar of its bucket. NaN is refused and `false` is returned.
    pub fn observe_traced(&self, value: f64, trace_id: TraceId) -> bool {
        let at = Stamp::of(quanta::Instant::now());
        if let Some(native) = &self.native {
            if !native.histogram.observe(value) {
                return false;
            }
            if !native.classic {
                native.exemplar(trace_id, value, at);
                return true;
            }
        }
        let Some((shard, index)) = self.observe_in(self.state(), value) else { return false };
        shard.exemplar(index, trace_id, value, at);
        true
    }

    /// Records a duration given in nanoseconds; the sum stays exact, in
    /// nanoseconds (each duration counted at most 2^62 ns, 146 years).
    #[inline]
    pub fn observe_nanos(&self, nanos: u64) {
        // A native-only histogram has no shard to find.
        let thread = if self.keeps_classic_buckets() { self.state().shards.local_index() } else { 0 };
        self.observe_nanos_at(thread, nanos, None);
    }

    /// Records a duration in the shard of the thread with index `thread` and,
    /// with a trace ID, the exemplar of its bucket (in the same state and
    /// shard, so it sits in the bucket the duration went to).
    #[inline]
    pub(crate) fn observe_nanos_at(&self, thread: usize, nanos: u64, traced: Option<(TraceId, Stamp)>) {
        if let Some(native) = &self.native {
            native.histogram.observe_nanos(nanos);
            if !native.classic {
                if let Some((trace_id, at)) = traced {
                    native.exemplar(trace_id, seconds(nanos), at);
                }
                return;
            }
        }
        let (shard, index) = self.state().observe_nanos(thread, nanos);
        if let Some((trace_id, at)) = traced {
            shard.exemplar(index, trace_id, seconds(nanos), at);
        }
    }

    /// The latest exemplar of bucket `index` (one per bound, then `+Inf`).
    pub(crate) fn read_exemplar(
        &self,
        index: usize,
        clock: (std::time::SystemTime, quanta::Instant),
    ) -> Option<Exemplar> {
        if !self.keeps_classic_buckets() {
            // Native only: the text formats' one bucket is `+Inf`.
            return self.native_exemplars(clock).pop().filter(|_| index == 0);
        }
        self.state().read_exemplar(index, clock)
    }

    /// The layout this histogram's buckets are read in.
    pub fn layout(&self) -> &Arc<Layout> {
        &self.state().layout
    }

    /// Whether [`relay`](Self::relay) moved it to another layout already.
    pub(crate) fn is_relaid(&self) -> bool {
        self.relaid.get().is_some()
    }

    /// Moves this histogram to `layout`; returns how many observations were
    /// recorded under the old one (they are read into the new one from then
    /// on, each in the first new bucket whose bound is at or above its old
    /// bucket's bound). `Err` if it was re-laid already: a second re-lay would
    /// have to move observations that are already approximations.
    pub(crate) fn relay(&self, layout: Arc<Layout>) -> Result<u64, ()> {
        if *self.state().layout == *layout {
            return Ok(0);
        }
        if self.state().layout.native() != layout.native() {
            return Err(()); // native buckets cannot be made from classic ones, nor back
        }
        if self.relaid.get().is_some() {
            return Err(());
        }
        let moved = self.initial.count();
        self.relaid.set(Box::new(self.initial.relaid(layout))).map_err(|_| ())?;
        Ok(moved)
    }

    /// Reads the cumulative bucket counts (one per bound, then `+Inf`) into
    /// `cumulative`, and returns `(count, sum, layout)`: the layout the counts
    /// were read in, whose bounds are their `le` (a re-lay racing the read
    /// cannot give counts of one layout and bounds of another).
    pub fn read(&self, cumulative: &mut Vec<u64>) -> (u64, f64, &Layout) {
        if let Some(native) = self.native.as_deref().filter(|native| !native.classic) {
            let snapshot = native.histogram.snapshot();
            cumulative.clear();
            cumulative.push(snapshot.count);
            return (snapshot.count, snapshot.sum, Layout::no_bounds());
        }
        let relaid = self.relaid.get();
        let state = relaid.map_or(&*self.initial, |state| &**state);
        cumulative.clear();
        cumulative.extend((0..=state.layout.bounds().len()).map(|index| state.bucket(index)));
        let mut sum = state.sum();
        if let Some(current) = relaid {
            // Observations made before the re-lay, each in the first bucket of
            // the current layout at or above its old bucket's upper bound.
            let old = &self.initial;
            let bounds = current.layout.bounds();
            for i in 0..=old.layout.bounds().len() {
                let target =
                    old.layout.bounds().get(i).map_or(bounds.len(), |bound| bounds.partition_point(|new| new < bound));
                if let Some(slot) = cumulative.get_mut(target) {
                    *slot = slot.wrapping_add(old.bucket(i));
                }
            }
            sum += old.sum();
        }
        let mut running = 0u64;
        for slot in cumulative.iter_mut() {
            running = running.wrapping_add(*slot);
            *slot = running;
        }
        (running, sum, &state.layout)
    }

    /// The sum of all observations.
    pub fn sum(&self) -> f64 {
        if let Some(native) = self.native.as_deref().filter(|native| !native.classic) {
            return native.histogram.snapshot().sum;
        }
        self.initial.sum() + self.relaid.get().map_or(0.0, |state| state.sum())
    }
}

/// The most recent of these slots' exemplars.
fn latest<'a>(
    slots: impl Iterator<Item = &'a Slot>,
    clock: (std::time::SystemTime, quanta::Instant),
) -> Option<Exemplar> {
    slots.filter_map(|slot| slot.read(clock)).max_by_key(|exemplar| exemplar.timestamp)
}

pub(super) fn add_f64(cell: &AtomicU64, delta: f64) {
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
        let (count, sum, _) = histogram.read(&mut cumulative);
        assert_eq!(cumulative, vec![1, 2, 3, 4]);
        assert_eq!(count, 4);
        assert_eq!(sum, 0.5 + 2.010000001);
    }

    #[test]
    fn striped_cells_add_up_across_threads_exactly() {
        let histogram = Histogram::striped(Arc::new(Layout::new(&[0.001, 1.0]).expect("valid layout")));
        let counter = Counter::striped();
        let in_flight = InFlight::striped();
        std::thread::scope(|scope| {
            for _ in 0..6 {
                let (histogram, counter, in_flight) = (&histogram, &counter, &in_flight);
                scope.spawn(move || {
                    let index = super::super::stripes::thread_index();
                    for i in 0..10_000u64 {
                        let entered = in_flight.enter();
                        let nanos = [500, 1_000_000, 2_000_000][(i % 3) as usize];
                        histogram.observe_nanos_at(index, nanos, None);
                        counter.increment_at(index, 1);
                        in_flight.exit(entered);
                    }
                });
            }
        });
        let mut cumulative = Vec::new();
        let (count, sum, _) = histogram.read(&mut cumulative);
        assert_eq!(cumulative, vec![6 * (3_334 + 3_333), 60_000, 60_000], "500 ns and 1 ms are at or under 1 ms");
        assert_eq!(count, 60_000);
        let expected_nanos = 6 * (3_334 * 500 + 3_333 * 1_000_000 + 3_333 * 2_000_000u64);
        assert_eq!(sum, expected_nanos as f64 / 1e9);
        assert_eq!(counter.get(), 60_000.0);
        assert_eq!(in_flight.get(), 0);
        assert!(
            in_flight.shards.iter().all(|shard| shard.load(Relaxed) == 0),
            "each thread exits the shard it entered: none is left off zero at rest"
        );
    }

    #[test]
    fn the_nanosecond_sum_spills_instead_of_wrapping() {
        let histogram = Histogram::new(Arc::new(Layout::default_latency()));
        let day = 86_400 * 1_000_000_000u64;
        // 200,000 days of summed durations: past u64::MAX nanoseconds (213,503 days)
        // would need a few more, so go well past it.
        for _ in 0..400_000 {
            histogram.observe_nanos(day);
        }
        let expected = 400_000.0 * 86_400.0;
        let sum = histogram.sum();
        assert!((sum - expected).abs() / expected < 1e-12, "sum {sum}, expected {expected}");
        let nanos: u128 = histogram.initial.shards.iter().map(HistogramShard::sum_nanos).sum();
        assert_eq!(nanos, 400_000 * u128::from(day), "exact in nanoseconds");
        let mut cumulative = Vec::new();
        assert_eq!(histogram.read(&mut cumulative).0, 400_000);
    }

    #[test]
    fn a_zero_duration_never_lands_under_a_negative_bound() {
        let histogram = Histogram::new(Arc::new(Layout::new(&[-1.0, 0.0, 1.0]).expect("valid layout")));
        histogram.observe_nanos(0);
        histogram.observe_nanos(1);
        let mut cumulative = Vec::new();
        histogram.read(&mut cumulative);
        assert_eq!(cumulative, vec![0, 1, 2, 2]);
    }

    #[test]
    fn a_relay_keeps_every_count_and_reads_old_ones_at_or_above_their_bound() {
        let histogram = Histogram::new(Arc::new(Layout::new(&[0.01, 0.1, 1.0]).expect("valid layout")));
        histogram.observe_nanos(5_000_000); // le 0.01
        histogram.observe_nanos(50_000_000); // le 0.1
        histogram.observe_nanos(5_000_000_000); // +Inf
        let moved = histogram.relay(Arc::new(Layout::new(&[0.05, 0.5]).expect("valid layout"))).expect("first relay");
        assert_eq!(moved, 3);
        histogram.observe_nanos(20_000_000); // le 0.05 in the new layout
        let mut cumulative = Vec::new();
        let (count, sum, layout) = histogram.read(&mut cumulative);
        assert_eq!(layout.bounds(), &[0.05, 0.5]);
        // old 0.01 -> 0.05, old 0.1 -> 0.5, old +Inf -> +Inf, new 0.02 -> 0.05
        assert_eq!(cumulative, vec![2, 3, 4]);
        assert_eq!(count, 4);
        assert!((sum - 5.075).abs() < 1e-9);
        assert_eq!(histogram.layout().bounds(), &[0.05, 0.5]);
        assert!(histogram.relay(Arc::new(Layout::new(&[0.05, 0.5]).expect("valid"))).is_ok(), "same layout: no-op");
        assert!(histogram.relay(Arc::new(Layout::new(&[1.0]).expect("valid"))).is_err(), "a second relay is refused");
    }
}
