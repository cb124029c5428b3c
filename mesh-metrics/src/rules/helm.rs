//! The guide's Step 1 as code: values for the `kube-prometheus-stack` Helm
//! chart, with no secret written into them.
//!
//! The guide's values carry a Grafana password and a Slack webhook as
//! literals. Here each comes from a Kubernetes Secret the operator creates:
//! Grafana reads `admin.existingSecret`, Alertmanager mounts the webhook's
//! Secret (`alertmanagerSpec.secrets`) and reads it through `api_url_file`,
//! and the Thanos sidecar (`--thanos`) reads its object-storage
//! configuration through a secret key selector.

use serde_json::{Map, Value, json};

use super::RulesError;

/// What the generated values set.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmValuesOptions {
    /// How long Prometheus keeps data (`retention`), e.g. `30d`.
    pub retention: String,
    /// The most disk the TSDB may use (`retentionSize`), e.g. `50GB`.
    pub retention_size: String,
    /// `scrapeInterval` and `evaluationInterval`.
    pub interval: String,
    /// Prometheus' resource requests and limits.
    pub cpu_request: String,
    /// See `cpu_request`.
    pub cpu_limit: String,
    /// See `cpu_request`.
    pub memory_request: String,
    /// See `cpu_request`.
    pub memory_limit: String,
    /// The storage class of Prometheus' volume claim (`None`: the cluster default).
    pub storage_class: Option<String>,
    /// The size of Prometheus' volume claim, e.g. `100Gi`.
    pub storage_size: String,
    /// The Secret holding Grafana's admin user and password
    /// (keys `admin-user` and `admin-password`).
    pub grafana_admin_secret: String,
    /// The size of Grafana's persistent volume.
    pub grafana_storage_size: String,
    /// The Secret (and key) holding the Slack webhook URL; without it
    /// alerts go to a receiver with no integration.
    pub slack_webhook_secret: Option<SecretKey>,
    /// The Slack channel alerts are posted to.
    pub slack_channel: String,
    /// The Secret (and key) holding the Thanos object-storage configuration;
    /// with it, the Thanos sidecar runs next to Prometheus.
    pub thanos_object_storage: Option<SecretKey>,
}

/// A key of a Kubernetes Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKey {
    /// The Secret's name.
    pub name: String,
    /// The key inside it.
    pub key: String,
}

impl SecretKey {
    /// Parses `NAME` or `NAME:KEY`; `default_key` when the key is left out.
    pub fn parse(text: &str, default_key: &str) -> Result<Self, RulesError> {
        let (name, key) = text.split_once(':').unwrap_or((text, default_key));
        if !is_dns_subdomain(name) || !is_secret_key(key) {
            return Err(RulesError::SecretReference { given: text.to_owned() });
        }
        Ok(Self { name: name.to_owned(), key: key.to_owned() })
    }
}

/// A Kubernetes object name (RFC 1123 subdomain): at most 253 characters,
/// dot-separated labels of lowercase letters, digits and '-' that start and
/// end with a letter or digit.
fn is_dns_subdomain(name: &str) -> bool {
    let label = |part: &str| {
        let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        part.starts_with(alphanumeric)
            && part.ends_with(alphanumeric)
            && part.chars().all(|c| alphanumeric(c) || c == '-')
    };
    name.len() <= 253 && name.split('.').all(label)
}

/// A Secret data key: at most 253 of letters, digits, '-', '_' and '.', not
/// `.` and not starting with `..`.
fn is_secret_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && !key.starts_with("..")
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Default for HelmValuesOptions {
    /// The guide's sizes.
    fn default() -> Self {
        Self {
            retention: "30d".to_owned(),
            retention_size: "50GB".to_owned(),
            interval: "30s".to_owned(),
            cpu_request: "1".to_owned(),
            cpu_limit: "2".to_owned(),
            memory_request: "2Gi".to_owned(),
            memory_limit: "4Gi".to_owned(),
            storage_class: None,
            storage_size: "100Gi".to_owned(),
            grafana_admin_secret: "grafana-admin".to_owned(),
            grafana_storage_size: "10Gi".to_owned(),
            slack_webhook_secret: None,
            slack_channel: "#alerts".to_owned(),
            thanos_object_storage: None,
        }
    }
}

/// Where the Alertmanager operator mounts a Secret listed in
/// `alertmanagerSpec.secrets`.
fn mounted_secret(secret: &SecretKey) -> String {
    format!("/etc/alertmanager/secrets/{}/{}", secret.name, secret.key)
}

/// Builds the `kube-prometheus-stack` values that `options` describe.
///
/// ```
/// use mesh_metrics::rules::{self, HelmValuesOptions};
///
/// let values = rules::helm_values(&HelmValuesOptions::default());
/// assert_eq!(values["prometheus"]["prometheusSpec"]["retention"], "30d");
/// assert_eq!(values["grafana"]["admin"]["existingSecret"], "grafana-admin");
/// ```
pub fn helm_values(options: &HelmValuesOptions) -> Value {
    let mut volume_claim = Map::new();
    volume_claim.insert("accessModes".to_owned(), json!(["ReadWriteOnce"]));
    volume_claim.insert("resources".to_owned(), json!({ "requests": { "storage": options.storage_size } }));
    if let Some(class) = &options.storage_class {
        volume_claim.insert("storageClassName".to_owned(), json!(class));
    }
    let mut prometheus_spec = Map::new();
    // Pick up ServiceMonitors, PodMonitors and PrometheusRules that the chart
    // did not create, such as `mesh-metrics service-monitor`'s.
    for selector in [
        "serviceMonitorSelectorNilUsesHelmValues",
        "podMonitorSelectorNilUsesHelmValues",
        "ruleSelectorNilUsesHelmValues",
    ] {
        prometheus_spec.insert(selector.to_owned(), json!(false));
    }
    prometheus_spec.insert("retention".to_owned(), json!(options.retention));
    prometheus_spec.insert("retentionSize".to_owned(), json!(options.retention_size));
    prometheus_spec.insert(
        "resources".to_owned(),
        json!({
            "requests": { "cpu": options.cpu_request, "memory": options.memory_request },
            "limits": { "cpu": options.cpu_limit, "memory": options.memory_limit },
        }),
    );
    prometheus_spec.insert("storageSpec".to_owned(), json!({ "volumeClaimTemplate": { "spec": volume_claim } }));
    prometheus_spec.insert("scrapeInterval".to_owned(), json!(options.interval));
    prometheus_spec.insert("evaluationInterval".to_owned(), json!(options.interval));
    prometheus_spec.insert("enableFeatures".to_owned(), json!(["exemplar-storage", "memory-snapshot-on-shutdown"]));
    let mut prometheus = Map::new();
    if let Some(storage) = &options.thanos_object_storage {
        // The chart turns `existingSecret` into the CRD's secret key selector.
        prometheus_spec.insert(
            "thanos".to_owned(),
            json!({ "objectStorageConfig": { "existingSecret": { "name": storage.name, "key": storage.key } } }),
        );
        prometheus.insert("thanosService".to_owned(), json!({ "enabled": true }));
        prometheus.insert("thanosServiceMonitor".to_owned(), json!({ "enabled": true }));
    }
    prometheus.insert("prometheusSpec".to_owned(), Value::Object(prometheus_spec));

    // Helm merges maps but replaces lists: the chart's default route keeps
    // its `routes` (Watchdog to the receiver "null"), so "null" must stay
    // among the receivers we replace the chart's with.
    let mut receiver = Map::new();
    receiver.insert("name".to_owned(), json!("default"));
    let mut alertmanager_spec = Map::new();
    if let Some(webhook) = &options.slack_webhook_secret {
        receiver.insert(
            "slack_configs".to_owned(),
            json!([{
                "api_url_file": mounted_secret(webhook),
                "channel": options.slack_channel,
                "send_resolved": true,
            }]),
        );
        alertmanager_spec.insert("secrets".to_owned(), json!([webhook.name]));
    }
    json!({
        "prometheus": prometheus,
        "grafana": {
            "enabled": true,
            "admin": {
                "existingSecret": options.grafana_admin_secret,
                "userKey": "admin-user",
                "passwordKey": "admin-password",
            },
            "persistence": { "enabled": true, "size": options.grafana_storage_size },
        },
        "alertmanager": {
            "enabled": true,
            "alertmanagerSpec": alertmanager_spec,
            "config": {
                "global": { "resolve_timeout": "5m" },
                "route": {
                    "group_by": ["alertname", "namespace"],
                    "group_wait": "10s",
                    "group_interval": "10s",
                    "repeat_interval": "12h",
                    "receiver": "default",
                    "routes": [{ "receiver": "null", "matchers": ["alertname = \"Watchdog\""] }],
                },
                "receivers": [{ "name": "null" }, receiver],
            },
        },
    })
}
