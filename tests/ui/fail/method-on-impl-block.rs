struct Agent;

#[mesh_metrics::instrumented(agent = "a", method = "all")]
impl Agent {
    pub fn one(&self) {}
}

fn main() {}
