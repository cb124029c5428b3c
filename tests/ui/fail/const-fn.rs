#[mesh_metrics::instrumented(agent = "a")]
const fn answer() -> u32 {
    42
}

fn main() {}
