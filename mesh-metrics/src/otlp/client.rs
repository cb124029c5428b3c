//! `POST /v1/metrics` over HTTP/1.1 with hyper's client: one connection per
//! push (a push every several seconds does not need a pool), the whole
//! exchange bounded by a timeout.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HOST, HeaderName, HeaderValue, RETRY_AFTER};
use hyper_util::rt::TokioIo;

/// A receiver's answer is read up to this size (a partial-success message).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Where pushes go: `http://host:port/path`.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `host:port`, as connected to and sent in `Host`.
    pub(crate) authority: String,
    pub(crate) path: String,
}

impl Endpoint {
    /// `http://host:port` (then `/v1/metrics` is added) or a full
    /// `http://host:port/path`. Only plain HTTP: put a Collector on loopback
    /// or as a sidecar for TLS.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url:?}: the OTLP endpoint is an http:// URL, e.g. http://127.0.0.1:4318 (TLS is not supported)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        let has_port =
            authority.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !has_port {
            return Err(format!("{url:?}: give the endpoint's host and port, e.g. http://127.0.0.1:4318"));
        }
        let path = if path.is_empty() || path == "/" { "/v1/metrics" } else { path };
        Ok(Self { authority: authority.to_owned(), path: path.to_owned() })
    }

    /// The URL, for messages.
    pub(crate) fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }
}

/// What the receiver answered.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Bytes,
}

/// Sends `body` (protobuf, gzipped when `gzip`) with `headers`.
pub(crate) async fn post(
    endpoint: &Endpoint,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
    gzip: bool,
) -> Result<Reply, String> {
    let stream = tokio::net::TcpStream::connect(&endpoint.authority)
        .await
        .map_err(|error| format!("cannot connect to {}: {error}", endpoint.authority))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("HTTP handshake with {} failed: {error}", endpoint.authority))?;
    // The connection's task ends with this call, however it ends (the
    // caller's timeout drops this future).
    struct Driver(tokio::task::JoinHandle<()>);
    impl Drop for Driver {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _driver = Driver(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let mut request = hyper::Request::post(&endpoint.path)
        .header(HOST, &endpoint.authority)
        .header(CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(body))
        .map_err(|error| format!("cannot build the request: {error}"))?;
    if gzip {
        request.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    for (name, value) in headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    let response = sender.send_request(request).await.map_err(|error| format!("the request failed: {error}"))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|seconds| seconds.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    Ok(Reply { status, retry_after, body })
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn endpoints_are_plain_http_with_a_port() {
        let base = Endpoint::parse("http://127.0.0.1:4318").expect("valid");
        assert_eq!((base.authority.as_str(), base.path.as_str()), ("127.0.0.1:4318", "/v1/metrics"));
        let full = Endpoint::parse("http://collector:4318/custom/v1/metrics").expect("valid");
        assert_eq!(full.path, "/custom/v1/metrics");
        assert!(Endpoint::parse("https://collector:4318").unwrap_err().contains("TLS"));
        assert!(Endpoint::parse("http://collector").unwrap_err().contains("port"));
        assert!(Endpoint::parse("collector:4318").is_err());
    }
}
