//! `#[instrumented]` documents each fn's PromQL, with the metric names the
//! runtime records: the proc-macro crate keeps its own copy of two names (it
//! cannot depend on the runtime crate), and this checks the copies agree.

#[test]
fn the_macro_crate_spells_the_metric_names_as_the_runtime_does() {
    let source = include_str!("../mesh-metrics-macros/src/names.rs");
    for (name, value) in [
        ("REQUESTS_TOTAL", mesh_metrics::names::REQUESTS_TOTAL),
        ("REQUEST_DURATION_SECONDS", mesh_metrics::names::REQUEST_DURATION_SECONDS),
    ] {
        let line = format!("pub(crate) const {name}: &str = \"{value}\";");
        assert!(source.contains(&line), "mesh-metrics-macros/src/names.rs lacks `{line}`");
    }
}
