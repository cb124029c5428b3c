// The body runs in a closure, where #[track_caller] would report the wrong place.
#[mesh_metrics::instrumented(agent = "agent")]
#[track_caller]
fn located() -> u32 {
    1
}

fn main() {
    let _ = located();
}
