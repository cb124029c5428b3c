use mesh_metrics::{Histogram, Metrics};

#[derive(Metrics)]
#[metrics(prefix = "shop", prefix = "store")]
struct ShopMetrics {
    /// Basket sizes.
    #[metric(native, native)]
    basket_items: Histogram,
    /// Payment latency.
    #[metric(name = "shop_payment_seconds", name = "shop_pay_seconds")]
    payment_seconds: Histogram,
}

fn main() {}
