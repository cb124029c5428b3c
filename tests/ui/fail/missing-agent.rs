#[mesh_metrics::instrumented(method = "current")]
fn get_current() {}

fn main() {}
