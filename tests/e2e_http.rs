//! The exporter end to end: installed inside a tokio runtime on an ephemeral
//! loopback port, scraped over real TCP.

use mesh_metrics::instrumented;
use mesh_metrics_tests::{get, promtool_check_metrics, request, required_tool};

struct WeatherAgent;

#[instrumented(agent = "weather-agent")]
impl WeatherAgent {
    pub async fn get_forecast(&self, location: &str) -> Result<String, String> {
        if location.is_empty() { Err("no location".into()) } else { Ok(format!("sunny in {location}")) }
    }

    /// Never called: its series must still be exposed, at zero.
    pub fn get_alerts(&self) -> Vec<String> {
        Vec::new()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_guide_families_over_http() {
    let exporter = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .global_label("cluster", "test \"one\"")
        .agent_info("weather-agent", "1.0.0", &["weather_forecast", "weather_current"])
        .install()
        .expect("install");
    let addr = exporter.local_addr();
    assert!(addr.ip().is_loopback());

    let agent = WeatherAgent;
    agent.get_forecast("Lisbon").await.expect("forecast");
    agent.get_forecast("").await.expect_err("no location");
    metrics::describe_counter!("hand_written_total", "Written through the metrics facade");
    metrics::counter!("hand_written_total", "kind" => "facade").increment(3);
    // Same name as one of ours: left out of /metrics, never a second # TYPE.
    metrics::counter!("mcp_mesh_requests_total", "agent" => "impostor").increment(1);

    let response = tokio::task::spawn_blocking(move || get(addr, "/metrics")).await.expect("join").expect("scrape");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let body = &response.body;
    for expected in [
        "# HELP mcp_mesh_requests_total Total number of requests processed\n",
        "# TYPE mcp_mesh_requests_total counter\n",
        "# TYPE mcp_mesh_request_duration_seconds histogram\n",
        "# TYPE mcp_mesh_connections_active gauge\n",
        "mcp_mesh_requests_total{agent=\"weather-agent\",method=\"get_forecast\",status=\"success\",cluster=\"test \\\"one\\\"\"} 1\n",
        "mcp_mesh_requests_total{agent=\"weather-agent\",method=\"get_forecast\",status=\"error\",cluster=\"test \\\"one\\\"\"} 1\n",
        "mcp_mesh_requests_total{agent=\"weather-agent\",method=\"get_alerts\",status=\"success\",cluster=\"test \\\"one\\\"\"} 0\n",
        "mcp_mesh_request_duration_seconds_count{agent=\"weather-agent\",method=\"get_forecast\",cluster=\"test \\\"one\\\"\"} 2\n",
        "mcp_mesh_request_duration_seconds_bucket{agent=\"weather-agent\",method=\"get_alerts\",cluster=\"test \\\"one\\\"\",le=\"+Inf\"} 0\n",
        "mcp_mesh_connections_active{agent=\"weather-agent\",type=\"client\",cluster=\"test \\\"one\\\"\"} 0\n",
        "mcp_mesh_agent_info{agent_name=\"weather-agent\",version=\"1.0.0\",capabilities=\"weather_forecast,weather_current\",cluster=\"test \\\"one\\\"\"} 1\n",
        // The facade orders its global labels first.
        "hand_written_total{cluster=\"test \\\"one\\\"\",kind=\"facade\"} 3\n",
    ] {
        assert!(body.contains(expected), "missing {expected:?} in\n{body}");
    }
    assert_eq!(body.matches("# TYPE mcp_mesh_requests_total ").count(), 1, "{body}");
    assert!(!body.contains("impostor"), "{body}");
    for line in body.lines().filter(|l| l.starts_with("# TYPE mcp_mesh_")) {
        let name = line.split(' ').nth(2).expect("name");
        assert!(body.contains(&format!("# HELP {name} ")), "{name} has no HELP");
    }
    // After the first scrape the endpoint's own families exist too; the next
    // scrape serves exactly what the handle renders.
    let again = tokio::task::spawn_blocking(move || get(addr, "/metrics")).await.expect("join").expect("scrape").body;
    assert_eq!(exporter.render().matches("# TYPE ").count(), again.matches("# TYPE ").count());

    let (health, missing, post, head) = tokio::task::spawn_blocking(move || {
        (
            get(addr, "/health"),
            get(addr, "/nope"),
            request(addr, "POST", "/metrics", &[]),
            request(addr, "HEAD", "/metrics", &[]),
        )
    })
    .await
    .expect("join");
    let (health, missing, post, head) =
        (health.expect("health"), missing.expect("404"), post.expect("405"), head.expect("head"));
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    assert_eq!(missing.status, 404);
    assert_eq!((post.status, post.header("allow")), (405, Some("GET, HEAD")));
    assert_eq!((head.status, head.body.as_str()), (200, ""));

    let promtool = required_tool("promtool");
    let lint = promtool_check_metrics(&promtool, body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert!(lint.is_empty(), "promtool check metrics: {lint:?}");

    // A second install is an error value, and the first keeps serving.
    let second = mesh_metrics::Exporter::builder().listen("127.0.0.1:0".parse().expect("address")).install();
    assert!(matches!(second, Err(mesh_metrics::Error::AlreadyInstalled)), "{second:?}");

    // Graceful shutdown frees the port.
    exporter.shutdown().await;
    std::net::TcpListener::bind(addr).expect("port is free after shutdown");
}
