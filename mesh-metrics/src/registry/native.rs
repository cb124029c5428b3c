//! Native (sparse, exponential) histograms, kept as client_golang keeps them.
//!
//! A bucket of schema `s` with index `k` holds the observations in
//! `(base^(k-1), base^k]`, `base = 2^(2^-s)`; values within the zero threshold
//! go to the zero bucket. Only the buckets that were observed exist.
//!
//! Observing never takes a lock. Without resets, a duration is two atomic
//! adds, as in a classic histogram: its bucket's count and its exact
//! nanosecond sum (an `f64`'s sum is a compare-and-swap, as a classic
//! histogram's is; the first observation of a bucket also claims its key).
//! Each schema has a bucket table of its own, whose keys are never moved, so
//! an observation placed at a schema stays exact in that schema's table
//! whenever its add lands. The limit strategy only lowers the schema and
//! raises the zero threshold, and a reading maps every table to the current
//! schema and puts a bucket whose own range is within the current threshold
//! in the zero bucket: an observation that raced a change is read where the
//! change puts it. A reading's count is the sum of its buckets; its sum may
//! hold an observation whose bucket it does not yet hold, as a classic
//! histogram's may.
//!
//! When an observation makes the histogram hold more buckets than its limit,
//! the histogram (under its lock, which observers do not take) first resets
//! if the configured minimum reset duration has passed since the last reset,
//! else widens the zero bucket if allowed, else halves its resolution
//! (schema - 1), as client_golang does. Memory is bounded: a table has room
//! for twice the limit (at least 512 buckets, 8 KB), there is at most one per
//! schema the histogram has been kept at (from the configured one down to
//! [`MIN_SCHEMA`]: 8 for schema 3), each allocated by its first bucket, and a
//! histogram that may reset has two generations of them. In the rare case
//! where more observations than a table holds race in new buckets at once,
//! the ones that find it full are kept aside (finished, not lost) and placed
//! once there is room.
//!
//! A reset empties the histogram, so it must know when the observations it
//! drops have finished: a histogram that may reset (a minimum reset duration
//! is set) counts observations as they start, in the same atomic word that
//! names the hot one of its two generations, as client_golang's hot and cold
//! counts do. That count is a third atomic add per observation, paid only by
//! histograms that may reset.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::nanos_sum::{Spilled, seconds, total_seconds};

/// The coarsest schema: a bucket per 16 powers of two.
pub const MIN_SCHEMA: i32 = -4;
/// The finest schema: 256 buckets per power of two.
pub const MAX_SCHEMA: i32 = 8;

/// How a native histogram is kept: see [`crate::NativeHistograms`]
/// for the settings as users give them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeConfig {
    /// The starting schema (`schema_for_factor(1.1)` is 3).
    pub schema: i32,
    /// Observations with an absolute value at or below this go to the zero
    /// bucket.
    pub zero_threshold: f64,
    /// The most buckets (positive and negative together) before the limit
    /// strategy runs.
    pub max_buckets: u32,
    /// The zero bucket may be widened up to this to stay within the limit
    /// (0: never widened).
    pub max_zero_threshold: f64,
    /// The histogram may reset itself to stay within the limit if this long
    /// has passed since its last reset (`None`: never).
    pub min_reset_duration: Option<Duration>,
}

/// Native histograms for the request duration, as the exporter's builder
/// takes them ([`ExporterBuilder::native_histograms`](crate::ExporterBuilder::native_histograms)):
/// by default a bucket factor of 1.1 (schema 3), client_golang's zero
/// threshold of 2^-128, and 160 buckets at most, then lower resolution
/// (client_golang has no limit unless one is set); native buckets only
/// unless [`keep_classic_buckets`](Self::keep_classic_buckets).
///
/// ```
/// use mesh_metrics::NativeHistograms;
/// let native = NativeHistograms::new().bucket_factor(1.1).max_buckets(100).keep_classic_buckets(true);
/// assert_eq!(native.config().schema, 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeHistograms {
    config: NativeConfig,
    factor: f64,
    classic: bool,
}

impl Default for NativeHistograms {
    fn default() -> Self {
        Self::new()
    }
}

impl NativeHistograms {
    /// The defaults above, native buckets only.
    pub fn new() -> Self {
        Self { config: NativeConfig::default(), factor: 1.1, classic: false }
    }

    /// How much wider each bucket may be than the one before (above 1):
    /// 1.1 gives schema 3, 2 gives schema 0.
    pub fn bucket_factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self.config.schema = schema_for_factor(factor);
        self
    }

    /// The most buckets a histogram keeps before it lowers its resolution.
    pub fn max_buckets(mut self, buckets: u32) -> Self {
        self.config.max_buckets = buckets;
        self
    }

    /// Observations at or below this (in absolute value) count in the zero
    /// bucket. Keep it above 0: Prometheus before 2.4x reads an empty native
    /// histogram whose zero threshold is 0 as a classic one.
    pub fn zero_threshold(mut self, threshold: f64) -> Self {
        self.config.zero_threshold = threshold;
        self
    }

    /// Lets the zero bucket widen up to this to stay within the bucket limit,
    /// before the resolution is lowered.
    pub fn max_zero_threshold(mut self, threshold: f64) -> Self {
        self.config.max_zero_threshold = threshold;
        self
    }

    /// Lets a histogram over its bucket limit reset (start again, empty, at
    /// its configured resolution) when this long has passed since its last
    /// reset, before anything else is tried. Prometheus reads a reset as a
    /// counter reset, which `rate()` handles. Zero means never, as in
    /// client_golang.
    ///
    /// A histogram that may reset pays a third atomic add per observation
    /// (two without): it counts observations as they start, so that a reset
    /// can wait for those it drops to finish before it empties them.
    pub fn min_reset_duration(mut self, every: Duration) -> Self {
        self.config.min_reset_duration = (!every.is_zero()).then_some(every);
        self
    }

    /// Keeps the classic buckets (the exporter's `buckets`) alongside. A
    /// Prometheus before 2.45 ingests such a histogram as native only.
    pub fn keep_classic_buckets(mut self, keep: bool) -> Self {
        self.classic = keep;
        self
    }

    /// How the histograms are kept.
    pub fn config(&self) -> &NativeConfig {
        &self.config
    }

    /// Whether the classic buckets are kept too.
    pub fn keeps_classic_buckets(&self) -> bool {
        self.classic
    }

    /// The settings, checked: what is wrong with them, if anything.
    pub(crate) fn check(&self) -> Result<(), String> {
        let NativeConfig { zero_threshold, max_zero_threshold, max_buckets, .. } = self.config;
        if self.factor.is_nan() || self.factor <= 1.0 || self.factor.is_infinite() {
            return Err(format!("a bucket factor is above 1 (e.g. 1.1), got {}", self.factor));
        }
        if max_buckets == 0 {
            return Err("max_buckets is at least 1 (client_golang users often use 100 to 160)".into());
        }
        for (name, value) in [("zero_threshold", zero_threshold), ("max_zero_threshold", max_zero_threshold)] {
            if !value.is_finite() || value < 0.0 {
                return Err(format!("{name} is a finite number at or above 0, got {value}"));
            }
        }
        Ok(())
    }
}

/// client_golang's `DefNativeHistogramZeroThreshold`: 2^-128.
pub const DEFAULT_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

impl Default for NativeConfig {
    fn default() -> Self {
        Self {
            schema: schema_for_factor(1.1),
            zero_threshold: DEFAULT_ZERO_THRESHOLD,
            max_buckets: 160,
            max_zero_threshold: 0.0,
            min_reset_duration: None,
        }
    }
}

/// The schema whose buckets grow by at most `factor` each (client_golang's
/// `pickSchema`): 1.1 gives 3 (a growth of 2^(1/8), about 1.09), clamped to
/// [`MIN_SCHEMA`]..=[`MAX_SCHEMA`]. A factor at or below 1 gives the finest.
pub fn schema_for_factor(factor: f64) -> i32 {
    if factor.is_nan() || factor <= 1.0 {
        return MAX_SCHEMA;
    }
    let floor = factor.log2().log2().floor();
    if floor <= -f64::from(MAX_SCHEMA) {
        MAX_SCHEMA
    } else if floor >= -f64::from(MIN_SCHEMA) {
        MIN_SCHEMA
    } else {
        -(floor as i32)
    }
}

/// `(fraction, exponent)` with `value = fraction * 2^exponent` and the
/// fraction in `[0.5, 1)`, for a positive finite value (C's `frexp`).
#[inline]
fn frexp(value: f64) -> (f64, i32) {
    let bits = value.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        let (fraction, exponent) = frexp(value * 2f64.powi(64));
        return (fraction, exponent - 64);
    }
    let fraction = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (fraction, biased - 1022)
}

/// The bounds of the fractions within one power of two, per positive schema:
/// `2^(i/2^s) / 2` for `i` in `0..2^s` (client_golang's `nativeHistogramBounds`).
static FRACTION_BOUNDS: std::sync::LazyLock<Vec<Vec<f64>>> = std::sync::LazyLock::new(|| {
    (0..=MAX_SCHEMA)
        .map(|schema| {
            let per_octave = 1i32 << schema;
            (0..per_octave).map(|i| (f64::from(i) / f64::from(per_octave)).exp2() / 2.0).collect()
        })
        .collect()
});

/// The index of the bucket holding the positive finite `value` at `schema`:
/// the `k` with `base^(k-1) < value <= base^k`.
#[inline]
pub fn bucket_index(value: f64, schema: i32) -> i32 {
    let (fraction, exponent) = frexp(value);
    if schema > 0 {
        let bounds = FRACTION_BOUNDS.get(schema as usize).map_or(&[][..], Vec::as_slice);
        let index = bounds.partition_point(|bound| *bound < fraction) as i32;
        index + (exponent - 1) * (1i32 << schema)
    } else {
        let mut key = exponent;
        if fraction == 0.5 {
            key -= 1;
        }
        let offset = (1i32 << -schema) - 1;
        (key + offset) >> -schema
    }
}

/// The upper bound of bucket `index` at `schema`: `base^index`.
pub fn upper_bound(index: i32, schema: i32) -> f64 {
    power_of_base(f64::from(index), schema)
}

/// `base^exponent` at `schema`, `base = 2^(2^-schema)`.
fn power_of_base(exponent: f64, schema: i32) -> f64 {
    2f64.powf(exponent * 2f64.powi(-schema))
}

/// A value well inside bucket `index` at `schema` (its geometric middle).
#[cfg(test)]
fn inside(index: i32, schema: i32) -> f64 {
    power_of_base(f64::from(index) - 0.5, schema)
}

/// The index at `schema - by` of the bucket `index` at `schema` falls into.
pub(crate) fn coarser(index: i32, by: i32) -> i32 {
    // ceil(index / 2^by), for either sign.
    let scale = 1i64 << by;
    (i64::from(index) + scale - 1).div_euclid(scale) as i32
}

/// A native histogram.
#[derive(Debug)]
pub struct NativeHistogram {
    /// With resets only: the top bit names the hot generation, the rest
    /// counts the observations started. Without resets, generation 0 is the
    /// only one and nothing is counted here.
    count_and_hot: AtomicU64,
    generations: [Generation; 2],
    /// The schema observations are placed at now. Lowered by the limit
    /// strategy, raised back only by a reset.
    schema: AtomicI32,
    /// The zero threshold observations are placed with now. Raised by the
    /// limit strategy, lowered back only by a reset.
    zero_threshold_bits: AtomicU64,
    /// The current table's key count past which the histogram may hold more
    /// buckets than its limit (each new key adds at most one bucket).
    check_at: AtomicU32,
    /// How often a reset found observations it drops unfinished and waited:
    /// what a test watches instead of giving a reset time to go on.
    #[cfg(test)]
    reset_waits: AtomicU64,
    control: Mutex<Control>,
    config: NativeConfig,
}

#[derive(Debug)]
struct Control {
    last_reset: Instant,
    /// The wall-clock time of the last reset: where the counts read now begin.
    reset_at: Option<SystemTime>,
    resets: u64,
    /// With resets: the observations started before the hot generation
    /// became hot.
    started_before: u64,
}

const HOT_BIT: u64 = 1 << 63;

/// Slots in a bucket table at least: more than the buckets any value range
/// has at the coarsest schema (2 × 2,100 powers of two / 16, and the sign),
/// so a histogram at [`MIN_SCHEMA`] never finds its table full.
const MIN_CAPACITY: usize = 512;

/// A table slot: `key` is 0 when free, else the bucket's signed index plus
/// a tag bit; `count` its observations.
#[derive(Debug, Default)]
struct Slot {
    key: AtomicU64,
    count: AtomicU64,
}

const TAG: u64 = 1 << 40;
const NEGATIVE: u64 = 1 << 41;

fn tag(index: i32, negative: bool) -> u64 {
    TAG | (u64::from(index as u32)) | if negative { NEGATIVE } else { 0 }
}

fn untag(key: u64) -> (i32, bool) {
    (key as u32 as i32, key & NEGATIVE != 0)
}

/// The buckets of one schema: an open-addressed table, a power of two long,
/// whose keys are never moved or freed while observers may write to them.
#[derive(Debug)]
struct Table {
    slots: Box<[Slot]>,
    /// The keys taken.
    keys: AtomicU32,
}

/// Everything observed since a generation became hot: a bucket table per
/// schema it was kept at, each allocated by its first bucket, the zero
/// bucket and the sum.
#[derive(Debug)]
struct Generation {
    /// The configured schema: no table is finer.
    finest: i32,
    /// Indexed by how far below `finest` a table's schema is.
    tables: Box<[OnceLock<Table>]>,
    zero_count: AtomicU64,
    /// The sum of the `f64` values observed.
    sum_bits: AtomicU64,
    /// The sum of the durations observed, exact in nanoseconds.
    sum_nanos: AtomicU64,
    sum_spilled: Spilled,
    /// Observations that found their table full, as `(value, count)`:
    /// finished (counted in `aside_count`) and placed in a table by the
    /// next run of the limit strategy that finds room.
    aside: Mutex<Vec<(f64, u64)>>,
    aside_count: AtomicU64,
    capacity: usize,
}

/// A reading of a native histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeSnapshot {
    /// The schema of the buckets.
    pub schema: i32,
    /// The zero bucket's threshold.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: u64,
    /// Observations in all: the zero bucket's and the buckets' counts added.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// `(index, count)` of the positive buckets, by index.
    pub positive: Vec<(i32, u64)>,
    /// `(index, count)` of the negative buckets (by absolute value), by index.
    pub negative: Vec<(i32, u64)>,
}

impl Table {
    fn new(capacity: usize) -> Self {
        Self { slots: (0..capacity).map(|_| Slot::default()).collect(), keys: AtomicU32::new(0) }
    }

    /// Adds `count` to the bucket; `Some(true)` if it created it, `None` if
    /// the table is full. The add is a release: a reader that sees it sees
    /// the sum added before it.
    #[inline]
    fn add(&self, index: i32, negative: bool, count: u64) -> Option<bool> {
        let key = tag(index, negative);
        let slots = &self.slots[..];
        let mask = slots.len() - 1;
        let mut position = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & mask;
        for _ in 0..slots.len() {
            let slot = slots.get(position)?;
            let current = slot.key.load(Ordering::Acquire);
            if current == key {
                slot.count.fetch_add(count, Ordering::Release);
                return Some(false);
            }
            if current == 0 {
                match slot.key.compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        // Before the count: once the count is added the
                        // observation is finished, and a reset may clear it.
                        self.keys.fetch_add(1, Ordering::SeqCst);
                        slot.count.fetch_add(count, Ordering::Release);
                        return Some(true);
                    }
                    Err(taken) if taken == key => {
                        slot.count.fetch_add(count, Ordering::Release);
                        return Some(false);
                    }
                    Err(_) => {}
                }
            }
            position = (position + 1) & mask;
        }
        None
    }

    /// `(index, negative, count)` of the keys taken, with a count of 0 for
    /// one whose first observation is still being added.
    fn entries(&self) -> impl Iterator<Item = (i32, bool, u64)> + '_ {
        self.slots.iter().filter_map(|slot| {
            let key = slot.key.load(Ordering::Acquire);
            let count = slot.count.load(Ordering::Acquire);
            (key != 0).then(|| {
                let (index, negative) = untag(key);
                (index, negative, count)
            })
        })
    }
}

impl Generation {
    fn new(capacity: usize, config: &NativeConfig) -> Self {
        Self {
            finest: config.schema,
            tables: (MIN_SCHEMA..=config.schema).map(|_| OnceLock::new()).collect(),
            zero_count: AtomicU64::new(0),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            sum_nanos: AtomicU64::new(0),
            sum_spilled: Spilled::default(),
            aside: Mutex::new(Vec::new()),
            aside_count: AtomicU64::new(0),
            capacity,
        }
    }

    /// The table of `schema`, allocated now if it was not.
    #[inline]
    fn table(&self, schema: i32) -> Option<&Table> {
        let slot = self.tables.get(self.finest.checked_sub(schema)? as usize)?;
        Some(slot.get_or_init(|| Table::new(self.capacity)))
    }

    /// The table of `schema` if it was ever allocated.
    fn allocated_table(&self, schema: i32) -> Option<&Table> {
        self.tables.get(self.finest.checked_sub(schema)? as usize)?.get()
    }

    /// The tables ever allocated, with their schemas.
    fn allocated(&self) -> impl Iterator<Item = (i32, &Table)> {
        (0..).zip(&self.tables).filter_map(|(below, table)| table.get().map(|table| (self.finest - below, table)))
    }

    /// Observations finished in it.
    fn finished(&self) -> u64 {
        let buckets: u64 = self.allocated().flat_map(|(_, table)| table.entries()).map(|(_, _, count)| count).sum();
        buckets + self.zero_count.load(Ordering::Acquire) + self.aside_count.load(Ordering::Acquire)
    }

    /// Adds an observation to the sum.
    #[inline]
    fn add_sum(&self, observed: Observed) {
        match observed.nanos {
            Some(nanos) => self.sum_spilled.add(&self.sum_nanos, nanos),
            None => super::cells::add_f64(&self.sum_bits, observed.value),
        }
    }

    /// The sum, in the unit of the values.
    fn sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Ordering::Acquire)) + total_seconds(self.sum_spilled.total(&self.sum_nanos))
    }

    /// Keeps `(value, count)` aside: its table is full.
    fn put_aside(&self, value: f64, count: u64) {
        let mut aside = self.aside.lock().unwrap_or_else(PoisonError::into_inner);
        aside.push((value, count));
        // Under the lock, which placing them takes too: never below zero.
        self.aside_count.fetch_add(count, Ordering::Release);
    }

    /// Empties it, keeping its tables for its next turn. Only once no
    /// observer can write to it: it is cold and its observations finished.
    fn clear(&self) {
        for (_, table) in self.allocated() {
            for slot in &table.slots {
                slot.count.store(0, Ordering::Relaxed);
                slot.key.store(0, Ordering::Relaxed);
            }
            table.keys.store(0, Ordering::Relaxed);
        }
        self.zero_count.store(0, Ordering::Relaxed);
        self.sum_bits.store(0f64.to_bits(), Ordering::Relaxed);
        self.sum_spilled.clear(&self.sum_nanos);
        self.aside.lock().unwrap_or_else(PoisonError::into_inner).clear();
        self.aside_count.store(0, Ordering::Relaxed);
    }
}

/// One observation: its value, and for a duration its nanoseconds, which
/// the sum adds exactly (and in one atomic add).
#[derive(Debug, Clone, Copy)]
struct Observed {
    value: f64,
    nanos: Option<u64>,
}

/// Where one observation goes at this schema and zero threshold.
enum Place {
    Zero,
    Bucket(i32, bool),
}

#[inline]
fn place(value: f64, schema: i32, zero_threshold: f64) -> Place {
    if value.abs() <= zero_threshold {
        Place::Zero
    } else {
        Place::Bucket(bucket_index(value.abs(), schema), value < 0.0)
    }
}

impl NativeHistogram {
    /// An empty native histogram kept as `config` says. `config` is taken as
    /// given: the schema is clamped to [`MIN_SCHEMA`]..=[`MAX_SCHEMA`],
    /// `max_buckets` is at least 1, and a zero threshold that is negative or
    /// not finite is 0. Settings users give go through
    /// [`crate::NativeHistograms`], which the exporter
    /// checks and refuses with a message instead.
    pub fn new(config: NativeConfig) -> Self {
        let config = NativeConfig {
            schema: config.schema.clamp(MIN_SCHEMA, MAX_SCHEMA),
            max_buckets: config.max_buckets.max(1),
            zero_threshold: if config.zero_threshold.is_finite() { config.zero_threshold.max(0.0) } else { 0.0 },
            ..config
        };
        let capacity = (config.max_buckets as usize * 2).max(MIN_CAPACITY).next_power_of_two();
        Self {
            count_and_hot: AtomicU64::new(0),
            generations: [Generation::new(capacity, &config), Generation::new(capacity, &config)],
            schema: AtomicI32::new(config.schema),
            zero_threshold_bits: AtomicU64::new(config.zero_threshold.to_bits()),
            check_at: AtomicU32::new(config.max_buckets),
            #[cfg(test)]
            reset_waits: AtomicU64::new(0),
            control: Mutex::new(Control { last_reset: Instant::now(), reset_at: None, resets: 0, started_before: 0 }),
            config,
        }
    }

    /// How it is kept.
    pub fn config(&self) -> &NativeConfig {
        &self.config
    }

    fn generation(&self, hot_bit: u64) -> &Generation {
        let [first, second] = &self.generations;
        if hot_bit == 0 { first } else { second }
    }

    /// The generation observations go to now.
    fn hot(&self) -> &Generation {
        self.generation(self.count_and_hot.load(Ordering::Acquire) & HOT_BIT)
    }

    fn resolution(&self) -> (i32, f64) {
        (self.schema.load(Ordering::Acquire), f64::from_bits(self.zero_threshold_bits.load(Ordering::Acquire)))
    }

    /// Records `value`. NaN and infinities are refused (they have no bucket)
    /// and `false` is returned.
    #[inline]
    pub fn observe(&self, value: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        self.observe_finite(Observed { value, nanos: None });
        true
    }

    /// Records a duration given in nanoseconds: placed as its value in
    /// seconds, summed exactly in nanoseconds.
    #[inline]
    pub fn observe_nanos(&self, nanos: u64) {
        self.observe_finite(Observed { value: seconds(nanos), nanos: Some(nanos) });
    }

    #[inline]
    fn observe_finite(&self, observed: Observed) {
        if self.record(observed) {
            self.limit(observed);
        }
    }

    /// Records a finite `value`; `true` if it made a bucket that may take the
    /// histogram over its limit (or found its table full), as only such an
    /// observation can (client_golang checks the same): the others never lock.
    ///
    /// Without resets this is two atomic adds, the sum's and the bucket's,
    /// as a classic observation is: the schema only goes down and the zero
    /// threshold only up, each table keeps one schema for good, and a reading
    /// maps every table to the current schema and threshold, so an
    /// observation placed just before a change is exact wherever it lands.
    /// A reset empties the histogram; it can only wait for the observations
    /// on the generation it drops if they were counted as they started,
    /// which is the third atomic add that resets cost.
    #[inline]
    fn record(&self, observed: Observed) -> bool {
        let value = observed.value;
        let generation = if self.config.min_reset_duration.is_some() {
            self.generation(self.count_and_hot.fetch_add(1, Ordering::Acquire) & HOT_BIT)
        } else {
            let [only, _] = &self.generations;
            only
        };
        // Relaxed: the bucket's release add below publishes it.
        generation.add_sum(observed);
        let schema = self.schema.load(Ordering::Relaxed);
        let zero_threshold = f64::from_bits(self.zero_threshold_bits.load(Ordering::Relaxed));
        match place(value, schema, zero_threshold) {
            Place::Zero => {
                generation.zero_count.fetch_add(1, Ordering::Release);
                false
            }
            Place::Bucket(index, negative) => {
                match generation.table(schema).and_then(|table| {
                    let created = table.add(index, negative, 1)?;
                    // `check_at` counts the current table's keys, so a bucket
                    // made in another (placed just before the schema went
                    // down) always checks; `check_at` is read first, so one
                    // stored for a lower schema's table comes with that
                    // schema. SeqCst, with the key count's add and `limit`'s
                    // store and load: this sees its new `check_at`, or it
                    // sees this key.
                    Some(
                        created && {
                            let check_at = self.check_at.load(Ordering::SeqCst);
                            self.schema.load(Ordering::Acquire) != schema
                                || table.keys.load(Ordering::SeqCst) > check_at
                        },
                    )
                }) {
                    Some(over) => over,
                    None => {
                        generation.put_aside(value, 1);
                        true
                    }
                }
            }
        }
    }

    /// Keeps the histogram within the bucket limit: reset, else widen the
    /// zero bucket, else halve the resolution, until it is within.
    /// `observed` is the observation that took it over; a reset records it
    /// again in the emptied histogram, as client_golang does.
    #[cold]
    fn limit(&self, observed: Observed) {
        let mut control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let generation = self.hot();
            let (schema, zero_threshold) = self.resolution();
            // The current table's keys (none if it has no table yet: a table
            // is allocated by its first bucket).
            let keys_now = || generation.allocated_table(schema).map_or(0, |table| table.keys.load(Ordering::SeqCst));
            // Read before the buckets are counted: a key taken later adds at
            // most one bucket to those counted.
            let keys = keys_now();
            let full = !self.place_aside(generation, schema, zero_threshold);
            let buckets = bucket_count(generation, schema, zero_threshold);
            let over = buckets > self.config.max_buckets as usize || full;
            // The keys the current table may take before it can be over the
            // limit (none while it is over: the next key checks again).
            let room = self.config.max_buckets.saturating_sub(u32::try_from(buckets).unwrap_or(u32::MAX));
            self.check_at.store(keys.saturating_add(if over { 0 } else { room }), Ordering::SeqCst);
            if !over {
                if keys_now() == keys {
                    return;
                }
                continue; // a key was taken meanwhile, maybe against the old `check_at`
            }
            if let Some(every) = self.config.min_reset_duration
                && control.last_reset.elapsed() >= every
            {
                self.reset(&mut control);
                // Under the lock no other reset can run, and the emptied
                // histogram cannot be over its limit with one observation.
                self.record(observed);
                return;
            }
            let closest = closest_to_zero(generation, schema, zero_threshold);
            if !full
                && zero_threshold < self.config.max_zero_threshold
                && let Some(closest) = closest
                && upper_bound(closest, schema) <= self.config.max_zero_threshold
            {
                self.zero_threshold_bits.store(upper_bound(closest, schema).to_bits(), Ordering::Release);
            } else if schema > MIN_SCHEMA {
                // A table of its own: the finer one keeps its buckets, read
                // at the coarser schema from now on.
                self.schema.store(schema - 1, Ordering::Release);
            } else {
                // At the coarsest schema every bucket fits the table, and more
                // buckets than the limit remain possible, bounded by the range
                // of values. Each new key calls again, for a reset that falls
                // due.
                return;
            }
        }
    }

    /// Places the observations kept aside in the current table; `false` if
    /// some still find it full. Under the control lock, which every reading
    /// takes: no reading sees them twice or not at all.
    fn place_aside(&self, generation: &Generation, schema: i32, zero_threshold: f64) -> bool {
        let mut aside = generation.aside.lock().unwrap_or_else(PoisonError::into_inner);
        let mut full = false;
        aside.retain(|&(value, count)| {
            let placed = match place(value, schema, zero_threshold) {
                Place::Zero => {
                    generation.zero_count.fetch_add(count, Ordering::Release);
                    true
                }
                Place::Bucket(index, negative) => {
                    generation.table(schema).and_then(|table| table.add(index, negative, count)).is_some()
                }
            };
            if placed {
                generation.aside_count.fetch_sub(count, Ordering::Release);
            }
            full |= !placed;
            !placed
        });
        !full
    }

    /// Starts again, empty, at the configured resolution: makes the other
    /// generation hot, then waits for the observations that started on the
    /// old one to finish, and empties it.
    fn reset(&self, control: &mut Control) {
        // Before the generation it empties is swapped out: every observation
        // read from now on was made at or after it.
        control.last_reset = Instant::now();
        control.reset_at = Some(SystemTime::now());
        control.resets += 1;
        self.schema.store(self.config.schema, Ordering::Relaxed);
        self.zero_threshold_bits.store(self.config.zero_threshold.to_bits(), Ordering::Relaxed);
        self.check_at.store(self.config.max_buckets, Ordering::Relaxed);
        // The release publishes the resolution above to every observation
        // that starts on the new generation.
        let swapped = self.count_and_hot.fetch_add(HOT_BIT, Ordering::AcqRel);
        let started = (swapped & !HOT_BIT) - control.started_before;
        control.started_before = swapped & !HOT_BIT;
        let old = self.generation(swapped & HOT_BIT);
        // The last observations on the old generation finish in a few
        // instructions.
        let mut spins = 0u32;
        while old.finished() < started {
            #[cfg(test)]
            self.reset_waits.fetch_add(1, Ordering::SeqCst);
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // Cold and finished: nothing writes to it until a later reset makes
        // it hot again, under this same lock, and that reset publishes the
        // emptying with its release.
        old.clear();
    }

    /// A reading: every observation that finished before this call, and
    /// maybe some being recorded. Its count is the sum of its buckets; its
    /// sum may hold an observation whose bucket it does not yet, as a classic
    /// histogram's may.
    pub fn snapshot(&self) -> NativeSnapshot {
        self.snapshot_since().0
    }

    /// A reading, with when the counts in it begin if the histogram ever
    /// reset (see [`last_reset`](Self::last_reset)), both taken at once: no
    /// reset falls between them.
    pub fn snapshot_since(&self) -> (NativeSnapshot, Option<SystemTime>) {
        let control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
        let (schema, zero_threshold) = self.resolution();
        (read(self.hot(), schema, zero_threshold), control.reset_at)
    }

    /// How many times it reset itself to stay within the bucket limit.
    pub fn resets(&self) -> u64 {
        self.control.lock().unwrap_or_else(PoisonError::into_inner).resets
    }

    /// When it last reset itself, if it ever did: its counts begin there (a
    /// cumulative reading's start time is the later of this and its series'
    /// creation).
    pub fn last_reset(&self) -> Option<SystemTime> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner).reset_at
    }
}

/// Places every key of a generation at `schema` and `zero_threshold`, and
/// the observations kept aside: `each(bucket, count)`, where the bucket is
/// `(index, negative)` at `schema`, or `None` for the zero bucket. A key is
/// read in the zero bucket if its own bucket, at its table's schema, is
/// within the threshold (checked before it is mapped to a coarser schema, so
/// a bucket a widening folded stays folded), else mapped to `schema`: no
/// table is finer than the configured schema or coarser than `schema`. A key
/// whose first observation is still being added comes with a count of 0.
fn place_all(
    generation: &Generation,
    schema: i32,
    zero_threshold: f64,
    mut each: impl FnMut(Option<(i32, bool)>, u64),
) {
    for (table_schema, table) in generation.allocated() {
        debug_assert!(table_schema >= schema, "a table finer than the schema it is read at");
        for (index, negative, count) in table.entries() {
            if upper_bound(index, table_schema) <= zero_threshold {
                each(None, count);
            } else {
                each(Some((coarser(index, table_schema - schema), negative)), count);
            }
        }
    }
    for &(value, count) in generation.aside.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        match place(value, schema, zero_threshold) {
            Place::Zero => each(None, count),
            Place::Bucket(index, negative) => each(Some((index, negative)), count),
        }
    }
}

/// How many buckets a reading at `schema` and `zero_threshold` would show,
/// counting those whose first observation is still being added.
fn bucket_count(generation: &Generation, schema: i32, zero_threshold: f64) -> usize {
    let mut buckets = std::collections::BTreeSet::new();
    place_all(generation, schema, zero_threshold, |bucket, _| {
        if let Some(bucket) = bucket {
            buckets.insert(bucket);
        }
    });
    buckets.len()
}

/// The index of the bucket closest to zero (either sign), if any.
fn closest_to_zero(generation: &Generation, schema: i32, zero_threshold: f64) -> Option<i32> {
    let mut closest = None;
    place_all(generation, schema, zero_threshold, |bucket, _| {
        if let Some((index, _)) = bucket {
            closest = Some(closest.map_or(index, |closest: i32| closest.min(index)));
        }
    });
    closest
}

/// Reads a generation at `schema` and `zero_threshold` (see [`place_all`]).
fn read(generation: &Generation, schema: i32, zero_threshold: f64) -> NativeSnapshot {
    let mut zero_count = generation.zero_count.load(Ordering::Acquire);
    let mut positive = std::collections::BTreeMap::new();
    let mut negative = std::collections::BTreeMap::new();
    place_all(generation, schema, zero_threshold, |bucket, count| match bucket {
        None => zero_count += count,
        Some(_) if count == 0 => {} // not observed yet
        Some((index, is_negative)) => {
            *(if is_negative { &mut negative } else { &mut positive }).entry(index).or_insert(0u64) += count;
        }
    });
    // After the buckets: the sum holds at least the observations they hold.
    let sum = generation.sum();
    let count = zero_count + positive.values().sum::<u64>() + negative.values().sum::<u64>();
    NativeSnapshot {
        schema,
        zero_threshold,
        zero_count,
        count,
        sum,
        positive: positive.into_iter().collect(),
        negative: negative.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_buckets: u32) -> NativeConfig {
        NativeConfig { max_buckets, ..NativeConfig::default() }
    }

    #[test]
    fn fraction_bounds_are_client_golangs_within_one_ulp() {
        // client_golang's nativeHistogramBounds for schemas 1 to 3. Its
        // constants are not all correctly rounded (2^(1/2)/2 is
        // 0.7071067811865476 to the nearest f64, it has ...475); ours are
        // exp2's, within one unit in the last place of them.
        let golang: [&[f64]; 3] = [
            &[0.5, 0.7071067811865475],
            &[0.5, 0.5946035575013605, 0.7071067811865475, 0.8408964152537144],
            &[
                0.5,
                0.5452538663326288,
                0.5946035575013605,
                0.6484197773255048,
                0.7071067811865475,
                0.7711054127039704,
                0.8408964152537144,
                0.9170040432046711,
            ],
        ];
        for (schema, bounds) in (1..).zip(golang) {
            let ours = &FRACTION_BOUNDS[schema];
            assert_eq!(ours.len(), bounds.len());
            for (ours, theirs) in ours.iter().zip(bounds) {
                assert!(ours.to_bits().abs_diff(theirs.to_bits()) <= 1, "schema {schema}: {ours} against {theirs}");
            }
        }
    }

    #[test]
    fn a_full_table_keeps_observations_aside_and_places_them() {
        let histogram = NativeHistogram::new(config(1_000));
        // Fill schema 3's table (2,048 slots for a limit of 1,000) with
        // buckets from 2^125 up, straight through the table, as observers
        // racing past the limit would.
        let [generation, _] = &histogram.generations;
        let table = generation.table(3).expect("schema 3's table");
        let capacity = table.slots.len();
        assert_eq!(capacity, 2_048);
        for key in 0..capacity as i32 {
            assert_eq!(table.add(1_000 + key, false, 1), Some(true));
        }
        assert!(histogram.observe(3.0), "an observation that finds the table full is kept, not lost");
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, capacity as u64 + 1);
        assert_eq!(snapshot.zero_count, 0);
        // 2,049 buckets at schema 3, 1,025 at 2, 513 at 1: within 1,000.
        assert_eq!(snapshot.schema, 1, "a full table lowers the resolution: the next table has room");
        let three = bucket_index(3.0, 1);
        assert_eq!(snapshot.positive.iter().find(|(index, _)| *index == three), Some(&(three, 1)));
        assert_eq!(generation.aside_count.load(Ordering::Relaxed), 0, "placed in a coarser table");
    }

    #[test]
    fn a_histogram_nobody_observes_allocates_no_table() {
        let histogram = NativeHistogram::new(NativeConfig::default());
        let tables = |histogram: &NativeHistogram| {
            histogram
                .generations
                .iter()
                .flat_map(|generation| generation.tables.iter())
                .filter(|t| t.get().is_some())
                .count()
        };
        histogram.observe(0.0); // the zero bucket needs no table
        let snapshot = histogram.snapshot();
        assert_eq!((snapshot.count, snapshot.zero_count), (1, 1));
        assert_eq!(tables(&histogram), 0, "no table for no bucket");
        histogram.observe(1.0);
        assert_eq!(histogram.snapshot().count, 2);
        assert_eq!(tables(&histogram), 1);
    }

    #[test]
    fn an_observation_placed_before_a_change_of_resolution_is_read_where_the_change_puts_it() {
        // What an observer that read the schema and threshold just before the
        // limit strategy changed them does: its add lands in the old table.
        let histogram =
            NativeHistogram::new(NativeConfig { max_buckets: 4, max_zero_threshold: 0.01, ..NativeConfig::default() });
        let [generation, _] = &histogram.generations;
        for value in [0.001, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0] {
            histogram.observe(value);
        }
        let changed = histogram.snapshot();
        assert!(changed.schema < 3 && changed.zero_threshold > 0.001, "widened, then halved: {changed:?}");
        // Late adds at schema 3 with the first threshold: 0.00101 (in 0.001's
        // bucket, now within the zero bucket) and 3.0 (in a coarser bucket now).
        let table = generation.table(3).expect("schema 3's table");
        for value in [0.00101, 3.0] {
            super::super::cells::add_f64(&generation.sum_bits, value);
            table.add(bucket_index(value, 3), false, 1).expect("room");
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 9);
        assert_eq!(snapshot.zero_count, changed.zero_count + 1, "0.00101 is within {}", snapshot.zero_threshold);
        let mut expected = std::collections::BTreeMap::new();
        for value in [1.0, 2.0, 3.0, 4.0, 8.0, 16.0, 32.0] {
            *expected.entry(bucket_index(value, snapshot.schema)).or_insert(0u64) += 1;
        }
        assert_eq!(snapshot.positive, expected.into_iter().collect::<Vec<_>>(), "every value in its bucket now");
    }

    #[test]
    fn the_default_zero_threshold_is_2_to_the_minus_128() {
        assert_eq!(DEFAULT_ZERO_THRESHOLD, 2f64.powi(-128));
    }

    #[test]
    fn schemas_from_factors_are_client_golangs() {
        assert_eq!(schema_for_factor(1.1), 3);
        assert_eq!(schema_for_factor(2.0), 0);
        assert_eq!(schema_for_factor(4.0), -1);
        assert_eq!(schema_for_factor(1.0001), MAX_SCHEMA);
        assert_eq!(schema_for_factor(1e300), MIN_SCHEMA);
        assert_eq!(schema_for_factor(0.5), MAX_SCHEMA);
    }

    #[test]
    fn bucket_bounds_are_inclusive_above_and_exclusive_below() {
        for schema in MIN_SCHEMA..=MAX_SCHEMA {
            for index in [-40, -3, -1, 0, 1, 2, 7, 8, 9, 100] {
                let upper = upper_bound(index, schema);
                let lower = upper_bound(index - 1, schema);
                if !upper.is_finite() || lower == 0.0 {
                    continue; // past the range of f64 at this schema
                }
                assert_eq!(bucket_index(inside(index, schema), schema), index, "inside, schema {schema}");
                if schema <= 0 || index % (1 << schema) == 0 {
                    // Exact powers of two: the bound itself is in the bucket.
                    assert_eq!(bucket_index(upper, schema), index, "upper bound {upper}, schema {schema}");
                    assert_eq!(bucket_index(lower, schema), index - 1, "lower bound {lower}, schema {schema}");
                }
            }
        }
        // Prometheus' own examples: schema 0, 1 is bucket 0, 1.5 and 2 bucket 1.
        assert_eq!([bucket_index(1.0, 0), bucket_index(1.5, 0), bucket_index(2.0, 0)], [0, 1, 1]);
        assert_eq!(bucket_index(f64::MIN_POSITIVE / 4.0, 0), -1024, "subnormals have buckets too");
    }

    #[test]
    fn a_snapshot_is_every_observation_placed_once() {
        let histogram = NativeHistogram::new(NativeConfig::default());
        for value in [0.0, 1.0, 1.05, 2.0, -3.0, 1e-40, 0.0015] {
            assert!(histogram.observe(value));
        }
        assert!(!histogram.observe(f64::NAN));
        assert!(!histogram.observe(f64::INFINITY));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.schema, 3);
        assert_eq!(snapshot.count, 7);
        assert_eq!(snapshot.zero_count, 2, "0 and 1e-40 are within 2^-128");
        assert!((snapshot.sum - (1.0 + 1.05 + 2.0 - 3.0 + 1e-40 + 0.0015)).abs() < 1e-12);
        assert_eq!(snapshot.positive, vec![(bucket_index(0.0015, 3), 1), (0, 1), (1, 1), (8, 1)]);
        assert_eq!(snapshot.negative, vec![(bucket_index(3.0, 3), 1)]);
        // Reading again changes nothing.
        assert_eq!(histogram.snapshot(), snapshot);
        histogram.observe(1.0);
        let again = histogram.snapshot();
        assert_eq!((again.count, again.positive.get(1)), (8, Some(&(0, 2))));
    }

    #[test]
    fn past_the_bucket_limit_the_resolution_halves_and_nothing_is_lost() {
        let histogram = NativeHistogram::new(config(20));
        let values: Vec<f64> = (1..=200).map(|i| 1.0 + f64::from(i) * 0.05).collect();
        for value in &values {
            histogram.observe(*value);
        }
        let snapshot = histogram.snapshot();
        assert!(snapshot.schema < 3, "the schema went down from 3 to {}", snapshot.schema);
        assert!(snapshot.positive.len() <= 20, "{} buckets", snapshot.positive.len());
        assert_eq!(snapshot.count, 200);
        // Every value is in the bucket the final schema puts it in.
        let mut expected = std::collections::BTreeMap::new();
        for value in &values {
            *expected.entry(bucket_index(*value, snapshot.schema)).or_insert(0u64) += 1;
        }
        assert_eq!(snapshot.positive, expected.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn past_the_limit_the_zero_bucket_widens_first_when_allowed() {
        let histogram =
            NativeHistogram::new(NativeConfig { max_buckets: 3, max_zero_threshold: 0.01, ..NativeConfig::default() });
        for value in [0.001, 0.002, 1.0, 2.0] {
            histogram.observe(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.schema, 3, "widening the zero bucket was enough");
        assert_eq!(snapshot.zero_threshold, upper_bound(bucket_index(0.001, 3), 3));
        assert_eq!((snapshot.zero_count, snapshot.count), (1, 4));
        // Then past the widest zero bucket: the resolution halves, and what
        // the zero bucket took stays in it (a bucket mapped to a coarser
        // schema has a higher bound, but its observations are no larger).
        for value in [4.0, 8.0, 16.0, 32.0] {
            histogram.observe(value);
        }
        let halved = histogram.snapshot();
        assert!(halved.schema < 3, "{halved:?}");
        let within = [0.001, 0.002, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0].iter().filter(|v| **v <= halved.zero_threshold);
        assert_eq!((halved.zero_count, halved.count), (within.count() as u64, 8), "{halved:?}");
        assert!(halved.zero_count >= snapshot.zero_count);
    }

    #[test]
    fn what_the_zero_bucket_took_stays_in_it_when_the_resolution_halves() {
        // The widest zero bucket takes 0.001's bucket at schema 3 (up to
        // 0.00106) and no more: at a coarser schema that bucket maps into one
        // reaching above 0.0011, yet 0.001 stays in the zero bucket.
        let histogram = NativeHistogram::new(NativeConfig {
            max_buckets: 4,
            max_zero_threshold: 0.0011,
            ..NativeConfig::default()
        });
        for value in [0.001, 1.0, 2.0, 4.0, 8.0] {
            histogram.observe(value);
        }
        let widened = histogram.snapshot();
        assert_eq!((widened.schema, widened.zero_count), (3, 1), "{widened:?}");
        for value in [16.0, 32.0, 64.0] {
            histogram.observe(value);
        }
        let halved = histogram.snapshot();
        assert!(halved.schema < 3, "{halved:?}");
        assert_eq!((halved.zero_count, halved.zero_threshold), (1, widened.zero_threshold), "{halved:?}");
        assert_eq!(halved.count, 8);
    }

    #[test]
    fn past_the_limit_it_resets_once_the_minimum_duration_has_passed() {
        let histogram = NativeHistogram::new(NativeConfig {
            max_buckets: 2,
            min_reset_duration: Some(Duration::ZERO),
            ..NativeConfig::default()
        });
        for value in [1.0, 2.0, 4.0] {
            histogram.observe(value);
        }
        assert_eq!(histogram.resets(), 1);
        assert!(histogram.last_reset().is_some_and(|at| at <= SystemTime::now()));
        let snapshot = histogram.snapshot();
        assert_eq!((snapshot.schema, snapshot.count), (3, 1), "a reset starts over with its trigger: {snapshot:?}");
        assert_eq!(snapshot.positive, vec![(16, 1)], "4.0, the observation that took it over the limit");
        histogram.observe(8.0);
        assert_eq!(histogram.snapshot().count, 2, "and counts again after it");
    }

    #[test]
    fn concurrent_observers_and_readers_lose_nothing() {
        concurrent_observers_and_readers(config(30));
    }

    #[test]
    fn concurrent_observers_and_readers_lose_nothing_where_resets_are_allowed() {
        // The count-as-they-start path, with no reset due within the test.
        concurrent_observers_and_readers(NativeConfig {
            min_reset_duration: Some(Duration::from_secs(3600)),
            ..config(30)
        });
    }

    fn concurrent_observers_and_readers(config: NativeConfig) {
        let histogram = NativeHistogram::new(config);
        let done = std::sync::atomic::AtomicBool::new(false);
        // Halfway, the writers pause while the main thread reads: every one of
        // the 100,000 observations made so far is in that reading.
        let (halfway, resume) = (std::sync::Barrier::new(5), std::sync::Barrier::new(5));
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let (mut last, mut last_schema) = (0, MAX_SCHEMA);
                // At least one read, however late this thread starts.
                loop {
                    let finished = done.load(Ordering::Relaxed);
                    let snapshot = histogram.snapshot();
                    assert!(snapshot.count >= last, "the count went down: {last} -> {}", snapshot.count);
                    assert!(snapshot.schema <= last_schema, "the schema went up: {last_schema} -> {}", snapshot.schema);
                    (last, last_schema) = (snapshot.count, snapshot.schema);
                    if finished {
                        break;
                    }
                }
            });
            let writers: Vec<_> = (0..4)
                .map(|thread| {
                    let (histogram, halfway, resume) = (&histogram, &halfway, &resume);
                    scope.spawn(move || {
                        for i in 0..50_000u32 {
                            if i == 25_000 {
                                halfway.wait();
                                resume.wait();
                            }
                            let value = f64::from(i % 1000 + 1) * 1e-3 * if thread % 2 == 0 { 1.0 } else { -1.0 };
                            histogram.observe(value);
                        }
                    })
                })
                .collect();
            halfway.wait();
            let midway = histogram.snapshot();
            resume.wait();
            assert_eq!(midway.count, 100_000, "a reading between writes has every observation made before it");
            for writer in writers {
                writer.join().expect("writer");
            }
            done.store(true, Ordering::Relaxed);
            reader.join().expect("reader");
        });
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 200_000);
        assert!(snapshot.positive.len() + snapshot.negative.len() <= 30, "{snapshot:?}");
        assert!(snapshot.sum.abs() < 1e-6, "the signs cancel: {}", snapshot.sum);
        // Every observation in the bucket the final schema puts it in, whatever
        // schema it was placed at while the resolution went down: each value
        // 1..=1,000 thousandths, 50 times by each of two threads per sign.
        let mut expected = std::collections::BTreeMap::new();
        for value in 1..=1000 {
            *expected.entry(bucket_index(f64::from(value) * 1e-3, snapshot.schema)).or_insert(0u64) += 100;
        }
        let expected: Vec<(i32, u64)> = expected.into_iter().collect();
        assert_eq!((&snapshot.positive, &snapshot.negative), (&expected, &expected));
        assert_eq!(snapshot.zero_count, 0);
    }

    #[test]
    fn resets_under_concurrent_observers_drop_only_what_started_before_them() {
        // Values over about 80 buckets against a limit of 20: the histogram
        // resets again and again while 4 threads observe and one reads.
        let histogram = NativeHistogram::new(NativeConfig {
            max_buckets: 20,
            min_reset_duration: Some(Duration::ZERO),
            ..NativeConfig::default()
        });
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                loop {
                    let finished = done.load(Ordering::Relaxed);
                    let snapshot = histogram.snapshot();
                    assert!(snapshot.negative.is_empty() && snapshot.zero_count == 0, "{snapshot:?}");
                    if finished {
                        break;
                    }
                }
            });
            let writers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        for i in 0..50_000u32 {
                            histogram.observe(f64::from(i % 1000 + 1) * 1e-3);
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.join().expect("writer");
            }
            done.store(true, Ordering::Relaxed);
            reader.join().expect("reader");
        });
        assert!(histogram.resets() > 1, "{} resets", histogram.resets());
        // Every observation has finished: the hot generation holds exactly
        // those that started on it, and a sum that fits its buckets.
        let started = histogram.count_and_hot.load(Ordering::Relaxed) & !HOT_BIT;
        let before = histogram.control.lock().expect("control").started_before;
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, started - before, "{snapshot:?}");
        let low: f64 = snapshot.positive.iter().map(|&(i, n)| upper_bound(i - 1, snapshot.schema) * n as f64).sum();
        let high: f64 = snapshot.positive.iter().map(|&(i, n)| upper_bound(i, snapshot.schema) * n as f64).sum();
        assert!(low <= snapshot.sum && snapshot.sum <= high, "{low} <= {} <= {high}", snapshot.sum);
    }

    #[test]
    fn a_reset_waits_for_the_observations_it_drops_to_finish() {
        let histogram = NativeHistogram::new(NativeConfig {
            max_buckets: 1,
            min_reset_duration: Some(Duration::ZERO),
            ..NativeConfig::default()
        });
        histogram.observe(1.0);
        // An observation that has started on the hot generation and not yet
        // added its bucket.
        let started = histogram.count_and_hot.fetch_add(1, Ordering::Acquire);
        let unfinished = histogram.generation(started & HOT_BIT);
        let reset = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let resetter = scope.spawn(|| {
                histogram.observe(2.0); // a second bucket: over the limit of 1
                reset.store(true, Ordering::SeqCst);
            });
            // Until the reset is seen waiting, it must not have gone on; once
            // it waits, it cannot go on before this observation finishes.
            while histogram.reset_waits.load(Ordering::SeqCst) == 0 {
                assert!(!reset.load(Ordering::SeqCst), "the reset went on before an observation it drops had finished");
                std::thread::yield_now();
            }
            assert!(!reset.load(Ordering::SeqCst), "the reset went on before an observation it drops had finished");
            assert_eq!(unfinished.finished(), 2, "the generation it drops was emptied while being written to");
            unfinished.zero_count.fetch_add(1, Ordering::Release); // it finishes
            resetter.join().expect("resetter");
        });
        assert_eq!(unfinished.finished(), 0, "emptied once every observation on it had finished");
        assert_eq!(histogram.resets(), 1);
        let snapshot = histogram.snapshot();
        assert_eq!((snapshot.count, snapshot.positive.len()), (1, 1), "the trigger, recorded again: {snapshot:?}");
    }

    #[test]
    fn durations_sum_exactly_in_nanoseconds_beside_f64_values() {
        let histogram = NativeHistogram::new(NativeConfig::default());
        // Ten 0.1 s durations: 1 s exactly, where adding ten `f64` 0.1s gives
        // 0.9999999999999999.
        for _ in 0..10 {
            histogram.observe_nanos(100_000_000);
        }
        assert_eq!(histogram.snapshot().sum, 1.0);
        histogram.observe(0.25);
        let snapshot = histogram.snapshot();
        assert_eq!((snapshot.count, snapshot.sum), (11, 1.25));
        let tenth = bucket_index(0.1, 3);
        assert_eq!(snapshot.positive.iter().find(|(index, _)| *index == tenth), Some(&(tenth, 10)));
        assert!(histogram.last_reset().is_none(), "never reset");
    }
}
