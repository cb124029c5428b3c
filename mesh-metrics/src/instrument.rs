//! What `#[instrumented]` expands to: a call site resolved once, and a guard
//! (sync) or a future wrapper (async) that records every way a call can end.
//!
//! The recording path is two clock reads and five relaxed atomic adds (in-flight
//! +1 and -1, the status counter, one histogram bucket, the histogram sum).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use crate::exemplar::Stamp;
use crate::names;
use crate::registry::{self, Cell, Descriptor, Histogram, MetricKind, Series};
use crate::trace::{self, TraceId};

/// How a call ended: the `status` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Returned normally with a value that is not an error.
    Success = 0,
    /// Returned an error (`Err`, `?`, an `error_if` match) or panicked.
    Error = 1,
    /// An async call whose future was dropped before it finished.
    Cancelled = 2,
}

impl Status {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => names::STATUSES[0],
            Self::Error => names::STATUSES[1],
            Self::Cancelled => names::STATUSES[2],
        }
    }
}

const REQUESTS: Descriptor = Descriptor {
    name: std::borrow::Cow::Borrowed(names::REQUESTS_TOTAL),
    help: std::borrow::Cow::Borrowed("Total number of requests processed"),
    kind: MetricKind::Counter,
    label_names: std::borrow::Cow::Borrowed(&["agent", "method", "status"]),
    unit: None,
};

const DURATION: Descriptor = Descriptor {
    name: std::borrow::Cow::Borrowed(names::REQUEST_DURATION_SECONDS),
    help: std::borrow::Cow::Borrowed("Request duration in seconds"),
    kind: MetricKind::Histogram,
    label_names: std::borrow::Cow::Borrowed(&["agent", "method"]),
    unit: None,
};

const CONNECTIONS: Descriptor = Descriptor {
    name: std::borrow::Cow::Borrowed(names::CONNECTIONS_ACTIVE),
    help: std::borrow::Cow::Borrowed("Number of active connections"),
    kind: MetricKind::Gauge,
    label_names: std::borrow::Cow::Borrowed(&["agent", "type"]),
    unit: None,
};

/// The fixed labels of one instrumented fn, and its series once resolved.
#[derive(Debug)]
pub struct CallSite {
    agent: &'static str,
    method: &'static str,
    connection_type: &'static str,
    handles: OnceLock<Option<Handles>>,
}

#[derive(Debug)]
struct Handles {
    requests: [Arc<Series>; 3],
    duration: Arc<Series>,
    in_flight: Arc<Series>,
}

impl CallSite {
    /// A call site; `const` so it lives in a `static` of the instrumented fn.
    pub const fn new(agent: &'static str, method: &'static str, connection_type: &'static str) -> Self {
        Self { agent, method, connection_type, handles: OnceLock::new() }
    }

    /// The agent label.
    pub fn agent(&self) -> &'static str {
        self.agent
    }

    /// The method label.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Resolves the series once; later calls are one atomic load.
    #[inline]
    fn handles(&self) -> Option<&Handles> {
        self.handles.get_or_init(|| self.resolve()).as_ref()
    }

    /// Creates this site's series at zero (the exporter does this at install
    /// for every site, so `rate()` works from the first scrape).
    pub fn register(&self) {
        let _ = self.handles();
    }

    fn resolve(&self) -> Option<Handles> {
        let registry = registry::global();
        let resolved = (|| {
            let requests_family = registry.family(&REQUESTS)?;
            let counter = || Cell::Counter(Default::default());
            let requests = [
                requests_family.series(&[self.agent, self.method, Status::Success.as_str()], |_| counter())?,
                requests_family.series(&[self.agent, self.method, Status::Error.as_str()], |_| counter())?,
                requests_family.series(&[self.agent, self.method, Status::Cancelled.as_str()], |_| counter())?,
            ];
            let duration = registry
                .family(&DURATION)?
                .series(&[self.agent, self.method], |layout| Cell::Histogram(Histogram::new(layout.clone())))?;
            let in_flight = registry
                .family(&CONNECTIONS)?
                .series(&[self.agent, self.connection_type], |_| Cell::InFlight(Default::default()))?;
            Ok::<_, crate::Error>(Handles { requests, duration, in_flight })
        })();
        // The descriptors above are ours and fixed; the only way this fails is a
        // user registering one of our names with another shape first. Recording
        // then stops for this site rather than mixing two metrics in one family.
        resolved.map_err(|error| tracing::error!(%error, "mesh-metrics: cannot record calls")).ok()
    }
}

impl Handles {
    /// Kept out of line: a traced call pays for it, an untraced one does not.
    #[inline(never)]
    fn exemplars(&self, status: Status, bucket: usize, trace_id: TraceId, nanos: u64, now: quanta::Instant) {
        let at = Stamp::of(now);
        if let Cell::Histogram(histogram) = self.duration.cell() {
            histogram.exemplar(bucket, trace_id, nanos as f64 / 1e9, at);
        }
        if let Some(Cell::Counter(counter)) = self.requests.get(status as usize).map(|s| s.cell()) {
            counter.exemplar(trace_id, 1.0, at);
        }
    }

    #[inline]
    fn enter(&self) {
        if let Cell::InFlight(in_flight) = self.in_flight.cell() {
            in_flight.enter();
        }
    }

    /// Records the end of a call; with a trace ID, also the exemplars of the
    /// duration's bucket and of the status counter.
    #[inline]
    fn exit(&self, status: Status, started: quanta::Instant, trace_id: Option<TraceId>) {
        let now = quanta::Instant::now();
        let nanos = u64::try_from(now.saturating_duration_since(started).as_nanos()).unwrap_or(u64::MAX);
        if let Cell::Histogram(histogram) = self.duration.cell() {
            let bucket = histogram.observe_nanos_at(nanos);
            if let Some(trace_id) = trace_id {
                self.exemplars(status, bucket, trace_id, nanos, now);
            }
        }
        if let Some(Cell::Counter(counter)) = self.requests.get(status as usize).map(|s| s.cell()) {
            counter.increment(1);
        }
        if let Cell::InFlight(in_flight) = self.in_flight.cell() {
            in_flight.exit();
        }
    }
}

/// The guard of a sync call. `finish` records the status of a returned value;
/// dropped unfinished it records `error` when panicking, otherwise the status
/// of a `?` exit (`residual`).
///
/// `S` is where the trace ID comes from: the caller's scope, read when the
/// call ends ([`FromScope`], which takes no room), or a `#[trace_id]`
/// parameter's value with the scope as fallback (`Option<TraceId>`).
#[must_use]
#[derive(Debug)]
pub struct CallGuard<S: TraceSource = FromScope> {
    site: &'static CallSite,
    started: quanta::Instant,
    residual: Status,
    trace: S,
}

/// Where a sync call's trace ID comes from: see [`CallGuard`].
pub trait TraceSource {
    /// The trace ID, if any, when the call ends.
    fn trace_id(&self) -> Option<TraceId>;
}

/// The caller's scope ([`trace::scope`], [`trace::enter`]).
#[derive(Debug, Clone, Copy)]
pub struct FromScope;

impl TraceSource for FromScope {
    #[inline]
    fn trace_id(&self) -> Option<TraceId> {
        trace::current()
    }
}

impl TraceSource for Option<TraceId> {
    #[inline]
    fn trace_id(&self) -> Option<TraceId> {
        self.or_else(trace::current)
    }
}

impl CallGuard {
    /// Counts the call as in flight and starts its clock.
    #[inline]
    pub fn enter(site: &'static CallSite, residual: Status) -> Self {
        CallGuard::with_source(site, residual, FromScope)
    }
}

impl CallGuard<Option<TraceId>> {
    /// [`enter`](CallGuard::enter) for a fn with a `#[trace_id]` parameter:
    /// its value, when it holds one, beats the caller's scope.
    #[inline]
    pub fn enter_traced(site: &'static CallSite, residual: Status, trace_id: Option<TraceId>) -> Self {
        CallGuard::with_source(site, residual, trace_id)
    }
}

impl<S: TraceSource> CallGuard<S> {
    #[inline]
    fn with_source(site: &'static CallSite, residual: Status, trace: S) -> Self {
        if let Some(handles) = site.handles() {
            handles.enter();
        }
        Self { site, started: quanta::Instant::now(), residual, trace }
    }

    /// Records a normal return with `status`.
    #[inline]
    pub fn finish(self, status: Status) {
        let this = std::mem::ManuallyDrop::new(self);
        this.record(status);
    }

    #[inline]
    fn record(&self, status: Status) {
        if let Some(handles) = self.site.handles() {
            handles.exit(status, self.started, self.trace.trace_id());
        }
    }
}

impl<S: TraceSource> Drop for CallGuard<S> {
    fn drop(&mut self) {
        let status = if std::thread::panicking() { Status::Error } else { self.residual };
        self.record(status);
    }
}

pin_project_lite::pin_project! {
    /// An instrumented future: in flight from its first poll, classified when
    /// ready, `cancelled` when dropped before that, `error` if a poll panicked.
    #[must_use = "futures do nothing unless polled"]
    ///
    /// `S` is where the trace ID comes from, as for [`CallGuard`]; it is read
    /// when the call ends, inside the poll (or drop) that ends it.
    pub struct Instrumented<T, F, C, S = FromScope>
    where
        S: TraceSource,
    {
        #[pin]
        inner: F,
        classify: C,
        state: State,
        site: &'static CallSite,
        trace: S,
        _output: std::marker::PhantomData<fn() -> T>,
    }

    impl<T, F, C, S> PinnedDrop for Instrumented<T, F, C, S>
    where
        S: TraceSource,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let (status, started) = match *this.state {
                State::Running(started) => (Status::Cancelled, started),
                State::Panicked(started) => (Status::Error, started),
                State::NotStarted | State::Done => return,
            };
            if let Some(handles) = this.site.handles() {
                handles.exit(status, started, this.trace.trace_id());
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    NotStarted,
    Running(quanta::Instant),
    Panicked(quanta::Instant),
    Done,
}

impl<T, F, C> Instrumented<T, F, C>
where
    F: Future<Output = T>,
    C: Fn(&T) -> Status,
{
    /// Wraps `inner`; `classify` decides the status of its output.
    pub fn new(site: &'static CallSite, inner: F, classify: C) -> Self {
        Self { inner, classify, state: State::NotStarted, site, trace: FromScope, _output: std::marker::PhantomData }
    }
}

impl<T, F, C> Instrumented<T, F, C, Option<TraceId>>
where
    F: Future<Output = T>,
    C: Fn(&T) -> Status,
{
    /// [`new`](Instrumented::new) for a fn with a `#[trace_id]` parameter:
    /// its value, when it holds one, beats the scope the future runs in.
    pub fn traced(site: &'static CallSite, inner: F, classify: C, trace_id: Option<TraceId>) -> Self {
        Self { inner, classify, state: State::NotStarted, site, trace: trace_id, _output: std::marker::PhantomData }
    }
}

impl<T, F, C, S> Future for Instrumented<T, F, C, S>
where
    F: Future<Output = T>,
    C: Fn(&T) -> Status,
    S: TraceSource,
{
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.project();
        let started = match *this.state {
            State::Running(started) => started,
            State::NotStarted => {
                if let Some(handles) = this.site.handles() {
                    handles.enter();
                }
                quanta::Instant::now()
            }
            // Polled again after completion or a panic: not ours to judge.
            State::Done | State::Panicked(_) => return this.inner.poll(cx),
        };
        // Marked as panicked until the inner poll returns normally, so a panic
        // that unwinds through here (and is caught further up, as tokio does
        // for tasks) is counted as an error, not a cancellation.
        *this.state = State::Panicked(started);
        let polled = this.inner.poll(cx);
        *this.state = State::Running(started);
        if let Poll::Ready(output) = &polled {
            *this.state = State::Done;
            if let Some(handles) = this.site.handles() {
                handles.exit((this.classify)(output), started, this.trace.trace_id());
            }
        }
        polled
    }
}

/// Autoref-specialised status of a return value: `Result` and `Option` by
/// their variant, anything else a success. `.1` says whether `None` is an error.
#[derive(Debug)]
pub struct Probe<'a, T: ?Sized>(pub &'a T, pub bool);

/// Picked first for `Result` and `Option` (see [`Probe`]).
pub trait TypedStatus {
    /// The status of the probed value.
    fn __mesh_status(&self) -> Status;
}

impl<T, E> TypedStatus for Probe<'_, Result<T, E>> {
    fn __mesh_status(&self) -> Status {
        if self.0.is_ok() { Status::Success } else { Status::Error }
    }
}

impl<T> TypedStatus for Probe<'_, Option<T>> {
    fn __mesh_status(&self) -> Status {
        if self.0.is_none() && self.1 { Status::Error } else { Status::Success }
    }
}

/// The fallback for every other type (see [`Probe`]).
pub trait OtherStatus {
    /// Always a success.
    fn __mesh_status(&self) -> Status;
}

impl<T: ?Sized> OtherStatus for &Probe<'_, T> {
    fn __mesh_status(&self) -> Status {
        Status::Success
    }
}
