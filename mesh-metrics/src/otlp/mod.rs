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
mod proto;

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
        resource.extend(self.resource.iter().cloned());
        Ok(Checked { endpoint, headers, interval: self.interval, timeout: self.timeout, gzip: self.gzip, resource })
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
/// The first retry waits about this long; each next one twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

impl Pusher {
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let start_nanos =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
        let context = Arc::new(encode::Context {
            resource: self.config.resource.clone(),
            global: self.global.clone(),
            start_nanos,
        });
        let outcomes = Outcomes::new(self.scraper.renderer.registry);
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + self.config.interval, self.config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let deadline = Instant::now() + self.config.interval;
                    self.push(&context, &outcomes, deadline).await;
                }
                () = stopped(&mut stop) => break,
            }
        }
        // The final push: what happened since the last one.
        self.push(&context, &outcomes, Instant::now() + self.config.timeout).await;
    }

    /// Pushes the current values; retries a retryable failure (jittered
    /// exponential backoff, or the receiver's `Retry-After`) with fresh values
    /// each time, until `deadline`. A push that never gets through loses
    /// nothing: the next one carries the totals.
    async fn push(&self, context: &Arc<encode::Context>, outcomes: &Outcomes, deadline: Instant) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let attempt = self.attempt(context).await;
            let wait = match attempt {
                Ok(reply) if (200..300).contains(&reply.status) => {
                    outcomes.count("success");
                    report_partial_success(&reply.body);
                    return;
                }
                Ok(reply) if RETRYABLE.contains(&reply.status) => reply.retry_after.unwrap_or_else(|| jitter(backoff)),
                Ok(reply) => {
                    outcomes.count("failure");
                    tracing::error!(
                        status = reply.status,
                        endpoint = %self.config.endpoint.url(),
                        "mesh-metrics: the OTLP receiver refused the push; not retried (fix the receiver or the \
                         configuration; the next push carries the totals)"
                    );
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, "mesh-metrics: OTLP push failed");
                    jitter(backoff)
                }
            };
            backoff = backoff.saturating_mul(2);
            if Instant::now() + wait >= deadline {
                outcomes.count("failure");
                tracing::warn!(
                    endpoint = %self.config.endpoint.url(),
                    "mesh-metrics: OTLP push did not get through before the next one is due; nothing is lost \
                     (totals are cumulative), the next push carries them"
                );
                return;
            }
            outcomes.count("retry");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, context: &Arc<encode::Context>) -> Result<client::Reply, String> {
        let (scraper, context, gzip) = (self.scraper.clone(), context.clone(), self.config.gzip);
        let body = tokio::task::spawn_blocking(move || {
            let renderer = &scraper.renderer;
            renderer.collectors.collect(renderer.registry);
            crate::guard::publish(renderer.registry, &renderer.guard);
            let body = encode::request(&context, &renderer.registry.families(), &renderer.facade.render());
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

/// `backoff` ± 50%, from a cheap per-call source of randomness (the clock's
/// low bits): enough to keep a fleet of agents from retrying in step.
fn jitter(backoff: Duration) -> Duration {
    let noise = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let factor = 0.5 + f64::from(noise % 1000) / 1000.0;
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
