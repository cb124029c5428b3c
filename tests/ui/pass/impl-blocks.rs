use mesh_metrics::instrumented;

struct WeatherAgent;

#[instrumented(agent = "weather-agent")]
impl WeatherAgent {
    /// Instrumented: `pub`.
    pub async fn get_forecast(&self, location: &str) -> Result<String, String> {
        Ok(format!("sunny in {location}"))
    }

    #[instrumented(method = "current", connection_type = "server")]
    pub fn get_current(&self) -> Result<f64, String> {
        Ok(21.5)
    }

    #[instrumented(skip)]
    pub fn not_counted(&self) -> u32 {
        1
    }

    fn private_helper(&self) -> u32 {
        2
    }

    #[instrumented]
    fn private_but_asked_for(&self) -> u32 {
        self.private_helper()
    }

    pub const LIMIT: u32 = 3;
}

trait Tool {
    fn call(&self, input: u32) -> Result<u32, String>;
    fn name(&self) -> &'static str {
        "tool"
    }
}

#[instrumented(agent = "tools")]
impl Tool for WeatherAgent {
    fn call(&self, input: u32) -> Result<u32, String> {
        input.checked_mul(2).ok_or_else(|| "overflow".to_owned())
    }
}

struct Generic<T>(T);

#[instrumented(agent = "generic-agent")]
impl<T: Clone> Generic<T> {
    // `T` could be a `Result` at some call site: the macro refuses to guess,
    // so the fn says how it ends.
    #[instrumented(infallible)]
    pub fn get(&self) -> T {
        self.0.clone()
    }
}

fn main() {
    let agent = WeatherAgent;
    assert_eq!(agent.get_current(), Ok(21.5));
    assert_eq!(agent.not_counted(), 1);
    assert_eq!(agent.private_but_asked_for(), 2);
    assert_eq!(agent.call(2), Ok(4));
    assert!(agent.call(u32::MAX).is_err());
    assert_eq!(agent.name(), "tool");
    assert_eq!(Generic(5).get(), 5);
    assert_eq!(WeatherAgent::LIMIT, 3);
    let _ = agent.get_forecast("Lisbon");

    let snapshot = mesh_metrics::snapshot();
    let calls = |agent, method| snapshot.value("mcp_mesh_requests_total", &[("agent", agent), ("method", method)]);
    assert_eq!(calls("weather-agent", "current"), 1.0);
    assert_eq!(calls("weather-agent", "not_counted"), 0.0);
    assert_eq!(calls("weather-agent", "private_helper"), 0.0);
    assert_eq!(calls("weather-agent", "private_but_asked_for"), 1.0);
    assert_eq!(calls("tools", "call"), 2.0);
    assert_eq!(snapshot.value("mcp_mesh_requests_total", &[("agent", "tools"), ("status", "error")]), 1.0);
    assert_eq!(calls("generic-agent", "get"), 1.0);
    assert_eq!(
        snapshot.value("mcp_mesh_connections_active", &[("agent", "weather-agent"), ("type", "server")]),
        0.0
    );
}
