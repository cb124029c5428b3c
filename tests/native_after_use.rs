//! Native histograms chosen after instrumented calls were recorded: native
//! buckets cannot be made from classic ones, so `install()` refuses and says
//! what to write, and nothing changes.
//!
//! Its own test binary: `install()` happens once per process.

use mesh_metrics::{Error, NativeHistograms, instrumented};

#[instrumented(agent = "early")]
fn early() -> u32 {
    1
}

#[test]
fn install_refuses_native_histograms_after_the_first_call() {
    early();
    let error = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .native_histograms(NativeHistograms::new())
        .install()
        .expect_err("native histograms after a recorded call");
    assert!(
        matches!(&error, Error::NativeAfterUse { metric, series: 1, had: "classic" } if metric == "mcp_mesh_request_duration_seconds"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("install the exporter (with .native_histograms(..)) before the first instrumented call")
    );
    // Nothing changed: the call is still counted in its classic buckets, and
    // an install without native histograms succeeds.
    let text = mesh_metrics::render_classic(mesh_metrics::registry::global());
    assert!(text.contains("mcp_mesh_request_duration_seconds_bucket{agent=\"early\",method=\"early\",le=\"0.005\"} 1"));
    let bad_factor = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .native_histograms(NativeHistograms::new().bucket_factor(1.0))
        .install()
        .expect_err("a bucket factor of 1");
    assert!(bad_factor.to_string().contains("a bucket factor is above 1"), "{bad_factor}");
    let exporter = mesh_metrics::Exporter::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .install()
        .expect("a classic install after the refusal");
    drop(exporter);
}
