//! Recognises bodies that hand back a future instead of being `async fn`s.
//!
//! * `#[async_trait]` turns `async fn` into `fn ... -> Pin<Box<dyn Future>>` whose
//!   body is `Box::pin(async move { ... })`; it expands before us when it sits
//!   on the impl block.
//! * A hand-written `fn f() -> impl Future<Output = T> { async move { ... } }`.
//!
//! In both cases the work happens when the future is polled, so that is what
//! we instrument, not the synchronous call that builds it.

use syn::{Block, Expr, ReturnType, Stmt, Type};

/// The async block that does the work, if the body has one of the shapes above.
pub(crate) fn future_body<'a>(sig: &syn::Signature, block: &'a mut Block) -> Option<&'a mut Expr> {
    if sig.asyncness.is_some() || block.stmts.len() != 1 {
        return None;
    }
    let Some(Stmt::Expr(expr, None)) = block.stmts.first_mut() else {
        return None;
    };
    if matches!(expr, Expr::Async(_)) {
        return returns_impl_future(&sig.output).then_some(expr);
    }
    let Expr::Call(call) = expr else {
        return None;
    };
    let is_box_pin = matches!(&*call.func, Expr::Path(path) if {
        let segments: Vec<String> = path.path.segments.iter().map(|s| s.ident.to_string()).collect();
        segments.ends_with(&["Box".to_owned(), "pin".to_owned()])
    });
    if !is_box_pin || call.args.len() != 1 {
        return None;
    }
    call.args.first_mut().filter(|arg| matches!(arg, Expr::Async(_)))
}

fn returns_impl_future(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let Type::ImplTrait(impl_trait) = &**ty else {
        return false;
    };
    impl_trait.bounds.iter().any(|bound| match bound {
        syn::TypeParamBound::Trait(t) => t.path.segments.last().is_some_and(|s| s.ident == "Future"),
        _ => false,
    })
}
