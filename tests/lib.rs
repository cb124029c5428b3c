//! Helpers shared by the integration tests: a minimal HTTP/1.1 client over
//! std's `TcpStream` (the tests must see exactly what a scraper sees, without
//! a client library in between), access to `promtool`, a strict independent
//! parser of both exposition formats, and child processes that are always
//! stopped.

pub mod exposition;
pub mod metrics_proto;
mod tools;
mod warnings;

pub use tools::{
    ChildGuard, Format, ParsedExemplar, ParsedSample, TempDir, percent_encode, python_parse, strict_parse,
    strict_parser,
};
pub use warnings::Warnings;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header `(name, value)` pairs, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, when it is UTF-8 (else empty: see `bytes`).
    pub body: String,
    /// The body as sent (after de-chunking).
    pub bytes: Vec<u8>,
}

impl Response {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in extra_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| std::io::Error::other(format!("unparseable response: {raw:?}")))
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    request(addr, "GET", path, &[])
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(raw.get(..split)?).ok()?;
    let body = raw.get(split + 4..)?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let bytes = if chunked { dechunk(body)? } else { body.to_vec() };
    let body = String::from_utf8(bytes.clone()).unwrap_or_default();
    Some(Response { status, headers, body, bytes })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|window| window == b"\r\n")?;
        let size = std::str::from_utf8(rest.get(..line_end)?).ok()?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        let after = rest.get(line_end + 2..)?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

/// The path of `tool` (e.g. `promtool`, `prometheus`). A missing tool fails
/// the test with how to install it: tests never skip, and the README's test
/// command (`bash .ci/test`) installs it.
pub fn required_tool(tool: &str) -> std::path::PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "{tool} is required: run the README's test command (bash .ci/test), which installs it, \
             or install it (Debian: `apt-get install -y prometheus` for prometheus and promtool, \
             `prometheus-alertmanager` for amtool)"
        )
    })
}

/// Runs `promtool check metrics` on an exposition: `Err` with the parse error
/// if Prometheus' own parser refuses it, else `Ok` with the lint problems
/// (style advice such as a missing HELP), one per line.
pub fn promtool_check_metrics(promtool: &std::path::Path, exposition: &str) -> Result<Vec<String>, String> {
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child.stdin.take().expect("stdin").write_all(exposition.as_bytes()).expect("write exposition");
    let output = child.wait_with_output().expect("promtool finishes");
    let complaints = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    // Exit status 3 means "parsed, with lint problems"; anything else non-zero is a failure to parse.
    match output.status.code() {
        Some(0 | 3) => Ok(complaints.lines().map(str::to_owned).filter(|l| !l.trim().is_empty()).collect()),
        _ => Err(format!("promtool failed ({}): {complaints}", output.status)),
    }
}
