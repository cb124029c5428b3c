// On a method, the attribute does not see the impl block's generics: a
// return type that is one of them fails to compile instead of being guessed.
pub struct Store<R>(R);

impl<R: Clone> Store<R> {
    #[mesh_metrics::instrumented(agent = "agent")]
    pub fn get(&self) -> R {
        self.0.clone()
    }
}

fn main() {}
