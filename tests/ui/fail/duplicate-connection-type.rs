#[mesh_metrics::instrumented(agent = "a", connection_type = "client", connection_type = "server")]
fn get_current() {}

fn main() {}
