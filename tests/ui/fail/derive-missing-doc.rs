// The doc comment is the HELP text.
use mesh_metrics::{Counter, Metrics};

#[derive(Metrics)]
struct BusinessMetrics {
    revenue_total: Counter,
}

fn main() {}
