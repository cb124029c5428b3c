#[mesh_metrics::instrumented(agent = "a", method = "x", method = "y")]
fn get_current() {}

fn main() {}
