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

impl HelmValuesOptions {
    /// Refuses a value that the Prometheus Operator or Kubernetes would
    /// refuse once the chart is installed.
    pub fn validate(&self) -> Result<(), RulesError> {
        let refuse = |field: &'static str, given: &str, expected: &'static str| {
            Err(RulesError::HelmValue { field, given: given.to_owned(), expected })
        };
        let duration = "a Prometheus duration such as 30d, 12h or 1h30m (units y, w, d, h, m, s, ms, largest first)";
        for (field, value) in [("retention", &self.retention), ("interval", &self.interval)] {
            if !is_prometheus_duration(value) {
                return refuse(field, value, duration);
            }
        }
        if !is_byte_size(&self.retention_size) {
            return refuse("retention-size", &self.retention_size, "a size such as 50GB or 512MiB");
        }
        for (field, value) in [
            ("cpu-request", &self.cpu_request),
            ("cpu-limit", &self.cpu_limit),
            ("memory-request", &self.memory_request),
            ("memory-limit", &self.memory_limit),
            ("storage-size", &self.storage_size),
            ("grafana-storage-size", &self.grafana_storage_size),
        ] {
            if !is_quantity(value) {
                return refuse(field, value, "a Kubernetes quantity such as 500m, 2, 4Gi or 100Gi");
            }
        }
        if let Some(class) = &self.storage_class {
            if !is_dns_subdomain(class) {
                return refuse("storage-class", class, "a StorageClass name (lowercase letters, digits, '-', '.')");
            }
        }
        if !is_dns_subdomain(&self.grafana_admin_secret) {
            return refuse("grafana-admin-secret", &self.grafana_admin_secret, "a Secret name");
        }
        Ok(())
    }
}

/// Prometheus' duration: `0`, or numbers with units `y w d h m s ms`, each
/// at most once and largest first.
fn is_prometheus_duration(text: &str) -> bool {
    const UNITS: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    if text == "0" {
        return true;
    }
    let mut rest = text;
    let mut next = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = rest.get(digits..).unwrap_or_default();
        let unit = if rest.starts_with("ms") { "ms" } else { rest.get(..1).unwrap_or_default() };
        match UNITS.iter().position(|u| *u == unit) {
            Some(index) if index >= next => next = index + 1,
            _ => return false,
        }
        rest = rest.get(unit.len()..).unwrap_or_default();
    }
    !text.is_empty()
}

/// The operator's `retentionSize`: `0`, or a decimal number, an optional
/// `K M G T E P` (with an optional `i`) and `B`.
fn is_byte_size(text: &str) -> bool {
    if text == "0" {
        return true;
    }
    let Some(number) = text.strip_suffix('B') else { return false };
    let number = number
        .strip_suffix('i')
        .map_or(number, |n| if n.ends_with(['K', 'M', 'G', 'T', 'E', 'P']) { n } else { number });
    let number = number.strip_suffix(['K', 'M', 'G', 'T', 'E', 'P']).unwrap_or(number);
    is_decimal(number)
}

/// Digits with at most one `.`, and a digit after it.
fn is_decimal(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or(("", text));
    let digits = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    !fraction.is_empty() && digits(whole) && digits(fraction)
}

/// A Kubernetes resource quantity, not negative: a decimal number and a
/// binary (`Ki`..`Ei`), decimal (`n u m k M G T P E`) or exponent suffix.
fn is_quantity(text: &str) -> bool {
    let text = text.strip_prefix('+').unwrap_or(text);
    let end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(end);
    let number_ok = match number.split_once('.') {
        Some((whole, fraction)) => {
            (!whole.is_empty() || !fraction.is_empty())
                && whole.chars().all(|c| c.is_ascii_digit())
                && fraction.chars().all(|c| c.is_ascii_digit())
        }
        None => !number.is_empty(),
    };
    let suffix_ok = match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => true,
        exponent => exponent.strip_prefix(['e', 'E']).is_some_and(|power| {
            let power = power.strip_prefix(['+', '-']).unwrap_or(power);
            !power.is_empty() && power.chars().all(|c| c.is_ascii_digit())
        }),
    };
    number_ok && suffix_ok
}

/// Builds the `kube-prometheus-stack` values that `options` describe, after
/// [`HelmValuesOptions::validate`].
///
/// ```
/// use mesh_metrics::rules::{self, HelmValuesOptions};
///
/// let values = rules::helm_values(&HelmValuesOptions::default())?;
/// assert_eq!(values["prometheus"]["prometheusSpec"]["retention"], "30d");
/// assert_eq!(values["grafana"]["admin"]["existingSecret"], "grafana-admin");
///
/// let typo = HelmValuesOptions { retention: "30 days".into(), ..HelmValuesOptions::default() };
/// assert!(rules::helm_values(&typo).is_err());
/// # Ok::<(), mesh_metrics::rules::RulesError>(())
/// ```
pub fn helm_values(options: &HelmValuesOptions) -> Result<Value, RulesError> {
    options.validate()?;
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
    Ok(json!({
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
    }))
}
