//! Trace IDs from `tracing` spans (the `tracing` cargo feature).
//!
//! The lean way: no OpenTelemetry SDK. [`TraceIdLayer`] reads a span's
//! `trace_id` field when the span is created (32 hex digits, or a whole
//! `traceparent` header), or inherits its parent's, and makes that ID the
//! current one (the same scope [`scope`](super::scope) sets) while the span is
//! entered. Instrumented calls inside the span then carry it as an exemplar.
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt as _;
//!
//! #[mesh_metrics::instrumented(agent = "weather-agent")]
//! fn get_current() -> f64 { 21.5 }
//!
//! let subscriber = tracing_subscriber::registry().with(mesh_metrics::trace::TraceIdLayer::default());
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("request", trace_id = "4bf92f3577b34da6a3ce929d0e0e4736");
//!     let _entered = span.enter();
//!     assert_eq!(mesh_metrics::trace::current().map(|id| id.to_string()).as_deref(),
//!                Some("4bf92f3577b34da6a3ce929d0e0e4736"));
//!     get_current(); // its exemplar carries the span's trace ID
//! });
//! ```

use std::cell::RefCell;
use std::fmt;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::{TraceId, replace};

/// A `tracing_subscriber` layer that makes a span's `trace_id` the current
/// trace ID while the span is entered. See the [module docs](self).
#[derive(Debug, Default, Clone, Copy)]
pub struct TraceIdLayer {
    _private: (),
}

/// The trace ID a span carries, kept in its extensions.
#[derive(Debug, Clone, Copy)]
struct SpanTraceId(TraceId);

thread_local! {
    /// For each traced span entered on this thread, innermost last: the span
    /// and the ID that was current before it was entered. An exit restores
    /// only an entry its own enter pushed, so a `trace_id` recorded on a span
    /// after it was entered (it was not traced at its enter) cannot pop
    /// another span's entry.
    static PREVIOUS: RefCell<Vec<(Id, Option<TraceId>)>> = const { RefCell::new(Vec::new()) };
}

impl<S> Layer<S> for TraceIdLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut visitor = FindTraceId(None);
        attrs.record(&mut visitor);
        let inherited = || span.parent().and_then(|parent| parent.extensions().get::<SpanTraceId>().copied());
        if let Some(found) = visitor.0.map(SpanTraceId).or_else(inherited) {
            span.extensions_mut().insert(found);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut visitor = FindTraceId(None);
        values.record(&mut visitor);
        if let (Some(found), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().replace(SpanTraceId(found));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(SpanTraceId(trace_id)) = ctx.span(id).and_then(|span| span.extensions().get::<SpanTraceId>().copied())
        else {
            return;
        };
        let previous = replace(Some(trace_id));
        let _ = PREVIOUS.try_with(|stack| stack.borrow_mut().push((id.clone(), previous)));
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        let restore = PREVIOUS.try_with(|stack| {
            let mut stack = stack.borrow_mut();
            let position = stack.iter().rposition(|(entered, _)| entered == id)?;
            let (_, previous) = stack.remove(position);
            match stack.get_mut(position) {
                // Exited out of order, under a span entered after it: that
                // span now restores what this one would have.
                Some((_, above)) => {
                    *above = previous;
                    None
                }
                None => Some(previous),
            }
        });
        if let Ok(Some(previous)) = restore {
            replace(previous);
        }
    }

    fn register_callsite(&self, _: &'static tracing::Metadata<'static>) -> subscriber::Interest {
        subscriber::Interest::always()
    }
}

/// Looks for a `trace_id` field holding 32 hex digits or a `traceparent`.
struct FindTraceId(Option<TraceId>);

impl FindTraceId {
    fn parse(&mut self, value: &str) {
        let value = value.trim();
        self.0 = TraceId::from_hex(value).or_else(|_| TraceId::from_traceparent(value)).ok().or(self.0);
    }
}

impl Visit for FindTraceId {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "trace_id" {
            self.parse(value);
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        if field.name() == "trace_id" {
            self.0 = TraceId::from_u128(value).or(self.0);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "trace_id" {
            // `%id` and `?id` fields: read the formatted text.
            let text = format!("{value:?}");
            self.parse(text.trim_matches('"'));
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::trace::current;

    #[test]
    fn spans_lend_their_trace_id_to_children_and_give_it_back() {
        let subscriber = tracing_subscriber::registry().with(TraceIdLayer::default());
        tracing::subscriber::with_default(subscriber, || {
            let outer = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex");
            let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
            let request = tracing::info_span!("request", trace_id = %outer);
            let _request = request.enter();
            assert_eq!(current(), Some(outer));
            {
                let child = tracing::info_span!("child");
                let _child = child.enter();
                assert_eq!(current(), Some(outer), "a child span inherits the ID");
                let other = tracing::info_span!("other", trace_id = header);
                let _other = other.enter();
                assert_eq!(current().map(|id| id.to_string()).as_deref(), Some("0af7651916cd43dd8448eb211c80319c"));
            }
            assert_eq!(current(), Some(outer));
            let invalid = tracing::info_span!("invalid", trace_id = "not a trace");
            let _invalid = invalid.enter();
            assert_eq!(current(), Some(outer), "an invalid field is ignored, not half-parsed");
        });
        assert_eq!(current(), None);
    }

    #[test]
    fn spans_exited_out_of_order_leave_no_stale_id() {
        let subscriber = tracing_subscriber::registry().with(TraceIdLayer::default());
        tracing::subscriber::with_default(subscriber, || {
            let a = tracing::info_span!("a", trace_id = "4bf92f3577b34da6a3ce929d0e0e4736");
            let b = tracing::info_span!("b", trace_id = "0af7651916cd43dd8448eb211c80319c");
            let entered_a = a.enter();
            let entered_b = b.enter();
            drop(entered_a); // out of order: `b` is still entered
            assert_eq!(current().map(|id| id.to_string()).as_deref(), Some("0af7651916cd43dd8448eb211c80319c"));
            drop(entered_b);
            assert_eq!(current(), None, "nothing of `a` is left behind");
        });
    }

    #[test]
    fn a_trace_id_recorded_after_enter_leaves_the_outer_span_in_place() {
        let subscriber = tracing_subscriber::registry().with(TraceIdLayer::default());
        tracing::subscriber::with_default(subscriber, || {
            let outer = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex");
            let request = tracing::info_span!("request", trace_id = %outer);
            let _request = request.enter();
            {
                let late = tracing::info_span!("late", trace_id = tracing::field::Empty);
                let entered = late.enter();
                late.record("trace_id", "0af7651916cd43dd8448eb211c80319c");
                drop(entered);
                assert_eq!(current(), Some(outer), "the exit of `late` must not pop `request`'s entry");
            }
            let child = tracing::info_span!("child");
            let _child = child.enter();
            assert_eq!(current(), Some(outer));
        });
        assert_eq!(current(), None, "every entry was restored");
    }
}
