//! External tools the tests lean on: the Prometheus project's Python parser
//! (`prometheus_client`) as an independent second reader of both exposition
//! formats (its OpenMetrics parser is strict; its classic parser is lenient,
//! so classic strictness comes from our own reader, `promtool check metrics`
//! and a real Prometheus); child processes that are killed whatever happens;
//! temporary dirs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    #[default]
    Classic,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

/// One sample as the strict parser read it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    /// Sample name (`x_total`, `x_bucket`, ...).
    pub name: String,
    /// `k=v` pairs sorted by name, comma-separated; `\\`, `\n`, tab escaped.
    pub labels: String,
    /// The value.
    pub value: f64,
    /// The labels exactly as parsed, sorted by name.
    pub label_pairs: Vec<(String, String)>,
    /// Its exemplar, if any.
    pub exemplar: Option<ParsedExemplar>,
}

/// An exemplar as the strict parser read it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedExemplar {
    /// The `trace_id` label.
    pub trace_id: String,
    /// The value.
    pub value: f64,
    /// Seconds since the Unix epoch.
    pub timestamp: f64,
}

const PARSER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/support/parse_exposition.py");

/// Checks that `python3` with `prometheus_client` is installed; fails the
/// test, saying how to install it, when it is not. Tests never skip: the
/// README's test command (`bash .ci/test`) installs it.
pub fn strict_parser() {
    let found = Command::new("python3")
        .args(["-c", "import prometheus_client, opentelemetry.proto"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "python3 with prometheus_client and opentelemetry-proto is required: run the README's test command \
         (bash .ci/test), which installs them, or `python3 -m pip install prometheus-client==0.26.0 opentelemetry-proto`"
    );
}

/// Parses `text` strictly with our own reader ([`crate::exposition`]) and
/// again with `prometheus_client`; both must accept it and read the same
/// samples. `Err` holds the complaint of whichever refused it.
pub fn strict_parse(format: Format, text: &str) -> Result<Vec<ParsedSample>, String> {
    let ours = crate::exposition::parse(format, text).map_err(|error| format!("mesh-metrics-tests reader: {error}"))?;
    let theirs = python_parse(format, text).map_err(|error| format!("prometheus_client: {error}"))?;
    // prometheus_client's classic reader appends `_total` to a counter's
    // samples that lack it; the names are compared without it.
    let key = |s: &ParsedSample| {
        (s.name.trim_end_matches("_total").to_owned(), s.labels.clone(), s.value.to_bits(), s.value.is_nan())
    };
    let mut a: Vec<_> = ours.iter().map(key).collect();
    let mut b: Vec<_> = theirs.iter().map(key).collect();
    // NaN reads back as NaN, whatever its bits.
    for list in [&mut a, &mut b] {
        for entry in list.iter_mut() {
            if entry.3 {
                entry.2 = 0;
            }
        }
        list.sort();
    }
    if a != b {
        return Err(format!("the two readers disagree:\n ours:   {a:?}\n theirs: {b:?}"));
    }
    Ok(ours)
}

/// Parses `text` with `prometheus_client` alone; `Err` holds its complaint.
pub fn python_parse(format: Format, text: &str) -> Result<Vec<ParsedSample>, String> {
    strict_parser();
    let format = match format {
        Format::Classic => "classic",
        Format::OpenMetrics => "openmetrics",
    };
    let mut child = Command::new("python3")
        .arg(PARSER)
        .arg(format)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start python3: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).map_err(|e| format!("cannot write to the parser: {e}"))?;
    }
    let output = child.wait_with_output().map_err(|e| format!("parser did not finish: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(stdout.lines().filter(|line| line.starts_with("sample\t")).map(parse_sample_line).collect())
}

fn parse_sample_line(line: &str) -> ParsedSample {
    let fields: Vec<&str> = line.split('\t').collect();
    let field = |i: usize| fields.get(i).copied().unwrap_or_default();
    let number = |i: usize| field(i).parse::<f64>().unwrap_or(f64::NAN);
    let label_pairs = match serde_json::from_str::<serde_json::Value>(field(4)) {
        Ok(serde_json::Value::Object(map)) => {
            map.into_iter().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned())).collect()
        }
        _ => Vec::new(),
    };
    ParsedSample {
        name: field(1).to_owned(),
        labels: field(2).to_owned(),
        value: number(3),
        label_pairs,
        exemplar: (fields.len() > 5).then(|| ParsedExemplar {
            trace_id: field(5).to_owned(),
            value: number(6),
            timestamp: number(7),
        }),
    }
}

/// Percent-encodes a query-string value.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A child process killed (and reaped) when the guard drops, also when the
/// test fails.
#[derive(Debug)]
pub struct ChildGuard {
    name: &'static str,
    child: Child,
    log: Option<PathBuf>,
}

impl ChildGuard {
    /// Starts `command`, named `name` in messages.
    pub fn spawn(name: &'static str, command: &mut Command) -> Self {
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { name, child, log: None }
    }

    /// Names the file the child logs to, so an early exit shows its end.
    pub fn logging_to(mut self, log: impl Into<PathBuf>) -> Self {
        self.log = Some(log.into());
        self
    }

    /// The child, e.g. to take its stdout.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Fails with `name`'s exit status if it has already exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = self.log.as_ref().map_or_else(String::new, |path| {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let tail: String = text.chars().rev().take(4000).collect::<Vec<_>>().into_iter().rev().collect();
                format!("; the end of {}:\n{tail}", path.display())
            });
            panic!("{} exited early: {status}{log}", self.name);
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
