// Field types: a metric is Counter/Gauge/Histogram; a label value derives LabelValue;
// buckets belong to histograms; a unit ends the name.
use mesh_metrics::{Counter, LabelSet, Metrics};

struct NotALabel;

#[derive(LabelSet)]
struct Labels {
    thing: NotALabel,
}

#[derive(Metrics)]
struct BusinessMetrics {
    /// A number.
    count: u64,
    /// Requests.
    #[metric(buckets = [0.1, 1.0])]
    requests_total: Counter<Labels>,
    /// Bytes sent.
    #[metric(unit = "bytes")]
    sent_total: Counter,
}

fn main() {}
