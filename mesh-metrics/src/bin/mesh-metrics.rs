//! `mesh-metrics`: prints the recording rules, alerts, Kubernetes objects,
//! scrape configuration, Helm values and Grafana dashboard for an MCP Mesh,
//! generated from the same names the instrumentation records.
//! `mesh-metrics --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use mesh_metrics::rules::{self, HelmValuesOptions, RulesError, ScrapeOptions, SecretKey, SloConfig};

/// Prometheus rules, alerts, manifests and a Grafana dashboard for MCP Mesh,
/// generated from the metric names mesh-metrics records.
#[derive(Debug, Parser)]
#[command(name = "mesh-metrics", version, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE", global = true)]
    output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A Prometheus rule file: recording rules, alerts, SLO burn-rate alerts.
    Rules(Slo),
    /// The rule file as a monitoring.coreos.com/v1 PrometheusRule.
    PrometheusRule {
        #[command(flatten)]
        slo: Slo,
        /// The object's namespace.
        #[arg(long, value_name = "NS", default_value = "monitoring")]
        namespace: String,
    },
    /// ServiceMonitors for the registry and the agents.
    ServiceMonitor(Namespace),
    /// A PodMonitor for agents without a Service.
    PodMonitor(Namespace),
    /// A prometheus.yml: static targets, Kubernetes discovery, federation,
    /// remote write, sharding.
    ScrapeConfig(Scrape),
    /// Values for the kube-prometheus-stack Helm chart. No secret is written
    /// into them: each is a reference to a Secret you create.
    HelmValues(Box<Helm>),
    /// A Grafana dashboard (JSON) over the recording rules.
    Dashboard {
        /// The request duration is a native histogram (the exporter's
        /// `.native_histograms(..)`): latency panels read native buckets.
        #[arg(long)]
        native_histograms: bool,
    },
    /// The PromQL query library: without NAME, each query's name and what it
    /// answers; with NAME, its PromQL.
    Query {
        /// A query of the library.
        name: Option<String>,
        /// The threshold of agents-over-error-ratio.
        #[arg(long, value_name = "RATIO", default_value_t = SloConfig::default().error_ratio_alert, value_parser = number, allow_negative_numbers = true)]
        error_ratio: f64,
    },
    /// A completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// The objectives and names the rules are generated for.
#[derive(Debug, Args)]
struct Slo {
    /// Availability objective.
    #[arg(long, value_name = "RATIO", default_value_t = SloConfig::default().availability, value_parser = number, allow_negative_numbers = true)]
    availability: f64,
    /// Latency objective in seconds; a bucket bound of the request-duration histogram.
    #[arg(long, value_name = "SECONDS", default_value_t = SloConfig::default().latency_seconds, value_parser = number, allow_negative_numbers = true)]
    latency: f64,
    /// Share of requests faster than --latency.
    #[arg(long, value_name = "RATIO", default_value_t = SloConfig::default().latency_objective, value_parser = number, allow_negative_numbers = true)]
    latency_objective: f64,
    /// The request-duration histogram's bucket bounds (the exporter's; the
    /// guide's by default); --latency must be one of them.
    #[arg(long, value_name = "B1,B2,...", value_delimiter = ',', value_parser = number, allow_negative_numbers = true)]
    buckets: Vec<f64>,
    /// Error ratio that fires MCPMeshHighErrorRate.
    #[arg(long, value_name = "RATIO", default_value_t = SloConfig::default().error_ratio_alert, value_parser = number, allow_negative_numbers = true)]
    error_ratio: f64,
    /// The registry's scrape job.
    #[arg(long, value_name = "NAME", default_value_t = SloConfig::default().registry_job)]
    registry_job: String,
    /// The job Prometheus scrapes itself under.
    #[arg(long, value_name = "NAME", default_value_t = SloConfig::default().prometheus_job)]
    prometheus_job: String,
    /// Prometheus' memory limit in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = SloConfig::default().prometheus_memory_limit_bytes, value_parser = number, allow_negative_numbers = true)]
    prometheus_memory_limit: f64,
    /// The head series Prometheus is sized for.
    #[arg(long, value_name = "N", default_value_t = SloConfig::default().prometheus_series_limit, value_parser = number, allow_negative_numbers = true)]
    prometheus_series_limit: f64,
    /// The request duration is a native histogram (the exporter's
    /// `.native_histograms(..)`): native-aware latency rules, for Prometheus
    /// 2.40+ with --enable-feature=native-histograms; any --latency is allowed.
    #[arg(long)]
    native_histograms: bool,
}

impl Slo {
    fn config(&self) -> Result<SloConfig, RulesError> {
        let defaults = SloConfig::default();
        let config = SloConfig {
            availability: self.availability,
            latency_seconds: self.latency,
            latency_objective: self.latency_objective,
            error_ratio_alert: self.error_ratio,
            registry_job: self.registry_job.clone(),
            buckets: if self.buckets.is_empty() { defaults.buckets.clone() } else { self.buckets.clone() },
            prometheus_job: self.prometheus_job.clone(),
            prometheus_memory_limit_bytes: self.prometheus_memory_limit,
            prometheus_series_limit: self.prometheus_series_limit,
            native_histograms: self.native_histograms,
            ..defaults
        };
        config.validate()?;
        Ok(config)
    }
}

#[derive(Debug, Args)]
struct Namespace {
    /// The objects' namespace.
    #[arg(long, value_name = "NS", default_value = "mcp-mesh")]
    namespace: String,
}

#[derive(Debug, Args)]
struct Scrape {
    /// A static target (repeatable) [default without --federate: 127.0.0.1:9464].
    #[arg(long, value_name = "HOST:PORT")]
    target: Vec<String>,
    /// A Prometheus to federate mcp_mesh:* and up from (repeatable); a
    /// federating server scrapes nothing else unless given --target or --kubernetes.
    #[arg(long, value_name = "HOST:PORT")]
    federate: Vec<String>,
    /// Send the mcp_mesh:* recording rules to long-term storage.
    #[arg(long, value_name = "URL")]
    remote_write: Option<String>,
    /// A rule file to load (repeatable).
    #[arg(long, value_name = "PATH")]
    rule_file: Vec<String>,
    /// Where to send alerts (repeatable).
    #[arg(long, value_name = "HOST:PORT")]
    alertmanager: Vec<String>,
    /// An external label (repeatable).
    #[arg(long, value_name = "NAME=VALUE", value_parser = external_label)]
    external_label: Vec<(String, String)>,
    /// How many shards the targets are split into (hashmod of the address).
    #[arg(long, value_name = "N", requires = "shard")]
    shards: Option<u32>,
    /// The shard (0-based) this server keeps.
    #[arg(long, value_name = "I", requires = "shards")]
    shard: Option<u32>,
    /// With --federate, keep the Kubernetes discovery jobs too.
    #[arg(long, conflicts_with = "no_kubernetes")]
    kubernetes: bool,
    /// Leave out the Kubernetes discovery jobs (for a Prometheus built
    /// without them, such as Debian's).
    #[arg(long)]
    no_kubernetes: bool,
}

impl Scrape {
    fn options(&self) -> ScrapeOptions {
        let federating = !self.federate.is_empty();
        let static_targets = if self.target.is_empty() && !federating {
            ScrapeOptions::default().static_targets
        } else {
            self.target.clone()
        };
        ScrapeOptions {
            static_targets,
            federate: self.federate.clone(),
            remote_write: self.remote_write.clone(),
            rule_files: self.rule_file.clone(),
            alertmanagers: self.alertmanager.clone(),
            shard: self.shards.zip(self.shard),
            external_labels: self.external_label.iter().cloned().collect(),
            // A server that federates scrapes nothing but what it federates
            // unless asked for discovery.
            kubernetes: if federating { self.kubernetes } else { !self.no_kubernetes },
        }
    }
}

#[derive(Debug, Args)]
struct Helm {
    /// How long Prometheus keeps data.
    #[arg(long, value_name = "DURATION", default_value_t = HelmValuesOptions::default().retention)]
    retention: String,
    /// The most disk the TSDB may use.
    #[arg(long, value_name = "SIZE", default_value_t = HelmValuesOptions::default().retention_size)]
    retention_size: String,
    /// Scrape and evaluation interval.
    #[arg(long, value_name = "DURATION", default_value_t = HelmValuesOptions::default().interval)]
    interval: String,
    /// Prometheus' CPU request.
    #[arg(long, value_name = "CPU", default_value_t = HelmValuesOptions::default().cpu_request)]
    cpu_request: String,
    /// Prometheus' CPU limit.
    #[arg(long, value_name = "CPU", default_value_t = HelmValuesOptions::default().cpu_limit)]
    cpu_limit: String,
    /// Prometheus' memory request.
    #[arg(long, value_name = "BYTES", default_value_t = HelmValuesOptions::default().memory_request)]
    memory_request: String,
    /// Prometheus' memory limit.
    #[arg(long, value_name = "BYTES", default_value_t = HelmValuesOptions::default().memory_limit)]
    memory_limit: String,
    /// The volume claim's storage class [default: the cluster's].
    #[arg(long, value_name = "NAME")]
    storage_class: Option<String>,
    /// The volume claim's size.
    #[arg(long, value_name = "SIZE", default_value_t = HelmValuesOptions::default().storage_size)]
    storage_size: String,
    /// The Secret with Grafana's admin-user and admin-password keys.
    #[arg(long, value_name = "NAME", default_value_t = HelmValuesOptions::default().grafana_admin_secret, value_parser = secret_name)]
    grafana_admin_secret: String,
    /// The size of Grafana's volume.
    #[arg(long, value_name = "SIZE", default_value_t = HelmValuesOptions::default().grafana_storage_size)]
    grafana_storage_size: String,
    /// The Secret holding the Slack webhook URL [default key: url]; without
    /// it alerts reach a receiver with no integration.
    #[arg(long, value_name = "NAME[:KEY]", value_parser = |text: &str| secret(text, "url"))]
    slack_webhook_secret: Option<SecretKey>,
    /// The Slack channel alerts are posted to.
    #[arg(long, value_name = "CHANNEL", default_value_t = HelmValuesOptions::default().slack_channel)]
    slack_channel: String,
    /// Run the Thanos sidecar, its object-storage configuration in this
    /// Secret [default key: objstore.yml].
    #[arg(long, value_name = "NAME[:KEY]", value_parser = |text: &str| secret(text, "objstore.yml"))]
    thanos: Option<SecretKey>,
}

impl Helm {
    fn options(&self) -> HelmValuesOptions {
        HelmValuesOptions {
            retention: self.retention.clone(),
            retention_size: self.retention_size.clone(),
            interval: self.interval.clone(),
            cpu_request: self.cpu_request.clone(),
            cpu_limit: self.cpu_limit.clone(),
            memory_request: self.memory_request.clone(),
            memory_limit: self.memory_limit.clone(),
            storage_class: self.storage_class.clone(),
            storage_size: self.storage_size.clone(),
            grafana_admin_secret: self.grafana_admin_secret.clone(),
            grafana_storage_size: self.grafana_storage_size.clone(),
            slack_webhook_secret: self.slack_webhook_secret.clone(),
            slack_channel: self.slack_channel.clone(),
            thanos_object_storage: self.thanos.clone(),
        }
    }
}

fn number(text: &str) -> Result<f64, String> {
    text.trim().parse::<f64>().map_err(|_| "give a number".to_owned())
}

fn external_label(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or("write NAME=VALUE")?;
    Ok((name.to_owned(), value.to_owned()))
}

fn secret(text: &str, default_key: &str) -> Result<SecretKey, String> {
    SecretKey::parse(text, default_key).map_err(|e| e.to_string())
}

fn secret_name(text: &str) -> Result<String, String> {
    if text.contains(':') {
        return Err("give the Secret's name only: its keys are admin-user and admin-password".to_owned());
    }
    secret(text, "admin-password").map(|reference| reference.name)
}

fn generate(command: &Command) -> Result<String, RulesError> {
    match command {
        Command::Rules(slo) => rules::to_yaml(&rules::rule_file(&slo.config()?)?),
        Command::PrometheusRule { slo, namespace } => {
            let slo = SloConfig { namespace: namespace.clone(), ..slo.config()? };
            rules::to_yaml(&rules::prometheus_rule(&slo)?)
        }
        Command::ServiceMonitor(ns) => rules::to_yaml_documents(&rules::service_monitors(&ns.namespace)),
        Command::PodMonitor(ns) => rules::to_yaml(&rules::pod_monitor(&ns.namespace)),
        Command::ScrapeConfig(scrape) => rules::to_yaml(&rules::scrape_config(&scrape.options())?),
        Command::HelmValues(helm) => rules::to_yaml(&rules::helm_values(&helm.options())?),
        Command::Dashboard { native_histograms } => rules::to_json(&rules::dashboard_for(*native_histograms)),
        Command::Query { name, error_ratio } => {
            let library = rules::queries(&SloConfig { error_ratio_alert: *error_ratio, ..SloConfig::default() });
            match name {
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
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "mesh-metrics", &mut script);
            Ok(String::from_utf8_lossy(&script).into_owned())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let text = match generate(&cli.command) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("mesh-metrics: {error}");
            return ExitCode::from(2);
        }
    };
    let written = match &cli.output {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
