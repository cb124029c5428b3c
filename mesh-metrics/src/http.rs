//! The `/metrics` endpoint: hyper's HTTP/1 server on tokio.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ALLOW, AUTHORIZATION, CONTENT_TYPE, HeaderValue, VARY, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::access::{Allowlist, Token};
use crate::exporter::Renderer;

/// The classic text format's content type.
pub(crate) const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The OpenMetrics text format's content type.
pub(crate) const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long in-flight scrapes get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Request heads larger than this are refused (a scrape's head is well under 1 KiB).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a refusal (403, 503) may take to write before the socket is dropped.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Who may connect, and how much of the server a client may hold.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Client addresses that may connect.
    pub(crate) allow: Allowlist,
    /// The bearer token `/metrics` requires, if any.
    pub(crate) token: Option<Token>,
    /// Connections served at once; past it, a fast 503.
    pub(crate) max_connections: usize,
    /// How long a client may take to send a request head (slowloris).
    pub(crate) request_timeout: Duration,
    /// How long one connection may live, however busy (slow readers).
    pub(crate) connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            allow: Allowlist::default(),
            token: None,
            max_connections: 512,
            request_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(60),
        }
    }
}

pub(crate) struct Server {
    pub(crate) renderer: Arc<Renderer>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) upkeep_interval: Duration,
    pub(crate) limits: Arc<Limits>,
}

impl Server {
    pub(crate) async fn run(mut self, listener: tokio::net::TcpListener) {
        let mut connections = JoinSet::new();
        let permits = Arc::new(Semaphore::new(self.limits.max_connections));
        let mut upkeep = tokio::time::interval(self.upkeep_interval);
        upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut upkeeping: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if !self.limits.allow.allows(peer.ip()) {
                            connections.spawn(refuse(stream, Refusal::Forbidden));
                        } else if let Ok(permit) = permits.clone().try_acquire_owned() {
                            let serve = serve_connection(stream, self.renderer.clone(), self.limits.clone(), self.stop.clone());
                            connections.spawn(async move {
                                serve.await;
                                drop(permit);
                            });
                        } else {
                            connections.spawn(refuse(stream, Refusal::Busy));
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
                        let renderer = self.renderer.clone();
                        upkeeping = Some(tokio::task::spawn_blocking(move || renderer.run_upkeep()));
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

/// Why a connection is turned away before HTTP is served on it.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The client's address is not on the allowlist.
    Forbidden,
    /// Every connection slot is taken.
    Busy,
}

/// Answers a connection that will not be served with one fixed response and
/// closes it: no request is read, so a refused client costs one write.
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
    let write = async {
        let _ = stream.write_all(response).await;
        let _ = stream.shutdown().await;
    };
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, write).await;
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A dropped sender (the handle was dropped) also means stop.
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    renderer: Arc<Renderer>,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<bool>,
) {
    let service_limits = limits.clone();
    let service = hyper::service::service_fn(move |request| {
        let (renderer, limits) = (renderer.clone(), service_limits.clone());
        async move { Ok::<_, Infallible>(respond(renderer, &limits, &request).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.request_timeout).max_buf_size(MAX_HEAD_BYTES);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let deadline = tokio::time::sleep(limits.connection_timeout);
    tokio::pin!(deadline);
    tokio::select! {
        _ = connection.as_mut() => return,
        // A client that holds the connection too long (reads the body at a
        // trickle, or idles between requests) loses it.
        () = &mut deadline => return,
        _ = stopped(&mut stop) => connection.as_mut().graceful_shutdown(),
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
}

async fn respond(renderer: Arc<Renderer>, limits: &Limits, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let readable = matches!(*request.method(), Method::GET | Method::HEAD);
    match request.uri().path() {
        "/metrics" if readable => {
            if let Some(token) = &limits.token {
                let authorization = request.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
                if !token.accepts(authorization) {
                    // The same answer whether the header was missing, malformed or wrong.
                    let mut response = reply(
                        StatusCode::UNAUTHORIZED,
                        "text/plain; charset=utf-8",
                        "authentication required\n".into(),
                    );
                    response
                        .headers_mut()
                        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"metrics\""));
                    return response;
                }
            }
            let accept = request.headers().get_all(ACCEPT).iter().filter_map(|value| value.to_str().ok());
            let openmetrics = wants_openmetrics(accept);
            // Rendering is CPU work proportional to the series: off the async threads.
            let rendered =
                tokio::task::spawn_blocking(
                    move || {
                        if openmetrics { renderer.openmetrics() } else { renderer.classic() }
                    },
                )
                .await;
            let Ok(body) = rendered else {
                return reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    "rendering failed\n".into(),
                );
            };
            let content_type = if openmetrics { OPENMETRICS_CONTENT_TYPE } else { CLASSIC_CONTENT_TYPE };
            let mut response = reply(StatusCode::OK, content_type, body);
            response.headers_mut().insert(VARY, HeaderValue::from_static("Accept"));
            response
        }
        "/health" if readable => reply(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".to_owned()),
        "/metrics" | "/health" => {
            let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "use GET\n".into());
            response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found: scrape /metrics\n".into()),
    }
}

/// Whether the `Accept` header values prefer OpenMetrics 1.0.0 (or the
/// compatible draft 0.0.1) to the classic format: an `application/openmetrics-text`
/// range with a quality above zero and at least that of `text/plain`.
/// `*/*`, a missing header or anything unparsable gets the classic format.
fn wants_openmetrics<'a>(accept: impl Iterator<Item = &'a str>) -> bool {
    let mut openmetrics = 0.0f32;
    let mut classic = 0.0f32;
    for range in accept.flat_map(|value| value.split(',')) {
        let mut parts = range.split(';').map(str::trim);
        let media_type = parts.next().unwrap_or_default().to_ascii_lowercase();
        let mut quality = 1.0f32;
        let mut version_ok = true;
        for parameter in parts {
            let Some((key, value)) = parameter.split_once('=') else { continue };
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "q" => quality = value.parse().ok().filter(|q: &f32| (0.0..=1.0).contains(q)).unwrap_or(0.0),
                "version" => version_ok = matches!(value, "1.0.0" | "0.0.1"),
                _ => {}
            }
        }
        match media_type.as_str() {
            "application/openmetrics-text" if version_ok => openmetrics = openmetrics.max(quality),
            "text/plain" => classic = classic.max(quality),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= classic
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::wants_openmetrics;

    fn wants(accept: &[&str]) -> bool {
        wants_openmetrics(accept.iter().copied())
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
}
