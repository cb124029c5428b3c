//! Metrics collected when a scrape asks for them, not recorded between
//! scrapes: the process (CPU, memory, file descriptors, threads, network, as
//! every official Prometheus client exports them) and tokio runtimes.
//!
//! Each collector writes the current values into the registry's families just
//! before the registry is rendered, so nothing runs between scrapes. The
//! exporter does this on every scrape; with a server of your own, call
//! [`collect_process`] and [`collect_runtime`] before
//! [`render_classic`](crate::render_classic).

mod process;
mod runtime;

pub use process::{ProcessStats, collect_process};
pub use runtime::collect_runtime;

use std::borrow::Cow;

use crate::registry::{Cell, Descriptor, MetricKind, Registry};

/// Sets the value of the series `values` of a family with one fixed shape,
/// creating both as needed. The families are bounded (one series, or one per
/// runtime worker), so the cardinality guard leaves them alone.
fn publish(registry: &Registry, descriptor: &Descriptor, values: &[&str], value: f64) {
    let family = match registry.bounded_family(descriptor) {
        Ok(family) => family,
        Err(error) => {
            tracing::error!(%error, metric = %descriptor.name, "mesh-metrics: cannot publish a collected metric");
            return;
        }
    };
    // A collected counter is read whole from its source (the kernel, the
    // runtime): its series holds the value as read, rendered as a counter.
    let series = family.series(values, |_| Cell::Gauge(Default::default()));
    match series.as_ref().map(|series| series.cell()) {
        Ok(Cell::Gauge(gauge)) => gauge.set(value),
        // The value cannot be published: the family's other values would be
        // stale beside it, so none is served.
        _ => {
            tracing::error!(metric = %descriptor.name, "mesh-metrics: cannot publish a collected metric");
            family.clear();
        }
    }
}

/// Withdraws every series of `descriptor`'s family: its source could not be
/// read, and a stale value must not pass for a current one.
fn withdraw(registry: &Registry, descriptor: &Descriptor) {
    if let Ok(family) = registry.bounded_family(descriptor) {
        family.clear();
    }
}

const fn descriptor(
    name: &'static str,
    help: &'static str,
    kind: MetricKind,
    label_names: &'static [&'static str],
    unit: Option<&'static str>,
) -> Descriptor {
    Descriptor {
        name: Cow::Borrowed(name),
        help: Cow::Borrowed(help),
        kind,
        label_names: Cow::Borrowed(label_names),
        unit: match unit {
            Some(unit) => Some(Cow::Borrowed(unit)),
            None => None,
        },
    }
}
