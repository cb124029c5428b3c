//! The `/metrics` endpoint: hyper's HTTP/1 server on tokio.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderValue, VARY};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::exporter::Renderer;

/// The classic text format's content type.
pub(crate) const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The OpenMetrics text format's content type.
pub(crate) const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a client may take to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight scrapes get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Request heads larger than this are refused (a scrape's head is well under 1 KiB).
const MAX_HEAD_BYTES: usize = 16 * 1024;

pub(crate) struct Server {
    pub(crate) renderer: Arc<Renderer>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) upkeep_interval: Duration,
}

impl Server {
    pub(crate) async fn run(mut self, listener: tokio::net::TcpListener) {
        let mut connections = JoinSet::new();
        let mut upkeep = tokio::time::interval(self.upkeep_interval);
        upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        connections.spawn(serve_connection(stream, self.renderer.clone(), self.stop.clone()));
                    }
                    // Out of file descriptors and the like: back off, keep serving.
                    Err(error) => {
                        tracing::warn!(%error, "mesh-metrics: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = upkeep.tick() => self.renderer.run_upkeep(),
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

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A dropped sender (the handle was dropped) also means stop.
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn serve_connection(stream: tokio::net::TcpStream, renderer: Arc<Renderer>, mut stop: watch::Receiver<bool>) {
    let service = hyper::service::service_fn(move |request| {
        let renderer = renderer.clone();
        async move { Ok::<_, Infallible>(respond(&renderer, &request)) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).max_buf_size(MAX_HEAD_BYTES);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stopped(&mut stop) => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

fn respond(renderer: &Renderer, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let readable = matches!(*request.method(), Method::GET | Method::HEAD);
    match request.uri().path() {
        "/metrics" if readable => {
            let accept = request.headers().get_all(ACCEPT).iter().filter_map(|value| value.to_str().ok());
            let mut response = if wants_openmetrics(accept) {
                reply(StatusCode::OK, OPENMETRICS_CONTENT_TYPE, renderer.openmetrics())
            } else {
                reply(StatusCode::OK, CLASSIC_CONTENT_TYPE, renderer.classic())
            };
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
