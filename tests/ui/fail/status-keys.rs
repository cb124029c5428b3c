// `infallible` contradicts a predicate; `future` needs a fn that returns one.
fn is_bad(_: &u32) -> bool {
    false
}

#[mesh_metrics::instrumented(agent = "agent", infallible, error_if = is_bad)]
fn both() -> u32 {
    1
}

#[mesh_metrics::instrumented(agent = "agent", future)]
fn not_a_future() -> u32 {
    1
}

#[mesh_metrics::instrumented(agent = "agent", infallible = true)]
fn flag_with_value() -> u32 {
    1
}

fn main() {}
