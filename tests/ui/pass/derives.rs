// Every supported shape of the three derives compiles and records.
use mesh_metrics::{Counter, Gauge, Histogram, LabelSet, LabelValue, Metrics};

#[derive(Clone, Copy, LabelValue)]
enum Currency {
    Usd,
    Eur,
    #[label(rename = "gbp")]
    PoundSterling,
}

#[derive(Clone, Copy, LabelValue)]
#[label(rename_all = "kebab-case")]
enum Provider {
    PaymentGateway,
    FraudCheck,
}

#[derive(LabelSet)]
struct RevenueLabels {
    agent: &'static str,
    currency: Currency,
    refunded: bool,
}

#[derive(LabelSet)]
struct ApiLabels {
    #[label(name = "api_provider")]
    provider: Provider,
    r#type: Currency,
}

#[derive(LabelSet)]
struct CustomerLabels {
    #[label(unbounded)]
    customer_id: String,
    #[label(unbounded)]
    shard: u32,
}

#[derive(Metrics)]
#[metrics(prefix = "ui_business")]
struct BusinessMetrics {
    /// Total revenue processed.
    #[metric(unit = "dollars")]
    revenue_dollars_total: Counter<RevenueLabels>,
    /// Total external API calls.
    api_calls_total: Counter<ApiLabels>,
    /// Cache hit rate percentage.
    #[metric(name = "ui_cache_hit_rate")]
    cache_hit_rate: Gauge,
    /// Time spent validating, in seconds.
    #[metric(buckets = [0.01, 0.1, 1])]
    validation_seconds: Histogram<ApiLabels>,
    /// Transactions per customer.
    transactions_total: Counter<CustomerLabels>,
}

fn main() {
    assert_eq!(<Currency as LabelValue>::VALUES, &["usd", "eur", "gbp"]);
    assert_eq!(<Provider as LabelValue>::VALUES, &["payment-gateway", "fraud-check"]);
    assert_eq!(<ApiLabels as LabelSet>::NAMES, &["api_provider", "type"]);
    assert_eq!(<ApiLabels as LabelSet>::CARDINALITY, Some(6));
    assert_eq!(<RevenueLabels as LabelSet>::CARDINALITY, None);
    assert!(<CustomerLabels as LabelSet>::UNBOUNDED);

    let metrics = BusinessMetrics::register().expect("register");
    let labels = RevenueLabels { agent: "analytics", currency: Currency::PoundSterling, refunded: false };
    metrics.revenue_dollars_total.with(&labels).add(12.5).expect("non-negative");
    assert!(metrics.revenue_dollars_total.with(&labels).add(-1.0).is_err());
    metrics.api_calls_total.with(&ApiLabels { provider: Provider::FraudCheck, r#type: Currency::Usd }).inc();
    metrics.cache_hit_rate.set(87.5);
    metrics.validation_seconds.with(&ApiLabels { provider: Provider::PaymentGateway, r#type: Currency::Eur }).observe(0.05).expect("not NaN");
    metrics.transactions_total.with(&CustomerLabels { customer_id: "c-42".into(), shard: 7 }).inc();

    let snapshot = mesh_metrics::snapshot();
    let revenue = snapshot.value("ui_business_revenue_dollars_total", &[("currency", "gbp"), ("refunded", "false")]);
    assert_eq!(revenue, 12.5);
    assert_eq!(snapshot.value("ui_cache_hit_rate", &[]), 87.5);
    assert_eq!(snapshot.value("ui_business_transactions_total", &[("customer_id", "c-42"), ("shard", "7")]), 1.0);
}
