//! The metric and label names mesh-metrics generates (DESIGN §2, from the
//! guide; do not rename). The rules generator uses the same constants, so
//! recording rules and code cannot drift apart.

/// Counter: one per finished call, labelled `agent`, `method`, `status`.
pub const REQUESTS_TOTAL: &str = "mcp_mesh_requests_total";
/// Histogram: wall time of a call in seconds, labelled `agent`, `method`.
pub const REQUEST_DURATION_SECONDS: &str = "mcp_mesh_request_duration_seconds";
/// Gauge: calls in flight, labelled `agent`, `type`.
pub const CONNECTIONS_ACTIVE: &str = "mcp_mesh_connections_active";
/// Gauge fixed at 1, labelled `agent_name`, `version`, `capabilities`.
pub const AGENT_INFO: &str = "mcp_mesh_agent_info";
/// Gauge kept by a registry, labelled `status`: agents registered by state.
/// The guide names it `mcp_mesh_registry_agents_total`, but `_total` is for
/// counters (promtool flags a gauge with it, and the `Metrics` derive refuses
/// it), so the name drops it.
pub const REGISTRY_AGENTS: &str = "mcp_mesh_registry_agents";
/// Counter of registrations and lookups the cardinality guard folded into a
/// metric's overflow series, labelled `metric`.
pub const CARDINALITY_OVERFLOW_TOTAL: &str = "mcp_mesh_cardinality_overflow_total";
/// Gauge of the label sets the cardinality guard admitted, labelled `metric`.
pub const CARDINALITY_SERIES: &str = "mcp_mesh_cardinality_series";

/// The `/metrics` endpoint's own metrics (client_golang's promhttp exports
/// the like as `promhttp_metric_handler_*`).
pub mod exporter {
    /// Counter: scrapes answered, labelled `code` (the HTTP status).
    pub const SCRAPES_TOTAL: &str = "mcp_mesh_exporter_scrapes_total";
    /// Gauge: scrapes being answered now.
    pub const SCRAPES_IN_FLIGHT: &str = "mcp_mesh_exporter_scrapes_in_flight";
    /// Histogram: time to collect, render and encode one body, labelled
    /// `format`; its `_count` is the number of renders performed (coalesced
    /// scrapes share one).
    pub const RENDER_DURATION_SECONDS: &str = "mcp_mesh_exporter_render_duration_seconds";
    /// Counter: body bytes written, labelled `encoding`.
    pub const RESPONSE_BYTES_TOTAL: &str = "mcp_mesh_exporter_response_bytes_total";
    /// Counter: idle connections closed to make room for a new one.
    pub const CONNECTIONS_EVICTED_TOTAL: &str = "mcp_mesh_exporter_connections_evicted_total";
    /// Counter: connections turned away, labelled `reason` (`forbidden`, `busy`).
    pub const CONNECTIONS_REFUSED_TOTAL: &str = "mcp_mesh_exporter_connections_refused_total";
    /// Counter: OTLP pushes, labelled `result` (`success`, `retry`, `failure`).
    pub const OTLP_PUSHES_TOTAL: &str = "mcp_mesh_exporter_otlp_pushes_total";
}

/// Process metrics, named and measured as client_golang's process collector
/// does, so dashboards and rules written for any Prometheus client work.
pub mod process {
    /// Counter: user and system CPU time, in seconds.
    pub const CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
    /// Gauge: resident memory, in bytes.
    pub const RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
    /// Gauge: virtual memory, in bytes.
    pub const VIRTUAL_MEMORY_BYTES: &str = "process_virtual_memory_bytes";
    /// Gauge: the most virtual memory the process may have, in bytes.
    pub const VIRTUAL_MEMORY_MAX_BYTES: &str = "process_virtual_memory_max_bytes";
    /// Gauge: open file descriptors.
    pub const OPEN_FDS: &str = "process_open_fds";
    /// Gauge: the most file descriptors the process may open.
    pub const MAX_FDS: &str = "process_max_fds";
    /// Gauge: when the process started, in seconds since the Unix epoch.
    pub const START_TIME_SECONDS: &str = "process_start_time_seconds";
    /// Gauge: OS threads.
    pub const THREADS: &str = "process_threads";
    /// Counter: bytes received on the process's network namespace.
    pub const NETWORK_RECEIVE_BYTES_TOTAL: &str = "process_network_receive_bytes_total";
    /// Counter: bytes sent on the process's network namespace.
    pub const NETWORK_TRANSMIT_BYTES_TOTAL: &str = "process_network_transmit_bytes_total";
}

/// Tokio runtime metrics from its stable API, labelled `runtime` (and
/// `worker`).
pub mod tokio {
    /// Gauge: worker threads.
    pub const WORKERS: &str = "tokio_workers";
    /// Gauge: tasks alive (spawned, not finished).
    pub const ALIVE_TASKS: &str = "tokio_alive_tasks";
    /// Gauge: tasks waiting in the global (injection) queue.
    pub const GLOBAL_QUEUE_DEPTH: &str = "tokio_global_queue_depth";
    /// Counter: time each worker spent busy, in seconds.
    pub const WORKER_BUSY_SECONDS_TOTAL: &str = "tokio_worker_busy_seconds_total";
    /// Counter: times each worker parked (went idle).
    pub const WORKER_PARKS_TOTAL: &str = "tokio_worker_parks_total";
    /// Counter: times each worker parked or was unparked.
    pub const WORKER_PARK_UNPARKS_TOTAL: &str = "tokio_worker_park_unparks_total";
}

/// The `status` label values of [`REQUESTS_TOTAL`].
pub const STATUSES: [&str; 3] = ["success", "error", "cancelled"];

/// Whether `name` is a metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether `name` is a label name a user may set: `[a-zA-Z_][a-zA-Z0-9_]*`,
/// not starting with `__` (reserved for Prometheus).
pub(crate) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}
