// A label named like an ID, and an open-ended type, without the opt-in.
use mesh_metrics::LabelSet;

#[derive(LabelSet)]
struct Labels {
    user_id: &'static str,
    email: &'static str,
    path: String,
    attempt: u32,
}

fn main() {}
