//! The guide's weather agent: `get_forecast` (async) and `get_current` (sync).

use std::time::Duration;

use mesh_metrics::instrumented;

/// A forecast for one location.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// Where.
    pub location: String,
    /// Highs for the next days, °C.
    pub highs: Vec<f64>,
}

/// Current conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    /// Temperature, °C.
    pub temperature: f64,
}

/// Why a weather call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeatherError {
    /// The location is not one the agent knows.
    UnknownLocation(String),
    /// The upstream provider failed.
    Upstream,
}

impl std::fmt::Display for WeatherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownLocation(location) => write!(f, "unknown location {location:?}"),
            Self::Upstream => f.write_str("upstream provider failed"),
        }
    }
}

impl std::error::Error for WeatherError {}

/// The locations the agent knows, with a base temperature.
const LOCATIONS: [(&str, f64); 4] = [("lisbon", 21.0), ("oslo", 4.0), ("nairobi", 25.0), ("lima", 18.0)];

/// The weather agent. `latency` simulates the upstream provider.
#[derive(Debug, Default)]
pub struct WeatherAgent;

#[instrumented(agent = "weather-agent")]
impl WeatherAgent {
    /// A five-day forecast; waits `upstream_latency` for the provider.
    pub async fn get_forecast(&self, location: &str, upstream_latency: Duration) -> Result<Forecast, WeatherError> {
        let base = base_temperature(location)?;
        tokio::time::sleep(upstream_latency).await;
        if upstream_latency > Duration::from_millis(900) {
            return Err(WeatherError::Upstream);
        }
        Ok(Forecast { location: location.to_owned(), highs: (0..5).map(|day| base + day as f64 * 0.5).collect() })
    }

    /// Current conditions, from the agent's cache (synchronous).
    pub fn get_current(&self, location: &str) -> Result<Current, WeatherError> {
        Ok(Current { temperature: base_temperature(location)? })
    }
}

fn base_temperature(location: &str) -> Result<f64, WeatherError> {
    LOCATIONS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(location))
        .map(|(_, base)| *base)
        .ok_or_else(|| WeatherError::UnknownLocation(location.to_owned()))
}

/// Every location the agent knows, and one it does not.
pub fn locations() -> [&'static str; 5] {
    [LOCATIONS[0].0, LOCATIONS[1].0, LOCATIONS[2].0, LOCATIONS[3].0, "atlantis"]
}
