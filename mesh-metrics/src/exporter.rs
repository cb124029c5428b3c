//! The exporter: configuration, install, and the handle that keeps it alive.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use metrics_util::MetricKindMask;
use metrics_util::layers::Layer as _;
use tokio::sync::{oneshot, watch};

use crate::access::{Allowlist, Cidr, Token};
use crate::guard::layer::{CardinalityLayer, FacadeGuard};
use crate::guard::{CardinalityPolicy, Limit};
use crate::registry::{self, Cell, Descriptor, Layout, MetricKind, Registry};
use crate::render::GlobalLabels;
use crate::scrape::{Collectors, Format, Names, Renderer, Scraper};
use crate::{Error, OtlpConfig, http, names};

/// The default listen address: loopback only. Expose it wider on purpose,
/// with `.listen("0.0.0.0:9464".parse()?)`.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Entry point: `Exporter::builder()`.
#[derive(Debug)]
pub struct Exporter(());

impl Exporter {
    /// A builder with the defaults: `127.0.0.1:9464`, the guide's buckets.
    pub fn builder() -> ExporterBuilder {
        ExporterBuilder {
            listen: Some(DEFAULT_LISTEN),
            buckets: None,
            native: None,
            buckets_for: Vec::new(),
            global_labels: Vec::new(),
            agent_info: None,
            upkeep_interval: Duration::from_secs(5),
            policy: CardinalityPolicy::default(),
            idle_timeout: None,
            clients: Vec::new(),
            any_client: false,
            bearer_token: None,
            limits: http::Limits::default(),
            process_metrics: true,
            current_runtime_metrics: true,
            runtimes: Vec::new(),
            otlp: None,
        }
    }
}

/// Configures and installs the exporter.
#[derive(Debug, Clone)]
#[must_use = "call .install() to start the exporter"]
pub struct ExporterBuilder {
    listen: Option<SocketAddr>,
    buckets: Option<Vec<f64>>,
    native: Option<crate::NativeHistograms>,
    buckets_for: Vec<(String, Vec<f64>)>,
    global_labels: Vec<(String, String)>,
    agent_info: Option<[String; 3]>,
    upkeep_interval: Duration,
    policy: CardinalityPolicy,
    idle_timeout: Option<Duration>,
    clients: Vec<String>,
    any_client: bool,
    bearer_token: Option<String>,
    limits: http::Limits,
    process_metrics: bool,
    current_runtime_metrics: bool,
    runtimes: Vec<(String, tokio::runtime::Handle)>,
    otlp: Option<OtlpConfig>,
}

impl ExporterBuilder {
    /// Whether to export the standard process metrics (`process_cpu_seconds_total`,
    /// `process_resident_memory_bytes`, `process_open_fds`, ... as every
    /// official Prometheus client names them), read from `/proc` at each
    /// scrape. On by default; on other platforms than Linux there are none.
    pub fn process_metrics(mut self, enabled: bool) -> Self {
        self.process_metrics = enabled;
        self
    }

    /// Whether to export the metrics of the tokio runtime `install()` is
    /// called in (`tokio_workers{runtime="main"}`, `tokio_alive_tasks`,
    /// `tokio_global_queue_depth`, and per worker
    /// `tokio_worker_busy_seconds_total`, `tokio_worker_parks_total`,
    /// `tokio_worker_park_unparks_total`), read at each scrape. On by default.
    pub fn tokio_runtime_metrics(mut self, enabled: bool) -> Self {
        self.current_runtime_metrics = enabled;
        self
    }

    /// Also exports the metrics of the runtime `handle` belongs to, labelled
    /// `runtime = name` (for example a runtime of its own for the agents).
    pub fn tokio_runtime(mut self, name: impl Into<String>, handle: tokio::runtime::Handle) -> Self {
        self.runtimes.push((name.into(), handle));
        self
    }

    /// Where to serve `/metrics` (default `127.0.0.1:9464`; port 0 picks a free one).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Serves no `/metrics` at all: for a push-only exporter ([`otlp`](Self::otlp)).
    /// [`ExporterHandle::local_addr`] is then the unspecified address.
    pub fn no_listener(mut self) -> Self {
        self.listen = None;
        self
    }

    /// Also pushes every metric to an OpenTelemetry Collector (OTLP/HTTP
    /// protobuf, cumulative), every `config.interval`, from the same registry
    /// `/metrics` serves: see [`OtlpConfig`]. `service.name` and
    /// `service.version` come from [`agent_info`](Self::agent_info) when set.
    pub fn otlp(mut self, config: OtlpConfig) -> Self {
        self.otlp = Some(config);
        self
    }

    /// The bucket layout of every histogram without its own (default: the
    /// guide's 5 ms … 5 s). Checked at install: finite, strictly increasing, non-empty.
    pub fn buckets(mut self, bounds: &[f64]) -> Self {
        self.buckets = Some(bounds.to_vec());
        self
    }

    /// Native (sparse, exponential) histograms for
    /// `mcp_mesh_request_duration_seconds`: fine resolution at any latency
    /// with no bucket choice, served in the protobuf format (which Prometheus
    /// asks for when started with `--enable-feature=native-histograms`) and
    /// pushed over OTLP as exponential histograms. The text formats show a
    /// native-only histogram's `_count`, `_sum` and `+Inf` bucket. Refused at install if instrumented calls were recorded
    /// before it ([`Error::NativeAfterUse`]).
    pub fn native_histograms(mut self, native: crate::NativeHistograms) -> Self {
        self.native = Some(native);
        self
    }

    /// The bucket layout of one histogram family, by exact name. One layout
    /// per family: `sum by (le)` across series with different buckets is wrong.
    pub fn buckets_for(mut self, metric: impl Into<String>, bounds: &[f64]) -> Self {
        self.buckets_for.push((metric.into(), bounds.to_vec()));
        self
    }

    /// A label added to every series this process exposes.
    pub fn global_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.global_labels.push((name.into(), value.into()));
        self
    }

    /// Exposes `mcp_mesh_agent_info{agent_name, version, capabilities} 1`;
    /// capabilities are joined with commas, as the guide does.
    pub fn agent_info(mut self, name: impl Into<String>, version: impl Into<String>, capabilities: &[&str]) -> Self {
        self.agent_info = Some([name.into(), version.into(), capabilities.join(",")]);
        self
    }

    /// How often upkeep runs (default 5 s): facade histograms are drained into
    /// their buckets, and idle series expire.
    pub fn upkeep_interval(mut self, every: Duration) -> Self {
        self.upkeep_interval = every.max(Duration::from_millis(10));
        self
    }

    /// Label sets admitted per metric name (default
    /// [`guard::DEFAULT_SERIES_LIMIT`]); past it, measurements go to the
    /// metric's `otel_metric_overflow="true"` series. See [`crate::guard`].
    pub fn cardinality_limit(mut self, series: usize) -> Self {
        self.policy = self.policy.default_limit(Limit::Series(series));
        self
    }

    /// The cardinality limit of one metric, by exact name.
    pub fn cardinality_limit_for(mut self, metric: impl Into<String>, series: usize) -> Self {
        self.policy = self.policy.limit_for(metric, Limit::Series(series));
        self
    }

    /// The cardinality limit of every metric whose name starts with `prefix`
    /// (the longest matching prefix wins; an exact name beats any prefix).
    pub fn cardinality_limit_for_prefix(mut self, prefix: impl Into<String>, series: usize) -> Self {
        self.policy = self.policy.limit_for_prefix(prefix, Limit::Series(series));
        self
    }

    /// No cardinality limit for one metric, by exact name: for labels known
    /// to be bounded but more numerous than the default limit.
    pub fn unlimited_cardinality(mut self, metric: impl Into<String>) -> Self {
        self.policy = self.policy.limit_for(metric, Limit::Unlimited);
        self
    }

    /// Label values longer than this many bytes are cut on a UTF-8 character
    /// boundary (default [`guard::DEFAULT_MAX_LABEL_VALUE_BYTES`]).
    pub fn max_label_value_bytes(mut self, bytes: usize) -> Self {
        self.policy = self.policy.max_label_value_bytes(bytes);
        self
    }

    /// Lets clients at this address or in this CIDR block scrape (e.g.
    /// `"10.0.0.0/8"`, `"fd00::/8"`, `"192.0.2.7"`). Without a list only
    /// loopback clients may; with one, exactly the listed ones (add
    /// `"127.0.0.1"` for local tools). Others get 403. Checked at install.
    pub fn allow_client(mut self, address_or_block: impl Into<String>) -> Self {
        self.clients.push(address_or_block.into());
        self
    }

    /// Lets any client that can reach the port scrape. Without this or
    /// [`allow_client`](Self::allow_client), installing on a non-loopback
    /// address is an [`Error::Exposed`].
    pub fn allow_any_client(mut self) -> Self {
        self.any_client = true;
        self
    }

    /// Requires `Authorization: Bearer <token>` on `/metrics` (compared in
    /// constant time; a missing or wrong token gets the same 401). Prometheus
    /// sends it with `authorization: { credentials: ... }` in its scrape config.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// Connections served at once (default 1,024: the guide's 1,000
    /// concurrent scrapes). Past it, a new connection makes the oldest idle
    /// connection (one with no request in progress) close and takes its slot;
    /// with every connection busy it gets an immediate
    /// `503 Service Unavailable` with `Retry-After`, not a queue.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.limits.max_connections = connections.max(1);
        self
    }

    /// How long a client may take to send its request head (default 5 s): a
    /// client that connects and sends nothing, or trickles bytes, is closed.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.limits.request_timeout = timeout;
        self
    }

    /// How long one connection may last (default 60 s): past it, the
    /// connection is closed at its first idle moment, after the response in
    /// progress (never in the middle of one).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.limits.connection_timeout = timeout;
        self
    }

    /// Series not updated for this long are dropped from `/metrics` and free
    /// their slot in the cardinality guard: `metrics` facade series, and the
    /// series of registry families that opt in (unbounded business labels,
    /// [`Family::expire_idle_series`](crate::registry::Family::expire_idle_series)).
    /// The fixed series of `#[instrumented]` call sites never expire. Off by default.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Installs the exporter: the `metrics` recorder, every instrumented call
    /// site's series at zero, and the `/metrics` server.
    ///
    /// The server runs on a small runtime of its own thread, inside a tokio
    /// runtime or outside one, so it never depends on the caller's runtime
    /// having IO and time enabled. Errors (a port in use, a
    /// second install, bad buckets or labels) come back as [`Error`] values.
    pub fn install(mut self) -> Result<ExporterHandle, Error> {
        let (default_layout, per_metric) = self.layouts()?;
        if let Some(native) = &self.native {
            native
                .check()
                .map_err(|reason| Error::Buckets { metric: names::REQUEST_DURATION_SECONDS.into(), reason })?;
        }
        for (name, _) in &self.global_labels {
            check_label_name(name)?;
        }
        self.limits.allow = self.allowlist()?;
        self.limits.token = self.bearer_token.as_deref().map(Token::new).transpose()?;
        let service = self.agent_info.as_ref().map(|[name, version, _]| (name.as_str(), version.as_str()));
        let otlp = self.otlp.as_ref().map(|config| config.check(service)).transpose()?;
        if self.listen.is_none() && otlp.is_none() {
            return Err(Error::Otlp {
                reason: "no_listener() with nothing to push: add .otlp(..) or a listen address".into(),
            });
        }
        if INSTALLED.swap(true, Ordering::SeqCst) {
            return Err(Error::AlreadyInstalled);
        }
        self.install_once(default_layout, per_metric, otlp).inspect_err(|_| INSTALLED.store(false, Ordering::SeqCst))
    }

    fn install_once(
        self,
        default_layout: Layout,
        per_metric: HashMap<String, Layout>,
        otlp: Option<crate::otlp::Checked>,
    ) -> Result<ExporterHandle, Error> {
        let (listener, local_addr) = match self.listen {
            Some(addr) => {
                let bind = |source| Error::Bind { addr, source };
                let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
                listener.set_nonblocking(true).map_err(bind)?;
                let local_addr = listener.local_addr().map_err(bind)?;
                (Some(listener), local_addr)
            }
            None => (None, SocketAddr::from(([0, 0, 0, 0], 0))),
        };

        let registry = registry::global();
        let mut registry_layouts = per_metric.clone();
        if let Some(native) = &self.native {
            let duration = names::REQUEST_DURATION_SECONDS;
            let classic = registry_layouts.remove(duration).unwrap_or_else(|| default_layout.clone());
            let layout = match native.keeps_classic_buckets() {
                true => classic.with_native(*native.config()),
                false => Layout::native_only(*native.config()),
            };
            registry_layouts.insert(duration.to_owned(), layout);
        }
        let moved = registry.set_layouts(default_layout.clone(), registry_layouts)?;
        if moved > 0 {
            tracing::warn!(
                observations = moved,
                "mesh-metrics: histograms were used before install() with other buckets; their earlier \
                 observations now count in the first configured bucket at or above their old bucket \
                 (_count and _sum are exact). Install the exporter before the first instrumented call \
                 to keep every observation in its own bucket"
            );
        }
        registry.set_policy(self.policy.clone());
        let idle_ticks = self
            .idle_timeout
            .map_or(0, |timeout| timeout.as_nanos().div_ceil(self.upkeep_interval.as_nanos().max(1)).max(1) as u64);
        registry.set_idle_ticks(idle_ticks);
        let facade = facade_recorder(&default_layout, &per_metric, &self.global_labels, self.idle_timeout)?;
        let facade_handle = facade.handle();
        let guard = Arc::new(FacadeGuard::new(Arc::new(self.policy.clone()), idle_ticks));
        let guarded = CardinalityLayer(guard.clone()).layer(facade);
        metrics::set_global_recorder(guarded).map_err(|_| Error::RecorderAlreadySet)?;

        for site in crate::__private::CALL_SITES {
            site.register();
        }
        warn_shared_call_sites(&crate::__private::CALL_SITES);
        if let Some([name, version, capabilities]) = &self.agent_info {
            set_agent_info(registry, name, version, capabilities)?;
        }

        let mut runtimes = self.runtimes.clone();
        if self.current_runtime_metrics
            && let Ok(current) = tokio::runtime::Handle::try_current()
            && !runtimes.iter().any(|(name, _)| name == MAIN_RUNTIME)
        {
            runtimes.insert(0, (MAIN_RUNTIME.to_owned(), current));
        }
        let scraper = Arc::new(Scraper::new(Renderer {
            collectors: Collectors::new(self.process_metrics, runtimes),
            registry,
            global: GlobalLabels::new(&self.global_labels),
            facade: facade_handle,
            guard,
            prune_facade: self.idle_timeout.is_some(),
            reported_left_out: Mutex::new(HashSet::new()),
        }));
        let (stop, stopped) = watch::channel(false);
        let (done_tx, done) = oneshot::channel();
        let pusher = otlp.map(|config| crate::otlp::Pusher {
            config,
            scraper: scraper.clone(),
            global: self.global_labels.clone(),
        });
        let push_stop = stopped.clone();
        let server = http::Server {
            scraper: scraper.clone(),
            stop: stopped,
            upkeep_interval: self.upkeep_interval,
            limits: Arc::new(self.limits),
        };
        let run = async move {
            let serve = async move {
                // Without a listener the loop still runs upkeep.
                let listener = match listener.map(tokio::net::TcpListener::from_std).transpose() {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::error!(%error, "mesh-metrics: cannot serve /metrics");
                        None
                    }
                };
                server.run(listener).await;
            };
            let push = async move {
                if let Some(pusher) = pusher {
                    pusher.run(push_stop).await;
                }
            };
            tokio::join!(serve, push);
            let _ = done_tx.send(());
        };
        // The server always runs on a runtime of its own, on its own thread:
        // whatever runtime (if any) the caller is in, with whatever drivers
        // it enabled, the server has the IO and time drivers it needs, and a
        // failure to start is an error here rather than a panic later.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Runtime)?;
        std::thread::Builder::new()
            .name("mesh-metrics-exporter".into())
            .spawn(move || runtime.block_on(run))
            .map_err(Error::Runtime)?;
        Ok(ExporterHandle { local_addr, scraper, stop: Some(stop), done: Some(done) })
    }

    /// Who may scrape: listening beyond loopback needs an explicit answer.
    fn allowlist(&self) -> Result<Allowlist, Error> {
        if self.any_client {
            return Ok(Allowlist::Any);
        }
        let blocks = self.clients.iter().map(|entry| Cidr::parse(entry)).collect::<Result<Vec<_>, _>>()?;
        if blocks.is_empty() {
            if let Some(addr) = self.listen.filter(|addr| !addr.ip().is_loopback()) {
                return Err(Error::Exposed { addr });
            }
            return Ok(Allowlist::Loopback);
        }
        Ok(Allowlist::Blocks(blocks))
    }

    fn layouts(&self) -> Result<(Layout, HashMap<String, Layout>), Error> {
        let checked = |metric: &str, bounds: &[f64]| {
            Layout::new(bounds).map_err(|reason| Error::Buckets { metric: metric.to_owned(), reason })
        };
        let default = match &self.buckets {
            Some(bounds) => checked("default", bounds)?,
            None => Layout::default_latency(),
        };
        let mut per_metric = HashMap::new();
        for (metric, bounds) in &self.buckets_for {
            per_metric.insert(metric.clone(), checked(metric, bounds)?);
        }
        let durations = per_metric.get(names::REQUEST_DURATION_SECONDS).unwrap_or(&default);
        if let Some(negative) = durations.bounds().iter().find(|bound| **bound < 0.0) {
            return Err(Error::Buckets {
                metric: names::REQUEST_DURATION_SECONDS.to_owned(),
                reason: format!(
                    "bucket bound {negative} is negative and a duration never is; give bounds of 0 or more, \
                     or set the request durations' own with .buckets_for(\"{}\", ..)",
                    names::REQUEST_DURATION_SECONDS
                ),
            });
        }
        Ok((default, per_metric))
    }
}

/// Two call sites with the same (agent, method) write the same series: their
/// calls add up under one name, which is rarely what was meant (two fns of
/// the same name in two impl blocks of one agent). Logged once at install,
/// naming both places.
fn warn_shared_call_sites(sites: &[&'static crate::__private::CallSite]) {
    let mut seen: HashMap<(&str, &str), &str> = HashMap::new();
    for site in sites {
        match seen.get(&(site.agent(), site.method())) {
            Some(first) if *first != site.location() => tracing::warn!(
                agent = site.agent(),
                method = site.method(),
                first = *first,
                second = site.location(),
                "mesh-metrics: two instrumented fns record as the same (agent, method), so their calls \
                 add up in one series; give one of them its own name with #[instrumented(method = \"...\")]"
            ),
            Some(_) => {}
            None => {
                seen.insert((site.agent(), site.method()), site.location());
            }
        }
    }
}

fn check_label_name(name: &str) -> Result<(), Error> {
    // `le` belongs to histogram buckets; a global `le` would clash with it.
    if names::is_label_name(name) && name != "le" { Ok(()) } else { Err(Error::LabelName { name: name.to_owned() }) }
}

/// A text render as a `String` (the text writers only write UTF-8).
fn text(rendered: Vec<u8>) -> String {
    String::from_utf8(rendered).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

fn facade_recorder(
    default: &Layout,
    per_metric: &HashMap<String, Layout>,
    global_labels: &[(String, String)],
    idle_timeout: Option<Duration>,
) -> Result<metrics_exporter_prometheus::PrometheusRecorder, Error> {
    let bucket_error = |metric: &str, error: metrics_exporter_prometheus::BuildError| Error::Buckets {
        metric: metric.to_owned(),
        reason: error.to_string(),
    };
    // Without buckets it would render histograms as summaries.
    let mut builder = PrometheusBuilder::new().set_buckets(default.bounds()).map_err(|e| bucket_error("default", e))?;
    for (metric, layout) in per_metric {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(metric.clone()), layout.bounds())
            .map_err(|e| bucket_error(metric, e))?;
    }
    for (name, value) in global_labels {
        builder = builder.add_global_label(name, value);
    }
    if let Some(timeout) = idle_timeout {
        builder = builder.idle_timeout(MetricKindMask::ALL, Some(timeout));
    }
    Ok(builder.build_recorder())
}

fn set_agent_info(registry: &Registry, name: &str, version: &str, capabilities: &str) -> Result<(), Error> {
    const INFO: Descriptor = Descriptor {
        name: std::borrow::Cow::Borrowed(names::AGENT_INFO),
        help: std::borrow::Cow::Borrowed("MCP Mesh agent information"),
        kind: MetricKind::Gauge,
        label_names: std::borrow::Cow::Borrowed(&["agent_name", "version", "capabilities"]),
        unit: None,
    };
    let series = registry.family(&INFO)?.series(&[name, version, capabilities], |_| Cell::Gauge(Default::default()))?;
    if let Cell::Gauge(gauge) = series.cell() {
        gauge.set(1.0);
    }
    Ok(())
}

/// The `runtime` label of the runtime `install()` was called in.
const MAIN_RUNTIME: &str = "main";

/// Keeps the exporter running; dropping it stops the server, so keep it for
/// as long as `/metrics` should answer (`let _exporter = ...install()?;`).
#[must_use = "dropping the handle stops the /metrics server at once; keep it in a variable such as `_exporter`"]
#[derive(Debug)]
pub struct ExporterHandle {
    local_addr: SocketAddr,
    scraper: Arc<Scraper>,
    stop: Option<watch::Sender<bool>>,
    done: Option<oneshot::Receiver<()>>,
}

impl ExporterHandle {
    /// The address `/metrics` is served on (the real port when 0 was asked
    /// for); the unspecified address `0.0.0.0:0` with
    /// [`no_listener`](ExporterBuilder::no_listener).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The classic text exposition, as `/metrics` serves it by default.
    pub fn render(&self) -> String {
        text(self.scraper.renderer.render(Format::Classic, &Names::default()))
    }

    /// The OpenMetrics exposition with exemplars, as `/metrics` serves it to
    /// a scraper that asks for `application/openmetrics-text`.
    pub fn render_openmetrics(&self) -> String {
        text(self.scraper.renderer.render(Format::OpenMetrics, &Names::default()))
    }

    /// The protobuf exposition (length-delimited `io.prometheus.client.MetricFamily`
    /// messages), as `/metrics` serves it to a scraper that asks for
    /// `application/vnd.google.protobuf`: the format that carries native histograms.
    pub fn render_protobuf(&self) -> Vec<u8> {
        self.scraper.renderer.render(Format::Protobuf, &Names::default())
    }

    /// Stops accepting scrapes, lets in-flight ones finish, and frees the port.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for ExporterHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}
