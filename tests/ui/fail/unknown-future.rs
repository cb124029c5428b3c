// A future under a name the macro does not know: timing the call that builds
// it would say nothing, so it does not compile until the fn says what it is.
use std::future::Future;
use std::pin::Pin;

type ResponseFuture = Pin<Box<dyn Future<Output = Result<u32, String>> + Send>>;

#[mesh_metrics::instrumented(agent = "agent")]
fn respond() -> ResponseFuture {
    Box::pin(async { Ok(1) })
}

#[mesh_metrics::instrumented(agent = "agent")]
fn ready() -> std::future::Ready<Result<u32, String>> {
    std::future::ready(Ok(1))
}

fn main() {}
