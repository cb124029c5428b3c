// Each misplaced #[trace_id] is an error on its own token, all in one compile.
use mesh_metrics::trace::TraceId;

struct Agent;

#[mesh_metrics::instrumented(agent = "agent")]
impl Agent {
    pub fn on_self(#[trace_id] &self) {}

    pub fn twice(&self, #[trace_id] _a: TraceId, #[trace_id] _b: TraceId) {}

    pub fn pattern(&self, #[trace_id] (_a, _b): (TraceId, u8)) {}

    pub fn with_arguments(&self, #[trace_id(header)] _a: TraceId) {}

    #[instrumented(skip)]
    pub fn skipped(&self, #[trace_id] _a: TraceId) {}
}

#[mesh_metrics::instrumented(agent = "agent")]
fn not_a_trace_id(#[trace_id] _count: u32) {}

fn main() {}
