//! Typed metrics: `Counter<L>`, `Gauge<L>` and `Histogram<L>` over a
//! [`LabelSet`] `L`, declared as fields of a `#[derive(Metrics)]` struct.
//!
//! `with(&labels)` finds the series of a label set. When every label is a
//! [`LabelValue`](crate::LabelValue) the series are kept in a table indexed
//! by the label set's position, resolved on first use: a lookup is an index
//! and one atomic load, with no hashing, allocation or lock. Otherwise it goes
//! through the registry, under the cardinality guard.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::Error;
use crate::labels::{LabelSet, StaticValues};
use crate::registry::{self, Cell, Descriptor, Family, Layout, MetricKind, Registry, Series};

/// Label-value tables larger than this are not kept (the registry lookup is used).
const MAX_TABLE: usize = 1 << 16;

/// What a `#[derive(Metrics)]` field declares: its name, HELP, unit and buckets.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// The full metric name.
    pub name: &'static str,
    /// The HELP text (the field's doc comment).
    pub help: &'static str,
    /// The unit, a suffix of the name.
    pub unit: Option<&'static str>,
    /// Histogram bucket bounds; `None` for the exporter's (or, when
    /// `native`, for none: native buckets only).
    pub buckets: Option<&'static [f64]>,
    /// A native (sparse, exponential) histogram, with the defaults of
    /// [`NativeHistograms`](crate::NativeHistograms); classic buckets too
    /// when `buckets` are given.
    pub native: bool,
}

/// A value a metric refused: a counter only goes up, and NaN has no bucket.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{metric}: refused {value} ({reason}); the metric is unchanged")]
pub struct InvalidValue {
    /// The metric.
    pub metric: &'static str,
    /// The refused value.
    pub value: f64,
    /// Why.
    pub reason: &'static str,
}

/// The family of one typed metric and its tables of resolved series: one
/// table per combination of the label set's static strings (a metric sees
/// few: usually one agent name), indexed by its enumerable labels.
struct Resolved<L> {
    family: Arc<Family>,
    name: &'static str,
    tables: [OnceLock<Table>; TABLES],
    make: fn(&Arc<Layout>) -> Cell,
    _labels: PhantomData<fn(&L)>,
}

/// How many combinations of static strings get a table; more take the
/// registry lookup.
const TABLES: usize = 4;

/// The series of one combination of static strings, by enumerable index.
struct Table {
    statics: StaticValues,
    series: Box<[OnceLock<Arc<Series>>]>,
}

impl Table {
    fn new(statics: StaticValues, size: usize) -> Self {
        Self { statics, series: (0..size).map(|_| OnceLock::new()).collect() }
    }

    /// Whether `statics` are the very strings (same address and length)
    /// this table is for: a pointer comparison, no hashing.
    #[inline]
    fn is_for(&self, statics: &StaticValues, count: usize) -> bool {
        self.statics.iter().zip(statics).take(count).all(|(a, b)| a.as_ptr() == b.as_ptr() && a.len() == b.len())
    }
}

impl<L: LabelSet> Resolved<L> {
    fn register(
        registry: &Registry,
        def: &MetricDef,
        kind: MetricKind,
        make: fn(&Arc<Layout>) -> Cell,
    ) -> Result<Self, Error> {
        let descriptor = Descriptor {
            name: Cow::Borrowed(def.name),
            help: Cow::Borrowed(def.help),
            kind,
            label_names: Cow::Borrowed(L::NAMES),
            unit: def.unit.map(Cow::Borrowed),
        };
        let layout = def
            .buckets
            .map(|bounds| Layout::new(bounds).map_err(|reason| Error::Buckets { metric: def.name.to_owned(), reason }))
            .transpose()?;
        let layout = match (layout, def.native) {
            (layout, false) => layout,
            (Some(classic), true) => Some(classic.with_native(*crate::NativeHistograms::new().config())),
            (None, true) => Some(Layout::native_only(*crate::NativeHistograms::new().config())),
        };
        // A label set made only of enums has all its series written in the
        // code: the guard leaves it alone, so none of them is ever folded.
        let family = if L::CARDINALITY.is_some() {
            registry.bounded_family_with_layout(&descriptor, layout)?
        } else {
            registry.family_with_layout(&descriptor, layout)?
        };
        if L::UNBOUNDED {
            family.expire_idle_series(true);
        }
        Ok(Self { family, name: def.name, tables: Default::default(), make, _labels: PhantomData })
    }

    #[inline]
    fn series(&self, labels: &L) -> SeriesRef<'_> {
        if let Some(size) = L::CARDINALITY.filter(|n| *n <= MAX_TABLE) {
            // Enumerable labels only: one table, no static strings to match.
            let table = self.tables[0].get_or_init(|| Table::new(labels.statics(), size));
            let index = labels.index();
            if let Some(slot) = table.series.get(index) {
                return self.cached(slot, || L::values_at(index, &table.statics));
            }
        } else if let Some(size) = L::INDEXED.filter(|n| *n <= MAX_TABLE) {
            let statics = labels.statics();
            if let Some(table) = self.table(&statics, size) {
                let index = labels.index();
                if let Some(slot) = table.series.get(index) {
                    return self.cached(slot, || L::values_at(index, &statics));
                }
            }
        }
        SeriesRef::Owned(labels.with_values(|values| self.lookup(values)))
    }

    /// The table for these static strings: found by address, or claimed if a
    /// slot is free; `None` once every slot is another combination's.
    #[inline]
    fn table(&self, statics: &StaticValues, size: usize) -> Option<&Table> {
        for slot in &self.tables {
            let table = slot.get_or_init(|| Table::new(*statics, size));
            if table.is_for(statics, L::STATIC_FIELDS) {
                return Some(table);
            }
        }
        None
    }

    /// The series in `slot`, resolved on first use. An overflow series is
    /// never kept there: a slot freed by idle expiry or a raised limit lets
    /// the label set have its own series again on a later lookup.
    #[inline]
    fn cached<'s, V: AsRef<[&'static str]>>(
        &'s self,
        slot: &'s OnceLock<Arc<Series>>,
        values: impl FnOnce() -> V,
    ) -> SeriesRef<'s> {
        if let Some(series) = slot.get() {
            return SeriesRef::Borrowed(series);
        }
        let series = self.lookup(values().as_ref());
        if series.is_overflow() {
            return SeriesRef::Owned(series);
        }
        SeriesRef::Borrowed(slot.get_or_init(|| series))
    }

    fn lookup(&self, values: &[&str]) -> Arc<Series> {
        self.family.series(values, self.make).unwrap_or_else(|error| {
            // Cannot happen: the label names come from the same `L` as the values.
            tracing::error!(%error, "mesh-metrics: recording into a series outside the registry");
            self.family.detached(self.make)
        })
    }
}

impl<L> std::fmt::Debug for Resolved<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metric")
            .field("name", &self.name)
            .field("labels", &self.family.descriptor().label_names)
            .finish()
    }
}

enum SeriesRef<'a> {
    Borrowed(&'a Series),
    Owned(Arc<Series>),
}

impl SeriesRef<'_> {
    #[inline]
    fn cell(&self) -> &Cell {
        match self {
            Self::Borrowed(series) => series.cell(),
            Self::Owned(series) => series.cell(),
        }
    }
}

/// A counter: only goes up. Labelled by `L`.
#[derive(Debug)]
pub struct Counter<L: LabelSet = ()>(Resolved<L>);

/// A gauge: any value, up and down. Labelled by `L`.
#[derive(Debug)]
pub struct Gauge<L: LabelSet = ()>(Resolved<L>);

/// A fixed-bucket histogram. Labelled by `L`.
#[derive(Debug)]
pub struct Histogram<L: LabelSet = ()>(Resolved<L>);

impl<L: LabelSet> Counter<L> {
    /// Registers (or finds) the counter `def` describes. The same name with
    /// another type, label set or unit is an [`Error::Conflict`].
    pub fn register(registry: &Registry, def: &MetricDef) -> Result<Self, Error> {
        Resolved::register(registry, def, MetricKind::Counter, |_| Cell::Counter(Default::default())).map(Self)
    }

    /// The series of `labels`.
    #[inline]
    pub fn with(&self, labels: &L) -> CounterHandle<'_> {
        CounterHandle { series: self.0.series(labels), metric: self.0.name }
    }
}

impl<L: LabelSet> Gauge<L> {
    /// Registers (or finds) the gauge `def` describes.
    pub fn register(registry: &Registry, def: &MetricDef) -> Result<Self, Error> {
        Resolved::register(registry, def, MetricKind::Gauge, |_| Cell::Gauge(Default::default())).map(Self)
    }

    /// The series of `labels`.
    #[inline]
    pub fn with(&self, labels: &L) -> GaugeHandle<'_> {
        GaugeHandle { series: self.0.series(labels) }
    }
}

impl<L: LabelSet> Histogram<L> {
    /// Registers (or finds) the histogram `def` describes, with its buckets.
    pub fn register(registry: &Registry, def: &MetricDef) -> Result<Self, Error> {
        Resolved::register(registry, def, MetricKind::Histogram, |layout| {
            Cell::Histogram(registry::Histogram::new(layout.clone()))
        })
        .map(Self)
    }

    /// The series of `labels`.
    #[inline]
    pub fn with(&self, labels: &L) -> HistogramHandle<'_> {
        HistogramHandle { series: self.0.series(labels), metric: self.0.name }
    }
}

/// One series of a [`Counter`].
pub struct CounterHandle<'a> {
    series: SeriesRef<'a>,
    metric: &'static str,
}

impl CounterHandle<'_> {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.increment(1);
    }

    /// Adds a whole number.
    #[inline]
    pub fn increment(&self, by: u64) {
        if let Cell::Counter(counter) = self.series.cell() {
            counter.increment(by);
        }
    }

    /// Adds a non-negative amount (revenue, bytes). A negative, NaN or
    /// infinite amount is refused and the counter is unchanged.
    pub fn add(&self, amount: f64) -> Result<(), InvalidValue> {
        match self.series.cell() {
            Cell::Counter(counter) if counter.add(amount) => Ok(()),
            _ => Err(InvalidValue {
                metric: self.metric,
                value: amount,
                reason: "a counter only adds finite, non-negative amounts",
            }),
        }
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        match self.series.cell() {
            Cell::Counter(counter) => counter.get(),
            _ => 0.0,
        }
    }
}

/// One series of a [`Gauge`].
pub struct GaugeHandle<'a> {
    series: SeriesRef<'a>,
}

impl GaugeHandle<'_> {
    /// Sets the value.
    #[inline]
    pub fn set(&self, value: f64) {
        if let Cell::Gauge(gauge) = self.series.cell() {
            gauge.set(value);
        }
    }

    /// Adds `delta` (negative to decrease).
    #[inline]
    pub fn add(&self, delta: f64) {
        if let Cell::Gauge(gauge) = self.series.cell() {
            gauge.add(delta);
        }
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        match self.series.cell() {
            Cell::Gauge(gauge) => gauge.get(),
            _ => 0.0,
        }
    }
}

/// One series of a [`Histogram`].
pub struct HistogramHandle<'a> {
    series: SeriesRef<'a>,
    metric: &'static str,
}

impl HistogramHandle<'_> {
    /// Records one observation; NaN is refused (and, by a native histogram,
    /// an infinity) and nothing changes.
    #[inline]
    pub fn observe(&self, value: f64) -> Result<(), InvalidValue> {
        match self.series.cell() {
            Cell::Histogram(histogram) if histogram.observe(value) => Ok(()),
            _ if value.is_nan() => Err(InvalidValue { metric: self.metric, value, reason: "NaN has no bucket" }),
            _ => Err(InvalidValue { metric: self.metric, value, reason: "a native histogram has no bucket for it" }),
        }
    }

    /// Records a duration, in seconds (exactly, as nanoseconds are summed).
    #[inline]
    pub fn observe_duration(&self, duration: Duration) {
        if let Cell::Histogram(histogram) = self.series.cell() {
            histogram.observe_nanos(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
        }
    }
}

/// The label-less forms: `metrics.jobs_total.inc()`.
impl Counter<()> {
    /// Adds one.
    pub fn inc(&self) {
        self.with(&()).inc();
    }

    /// Adds a whole number.
    pub fn increment(&self, by: u64) {
        self.with(&()).increment(by);
    }

    /// Adds a non-negative amount; see [`CounterHandle::add`].
    pub fn add(&self, amount: f64) -> Result<(), InvalidValue> {
        self.with(&()).add(amount)
    }
}

impl Gauge<()> {
    /// Sets the value.
    pub fn set(&self, value: f64) {
        self.with(&()).set(value);
    }

    /// Adds `delta` (negative to decrease).
    pub fn add(&self, delta: f64) {
        self.with(&()).add(delta);
    }
}

impl Histogram<()> {
    /// Records one observation; see [`HistogramHandle::observe`].
    pub fn observe(&self, value: f64) -> Result<(), InvalidValue> {
        self.with(&()).observe(value)
    }

    /// Records a duration in seconds.
    pub fn observe_duration(&self, duration: Duration) {
        self.with(&()).observe_duration(duration);
    }
}

/// A struct of typed metrics, registered together: what
/// `#[derive(Metrics)]` implements. A trait rather than inherent fns, so a
/// struct can have a `register` of its own; bring it in scope with
/// `use mesh_metrics::Metrics;` (the same import as the derive).
pub trait Metrics: Sized {
    /// Registers every metric of the struct in the process-wide registry
    /// (once: registering again returns the same series). A name registered
    /// before with another type, label set, unit or buckets is an error.
    fn register() -> Result<Self, Error> {
        Self::register_in(registry::global())
    }

    /// [`register`](Self::register) into a registry of your own.
    fn register_in(registry: &Registry) -> Result<Self, Error>;
}

/// Registration of a `#[derive(Metrics)]` field, whatever its type.
pub trait Register: Sized {
    /// Registers the metric `def` describes in `registry`.
    fn register(registry: &Registry, def: &MetricDef) -> Result<Self, Error>;
}

impl<L: LabelSet> Register for Counter<L> {
    fn register(registry: &Registry, def: &MetricDef) -> Result<Self, Error> {
        Counter::register(registry, def)
    }
}

impl<L: LabelSet> Register for Gauge<L> {
    fn register(registry: &Registry, def: &MetricDef) -> Result<Self, Error> {
        Gauge::register(registry, def)
    }
}

impl<L: LabelSet> Register for Histogram<L> {
    fn register(registry: &Registry, def: &MetricDef) -> Result<Self, Error> {
        Histogram::register(registry, def)
    }
}
