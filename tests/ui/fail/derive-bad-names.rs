// Names outside the Prometheus grammar, and reserved labels.
use mesh_metrics::{Counter, LabelSet, Metrics};

#[derive(LabelSet)]
struct Labels {
    #[label(name = "content-type")]
    content_type: bool,
    #[label(name = "__name__")]
    shadow: bool,
    #[label(name = "le")]
    bucket: bool,
}

#[derive(Metrics)]
#[metrics(prefix = "9lives")]
struct Metrics1 {
    /// Jobs.
    jobs_total: Counter,
}

#[derive(Metrics)]
struct Metrics2 {
    /// Jobs.
    #[metric(name = "jobs-done_total")]
    jobs_total: Counter,
}

fn main() {}
