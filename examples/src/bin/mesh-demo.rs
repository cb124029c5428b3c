//! The mesh demo: a weather agent and a registry under realistic traffic —
//! successes, errors, slow calls and cancelled calls — served on `/metrics`.
//!
//! ```text
//! mesh-demo [--listen ADDR] [--duration SECS] [--workers N] [--trace-log FILE] [--native-histograms]
//! ```
//!
//! Every simulated request arrives with a W3C `traceparent` header, as it would
//! from a traced caller, so the latency buckets carry real exemplars.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use mesh_metrics::trace::{self, TraceId};
use mesh_metrics_examples::analytics::{AnalyticsAgent, Currency, Product, Transaction};
use mesh_metrics_examples::registry::MeshRegistry;
use mesh_metrics_examples::summary;
use mesh_metrics_examples::traffic::Rng;
use mesh_metrics_examples::weather::{WeatherAgent, locations};

const USAGE: &str = "\
mesh-demo: a weather agent and a registry under traffic, served on /metrics

USAGE:
    mesh-demo [--listen ADDR] [--duration SECS] [--workers N] [--trace-log FILE] [--otlp URL] [--native-histograms]

OPTIONS:
    --listen ADDR     where to serve /metrics [default: 127.0.0.1:9464]
    --duration SECS   stop by itself after SECS seconds [default: run until Ctrl-C]
    --workers N       concurrent callers [default: 4]
    --summary SECS    seconds between live summaries [default: 5]
    --trace-log FILE  append the traceparent header of every request to FILE
    --otlp URL        also push every metric to this OTLP/HTTP receiver (e.g. http://127.0.0.1:4318)
    --otlp-interval SECS  seconds between OTLP pushes [default: 10]
    --native-histograms   request durations as native histograms (served in the protobuf format; Prometheus
                      2.40+ scrapes them with --enable-feature=native-histograms)
    --keep-classic-buckets  with --native-histograms: keep the classic buckets alongside
    -h, --help        print this help
";

#[derive(Debug)]
struct Options {
    listen: SocketAddr,
    duration: Option<Duration>,
    workers: usize,
    summary_every: Duration,
    trace_log: Option<std::path::PathBuf>,
    otlp: Option<String>,
    otlp_interval: Duration,
    native_histograms: bool,
    keep_classic_buckets: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        listen: mesh_metrics::DEFAULT_LISTEN,
        duration: None,
        workers: 4,
        summary_every: Duration::from_secs(5),
        trace_log: None,
        otlp: None,
        otlp_interval: Duration::from_secs(10),
        native_histograms: false,
        keep_classic_buckets: false,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let text = value("--listen")?;
                options.listen =
                    text.parse().map_err(|e| format!("--listen {text:?}: {e}; write e.g. 127.0.0.1:9464"))?;
            }
            "--duration" => options.duration = Some(Duration::from_secs_f64(seconds(&value("--duration")?)?)),
            "--summary" => options.summary_every = Duration::from_secs_f64(seconds(&value("--summary")?)?.max(0.1)),
            "--trace-log" => options.trace_log = Some(value("--trace-log")?.into()),
            "--otlp" => options.otlp = Some(value("--otlp")?),
            "--native-histograms" => options.native_histograms = true,
            "--keep-classic-buckets" => options.keep_classic_buckets = true,
            "--otlp-interval" => {
                options.otlp_interval = Duration::from_secs_f64(seconds(&value("--otlp-interval")?)?.max(0.1));
            }
            "--workers" => {
                let text = value("--workers")?;
                options.workers = text
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--workers {text:?}: give a positive number"))?;
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    if options.keep_classic_buckets && !options.native_histograms {
        return Err("--keep-classic-buckets goes with --native-histograms".into());
    }
    Ok(Some(options))
}

fn seconds(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or(format!("{text:?} is not a number of seconds"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("mesh-demo: {message}");
            return ExitCode::from(2);
        }
    };
    let mut builder = mesh_metrics::Exporter::builder().listen(options.listen).agent_info(
        "weather-agent",
        env!("CARGO_PKG_VERSION"),
        &["weather_forecast", "weather_current"],
    );
    if options.native_histograms {
        let native = mesh_metrics::NativeHistograms::new().keep_classic_buckets(options.keep_classic_buckets);
        builder = builder.native_histograms(native);
    }
    if let Some(endpoint) = &options.otlp {
        let mut config = mesh_metrics::OtlpConfig::new(endpoint.clone());
        config.interval = options.otlp_interval;
        builder = builder.otlp(config);
    }
    let exporter = match builder.install() {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("mesh-demo: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("mesh-demo: scrape http://{}/metrics (Ctrl-C to stop)", exporter.local_addr());

    let trace_log = match &options.trace_log {
        Some(path) => match TraceLog::create(path) {
            Ok(log) => Some(Arc::new(log)),
            Err(error) => {
                eprintln!("mesh-demo: --trace-log {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let weather = Arc::new(WeatherAgent);
    let registry = Arc::new(MeshRegistry::new());
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..options.workers {
        let seed = Rng::from_time().next_u64() ^ worker as u64;
        tasks.spawn(weather_traffic(weather.clone(), seed, trace_log.clone()));
    }
    tasks.spawn(registry_traffic(registry, Rng::from_time().next_u64()));
    match AnalyticsAgent::new() {
        Ok(analytics) => {
            tasks.spawn(analytics_traffic(Arc::new(analytics), Rng::from_time().next_u64()));
        }
        Err(error) => eprintln!("mesh-demo: analytics agent: {error}"),
    }
    tasks.spawn(print_summaries(options.summary_every));

    let stop = async {
        match options.duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = stop => {}
        _ = tokio::signal::ctrl_c() => println!("\nmesh-demo: interrupted"),
    }
    tasks.shutdown().await;
    exporter.shutdown().await;
    ExitCode::SUCCESS
}

/// One caller: mostly fast forecasts, some unknown locations (errors), some
/// slow upstreams (errors past 900 ms), some callers that give up (cancelled),
/// and synchronous current-conditions lookups.
///
/// Each request carries a fresh `traceparent`, read back with
/// [`TraceId::from_traceparent`] as a real agent would read its request header.
async fn weather_traffic(agent: Arc<WeatherAgent>, seed: u64, trace_log: Option<Arc<TraceLog>>) {
    let mut rng = Rng::new(seed);
    let places = locations();
    loop {
        let traceparent = format!("00-{:016x}{:016x}-{:016x}-01", rng.next_u64(), rng.next_u64(), rng.next_u64() | 1);
        if let Some(log) = &trace_log {
            log.append(&traceparent);
        }
        let Ok(trace_id) = TraceId::from_traceparent(&traceparent) else { continue };
        let location = rng.pick(&places).copied().unwrap_or("lisbon");
        let latency = match rng.below(100) {
            0..=79 => Duration::from_millis(5 + rng.below(60)),
            80..=94 => Duration::from_millis(100 + rng.below(400)),
            _ => Duration::from_millis(700 + rng.below(600)),
        };
        if rng.chance(10) {
            // The caller gives up after 200 ms: a cancelled call when it is slower.
            let call = trace::scope(trace_id, agent.get_forecast(location, latency));
            let _ = tokio::time::timeout(Duration::from_millis(200), call).await;
        } else {
            let _ = trace::scope(trace_id, agent.get_forecast(location, latency)).await;
        }
        {
            let _trace = trace::enter(trace_id);
            let _ = agent.get_current(location);
        }
        tokio::time::sleep(Duration::from_millis(rng.below(40))).await;
    }
}

/// Transactions for the analytics agent: its business metrics, and now and
/// then an invalid amount (an error).
async fn analytics_traffic(agent: Arc<AnalyticsAgent>, seed: u64) {
    let mut rng = Rng::new(seed);
    loop {
        let transaction = Transaction {
            amount: if rng.chance(2) { -1.0 } else { (rng.below(50_000) as f64) / 100.0 },
            currency: *rng.pick(&[Currency::Usd, Currency::Eur, Currency::Gbp]).unwrap_or(&Currency::Usd),
            product: *rng.pick(&[Product::Basic, Product::Pro, Product::Enterprise]).unwrap_or(&Product::Basic),
            requires_external_validation: rng.chance(40),
        };
        let _ = agent.process_transaction(&transaction).await;
        tokio::time::sleep(Duration::from_millis(20 + rng.below(60))).await;
    }
}

/// Agents joining, beating and leaving the mesh.
async fn registry_traffic(registry: Arc<MeshRegistry>, seed: u64) {
    let mut rng = Rng::new(seed);
    let names = ["weather-agent", "analytics", "translator", "search", "billing"];
    loop {
        let name = rng.pick(&names).copied().unwrap_or("search");
        let _ = match rng.below(10) {
            0..=2 => registry.register(name),
            3..=8 => registry.heartbeat(name, rng.chance(85)),
            _ => registry.deregister(name),
        };
        tokio::time::sleep(Duration::from_millis(50 + rng.below(100))).await;
    }
}

async fn print_summaries(every: Duration) {
    let mut before = mesh_metrics::snapshot();
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let after = mesh_metrics::snapshot();
        println!("\n{}", summary::format(&summary::between(&before, &after, every.as_secs_f64())));
        before = after;
    }
}

/// The `--trace-log` file: one `traceparent` per line, so a test can check
/// that the exemplars Prometheus stored are the demo's own trace IDs.
struct TraceLog(std::sync::Mutex<std::io::LineWriter<std::fs::File>>);

impl TraceLog {
    fn create(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self(std::sync::Mutex::new(std::io::LineWriter::new(file))))
    }

    fn append(&self, traceparent: &str) {
        use std::io::Write as _;
        let mut file = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = writeln!(file, "{traceparent}") {
            eprintln!("mesh-demo: --trace-log: {error}");
        }
    }
}
