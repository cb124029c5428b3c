//! The `mesh-metrics` command line: each command prints what the library
//! generates, `--output` writes it, and mistakes are errors that say what to
//! write (exit status 2).

use std::process::{Command, Output};

use mesh_metrics::rules::{self, SloConfig};

/// Every command that generates something.
const COMMANDS: [&str; 8] = [
    "rules",
    "prometheus-rule",
    "service-monitor",
    "pod-monitor",
    "scrape-config",
    "helm-values",
    "dashboard",
    "query",
];

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mesh-metrics")).args(args).output().expect("mesh-metrics runs")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn commands_print_what_the_library_generates() {
    let config = SloConfig { availability: 0.995, latency_seconds: 1.0, ..SloConfig::default() };
    assert_eq!(
        stdout(&run(&["rules", "--availability", "0.995", "--latency", "1"])),
        rules::to_yaml(&rules::rule_file(&config).expect("valid objectives")).expect("yaml")
    );
    let in_namespace = SloConfig { namespace: "observability".into(), ..SloConfig::default() };
    assert_eq!(
        stdout(&run(&["prometheus-rule", "--namespace", "observability"])),
        rules::to_yaml(&rules::prometheus_rule(&in_namespace).expect("valid objectives")).expect("yaml")
    );
    assert_eq!(stdout(&run(&["dashboard"])), rules::to_json(&rules::dashboard()).expect("json"));
    assert!(stdout(&run(&["service-monitor"])).contains("kind: ServiceMonitor"));
    let listed = stdout(&run(&["query"]));
    for query in rules::queries(&SloConfig::default()) {
        assert!(listed.contains(query.name) && listed.contains(query.description), "{listed}");
    }
    let strict = SloConfig { error_ratio_alert: 0.01, ..SloConfig::default() };
    let expected = rules::queries(&strict).into_iter().find(|q| q.name == "agents-over-error-ratio").expect("query");
    assert_eq!(
        stdout(&run(&["query", "agents-over-error-ratio", "--error-ratio", "0.01"])),
        format!("{}\n", expected.expr)
    );
    let custom = stdout(&run(&["rules", "--latency", "0.3", "--buckets", "0.1, 0.3, 1"]));
    assert!(custom.contains(r#"le=~"0\\.3""#), "an objective among the given buckets: {custom}");
    assert!(stdout(&run(&["pod-monitor", "--namespace", "agents"])).contains("namespace: agents"));
    let scrape = stdout(&run(&["scrape-config", "--target", "10.0.0.1:9464", "--shards", "2", "--shard", "1"]));
    assert!(scrape.contains("10.0.0.1:9464") && scrape.contains("hashmod"), "{scrape}");
}

#[test]
fn a_federating_server_scrapes_only_what_it_federates() {
    let federating = stdout(&run(&["scrape-config", "--federate", "10.0.0.2:9090"]));
    assert!(federating.contains("metrics_path: /federate") && federating.contains("10.0.0.2:9090"), "{federating}");
    assert!(!federating.contains("127.0.0.1:9464"), "no default local target: {federating}");
    assert!(!federating.contains("kubernetes_sd_configs"), "no discovery unless asked: {federating}");
    let with_discovery = stdout(&run(&["scrape-config", "--federate", "10.0.0.2:9090", "--kubernetes"]));
    assert!(with_discovery.contains("kubernetes_sd_configs"), "{with_discovery}");
    let with_target = stdout(&run(&["scrape-config", "--federate", "10.0.0.2:9090", "--target", "10.0.0.3:9464"]));
    assert!(with_target.contains("10.0.0.3:9464") && !with_target.contains("kubernetes_sd_configs"), "{with_target}");
    let plain = stdout(&run(&["scrape-config"]));
    assert!(plain.contains("127.0.0.1:9464") && plain.contains("kubernetes_sd_configs"), "{plain}");
}

#[test]
fn helm_values_from_flags() {
    use rules::{HelmValuesOptions, SecretKey};
    assert_eq!(
        stdout(&run(&["helm-values"])),
        rules::to_yaml(&rules::helm_values(&HelmValuesOptions::default()).expect("valid")).expect("yaml")
    );
    let args = [
        "helm-values",
        "--retention",
        "90d",
        "--retention-size",
        "200GB",
        "--interval",
        "15s",
        "--cpu-request",
        "500m",
        "--cpu-limit",
        "3",
        "--memory-request",
        "3Gi",
        "--memory-limit",
        "6Gi",
        "--storage-class",
        "fast-ssd",
        "--storage-size",
        "500Gi",
        "--grafana-admin-secret",
        "grafana-credentials",
        "--grafana-storage-size",
        "20Gi",
        "--slack-webhook-secret",
        "slack",
        "--slack-channel",
        "#mesh",
        "--thanos",
        "objstore:thanos.yaml",
    ];
    let expected = HelmValuesOptions {
        retention: "90d".to_owned(),
        retention_size: "200GB".to_owned(),
        interval: "15s".to_owned(),
        cpu_request: "500m".to_owned(),
        cpu_limit: "3".to_owned(),
        memory_request: "3Gi".to_owned(),
        memory_limit: "6Gi".to_owned(),
        storage_class: Some("fast-ssd".to_owned()),
        storage_size: "500Gi".to_owned(),
        grafana_admin_secret: "grafana-credentials".to_owned(),
        grafana_storage_size: "20Gi".to_owned(),
        slack_webhook_secret: Some(SecretKey { name: "slack".to_owned(), key: "url".to_owned() }),
        slack_channel: "#mesh".to_owned(),
        thanos_object_storage: Some(SecretKey { name: "objstore".to_owned(), key: "thanos.yaml".to_owned() }),
    };
    assert_eq!(stdout(&run(&args)), rules::to_yaml(&rules::helm_values(&expected).expect("valid")).expect("yaml"));
    assert!(stdout(&run(&["help", "helm-values"])).contains("--thanos <NAME[:KEY]>"));
}

#[test]
fn output_goes_to_a_file_when_asked() {
    let path = std::env::temp_dir().join(format!("mesh-metrics-cli-{}.yml", std::process::id()));
    let output = run(&["rules", "--output", path.to_str().expect("utf-8 path")]);
    assert!(stdout(&output).is_empty());
    let written = std::fs::read_to_string(&path).expect("written");
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        written,
        rules::to_yaml(&rules::rule_file(&SloConfig::default()).expect("valid objectives")).expect("yaml")
    );
}

#[test]
fn help_and_mistakes() {
    let help = stdout(&run(&["--help"]));
    for command in COMMANDS {
        assert!(help.contains(command), "{command} in the help: {help}");
    }
    let bare = run(&[]);
    assert_eq!(bare.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bare.stderr).contains("Usage: mesh-metrics"));
    assert!(stdout(&run(&["help", "scrape-config"])).contains("--shards <N>"));
    assert!(stdout(&run(&["rules", "--help"])).contains("--availability <RATIO>"));
    assert!(stdout(&run(&["--version"])).starts_with("mesh-metrics "));
    for (args, message) in [
        (&["deploy"][..], "unrecognized subcommand 'deploy'"),
        (&["scrape-confg"], "tip: a similar subcommand exists: 'scrape-config'"),
        (&["rules", "--availabilty", "0.99"], "tip: a similar argument exists: '--availability'"),
        (&["rules", "--availability", "1.5"], "availability must be between 0 and 1"),
        (&["rules", "--latency", "fast"], "invalid value 'fast' for '--latency <SECONDS>': give a number"),
        (&["rules", "--target", "x"], "unexpected argument '--target' found"),
        (&["scrape-config", "--shards", "3"], "the following required arguments were not provided:\n  --shard <I>"),
        (&["scrape-config", "--shards", "3", "--shard", "3"], "--shard 3 is not below --shards 3"),
        (&["scrape-config", "--shards", "two", "--shard", "0"], "invalid value 'two' for '--shards <N>'"),
        (&["scrape-config", "--external-label", "cluster"], "write NAME=VALUE"),
        (&["scrape-config", "--federate", "a:9090", "--shards", "2", "--shard", "0"], "give --target or --kubernetes"),
        (&["scrape-config", "--kubernetes", "--no-kubernetes"], "cannot be used with '--no-kubernetes'"),
        (&["rules", "--output"], "a value is required for '--output <FILE>'"),
        (&["rules", "--latency", "0.3"], "is not a bucket bound of the request-duration histogram (0.005, 0.01"),
        (&["query", "fastest-agents"], "no query named \"fastest-agents\" in the library; the queries are: top-agents"),
        (&["query", "--error-ratio", "high"], "invalid value 'high' for '--error-ratio <RATIO>'"),
        (&["rules", "--prometheus-memory-limit", "-1"], "Prometheus memory limit must be"),
        (&["rules", "--latency", "0.3", "--buckets", "0.1,fast"], "invalid value 'fast' for '--buckets"),
        (&["prometheus-rule", "--namespace"], "a value is required for '--namespace <NS>'"),
        (&["service-monitor", "--shards", "2"], "unexpected argument '--shards' found"),
        (&["pod-monitor", "extra"], "unexpected argument 'extra' found"),
        (&["dashboard", "--namespace", "x"], "unexpected argument '--namespace' found"),
        (&["helm-values", "--thanos", "Thanos:objstore"], "\"Thanos:objstore\" is not a Secret reference"),
        (&["helm-values", "--slack-webhook-secret", "https://hooks.slack.com/x"], "write NAME or NAME:KEY"),
        (&["helm-values", "--grafana-admin-secret", "admin password"], "is not a Secret reference"),
        (&["helm-values", "--grafana-admin-secret", "grafana:password"], "give the Secret's name only"),
        (&["helm-values", "--retention", "30 days"], "retention \"30 days\" is not valid: write a Prometheus duration"),
        (&["helm-values", "--memory-limit", "4 GB"], "memory-limit \"4 GB\" is not valid: write a Kubernetes quantity"),
        (&["helm-values", "--retention"], "a value is required for '--retention <DURATION>'"),
        (&["helm-values", "--target", "x"], "unexpected argument '--target' found"),
        (&["completions", "tcsh"], "invalid value 'tcsh' for '<SHELL>'"),
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}: nothing on standard output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn shell_completions() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout(&run(&["completions", shell]));
        for word in ["mesh-metrics", "helm-values", "scrape-config", "federate", "thanos"] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
    }
}

#[test]
fn output_applies_to_every_command() {
    let dir = std::env::temp_dir().join(format!("mesh-metrics-cli-all-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for command in COMMANDS {
        let path = dir.join(command);
        let printed = stdout(&run(&[command]));
        let output = run(&[command, "--output", path.to_str().expect("utf-8 path")]);
        assert!(stdout(&output).is_empty(), "{command}");
        assert_eq!(std::fs::read_to_string(&path).expect("written"), printed, "{command}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
