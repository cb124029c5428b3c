#[mesh_metrics::instrumented(agent = "")]
fn get_current() {}

fn main() {}
