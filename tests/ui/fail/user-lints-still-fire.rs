// The user's own warnings inside an instrumented body are reported as without
// the attribute: the generated code allows lints only on its own statements.
#![deny(unreachable_code)]

#[mesh_metrics::instrumented(agent = "a")]
fn get(flag: bool) -> u32 {
    return 1;
    let _ignored = flag;
}

fn main() {}
