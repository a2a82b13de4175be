//! Fuel: a bound on the work of `for` loops inside one expression.
//!
//! Values are checked after each evaluation (`eval::size`), but hcl-rs
//! evaluates a whole expression at once, and nested `for` expressions
//! (`[for i in range(1000) : [for j in range(1000) : range(100)]]`) can
//! make it run for minutes and fill memory before it returns. So before
//! evaluation every `for` (expression or template directive) is rewritten
//! to pass its collection and each iteration's value through an internal
//! function that charges their size to the evaluation's fuel and fails the
//! evaluation when it is spent. Expressions without `for` are not touched.
//!
//! hcl-rs functions are plain `fn` pointers, so the fuel left is kept in a
//! thread-local [`Cell`], set for the duration of one evaluation by
//! [`Tank::fill`] and emptied when its guard drops: it is per evaluation,
//! never shared between evaluations or threads, and a function called
//! outside one charges nothing. (The caller's other inputs travel as values:
//! see `functions::system`.)
//!
//! The function name is not in [`super::functions::NAMES`], so a testbed
//! cannot call it.

use std::cell::Cell;

use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::Value;
use hcl_edit::expr::{Expression, FuncArgs as EditArgs, FuncCall};
use hcl_edit::template::{Element, ForTemplateExpr, Template};
use hcl_edit::visit_mut::{visit_expr_mut, visit_template_mut, VisitMut};
use hcl_edit::Ident;

const COST: &str = "tg_for_cost";

/// Is `name` the internal function?
pub fn is_internal(name: &str) -> bool {
    name == COST
}

thread_local! {
    /// Fuel left in the evaluation running on this thread, if one is.
    static LEFT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The fuel of one evaluation.
pub struct Tank {
    previous: Option<u64>,
}

impl Tank {
    /// Give the evaluation about to run on this thread `fuel` units (one per
    /// iteration, plus one per list element and map entry and per 8 bytes
    /// of strings of the values that pass through a `for`).
    pub fn fill(fuel: u64) -> Tank {
        Tank {
            previous: LEFT.with(|l| l.replace(Some(fuel))),
        }
    }
}

impl Drop for Tank {
    fn drop(&mut self) {
        LEFT.with(|l| l.set(self.previous));
    }
}

/// Rewrite every `for` of `expr`; `true` when there was one.
pub fn rewrite(expr: &mut Expression) -> bool {
    let mut r = Rewriter { changed: false };
    r.visit_expr_mut(expr);
    r.changed
}

/// [`rewrite`] for a template (`templatefile`).
pub fn rewrite_template(t: &mut Template) -> bool {
    let mut r = Rewriter { changed: false };
    visit_template_mut(&mut r, t);
    r.changed
}

/// Declare the internal functions in `ctx`.
pub fn declare(ctx: &mut Context<'_>) {
    ctx.declare_func(
        COST,
        FuncDef::builder()
            .param(ParamType::Any)
            .param(ParamType::Any)
            .build(cost),
    );
}

/// `tg_for_cost(e, per)`: `e`, charged its size plus `per` for each of
/// its elements (the literal text a template `for` adds per iteration).
fn metered_with(e: Expression, per: u64) -> Expression {
    let mut args = EditArgs::new();
    args.push(e);
    args.push(Expression::Number(hcl_edit::Formatted::new(
        hcl::Number::from(per),
    )));
    Expression::FuncCall(Box::new(FuncCall::new(Ident::new(COST), args)))
}

fn metered(e: Expression) -> Expression {
    metered_with(e, 0)
}

struct Rewriter {
    changed: bool,
}

impl VisitMut for Rewriter {
    fn visit_expr_mut(&mut self, expr: &mut Expression) {
        visit_expr_mut(self, expr);
        if let Expression::ForExpr(f) = expr {
            let take = |e: &mut Expression| std::mem::replace(e, Expression::null());
            f.intro.collection_expr = metered(take(&mut f.intro.collection_expr));
            f.value_expr = metered(take(&mut f.value_expr));
            self.changed = true;
        }
    }

    fn visit_for_template_expr_mut(&mut self, node: &mut ForTemplateExpr) {
        hcl_edit::visit_mut::visit_for_template_expr_mut(self, node);
        // What the body interpolates, each iteration; its literal text is
        // charged per element of the collection, up front.
        let mut literal = 0u64;
        for el in node.template.iter_mut() {
            match el {
                Element::Interpolation(i) => {
                    i.expr = metered(std::mem::replace(&mut i.expr, Expression::null()));
                }
                Element::Literal(l) => literal += l.len() as u64,
                Element::Directive(_) => {}
            }
        }
        node.collection_expr = metered_with(
            std::mem::replace(&mut node.collection_expr, Expression::null()),
            1 + literal / 8,
        );
        self.changed = true;
    }
}

/// The identity, charging the value's size to the fuel.
fn cost(args: FuncArgs) -> Result<Value, String> {
    let mut args = args.into_values().into_iter();
    let v = args.next().unwrap_or(Value::Null);
    let per = args.next().and_then(|p| p.as_u64()).unwrap_or(0);
    let count = match &v {
        Value::Array(a) => a.len() as u64,
        Value::Object(o) => o.len() as u64,
        _ => 0,
    };
    let left = LEFT.with(Cell::get).unwrap_or(0);
    spend(size_units(&v, left).saturating_add(count.saturating_mul(per)))?;
    Ok(v)
}

/// Take `units` from the fuel, or fail when there are not that many.
fn spend(units: u64) -> Result<(), String> {
    LEFT.with(|l| {
        let Some(left) = l.get() else {
            return Ok(());
        };
        if units > left {
            l.set(Some(0));
            return Err(TOO_MUCH.to_string());
        }
        l.set(Some(left - units));
        Ok(())
    })
}

const TOO_MUCH: &str =
    "this expression does too much work: its `for` loops went past the limit of the values they may go through";

/// 1 plus the elements, entries and 8-byte blocks of strings of `v`,
/// counted until more than `stop`.
fn size_units(v: &Value, stop: u64) -> u64 {
    let mut units = 1u64;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => units += s.len() as u64 / 8,
            Value::Array(a) => {
                units += a.len() as u64;
                stack.extend(a.iter());
            }
            Value::Object(o) => {
                units += o.len() as u64;
                for (k, x) in o {
                    units += k.len() as u64 / 8;
                    stack.push(x);
                }
            }
            _ => {}
        }
        if units > stop {
            break;
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcl::eval::Evaluate;

    fn eval(src: &str, fuel: u64) -> Result<Value, String> {
        let mut e = hcl_edit::parser::parse_expr(src).map_err(|e| e.to_string())?;
        rewrite(&mut e);
        let mut ctx = Context::new();
        declare(&mut ctx);
        crate::config::functions::declare_all(&mut ctx);
        let _tank = Tank::fill(fuel);
        hcl::Expression::from(e)
            .evaluate(&ctx)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn loops_run_until_the_fuel_is_spent() {
        assert_eq!(
            eval("[for i in [1, 2] : i * 2]", 100).unwrap(),
            Value::from(vec![2, 4])
        );
        assert_eq!(
            eval("\"%{for x in [\"a\", \"b\"]}${x}%{endfor}\"", 100).unwrap(),
            Value::from("ab")
        );
        let e = eval(
            "[for i in range(1000) : [for j in range(1000) : range(100)]]",
            1 << 20,
        )
        .unwrap_err();
        assert!(e.contains("does too much work"), "{e}");
        // Without a tank (not in an evaluation), nothing is charged.
        let mut x = hcl_edit::parser::parse_expr("[for i in range(3) : i]").unwrap();
        rewrite(&mut x);
        let mut ctx = Context::new();
        declare(&mut ctx);
        crate::config::functions::declare_all(&mut ctx);
        assert!(hcl::Expression::from(x).evaluate(&ctx).is_ok());
    }
}
