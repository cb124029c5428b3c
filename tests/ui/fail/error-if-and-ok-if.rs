fn bad(_: &u32) -> bool {
    false
}

#[mesh_metrics::instrumented(agent = "a", error_if = bad, ok_if = bad)]
fn get() -> u32 {
    1
}

fn main() {}
