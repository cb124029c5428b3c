//! Business metrics declared as typed structs, end to end: registration and
//! its run-time checks, recording through both paths, refused values, and the
//! exposition in both formats through strict parsers.

use mesh_metrics::{Counter, Error, Gauge, Histogram, LabelSet, LabelValue, Metrics};
use mesh_metrics_tests::{Format, promtool_check_metrics, request, required_tool, strict_parse};

#[derive(Debug, Clone, Copy, LabelValue)]
enum Currency {
    Usd,
    Eur,
}

#[derive(Debug, Clone, Copy, LabelValue)]
enum Product {
    Basic,
    Pro,
}

#[derive(LabelSet)]
struct RevenueLabels {
    currency: Currency,
    product: Product,
}

#[derive(LabelSet)]
struct CustomerLabels {
    #[label(unbounded)]
    customer: String,
}

#[derive(Metrics)]
#[metrics(prefix = "shop")]
struct ShopMetrics {
    /// Revenue processed, in dollars.
    #[metric(unit = "dollars")]
    revenue_dollars_total: Counter<RevenueLabels>,
    /// Orders per customer.
    orders_total: Counter<CustomerLabels>,
    /// Items in the cart, "right now".
    cart_items: Gauge<RevenueLabels>,
    /// Checkout time in seconds.
    #[metric(buckets = [0.1, 0.5, 1.0])]
    checkout_seconds: Histogram,
}

/// The same names, declared differently: each is a run-time conflict.
#[allow(dead_code)] // registered to be refused, never recorded into
mod conflicting {
    use super::*;

    #[derive(Metrics)]
    pub(super) struct OtherLabels {
        /// Revenue with other labels.
        pub(super) shop_revenue_dollars_total: Counter<CustomerLabels>,
    }

    #[derive(Metrics)]
    pub(super) struct OtherType {
        /// Orders as a gauge.
        #[metric(name = "shop_cart_items")]
        pub(super) cart: Histogram,
    }

    #[derive(Metrics)]
    pub(super) struct OtherBuckets {
        /// Checkout with other buckets.
        #[metric(buckets = [1.0, 2.0])]
        pub(super) shop_checkout_seconds: Histogram,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_metrics_record_and_expose() {
    let exporter = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .cardinality_limit_for("shop_orders_total", 5)
        .install()
        .expect("install");
    let shop = ShopMetrics::register().expect("register");
    // Registering the same declaration again finds the same series.
    let again = ShopMetrics::register().expect("register again");

    let pro_usd = RevenueLabels { currency: Currency::Usd, product: Product::Pro };
    shop.revenue_dollars_total.with(&pro_usd).add(99.5).expect("positive");
    again.revenue_dollars_total.with(&pro_usd).add(0.5).expect("positive");
    for refused in [-1.0, f64::NAN, f64::INFINITY] {
        let error = shop.revenue_dollars_total.with(&pro_usd).add(refused).expect_err("refused");
        assert_eq!(error.metric, "shop_revenue_dollars_total");
    }
    assert_eq!(shop.revenue_dollars_total.with(&pro_usd).get(), 100.0, "refused amounts change nothing");
    shop.cart_items.with(&RevenueLabels { currency: Currency::Eur, product: Product::Basic }).set(3.0);
    shop.checkout_seconds.observe(0.3).expect("not NaN");
    assert!(shop.checkout_seconds.observe(f64::NAN).is_err());
    for customer in 0..20 {
        shop.orders_total.with(&CustomerLabels { customer: format!("customer \"{customer}\"") }).inc();
    }

    for conflict in [
        conflicting::OtherLabels::register().map(|_| ()),
        conflicting::OtherType::register().map(|_| ()),
        conflicting::OtherBuckets::register().map(|_| ()),
    ] {
        assert!(matches!(conflict, Err(Error::Conflict { .. })), "{conflict:?}");
    }

    let addr = exporter.local_addr();
    let scrape = |accept: &'static str| {
        tokio::task::spawn_blocking(move || {
            let headers: &[(&str, &str)] = if accept.is_empty() { &[] } else { &[("Accept", accept)] };
            request(addr, "GET", "/metrics", headers).expect("scrape").body
        })
    };
    let classic = scrape("").await.expect("join");
    let openmetrics = scrape("application/openmetrics-text").await.expect("join");
    assert!(openmetrics.contains("# UNIT shop_revenue_dollars dollars\n"), "{openmetrics}");
    assert!(classic.contains("# HELP shop_cart_items Items in the cart, \"right now\".\n"), "{classic}");
    assert!(openmetrics.contains("# HELP shop_cart_items Items in the cart, \\\"right now\\\".\n"), "{openmetrics}");
    assert!(classic.contains("shop_checkout_seconds_bucket{le=\"0.5\"} 1\n"), "declared buckets:\n{classic}");

    let promtool = required_tool("promtool");
    let lint = promtool_check_metrics(&promtool, &classic).unwrap_or_else(|e| panic!("{e}\n{classic}"));
    assert!(lint.iter().all(|l| !l.starts_with("shop_")), "{lint:?}");
    strict_parse(Format::Classic, &classic).unwrap_or_else(|e| panic!("{e}\n{classic}"));
    let samples = strict_parse(Format::OpenMetrics, &openmetrics).unwrap_or_else(|e| panic!("{e}\n{openmetrics}"));
    let value =
        |name: &str, labels: &str| samples.iter().find(|s| s.name == name && s.labels == labels).map(|s| s.value);
    assert_eq!(value("shop_revenue_dollars_total", "currency=usd,product=pro"), Some(100.0));
    assert_eq!(value("shop_cart_items", "currency=eur,product=basic"), Some(3.0));
    assert_eq!(value("shop_checkout_seconds_count", ""), Some(1.0));
    let orders: Vec<_> = samples.iter().filter(|s| s.name == "shop_orders_total").collect();
    assert_eq!(orders.len(), 6, "5 customers and the overflow series");
    assert_eq!(orders.iter().map(|s| s.value).sum::<f64>(), 20.0);
    assert_eq!(value("shop_orders_total", "customer=customer \"0\""), Some(1.0));
    exporter.shutdown().await;
}

#[derive(LabelSet)]
struct AgentLabels {
    agent: &'static str,
    currency: Currency,
}

#[derive(Metrics)]
struct AgentMetrics {
    /// Payments per agent.
    payments_total: Counter<AgentLabels>,
}

#[test]
fn static_string_labels_resolve_by_address_and_by_value() {
    let registry = mesh_metrics::registry::Registry::new();
    let metrics = AgentMetrics::register_in(&registry).expect("register");
    // Seven agent names, two of them the same text at different addresses:
    // more combinations than tables, and a name seen under two addresses.
    let leak = |text: &str| -> &'static str { Box::leak(text.to_owned().into_boxed_str()) };
    let agents = ["a", "b", "c", "d", "e", "f"].map(leak);
    let second_a = leak("a");
    assert_ne!(agents[0].as_ptr(), second_a.as_ptr());
    for round in 0..3 {
        for agent in agents.iter().chain([&second_a]) {
            metrics.payments_total.with(&AgentLabels { agent, currency: Currency::Eur }).increment(round + 1);
        }
    }
    let snapshot = registry.snapshot();
    assert_eq!(snapshot.value("payments_total", &[("agent", "a"), ("currency", "eur")]), 12.0);
    for agent in ["b", "c", "d", "e", "f"] {
        assert_eq!(snapshot.value("payments_total", &[("agent", agent)]), 6.0, "{agent}");
    }
    assert_eq!(snapshot.matching("payments_total", &[]).count(), 6);
}
