// A type error in the body still points at the user's code.
#[mesh_metrics::instrumented(agent = "a")]
fn get() -> u32 {
    "not a number"
}

fn main() {}
