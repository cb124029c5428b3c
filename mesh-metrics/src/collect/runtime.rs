//! Tokio runtime metrics from its stable API (no `tokio_unstable`): workers,
//! alive tasks and global queue depth per runtime, and per worker its busy
//! time, parks and park/unparks, as counters.

use tokio::runtime::Handle;

use super::{descriptor, publish};
use crate::names::tokio as names;
use crate::registry::{Descriptor, MetricKind, Registry};

const WORKERS: Descriptor =
    descriptor(names::WORKERS, "Worker threads of the tokio runtime.", MetricKind::Gauge, &["runtime"], None);
const ALIVE_TASKS: Descriptor = descriptor(
    names::ALIVE_TASKS,
    "Tasks spawned on the tokio runtime and not yet finished.",
    MetricKind::Gauge,
    &["runtime"],
    None,
);
const GLOBAL_QUEUE_DEPTH: Descriptor = descriptor(
    names::GLOBAL_QUEUE_DEPTH,
    "Tasks waiting in the tokio runtime's global queue.",
    MetricKind::Gauge,
    &["runtime"],
    None,
);
#[cfg(target_has_atomic = "64")]
const BUSY: Descriptor = descriptor(
    names::WORKER_BUSY_SECONDS_TOTAL,
    "Time each worker of the tokio runtime spent busy, in seconds.",
    MetricKind::Counter,
    &["runtime", "worker"],
    Some("seconds"),
);
#[cfg(target_has_atomic = "64")]
const PARKS: Descriptor = descriptor(
    names::WORKER_PARKS_TOTAL,
    "Times each worker of the tokio runtime parked (ran out of work).",
    MetricKind::Counter,
    &["runtime", "worker"],
    None,
);
#[cfg(target_has_atomic = "64")]
const PARK_UNPARKS: Descriptor = descriptor(
    names::WORKER_PARK_UNPARKS_TOTAL,
    "Times each worker of the tokio runtime parked or was unparked.",
    MetricKind::Counter,
    &["runtime", "worker"],
    None,
);

/// Reads the metrics of the runtime `handle` belongs to and writes them into
/// `registry`, labelled `runtime = name`.
pub fn collect_runtime(registry: &Registry, name: &str, handle: &Handle) {
    let metrics = handle.metrics();
    let workers = metrics.num_workers();
    publish(registry, &WORKERS, &[name], workers as f64);
    publish(registry, &ALIVE_TASKS, &[name], metrics.num_alive_tasks() as f64);
    publish(registry, &GLOBAL_QUEUE_DEPTH, &[name], metrics.global_queue_depth() as f64);
    #[cfg(target_has_atomic = "64")]
    {
        let mut index = itoa::Buffer::new();
        for worker in 0..workers {
            let labels = [name, index.format(worker)];
            publish(registry, &BUSY, &labels, metrics.worker_total_busy_duration(worker).as_secs_f64());
            publish(registry, &PARKS, &labels, metrics.worker_park_count(worker) as f64);
            publish(registry, &PARK_UNPARKS, &labels, metrics.worker_park_unpark_count(worker) as f64);
        }
    }
}
