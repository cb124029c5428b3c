// Every mistake in one struct is reported in one compile.
use mesh_metrics::{Counter, Histogram, Metrics};

#[derive(Metrics)]
#[metrics(prefix = "shop")]
struct BusinessMetrics {
    revenue: Counter,
    /// Latency.
    latency_ms: Histogram,
    /// Orders.
    #[metric(colour = "red")]
    orders_total: Counter,
}

fn main() {}
