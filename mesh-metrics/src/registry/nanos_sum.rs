//! An exact sum of durations in nanoseconds that never wraps.
//!
//! The sum is `spills * SPILL_NANOS + low`: an observation is one
//! `fetch_add` on `low`, and the one that leaves it at or past
//! [`SPILL_NANOS`] moves whole `SPILL_NANOS` into `spills`. `low` is kept by
//! the caller, so it can share a cache line with the cells it is written with.

use std::sync::atomic::{AtomicU64, Ordering};

/// When the low part reaches this (about 146 years of summed durations,
/// which a busy service with thousands of calls in flight reaches in weeks),
/// it is moved into the count of spills.
pub(super) const SPILL_NANOS: u64 = 1 << 62;

/// A duration in nanoseconds as seconds, the unit Prometheus has them in.
#[inline]
pub(super) fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// A nanosecond sum as seconds.
pub(super) fn total_seconds(nanos: u128) -> f64 {
    nanos as f64 / 1e9
}

/// The spilled part of a nanosecond sum. `generation` is odd while a spill is
/// under way (one at a time), so a reader never sees a spill half done.
#[derive(Debug, Default)]
pub(super) struct Spilled {
    generation: AtomicU64,
    spills: AtomicU64,
}

impl Spilled {
    /// Adds `nanos` to the sum whose low part is `low`: at most
    /// [`SPILL_NANOS`] of it (146 years), which only a duration that could
    /// not be measured (`u64::MAX`) exceeds.
    #[inline]
    pub(super) fn add(&self, low: &AtomicU64, nanos: u64) {
        // One observation adds at most SPILL_NANOS, and any observation that
        // leaves the sum at or past the mark spills it, so the sum stays far
        // from u64::MAX.
        let nanos = nanos.min(SPILL_NANOS);
        let before = low.fetch_add(nanos, Ordering::Relaxed);
        if before.saturating_add(nanos) >= SPILL_NANOS {
            self.spill(low);
        }
    }

    /// Moves whole `SPILL_NANOS` out of `low`, if no other thread is.
    #[cold]
    fn spill(&self, low: &AtomicU64) {
        let Self { generation, spills } = self;
        let current = generation.load(Ordering::SeqCst);
        if current % 2 == 1
            || generation.compare_exchange(current, current + 1, Ordering::SeqCst, Ordering::SeqCst).is_err()
        {
            return; // another thread is spilling; a later observation retries
        }
        // Only the spilling thread subtracts, so this cannot underflow.
        while low.load(Ordering::SeqCst) >= SPILL_NANOS {
            low.fetch_sub(SPILL_NANOS, Ordering::SeqCst);
            spills.fetch_add(1, Ordering::SeqCst);
        }
        generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The exact sum whose low part is `low`, read consistently with any
    /// spill.
    pub(super) fn total(&self, low: &AtomicU64) -> u128 {
        let Self { generation, spills } = self;
        loop {
            let before = generation.load(Ordering::SeqCst);
            if before % 2 == 0 {
                let total = u128::from(spills.load(Ordering::SeqCst)) * u128::from(SPILL_NANOS)
                    + u128::from(low.load(Ordering::SeqCst));
                if generation.load(Ordering::SeqCst) == before {
                    return total;
                }
            }
            // A spill is a few instructions; wait for it to end.
            std::thread::yield_now();
        }
    }

    /// Empties the sum whose low part is `low`. Only while nothing adds to it.
    pub(super) fn clear(&self, low: &AtomicU64) {
        low.store(0, Ordering::Relaxed);
        self.spills.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sum_past_the_mark_spills_and_reads_exact() {
        let (low, spilled) = (AtomicU64::new(0), Spilled::default());
        spilled.add(&low, SPILL_NANOS - 1);
        assert_eq!(spilled.spills.load(Ordering::Relaxed), 0);
        spilled.add(&low, 3); // at the mark: spills
        assert_eq!((spilled.spills.load(Ordering::Relaxed), low.load(Ordering::Relaxed)), (1, 2));
        assert_eq!(spilled.total(&low), u128::from(SPILL_NANOS) + 2);
        // A duration that could not be measured counts 2^62 ns, no more.
        spilled.add(&low, u64::MAX);
        assert_eq!(spilled.total(&low), 2 * u128::from(SPILL_NANOS) + 2);
        spilled.clear(&low);
        assert_eq!(spilled.total(&low), 0);
    }
}
