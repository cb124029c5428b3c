// Two labels with one name; two variants with one value; one metric twice.
use mesh_metrics::{Counter, LabelSet, LabelValue, Metrics};

#[derive(Clone, Copy, LabelValue)]
enum Currency {
    Usd,
    #[label(rename = "usd")]
    Dollar,
}

#[derive(LabelSet)]
struct Labels {
    currency: Currency,
    #[label(name = "currency")]
    other: Currency,
}

#[derive(Metrics)]
struct BusinessMetrics {
    /// Revenue.
    revenue_total: Counter,
    /// Revenue again.
    #[metric(name = "revenue_total")]
    revenue_again: Counter,
}

fn main() {}
