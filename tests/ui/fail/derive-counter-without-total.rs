// A counter's name ends in `_total`; nothing else's does.
use mesh_metrics::{Counter, Gauge, Metrics};

#[derive(Metrics)]
struct BusinessMetrics {
    /// Revenue.
    revenue: Counter,
    /// Queue depth.
    queue_depth_total: Gauge,
}

fn main() {}
