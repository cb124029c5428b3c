use mesh_metrics::instrumented;

#[derive(Default)]
struct Agent {
    name: String,
    hits: u32,
}

impl Agent {
    #[instrumented(agent = "methods")]
    fn by_ref(&self) -> &str {
        &self.name
    }

    #[instrumented(agent = "methods")]
    fn by_mut(&mut self) -> &mut u32 {
        self.hits += 1;
        &mut self.hits
    }

    #[instrumented(agent = "methods")]
    fn by_value(self) -> String {
        self.name
    }

    #[instrumented(agent = "methods")]
    fn boxed(self: Box<Self>) -> u32 {
        self.hits
    }

    #[instrumented(agent = "methods")]
    fn uses_self_type() -> Self {
        Self::default()
    }

    #[instrumented(agent = "methods")]
    async fn async_by_ref(&self, extra: &str) -> String {
        format!("{}{extra}", self.name)
    }

    #[instrumented(agent = "methods")]
    async fn async_by_mut(&mut self) -> &mut u32 {
        &mut self.hits
    }
}

fn main() {
    let mut agent = Agent { name: "a".into(), hits: 0 };
    assert_eq!(agent.by_ref(), "a");
    *agent.by_mut() += 1;
    assert_eq!(agent.hits, 2);
    assert_eq!(Box::new(Agent::uses_self_type()).boxed(), 0);
    let _ = agent.async_by_ref("b");
    let _ = agent.async_by_mut();
    assert_eq!(agent.by_value(), "a");
}
