//! mesh-metrics' own process-wide registry: families, their series, and the
//! atomics behind them.
//!
//! It exists before any exporter is installed (a `LazyLock`), so no call is
//! lost to start-up order. Registration takes a lock; recording never does:
//! callers hold an `Arc` to the series they record into. Nothing here knows
//! about HTTP or exposition formats.

mod cells;
mod layout;
mod snapshot;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

pub use cells::{Counter, Gauge, Histogram, InFlight};
pub use layout::{DEFAULT_BUCKETS, Layout};
pub use snapshot::{FamilySnapshot, SeriesSnapshot, Snapshot, ValueSnapshot};

use crate::Error;

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

/// One labelled series of a family.
#[derive(Debug)]
pub struct Series {
    labels: Box<[Box<str>]>,
    cell: Cell,
}

impl Series {
    /// The label values, in the family's label-name order.
    pub fn labels(&self) -> &[Box<str>] {
        &self.labels
    }

    /// The value cell.
    pub fn cell(&self) -> &Cell {
        &self.cell
    }
}

/// A metric family: its descriptor and its series in registration order.
#[derive(Debug)]
pub struct Family {
    descriptor: Descriptor,
    layout: RwLock<Arc<Layout>>,
    series: RwLock<SeriesTable>,
}

#[derive(Debug, Default)]
struct SeriesTable {
    index: HashMap<Box<[Box<str>]>, usize>,
    list: Vec<Arc<Series>>,
}

impl Family {
    /// The descriptor it was registered with.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The series with these label values, created at zero if new.
    ///
    /// Values are given in the family's label-name order; a wrong number of
    /// values is an error, never a panic.
    pub fn series(&self, values: &[&str], make: impl FnOnce(&Arc<Layout>) -> Cell) -> Result<Arc<Series>, Error> {
        if values.len() != self.descriptor.label_names.len() {
            return Err(Error::LabelCount {
                metric: self.descriptor.name.to_string(),
                expected: self.descriptor.label_names.len(),
                got: values.len(),
            });
        }
        let key: Box<[Box<str>]> = values.iter().map(|v| Box::<str>::from(*v)).collect();
        if let Some(found) = read(&self.series).get(&key) {
            return Ok(found);
        }
        let mut table = write(&self.series);
        if let Some(found) = table.get(&key) {
            return Ok(found);
        }
        let layout = read(&self.layout).clone();
        let series = Arc::new(Series { labels: key.clone(), cell: make(&layout) });
        let position = table.list.len();
        table.index.insert(key, position);
        table.list.push(series.clone());
        Ok(series)
    }

    /// A copy of the current series list (cheap: `Arc` clones), so a scrape
    /// never holds the lock while it formats.
    pub fn series_list(&self) -> Vec<Arc<Series>> {
        read(&self.series).list.clone()
    }
}

impl SeriesTable {
    fn get(&self, key: &[Box<str>]) -> Option<Arc<Series>> {
        self.index.get(key).and_then(|i| self.list.get(*i)).cloned()
    }
}

/// The process-wide registry.
#[derive(Debug)]
pub struct Registry {
    families: RwLock<Vec<Arc<Family>>>,
    layouts: RwLock<Layouts>,
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
        }
    }

    /// The family described by `descriptor`, registered if new. Registering
    /// the same name with a different type or label names is an error.
    pub fn family(&self, descriptor: &Descriptor) -> Result<Arc<Family>, Error> {
        if let Some(found) = self.find(&descriptor.name) {
            return check_same(&found, descriptor).map(|()| found);
        }
        let mut families = write(&self.families);
        if let Some(found) = families.iter().find(|f| f.descriptor.name == descriptor.name) {
            return check_same(found, descriptor).map(|()| found.clone());
        }
        let layout = read(&self.layouts).for_metric(&descriptor.name);
        let family = Arc::new(Family {
            descriptor: descriptor.clone(),
            layout: RwLock::new(layout),
            series: RwLock::new(SeriesTable::default()),
        });
        families.push(family.clone());
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
    /// `per_metric` overriding it by exact name.
    ///
    /// A family that already holds series under another layout keeps it and
    /// the call fails: observations cannot be re-bucketed after the fact.
    pub fn set_layouts(&self, default: Layout, per_metric: HashMap<String, Layout>) -> Result<(), Error> {
        let layouts = Layouts {
            default: Arc::new(default),
            per_metric: per_metric.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        };
        let families = read(&self.families);
        for family in families.iter().filter(|f| f.descriptor.kind == MetricKind::Histogram) {
            let wanted = layouts.for_metric(&family.descriptor.name);
            let current = read(&family.layout).clone();
            if *current != *wanted && !read(&family.series).list.is_empty() {
                return Err(Error::LayoutAfterUse { metric: family.descriptor.name.to_string() });
            }
        }
        for family in families.iter().filter(|f| f.descriptor.kind == MetricKind::Histogram) {
            *write(&family.layout) = layouts.for_metric(&family.descriptor.name);
        }
        *write(&self.layouts) = layouts;
        Ok(())
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

fn check_same(found: &Family, wanted: &Descriptor) -> Result<(), Error> {
    let have = &found.descriptor;
    if have.kind != wanted.kind || have.label_names != wanted.label_names {
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
