//! Generates 5,000 instrumented methods under one agent (50 impl blocks of
//! 100), and a fn that calls each of them a known number of times.

use std::fmt::Write as _;

const BLOCKS: usize = 50;
const PER_BLOCK: usize = 100;

fn main() {
    let mut code = String::new();
    for block in 0..BLOCKS {
        let _ = writeln!(code, "pub struct Block{block};");
        let _ = writeln!(code, "#[runtime::instrumented(agent = \"many-sites\", crate = runtime)]");
        let _ = writeln!(code, "impl Block{block} {{");
        for n in 0..PER_BLOCK {
            let i = block * PER_BLOCK + n;
            let _ = writeln!(
                code,
                "    pub fn site_{i}(&self, fail: bool) -> Result<u32, String> {{ if fail {{ return Err(\"no\".into()); }} Ok({i}) }}"
            );
        }
        let _ = writeln!(code, "}}");
    }
    let _ = writeln!(code, "/// Calls site `i` once with `Ok` and, when `i` is odd, once with `Err`.");
    let _ = writeln!(code, "pub fn call_every_site() {{");
    for block in 0..BLOCKS {
        for n in 0..PER_BLOCK {
            let i = block * PER_BLOCK + n;
            let _ = writeln!(code, "    let _ = Block{block}.site_{i}(false);");
            if i % 2 == 1 {
                let _ = writeln!(code, "    let _ = Block{block}.site_{i}(true);");
            }
        }
    }
    let _ = writeln!(code, "}}");
    let _ = writeln!(code, "/// How many instrumented sites were generated.");
    let _ = writeln!(code, "pub const SITES: usize = {};", BLOCKS * PER_BLOCK);
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(format!("{out}/many_sites.rs"), code).expect("write generated sites");
    println!("cargo::rerun-if-changed=build.rs");
}
