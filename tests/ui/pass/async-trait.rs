use mesh_metrics::instrumented;

#[async_trait::async_trait]
trait Forecast {
    async fn forecast(&self, city: &str) -> Result<String, String>;
}

struct Outer;
struct Inner;

// #[async_trait] expands first and hands us `Box::pin(async move { .. })`.
#[async_trait::async_trait]
impl Forecast for Outer {
    #[instrumented(agent = "async-trait", method = "outer")]
    async fn forecast(&self, city: &str) -> Result<String, String> {
        if city.is_empty() {
            return Err("no city".into());
        }
        Ok(format!("sunny in {city}"))
    }
}

// We expand first and hand #[async_trait] an instrumented `async fn`.
#[instrumented(agent = "async-trait-inner")]
#[async_trait::async_trait]
impl Forecast for Inner {
    async fn forecast(&self, city: &str) -> Result<String, String> {
        Ok(city.to_owned())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert!(Outer.forecast("").await.is_err());
    assert!(Outer.forecast("Porto").await.is_ok());
    assert!(Inner.forecast("Faro").await.is_ok());
    let snapshot = mesh_metrics::snapshot();
    let calls = |method, status| {
        snapshot.value("mcp_mesh_requests_total", &[("agent", "async-trait"), ("method", method), ("status", status)])
    };
    assert_eq!((calls("outer", "success"), calls("outer", "error")), (1.0, 1.0));
    let inner = snapshot.value("mcp_mesh_requests_total", &[("agent", "async-trait-inner"), ("method", "forecast")]);
    assert_eq!(inner, 1.0);
}
