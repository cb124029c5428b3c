//! The endpoint under abuse, over real TCP: who may scrape (allowlist, bearer
//! token), slow and oversized requests, too many connections, clients that
//! vanish mid-body, and a graceful shutdown that lets a scrape finish.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mesh_metrics::registry::{self, Cell, Descriptor, MetricKind};
use mesh_metrics_tests::request;

const TOKEN: &str = "correct-horse-battery-staple";

/// A raw connection from `source` (a loopback address of our choice).
async fn connect_from(source: &str, addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(format!("{source}:0").parse().expect("source address")).expect("bind source");
    socket.connect(addr).await.expect("connect")
}

/// Everything the server sends until it closes the connection. A server that
/// never closes it fails the test (after a generous safety timeout).
async fn read_all(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "the server kept the connection open; got {:?}", String::from_utf8_lossy(&out));
    String::from_utf8_lossy(&out).into_owned()
}

async fn send(stream: &mut tokio::net::TcpStream, text: &str) {
    use tokio::io::AsyncWriteExt as _;
    stream.write_all(text.as_bytes()).await.expect("write");
}

fn scrape_with(addr: SocketAddr, authorization: &str) -> mesh_metrics_tests::Response {
    request(addr, "GET", "/metrics", &[("Authorization", authorization)]).expect("scrape")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_turns_away_what_it_should_and_serves_the_rest() {
    // Enough series that a response outgrows the socket buffers.
    const WIDE: Descriptor = Descriptor {
        name: std::borrow::Cow::Borrowed("wide_series"),
        help: std::borrow::Cow::Borrowed("Many series"),
        kind: MetricKind::Gauge,
        label_names: std::borrow::Cow::Borrowed(&["id"]),
        unit: None,
    };
    let exporter = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .allow_client("127.0.0.1")
        .bearer_token(TOKEN)
        .max_connections(4)
        .unlimited_cardinality("wide_series")
        .request_timeout(Duration::from_secs(2))
        .connection_timeout(Duration::from_secs(3))
        .install()
        .expect("install");
    // Larger than a socket's send buffer can hold (tcp_wmem's 4 MiB), so a
    // client that stops reading keeps its response in progress.
    let wide = registry::global().family(&WIDE).expect("family");
    for i in 0..60_000 {
        if let Cell::Gauge(gauge) =
            wide.series(&[&format!("{i:0>64}")], |_| Cell::Gauge(Default::default())).expect("series").cell()
        {
            gauge.set(f64::from(i));
        }
    }
    let addr = exporter.local_addr();
    let bearer = format!("Bearer {TOKEN}");

    // The bearer token: right gets 200; missing, wrong or malformed get the same 401.
    let ok = tokio::task::spawn_blocking({
        let bearer = bearer.clone();
        move || scrape_with(addr, &bearer)
    })
    .await
    .expect("join");
    assert_eq!(ok.status, 200);
    let refusals = tokio::task::spawn_blocking(move || {
        let missing = request(addr, "GET", "/metrics", &[]).expect("scrape");
        let wrong = scrape_with(addr, "Bearer correct-horse-battery-stapler");
        let scheme = scrape_with(addr, &format!("Basic {TOKEN}"));
        [missing, wrong, scheme]
    })
    .await
    .expect("join");
    for refused in &refusals {
        assert_eq!(refused.status, 401);
        assert_eq!(refused.body, "authentication required\n");
        assert_eq!(refused.header("www-authenticate"), Some("Bearer realm=\"metrics\""));
    }
    // Asked on a keep-alive connection, a 401 still closes it: a client
    // without the token cannot hold a slot.
    let mut keep_alive = connect_from("127.0.0.1", addr).await;
    send(&mut keep_alive, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = read_all(&mut keep_alive).await;
    assert!(answer.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{answer:?}");
    assert!(answer.contains("connection: close\r\n"), "the server closes it, not the client: {answer:?}");

    // The allowlist names 127.0.0.1 only: 127.0.0.2 is another client.
    let mut outsider = connect_from("127.0.0.2", addr).await;
    send(&mut outsider, &format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\n\r\n")).await;
    let answer = read_all(&mut outsider).await;
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer:?}");
    assert!(answer.ends_with("\r\n\r\nthis address may not scrape /metrics\r\n"), "{answer:?}");

    // A request head over the limit is refused, not buffered.
    let huge = tokio::task::spawn_blocking(move || {
        request(addr, "GET", "/metrics", &[("X-Padding", &"a".repeat(20 * 1024))]).map(|r| r.status)
    })
    .await
    .expect("join");
    assert_eq!(huge.ok(), Some(431), "an oversized head gets its 431, not a reset");

    // Slowloris: a head that never completes is dropped by the server (after
    // the request timeout) instead of holding the connection.
    let mut slow = connect_from("127.0.0.1", addr).await;
    send(&mut slow, "GET /metrics HTTP/1.1\r\nHost: x\r\n").await;
    let answer = read_all(&mut slow).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer:?}");

    // Four idle connections (they never sent anything) hold every slot: a
    // fifth that scrapes makes the oldest idle one close, and is served.
    let evicted = || mesh_metrics::snapshot().value("mcp_mesh_exporter_connections_evicted_total", &[]);
    let evicted_before = evicted();
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect_from("127.0.0.1", addr).await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let served = tokio::task::spawn_blocking({
        let bearer = bearer.clone();
        move || scrape_with(addr, &bearer)
    })
    .await
    .expect("join");
    assert_eq!(served.status, 200, "a scrape evicts an idle connection instead of being refused");
    let oldest = read_all(&mut idle[0]).await;
    assert!(oldest.is_empty(), "the oldest idle connection was closed without a response: {oldest:?}");
    assert_eq!(evicted() - evicted_before, 1.0, "one idle connection was evicted, none timed out first");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Four connections mid-response (they asked, then stopped reading a body
    // larger than their receive buffers): none is idle, so a fifth gets an
    // immediate 503 — with a lingering close, so it reads the status even
    // though it sent a request the server never read.
    let mut busy = Vec::new();
    for _ in 0..4 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("small receive buffer");
        let mut stream = socket.connect(addr).await.expect("connect");
        send(&mut stream, &format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\n\r\n")).await;
        busy.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let evicted_before = evicted();
    let mut fifth = connect_from("127.0.0.1", addr).await;
    send(&mut fifth, &format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\n\r\n")).await;
    let answer = read_all(&mut fifth).await;
    assert_eq!(evicted(), evicted_before, "a connection mid-response is never evicted");
    assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{answer:?}");
    assert!(
        answer.contains("retry-after: 1\r\n") && answer.ends_with("too many scrapes, try again soon\r\n"),
        "{answer:?}"
    );
    drop(busy);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A client that vanishes mid-body does not disturb the next one.
    for _ in 0..3 {
        let mut vanishing = connect_from("127.0.0.1", addr).await;
        send(&mut vanishing, &format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\n\r\n")).await;
        let mut first = [0u8; 64];
        use tokio::io::AsyncReadExt as _;
        let _ = vanishing.read(&mut first).await;
        drop(vanishing);
    }
    let after = tokio::task::spawn_blocking({
        let bearer = bearer.clone();
        move || scrape_with(addr, &bearer)
    })
    .await
    .expect("join");
    assert_eq!(after.status, 200);
    assert!(after.body.contains("wide_series{id=\""), "complete body after vanishing clients");

    // Graceful shutdown: a scrape in progress still gets its whole body.
    let reader = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut head = [0u8; 256];
        let mut got = stream.read(&mut head).expect("first bytes");
        std::thread::sleep(Duration::from_millis(300)); // shutdown starts meanwhile
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).expect("the rest");
        got += rest.len();
        let text = String::from_utf8_lossy(&head).into_owned();
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("content-length");
        let head_len = text.find("\r\n\r\n").expect("end of head") + 4;
        (got - head_len, length)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    exporter.shutdown().await;
    let (received, announced) = reader.join().expect("reader");
    assert_eq!(received, announced, "the in-flight scrape finished");
    std::net::TcpListener::bind(addr).expect("the port is free after shutdown");
}
