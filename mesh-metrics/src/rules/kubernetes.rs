//! The guide's discovery objects: `ServiceMonitor`s for the registry and the
//! agents, and a `PodMonitor` for agents without a Service.

use std::collections::BTreeMap;

use serde::Serialize;

/// Kubernetes object metadata.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Metadata {
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
}

impl Metadata {
    pub(crate) fn new(name: &str, namespace: &str, labels: &[(&str, &str)]) -> Self {
        Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }
}

/// A `ServiceMonitor` or `PodMonitor`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Monitor {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: MonitorSpec,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct MonitorSpec {
    selector: Selector,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoints: Option<Vec<Endpoint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_metrics_endpoints: Option<Vec<Endpoint>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Selector {
    match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    port: String,
    interval: String,
    path: String,
    honor_timestamps: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relabelings: Vec<Relabeling>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    metric_relabelings: Vec<Relabeling>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Relabeling {
    source_labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
}

fn copy(source: &str, target: &str) -> Relabeling {
    Relabeling {
        source_labels: vec![source.to_owned()],
        target_label: Some(target.to_owned()),
        regex: None,
        action: None,
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Relabelings that name the agent, namespace and pod of a target. The
/// pod's agent name goes to `agent_name`: written to `agent`, it would push
/// the metrics' own `agent` label aside as `exported_agent`.
fn agent_relabelings() -> Vec<Relabeling> {
    vec![
        copy("__meta_kubernetes_pod_label_agent_name", "agent_name"),
        copy("__meta_kubernetes_pod_namespace", "namespace"),
        copy("__meta_kubernetes_pod_name", "pod"),
    ]
}

fn endpoint(port: &str, relabelings: Vec<Relabeling>, metric_relabelings: Vec<Relabeling>) -> Endpoint {
    Endpoint {
        port: port.to_owned(),
        interval: "30s".to_owned(),
        path: "/metrics".to_owned(),
        honor_timestamps: true,
        relabelings,
        metric_relabelings,
    }
}

/// Agents, found by their pods' labels.
fn agents(kind: &'static str, namespace: &str, endpoints: Vec<Endpoint>) -> Monitor {
    let (endpoints, pod_metrics_endpoints) =
        if kind == "ServiceMonitor" { (Some(endpoints), None) } else { (None, Some(endpoints)) };
    Monitor {
        api_version: "monitoring.coreos.com/v1",
        kind,
        metadata: Metadata::new("mcp-mesh-agents", namespace, &[("app", "mcp-mesh"), ("component", "agent")]),
        spec: MonitorSpec {
            selector: Selector {
                match_labels: labels(&[
                    ("app.kubernetes.io/part-of", "mcp-mesh"),
                    ("app.kubernetes.io/component", "agent"),
                ]),
            },
            endpoints,
            pod_metrics_endpoints,
        },
    }
}

/// The registry's and the agents' `ServiceMonitor`s, in `namespace`.
pub fn service_monitors(namespace: &str) -> Vec<Monitor> {
    let registry = Monitor {
        api_version: "monitoring.coreos.com/v1",
        kind: "ServiceMonitor",
        metadata: Metadata::new("mcp-mesh-registry", namespace, &[("app", "mcp-mesh"), ("component", "registry")]),
        spec: MonitorSpec {
            selector: Selector { match_labels: labels(&[("app.kubernetes.io/name", "mcp-mesh-registry")]) },
            endpoints: Some(vec![endpoint(
                "http",
                vec![copy("__meta_kubernetes_namespace", "namespace")],
                // Trace IDs belong in exemplars, not labels: only drop what is never needed.
                vec![Relabeling {
                    source_labels: vec!["__name__".to_owned()],
                    target_label: None,
                    regex: Some("go_memstats_.*".to_owned()),
                    action: Some("drop".to_owned()),
                }],
            )]),
            pod_metrics_endpoints: None,
        },
    };
    let agents = agents("ServiceMonitor", namespace, vec![endpoint("metrics", agent_relabelings(), Vec::new())]);
    vec![registry, agents]
}

/// A `PodMonitor` for agents, in `namespace`.
pub fn pod_monitor(namespace: &str) -> Monitor {
    agents("PodMonitor", namespace, vec![endpoint("metrics", agent_relabelings(), Vec::new())])
}
