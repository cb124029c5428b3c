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
