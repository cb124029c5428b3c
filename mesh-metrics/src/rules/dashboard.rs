//! A Grafana dashboard over the recording rules: request rate, error ratio,
//! p50/p95/p99 latency with exemplars, a latency heatmap, calls in flight, the
//! top agents, the cardinality guard's overflow, and a row for each process
//! and tokio runtime (CPU, memory, file descriptors, threads, busy workers).

use serde::Serialize;

use super::promql::panel_queries_for;

/// A Grafana dashboard (JSON model, schema 39).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    uid: &'static str,
    title: &'static str,
    tags: Vec<&'static str>,
    schema_version: u32,
    refresh: &'static str,
    time: TimeRange,
    templating: Templating,
    panels: Vec<Panel>,
}

#[derive(Debug, Clone, Serialize)]
struct TimeRange {
    from: &'static str,
    to: &'static str,
}

#[derive(Debug, Clone, Serialize)]
struct Templating {
    list: Vec<Variable>,
}

#[derive(Debug, Clone, Serialize)]
struct Variable {
    name: &'static str,
    label: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    query: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Panel {
    id: u32,
    title: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    grid_pos: GridPos,
    datasource: Datasource,
    targets: Vec<Target>,
    field_config: FieldConfig,
}

#[derive(Debug, Clone, Serialize)]
struct GridPos {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

#[derive(Debug, Clone, Serialize)]
struct Datasource {
    #[serde(rename = "type")]
    kind: &'static str,
    uid: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    ref_id: String,
    expr: String,
    legend_format: String,
    datasource: Datasource,
    exemplar: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
struct FieldConfig {
    defaults: FieldDefaults,
}

#[derive(Debug, Clone, Serialize)]
struct FieldDefaults {
    unit: &'static str,
}

fn prometheus() -> Datasource {
    Datasource { kind: "prometheus", uid: "${datasource}" }
}

/// The dashboard.
pub fn dashboard() -> Dashboard {
    dashboard_for(false)
}

/// [`dashboard`] for a request duration kept as classic buckets or, with
/// `native`, as a native histogram (its latency panels read native buckets).
pub fn dashboard_for(native: bool) -> Dashboard {
    let panels = panel_queries_for(native)
        .into_iter()
        .enumerate()
        .map(|(i, (title, queries))| {
            let (kind, unit, format) = match title {
                "Error ratio" => ("timeseries", "percentunit", None),
                "Latency p50 / p95 / p99" => ("timeseries", "s", None),
                "Latency heatmap" => ("heatmap", "s", Some("heatmap")),
                "Top agents by request rate" => ("bargauge", "reqps", None),
                "In flight" | "Cardinality overflow" | "Process threads" | "Runtime tasks and queue" => {
                    ("timeseries", "short", None)
                }
                "Process CPU" => ("timeseries", "percentunit", None),
                "Process resident memory" => ("timeseries", "bytes", None),
                "Process file descriptors" => ("timeseries", "percent", None),
                "Runtime workers busy" => ("timeseries", "percentunit", None),
                _ => ("timeseries", "reqps", None),
            };
            let latency = title.starts_with("Latency");
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            Panel {
                id: i + 1,
                title,
                kind,
                grid_pos: GridPos { x: (i % 2) * 12, y: (i / 2) * 8, w: 12, h: 8 },
                datasource: prometheus(),
                targets: queries
                    .into_iter()
                    .zip('A'..='Z')
                    .map(|((expr, legend_format), ref_id)| Target {
                        ref_id: ref_id.to_string(),
                        expr,
                        legend_format,
                        datasource: prometheus(),
                        // Exemplars link a latency spike to its trace.
                        exemplar: latency,
                        format,
                    })
                    .collect(),
                field_config: FieldConfig { defaults: FieldDefaults { unit } },
            }
        })
        .collect();
    Dashboard {
        uid: "mcp-mesh-overview",
        title: "MCP Mesh",
        tags: vec!["mcp-mesh", "mesh-metrics"],
        schema_version: 39,
        refresh: "30s",
        time: TimeRange { from: "now-1h", to: "now" },
        templating: Templating {
            list: vec![Variable { name: "datasource", label: "Prometheus", kind: "datasource", query: "prometheus" }],
        },
        panels,
    }
}
