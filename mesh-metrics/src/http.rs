//! The `/metrics` endpoint: hyper's HTTP/1 server on tokio.
//!
//! What it withstands, and how:
//! * many scrapes at once: renders are shared ([`crate::scrape`]), bodies are
//!   reference-counted bytes;
//! * clients that hold connections without asking for anything: when every
//!   slot is taken, a new connection evicts the oldest idle one (no request in
//!   progress) instead of being refused, and a request head must arrive within
//!   `request_timeout`;
//! * clients without the token: a 401 closes the connection;
//! * a refusal (403, 503) is delivered with a lingering close, so the client
//!   reads the status instead of a reset;
//! * `connection_timeout` ends a keep-alive connection between requests,
//!   never in the middle of a response.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT, ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, VARY,
    WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::access::{Allowlist, Token};
use crate::scrape::{self, Encoding, Format, Names, Scraper};

/// The classic text format's content type.
pub(crate) const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The OpenMetrics text format's content type.
pub(crate) const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus protobuf exposition's content type.
pub(crate) const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// How long in-flight scrapes get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Request heads larger than this are refused (a scrape's head is well under 1 KiB).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a refusal (403, 503) may take, lingering included, before the socket is dropped.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// How much of a refused client's request is read and discarded while lingering.
const REFUSAL_DRAIN_BYTES: usize = 64 * 1024;
/// How long a new connection waits for the slot an evicted one frees.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// Who may connect, and how much of the server a client may hold.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Client addresses that may connect.
    pub(crate) allow: Allowlist,
    /// The bearer token `/metrics` requires, if any.
    pub(crate) token: Option<Token>,
    /// Connections served at once. Past it, a new connection evicts the
    /// oldest idle one; with none idle, it gets a fast 503.
    pub(crate) max_connections: usize,
    /// How long a client may take to send a request head (slowloris).
    pub(crate) request_timeout: Duration,
    /// How long one connection may live: it is closed at its first idle
    /// moment after this (slow readers, endless keep-alive).
    pub(crate) connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            allow: Allowlist::default(),
            token: None,
            // The guide's load test: 1,000 concurrent scrapes, each served.
            max_connections: 1_024,
            request_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(60),
        }
    }
}

pub(crate) struct Server {
    pub(crate) scraper: Arc<Scraper>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) upkeep_interval: Duration,
    pub(crate) limits: Arc<Limits>,
}

impl Server {
    /// Serves `listener` (if any) and runs upkeep until stopped.
    pub(crate) async fn run(mut self, listener: Option<tokio::net::TcpListener>) {
        let mut connections = JoinSet::new();
        let slots = Arc::new(Slots::new(self.limits.max_connections));
        let mut upkeep = tokio::time::interval(self.upkeep_interval);
        upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut upkeeping: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            tokio::select! {
                accepted = accept(listener.as_ref()) => match accepted {
                    Ok((stream, peer)) => {
                        if !self.limits.allow.allows(peer.ip()) {
                            self.scraper.metrics().refused("forbidden");
                            connections.spawn(refuse(stream, Refusal::Forbidden));
                        } else {
                            let connection = Connection {
                                scraper: self.scraper.clone(),
                                limits: self.limits.clone(),
                                stop: self.stop.clone(),
                                slots: slots.clone(),
                            };
                            connections.spawn(connection.run(stream));
                        }
                    }
                    // Out of file descriptors and the like: back off, keep serving.
                    Err(error) => {
                        tracing::warn!(%error, "mesh-metrics: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = upkeep.tick() => {
                    // Upkeep renders the facade when series expire: off this thread, and
                    // without pausing accepts. A tick that finds the last upkeep still
                    // running skips, so upkeeps never pile up.
                    if upkeeping.as_ref().is_none_or(tokio::task::JoinHandle::is_finished) {
                        let scraper = self.scraper.clone();
                        upkeeping = Some(tokio::task::spawn_blocking(move || scraper.renderer.run_upkeep()));
                    }
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                _ = stopped(&mut self.stop) => break,
            }
        }
        drop(listener);
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            connections.abort_all();
        }
    }
}

/// The next connection; never, without a listener.
async fn accept(
    listener: Option<&tokio::net::TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// The connection slots and who holds them, oldest first.
#[derive(Debug)]
struct Slots {
    permits: Arc<Semaphore>,
    held: Mutex<VecDeque<Arc<Slot>>>,
    next: AtomicU64,
}

/// One held slot: whether its connection is idle (no request in progress,
/// no response still being written), and how to ask it to close.
#[derive(Debug)]
struct Slot {
    id: u64,
    idle: AtomicBool,
    /// The socket refused the last write: a response is still going out
    /// (hyper lets go of a body before its bytes are written).
    writing: AtomicBool,
    evicting: AtomicBool,
    evict: Notify,
}

impl Slot {
    fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Acquire) && !self.writing.load(Ordering::Acquire)
    }
}

impl Slots {
    fn new(max: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(max)), held: Mutex::new(VecDeque::new()), next: AtomicU64::new(0) }
    }

    /// A slot: a free one, else the one the oldest idle connection gives up.
    /// `None` when every connection is busy.
    async fn take(
        &self,
        metrics: &crate::server_metrics::ServerMetrics,
    ) -> Option<(Arc<Slot>, tokio::sync::OwnedSemaphorePermit)> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !self.evict_oldest_idle() {
                    return None;
                }
                metrics.evicted();
                tokio::time::timeout(EVICTION_WAIT, self.permits.clone().acquire_owned()).await.ok()?.ok()?
            }
        };
        let slot = Arc::new(Slot {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            idle: AtomicBool::new(true),
            writing: AtomicBool::new(false),
            evicting: AtomicBool::new(false),
            evict: Notify::new(),
        });
        self.held.lock().unwrap_or_else(PoisonError::into_inner).push_back(slot.clone());
        Some((slot, permit))
    }

    fn evict_oldest_idle(&self) -> bool {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest_idle = held.iter().find(|slot| slot.is_idle() && !slot.evicting.swap(true, Ordering::AcqRel));
        match oldest_idle {
            Some(slot) => {
                slot.evict.notify_one();
                true
            }
            None => false,
        }
    }

    fn release(&self, slot: &Slot) {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).retain(|held| held.id != slot.id);
    }
}

/// One accepted connection from an allowed client.
struct Connection {
    scraper: Arc<Scraper>,
    limits: Arc<Limits>,
    stop: watch::Receiver<bool>,
    slots: Arc<Slots>,
}

impl Connection {
    async fn run(self, stream: tokio::net::TcpStream) {
        let Some((slot, permit)) = self.slots.take(self.scraper.metrics()).await else {
            self.scraper.metrics().refused("busy");
            refuse(stream, Refusal::Busy).await;
            return;
        };
        // Released however serving ends, a panic included.
        let _held = Held { slots: &self.slots, slot: &slot, _permit: permit };
        self.serve(stream, &slot).await;
    }

    async fn serve(&self, stream: tokio::net::TcpStream, slot: &Arc<Slot>) {
        let (scraper, limits, service_slot) = (self.scraper.clone(), self.limits.clone(), slot.clone());
        let service = hyper::service::service_fn(move |request| {
            let (scraper, limits, slot) = (scraper.clone(), limits.clone(), service_slot.clone());
            async move {
                slot.idle.store(false, Ordering::Release);
                let busy = Busy(slot);
                Ok::<_, Infallible>(respond(&scraper, &limits, &request, busy).await)
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(self.limits.request_timeout).max_buf_size(MAX_HEAD_BYTES);
        let io = Watched { stream, slot: slot.clone() };
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let deadline = tokio::time::sleep(self.limits.connection_timeout);
        tokio::pin!(deadline);
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = connection.as_mut() => return,
            // Asked to make room while idle: nothing is in progress to cut.
            () = slot.evict.notified() => {
                if slot.is_idle() {
                    return;
                }
            }
            // Long enough: closed at its first idle moment, never mid-response.
            () = &mut deadline => {}
            _ = stopped(&mut stop) => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
    }
}

/// A connection's socket, noting in its slot whether a write is blocked.
struct Watched {
    stream: tokio::net::TcpStream,
    slot: Arc<Slot>,
}

impl Watched {
    fn note<T>(&self, poll: Poll<T>) -> Poll<T> {
        self.slot.writing.store(poll.is_pending(), Ordering::Release);
        poll
    }
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.note(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.note(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_flush(cx);
        self.note(poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A taken slot, given back when dropped.
struct Held<'a> {
    slots: &'a Slots,
    slot: &'a Slot,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.slots.release(self.slot);
    }
}

/// Marks a connection busy for as long as its response body lives (hyper
/// drops it once it has taken the last bytes; [`Watched`] covers the rest).
#[derive(Debug)]
struct Busy(Arc<Slot>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.idle.store(true, Ordering::Release);
    }
}

/// A response body: bytes, or for `HEAD` nothing and no length (a `HEAD`
/// answers without rendering, so the length is not known).
#[derive(Debug)]
pub(crate) struct ScrapeBody {
    bytes: Option<Bytes>,
    head: bool,
    _busy: Busy,
}

impl http_body::Body for ScrapeBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.bytes.take().map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none() && !self.head
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.bytes, self.head) {
            (_, true) => SizeHint::default(),
            (Some(bytes), false) => SizeHint::with_exact(bytes.len() as u64),
            (None, false) => SizeHint::with_exact(0),
        }
    }
}

/// Why a connection is turned away before HTTP is served on it.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The client's address is not on the allowlist.
    Forbidden,
    /// Every connection slot is taken by a busy connection.
    Busy,
}

/// Answers a connection that will not be served with one fixed response, then
/// lingers: the write side is closed and what the client sent is read and
/// discarded (up to a bound, for a bounded time), so closing does not reset
/// the connection before the client has read the status.
async fn refuse(mut stream: tokio::net::TcpStream, refusal: Refusal) {
    let response: &[u8] = match refusal {
        Refusal::Forbidden => {
            b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 38\r\n\
              connection: close\r\n\r\nthis address may not scrape /metrics\r\n"
        }
        Refusal::Busy => {
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 34\r\n\
              retry-after: 1\r\nconnection: close\r\n\r\ntoo many scrapes, try again soon\r\n"
        }
    };
    let linger = async {
        if stream.write_all(response).await.is_err() || stream.shutdown().await.is_err() {
            return;
        }
        let mut discard = [0u8; 4096];
        let mut drained = 0;
        while drained < REFUSAL_DRAIN_BYTES {
            match stream.read(&mut discard).await {
                Ok(0) | Err(_) => return,
                Ok(read) => drained += read,
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, linger).await;
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A dropped sender (the handle was dropped) also means stop.
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn respond(
    scraper: &Arc<Scraper>,
    limits: &Limits,
    request: &Request<Incoming>,
    busy: Busy,
) -> Response<ScrapeBody> {
    let method = request.method();
    let readable = matches!(*method, Method::GET | Method::HEAD);
    match request.uri().path() {
        "/metrics" if readable => {
            let _in_flight = scraper.metrics().scrape();
            if let Some(token) = &limits.token {
                let authorization = request.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
                if !token.accepts(authorization) {
                    // The same answer whether the header was missing, malformed or wrong;
                    // and the connection goes, so it cannot hold a slot.
                    let mut response = text(StatusCode::UNAUTHORIZED, "authentication required\n", busy);
                    let headers = response.headers_mut();
                    headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"metrics\""));
                    headers.insert(CONNECTION, HeaderValue::from_static("close"));
                    scraper.metrics().answered(401, Encoding::Identity, 0);
                    return response;
                }
            }
            let values = |name| request.headers().get_all(name).iter().filter_map(|value| value.to_str().ok());
            let format = negotiate_format(values(ACCEPT));
            let encoding = negotiate_encoding(values(ACCEPT_ENCODING));
            let names = Names::new(query_names(request.uri().query().unwrap_or_default()));
            let content_type = match format {
                Format::Classic => CLASSIC_CONTENT_TYPE,
                Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
                Format::Protobuf => PROTOBUF_CONTENT_TYPE,
            };
            let body = if *method == Method::HEAD {
                None
            } else {
                match scraper.body(scrape::Request { format, encoding, names }).await {
                    Some(body) => Some(body),
                    None => {
                        scraper.metrics().answered(500, Encoding::Identity, 0);
                        return text(StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n", busy);
                    }
                }
            };
            scraper.metrics().answered(200, encoding, body.as_ref().map_or(0, Bytes::len));
            let head = body.is_none();
            let mut response = Response::new(ScrapeBody { bytes: body, head, _busy: busy });
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
            if let Some(coding) = encoding.header() {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding));
            }
            response
        }
        "/health" if readable => text(StatusCode::OK, "ok\n", busy),
        "/metrics" | "/health" => {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n", busy);
            response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        _ => text(StatusCode::NOT_FOUND, "not found: scrape /metrics\n", busy),
    }
}

/// The values of `name[]` in a query string (client_golang's filter:
/// `/metrics?name[]=a&name[]=b`), percent-decoded; `None` when the query has
/// no `name[]`. A value that is empty or not decodable names nothing.
fn query_names(query: &str) -> Option<Vec<String>> {
    let values: Vec<&str> = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(key, _)| matches!(percent_decode(key).as_deref(), Some("name[]")))
        .map(|(_, value)| value)
        .collect();
    if values.is_empty() {
        return None;
    }
    Some(values.into_iter().filter_map(percent_decode).filter(|value| !value.is_empty()).collect())
}

fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.bytes();
    while let Some(byte) = rest.next() {
        match byte {
            b'%' => {
                let hex = [rest.next()?, rest.next()?];
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            b'+' => bytes.push(b' '),
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).ok()
}

/// The content coding the `Accept-Encoding` values prefer, by q-value: gzip,
/// zstd or identity; on a tie gzip, then zstd, then identity. `*` stands for
/// any coding not named; identity is acceptable unless `identity;q=0` (or
/// `*;q=0` without `identity`) says otherwise. Nothing acceptable, or no
/// header: identity.
fn negotiate_encoding<'a>(values: impl Iterator<Item = &'a str>) -> Encoding {
    let (mut gzip, mut zstd, mut wildcard): (Option<f32>, Option<f32>, Option<f32>) = (None, None, None);
    let mut identity: Option<f32> = None;
    for coding in values.flat_map(|value| value.split(',')) {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default().to_ascii_lowercase();
        let quality = parts
            .filter_map(|parameter| parameter.split_once('='))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, value)| {
                value.trim().parse().ok().filter(|q: &f32| (0.0..=1.0).contains(q)).unwrap_or(0.0)
            });
        match name.as_str() {
            "gzip" | "x-gzip" => gzip = Some(quality),
            "zstd" => zstd = Some(quality),
            "identity" => identity = Some(quality),
            "*" => wildcard = Some(quality),
            _ => {}
        }
    }
    let gzip = gzip.or(wildcard).unwrap_or(0.0);
    let zstd = zstd.or(wildcard).unwrap_or(0.0);
    // Unnamed, identity stays acceptable but is preferred least.
    let identity = identity.or(wildcard).unwrap_or(f32::MIN_POSITIVE);
    if gzip > 0.0 && gzip >= zstd && gzip >= identity {
        Encoding::Gzip
    } else if zstd > 0.0 && zstd >= identity {
        Encoding::Zstd
    } else {
        Encoding::Identity
    }
}

/// The format the `Accept` header values prefer, by q-value: the Prometheus
/// protobuf format (`application/vnd.google.protobuf` for
/// `io.prometheus.client.MetricFamily`, `encoding=delimited`), OpenMetrics
/// 1.0.0 (or the compatible draft 0.0.1) or the classic text (`text/plain`).
/// On equal quality the first of those wins. `*/*`, a missing header or
/// anything unparsable gets the classic format.
fn negotiate_format<'a>(accept: impl Iterator<Item = &'a str>) -> Format {
    let mut protobuf = 0.0f32;
    let mut openmetrics = 0.0f32;
    let mut classic = 0.0f32;
    for range in accept.flat_map(|value| value.split(',')) {
        let mut parts = range.split(';').map(str::trim);
        let media_type = parts.next().unwrap_or_default().to_ascii_lowercase();
        let mut quality = 1.0f32;
        let mut version_ok = true;
        let mut proto_ok = true;
        for parameter in parts {
            let Some((key, value)) = parameter.split_once('=') else { continue };
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "q" => quality = value.parse().ok().filter(|q: &f32| (0.0..=1.0).contains(q)).unwrap_or(0.0),
                "version" => version_ok = matches!(value, "1.0.0" | "0.0.1"),
                "proto" => proto_ok &= value == "io.prometheus.client.MetricFamily",
                "encoding" => proto_ok &= value == "delimited",
                _ => {}
            }
        }
        match media_type.as_str() {
            "application/vnd.google.protobuf" if proto_ok => protobuf = protobuf.max(quality),
            "application/openmetrics-text" if version_ok => openmetrics = openmetrics.max(quality),
            "text/plain" => classic = classic.max(quality),
            _ => {}
        }
    }
    if protobuf > 0.0 && protobuf >= openmetrics && protobuf >= classic {
        Format::Protobuf
    } else if openmetrics > 0.0 && openmetrics >= classic {
        Format::OpenMetrics
    } else {
        Format::Classic
    }
}

/// A short plain-text response.
fn text(status: StatusCode, body: &'static str, busy: Busy) -> Response<ScrapeBody> {
    let mut response =
        Response::new(ScrapeBody { bytes: Some(Bytes::from_static(body.as_bytes())), head: false, _busy: busy });
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::{Encoding, Format, negotiate_encoding, negotiate_format, query_names};

    fn wants(accept: &[&str]) -> bool {
        negotiate_format(accept.iter().copied()) == Format::OpenMetrics
    }

    #[test]
    fn protobuf_is_served_when_preferred_by_quality() {
        let format = |accept: &str| negotiate_format(std::iter::once(accept));
        // Prometheus 2.42 with --enable-feature=native-histograms.
        let prometheus = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,\
                          application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,\
                          text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(format(prometheus), Format::Protobuf);
        assert_eq!(format("application/vnd.google.protobuf"), Format::Protobuf);
        assert_eq!(format("application/vnd.google.protobuf;q=0.5,application/openmetrics-text"), Format::OpenMetrics);
        assert_eq!(format("application/vnd.google.protobuf;q=0.5,text/plain;q=0.6"), Format::Classic);
        assert_eq!(format("application/vnd.google.protobuf;proto=other.Message"), Format::Classic);
        assert_eq!(format("application/vnd.google.protobuf;encoding=text"), Format::Classic);
        assert_eq!(format("application/vnd.google.protobuf;q=0"), Format::Classic);
        assert_eq!(format("*/*"), Format::Classic);
    }

    #[test]
    fn negotiates_like_prometheus_asks() {
        // What Prometheus 2.x sends.
        assert!(wants(&[
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
             text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ]));
        assert!(wants(&["application/openmetrics-text"]));
        assert!(wants(&["text/html", "Application/OpenMetrics-Text; version=\"1.0.0\""]));
        assert!(!wants(&[]));
        assert!(!wants(&["*/*"]));
        assert!(!wants(&["text/plain;version=0.0.4"]));
        assert!(!wants(&["application/openmetrics-text;q=0"]));
        assert!(!wants(&["application/openmetrics-text;version=2.0.0"]));
        assert!(!wants(&["application/openmetrics-text;q=0.4, text/plain;q=0.9"]));
        assert!(!wants(&["application/openmetrics-text;q=banana"]));
    }

    #[test]
    fn encodings_by_q_value() {
        let encoding = |values: &[&str]| negotiate_encoding(values.iter().copied());
        assert_eq!(encoding(&["gzip"]), Encoding::Gzip, "what Prometheus sends");
        assert_eq!(encoding(&[]), Encoding::Identity);
        assert_eq!(encoding(&["identity"]), Encoding::Identity);
        assert_eq!(encoding(&["gzip;q=0.5, zstd"]), Encoding::Zstd);
        assert_eq!(encoding(&["zstd, gzip"]), Encoding::Gzip, "a tie goes to gzip");
        assert_eq!(encoding(&["gzip;q=0, zstd;q=0"]), Encoding::Identity);
        assert_eq!(encoding(&["*"]), Encoding::Gzip);
        assert_eq!(encoding(&["*;q=0.2, gzip;q=0"]), Encoding::Zstd);
        assert_eq!(encoding(&["br"]), Encoding::Identity);
        assert_eq!(encoding(&["GZIP; Q=0.9"]), Encoding::Gzip);
        assert_eq!(encoding(&["gzip;q=nope"]), Encoding::Identity);
        assert_eq!(encoding(&["identity;q=1, gzip;q=0.1"]), Encoding::Identity, "identity preferred");
        assert_eq!(encoding(&["identity;q=0, zstd;q=0.2"]), Encoding::Zstd);
    }

    #[test]
    fn names_from_the_query() {
        let names = |query| query_names(query);
        assert_eq!(names("name[]=a&name[]=b_total"), Some(vec!["a".to_owned(), "b_total".to_owned()]));
        assert_eq!(names("name%5B%5D=mcp_mesh_requests_total&x=1"), Some(vec!["mcp_mesh_requests_total".to_owned()]));
        assert_eq!(names(""), None, "no filter");
        assert_eq!(names("name=a"), None, "not the filter's key");
        assert_eq!(names("name[]="), Some(vec![]), "an empty filter names nothing, it does not lift the filter");
        assert_eq!(names("name[]=%zz&name[]=%+1"), Some(vec![]), "undecodable values name nothing");
    }
}
