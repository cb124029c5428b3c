//! mesh-metrics' own process-wide registry: families, their series, and the
//! atomics behind them.
//!
//! It exists before any exporter is installed (a `LazyLock`), so no call is
//! lost to start-up order. Registration takes a lock; recording never does:
//! callers hold an `Arc` to the series they record into. Nothing here knows
//! about HTTP or exposition formats.

mod cells;
mod layout;
mod nanos_sum;
pub mod native;
mod series;
mod snapshot;
mod stripes;

#[cfg(test)]
mod guard_tests;

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

pub use cells::{Counter, Entered, Gauge, Histogram, InFlight};
pub use layout::{DEFAULT_BUCKETS, Layout};
pub use series::{LabelValues, Series};
pub use snapshot::{FamilySnapshot, SeriesSnapshot, Snapshot, ValueSnapshot};
pub(crate) use stripes::thread_index;
pub use stripes::{MAX_SHARDS, shard_count};

use crate::Error;
use crate::guard::{self, CardinalityPolicy, Folds};

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonic counter.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A fixed-bucket histogram.
    Histogram,
}

impl MetricKind {
    /// The name used in `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// What a family is: the part that must agree every time it is registered.
#[derive(Debug, Clone)]
pub struct Descriptor {
    /// The metric name.
    pub name: Cow<'static, str>,
    /// The HELP text.
    pub help: Cow<'static, str>,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The label names, in exposition order.
    pub label_names: Cow<'static, [&'static str]>,
    /// The unit (`seconds`, `bytes`, ...), a suffix of the name; OpenMetrics
    /// exposes it as `# UNIT`.
    pub unit: Option<Cow<'static, str>>,
}

/// The value cell of one series.
#[derive(Debug)]
pub enum Cell {
    /// See [`Counter`].
    Counter(Counter),
    /// See [`Gauge`].
    Gauge(Gauge),
    /// See [`InFlight`].
    InFlight(InFlight),
    /// See [`Histogram`].
    Histogram(Histogram),
}

/// A metric family: its descriptor and its series in registration order.
#[derive(Debug)]
pub struct Family {
    descriptor: Descriptor,
    layout: RwLock<Arc<Layout>>,
    /// Buckets declared with the metric: the exporter's layouts leave them be.
    fixed_layout: bool,
    series: RwLock<SeriesTable>,
    /// The guard's limit for this family (`usize::MAX`: none) and label value
    /// length, resolved from the policy whenever it changes.
    limit: AtomicUsize,
    max_value_bytes: AtomicUsize,
    folds: Folds,
    expires: AtomicBool,
    /// Its label sets are bounded at compile time (call sites, all-enum label
    /// sets): the guard neither limits nor truncates it.
    bounded: AtomicBool,
}

/// The admitted series, indexed by a hash of their label values so that a
/// lookup allocates nothing, and the overflow series once needed.
#[derive(Debug, Default)]
struct SeriesTable {
    hasher: RandomState,
    /// Positions in `list`, by the hash of the label values: 4 bytes a series.
    index: hashbrown::HashTable<u32>,
    list: Vec<Arc<Series>>,
    overflow: Option<Arc<Series>>,
}

impl Family {
    /// The descriptor it was registered with.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The series with these label values, created at zero if new.
    ///
    /// Values are given in the family's label-name order; a wrong number of
    /// values is an error, never a panic. Values longer than the guard's limit
    /// are truncated. Once the family holds as many label sets as the guard
    /// admits, a new label set gets the overflow series instead (see
    /// [`crate::guard`]): its measurements still count, under
    /// `otel_metric_overflow="true"`.
    pub fn series(&self, values: &[&str], make: impl FnOnce(&Arc<Layout>) -> Cell) -> Result<Arc<Series>, Error> {
        if values.len() != self.descriptor.label_names.len() {
            return Err(Error::LabelCount {
                metric: self.descriptor.name.to_string(),
                expected: self.descriptor.label_names.len(),
                got: values.len(),
            });
        }
        let max = self.max_value_bytes.load(Ordering::Relaxed);
        let truncated: Vec<&str>;
        let values = if values.iter().any(|v| v.len() > max) {
            truncated = values.iter().map(|v| guard::truncate(v, max)).collect();
            &truncated[..]
        } else {
            values
        };
        let limit = self.limit.load(Ordering::Relaxed);
        {
            let table = read(&self.series);
            let hash = table.hash(values.iter().copied());
            if let Some(found) = table.get(hash, values) {
                self.touch(found);
                return Ok(found.clone());
            }
            if table.list.len() >= limit
                && let Some(overflow) = &table.overflow
            {
                self.fold(limit);
                return Ok(overflow.clone());
            }
        }
        let mut table = write(&self.series);
        let hash = table.hash(values.iter().copied());
        if let Some(found) = table.get(hash, values) {
            self.touch(found);
            return Ok(found.clone());
        }
        let layout = read(&self.layout).clone();
        if table.list.len() >= limit {
            self.fold(limit);
            let overflow = table
                .overflow
                .get_or_insert_with(|| Arc::new(Series::new(&[guard::OVERFLOW_LABEL.1], true, 0, make(&layout))));
            return Ok(overflow.clone());
        }
        let series = Arc::new(Series::new(values, false, tick(), make(&layout)));
        table.insert(hash, series.clone());
        Ok(series)
    }

    /// A series with this family's layout that is not in the family: what a
    /// caller records into when a lookup failed, so that it never panics.
    pub(crate) fn detached(&self, make: impl FnOnce(&Arc<Layout>) -> Cell) -> Arc<Series> {
        let layout = read(&self.layout).clone();
        Arc::new(Series::new::<&str>(&[], false, 0, make(&layout)))
    }

    /// A copy of the current series list (cheap: `Arc` clones), the overflow
    /// series last, so a scrape never holds the lock while it formats.
    pub fn series_list(&self) -> Vec<Arc<Series>> {
        let table = read(&self.series);
        let mut list = Vec::with_capacity(table.list.len() + 1);
        list.extend(table.list.iter().cloned());
        list.extend(table.overflow.iter().cloned());
        list
    }

    /// Removes every series: for a collector whose source can no longer be
    /// read, so that what it read last is not served as current.
    pub(crate) fn clear(&self) {
        let mut table = write(&self.series);
        table.list.clear();
        table.index.clear();
        table.overflow = None;
    }

    /// How many label sets the guard admitted (the overflow series not counted).
    pub fn admitted(&self) -> usize {
        read(&self.series).list.len()
    }

    /// How many registrations or lookups went to the overflow series.
    pub fn folded(&self) -> u64 {
        self.folds.total()
    }

    pub(crate) fn unpublished_folds(&self) -> u64 {
        self.folds.unpublished()
    }

    /// Lets series that no one holds and no one has looked up for the
    /// registry's idle timeout be removed, freeing their slot in the guard.
    /// For families with unbounded labels; the fixed series of
    /// `#[instrumented]` call sites never expire.
    pub fn expire_idle_series(&self, expire: bool) {
        self.expires.store(expire, Ordering::Relaxed);
    }

    fn apply(&self, policy: &CardinalityPolicy) {
        if self.bounded.load(Ordering::Relaxed) {
            self.limit.store(usize::MAX, Ordering::Relaxed);
            self.max_value_bytes.store(usize::MAX, Ordering::Relaxed);
            return;
        }
        let limit = match policy.limit(&self.descriptor.name) {
            guard::Limit::Series(limit) => limit,
            guard::Limit::Unlimited => usize::MAX,
        };
        self.limit.store(limit, Ordering::Relaxed);
        self.max_value_bytes.store(policy.label_value_bytes_for(&self.descriptor.name), Ordering::Relaxed);
    }

    /// Whether the guard leaves this family alone (see [`Registry::bounded_family`]).
    pub fn is_bounded(&self) -> bool {
        self.bounded.load(Ordering::Relaxed)
    }

    #[inline]
    fn touch(&self, series: &Series) {
        if self.expires.load(Ordering::Relaxed) {
            series.touch(tick());
        }
    }

    fn fold(&self, limit: usize) {
        if self.folds.fold() {
            guard::warn_first_fold(&self.descriptor.name, limit);
        }
    }

    /// Removes series idle since before tick `oldest` that nothing but the
    /// table holds (a held handle keeps its series, so no increment is lost).
    fn expire(&self, oldest: u32) -> usize {
        if !self.expires.load(Ordering::Relaxed) {
            return 0;
        }
        // Held only by the table's list: nobody records into it.
        let idle = |series: &Arc<Series>| series.last_used() < oldest && Arc::strong_count(series) == 1;
        let mut table = write(&self.series);
        if !table.list.iter().any(idle) {
            return 0;
        }
        let before = table.list.len();
        let kept: Vec<Arc<Series>> = table.list.drain(..).filter(|series| !idle(series)).collect();
        table.index.clear();
        for series in kept {
            let hash = table.hash(series.labels());
            table.insert(hash, series);
        }
        before - table.list.len()
    }
}

impl SeriesTable {
    fn hash<'a>(&self, values: impl IntoIterator<Item = &'a str>) -> u64 {
        hash_with(&self.hasher, values)
    }

    fn get(&self, hash: u64, values: &[&str]) -> Option<&Arc<Series>> {
        let position = self.index.find(hash, |p| self.list.get(*p as usize).is_some_and(|s| s.has_labels(values)))?;
        self.list.get(*position as usize)
    }

    fn insert(&mut self, hash: u64, series: Arc<Series>) {
        let position = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
        self.list.push(series);
        let Self { hasher, index, list, .. } = self;
        // A resize re-hashes every entry from its label values.
        let rehash = |p: &u32| hash_with(hasher, list.get(*p as usize).map(|s| s.labels()).into_iter().flatten());
        index.insert_unique(hash, position, rehash);
    }
}

fn hash_with<'a>(hasher: &RandomState, values: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut state = hasher.build_hasher();
    for value in values {
        state.write(value.as_bytes());
        // 0xFF never occurs in UTF-8: ("ab", "c") and ("a", "bc") differ.
        state.write_u8(0xFF);
    }
    state.finish()
}

/// The registry's coarse clock: advanced once per exporter upkeep, read by
/// lookups in families whose idle series expire.
static TICKS: AtomicU32 = AtomicU32::new(1);

fn tick() -> u32 {
    TICKS.load(Ordering::Relaxed)
}

/// The process-wide registry.
#[derive(Debug)]
pub struct Registry {
    families: RwLock<Vec<Arc<Family>>>,
    layouts: RwLock<Layouts>,
    policy: RwLock<Arc<CardinalityPolicy>>,
    /// Ticks a series of an expiring family may stay idle (0: never expire).
    idle_ticks: AtomicU32,
}

#[derive(Debug)]
struct Layouts {
    default: Arc<Layout>,
    per_metric: HashMap<String, Arc<Layout>>,
}

impl Layouts {
    fn for_metric(&self, name: &str) -> Arc<Layout> {
        self.per_metric.get(name).unwrap_or(&self.default).clone()
    }
}

static GLOBAL: LazyLock<Registry> = LazyLock::new(Registry::new);

/// The process-wide registry that `#[instrumented]` and the exporter use.
pub fn global() -> &'static Registry {
    &GLOBAL
}

impl Registry {
    /// An empty registry with the guide's default latency buckets.
    pub fn new() -> Self {
        Self {
            families: RwLock::new(Vec::new()),
            layouts: RwLock::new(Layouts { default: Arc::new(Layout::default_latency()), per_metric: HashMap::new() }),
            policy: RwLock::new(Arc::new(CardinalityPolicy::default())),
            idle_ticks: AtomicU32::new(0),
        }
    }

    /// The family described by `descriptor`, registered if new. Registering
    /// the same name with a different type or label names is an error.
    pub fn family(&self, descriptor: &Descriptor) -> Result<Arc<Family>, Error> {
        self.family_with_layout(descriptor, None)
    }

    /// [`family`](Self::family) for a histogram whose bucket layout is part
    /// of its declaration: the family keeps `layout` whatever the exporter
    /// configures, and registering it again with other buckets is an error.
    pub fn family_with_layout(&self, descriptor: &Descriptor, layout: Option<Layout>) -> Result<Arc<Family>, Error> {
        check_names(descriptor)?;
        let existing = |found: &Arc<Family>| {
            check_same(found, descriptor)?;
            match &layout {
                Some(wanted) if **read(&found.layout) != *wanted => Err(Error::Conflict {
                    metric: descriptor.name.to_string(),
                    registered: format!("buckets {:?}", read(&found.layout).bounds()),
                    requested: format!("buckets {:?}", wanted.bounds()),
                }),
                _ => Ok(found.clone()),
            }
        };
        if let Some(found) = self.find(&descriptor.name) {
            return existing(&found);
        }
        let mut families = write(&self.families);
        if let Some(found) = families.iter().find(|f| f.descriptor.name == descriptor.name) {
            return existing(found);
        }
        let fixed_layout = layout.is_some();
        let layout = match layout {
            Some(layout) => Arc::new(layout),
            None => read(&self.layouts).for_metric(&descriptor.name),
        };
        let family = Arc::new(Family {
            descriptor: descriptor.clone(),
            layout: RwLock::new(layout),
            fixed_layout,
            series: RwLock::new(SeriesTable::default()),
            limit: AtomicUsize::new(0),
            max_value_bytes: AtomicUsize::new(0),
            folds: Folds::default(),
            expires: AtomicBool::new(false),
            bounded: AtomicBool::new(false),
        });
        family.apply(&read(&self.policy));
        families.push(family.clone());
        Ok(family)
    }

    /// [`family`](Self::family) for a family whose label sets are bounded when
    /// the program compiles (the series of `#[instrumented]` call sites, a
    /// label set made only of enums): the cardinality guard neither folds nor
    /// truncates it, whatever the policy says, since every series it can have
    /// is written in the code.
    pub fn bounded_family(&self, descriptor: &Descriptor) -> Result<Arc<Family>, Error> {
        self.bounded_family_with_layout(descriptor, None)
    }

    /// [`bounded_family`](Self::bounded_family) with the bucket layout of
    /// [`family_with_layout`](Self::family_with_layout).
    pub fn bounded_family_with_layout(
        &self,
        descriptor: &Descriptor,
        layout: Option<Layout>,
    ) -> Result<Arc<Family>, Error> {
        let family = self.family_with_layout(descriptor, layout)?;
        if !family.bounded.swap(true, Ordering::Relaxed) {
            family.apply(&read(&self.policy));
        }
        Ok(family)
    }

    fn find(&self, name: &str) -> Option<Arc<Family>> {
        read(&self.families).iter().find(|f| f.descriptor.name == name).cloned()
    }

    /// A copy of the family list, in registration order.
    pub fn families(&self) -> Vec<Arc<Family>> {
        read(&self.families).clone()
    }

    /// Sets the histogram layouts: `default` for every histogram family,
    /// `per_metric` overriding it by exact name. Returns how many observations
    /// were recorded under a previous layout.
    ///
    /// Every family keeps one layout, whatever the start-up order. Families
    /// and series created from now on get the new layouts; a histogram that
    /// already exists is re-laid (see [`Histogram`]): nothing it counted is
    /// lost, and what it counted before is read into the first new bucket at
    /// or above its old bucket's bound. The whole change happens under the
    /// locks that creating a family or a series takes, so a first call racing
    /// it gets one layout or the other, never a mix. Layouts change at most
    /// once after a histogram was used ([`Error::LayoutAfterUse`] after that).
    pub fn set_layouts(&self, default: Layout, per_metric: HashMap<String, Layout>) -> Result<u64, Error> {
        let layouts = Layouts {
            default: Arc::new(default),
            per_metric: per_metric.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        };
        // Held throughout: no family is created while layouts change.
        let families = write(&self.families);
        let configurable = |f: &&Arc<Family>| f.descriptor.kind == MetricKind::Histogram && !f.fixed_layout;
        // Checked before anything changes, so a refusal leaves every layout as it was.
        for family in families.iter().filter(configurable) {
            let wanted = layouts.for_metric(&family.descriptor.name);
            let table = read(&family.series);
            let relaid_twice =
                table.list.iter().chain(&table.overflow).any(
                    |series| matches!(series.cell(), Cell::Histogram(h) if h.is_relaid() && **h.layout() != *wanted),
                );
            if relaid_twice {
                return Err(Error::LayoutAfterUse { metric: family.descriptor.name.to_string() });
            }
            let series = table.list.len() + usize::from(table.overflow.is_some());
            if series > 0 && read(&family.layout).native() != wanted.native() {
                let had = if read(&family.layout).native().is_some() { "native" } else { "classic" };
                return Err(Error::NativeAfterUse { metric: family.descriptor.name.to_string(), series, had });
            }
        }
        let mut moved = 0;
        for family in families.iter().filter(configurable) {
            let wanted = layouts.for_metric(&family.descriptor.name);
            // Held while the family's layout and its series change: no series
            // is created in between.
            let table = write(&family.series);
            for series in table.list.iter().chain(&table.overflow) {
                if let Cell::Histogram(histogram) = series.cell() {
                    moved += histogram
                        .relay(wanted.clone())
                        .map_err(|()| Error::LayoutAfterUse { metric: family.descriptor.name.to_string() })?;
                }
            }
            *write(&family.layout) = wanted;
        }
        *write(&self.layouts) = layouts;
        Ok(moved)
    }

    /// Sets the cardinality policy of every family, present and future. A
    /// family already past a lowered limit keeps its series; new label sets go
    /// to its overflow series.
    pub fn set_policy(&self, policy: CardinalityPolicy) {
        let policy = Arc::new(policy);
        *write(&self.policy) = policy.clone();
        for family in read(&self.families).iter() {
            family.apply(&policy);
        }
    }

    /// The cardinality policy in force.
    pub fn policy(&self) -> Arc<CardinalityPolicy> {
        read(&self.policy).clone()
    }

    /// Series of expiring families (see [`Family::expire_idle_series`]) idle
    /// for this many [`upkeep`](Self::upkeep) ticks are removed; 0 never.
    pub fn set_idle_ticks(&self, ticks: u64) {
        self.idle_ticks.store(u32::try_from(ticks).unwrap_or(u32::MAX), Ordering::Relaxed);
    }

    /// Advances the registry's coarse clock and removes idle series; returns
    /// how many were removed. The exporter calls it on every upkeep tick.
    pub fn upkeep(&self) -> usize {
        let now = TICKS.fetch_add(1, Ordering::Relaxed) + 1;
        let idle = self.idle_ticks.load(Ordering::Relaxed);
        if idle == 0 {
            return 0;
        }
        let oldest = now.saturating_sub(idle);
        self.families().iter().map(|family| family.expire(oldest)).sum()
    }

    /// A point-in-time copy of every value, for tests, dashboards in the
    /// terminal and anything else that wants numbers rather than text.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.families())
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// A name outside the grammar would make the whole exposition unparseable.
fn check_names(descriptor: &Descriptor) -> Result<(), Error> {
    if !crate::names::is_metric_name(&descriptor.name) {
        return Err(Error::MetricName { name: descriptor.name.to_string() });
    }
    let histogram = descriptor.kind == MetricKind::Histogram;
    for (i, name) in descriptor.label_names.iter().enumerate() {
        let duplicate = descriptor.label_names.get(..i).is_some_and(|before| before.contains(name));
        if !crate::names::is_label_name(name) || (histogram && *name == "le") || duplicate {
            return Err(Error::LabelName { name: (*name).to_owned() });
        }
    }
    Ok(())
}

fn check_same(found: &Family, wanted: &Descriptor) -> Result<(), Error> {
    let have = &found.descriptor;
    if have.kind != wanted.kind || have.label_names != wanted.label_names || have.unit != wanted.unit {
        return Err(Error::Conflict {
            metric: wanted.name.to_string(),
            registered: format!("{} {{{}}}", have.kind.as_str(), have.label_names.join(",")),
            requested: format!("{} {{{}}}", wanted.kind.as_str(), wanted.label_names.join(",")),
        });
    }
    Ok(())
}

// A panic while a lock is held cannot leave these tables half-written in a way
// that matters (every insert is a single push/insert pair), so a poisoned lock
// is used as is rather than wedging the exporter.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
