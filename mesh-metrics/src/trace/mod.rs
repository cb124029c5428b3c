//! Where the trace ID of an exemplar comes from.
//!
//! An instrumented call takes its trace ID, in this order, from
//! 1. a parameter marked `#[trace_id]` (any type that implements [`AsTraceId`]);
//! 2. the caller's scope: [`scope`] for a future (it follows the future from
//!    thread to thread, as it is set around every poll), [`enter`] for sync code;
//! 3. with the `tracing` cargo feature, the current span: `TraceIdLayer`
//!    sets the same scope while a span that carries a `trace_id` field (or a
//!    child of one) is entered.
//!
//! [`TraceId::from_traceparent`] reads the ID out of a W3C `traceparent`
//! header. A call with no trace ID records no exemplar.
//!
//! ```
//! use mesh_metrics::trace::{self, TraceId};
//!
//! #[mesh_metrics::instrumented(agent = "weather-agent")]
//! async fn get_forecast(days: u32) -> Result<u32, String> { Ok(days) }
//!
//! # async fn handle() -> Result<(), Box<dyn std::error::Error>> {
//! let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
//! let trace_id = TraceId::from_traceparent(header)?;
//! // The exemplar of this call carries `trace_id="4bf92f3577b34da6a3ce929d0e0e4736"`.
//! trace::scope(trace_id, get_forecast(3)).await?;
//! # Ok(()) }
//! ```

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

#[cfg(feature = "tracing")]
mod layer;
#[cfg(feature = "tracing")]
pub use layer::TraceIdLayer;

/// A W3C trace ID: 16 bytes, never all zero, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(std::num::NonZeroU128);

/// Why a trace ID or `traceparent` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceIdError {
    /// Not 32 hexadecimal digits.
    #[error("a trace ID is 32 hexadecimal digits, got {0:?}")]
    NotHex(String),
    /// All zeros, which W3C Trace Context reserves for "no trace".
    #[error("the all-zero trace ID means \"no trace\"")]
    Zero,
    /// The header is not `version-traceid-parentid-flags`.
    #[error("a traceparent header is `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, got {0:?}")]
    Traceparent(String),
}

impl TraceId {
    /// The trace ID of these 16 bytes, or `None` when all are zero.
    pub const fn from_bytes(bytes: [u8; 16]) -> Option<Self> {
        match std::num::NonZeroU128::new(u128::from_be_bytes(bytes)) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The trace ID with this numeric value, or `None` for zero.
    pub const fn from_u128(id: u128) -> Option<Self> {
        match std::num::NonZeroU128::new(id) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// Parses 32 hexadecimal digits (either case).
    ///
    /// ```
    /// # use mesh_metrics::trace::TraceId;
    /// let id = TraceId::from_hex("4BF92F3577B34DA6A3CE929D0E0E4736").unwrap();
    /// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert!(TraceId::from_hex("4bf92f35").is_err());
    /// ```
    pub fn from_hex(hex: &str) -> Result<Self, TraceIdError> {
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TraceIdError::NotHex(hex.to_owned()));
        }
        // 32 hex digits always fit a u128; the `map_err` is for the type only.
        let id = u128::from_str_radix(hex, 16).map_err(|_| TraceIdError::NotHex(hex.to_owned()))?;
        Self::from_u128(id).ok_or(TraceIdError::Zero)
    }

    /// Reads the trace ID out of a W3C `traceparent` header
    /// (<https://www.w3.org/TR/trace-context/#traceparent-header>).
    ///
    /// The whole header is checked: a lowercase-hex version other than `ff`,
    /// a non-zero 32-digit trace ID, a non-zero 16-digit parent ID, 2 digits of
    /// flags, and for version `00` nothing after them. Later versions may add
    /// fields after a `-`, as the specification allows. A header that fails any
    /// check is refused, never half-parsed.
    ///
    /// ```
    /// # use mesh_metrics::trace::TraceId;
    /// let id = TraceId::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
    /// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert!(TraceId::from_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_err());
    /// # Ok::<(), mesh_metrics::trace::TraceIdError>(())
    /// ```
    pub fn from_traceparent(header: &str) -> Result<Self, TraceIdError> {
        let refuse = || TraceIdError::Traceparent(header.chars().take(128).collect());
        let bytes = header.trim_matches(|c| c == ' ' || c == '\t').as_bytes();
        let lower_hex = |field: &[u8]| field.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        let (Some(version), Some(trace), Some(parent), Some(flags)) =
            (bytes.get(0..2), bytes.get(3..35), bytes.get(36..52), bytes.get(53..55))
        else {
            return Err(refuse());
        };
        let dashes = [2, 35, 52].iter().all(|i| bytes.get(*i) == Some(&b'-'));
        let rest = bytes.get(55..).unwrap_or_default();
        let valid_rest = match version {
            b"00" => rest.is_empty(),
            _ => rest.is_empty() || rest.first() == Some(&b'-'),
        };
        if !dashes
            || !valid_rest
            || version == b"ff"
            || ![version, trace, parent, flags].iter().all(|field| lower_hex(field))
            || parent.iter().all(|b| *b == b'0')
        {
            return Err(refuse());
        }
        let trace = std::str::from_utf8(trace).map_err(|_| refuse())?;
        Self::from_hex(trace).map_err(|_| refuse())
    }

    /// The numeric value.
    pub const fn to_u128(self) -> u128 {
        self.0.get()
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0.get())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl std::str::FromStr for TraceId {
    type Err = TraceIdError;

    fn from_str(hex: &str) -> Result<Self, Self::Err> {
        Self::from_hex(hex)
    }
}

/// A value a `#[trace_id]` parameter can have.
///
/// ```
/// use mesh_metrics::trace::TraceId;
///
/// #[mesh_metrics::instrumented(agent = "gateway")]
/// fn forward(#[trace_id] trace: Option<TraceId>, body: &str) -> usize { body.len() }
/// # forward(TraceId::from_u128(7), "hi");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a `#[trace_id]` parameter",
    label = "not a trace ID",
    note = "use a `TraceId`, an `Option<TraceId>`, or a W3C `traceparent` header as `&str` or `String`"
)]
pub trait AsTraceId {
    /// The trace ID, if this value holds one.
    fn as_trace_id(&self) -> Option<TraceId>;
}

impl AsTraceId for TraceId {
    fn as_trace_id(&self) -> Option<TraceId> {
        Some(*self)
    }
}

impl<T: AsTraceId> AsTraceId for Option<T> {
    fn as_trace_id(&self) -> Option<TraceId> {
        self.as_ref().and_then(AsTraceId::as_trace_id)
    }
}

impl<T: AsTraceId + ?Sized> AsTraceId for &T {
    fn as_trace_id(&self) -> Option<TraceId> {
        (**self).as_trace_id()
    }
}

/// A `traceparent` header value; an invalid header means no trace ID.
impl AsTraceId for str {
    fn as_trace_id(&self) -> Option<TraceId> {
        TraceId::from_traceparent(self).ok()
    }
}

/// A `traceparent` header value; an invalid header means no trace ID.
impl AsTraceId for String {
    fn as_trace_id(&self) -> Option<TraceId> {
        self.as_str().as_trace_id()
    }
}

thread_local! {
    static CURRENT: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// Set once any scope is entered: until then, an instrumented call does not
/// even look at the thread-local (a program that never traces pays nothing).
static SCOPES_USED: AtomicBool = AtomicBool::new(false);

/// The trace ID of the current scope, if any.
#[inline]
pub fn current() -> Option<TraceId> {
    if !SCOPES_USED.load(Ordering::Relaxed) {
        return None;
    }
    CURRENT.try_with(Cell::get).ok().flatten()
}

fn replace(trace_id: Option<TraceId>) -> Option<TraceId> {
    if trace_id.is_some() && !SCOPES_USED.load(Ordering::Relaxed) {
        SCOPES_USED.store(true, Ordering::Relaxed);
    }
    CURRENT.try_with(|current| current.replace(trace_id)).ok().flatten()
}

/// Runs `future` with `trace_id` as the current trace ID, on whatever thread
/// polls it.
pub fn scope<F: Future>(trace_id: TraceId, future: F) -> Scoped<F> {
    Scoped { trace_id, inner: future, previous: RestoreOnDrop::default() }
}

pin_project_lite::pin_project! {
    /// A future that runs under a trace ID: see [`scope`]. The ID is current
    /// while the inner future is polled and while it is dropped, so a call
    /// cancelled by dropping it still records its exemplar.
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Scoped<F> {
        trace_id: TraceId,
        #[pin]
        inner: F,
        // Declared after `inner`, so it is dropped after it (see the drop below).
        previous: RestoreOnDrop,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Fields are dropped after this returns, in order: `inner` under
            // the trace ID, then `previous`, which puts the outer ID back.
            this.previous.0 = Some(replace(Some(*this.trace_id)));
        }
    }
}

/// What [`Scoped`] restores once its inner future is dropped.
#[derive(Debug, Default)]
struct RestoreOnDrop(Option<Option<TraceId>>);

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        if let Some(previous) = self.0 {
            replace(previous);
        }
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _restore = Restore(replace(Some(*this.trace_id)), PhantomData);
        this.inner.poll(cx)
    }
}

/// Makes `trace_id` the current trace ID on this thread until the guard is
/// dropped, for sync code. In async code use [`scope`]: a guard held across an
/// `.await` would lend the ID to whatever else runs on the thread meanwhile,
/// which is why the guard is not `Send`.
///
/// ```
/// use mesh_metrics::trace::{self, TraceId};
/// let id = TraceId::from_u128(0xabc).unwrap();
/// {
///     let _trace = trace::enter(id);
///     assert_eq!(trace::current(), Some(id));
/// }
/// assert_eq!(trace::current(), None);
/// ```
pub fn enter(trace_id: TraceId) -> TraceGuard {
    TraceGuard { _restore: Restore(replace(Some(trace_id)), PhantomData) }
}

/// Restores the previous trace ID when dropped: see [`enter`].
#[must_use = "the trace ID is current only while the guard lives"]
#[derive(Debug)]
pub struct TraceGuard {
    _restore: Restore,
}

/// Puts the previous trace ID back, also when a poll or the scope panics.
/// `PhantomData<*const ()>` keeps it on the thread that set it.
#[derive(Debug)]
struct Restore(Option<TraceId>, PhantomData<*const ()>);

impl Drop for Restore {
    fn drop(&mut self) {
        replace(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_a_valid_traceparent() {
        let id = TraceId::from_traceparent(HEADER).expect("valid header");
        assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        // A later version may append fields.
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        assert_eq!(TraceId::from_traceparent(future), Ok(id));
    }

    #[test]
    fn refuses_every_malformed_traceparent() {
        let bad = [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        ];
        for header in bad {
            assert!(TraceId::from_traceparent(header).is_err(), "accepted {header:?}");
        }
    }

    #[test]
    fn scope_follows_the_future_and_restores_the_outer_id() {
        let outer = TraceId::from_u128(1).expect("non-zero");
        let inner = TraceId::from_u128(2).expect("non-zero");
        let _outer = enter(outer);
        let mut future = std::pin::pin!(scope(inner, async { current() }));
        let waker = std::task::Waker::noop();
        assert_eq!(future.as_mut().poll(&mut Context::from_waker(waker)), Poll::Ready(Some(inner)));
        assert_eq!(current(), Some(outer));
    }
}
