#[mesh_metrics::instrumented(agent = "weather-agent")]
struct WeatherAgent;

fn main() {}
