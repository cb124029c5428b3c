// A label value enum has fieldless variants.
use mesh_metrics::LabelValue;

#[derive(LabelValue)]
enum Currency {
    Usd,
    Other(String),
    Custom { code: String },
}

fn main() {}
