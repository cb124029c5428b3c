// A type named `Result` must be `core::result::Result` to be classified as one.
pub enum Result {
    Fine,
    Broken,
}

#[mesh_metrics::instrumented(agent = "agent")]
fn check() -> Result {
    Result::Fine
}

fn main() {
    let _ = check();
}
