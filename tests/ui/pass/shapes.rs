// Shapes a user writes that the expansion must measure as written: futures by
// type whatever the body, `return` inside macros and labelled blocks, closures
// with their own `return`, aliases, const fns left alone, a renamed crate path.
use std::future::Future;
use std::pin::Pin;

use mesh_metrics::instrumented;

type Maybe<T> = Option<T>;
type QueryResult<T> = Result<T, String>;
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type Boxed<'a> = Pin<Box<dyn Future<Output = Result<u32, String>> + Send + 'a>>;

macro_rules! done {
    ($e:expr) => {
        return Ok($e)
    };
}

pub struct Agent {
    n: u32,
    items: Vec<u8>,
}

async fn other(n: u32) -> Result<u32, String> {
    if n == 0 { Err("zero".into()) } else { Ok(n) }
}

#[instrumented(agent = "shapes")]
impl Agent {
    pub fn clone_then_async_move(&self) -> impl Future<Output = Result<u32, String>> + Send + 'static {
        let n = self.n;
        async move { if n == 0 { Err("zero".into()) } else { Ok(n) } }
    }

    pub fn delegating(&self) -> impl Future<Output = Result<u32, String>> + '_ {
        other(self.n)
    }

    pub fn early_future(&self) -> Pin<Box<dyn Future<Output = u32> + Send>> {
        if self.n == 0 {
            return Box::pin(async { 0 });
        }
        let n = self.n;
        Box::pin(async move { n })
    }

    pub fn box_future(&self) -> BoxFuture<'_, Result<u32, String>> {
        Box::pin(other(self.n))
    }

    #[instrumented(future)]
    pub fn marked(&self) -> Boxed<'_> {
        Box::pin(other(self.n))
    }

    pub fn macro_return(&self) -> Result<u32, String> {
        if self.n > 1 {
            done!(self.n);
        }
        Err("small".into())
    }

    pub fn labelled(&self) -> Result<u32, String> {
        let value = 'found: {
            for item in &self.items {
                if *item > 2 {
                    break 'found u32::from(*item);
                }
            }
            return Err("none".into());
        };
        Ok(value)
    }

    pub fn closure_return(&self) -> Result<u32, String> {
        let first_big = |items: &[u8]| {
            for item in items {
                if *item > 2 {
                    return Some(*item);
                }
            }
            None
        };
        first_big(&self.items).map(u32::from).ok_or_else(|| "none".into())
    }

    pub fn alias_option(&self) -> Maybe<u32> {
        let first = self.items.first()?;
        Some(u32::from(*first))
    }

    pub fn alias_result<T: From<u8>>(&self) -> QueryResult<T> {
        self.items.first().map(|b| T::from(*b)).ok_or_else(|| "empty".into())
    }

    pub fn io(&self) -> std::io::Result<u32> {
        Ok(self.n)
    }

    pub fn borrow_mut(&mut self) -> &mut u8 {
        &mut self.items[0]
    }

    pub fn generic_container<T: Clone>(&self, item: T) -> Vec<T> {
        vec![item; self.items.len()]
    }

    pub const fn constant() -> u32 {
        7
    }
}

mod renamed {
    pub use mesh_metrics as runtime;
}

#[instrumented(agent = "shapes", crate = renamed::runtime)]
fn through_a_renamed_path() -> u32 {
    1
}

#[instrumented(agent = "shapes", crate = "renamed::runtime")]
async fn through_a_string_path() -> u32 {
    1
}

fn main() {
    let mut agent = Agent { n: 3, items: vec![1, 5] };
    let _ = agent.clone_then_async_move();
    let _ = agent.delegating();
    let _ = agent.early_future();
    let _ = agent.box_future();
    let _ = agent.marked();
    assert_eq!(agent.macro_return(), Ok(3));
    assert_eq!(agent.labelled(), Ok(5));
    assert_eq!(agent.closure_return(), Ok(5));
    assert_eq!(agent.alias_option(), Some(1));
    assert_eq!(agent.alias_result::<u32>(), Ok(1));
    assert_eq!(agent.io().ok(), Some(3));
    *agent.borrow_mut() = 9;
    assert_eq!(agent.generic_container(1u8).len(), 2);
    const SEVEN: u32 = Agent::constant();
    assert_eq!(SEVEN, 7);
    assert_eq!(through_a_renamed_path(), 1);
    let _ = through_a_string_path();
}
