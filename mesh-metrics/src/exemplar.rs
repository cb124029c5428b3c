//! Where exemplars are kept: one slot per histogram bucket and per counter
//! (per shard, for an instrumented fn's striped cells), holding the most
//! recent traced observation; a scrape takes the newest across shards.
//!
//! A slot is a sequence lock over four atomics. A writer claims it with one
//! compare-and-swap and, if another writer holds it at that instant, gives up
//! (the other observation is just as recent, so nothing of value is lost). A
//! scrape reads the four words and retries if a writer got in between. No
//! thread waits for another to record: a series' (or shard's) slots are
//! allocated once, by its first traced observation.

use std::sync::LazyLock;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::trace::TraceId;

/// An exemplar as a scrape reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exemplar {
    /// The trace the observation belongs to.
    pub(crate) trace_id: TraceId,
    /// The observed value (seconds for a duration, the increment for a counter).
    pub(crate) value: f64,
    /// When it was observed, as time since the Unix epoch.
    pub(crate) timestamp: Duration,
}

/// The clock exemplar timestamps are taken from: the same `quanta` reading the
/// call already made for its duration, stored as nanoseconds since a process
/// epoch and turned into wall-clock time at scrape time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp(u64);

static EPOCH: LazyLock<quanta::Instant> = LazyLock::new(quanta::Instant::now);

impl Stamp {
    /// The stamp of `instant`.
    #[inline]
    pub(crate) fn of(instant: quanta::Instant) -> Self {
        let since = instant.saturating_duration_since(*EPOCH);
        Self(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Wall-clock time of this stamp, given the wall clock and the `quanta`
    /// clock read together now. Re-anchoring at every scrape keeps the result
    /// within the clocks' drift over the exemplar's age, not the process's.
    fn to_unix(self, now: (SystemTime, quanta::Instant)) -> Duration {
        let now_unix = now.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let age = Stamp::of(now.1).0.saturating_sub(self.0);
        now_unix.saturating_sub(Duration::from_nanos(age))
    }
}

/// The clocks read together, once per scrape.
pub(crate) fn scrape_clock() -> (SystemTime, quanta::Instant) {
    // Touch the epoch first so that it is never later than `now`.
    let _ = *EPOCH;
    (SystemTime::now(), quanta::Instant::now())
}

/// One exemplar slot.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// Even: stable; odd: a writer is in the middle; 0: never written.
    sequence: AtomicU64,
    trace_high: AtomicU64,
    trace_low: AtomicU64,
    value_bits: AtomicU64,
    stamp: AtomicU64,
}

impl Slot {
    /// Stores an exemplar unless another writer holds the slot right now.
    #[inline]
    pub(crate) fn record(&self, trace_id: TraceId, value: f64, at: Stamp) {
        let sequence = self.sequence.load(Ordering::Relaxed);
        if sequence & 1 == 1
            || self.sequence.compare_exchange(sequence, sequence + 1, Ordering::Acquire, Ordering::Relaxed).is_err()
        {
            return;
        }
        fence(Ordering::Release);
        let id = trace_id.to_u128();
        self.trace_high.store((id >> 64) as u64, Ordering::Relaxed);
        self.trace_low.store(id as u64, Ordering::Relaxed);
        self.value_bits.store(value.to_bits(), Ordering::Relaxed);
        self.stamp.store(at.0, Ordering::Relaxed);
        self.sequence.store(sequence + 2, Ordering::Release);
    }

    /// The latest exemplar, or `None` if there is none (or writers kept
    /// overtaking the read, which a scrape can afford to skip).
    pub(crate) fn read(&self, clock: (SystemTime, quanta::Instant)) -> Option<Exemplar> {
        for _ in 0..8 {
            let before = self.sequence.load(Ordering::Acquire);
            if before == 0 {
                return None;
            }
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let high = self.trace_high.load(Ordering::Relaxed);
            let low = self.trace_low.load(Ordering::Relaxed);
            let value = f64::from_bits(self.value_bits.load(Ordering::Relaxed));
            let stamp = Stamp(self.stamp.load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            if self.sequence.load(Ordering::Relaxed) == before {
                let trace_id = TraceId::from_u128((u128::from(high) << 64) | u128::from(low))?;
                return Some(Exemplar { trace_id, value, timestamp: stamp.to_unix(clock) });
            }
        }
        None
    }
}

/// A series' exemplar slots, allocated by its first traced observation so that
/// series which never see a trace ID cost one pointer.
#[derive(Debug, Default)]
pub(crate) struct Slots(OnceLock<Box<[Slot]>>);

impl Slots {
    /// The slot at `index`, allocating `len` slots the first time.
    #[inline]
    pub(crate) fn get_or_alloc(&self, index: usize, len: usize) -> Option<&Slot> {
        self.0.get_or_init(|| (0..len).map(|_| Slot::default()).collect()).get(index)
    }

    /// The slot at `index`, if slots were ever allocated.
    pub(crate) fn get(&self, index: usize) -> Option<&Slot> {
        self.0.get().and_then(|slots| slots.get(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_exemplar_with_its_own_time() {
        let slot = Slot::default();
        assert_eq!(slot.read(scrape_clock()), None);
        let first = TraceId::from_u128(0x1234).expect("non-zero");
        let second = TraceId::from_u128(u128::MAX).expect("non-zero");
        let observed = quanta::Instant::now();
        slot.record(first, 0.25, Stamp::of(observed));
        slot.record(second, 1.5, Stamp::of(observed));
        std::thread::sleep(Duration::from_millis(20));
        let read = slot.read(scrape_clock()).expect("an exemplar");
        assert_eq!((read.trace_id, read.value), (second, 1.5));
        let age = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970") - read.timestamp;
        assert!(age >= Duration::from_millis(20), "the exemplar is stamped when observed, not when read: {age:?}");
    }

    #[test]
    fn concurrent_writers_never_tear_an_exemplar() {
        let slot = Slot::default();
        let ids: Vec<TraceId> =
            (1..=4).map(|i| TraceId::from_u128(i * 0x0101_0101_0101_0101).expect("non-zero")).collect();
        std::thread::scope(|scope| {
            for (i, id) in ids.iter().enumerate() {
                let slot = &slot;
                scope.spawn(move || {
                    for _ in 0..20_000 {
                        slot.record(*id, i as f64, Stamp::of(quanta::Instant::now()));
                    }
                });
            }
            for _ in 0..20_000 {
                if let Some(read) = slot.read(scrape_clock()) {
                    let i = ids.iter().position(|id| *id == read.trace_id).expect("a written id, not a torn one");
                    assert_eq!(read.value, i as f64);
                }
            }
        });
    }
}
