//! The guide's analytics agent ("Custom Business Metrics"): revenue by
//! currency and product, external API calls by provider and endpoint, and the
//! cache hit rate by cache type, declared as typed structs.
//!
//! The label sets are checked by the compiler: a misspelt label, a value that
//! is not a `Currency`, or a missing label does not compile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mesh_metrics::{Counter, Gauge, Histogram, LabelSet, LabelValue, Metrics, instrumented};

/// A transaction's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, LabelValue)]
#[label(rename_all = "UPPERCASE")]
pub enum Currency {
    /// US dollars.
    Usd,
    /// Euros.
    Eur,
    /// Pounds sterling.
    Gbp,
}

/// What was sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, LabelValue)]
pub enum Product {
    /// The basic plan.
    Basic,
    /// The professional plan.
    Pro,
    /// The enterprise plan.
    Enterprise,
}

/// An external API the agent calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, LabelValue)]
#[label(rename_all = "kebab-case")]
pub enum ApiProvider {
    /// The payment gateway.
    PaymentGateway,
    /// The fraud checker.
    FraudCheck,
}

/// The endpoint called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, LabelValue)]
pub enum Endpoint {
    /// Validates a payment.
    Validate,
    /// Captures a payment.
    Capture,
}

/// A cache the agent keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, LabelValue)]
pub enum CacheType {
    /// The shared Redis cache.
    Redis,
    /// The in-process cache.
    Local,
}

/// Labels of `mcp_mesh_business_revenue_total`.
#[derive(Debug, LabelSet)]
pub struct RevenueLabels {
    /// The agent.
    pub agent: &'static str,
    /// The currency.
    pub currency: Currency,
    /// The product.
    pub product: Product,
}

/// Labels of `mcp_mesh_business_api_calls_total`.
#[derive(Debug, LabelSet)]
pub struct ApiCallLabels {
    /// The agent.
    pub agent: &'static str,
    /// Who was called.
    pub api_provider: ApiProvider,
    /// What was called.
    pub endpoint: Endpoint,
}

/// Labels of `mcp_mesh_cache_hit_rate`.
#[derive(Debug, LabelSet)]
pub struct CacheLabels {
    /// The agent.
    pub agent: &'static str,
    /// Which cache.
    pub cache_type: CacheType,
}

/// Labels of the validation latency: enums only, so a lookup is an index.
#[derive(Debug, LabelSet)]
pub struct ValidationLabels {
    /// Who validated.
    pub api_provider: ApiProvider,
}

/// The guide's business metrics.
#[derive(Debug, Metrics)]
#[metrics(prefix = "mcp_mesh_business")]
pub struct BusinessMetrics {
    /// Total revenue processed
    pub revenue_total: Counter<RevenueLabels>,
    /// Total external API calls
    pub api_calls_total: Counter<ApiCallLabels>,
    /// Cache hit rate percentage
    #[metric(name = "mcp_mesh_cache_hit_rate")]
    pub cache_hit_rate: Gauge<CacheLabels>,
    /// Time to validate a transaction with an external API, in seconds
    #[metric(buckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0])]
    pub validation_duration_seconds: Histogram<ValidationLabels>,
}

/// A transaction to process.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// How much.
    pub amount: f64,
    /// In what.
    pub currency: Currency,
    /// For what.
    pub product: Product,
    /// Whether the payment gateway must validate it.
    pub requires_external_validation: bool,
}

/// Why a transaction failed.
#[derive(Debug, Clone, PartialEq)]
pub enum TransactionError {
    /// The amount was negative or not a number.
    InvalidAmount(f64),
}

impl std::fmt::Display for TransactionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidAmount(amount) => write!(f, "invalid amount {amount}"),
        }
    }
}

impl std::error::Error for TransactionError {}

const AGENT: &str = "analytics";

/// The analytics agent.
#[derive(Debug)]
pub struct AnalyticsAgent {
    metrics: BusinessMetrics,
    cache_hits: AtomicU64,
    cache_lookups: AtomicU64,
}

impl AnalyticsAgent {
    /// An agent recording into the process-wide registry.
    pub fn new() -> Result<Self, mesh_metrics::Error> {
        Ok(Self {
            metrics: BusinessMetrics::register()?,
            cache_hits: AtomicU64::new(0),
            cache_lookups: AtomicU64::new(0),
        })
    }
}

#[instrumented(agent = "analytics")]
impl AnalyticsAgent {
    /// Processes a transaction and records the guide's business metrics.
    pub async fn process_transaction(&self, transaction: &Transaction) -> Result<f64, TransactionError> {
        let revenue = RevenueLabels { agent: AGENT, currency: transaction.currency, product: transaction.product };
        // A negative or NaN amount is refused by the counter, and by us.
        self.metrics
            .revenue_total
            .with(&revenue)
            .add(transaction.amount)
            .map_err(|_| TransactionError::InvalidAmount(transaction.amount))?;

        if transaction.requires_external_validation {
            let started = std::time::Instant::now();
            tokio::time::sleep(Duration::from_millis(2 + (transaction.amount as u64 % 40))).await;
            let api =
                ApiCallLabels { agent: AGENT, api_provider: ApiProvider::PaymentGateway, endpoint: Endpoint::Validate };
            self.metrics.api_calls_total.with(&api).inc();
            let validation = ValidationLabels { api_provider: ApiProvider::PaymentGateway };
            self.metrics.validation_duration_seconds.with(&validation).observe_duration(started.elapsed());
        }

        let hit_rate = self.cache_lookup(transaction.amount as u64 % 5 != 0);
        self.metrics
            .cache_hit_rate
            .with(&CacheLabels { agent: AGENT, cache_type: CacheType::Redis })
            .set(hit_rate * 100.0);
        Ok(transaction.amount)
    }
}

impl AnalyticsAgent {
    /// Records one cache lookup and returns the hit rate so far.
    fn cache_lookup(&self, hit: bool) -> f64 {
        let lookups = self.cache_lookups.fetch_add(1, Ordering::Relaxed) + 1;
        let hits = self.cache_hits.fetch_add(u64::from(hit), Ordering::Relaxed) + u64::from(hit);
        hits as f64 / lookups as f64
    }
}
