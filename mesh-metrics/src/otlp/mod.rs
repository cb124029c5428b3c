//! OTLP push from the same registry a scrape reads: every interval, the
//! current values of every family (ours, the typed business metrics, the
//! process and runtime collectors, the `metrics` facade) go to an
//! OpenTelemetry Collector as OTLP/HTTP protobuf (`POST /v1/metrics`), gzipped,
//! with cumulative temporality. No SDK and no second hot path: an instrumented
//! call writes the cells it always writes; the pusher reads them like a scrape.
//!
//! Cumulative temporality is what makes failures cheap: a push that fails
//! loses nothing, because the next one carries the totals. So nothing is
//! queued while the receiver is down (memory stays flat), retries stop before
//! the next interval, and `shutdown().await` makes one last push.

mod client;
mod encode;
use crate::proto;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use tokio::sync::watch;

pub(crate) use client::Endpoint;

use crate::Error;
use crate::registry::{Cell, Descriptor, Family, MetricKind, Registry};
use crate::scrape::Scraper;

/// Where and how often to push. `OtlpConfig::new("http://127.0.0.1:4318")`
/// gives the defaults; set the fields to change them.
///
/// ```
/// use std::time::Duration;
/// let mut config = mesh_metrics::OtlpConfig::new("http://127.0.0.1:4318");
/// config.interval = Duration::from_secs(15);
/// config.headers.push(("x-tenant".into(), "mesh".into()));
/// config.resource.push(("deployment.environment".into(), "staging".into()));
/// let builder = mesh_metrics::Exporter::builder().otlp(config);
/// # drop(builder);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// `http://host:port` (the OTLP/HTTP receiver; `/v1/metrics` is added) or
    /// a full URL with its path. Plain HTTP only: for TLS, push to a Collector
    /// on loopback or in a sidecar.
    pub endpoint: String,
    /// Time between pushes (default 10 s).
    pub interval: Duration,
    /// How long one push may take, connection to response (default 5 s).
    pub timeout: Duration,
    /// Headers sent with every push (an API key, a tenant).
    pub headers: Vec<(String, String)>,
    /// Resource attributes besides `service.name` and `service.version`
    /// (which come from the builder's `agent_info`, or `service_name` here).
    pub resource: Vec<(String, String)>,
    /// `service.name` when the builder has no `agent_info`.
    pub service_name: Option<String>,
    /// Whether request bodies are gzipped (default yes).
    pub gzip: bool,
    /// Whether metric names lose their type suffix (`_total`) and unit
    /// suffix (`_seconds`), the compatibility spec's optional translation.
    /// Off by default: names are sent as `/metrics` serves them.
    pub strip_suffixes: bool,
}

impl OtlpConfig {
    /// Pushes to `endpoint` with the defaults.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            headers: Vec::new(),
            resource: Vec::new(),
            service_name: None,
            gzip: true,
            strip_suffixes: false,
        }
    }
}

/// The pieces `install()` checks before anything starts.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    endpoint: Endpoint,
    headers: Vec<(HeaderName, HeaderValue)>,
    interval: Duration,
    timeout: Duration,
    gzip: bool,
    strip_suffixes: bool,
    resource: Vec<(String, String)>,
}

impl OtlpConfig {
    /// Validates the endpoint, headers and times; `service` is the agent
    /// name and version from `agent_info`, if set.
    pub(crate) fn check(&self, service: Option<(&str, &str)>) -> Result<Checked, Error> {
        let invalid = |reason: String| Error::Otlp { reason };
        let endpoint = Endpoint::parse(&self.endpoint).map_err(invalid)?;
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| {
                let header = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| invalid(format!("{name:?} is not an HTTP header name")))?;
                let reserved = ["host", "content-type", "content-encoding", "content-length", "transfer-encoding"];
                if reserved.contains(&header.as_str()) {
                    return Err(invalid(format!("the header {name} is the exporter's to set; leave it out")));
                }
                let value = HeaderValue::from_str(value)
                    .map_err(|_| invalid(format!("the value of header {name} is not a valid header value")))?;
                Ok((header, value))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        if self.interval.is_zero() || self.timeout.is_zero() {
            return Err(invalid("the OTLP interval and timeout must be longer than zero".into()));
        }
        let (name, version) = match service {
            Some((name, version)) => (name.to_owned(), Some(version.to_owned())),
            None => (self.service_name.clone().unwrap_or_else(default_service_name), None),
        };
        let mut resource = vec![("service.name".to_owned(), name)];
        resource.extend(version.map(|version| ("service.version".to_owned(), version)));
        resource.push(("telemetry.sdk.name".to_owned(), "mesh-metrics".to_owned()));
        resource.push(("telemetry.sdk.language".to_owned(), "rust".to_owned()));
        resource.push(("telemetry.sdk.version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()));
        // Resource keys are unique: the user's attribute replaces a default.
        for (key, value) in &self.resource {
            resource.retain(|(existing, _)| existing != key);
            resource.push((key.clone(), value.clone()));
        }
        Ok(Checked {
            endpoint,
            headers,
            interval: self.interval,
            timeout: self.timeout,
            gzip: self.gzip,
            strip_suffixes: self.strip_suffixes,
            resource,
        })
    }
}

/// OpenTelemetry's default: `unknown_service:` and the executable's name.
fn default_service_name() -> String {
    let executable = std::env::current_exe().ok().and_then(|path| path.file_name()?.to_str().map(str::to_owned));
    format!("unknown_service:{}", executable.unwrap_or_default())
}

/// The push loop.
pub(crate) struct Pusher {
    pub(crate) config: Checked,
    pub(crate) scraper: Arc<Scraper>,
    pub(crate) global: Vec<(String, String)>,
}

/// HTTP statuses OTLP says to retry.
const RETRYABLE: [u16; 4] = [429, 502, 503, 504];
/// The first retry waits about this long; each next one twice as long. It
/// is also the least any retry waits, whatever `Retry-After` says.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The most a receiver's `Retry-After` may hold pushes back.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// How a push ended.
enum Pushed {
    Done,
    /// Asked to stop: go to the final push.
    Stopped,
}

impl Pusher {
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let installed = unix_nanos();
        // Unknown (left out of the points) if /proc cannot be read.
        let process_start_nanos =
            crate::collect::ProcessStats::read().start_time_seconds.map(|seconds| (seconds * 1e9) as u64);
        let context = Arc::new(encode::Context {
            resource: self.config.resource.clone(),
            global: self.global.clone(),
            process_start_nanos,
            strip_suffixes: self.config.strip_suffixes,
        });
        let starts = Arc::new(std::sync::Mutex::new(encode::FacadeStarts::new(installed)));
        let outcomes = Outcomes::new(self.scraper.renderer.registry);
        let mut not_before = Instant::now();
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + self.config.interval, self.config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    // A receiver that asked for a longer pause than an interval gets it.
                    if Instant::now() < not_before {
                        continue;
                    }
                    let deadline = Instant::now() + self.config.interval;
                    let push = self.push(&context, &starts, &outcomes, deadline, &mut not_before, true);
                    let pushed = tokio::select! {
                        pushed = push => pushed,
                        () = stopped(&mut stop) => Pushed::Stopped,
                    };
                    if matches!(pushed, Pushed::Stopped) {
                        break;
                    }
                }
                () = stopped(&mut stop) => break,
            }
        }
        // The final push: what happened since the last one. One attempt,
        // bounded by the timeout, so shutdown is never held up by retries.
        let deadline = Instant::now() + self.config.timeout;
        let _ = self.push(&context, &starts, &outcomes, deadline, &mut not_before, false).await;
    }

    /// Pushes the current values; with `retry`, retries a retryable failure
    /// (jittered exponential backoff, at least the receiver's `Retry-After`)
    /// with fresh values each time, until `deadline`. A push that never gets
    /// through loses nothing: the next one carries the totals.
    async fn push(
        &self,
        context: &Arc<encode::Context>,
        starts: &Arc<std::sync::Mutex<encode::FacadeStarts>>,
        outcomes: &Outcomes,
        deadline: Instant,
        not_before: &mut Instant,
        retry: bool,
    ) -> Pushed {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let attempt = self.attempt(context, starts).await;
            let (wait, asked) = match attempt {
                Ok(reply) if (200..300).contains(&reply.status) => {
                    outcomes.count("success");
                    report_partial_success(&reply.body);
                    return Pushed::Done;
                }
                Ok(reply) if RETRYABLE.contains(&reply.status) => {
                    let asked = reply.retry_after.map(|after| after.min(MAX_RETRY_AFTER));
                    (asked.unwrap_or_default().max(jitter(backoff)), asked)
                }
                Ok(reply) => {
                    outcomes.count("failure");
                    tracing::error!(
                        status = reply.status,
                        endpoint = %self.config.endpoint.url(),
                        answer = %String::from_utf8_lossy(reply.body.get(..512).unwrap_or(&reply.body)),
                        "mesh-metrics: the OTLP receiver refused the push; not retried (fix the receiver or the \
                         configuration; the next push carries the totals)"
                    );
                    return Pushed::Done;
                }
                Err(error) => {
                    tracing::debug!(%error, "mesh-metrics: OTLP push failed");
                    (jitter(backoff), None)
                }
            };
            backoff = backoff.saturating_mul(2);
            if !retry || Instant::now() + wait >= deadline {
                outcomes.count("failure");
                if let Some(asked) = asked {
                    *not_before = Instant::now() + asked;
                }
                tracing::warn!(
                    endpoint = %self.config.endpoint.url(),
                    "mesh-metrics: OTLP push did not get through before the next one is due; nothing is lost \
                     (totals are cumulative), the next push carries them"
                );
                return Pushed::Done;
            }
            outcomes.count("retry");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(
        &self,
        context: &Arc<encode::Context>,
        starts: &Arc<std::sync::Mutex<encode::FacadeStarts>>,
    ) -> Result<client::Reply, String> {
        let (scraper, context, starts, gzip) =
            (self.scraper.clone(), context.clone(), starts.clone(), self.config.gzip);
        let body = tokio::task::spawn_blocking(move || {
            // The time the values are read at, taken before any is read.
            let now = unix_nanos();
            let renderer = &scraper.renderer;
            renderer.collectors.collect(renderer.registry);
            crate::guard::publish(renderer.registry, &renderer.guard);
            let mut starts = starts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let families = renderer.registry.families();
            let body = encode::request(&context, &families, &renderer.facade.render(), now, &mut starts);
            if gzip { gzip_bytes(&body) } else { Ok(body) }
        })
        .await
        .map_err(|error| format!("encoding the push failed: {error}"))?
        .map_err(|error| format!("compressing the push failed: {error}"))?;
        let post = client::post(&self.config.endpoint, &self.config.headers, Bytes::from(body), self.config.gzip);
        tokio::time::timeout(self.config.timeout, post)
            .await
            .map_err(|_| format!("no answer within {:?}", self.config.timeout))?
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(0))
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A dropped sender (the handle was dropped) also means stop.
    let _ = stop.wait_for(|stop| *stop).await;
}

fn gzip_bytes(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

/// `backoff` ± 50%: enough to keep a fleet of agents from retrying in step.
/// The noise is a xorshift sequence seeded from the clock and the process.
fn jitter(backoff: Duration) -> Duration {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = unix_nanos() ^ (u64::from(std::process::id()) << 32) | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    let factor = 0.5 + (x % 1000) as f64 / 1000.0;
    backoff.mul_f64(factor)
}

/// Logs an `ExportMetricsServiceResponse` that reports rejected points
/// (`partial_success`, field 1: `rejected_data_points` = 1,
/// `error_message` = 2). Not retried: the receiver has decided.
fn report_partial_success(body: &[u8]) {
    let Some(fields) = proto::fields(body) else { return };
    for (field, value) in fields {
        let (1, proto::Value::Bytes(partial)) = (field, value) else { continue };
        let mut rejected = 0u64;
        let mut message = String::new();
        for (field, value) in proto::fields(partial).unwrap_or_default() {
            match (field, value) {
                (1, proto::Value::Number(count)) => rejected = count,
                (2, proto::Value::Bytes(text)) => message = String::from_utf8_lossy(text).into_owned(),
                _ => {}
            }
        }
        if rejected > 0 || !message.is_empty() {
            tracing::warn!(rejected, message, "mesh-metrics: the OTLP receiver accepted the push only in part");
        }
    }
}

/// `mcp_mesh_exporter_otlp_pushes_total{result}`: `success`, `retry`,
/// `failure` (given up until the next interval, or refused).
struct Outcomes(Option<Arc<Family>>);

impl Outcomes {
    fn new(registry: &Registry) -> Self {
        const PUSHES: Descriptor = Descriptor {
            name: std::borrow::Cow::Borrowed(crate::names::exporter::OTLP_PUSHES_TOTAL),
            help: std::borrow::Cow::Borrowed(
                "OTLP pushes by result: success, retry, or failure (given up until the next).",
            ),
            kind: MetricKind::Counter,
            label_names: std::borrow::Cow::Borrowed(&["result"]),
            unit: None,
        };
        Self(registry.bounded_family(&PUSHES).ok())
    }

    fn count(&self, result: &str) {
        let series =
            self.0.as_ref().and_then(|family| family.series(&[result], |_| Cell::Counter(Default::default())).ok());
        if let Some(Cell::Counter(counter)) = series.as_deref().map(crate::registry::Series::cell) {
            counter.increment(1);
        }
    }
}
