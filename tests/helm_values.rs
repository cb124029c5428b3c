//! `mesh-metrics helm-values` against the chart it is for: every key it sets
//! is one that kube-prometheus-stack 88.5.3 (or its Grafana subchart 12.11.1)
//! declares, with a value of the declared kind; what the chart passes on to
//! the Prometheus Operator is valid against the operator's CRD schema
//! (v0.93.1); the Alertmanager configuration is accepted by `amtool`; and no
//! secret is written into the values.
//!
//! The fixtures in `tests/fixtures/kube-prometheus-stack/` are the chart's
//! and the subchart's `values.yaml` as published, and the CRD schemas of the
//! fields set, extracted by `extract_crd_schemas.py` there.

use std::path::Path;
use std::process::Command;

use mesh_metrics::rules::{self, HelmValuesOptions, RulesError, SecretKey};
use mesh_metrics_tests::{TempDir, required_tool};
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kube-prometheus-stack").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(text: &str) -> Value {
    yaml_serde::from_str(text).expect("valid YAML")
}

/// The values as the chart sees them: the generated YAML, parsed back.
fn generated(options: &HelmValuesOptions) -> Value {
    yaml(&rules::to_yaml(&rules::helm_values(options).expect("valid")).expect("yaml"))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// A chart default that the chart passes through without declaring its
/// keys: `{}` (or a key the chart documents only in a comment).
fn free_form(default: Option<&Value>) -> bool {
    match default {
        None | Some(Value::Null) => true,
        Some(Value::Object(map)) => map.is_empty(),
        _ => false,
    }
}

/// Checks `ours` against the chart's defaults: a key the chart declares must
/// hold the same kind of value; a key under a free-form default is collected
/// in `passed_through` for its own schema.
fn check_declared(path: &str, ours: &Value, chart: &Value, passed_through: &mut Vec<String>, errors: &mut Vec<String>) {
    let Value::Object(ours) = ours else { unreachable!("called on maps") };
    for (key, value) in ours {
        let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        let default = chart.get(key);
        if free_form(default) {
            passed_through.push(here);
            continue;
        }
        let default = default.expect("not free-form");
        match (value, default) {
            (Value::Object(_), Value::Object(_)) => check_declared(&here, value, default, passed_through, errors),
            _ if kind(value) == kind(default) => {}
            // The chart writes an unset string as "" and an unset list as [].
            _ => errors.push(format!("{here}: we set a {}, the chart declares a {}", kind(value), kind(default))),
        }
    }
}

/// A small OpenAPI v3 validator: the parts the CRD schemas use for the
/// fields we set (type, properties, additionalProperties, items, required,
/// pattern, int-or-string).
fn validate(path: &str, value: &Value, schema: &Value, errors: &mut Vec<String>) {
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        match value {
            Value::String(text) => check_pattern(path, text, schema, errors),
            Value::Number(number) if number.is_i64() || number.is_u64() => {}
            other => errors.push(format!("{path}: {} is neither an integer nor a string", kind(other))),
        }
        return;
    }
    match (schema["type"].as_str(), value) {
        (Some("object"), Value::Object(map)) => {
            for required in schema["required"].as_array().into_iter().flatten() {
                if !map.contains_key(required.as_str().expect("name")) {
                    errors.push(format!("{path}: {required} is required"));
                }
            }
            for (key, item) in map {
                let here = format!("{path}.{key}");
                if let Some(property) = schema["properties"].get(key) {
                    validate(&here, item, property, errors);
                } else if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                    validate(&here, item, additional, errors);
                } else if schema.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true)) {
                    errors.push(format!("{here}: not a field of the CRD"));
                }
            }
        }
        (Some("array"), Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                validate(&format!("{path}[{index}]"), item, &schema["items"], errors);
            }
        }
        (Some("string"), Value::String(text)) => check_pattern(path, text, schema, errors),
        (Some("boolean"), Value::Bool(_)) => {}
        (Some("integer"), Value::Number(number)) if number.is_i64() || number.is_u64() => {}
        (expected, other) => errors.push(format!("{path}: the CRD wants {expected:?}, we set a {}", kind(other))),
    }
}

fn check_pattern(path: &str, text: &str, schema: &Value, errors: &mut Vec<String>) {
    if let Some(pattern) = schema["pattern"].as_str() {
        let regex = regex::Regex::new(pattern).unwrap_or_else(|e| panic!("the CRD's pattern {pattern}: {e}"));
        if !regex.is_match(text) {
            errors.push(format!("{path}: {text:?} does not match the CRD's pattern {pattern}"));
        }
    }
}

/// Helm's coalescing of a parent's values over a subchart's defaults.
fn merge(defaults: &mut Value, parent: Value) {
    match (defaults, parent) {
        (Value::Object(defaults), Value::Object(parent)) => {
            for (key, value) in parent {
                match defaults.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        defaults.insert(key, value);
                    }
                }
            }
        }
        (defaults, parent) => *defaults = parent,
    }
}

fn every_option_set() -> HelmValuesOptions {
    HelmValuesOptions {
        retention: "90d".to_owned(),
        retention_size: "200GB".to_owned(),
        interval: "15s".to_owned(),
        cpu_request: "500m".to_owned(),
        cpu_limit: "2".to_owned(),
        memory_request: "3Gi".to_owned(),
        memory_limit: "6Gi".to_owned(),
        storage_class: Some("fast-ssd".to_owned()),
        storage_size: "500Gi".to_owned(),
        grafana_admin_secret: "grafana-credentials".to_owned(),
        grafana_storage_size: "20Gi".to_owned(),
        slack_webhook_secret: Some(SecretKey { name: "slack".to_owned(), key: "webhook".to_owned() }),
        slack_channel: "#mesh-alerts".to_owned(),
        thanos_object_storage: Some(SecretKey { name: "thanos-objstore".to_owned(), key: "objstore.yml".to_owned() }),
    }
}

#[test]
fn every_key_is_one_the_chart_declares_and_the_operator_accepts() {
    let chart = yaml(&fixture("kube-prometheus-stack-88.5.3.values.yaml"));
    let grafana_chart = yaml(&fixture("grafana-12.11.1.values.yaml"));
    let crds: Value = serde_json::from_str(&fixture("crd-schemas.json")).expect("crd-schemas.json");
    // Helm's view of the Grafana keys: the subchart's defaults under the
    // parent's `grafana:` values.
    let mut chart = chart;
    let mut grafana = grafana_chart;
    merge(&mut grafana, chart["grafana"].take());
    chart["grafana"] = grafana;
    for options in [HelmValuesOptions::default(), every_option_set()] {
        let values = generated(&options);
        let (mut passed_through, mut errors) = (Vec::new(), Vec::new());
        check_declared("", &values, &chart, &mut passed_through, &mut errors);

        // What the chart passes through must be what the operator's CRD takes
        // (the chart renames storageSpec to storage; it turns
        // thanos.objectStorageConfig.existingSecret into the CRD's
        // SecretKeySelector, templates/prometheus/prometheus.yaml).
        let spec = &values["prometheus"]["prometheusSpec"];
        for path in &passed_through {
            let (field, value) = match path.as_str() {
                "prometheus.prometheusSpec.resources" => ("resources", spec["resources"].clone()),
                "prometheus.prometheusSpec.storageSpec" => ("storage", spec["storageSpec"].clone()),
                "prometheus.prometheusSpec.thanos" => {
                    let mut thanos = spec["thanos"].clone();
                    let selector = thanos["objectStorageConfig"]["existingSecret"].take();
                    assert!(selector.is_object(), "the chart reads objectStorageConfig.existingSecret: {thanos}");
                    thanos["objectStorageConfig"] = selector;
                    ("thanos", thanos)
                }
                other => panic!("{other} is not declared by the chart and has no schema to check it against"),
            };
            validate(field, &value, &crds["prometheus"][field], &mut errors);
        }
        for field in ["retention", "retentionSize", "enableFeatures", "scrapeInterval", "evaluationInterval"] {
            validate(field, &spec[field], &crds["prometheus"][field], &mut errors);
        }
        let secrets = &values["alertmanager"]["alertmanagerSpec"]["secrets"];
        if !secrets.is_null() {
            validate("secrets", secrets, &crds["alertmanager"]["secrets"], &mut errors);
        }
        assert!(errors.is_empty(), "{options:?}:\n{}", errors.join("\n"));
    }
}

#[test]
fn the_validator_refuses_what_the_chart_or_the_operator_would() {
    // The checks above can fail: a misspelt key, a wrong kind, a bad pattern.
    let chart = yaml(&fixture("kube-prometheus-stack-88.5.3.values.yaml"));
    let crds: Value = serde_json::from_str(&fixture("crd-schemas.json")).expect("crd-schemas.json");
    let wrong: Value = serde_json::json!({
        "prometheus": { "prometheusSpec": { "retention": 30, "serviceMonitorSelectorNilUsesHelmValue": false } }
    });
    let (mut passed, mut errors) = (Vec::new(), Vec::new());
    check_declared("", &wrong, &chart, &mut passed, &mut errors);
    assert!(errors.iter().any(|e| e.contains("retention: we set a number")), "{errors:?}");
    assert_eq!(passed, ["prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValue"]);
    let mut errors = Vec::new();
    validate("retentionSize", &Value::from("50 gigabytes"), &crds["prometheus"]["retentionSize"], &mut errors);
    validate("storage", &serde_json::json!({ "volumeClaim": {} }), &crds["prometheus"]["storage"], &mut errors);
    let selector = serde_json::json!({ "objectStorageConfig": { "name": "s" } });
    validate("thanos", &selector, &crds["prometheus"]["thanos"], &mut errors);
    assert_eq!(errors.len(), 3, "{errors:?}");
}

#[test]
fn no_secret_is_written_into_the_values() {
    let text = rules::to_yaml(&rules::helm_values(&every_option_set()).expect("valid")).expect("yaml");
    let values = yaml(&text);
    assert!(values["grafana"].get("adminPassword").is_none(), "{text}");
    assert_eq!(values["grafana"]["admin"]["existingSecret"], "grafana-credentials");
    let slack = &values["alertmanager"]["config"]["receivers"][1]["slack_configs"][0];
    assert!(slack.get("api_url").is_none(), "{text}");
    assert_eq!(slack["api_url_file"], "/etc/alertmanager/secrets/slack/webhook");
    assert_eq!(values["alertmanager"]["alertmanagerSpec"]["secrets"], serde_json::json!(["slack"]));
    for literal in ["hooks.slack.com", "changeme", "password:"] {
        assert!(!text.contains(literal), "{literal} in the values:\n{text}");
    }
    // Without a webhook Secret: a receiver with no integration, no placeholder URL.
    let plain = generated(&HelmValuesOptions::default());
    assert_eq!(
        plain["alertmanager"]["config"]["receivers"],
        serde_json::json!([{ "name": "null" }, { "name": "default" }])
    );
    assert!(
        plain["prometheus"].get("thanosService").is_none() && plain["prometheus"]["prometheusSpec"]["thanos"].is_null()
    );
}

#[test]
fn amtool_accepts_the_alertmanager_configuration() {
    // What Alertmanager loads is our `config` coalesced over the chart's
    // default one, as Helm merges them: maps key by key, lists replaced.
    let amtool = required_tool("amtool");
    let chart = yaml(&fixture("kube-prometheus-stack-88.5.3.values.yaml"));
    let dir = TempDir::new("mesh-metrics-helm");
    for options in [HelmValuesOptions::default(), every_option_set()] {
        let mut config = chart["alertmanager"]["config"].clone();
        merge(&mut config, generated(&options)["alertmanager"]["config"].take());
        let path = dir.path().join("alertmanager.yml");
        std::fs::write(&path, rules::to_yaml(&config).expect("yaml")).expect("write");
        let output = Command::new(&amtool).arg("check-config").arg(&path).output().expect("amtool runs");
        assert!(
            output.status.success(),
            "amtool check-config: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // The check can fail: the chart's Watchdog route with its receiver gone.
    let mut broken = chart["alertmanager"]["config"].clone();
    merge(&mut broken, serde_json::json!({ "receivers": [{ "name": "default" }], "route": { "receiver": "default" } }));
    let path = dir.path().join("broken.yml");
    std::fs::write(&path, rules::to_yaml(&broken).expect("yaml")).expect("write");
    let output = Command::new(&amtool).arg("check-config").arg(&path).output().expect("amtool runs");
    assert!(!output.status.success(), "amtool accepted a route to an undefined receiver");
}

#[test]
fn secret_references_are_checked() {
    assert_eq!(
        SecretKey::parse("thanos-objstore", "objstore.yml").expect("valid"),
        SecretKey { name: "thanos-objstore".to_owned(), key: "objstore.yml".to_owned() }
    );
    assert_eq!(SecretKey::parse("slack:webhook_url", "url").expect("valid").key, "webhook_url");
    assert_eq!(SecretKey::parse("team-a.slack:.webhook", "url").expect("valid").key, ".webhook");
    let long = "a".repeat(254);
    for bad in [
        "",
        "Slack",
        "slack:",
        "https://hooks.slack.com/services/T0/B0/x",
        "a b",
        "-slack",
        "slack-",
        ".",
        "a..b",
        "slack:.",
        "slack:..",
        "slack:..x",
        long.as_str(),
    ] {
        let error = SecretKey::parse(bad, "url").expect_err(bad);
        assert!(matches!(error, RulesError::SecretReference { .. }), "{bad}");
        assert!(error.to_string().contains("write NAME or NAME:KEY"), "{error}");
    }
}

#[test]
fn values_the_operator_would_refuse_are_refused_here() {
    let crds: Value = serde_json::from_str(&fixture("crd-schemas.json")).expect("crd-schemas.json");
    let pattern = |field: &str| {
        let schema = &crds["prometheus"][field];
        regex::Regex::new(schema["pattern"].as_str().expect("pattern")).expect("regex")
    };
    let quantity = {
        let schema = &crds["prometheus"]["resources"]["properties"]["limits"]["additionalProperties"];
        regex::Regex::new(schema["pattern"].as_str().expect("pattern")).expect("regex")
    };
    let with = |edit: &dyn Fn(&mut HelmValuesOptions)| {
        let mut options = HelmValuesOptions::default();
        edit(&mut options);
        rules::helm_values(&options)
    };
    // Our verdict agrees with the CRD's own pattern, for each kind of value.
    for retention in ["30d", "1h30m", "0", "5ms", "1y2w3d4h5m6s7ms", "30 days", "1d1d", "30", "m", "1h1y", "-1d"] {
        let ours = with(&|o| o.retention = retention.to_owned()).is_ok();
        assert_eq!(ours, pattern("retention").is_match(retention), "retention {retention:?}");
    }
    for size in ["50GB", "512MiB", "1.5TB", ".5GB", "0", "100B", "50G", "5.GB", "50 GB", "50gb", "5iB"] {
        let ours = with(&|o| o.retention_size = size.to_owned()).is_ok();
        // The CRD's pattern is anchored only at its end; ours is whole.
        let theirs = regex::Regex::new(&format!("^(?:{})", pattern("retentionSize").as_str())).expect("regex");
        assert_eq!(ours, theirs.is_match(size), "retention size {size:?}");
    }
    for amount in ["500m", "2", "4Gi", "1e3", "0.5", ".5", "+1", "1.5Gi", "4GB", "two", "1..5", ".", "4 Gi", "-1"] {
        let ours = with(&|o| o.memory_limit = amount.to_owned()).is_ok();
        // Negative quantities match the pattern; Kubernetes refuses them for resources.
        assert_eq!(ours, quantity.is_match(amount) && !amount.starts_with('-'), "quantity {amount:?}");
    }
    let error = with(&|o| o.retention = "30 days".to_owned()).expect_err("refused");
    assert!(matches!(error, RulesError::HelmValue { field: "retention", .. }), "{error}");
    assert!(error.to_string().contains("write a Prometheus duration such as 30d"), "{error}");
    assert!(with(&|o| o.storage_class = Some("Fast_SSD".to_owned())).is_err());
    assert!(with(&|o| o.grafana_admin_secret = "grafana:pw".to_owned()).is_err());
}
