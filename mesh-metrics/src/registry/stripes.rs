//! Per-thread shards of a cell, so that threads recording into one series do
//! not move a cache line between their cores on every call.
//!
//! A striped cell holds one slot per shard; a shard is allocated (aligned to a
//! cache line) by the first thread that records into it, and a scrape sums
//! the shards that exist. Each thread leases the lowest free thread index the
//! first time it records and returns it when it exits, so the threads alive
//! at one time (a runtime's workers, the blocking pool) hold distinct indices
//! and, while there are no more of them than shards, distinct shards.
//!
//! Shards belong to threads, not cores: a thread keeps its index (and shard)
//! wherever the OS runs it. The number of shards is one more than the
//! machine's parallelism, rounded up to a power of two, at most
//! [`MAX_SHARDS`]: a runtime's workers and the thread that started it get
//! shards of their own. A striped cell costs one pointer per shard up front,
//! and each shard a thread has recorded into costs its aligned size.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{LazyLock, Mutex, PoisonError};

use once_cell::race::OnceBox;

/// The most shards a striped cell has, whatever the machine.
pub const MAX_SHARDS: usize = 64;

/// The shards of a striped cell on this machine: its parallelism plus one,
/// rounded up to a power of two, at most [`MAX_SHARDS`] (4 on 2 cores, 32 on
/// 16, 64 on 64).
pub fn shard_count() -> usize {
    static COUNT: LazyLock<usize> = LazyLock::new(|| {
        let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
        (parallelism + 1).next_power_of_two().min(MAX_SHARDS)
    });
    *COUNT
}

/// A value aligned to a cache line, so that two shards never share one.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Aligned<T>(pub(crate) T);

/// One `T` per shard, each allocated by its first use.
#[derive(Debug)]
pub(crate) struct Stripes<T> {
    /// A power of two long, so a thread index masks into it.
    shards: Box<[OnceBox<Aligned<T>>]>,
}

impl<T> Stripes<T> {
    /// One shard per [`shard_count`].
    pub(crate) fn per_thread() -> Self {
        Self::with_shards(shard_count())
    }

    /// A single shard, which every thread shares: for cells that are not hot
    /// enough to pay for a shard per core.
    pub(crate) fn single() -> Self {
        Self::with_shards(1)
    }

    fn with_shards(count: usize) -> Self {
        debug_assert!(count.is_power_of_two());
        Self { shards: (0..count).map(|_| OnceBox::new()).collect() }
    }

    /// The index of the calling thread's shard: 0, without a look at the
    /// thread, when there is one shard.
    #[inline]
    pub(crate) fn local_index(&self) -> usize {
        if self.shards.len() == 1 { 0 } else { thread_index() }
    }

    /// The shard a thread with this index records into, made by `init` if
    /// this is its first use.
    #[inline]
    pub(crate) fn at_or(&self, thread_index: usize, init: impl FnOnce() -> T) -> &T {
        let mask = self.shards.len().wrapping_sub(1);
        match self.shards.get(thread_index & mask) {
            Some(slot) => &slot.get_or_init(|| Box::new(Aligned(init()))).0,
            None => unreachable_empty(),
        }
    }

    /// The shards that were ever recorded into.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.shards.iter().filter_map(|slot| slot.get().map(|aligned| &aligned.0))
    }

    /// How many shards it can hold.
    pub(crate) fn len(&self) -> usize {
        self.shards.len()
    }
}

impl<T: Default> Stripes<T> {
    /// The shard a thread with this index records into.
    #[inline]
    pub(crate) fn at(&self, thread_index: usize) -> &T {
        self.at_or(thread_index, T::default)
    }
}

/// `Stripes` always has at least one shard; this keeps the hot path free of a
/// panic branch the compiler cannot prove away.
#[cold]
#[inline(never)]
fn unreachable_empty() -> ! {
    unreachable!("a Stripes has at least one shard")
}

thread_local! {
    /// This thread's index, `usize::MAX` until it first records. Constant
    /// initialised and without a destructor, so reading it is one load.
    static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Returns the index to the free list when the thread exits.
    static LEASE: Lease = const { Lease(Cell::new(None)) };
}

/// The thread indices: each live thread that has recorded holds one.
static INDICES: Indices = Indices::new();

/// Hands out the lowest index nobody holds.
struct Indices(Mutex<(BinaryHeap<Reverse<usize>>, usize)>);

impl Indices {
    const fn new() -> Self {
        Self(Mutex::new((BinaryHeap::new(), 0)))
    }

    fn take(&self) -> usize {
        let mut free = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (returned, next) = &mut *free;
        match returned.pop() {
            Some(Reverse(index)) => index,
            None => {
                *next += 1;
                *next - 1
            }
        }
    }

    fn give_back(&self, index: usize) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).0.push(Reverse(index));
    }
}

/// The calling thread's index: the lowest index no live thread holds, leased
/// the first time the thread asks.
#[inline]
pub(crate) fn thread_index() -> usize {
    let index = INDEX.with(Cell::get);
    if index != usize::MAX { index } else { lease() }
}

#[cold]
#[inline(never)]
fn lease() -> usize {
    let index = INDICES.take();
    // A thread already tearing down its thread-locals cannot register the
    // lease's release: it records under the index without keeping it.
    if LEASE.try_with(|lease| lease.0.set(Some(index))).is_ok() {
        INDEX.with(|cell| cell.set(index));
    } else {
        INDICES.give_back(index);
    }
    index
}

struct Lease(Cell<Option<usize>>);

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(index) = self.0.take() {
            // Records this thread still makes (other thread-locals'
            // destructors) keep using the index: a shard two threads share is
            // still exact, only slower.
            INDICES.give_back(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    #[test]
    fn live_threads_hold_distinct_indices_and_exited_ones_give_theirs_back() {
        let main = thread_index();
        assert_eq!(thread_index(), main, "an index is kept while the thread lives");
        let barrier = std::sync::Barrier::new(4);
        let indices: Vec<usize> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let index = thread_index();
                        barrier.wait(); // all four alive at once
                        index
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().expect("thread")).collect()
        });
        let mut distinct = indices.clone();
        distinct.push(main);
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 5, "live threads share no index: {indices:?} and {main}");
    }

    #[test]
    fn the_lowest_free_index_is_handed_out_first() {
        let indices = Indices::new();
        assert_eq!([indices.take(), indices.take(), indices.take()], [0, 1, 2]);
        indices.give_back(1);
        indices.give_back(0);
        assert_eq!([indices.take(), indices.take(), indices.take()], [0, 1, 3]);
    }

    #[test]
    fn shards_sum_to_every_increment_from_every_thread() {
        let stripes: Stripes<AtomicU64> = Stripes::with_shards(4);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        stripes.at(thread_index()).fetch_add(1, Relaxed);
                    }
                });
            }
        });
        assert_eq!(stripes.iter().map(|shard| shard.load(Relaxed)).sum::<u64>(), 80_000);
        let single: Stripes<AtomicU64> = Stripes::single();
        assert_eq!(single.local_index(), 0);
        single.at(12_345).fetch_add(1, Relaxed);
        assert_eq!(single.at(0).load(Relaxed), 1, "one shard: every index is it");
        assert_eq!(single.iter().count(), 1);
    }

    #[test]
    fn a_shard_is_a_cache_line_of_its_own() {
        assert_eq!(std::mem::align_of::<Aligned<AtomicU64>>(), 64);
        let stripes: Stripes<AtomicU64> = Stripes::with_shards(2);
        let a = stripes.at(0) as *const AtomicU64 as usize;
        let b = stripes.at(1) as *const AtomicU64 as usize;
        assert_eq!(a % 64, 0);
        assert!(a.abs_diff(b) >= 64);
    }
}
