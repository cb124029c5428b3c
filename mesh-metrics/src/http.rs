//! The `/metrics` endpoint: hyper's HTTP/1 server on tokio.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::exporter::Renderer;

/// The classic text format's content type.
pub(crate) const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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
        "/metrics" if readable => reply(StatusCode::OK, CLASSIC_CONTENT_TYPE, renderer.classic()),
        "/health" if readable => reply(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".to_owned()),
        "/metrics" | "/health" => {
            let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "use GET\n".into());
            response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found: scrape /metrics\n".into()),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
