//! Rewrites every `return` of a sync fn body so the returned value is
//! classified before it leaves the function.
//!
//! Only the function's own `return`s are touched: closures, async blocks and
//! nested items have their own `return` scope and are left exactly as written.
//! `?` needs no rewrite: it can only leave with the failure value (`Err`,
//! `None`), which the call guard records when it is dropped unfinished.

use proc_macro2::TokenStream;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Item};

/// Rewrites `return value` into `return finish(value)` throughout `block`.
pub(crate) fn rewrite(block: &mut syn::Block, finish: &dyn Fn(TokenStream) -> TokenStream) {
    ReturnRewriter { finish }.visit_block_mut(block);
}

struct ReturnRewriter<'a> {
    finish: &'a dyn Fn(TokenStream) -> TokenStream,
}

impl VisitMut for ReturnRewriter<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            // Their `return` leaves them, not the instrumented fn.
            Expr::Closure(_) | Expr::Async(_) => {}
            Expr::Return(ret) => {
                if let Some(value) = ret.expr.as_deref_mut() {
                    self.visit_expr_mut(value);
                }
                let value = match ret.expr.take() {
                    Some(value) => quote::quote!(#value),
                    None => quote::quote!(()),
                };
                let finished = (self.finish)(value);
                ret.expr = Some(Box::new(Expr::Verbatim(finished)));
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_item_mut(&mut self, _nested: &mut Item) {
        // A nested fn or impl is a different function.
    }
}
