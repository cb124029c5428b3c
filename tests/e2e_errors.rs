//! Install errors are values with a message that says what to do, and a
//! program without a tokio runtime gets the exporter on its own thread.

use mesh_metrics::{Error, Exporter};
use mesh_metrics_tests::get;

#[test]
fn install_errors_then_install_outside_a_runtime() {
    let bad_buckets = Exporter::builder().buckets(&[0.5, 0.1]).install();
    assert!(matches!(&bad_buckets, Err(Error::Buckets { metric, .. }) if metric == "default"), "{bad_buckets:?}");
    let bad_family_buckets = Exporter::builder().buckets_for("mcp_mesh_request_duration_seconds", &[]).install();
    assert!(matches!(bad_family_buckets, Err(Error::Buckets { .. })));
    let bad_label = Exporter::builder().global_label("__reserved", "x").install();
    assert!(matches!(&bad_label, Err(Error::LabelName { name }) if name == "__reserved"));
    let bucket_label = Exporter::builder().global_label("le", "x").install();
    assert!(matches!(&bucket_label, Err(Error::LabelName { name }) if name == "le"));
    let bad_address = "localhost:nope".parse::<std::net::SocketAddr>().map_err(Error::from);
    assert!(bad_address.expect_err("does not parse").to_string().contains("127.0.0.1:9464"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let in_use = Exporter::builder().listen(taken.local_addr().expect("addr")).install();
    let message = in_use.as_ref().map(|_| ()).expect_err("port in use").to_string();
    assert!(matches!(in_use, Err(Error::Bind { .. })), "{message}");
    assert!(message.contains("choose another"), "{message}");

    // None of the failures above left anything installed.
    let exporter = Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .buckets(&[0.1, 1.0])
        .install()
        .expect("install without a runtime");
    let response = get(exporter.local_addr(), "/health").expect("served from the exporter's own thread");
    assert_eq!(response.status, 200);
    let again = Exporter::builder().listen("127.0.0.1:0".parse().expect("address")).install();
    assert!(again.expect_err("second install").to_string().contains("already installed"));
}
