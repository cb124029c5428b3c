//! A `tracing` layer that keeps every WARN and ERROR event, for tests that
//! assert what the library told the operator.

use std::sync::{Arc, Mutex};

/// Keeps the fields (`name=value`, message included) of every event at WARN
/// or above, from every thread it is installed for.
#[derive(Clone, Default)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    /// The events kept so far, one string each.
    pub fn messages(&self) -> Vec<String> {
        self.0.lock().expect("warnings").clone()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        if *event.metadata().level() <= tracing::Level::WARN {
            let mut text = Text(String::new());
            event.record(&mut text);
            self.0.lock().expect("warnings").push(text.0);
        }
    }
}
