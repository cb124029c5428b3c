//! `mesh-metrics`: prints the recording rules, alerts, Kubernetes objects,
//! scrape configuration and Grafana dashboard for an MCP Mesh, generated from
//! the same names the instrumentation records. `mesh-metrics --help`.

use std::process::ExitCode;

use mesh_metrics::rules::{self, HelmValuesOptions, RulesError, ScrapeOptions, SecretKey, SloConfig};

const USAGE: &str = "\
mesh-metrics: Prometheus rules, alerts, manifests and a Grafana dashboard for MCP Mesh,
generated from the metric names mesh-metrics records

USAGE:
    mesh-metrics <COMMAND> [OPTIONS]

COMMANDS:
    rules             a Prometheus rule file: recording rules, alerts, SLO burn-rate alerts
    prometheus-rule   the same, as a monitoring.coreos.com/v1 PrometheusRule
    service-monitor   ServiceMonitors for the registry and the agents
    pod-monitor       a PodMonitor for the agents
    scrape-config     a prometheus.yml
    helm-values       values for the kube-prometheus-stack chart, secrets by reference
    dashboard         a Grafana dashboard (JSON)
    query [NAME]      the PromQL query library: the list, or one query
    help [COMMAND]    this help, or a command's options

OPTIONS:
    -o, --output FILE   write to FILE instead of standard output
    -h, --help          print help

Run `mesh-metrics help <COMMAND>` for a command's options.
";

const SLO_OPTIONS: &str = "\
    --availability RATIO       availability objective [default: 0.999]
    --latency SECONDS          latency objective; a histogram bucket bound [default: 0.5]
    --latency-objective RATIO  share of requests faster than --latency [default: 0.99]
    --buckets B1,B2,...        the request-duration histogram's bucket bounds; --latency must be
                               one of them [default: the guide's 0.005 .. 5]
    --error-ratio RATIO        error ratio that fires MCPMeshHighErrorRate [default: 0.05]
    --registry-job NAME        the registry's scrape job [default: mcp-mesh-registry]
    --prometheus-job NAME      the job Prometheus scrapes itself under [default: prometheus]
    --prometheus-memory-limit BYTES   Prometheus' memory limit [default: 4 GiB]
    --prometheus-series-limit N       the head series Prometheus is sized for [default: 2000000]
";

fn command_help(command: &str) -> Option<String> {
    let output = "    -o, --output FILE          write to FILE instead of standard output\n";
    Some(match command {
        "rules" => {
            format!("mesh-metrics rules [OPTIONS]\n\nA Prometheus rule file.\n\nOPTIONS:\n{SLO_OPTIONS}{output}")
        }
        "prometheus-rule" => format!(
            "mesh-metrics prometheus-rule [OPTIONS]\n\nThe rule file as a PrometheusRule.\n\nOPTIONS:\n{SLO_OPTIONS}    \
             --namespace NS             the object's namespace [default: monitoring]\n{output}"
        ),
        "service-monitor" | "pod-monitor" => format!(
            "mesh-metrics {command} [OPTIONS]\n\nDiscovery objects for the Prometheus Operator.\n\nOPTIONS:\n    \
             --namespace NS             the objects' namespace [default: mcp-mesh]\n{output}"
        ),
        "scrape-config" => format!(
            "mesh-metrics scrape-config [OPTIONS]\n\nA prometheus.yml.\n\nOPTIONS:\n    \
             --target HOST:PORT         a static target (repeatable) [default: 127.0.0.1:9464]\n    \
             --federate HOST:PORT       a Prometheus to federate mcp_mesh:* and up from (repeatable);\n    \
                                        a federating server scrapes nothing else unless given\n    \
                                        --target or --kubernetes\n    \
             --remote-write URL         send the mcp_mesh:* recording rules to long-term storage\n    \
             --rule-file PATH           a rule file to load (repeatable)\n    \
             --alertmanager HOST:PORT   where to send alerts (repeatable)\n    \
             --external-label K=V       an external label (repeatable)\n    \
             --shards N --shard I       keep shard I (0-based) of N of the targets (hashmod)\n    \
             --kubernetes               with --federate, keep the Kubernetes discovery jobs too\n    \
             --no-kubernetes            leave out the Kubernetes discovery jobs (for a Prometheus built\n    \
                                        without them, such as Debian's)\n{output}"
        ),
        "helm-values" => format!(
            "mesh-metrics helm-values [OPTIONS]\n\nValues for the kube-prometheus-stack Helm chart. No secret is \
             written into them: each is a reference to a Secret you create.\n\nOPTIONS:\n    \
             --retention DURATION       how long Prometheus keeps data [default: 30d]\n    \
             --retention-size SIZE      the most disk the TSDB may use [default: 50GB]\n    \
             --interval DURATION        scrape and evaluation interval [default: 30s]\n    \
             --cpu-request CPU          [default: 1]\n    \
             --cpu-limit CPU            [default: 2]\n    \
             --memory-request BYTES     [default: 2Gi]\n    \
             --memory-limit BYTES       [default: 4Gi]\n    \
             --storage-class NAME       the volume claim's storage class [default: the cluster's]\n    \
             --storage-size SIZE        the volume claim's size [default: 100Gi]\n    \
             --grafana-admin-secret NAME  the Secret with keys admin-user and admin-password\n    \
                                        [default: grafana-admin]\n    \
             --grafana-storage-size SIZE  [default: 10Gi]\n    \
             --slack-webhook-secret NAME[:KEY]  the Secret holding the Slack webhook URL [default key: url];\n    \
                                        without it alerts reach a receiver with no integration\n    \
             --slack-channel CHANNEL    [default: #alerts]\n    \
             --thanos NAME[:KEY]        run the Thanos sidecar, its object-storage configuration in this\n    \
                                        Secret [default key: objstore.yml]\n{output}"
        ),
        "dashboard" => format!("mesh-metrics dashboard [OPTIONS]\n\nA Grafana dashboard.\n\nOPTIONS:\n{output}"),
        "query" => format!(
            "mesh-metrics query [NAME] [OPTIONS]\n\nThe PromQL query library: without NAME, each query's name and what it \
             answers; with NAME, its PromQL.\n\nOPTIONS:\n    \
             --error-ratio RATIO        the threshold of agents-over-error-ratio [default: 0.05]\n{output}"
        ),
        _ => return None,
    })
}

/// What the command line asked for.
struct Request {
    command: String,
    output: Option<std::path::PathBuf>,
    slo: SloConfig,
    namespace: Option<String>,
    scrape: ScrapeOptions,
    shards: Option<u32>,
    shard: Option<u32>,
    query: Option<String>,
    kubernetes_asked: bool,
    helm: HelmValuesOptions,
}

enum Parsed {
    Run(Box<Request>),
    Help(String),
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let Some(command) = args.next() else { return Ok(Parsed::Help(USAGE.to_owned())) };
    match command.as_str() {
        "-h" | "--help" => return Ok(Parsed::Help(USAGE.to_owned())),
        "help" => {
            return Ok(Parsed::Help(match args.next() {
                Some(topic) => command_help(&topic).ok_or_else(|| format!("no command {topic:?}\n\n{USAGE}"))?,
                None => USAGE.to_owned(),
            }));
        }
        _ if command_help(&command).is_none() => return Err(format!("unknown command {command:?}\n\n{USAGE}")),
        _ => {}
    }
    let mut request = Request {
        command: command.clone(),
        output: None,
        slo: SloConfig::default(),
        namespace: None,
        scrape: ScrapeOptions { static_targets: Vec::new(), ..ScrapeOptions::default() },
        shards: None,
        shard: None,
        query: None,
        kubernetes_asked: false,
        helm: HelmValuesOptions::default(),
    };
    let slo_command = matches!(command.as_str(), "rules" | "prometheus-rule");
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number =
            |name: &str, text: String| text.parse::<f64>().map_err(|_| format!("{name} {text:?}: give a number"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help(command_help(&command).unwrap_or_default())),
            "-o" | "--output" => request.output = Some(value("--output")?.into()),
            "--availability" if slo_command => request.slo.availability = number(&arg, value(&arg)?)?,
            "--latency" if slo_command => request.slo.latency_seconds = number(&arg, value(&arg)?)?,
            "--latency-objective" if slo_command => request.slo.latency_objective = number(&arg, value(&arg)?)?,
            "--error-ratio" if slo_command || command == "query" => {
                request.slo.error_ratio_alert = number(&arg, value(&arg)?)?;
            }
            "--prometheus-job" if slo_command => request.slo.prometheus_job = value(&arg)?,
            "--prometheus-memory-limit" if slo_command => {
                request.slo.prometheus_memory_limit_bytes = number(&arg, value(&arg)?)?;
            }
            "--prometheus-series-limit" if slo_command => {
                request.slo.prometheus_series_limit = number(&arg, value(&arg)?)?;
            }
            name if command == "query" && request.query.is_none() && !name.starts_with('-') => {
                request.query = Some(name.to_owned());
            }
            "--buckets" if slo_command => {
                let text = value(&arg)?;
                request.slo.buckets =
                    text.split(',').map(|bound| number(&arg, bound.trim().to_owned())).collect::<Result<_, _>>()?;
            }
            "--registry-job" if slo_command => request.slo.registry_job = value(&arg)?,
            "--namespace" if matches!(command.as_str(), "prometheus-rule" | "service-monitor" | "pod-monitor") => {
                request.namespace = Some(value(&arg)?);
            }
            "--target" if command == "scrape-config" => request.scrape.static_targets.push(value(&arg)?),
            "--federate" if command == "scrape-config" => request.scrape.federate.push(value(&arg)?),
            "--no-kubernetes" if command == "scrape-config" => request.scrape.kubernetes = false,
            "--kubernetes" if command == "scrape-config" => request.kubernetes_asked = true,
            "--remote-write" if command == "scrape-config" => request.scrape.remote_write = Some(value(&arg)?),
            "--rule-file" if command == "scrape-config" => request.scrape.rule_files.push(value(&arg)?),
            "--alertmanager" if command == "scrape-config" => request.scrape.alertmanagers.push(value(&arg)?),
            "--external-label" if command == "scrape-config" => {
                let text = value(&arg)?;
                let (k, v) = text.split_once('=').ok_or(format!("--external-label {text:?}: write NAME=VALUE"))?;
                request.scrape.external_labels.insert(k.to_owned(), v.to_owned());
            }
            "--shards" | "--shard" if command == "scrape-config" => {
                let text = value(&arg)?;
                let n = text.parse::<u32>().map_err(|_| format!("{arg} {text:?}: give a whole number"))?;
                if arg == "--shards" { request.shards = Some(n) } else { request.shard = Some(n) }
            }
            _ if command == "helm-values" && helm_option(&mut request.helm, &arg, &mut value)? => {}
            other => {
                return Err(format!(
                    "{command} does not take {other:?}\n\n{}",
                    command_help(&command).unwrap_or_default()
                ));
            }
        }
    }
    // A server that federates scrapes nothing but what it federates: no local
    // target, no discovery, unless asked for.
    if !request.scrape.federate.is_empty() {
        request.scrape.kubernetes = request.scrape.kubernetes && request.kubernetes_asked;
    } else if request.scrape.static_targets.is_empty() {
        request.scrape.static_targets = ScrapeOptions::default().static_targets;
    }
    request.scrape.shard = match (request.shards, request.shard) {
        (Some(shards), Some(shard)) => Some((shards, shard)),
        (None, None) => None,
        _ => return Err("--shards and --shard go together: --shards 3 --shard 0".to_owned()),
    };
    Ok(Parsed::Run(Box::new(request)))
}

/// Applies one `helm-values` option; `false` if `arg` is not one.
fn helm_option(
    helm: &mut HelmValuesOptions,
    arg: &str,
    value: &mut impl FnMut(&str) -> Result<String, String>,
) -> Result<bool, String> {
    let secret = |text: String, default_key: &str| SecretKey::parse(&text, default_key).map_err(|e| e.to_string());
    let field = match arg {
        "--retention" => &mut helm.retention,
        "--retention-size" => &mut helm.retention_size,
        "--interval" => &mut helm.interval,
        "--cpu-request" => &mut helm.cpu_request,
        "--cpu-limit" => &mut helm.cpu_limit,
        "--memory-request" => &mut helm.memory_request,
        "--memory-limit" => &mut helm.memory_limit,
        "--storage-size" => &mut helm.storage_size,
        "--grafana-admin-secret" => &mut helm.grafana_admin_secret,
        "--grafana-storage-size" => &mut helm.grafana_storage_size,
        "--slack-channel" => &mut helm.slack_channel,
        "--storage-class" => {
            helm.storage_class = Some(value(arg)?);
            return Ok(true);
        }
        "--slack-webhook-secret" => {
            helm.slack_webhook_secret = Some(secret(value(arg)?, "url")?);
            return Ok(true);
        }
        "--thanos" => {
            helm.thanos_object_storage = Some(secret(value(arg)?, "objstore.yml")?);
            return Ok(true);
        }
        _ => return Ok(false),
    };
    *field = value(arg)?;
    Ok(true)
}

fn generate(request: &Request) -> Result<String, RulesError> {
    let namespace = |default: &str| request.namespace.clone().unwrap_or_else(|| default.to_owned());
    match request.command.as_str() {
        "rules" => {
            request.slo.validate()?;
            rules::to_yaml(&rules::rule_file(&request.slo)?)
        }
        "prometheus-rule" => {
            request.slo.validate()?;
            let slo = SloConfig { namespace: namespace("monitoring"), ..request.slo.clone() };
            rules::to_yaml(&rules::prometheus_rule(&slo)?)
        }
        "service-monitor" => rules::to_yaml_documents(&rules::service_monitors(&namespace("mcp-mesh"))),
        "pod-monitor" => rules::to_yaml(&rules::pod_monitor(&namespace("mcp-mesh"))),
        "scrape-config" => rules::to_yaml(&rules::scrape_config(&request.scrape)?),
        "helm-values" => {
            SecretKey::parse(&request.helm.grafana_admin_secret, "admin-password")?;
            rules::to_yaml(&rules::helm_values(&request.helm))
        }
        "query" => {
            let library = rules::queries(&request.slo);
            match &request.query {
                None => Ok(library.iter().map(|query| format!("{:<26}{}\n", query.name, query.description)).collect()),
                Some(name) => match library.iter().find(|query| query.name == name) {
                    Some(query) => Ok(format!("{}\n", query.expr)),
                    None => Err(RulesError::UnknownQuery {
                        name: name.clone(),
                        known: library.iter().map(|query| query.name).collect::<Vec<_>>().join(", "),
                    }),
                },
            }
        }
        _ => rules::to_json(&rules::dashboard()),
    }
}

fn main() -> ExitCode {
    let request = match parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(request)) => request,
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("mesh-metrics: {message}");
            return ExitCode::from(2);
        }
    };
    let text = match generate(&request) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("mesh-metrics: {error}");
            return ExitCode::from(2);
        }
    };
    let written = match &request.output {
        Some(path) => std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display())),
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(text.as_bytes()).map_err(|e| format!("standard output: {e}"))
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mesh-metrics: {message}");
            ExitCode::FAILURE
        }
    }
}
