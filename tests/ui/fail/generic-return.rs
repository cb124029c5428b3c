// A return type the compiler only knows per call site: the macro refuses to guess.
use mesh_metrics::instrumented;

#[instrumented(agent = "agent")]
fn run<R>(f: impl FnOnce() -> R) -> R {
    f()
}

pub trait Handler {
    type Output;
    fn handle(&self) -> Self::Output;
}

pub struct Echo<T>(T);

#[instrumented(agent = "agent")]
impl<T: Clone> Echo<T> {
    pub fn projected<H: Handler>(&self, handler: &H) -> H::Output {
        handler.handle()
    }

    pub fn wrapped(&self) -> Wrapper<T> {
        Wrapper(self.0.clone())
    }

    pub fn async_generic<U: Default>(&self) -> impl std::future::Future<Output = U> {
        async { U::default() }
    }
}

pub struct Wrapper<T>(T);

fn main() {}
