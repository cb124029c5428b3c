//! What `#[instrumented]` expands to: a call site resolved once, and a guard
//! (sync) or a future wrapper (async) that records every way a call can end.
//!
//! The recording path is two clock reads, one read of the thread's index (a
//! thread-local), and five relaxed atomic adds (in-flight +1 and -1, the
//! status counter, one histogram bucket, the histogram sum), each in the
//! calling thread's shard of its cell, so threads recording the same fn touch
//! no cache line in common (see [`registry::shard_count`]). A thread's first
//! record into a cell allocates its shard; its first record at all leases its
//! index (a short lock).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use crate::exemplar::Stamp;
use crate::names;
use crate::registry::{self, Cell, Counter, Descriptor, Histogram, InFlight, MetricKind, Series};
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
    unit: Some(std::borrow::Cow::Borrowed("seconds")),
};

const CONNECTIONS: Descriptor = Descriptor {
    name: std::borrow::Cow::Borrowed(names::CONNECTIONS_ACTIVE),
    help: std::borrow::Cow::Borrowed("Number of active connections"),
    kind: MetricKind::Gauge,
    label_names: std::borrow::Cow::Borrowed(&["agent", "type"]),
    unit: None,
};

/// The fixed labels of one instrumented fn, where it is, and its series once
/// resolved.
#[derive(Debug)]
pub struct CallSite {
    agent: &'static str,
    method: &'static str,
    connection_type: &'static str,
    location: &'static str,
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
    /// `location` names the fn and its file and line, for messages.
    pub const fn new(
        agent: &'static str,
        method: &'static str,
        connection_type: &'static str,
        location: &'static str,
    ) -> Self {
        Self { agent, method, connection_type, location, handles: OnceLock::new() }
    }

    /// The fn and its file and line.
    pub fn location(&self) -> &'static str {
        self.location
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
        // These families are bounded at compile time (one series per call site
        // and status), so the cardinality guard never folds them.
        let resolved = (|| {
            let requests_family = registry.bounded_family(&REQUESTS)?;
            let counter = || Cell::Counter(Counter::striped());
            let requests = [
                requests_family.series(&[self.agent, self.method, Status::Success.as_str()], |_| counter())?,
                requests_family.series(&[self.agent, self.method, Status::Error.as_str()], |_| counter())?,
                requests_family.series(&[self.agent, self.method, Status::Cancelled.as_str()], |_| counter())?,
            ];
            let duration = registry
                .bounded_family(&DURATION)?
                .series(&[self.agent, self.method], |layout| Cell::Histogram(Histogram::striped(layout.clone())))?;
            let in_flight = registry
                .bounded_family(&CONNECTIONS)?
                .series(&[self.agent, self.connection_type], |_| Cell::InFlight(InFlight::striped()))?;
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
    fn traced_exit(&self, thread: usize, status: Status, trace_id: TraceId, nanos: u64, now: quanta::Instant) {
        let at = Stamp::of(now);
        if let Cell::Histogram(histogram) = self.duration.cell() {
            histogram.observe_nanos_at(thread, nanos, Some((trace_id, at)));
        }
        if let Some(Cell::Counter(counter)) = self.requests.get(status as usize).map(|s| s.cell()) {
            counter.exemplar_at(thread, trace_id, 1.0, at);
        }
    }

    /// Counts the call in flight, in the shard of the calling thread, and
    /// returns that thread's index (see [`registry::thread_index`]).
    #[inline]
    fn enter(&self) -> usize {
        let thread = registry::thread_index();
        if let Cell::InFlight(in_flight) = self.in_flight.cell() {
            in_flight.enter_at(thread);
        }
        thread
    }

    /// Records the end of a call on the thread with index `thread`, which
    /// entered on `entered`; with a trace ID, also the exemplars of the
    /// duration's bucket and of the status counter.
    #[inline]
    fn exit(&self, status: Status, started: quanta::Instant, entered: usize, thread: usize, trace_id: Option<TraceId>) {
        let now = quanta::Instant::now();
        let nanos = u64::try_from(now.saturating_duration_since(started).as_nanos()).unwrap_or(u64::MAX);
        match trace_id {
            Some(trace_id) => self.traced_exit(thread, status, trace_id, nanos, now),
            None => {
                if let Cell::Histogram(histogram) = self.duration.cell() {
                    histogram.observe_nanos_at(thread, nanos, None);
                }
            }
        }
        if let Some(Cell::Counter(counter)) = self.requests.get(status as usize).map(|s| s.cell()) {
            counter.increment_at(thread, 1);
        }
        // The shard the call entered, wherever it ends: no shard goes below zero.
        if let Cell::InFlight(in_flight) = self.in_flight.cell() {
            in_flight.exit_at(entered);
        }
    }
}

/// The guard of a sync call: [`finish`](CallGuard::finish) records the status
/// of the value the body produced; dropped unfinished, the body or its
/// classifier panicked, and the call is an `error`.
///
/// The trace ID is a `#[trace_id]` parameter's value, else the caller's scope
/// ([`trace::scope`], [`trace::enter`]) when the call ends.
#[must_use]
#[derive(Debug)]
pub struct CallGuard {
    /// The site's series, resolved once at entry (`None` if they could not be).
    handles: Option<&'static Handles>,
    started: quanta::Instant,
    /// The index of the thread that entered (and, being sync, exits).
    thread: usize,
    trace: Option<TraceId>,
}

impl CallGuard {
    /// Counts the call as in flight and starts its clock.
    #[inline]
    pub fn enter(site: &'static CallSite, trace: Option<TraceId>) -> Self {
        let handles = site.handles();
        let thread = handles.map_or(0, Handles::enter);
        Self { handles, started: quanta::Instant::now(), thread, trace }
    }

    /// Records a normal return with `status`.
    #[inline]
    pub fn finish(self, status: Status) {
        let this = std::mem::ManuallyDrop::new(self);
        this.record(status);
    }

    #[inline]
    fn record(&self, status: Status) {
        if let Some(handles) = self.handles {
            handles.exit(status, self.started, self.thread, self.thread, self.trace.or_else(trace::current));
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        // Only a panic in the body or in its classifier gets here.
        self.record(Status::Error);
    }
}

/// A sync call: `body` is the user's body as a closure called once, so every
/// way out of it (`return`, `?`, the tail) comes out here, where `classify`
/// decides the status. A panic in either is an `error` and keeps unwinding.
#[inline(always)]
pub fn run_sync<R>(
    site: &'static CallSite,
    trace: Option<TraceId>,
    body: impl FnOnce() -> R,
    classify: impl FnOnce(&R) -> Status,
) -> R {
    let guard = CallGuard::enter(site, trace);
    let value = body();
    guard.finish(classify(&value));
    value
}

/// A fn that returns a future: `body` (the user's body as a closure called
/// once) builds it, and the future is measured from its first poll. A panic
/// while building it is a call that failed: `error`, with the time it took.
#[inline(always)]
pub fn build_future<T, F, C>(
    site: &'static CallSite,
    trace: Option<TraceId>,
    body: impl FnOnce() -> F,
    classify: C,
) -> Instrumented<T, F, C>
where
    F: Future<Output = T>,
    C: Fn(&T) -> Status,
{
    let building = BuildGuard { site, trace, started: quanta::Instant::now() };
    let future = body();
    std::mem::forget(building);
    Instrumented::new(site, future, classify, trace)
}

/// Records a failed call if dropped, which only a panic in the body does.
struct BuildGuard {
    site: &'static CallSite,
    trace: Option<TraceId>,
    started: quanta::Instant,
}

impl Drop for BuildGuard {
    fn drop(&mut self) {
        if let Some(handles) = self.site.handles() {
            let thread = handles.enter();
            handles.exit(Status::Error, self.started, thread, thread, self.trace.or_else(trace::current));
        }
    }
}

pin_project_lite::pin_project! {
    /// An instrumented future: in flight from its first poll, classified when
    /// ready, `cancelled` when dropped before that, `error` if a poll panicked.
    #[must_use = "futures do nothing unless polled"]
    ///
    /// The trace ID is a `#[trace_id]` parameter's value, else the scope the
    /// future runs in, read inside the poll (or drop) that ends the call.
    pub struct Instrumented<T, F, C> {
        #[pin]
        inner: F,
        classify: C,
        state: State,
        site: &'static CallSite,
        trace: Option<TraceId>,
        _output: std::marker::PhantomData<fn() -> T>,
    }

    impl<T, F, C> PinnedDrop for Instrumented<T, F, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let (status, started) = match *this.state {
                State::Running(started) => (Status::Cancelled, started),
                State::Panicked(started) => (Status::Error, started),
                State::NotStarted | State::Done => return,
            };
            if let Some(handles) = this.site.handles() {
                let thread = registry::thread_index();
                handles.exit(status, started.at, started.thread, thread, this.trace.or_else(trace::current));
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    NotStarted,
    Running(Started),
    Panicked(Started),
    Done,
}

/// When an instrumented future was first polled, and the index of the thread
/// that polled it (its in-flight shard).
#[derive(Debug, Clone, Copy)]
struct Started {
    at: quanta::Instant,
    thread: usize,
}

impl<T, F, C> Instrumented<T, F, C>
where
    F: Future<Output = T>,
    C: Fn(&T) -> Status,
{
    /// Wraps `inner`; `classify` decides the status of its output. `trace` is
    /// a `#[trace_id]` parameter's value, which beats the scope.
    pub fn new(site: &'static CallSite, inner: F, classify: C, trace: Option<TraceId>) -> Self {
        Self { inner, classify, state: State::NotStarted, site, trace, _output: std::marker::PhantomData }
    }
}

impl<T, F, C> Future for Instrumented<T, F, C>
where
    F: Future<Output = T>,
    C: Fn(&T) -> Status,
{
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.project();
        let started = match *this.state {
            State::Running(started) => started,
            State::NotStarted => {
                let thread = this.site.handles().map_or(0, Handles::enter);
                Started { at: quanta::Instant::now(), thread }
            }
            // Polled again after completion or a panic: not ours to judge.
            State::Done | State::Panicked(_) => return this.inner.poll(cx),
        };
        // Marked as panicked until the inner poll and the classifier return
        // normally, so a panic that unwinds through here (and is caught
        // further up, as tokio does for tasks) is counted as an error when
        // the future is dropped, not as a cancellation.
        *this.state = State::Panicked(started);
        let polled = this.inner.poll(cx);
        match &polled {
            Poll::Pending => *this.state = State::Running(started),
            Poll::Ready(output) => {
                let status = (this.classify)(output);
                *this.state = State::Done;
                if let Some(handles) = this.site.handles() {
                    let thread = registry::thread_index();
                    handles.exit(status, started.at, started.thread, thread, this.trace.or_else(trace::current));
                }
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

/// The status of a `Result` return value: `Err` is an error.
#[inline]
pub fn result_status<R: IsResult + ?Sized>(value: &R) -> Status {
    if value.is_err() { Status::Error } else { Status::Success }
}

/// The status of an `Option` return value: `None` is an error when
/// `none_is_error` (`none_is = "error"`).
#[inline]
pub fn option_status<O: IsOption + ?Sized>(value: &O, none_is_error: bool) -> Status {
    if value.is_none() && none_is_error { Status::Error } else { Status::Success }
}

/// `core::result::Result`, which a return type named `Result` must be.
#[diagnostic::on_unimplemented(
    message = "#[instrumented] reads `{Self}` as a `Result` because of its name, but it is not `core::result::Result`",
    label = "not a `core::result::Result`",
    note = "say how to classify it: `error_if = path` or `ok_if = path` (a fn over a reference to the value), or `infallible`"
)]
pub trait IsResult {
    /// Whether this is an `Err`.
    fn is_err(&self) -> bool;
}

impl<T, E> IsResult for Result<T, E> {
    #[inline]
    fn is_err(&self) -> bool {
        Result::is_err(self)
    }
}

/// `core::option::Option`, which a return type named `Option` must be.
#[diagnostic::on_unimplemented(
    message = "#[instrumented] reads `{Self}` as an `Option` because of its name, but it is not `core::option::Option`",
    label = "not a `core::option::Option`",
    note = "say how to classify it: `error_if = path` or `ok_if = path` (a fn over a reference to the value), or `infallible`"
)]
pub trait IsOption {
    /// Whether this is `None`.
    fn is_none(&self) -> bool;
}

impl<T> IsOption for Option<T> {
    #[inline]
    fn is_none(&self) -> bool {
        Option::is_none(self)
    }
}

/// Picked for a value that is a future (see [`Probe`]), and refused: timing
/// the call that builds a future says nothing about the work it does.
pub trait FutureStatus<T: ?Sized> {
    /// Never compiles: `T` is a future.
    fn __mesh_status(&self) -> Status
    where
        T: NotAFuture;
}

impl<T: IntoFuture> FutureStatus<T> for Probe<'_, T> {
    fn __mesh_status(&self) -> Status
    where
        T: NotAFuture,
    {
        Status::Success
    }
}

/// Implemented by no type: the bound that makes [`FutureStatus`] a compile
/// error that says what to write.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a future, but #[instrumented] sees a type it does not know as one: it would time building the future, not running it",
    label = "a future under a name #[instrumented] does not know",
    note = "if it is a boxed future (`Pin<Box<dyn Future<..>>>` by another name), add `future` to the attribute; else return `impl Future<Output = ..>` or make the fn `async`"
)]
pub trait NotAFuture {}

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

#[cfg(test)]
mod tests {
    use super::*;

    static MOVING: CallSite = CallSite::new("instrument-tests", "moving", "http", "instrument::tests at here");

    /// Pending at its first poll, ready at the next.
    struct SecondPoll(bool);

    impl Future for SecondPoll {
        type Output = Result<(), ()>;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            if std::mem::replace(&mut self.0, true) {
                Poll::Ready(Ok(()))
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    fn in_flight_shards() -> Vec<i64> {
        match MOVING.handles().map(|handles| handles.in_flight.cell()) {
            Some(Cell::InFlight(in_flight)) => in_flight.shard_values(),
            _ => panic!("the call site resolves to an in-flight gauge"),
        }
    }

    #[test]
    fn a_call_that_moves_threads_exits_the_shard_it_entered() {
        assert!(registry::shard_count() >= 2, "every machine has at least 2 shards");
        let waker = std::task::Waker::noop();
        let mut future =
            Box::pin(Instrumented::new(&MOVING, SecondPoll(false), |r: &Result<(), ()>| result_status(r), None));
        assert!(future.as_mut().poll(&mut Context::from_waker(waker)).is_pending());
        let entered = registry::thread_index();
        let shard = |index: usize| index % registry::shard_count();
        // Finished on a thread in another shard. Other tests' threads hold
        // indices too, so a thread that lands in the same shard keeps its
        // index (stays alive) while the next one is tried.
        let future = std::sync::Mutex::new(Some(future));
        let done = std::sync::atomic::AtomicBool::new(false);
        /// Releases the parked threads however the scope ends (a failed
        /// assertion included), so a failure fails instead of hanging.
        struct Release<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let exited = std::thread::scope(|scope| {
            let _release = Release(&done);
            for _ in 0..64 {
                let finished = scope
                    .spawn(|| {
                        let index = registry::thread_index();
                        if shard(index) == shard(entered) {
                            return None;
                        }
                        let mut future = future.lock().expect("lock").take().expect("the future");
                        assert!(future.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop())).is_ready());
                        Some(index)
                    })
                    .join()
                    .expect("thread");
                if let Some(index) = finished {
                    return index;
                }
                // Hold that index: park a thread on it until the end.
                scope.spawn(|| {
                    let _ = registry::thread_index();
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        std::thread::park_timeout(std::time::Duration::from_millis(1));
                    }
                });
            }
            panic!("no thread landed in another shard")
        });
        assert_ne!(shard(entered), shard(exited), "two shards were used");
        assert!(in_flight_shards().iter().all(|count| *count == 0), "shards {:?}", in_flight_shards());
    }
}
