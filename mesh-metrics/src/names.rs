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
/// Gauge kept by a registry, labelled `status`.
pub const REGISTRY_AGENTS_TOTAL: &str = "mcp_mesh_registry_agents_total";
/// Counter of registrations and lookups the cardinality guard folded into a
/// metric's overflow series, labelled `metric`.
pub const CARDINALITY_OVERFLOW_TOTAL: &str = "mcp_mesh_cardinality_overflow_total";
/// Gauge of the label sets the cardinality guard admitted, labelled `metric`.
pub const CARDINALITY_SERIES: &str = "mcp_mesh_cardinality_series";

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
