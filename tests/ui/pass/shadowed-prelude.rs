//! The generated code must not depend on names the user can shadow, and must
//! not trigger warnings or clippy lints in the user's crate.
#![deny(warnings, clippy::all)]
#![no_implicit_prelude]

extern crate mesh_metrics;
extern crate std as real_std;

#[allow(dead_code)]
mod std {}
#[allow(dead_code)]
mod core {}
#[allow(dead_code)]
struct Result;
#[allow(dead_code)]
struct Option;
#[allow(dead_code, non_upper_case_globals)]
const Ok: () = ();
#[allow(dead_code, non_upper_case_globals)]
const Err: () = ();
#[allow(dead_code, non_upper_case_globals)]
const Some: () = ();
#[allow(dead_code, non_upper_case_globals)]
const None: () = ();
#[allow(dead_code)]
struct Box;

#[mesh_metrics::instrumented(agent = "shadowed")]
fn sync_fn(x: u32) -> real_std::result::Result<u32, real_std::string::String> {
    if x == 0 {
        return real_std::result::Result::Ok(1);
    }
    real_std::result::Result::Ok(x)
}

#[mesh_metrics::instrumented(agent = "shadowed")]
async fn async_fn(x: u32) -> real_std::option::Option<u32> {
    real_std::option::Option::Some(x)
}

#[mesh_metrics::instrumented(agent = "shadowed")]
fn unit_fn() {}

fn main() {
    let _ = sync_fn(0);
    let _ = sync_fn(1);
    let _ = async_fn(1);
    unit_fn();
}
