//! The generated code passes the strictest lint sets a user may enable:
//! `cargo clippy --all-targets -- -D warnings` (run by CI) lints this file with
//! clippy's pedantic group denied on every instrumented shape.
#![deny(warnings, clippy::all, clippy::pedantic)]

use mesh_metrics::instrumented;

#[derive(Debug, PartialEq, Eq)]
pub struct Failure;

/// Sync, with `?`, early return and tail.
///
/// # Errors
/// When `input` is not a number.
#[instrumented(agent = "lints")]
pub fn parse(input: &str) -> Result<u32, Failure> {
    if input.is_empty() {
        return Ok(0);
    }
    let value = input.parse::<u32>().map_err(|_| Failure)?;
    Ok(value)
}

/// Unit-returning, with a bare `return`.
#[instrumented(agent = "lints")]
pub fn touch(flag: bool) {
    if flag {
        return;
    }
    std::hint::black_box(flag);
}

/// Async.
///
/// # Errors
/// Never, but it says so in its type.
#[instrumented(agent = "lints")]
pub async fn fetch(x: u32) -> Result<u32, Failure> {
    tokio::task::yield_now().await;
    Ok(x)
}

/// Option with `none_is`.
#[instrumented(agent = "lints", none_is = "error")]
#[must_use]
pub fn lookup(key: u32) -> Option<u32> {
    key.checked_sub(1)
}

pub struct Agent {
    count: u32,
}

#[instrumented(agent = "lints")]
impl Agent {
    #[must_use]
    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn bump(&mut self) -> &mut u32 {
        self.count += 1;
        &mut self.count
    }
}

#[tokio::test]
#[allow(clippy::float_cmp)] // counts are whole numbers, compared exactly on purpose
async fn linted_shapes_still_behave() {
    assert_eq!(parse(""), Ok(0));
    assert_eq!(parse("x"), Err(Failure));
    touch(true);
    assert_eq!(fetch(3).await, Ok(3));
    assert_eq!(lookup(0), None);
    let mut agent = Agent { count: 0 };
    *agent.bump() += 1;
    assert_eq!(agent.count(), 2);
    let snapshot = mesh_metrics::snapshot();
    let status = |method, status| {
        snapshot.value("mcp_mesh_requests_total", &[("agent", "lints"), ("method", method), ("status", status)])
    };
    assert_eq!((status("parse", "success"), status("parse", "error")), (1.0, 1.0));
    assert_eq!(status("lookup", "error"), 1.0);
    assert_eq!(status("bump", "success"), 1.0);
}
