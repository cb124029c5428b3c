//! The endpoint as operators run it, over real TCP and with the exporter's
//! default limits: compressed bodies that real decoders read back, `HEAD`
//! without a render, `name[]` filtering, renders shared by concurrent scrapes,
//! hundreds of idle connections that cannot starve a scrape, a sample-name
//! clash between a facade family and ours, and a connection timeout that never
//! cuts a response.
//!
//! Its own test binary: `install()` happens once per process.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use mesh_metrics::registry::{self, Cell, Descriptor, MetricKind};
use mesh_metrics_tests::{Format, request, required_tool, strict_parse};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Raw bytes of one response over a fresh connection: head, body.
async fn raw(addr: std::net::SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> (String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await.expect("closed").expect("read");
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of head") + 4;
    let body = raw.split_off(end);
    (String::from_utf8(raw).expect("head"), body)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Decodes with a real decoder outside this code: Python's `gzip` module, the
/// `zstd` command-line tool.
fn decode(encoding: &str, body: &[u8]) -> String {
    let mut command = match encoding {
        "gzip" => {
            let mut command = Command::new("python3");
            command.args(["-c", "import gzip, sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"]);
            command
        }
        "zstd" => {
            let mut command = Command::new(required_tool("zstd"));
            command.args(["-d", "-c"]);
            command
        }
        other => panic!("no decoder for {other}"),
    };
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("decoder");
    child.stdin.take().expect("stdin").write_all(body).expect("write body");
    let output = child.wait_with_output().expect("decoder finishes");
    assert!(output.status.success(), "{encoding} decoder: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8 exposition")
}

fn renders(format: &str) -> u64 {
    mesh_metrics::snapshot().histogram("mcp_mesh_exporter_render_duration_seconds", &[("format", format)]).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_as_operators_run_it() {
    const ORDERS: Descriptor = Descriptor {
        name: std::borrow::Cow::Borrowed("orders_total"),
        help: std::borrow::Cow::Borrowed("Orders"),
        kind: MetricKind::Counter,
        label_names: std::borrow::Cow::Borrowed(&["shop"]),
        unit: None,
    };
    const QUEUE_COUNT: Descriptor = Descriptor {
        name: std::borrow::Cow::Borrowed("queue_wait_seconds_count"),
        help: std::borrow::Cow::Borrowed("A gauge whose name is a histogram sample's"),
        kind: MetricKind::Gauge,
        label_names: std::borrow::Cow::Borrowed(&[]),
        unit: None,
    };
    let exporter = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("addr"))
        .connection_timeout(Duration::from_millis(600))
        .unlimited_cardinality("orders_total")
        .install()
        .expect("install with default limits");
    let addr = exporter.local_addr();
    let orders = registry::global().family(&ORDERS).expect("family");
    for shop in 0..2_000 {
        if let Cell::Counter(counter) =
            orders.series(&[&format!("shop-{shop}")], |_| Cell::Counter(Default::default())).expect("series").cell()
        {
            counter.increment(shop);
        }
    }
    // Ours: `queue_wait_seconds_count`; the facade's histogram
    // `queue_wait_seconds` would write the same sample name.
    let gauge = registry::global().family(&QUEUE_COUNT).expect("family");
    if let Cell::Gauge(gauge) = gauge.series(&[], |_| Cell::Gauge(Default::default())).expect("series").cell() {
        gauge.set(3.0);
    }
    metrics::histogram!("queue_wait_seconds").record(0.2);
    metrics::counter!("facade_orders_total").increment(5);

    // Compression: gzip (what Prometheus asks for) and zstd, read back by real
    // decoders into the same exposition as an uncompressed scrape.
    let (plain_head, plain) = raw(addr, "GET", "/metrics", &[]).await;
    assert!(plain_head.starts_with("HTTP/1.1 200 OK\r\n"), "{plain_head}");
    assert_eq!(header(&plain_head, "content-encoding"), None);
    let plain = String::from_utf8(plain).expect("text");
    for encoding in ["gzip", "zstd"] {
        let (head, body) = raw(addr, "GET", "/metrics", &[("Accept-Encoding", encoding)]).await;
        assert_eq!(header(&head, "content-encoding"), Some(encoding), "{head}");
        assert!(header(&head, "vary").is_some_and(|v| v.contains("Accept-Encoding")));
        assert!(body.len() * 4 < plain.len(), "{encoding}: {} bytes for {} of text", body.len(), plain.len());
        let text = decode(encoding, &body);
        let samples = strict_parse(Format::Classic, &text).unwrap_or_else(|e| panic!("{encoding}: {e}"));
        let orders: f64 = samples.iter().filter(|s| s.name == "orders_total").map(|s| s.value).sum();
        assert_eq!(orders, f64::from((0..2_000u32).sum::<u32>()), "{encoding}: every count");
    }
    let (head, body) = raw(addr, "GET", "/metrics", &[("Accept-Encoding", "gzip;q=0, zstd;q=0")]).await;
    assert_eq!(header(&head, "content-encoding"), None, "nothing acceptable: identity");
    assert!(String::from_utf8(body).expect("text").contains("orders_total{shop=\"shop-1\"} 1\n"));

    // OpenMetrics, gzipped: the strict readers agree on it.
    let (head, body) = raw(
        addr,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0"), ("Accept-Encoding", "gzip")],
    )
    .await;
    assert!(header(&head, "content-type").is_some_and(|t| t.starts_with("application/openmetrics-text")));
    strict_parse(Format::OpenMetrics, &decode("gzip", &body)).unwrap_or_else(|e| panic!("{e}"));

    // HEAD answers the headers without rendering anything.
    let before = renders("classic");
    let (head, body) = raw(addr, "HEAD", "/metrics", &[("Accept-Encoding", "gzip")]).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && body.is_empty(), "{head}");
    assert!(header(&head, "content-type").is_some_and(|t| t.starts_with("text/plain")));
    assert_eq!(renders("classic"), before, "HEAD rendered nothing");

    // name[]: only the families asked for, ours and the facade's alike.
    let filtered = tokio::task::spawn_blocking(move || {
        request(addr, "GET", "/metrics?name[]=orders_total&name%5B%5D=facade_orders_total", &[])
    })
    .await
    .expect("join")
    .expect("scrape");
    let samples = strict_parse(Format::Classic, &filtered.body).unwrap_or_else(|e| panic!("{e}"));
    let names: std::collections::BTreeSet<&str> = samples.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["facade_orders_total", "orders_total"]);
    assert_eq!(samples.len(), 2_001);

    // The classic format keeps sample names unique: the facade histogram whose
    // `_count` is our gauge's name is left out, not duplicated.
    assert_eq!(plain.matches("\nqueue_wait_seconds_count ").count(), 1, "one sample of that name");
    assert!(!plain.contains("queue_wait_seconds_bucket"), "the clashing facade family is left out");
    strict_parse(Format::Classic, &plain).unwrap_or_else(|e| panic!("{e}"));

    // Concurrent scrapes share renders: 200 scrapes at once, far fewer renders.
    let before = renders("classic");
    let scrapes: Vec<_> = (0..200).map(|_| tokio::spawn(raw(addr, "GET", "/metrics", &[]))).collect();
    let mut bodies = Vec::new();
    for scrape in scrapes {
        let (head, body) = scrape.await.expect("join");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        bodies.push(body);
    }
    let rendered = renders("classic") - before;
    assert!((1..200).contains(&rendered), "200 scrapes took {rendered} renders");
    assert!(bodies.iter().all(|b| String::from_utf8_lossy(b).contains("orders_total{shop=\"shop-1999\"} 1999\n")));

    // 600 connections that never send anything: a scrape still gets 200 at once.
    let mut idle = Vec::new();
    for _ in 0..600 {
        idle.push(tokio::net::TcpStream::connect(addr).await.expect("idle connection"));
    }
    let (head, _) = raw(addr, "GET", "/metrics", &[]).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    drop(idle);

    // The connection timeout (600 ms here) ends a keep-alive connection between
    // requests, never mid-response: a response still being read when the
    // timeout passes arrives whole. It must outgrow the kernel's send buffer
    // (tcp_wmem's maximum), or a dropped connection would deliver it anyway.
    let send_buffer_max: usize = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .expect("/proc/sys/net/ipv4/tcp_wmem: the test sizes its response by the send buffer")
        .split_whitespace()
        .nth(2)
        .and_then(|max| max.parse().ok())
        .expect("tcp_wmem's maximum");
    // About 70 bytes a series: comfortably more than the buffer holds.
    let wide = 2_000 + send_buffer_max / 50;
    for shop in 2_000..wide {
        let name = format!("shop-{shop:0>50}");
        if let Cell::Counter(counter) =
            orders.series(&[&name], |_| Cell::Counter(Default::default())).expect("series").cell()
        {
            counter.increment(1);
        }
    }
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small receive buffer");
    let mut slow = socket.connect(addr).await.expect("connect");
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("request");
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    let started = std::time::Instant::now();
    loop {
        let read = slow.read(&mut chunk).await.expect("read");
        if read == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..read]);
        if started.elapsed() < Duration::from_millis(900) {
            tokio::time::sleep(Duration::from_millis(20)).await; // a slow reader, past the timeout
        }
    }
    let end = received.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&received[..end]).into_owned();
    let length: usize = header(&head, "content-length").expect("length").parse().expect("number");
    assert!(length > send_buffer_max, "a body larger than the send buffer: {length} > {send_buffer_max}");
    assert_eq!(received.len() - end, length, "the whole response, then the close");
    assert!(started.elapsed() >= Duration::from_millis(600), "the read outlived the timeout");

    exporter.shutdown().await;
}
