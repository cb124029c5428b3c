// Every mistake is reported in one compile.
#[mesh_metrics::instrumented(agent = 42, colour = "red", none_is = "maybe")]
fn get() -> Option<u32> {
    None
}

fn main() {}
