// Times are in seconds.
use mesh_metrics::{Histogram, Metrics};

#[derive(Metrics)]
struct BusinessMetrics {
    /// Validation latency.
    validation_ms: Histogram,
    /// Queue wait.
    #[metric(name = "queue_wait_millis")]
    queue_wait: Histogram,
}

fn main() {}
