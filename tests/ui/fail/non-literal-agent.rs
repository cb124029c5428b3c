const AGENT: &str = "weather-agent";

#[mesh_metrics::instrumented(agent = AGENT)]
fn get_current() {}

fn main() {}
