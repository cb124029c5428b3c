//! The guard's own metrics, brought up to date before each scrape:
//! `mcp_mesh_cardinality_series{metric}` (label sets admitted) and
//! `mcp_mesh_cardinality_overflow_total{metric}` (registrations and lookups
//! folded into the overflow series), for registry and facade metrics alike.

use std::borrow::Cow;

use super::Limit;
use super::layer::FacadeGuard;
use crate::names;
use crate::registry::{Cell, Descriptor, MetricKind, Registry};

const SERIES: Descriptor = Descriptor {
    name: Cow::Borrowed(names::CARDINALITY_SERIES),
    help: Cow::Borrowed("Label sets the cardinality guard admitted, per metric"),
    kind: MetricKind::Gauge,
    label_names: Cow::Borrowed(&["metric"]),
    unit: None,
};

const OVERFLOW: Descriptor = Descriptor {
    name: Cow::Borrowed(names::CARDINALITY_OVERFLOW_TOTAL),
    help: Cow::Borrowed("Registrations and lookups the cardinality guard folded into an overflow series, per metric"),
    kind: MetricKind::Counter,
    label_names: Cow::Borrowed(&["metric"]),
    unit: None,
};

/// Updates the guard's metrics in `registry` from its families and from the
/// facade guard. Metrics without a limit, and families bounded at compile time
/// (which the guard leaves alone), are left out.
pub(crate) fn publish(registry: &Registry, facade: &FacadeGuard) {
    let (Ok(series), Ok(overflow)) = (registry.family(&SERIES), registry.family(&OVERFLOW)) else {
        // Only if a user registered one of these names with another shape;
        // the registry has logged nothing yet, so say it here.
        tracing::error!("mesh-metrics: cannot publish the cardinality guard's metrics: their names are taken");
        return;
    };
    let policy = registry.policy();
    let report = |metric: &str, admitted: usize, unpublished: u64| {
        if let Ok(gauge) = series.series(&[metric], |_| Cell::Gauge(Default::default()))
            && let Cell::Gauge(gauge) = gauge.cell()
        {
            gauge.set(admitted as f64);
        }
        if let Ok(counter) = overflow.series(&[metric], |_| Cell::Counter(Default::default()))
            && let Cell::Counter(counter) = counter.cell()
        {
            counter.increment(unpublished);
        }
    };
    for family in registry.families() {
        let name = &*family.descriptor().name;
        // Families bounded at compile time are outside the guard.
        if policy.limit(name) != Limit::Unlimited && !family.is_bounded() {
            report(name, family.admitted(), family.unpublished_folds());
        }
    }
    for stats in facade.stats() {
        report(&stats.name, stats.admitted, stats.folds.unpublished());
    }
}
