#[mesh_metrics::instrumented(agent = "a", agent = "b")]
fn get_current() {}

fn main() {}
