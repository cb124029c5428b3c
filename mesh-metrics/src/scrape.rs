//! One scrape's work: collect, render, compress. Scrapes that ask for the same
//! thing while it is being done get the same bytes: at most one render per
//! (format, filter, encoding) is in flight, however many clients come and go,
//! and 1,000 concurrent scrapes hold one body between them, not 1,000.
//!
//! Nothing here knows about HTTP: the server asks for a [`Request`] and gets
//! bytes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::{Semaphore, watch};

use crate::guard::{self, layer::FacadeGuard};
use crate::registry::Registry;
use crate::render::protobuf::LeftOut;
use crate::render::{self, GlobalLabels};

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Format {
    /// `text/plain; version=0.0.4`.
    Classic,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
    /// `application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited`.
    Protobuf,
}

impl Format {
    /// The label value of the server's render histogram.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::OpenMetrics => "openmetrics",
            Self::Protobuf => "protobuf",
        }
    }
}

/// A content coding of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Encoding {
    /// As rendered.
    Identity,
    /// `gzip` (Prometheus always asks for it).
    Gzip,
    /// `zstd`.
    Zstd,
}

impl Encoding {
    /// The `Content-Encoding` value, if any.
    pub(crate) fn header(self) -> Option<&'static str> {
        match self {
            Self::Identity => None,
            Self::Gzip => Some("gzip"),
            Self::Zstd => Some("zstd"),
        }
    }

    /// The label value of the server's byte counter.
    pub(crate) fn as_str(self) -> &'static str {
        self.header().unwrap_or("identity")
    }
}

/// The metric families a scrape asks for (`name[]=...`); `None`: all of
/// them. A filter that names nothing valid serves nothing, not everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Names(Option<BTreeSet<String>>);

impl Names {
    /// From the `name[]` values of a query (`None` when it has none).
    pub(crate) fn new(names: Option<Vec<String>>) -> Self {
        Self(names.map(|names| names.into_iter().collect()))
    }

    /// Whether the family `name` is asked for. A counter is found by its
    /// sample name (`x_total`) or its OpenMetrics family name (`x`).
    pub(crate) fn wants(&self, name: &str) -> bool {
        let Some(names) = &self.0 else { return true };
        names.contains(name)
            || name.strip_suffix("_total").is_some_and(|base| names.contains(base))
            || names.contains(&format!("{name}_total"))
    }
}

/// What one scrape asks for: equal requests share one render.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Request {
    pub(crate) format: Format,
    pub(crate) encoding: Encoding,
    pub(crate) names: Names,
}

/// What is collected at each scrape (see [`crate::collect`]).
#[derive(Debug)]
pub(crate) struct Collectors {
    process: bool,
    runtimes: Vec<(String, tokio::runtime::Handle)>,
    /// One collection at a time (a scrape's and a push's): a collected
    /// counter is set, so two readings written out of order would make it
    /// go down, which Prometheus reads as a reset.
    serial: Mutex<()>,
}

impl Collectors {
    pub(crate) fn new(process: bool, runtimes: Vec<(String, tokio::runtime::Handle)>) -> Self {
        Self { process, runtimes, serial: Mutex::new(()) }
    }

    pub(crate) fn collect(&self, registry: &Registry) {
        let _serial = self.serial.lock().unwrap_or_else(PoisonError::into_inner);
        if self.process {
            crate::collect::collect_process(registry);
        }
        for (name, handle) in &self.runtimes {
            crate::collect::collect_runtime(registry, name, handle);
        }
    }
}

/// Renders mesh-metrics' families followed by the `metrics` facade's.
#[derive(Debug)]
pub(crate) struct Renderer {
    pub(crate) collectors: Collectors,
    pub(crate) registry: &'static Registry,
    pub(crate) global: GlobalLabels,
    pub(crate) facade: PrometheusHandle,
    pub(crate) guard: Arc<FacadeGuard>,
    /// Whether upkeep renders the facade, which is when it prunes idle series.
    pub(crate) prune_facade: bool,
    /// The families already reported as left out, and why.
    pub(crate) reported_left_out: Mutex<HashSet<(String, LeftOut)>>,
}

impl Renderer {
    /// The exposition in `format` of the families `names` asks for.
    pub(crate) fn render(&self, format: Format, names: &Names) -> Vec<u8> {
        self.collectors.collect(self.registry);
        guard::publish(self.registry, &self.guard);
        let families = self.registry.families();
        let facade = self.facade.render();
        let wanted = |name: &str| names.wants(name);
        let clashes = |skipped: Vec<String>| skipped.into_iter().map(|name| (name, LeftOut::Clash)).collect();
        let (out, skipped): (Vec<u8>, Vec<(String, LeftOut)>) = match format {
            Format::Classic => {
                let (text, skipped) = render::classic_document(&families, &self.global, Some(&facade), &wanted);
                (text.into_bytes(), clashes(skipped))
            }
            Format::OpenMetrics => {
                let (text, skipped) = render::openmetrics_document(&families, &self.global, Some(&facade), &wanted);
                (text.into_bytes(), clashes(skipped))
            }
            Format::Protobuf => render::protobuf::document(&families, &self.global, Some(&facade), &wanted),
        };
        for (name, why) in skipped {
            self.report_left_out(&name, why);
        }
        out
    }

    /// Drains facade histograms; with an idle timeout, also prunes idle
    /// facade series (the exporter does so when it renders) before the guards
    /// free the slots of what has been idle a little longer.
    pub(crate) fn run_upkeep(&self) {
        self.facade.run_upkeep();
        if self.prune_facade {
            drop(self.facade.render());
        }
        self.guard.upkeep();
        self.registry.upkeep();
    }

    /// Logs, once per name and reason, that a family was left out.
    fn report_left_out(&self, name: &str, why: LeftOut) {
        if !self.reported_left_out.lock().unwrap_or_else(PoisonError::into_inner).insert((name.to_owned(), why)) {
            return;
        }
        match why {
            LeftOut::Clash => tracing::warn!(
                metric = name,
                "mesh-metrics: a metric family clashes with another family's sample names; its series are \
                 left out of /metrics, rename one of them"
            ),
            LeftOut::Unreadable => tracing::warn!(
                metric = name,
                "mesh-metrics: a line of the `metrics` facade's text for this family could not be read; the \
                 family is left out of protobuf scrapes rather than sent with a count missing (the text \
                 formats still carry it)"
            ),
        }
    }
}

/// A finished render, as sent.
pub(crate) type Body = Bytes;

/// Shares renders between scrapes that ask for the same thing at once.
#[derive(Debug)]
pub(crate) struct Scraper {
    pub(crate) renderer: Renderer,
    inflight: Mutex<HashMap<Request, watch::Receiver<Option<Body>>>>,
    /// Renders running at once, whatever they are for: requests that differ
    /// (each `name[]` filter is its own) cannot start renders without bound.
    renders: Arc<Semaphore>,
    observer: crate::server_metrics::ServerMetrics,
}

/// How many renders may run at once.
const CONCURRENT_RENDERS: usize = 2;

impl Scraper {
    pub(crate) fn new(renderer: Renderer) -> Self {
        let observer = crate::server_metrics::ServerMetrics::new(renderer.registry);
        let renders = Arc::new(Semaphore::new(CONCURRENT_RENDERS));
        Self { renderer, inflight: Mutex::new(HashMap::new()), renders, observer }
    }

    /// The server's own metrics.
    pub(crate) fn metrics(&self) -> &crate::server_metrics::ServerMetrics {
        &self.observer
    }

    /// The body for `request`: the render in flight for the same request if
    /// there is one, else a new one. The render runs on the blocking pool,
    /// detached from the scrape that started it, so a client that goes away
    /// cancels nothing and costs nothing more. A scrape that joins a render
    /// in progress gets values read shortly before it arrived (at most one
    /// render old), as Prometheus' own scrape timestamps allow. `None` if the
    /// render failed.
    pub(crate) async fn body(self: &Arc<Self>, request: Request) -> Option<Body> {
        let (mut ready, start) = {
            let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            match inflight.get(&request) {
                Some(ready) => (ready.clone(), None),
                None => {
                    let (done, ready) = watch::channel(None);
                    inflight.insert(request.clone(), ready.clone());
                    (ready, Some(done))
                }
            }
        };
        // Started with the table unlocked: the task's guard takes the lock.
        if let Some(done) = start {
            // Owned by the task from here on: if the task never runs (the
            // runtime is shutting down), dropping it still takes the request
            // out of the table.
            let leave = Leave { scraper: self.clone(), request };
            let renders = self.renders.clone();
            tokio::spawn(async move {
                let Ok(permit) = renders.acquire_owned().await else { return };
                let render = tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    leave.scraper.clone().produce(leave, &done);
                });
                let _ = render.await;
            });
        }
        ready.wait_for(Option::is_some).await.ok()?.clone()
    }

    /// Renders and encodes the request `leave` holds, then hands the bytes to
    /// every scrape waiting for them. The request leaves the in-flight table
    /// before they are handed over, and whatever happens (a panic included),
    /// so the next scrape starts afresh.
    fn produce(&self, leave: Leave, done: &watch::Sender<Option<Body>>) {
        let request = leave.request.clone();
        let started = Instant::now();
        let rendered = self.renderer.render(request.format, &request.names);
        let body = encode(rendered, request.encoding);
        self.observer.rendered(request.format, started.elapsed());
        drop(leave);
        match body {
            Ok(body) => {
                let _ = done.send(Some(body));
            }
            // Waiting scrapes see the sender go and answer 500.
            Err(error) => tracing::error!(%error, "mesh-metrics: cannot encode /metrics"),
        }
    }
}

/// A request in the in-flight table; dropping this takes it out.
struct Leave {
    scraper: Arc<Scraper>,
    request: Request,
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.scraper.inflight.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.request);
    }
}

/// `text` in `encoding`.
fn encode(text: Vec<u8>, encoding: Encoding) -> std::io::Result<Body> {
    use std::io::Write as _;
    Ok(match encoding {
        Encoding::Identity => Bytes::from(text),
        Encoding::Gzip => {
            let capacity = text.len() / 8;
            let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(capacity), flate2::Compression::fast());
            encoder.write_all(&text)?;
            Bytes::from(encoder.finish()?)
        }
        Encoding::Zstd => {
            let level = ruzstd::encoding::CompressionLevel::Fastest;
            Bytes::from(ruzstd::encoding::compress_to_vec(&text[..], level))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names;

    #[test]
    #[cfg(target_os = "linux")]
    fn collectors_turned_off_collect_nothing_and_on_collect_each_source() {
        let registry = Registry::new();
        Collectors::new(false, Vec::new()).collect(&registry);
        assert!(registry.families().is_empty());

        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let collectors = Collectors::new(true, vec![("agents".to_owned(), runtime.handle().clone())]);
        collectors.collect(&registry);
        let snapshot = registry.snapshot();
        assert!(snapshot.matching(names::process::CPU_SECONDS_TOTAL, &[]).next().is_some());
        assert!(snapshot.value(names::process::RESIDENT_MEMORY_BYTES, &[]) > 0.0);
        assert_eq!(snapshot.value(names::tokio::WORKERS, &[("runtime", "agents")]), 1.0);
    }
}
