// `#[track_caller]` behind `cfg_attr` is refused too.
#[mesh_metrics::instrumented(agent = "agent")]
#[cfg_attr(not(any()), track_caller)]
fn located() -> u32 {
    1
}

fn main() {
    let _ = located();
}
