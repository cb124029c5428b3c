//! A plain `prometheus.yml`: a static job for local use, the guide's
//! Kubernetes discovery jobs, a federation job, optional remote write, and
//! `hashmod` sharding for meshes that outgrow one Prometheus.

use std::collections::BTreeMap;

use serde::Serialize;

use super::RulesError;

/// What the generated `prometheus.yml` contains.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeOptions {
    /// Targets of the static job, e.g. `127.0.0.1:9464`.
    pub static_targets: Vec<String>,
    /// Prometheus servers to federate `mcp_mesh:*` and `up` from. A global
    /// server should scrape nothing else: leave `static_targets` empty and
    /// `kubernetes` off (the `mesh-metrics scrape-config --federate` command
    /// does).
    pub federate: Vec<String>,
    /// A remote-write URL for long-term storage (Thanos, Mimir, ...): only
    /// the `mcp_mesh:*` recording rules are sent.
    pub remote_write: Option<String>,
    /// Rule files to load.
    pub rule_files: Vec<String>,
    /// Alertmanagers to send alerts to.
    pub alertmanagers: Vec<String>,
    /// `(shards, shard)`: keep only this shard's share of the discovered targets.
    pub shard: Option<(u32, u32)>,
    /// `external_labels`.
    pub external_labels: BTreeMap<String, String>,
    /// The guide's Kubernetes discovery jobs for the registry and the agents.
    /// (Debian's `prometheus` is built without Kubernetes discovery and
    /// refuses them; turn them off for such a server.)
    pub kubernetes: bool,
}

impl Default for ScrapeOptions {
    fn default() -> Self {
        Self {
            static_targets: vec!["127.0.0.1:9464".to_owned()],
            federate: Vec::new(),
            remote_write: None,
            rule_files: Vec::new(),
            alertmanagers: Vec::new(),
            shard: None,
            external_labels: BTreeMap::new(),
            kubernetes: true,
        }
    }
}

/// A `prometheus.yml`.
#[derive(Debug, Clone, Serialize)]
pub struct PrometheusConfig {
    global: Global,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rule_files: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerting: Option<Alerting>,
    scrape_configs: Vec<ScrapeConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    remote_write: Vec<RemoteWrite>,
}

#[derive(Debug, Clone, Serialize)]
struct Global {
    scrape_interval: &'static str,
    scrape_timeout: &'static str,
    evaluation_interval: &'static str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    external_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
struct Alerting {
    alertmanagers: Vec<StaticTargets>,
}

#[derive(Debug, Clone, Serialize)]
struct StaticTargets {
    static_configs: Vec<Targets>,
}

#[derive(Debug, Clone, Serialize)]
struct Targets {
    targets: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
struct ScrapeConfig {
    job_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_interval: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    honor_labels: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_path: Option<&'static str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    params: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    static_configs: Vec<Targets>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    kubernetes_sd_configs: Vec<KubernetesSd>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relabel_configs: Vec<Relabel>,
}

#[derive(Debug, Clone, Serialize)]
struct KubernetesSd {
    role: &'static str,
    namespaces: Namespaces,
}

#[derive(Debug, Clone, Serialize)]
struct Namespaces {
    names: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
struct Relabel {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    source_labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replacement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modulus: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
struct RemoteWrite {
    url: String,
    write_relabel_configs: Vec<Relabel>,
}

fn relabel(sources: &[&str], regex: Option<&str>, target: Option<&str>, action: Option<&'static str>) -> Relabel {
    Relabel {
        source_labels: sources.iter().map(|s| (*s).to_owned()).collect(),
        regex: regex.map(str::to_owned),
        target_label: target.map(str::to_owned),
        action,
        ..Relabel::default()
    }
}

/// Builds the `prometheus.yml` that `options` describe.
pub fn scrape_config(options: &ScrapeOptions) -> Result<PrometheusConfig, RulesError> {
    let sharding = match options.shard {
        Some((shards, shard)) if shard >= shards || shards == 0 => return Err(RulesError::Shard { shard, shards }),
        Some(_) if options.static_targets.is_empty() && !options.kubernetes => {
            return Err(RulesError::ShardsWithoutTargets);
        }
        Some((shards, shard)) => vec![
            Relabel {
                source_labels: vec!["__address__".to_owned()],
                modulus: Some(shards),
                target_label: Some("__tmp_hash".to_owned()),
                action: Some("hashmod"),
                ..Relabel::default()
            },
            relabel(&["__tmp_hash"], Some(&shard.to_string()), None, Some("keep")),
        ],
        None => Vec::new(),
    };
    let mut jobs = Vec::new();
    if !options.static_targets.is_empty() {
        jobs.push(ScrapeConfig {
            job_name: "mcp-mesh-local".to_owned(),
            scrape_interval: Some("15s"),
            static_configs: vec![Targets { targets: options.static_targets.clone() }],
            relabel_configs: sharding.clone(),
            ..ScrapeConfig::default()
        });
    }
    if options.kubernetes {
        kubernetes_jobs(&mut jobs, &sharding);
    }
    if !options.federate.is_empty() {
        jobs.push(ScrapeConfig {
            job_name: "federate".to_owned(),
            scrape_interval: Some("15s"),
            honor_labels: Some(true),
            metrics_path: Some("/federate"),
            // Series selectors: a bare `mcp_mesh:.*` (as the guide writes) is not one.
            params: BTreeMap::from([(
                "match[]".to_owned(),
                vec!["{__name__=~\"mcp_mesh:.*\"}".to_owned(), "up{job=~\"mcp-mesh.*\"}".to_owned()],
            )]),
            static_configs: vec![Targets { targets: options.federate.clone() }],
            relabel_configs: vec![Relabel {
                replacement: Some("$1".to_owned()),
                ..relabel(&["__address__"], Some("(.*):\\d+"), Some("source_cluster"), None)
            }],
            ..ScrapeConfig::default()
        });
    }
    Ok(PrometheusConfig {
        global: Global {
            scrape_interval: "30s",
            scrape_timeout: "10s",
            evaluation_interval: "30s",
            external_labels: options.external_labels.clone(),
        },
        rule_files: options.rule_files.clone(),
        alerting: (!options.alertmanagers.is_empty()).then(|| Alerting {
            alertmanagers: vec![StaticTargets {
                static_configs: vec![Targets { targets: options.alertmanagers.clone() }],
            }],
        }),
        scrape_configs: jobs,
        remote_write: options
            .remote_write
            .iter()
            .map(|url| RemoteWrite {
                url: url.clone(),
                write_relabel_configs: vec![relabel(&["__name__"], Some("mcp_mesh:.*"), None, Some("keep"))],
            })
            .collect(),
    })
}

/// The guide's discovery jobs: the registry's endpoints and the agents' pods
/// in the `mcp-mesh` namespace.
fn kubernetes_jobs(jobs: &mut Vec<ScrapeConfig>, sharding: &[Relabel]) {
    let mesh = || KubernetesSd { role: "pod", namespaces: Namespaces { names: vec!["mcp-mesh".to_owned()] } };
    let mut registry = vec![
        relabel(&["__meta_kubernetes_service_name"], Some(".*registry.*"), None, Some("keep")),
        relabel(&["__meta_kubernetes_namespace"], None, Some("namespace"), None),
        relabel(&["__meta_kubernetes_service_name"], None, Some("service"), None),
    ];
    registry.extend(sharding.iter().cloned());
    jobs.push(ScrapeConfig {
        job_name: "mcp-mesh-registry".to_owned(),
        scrape_interval: Some("15s"),
        kubernetes_sd_configs: vec![KubernetesSd { role: "endpoints", ..mesh() }],
        relabel_configs: registry,
        ..ScrapeConfig::default()
    });
    let mut agents = vec![
        relabel(&["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], Some("true"), None, Some("keep")),
        Relabel {
            action: Some("replace"),
            ..relabel(
                &["__meta_kubernetes_pod_annotation_prometheus_io_path"],
                Some("(.+)"),
                Some("__metrics_path__"),
                None,
            )
        },
        Relabel {
            replacement: Some("$1:$2".to_owned()),
            action: Some("replace"),
            ..relabel(
                &["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
                Some(r"([^:]+)(?::\d+)?;(\d+)"),
                Some("__address__"),
                None,
            )
        },
        relabel(&["__meta_kubernetes_pod_label_app_kubernetes_io_name"], None, Some("agent_name"), None),
        relabel(&["__meta_kubernetes_pod_namespace"], None, Some("namespace"), None),
        relabel(&["__meta_kubernetes_pod_name"], None, Some("pod"), None),
    ];
    agents.extend(sharding.iter().cloned());
    jobs.push(ScrapeConfig {
        job_name: "mcp-mesh-agents".to_owned(),
        kubernetes_sd_configs: vec![mesh()],
        relabel_configs: agents,
        ..ScrapeConfig::default()
    });
}
