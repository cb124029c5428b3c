use mesh_metrics::{Counter, Histogram, Metrics};

#[derive(Metrics)]
#[metrics(prefix = "shop")]
struct ShopMetrics {
    /// Orders taken.
    #[metric(native)]
    orders_total: Counter,
    /// Basket sizes.
    #[metric(native = true)]
    basket_items: Histogram,
}

fn main() {}
