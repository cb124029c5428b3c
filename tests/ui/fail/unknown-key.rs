#[mesh_metrics::instrumented(agent = "weather-agent", labels = "x")]
fn get_current() {}

fn main() {}
