//! The `/metrics` endpoint's own metrics (see [`crate::names::exporter`]):
//! scrapes by status code, scrapes in flight, render time (whose count is the
//! renders performed), bytes written, connections evicted and refused. They
//! live in the registry like any family, bounded by their few label values.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::names::exporter as names;
use crate::registry::{Cell, Descriptor, Entered, Family, Histogram, Layout, MetricKind, Registry, Series};
use crate::scrape::{Encoding, Format};

const fn descriptor(
    name: &'static str,
    help: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
) -> Descriptor {
    Descriptor {
        name: Cow::Borrowed(name),
        help: Cow::Borrowed(help),
        kind,
        label_names: Cow::Borrowed(labels),
        unit: None,
    }
}

const SCRAPES: Descriptor = descriptor(
    names::SCRAPES_TOTAL,
    "Scrapes of /metrics answered, by HTTP status code.",
    MetricKind::Counter,
    &["code"],
);
const IN_FLIGHT: Descriptor =
    descriptor(names::SCRAPES_IN_FLIGHT, "Scrapes of /metrics being answered.", MetricKind::Gauge, &[]);
const RENDER: Descriptor = descriptor(
    names::RENDER_DURATION_SECONDS,
    "Time to collect, render and encode one /metrics body; scrapes that arrive during a render share it.",
    MetricKind::Histogram,
    &["format"],
);
const BYTES: Descriptor = descriptor(
    names::RESPONSE_BYTES_TOTAL,
    "Body bytes of /metrics responses, by content coding.",
    MetricKind::Counter,
    &["encoding"],
);
const EVICTED: Descriptor = descriptor(
    names::CONNECTIONS_EVICTED_TOTAL,
    "Idle connections to /metrics closed to make room for a new one.",
    MetricKind::Counter,
    &[],
);
const REFUSED: Descriptor = descriptor(
    names::CONNECTIONS_REFUSED_TOTAL,
    "Connections to /metrics turned away, by reason.",
    MetricKind::Counter,
    &["reason"],
);

/// Render times span microseconds (a small registry) to seconds (100k series).
const RENDER_BUCKETS: [f64; 9] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// Handles to the endpoint's families.
#[derive(Debug)]
pub(crate) struct ServerMetrics {
    scrapes: Option<Arc<Family>>,
    in_flight: Option<Arc<Series>>,
    render: Option<Arc<Family>>,
    bytes: Option<Arc<Family>>,
    evicted: Option<Arc<Series>>,
    refused: Option<Arc<Family>>,
}

impl ServerMetrics {
    pub(crate) fn new(registry: &Registry) -> Self {
        let family = |descriptor: &Descriptor| {
            registry
                .bounded_family(descriptor)
                .map_err(|error| tracing::error!(%error, "mesh-metrics: cannot record the endpoint's metrics"))
                .ok()
        };
        let layout = Layout::new(&RENDER_BUCKETS).ok();
        let render = registry
            .bounded_family_with_layout(&RENDER, layout)
            .map_err(|error| tracing::error!(%error, "mesh-metrics: cannot record the endpoint's metrics"))
            .ok();
        let single = |descriptor: &Descriptor, make: fn() -> Cell| {
            family(descriptor).and_then(|family| family.series(&[], |_| make()).ok())
        };
        Self {
            scrapes: family(&SCRAPES),
            in_flight: single(&IN_FLIGHT, || Cell::InFlight(Default::default())),
            render,
            bytes: family(&BYTES),
            evicted: single(&EVICTED, || Cell::Counter(Default::default())),
            refused: family(&REFUSED),
        }
    }

    /// A scrape started; the guard ends it.
    pub(crate) fn scrape(&self) -> InFlight<'_> {
        let entered = match self.in_flight.as_deref().map(Series::cell) {
            Some(Cell::InFlight(gauge)) => Some(gauge.enter()),
            _ => None,
        };
        InFlight(self, entered)
    }

    /// A response with `code` and a body of `bytes` in `encoding`.
    pub(crate) fn answered(&self, code: u16, encoding: Encoding, bytes: usize) {
        let mut digits = itoa::Buffer::new();
        count(self.scrapes.as_deref(), digits.format(code), 1);
        count(self.bytes.as_deref(), encoding.as_str(), bytes as u64);
    }

    /// A render of `format` took `took`.
    pub(crate) fn rendered(&self, format: Format, took: Duration) {
        let format = format.as_str();
        let series = self
            .render
            .as_deref()
            .and_then(|family| family.series(&[format], |layout| Cell::Histogram(Histogram::new(layout.clone()))).ok());
        if let Some(Cell::Histogram(histogram)) = series.as_deref().map(Series::cell) {
            histogram.observe_nanos(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        }
    }

    /// An idle connection was closed for a new one.
    pub(crate) fn evicted(&self) {
        if let Some(Cell::Counter(counter)) = self.evicted.as_deref().map(Series::cell) {
            counter.increment(1);
        }
    }

    /// A connection was turned away for `reason`.
    pub(crate) fn refused(&self, reason: &str) {
        count(self.refused.as_deref(), reason, 1);
    }
}

fn count(family: Option<&Family>, label: &str, by: u64) {
    let series = family.and_then(|family| family.series(&[label], |_| Cell::Counter(Default::default())).ok());
    if let Some(Cell::Counter(counter)) = series.as_deref().map(Series::cell) {
        counter.increment(by);
    }
}

/// A scrape in flight (and the in-flight shard it entered); dropping it ends it.
pub(crate) struct InFlight<'a>(&'a ServerMetrics, Option<Entered>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let (Some(Cell::InFlight(gauge)), Some(entered)) =
            (self.0.in_flight.as_deref().map(Series::cell), self.1.take())
        {
            gauge.exit(entered);
        }
    }
}
