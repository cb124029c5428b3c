use mesh_metrics::instrumented;

/// Docs stay on the function.
#[instrumented(agent = "shapes")]
#[inline]
pub fn plain(a: u32, b: u32) -> u32 {
    a + b
}

#[instrumented(agent = "shapes")]
fn unit_with_early_return(flag: bool) {
    if flag {
        return;
    }
    let _ = flag;
}

#[instrumented(agent = "shapes")]
fn diverging_tail(flag: bool) -> u32 {
    return if flag { 1 } else { 2 };
}

#[instrumented(agent = "shapes")]
fn generic<T: Clone + std::fmt::Debug, const N: usize>(items: [T; N]) -> Vec<T>
where
    T: Default,
{
    items.to_vec()
}

#[instrumented(agent = "shapes")]
fn borrowed<'a>(text: &'a str, other: &str) -> &'a str {
    let _ = other;
    text.trim()
}

#[instrumented(agent = "shapes")]
fn elided(text: &str) -> &str {
    if text.is_empty() {
        return "empty";
    }
    text
}

#[instrumented(agent = "shapes")]
fn returns_impl_trait(n: u32) -> impl Iterator<Item = u32> {
    (0..n).map(|x| x * 2)
}

#[instrumented(agent = "shapes")]
fn returns_boxed(n: u32) -> Box<dyn Fn(u32) -> u32> {
    if n == 0 {
        return Box::new(|x| x);
    }
    Box::new(move |x| x + n)
}

#[instrumented(agent = "shapes")]
fn closures_keep_their_own_return(values: &[i32]) -> Vec<i32> {
    values.iter().map(|v| { if *v < 0 { return 0; } *v }).collect()
}

#[instrumented(agent = "shapes")]
fn nested_items() -> u32 {
    fn helper() -> u32 {
        return 3;
    }
    helper()
}

#[instrumented(agent = "shapes")]
unsafe fn unsafe_fn(ptr: *const u32) -> u32 {
    unsafe { *ptr }
}

#[instrumented(agent = "shapes")]
async fn async_fn(x: u32) -> Result<u32, std::num::ParseIntError> {
    let y: u32 = "5".parse()?;
    Ok(x + y)
}

#[instrumented(agent = "shapes")]
fn returns_future(x: u32) -> impl std::future::Future<Output = u32> {
    async move { x + 1 }
}

#[instrumented(agent = "shapes")]
fn r#type() -> &'static str {
    "raw identifiers become method = \"type\""
}

fn main() {
    assert_eq!(plain(1, 2), 3);
    unit_with_early_return(true);
    unit_with_early_return(false);
    assert_eq!(diverging_tail(true), 1);
    assert_eq!(generic([1u8, 2]), vec![1, 2]);
    assert_eq!(borrowed(" a ", "b"), "a");
    assert_eq!(elided(""), "empty");
    assert_eq!(returns_impl_trait(3).sum::<u32>(), 6);
    assert_eq!(returns_boxed(2)(1), 3);
    assert_eq!(closures_keep_their_own_return(&[-1, 2]), vec![0, 2]);
    assert_eq!(nested_items(), 3);
    assert_eq!(unsafe { unsafe_fn(&7) }, 7);
    let _ = async_fn(1);
    let _ = returns_future(1);
    assert!(r#type().starts_with("raw"));
    let snapshot = mesh_metrics::snapshot();
    let calls = |method| snapshot.value("mcp_mesh_requests_total", &[("agent", "shapes"), ("method", method)]);
    assert_eq!(calls("unit_with_early_return"), 2.0);
    assert_eq!(calls("type"), 1.0);
    assert_eq!(calls("closures_keep_their_own_return"), 1.0);
}
