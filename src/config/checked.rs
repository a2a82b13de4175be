//! Checked arithmetic for testbed expressions.
//!
//! hcl-rs evaluates `+ - * / %` with the number type of hcl-primitives,
//! which panics on `x % 0` and `i64::MIN % -1` (always) and on integer
//! overflow and infinite results (debug builds). A testbed must never crash
//! tg, so before evaluation every arithmetic operation of an expression
//! (templates included) is rewritten into a call of one of the functions
//! declared here, which compute the same values with checks and return an
//! error instead. Comparison and logic operators are left to hcl-rs.
//!
//! The function names are not in [`super::functions::NAMES`], so a testbed
//! cannot call them: reference checks reject them as unknown functions.

use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::{Number, Value};
use hcl_edit::expr::{BinaryOperator, Expression, FuncArgs as EditArgs, FuncCall};
use hcl_edit::visit_mut::{visit_expr_mut, VisitMut};
use hcl_edit::Ident;

const ADD: &str = "tg_checked_add";
const SUB: &str = "tg_checked_sub";
const MUL: &str = "tg_checked_mul";
const DIV: &str = "tg_checked_div";
const MOD: &str = "tg_checked_mod";

/// Is `name` one of the internal arithmetic functions?
pub fn is_internal(name: &str) -> bool {
    [ADD, SUB, MUL, DIV, MOD].contains(&name)
}

/// Rewrite every arithmetic operation of `expr` into a checked call.
pub fn rewrite(expr: &mut Expression) {
    Rewriter.visit_expr_mut(expr);
}

/// Declare the checked arithmetic functions in `ctx`.
pub fn declare(ctx: &mut Context<'_>) {
    for (name, f) in [
        (ADD, add as hcl::eval::Func),
        (SUB, sub),
        (MUL, mul),
        (DIV, div),
        (MOD, rem),
    ] {
        ctx.declare_func(
            name,
            FuncDef::builder()
                .param(ParamType::Any)
                .param(ParamType::Any)
                .build(f),
        );
    }
}

struct Rewriter;

impl VisitMut for Rewriter {
    fn visit_expr_mut(&mut self, expr: &mut Expression) {
        visit_expr_mut(self, expr);
        let name = match expr {
            Expression::BinaryOp(op) => match op.operator.value() {
                BinaryOperator::Plus => ADD,
                BinaryOperator::Minus => SUB,
                BinaryOperator::Mul => MUL,
                BinaryOperator::Div => DIV,
                BinaryOperator::Mod => MOD,
                _ => return,
            },
            _ => return,
        };
        let Expression::BinaryOp(op) = std::mem::replace(expr, Expression::null()) else {
            return;
        };
        let op = *op;
        let mut args = EditArgs::new();
        args.push(op.lhs_expr);
        args.push(op.rhs_expr);
        *expr = Expression::FuncCall(Box::new(FuncCall::new(Ident::new(name), args)));
    }
}

/// The two numbers of an operation, or why not.
fn operands(args: &FuncArgs, op: &str) -> Result<(Number, Number), String> {
    match (&args[0], &args[1]) {
        (Value::Number(a), Value::Number(b)) => Ok((*a, *b)),
        (a, b) => Err(format!(
            "`{op}` cannot combine {} and {}",
            super::types::describe(a),
            super::types::describe(b)
        )),
    }
}

/// An integer operand, exactly.
fn int(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
        .filter(|_| !n.is_f64())
}

fn from_int(v: i128) -> Option<Value> {
    if let Ok(i) = i64::try_from(v) {
        return Some(Value::from(i));
    }
    if let Ok(u) = u64::try_from(v) {
        return Some(Value::from(u));
    }
    None
}

fn from_float(v: f64, op: &str) -> Result<Value, String> {
    Number::from_f64(v)
        .map(Value::Number)
        .ok_or_else(|| format!("the result of `{op}` is too large to be a number"))
}

/// Integers exactly when the result fits 64 bits, else floating point.
fn arith(
    args: FuncArgs,
    op: &str,
    exact: fn(i128, i128) -> Option<i128>,
    float: fn(f64, f64) -> f64,
) -> Result<Value, String> {
    let (a, b) = operands(&args, op)?;
    if let (Some(x), Some(y)) = (int(&a), int(&b)) {
        if let Some(v) = exact(x, y).and_then(from_int) {
            return Ok(v);
        }
    }
    let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
    from_float(float(x, y), op)
}

fn add(args: FuncArgs) -> Result<Value, String> {
    arith(args, "+", i128::checked_add, |x, y| x + y)
}

fn sub(args: FuncArgs) -> Result<Value, String> {
    arith(args, "-", i128::checked_sub, |x, y| x - y)
}

fn mul(args: FuncArgs) -> Result<Value, String> {
    arith(args, "*", i128::checked_mul, |x, y| x * y)
}

fn div(args: FuncArgs) -> Result<Value, String> {
    let (a, b) = operands(&args, "/")?;
    let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
    if y == 0.0 {
        return Err("division by zero".into());
    }
    from_float(x / y, "/")
}

fn rem(args: FuncArgs) -> Result<Value, String> {
    let (_, b) = operands(&args, "%")?;
    if b.as_f64() == Some(0.0) {
        return Err("remainder (`%`) of a division by zero".into());
    }
    arith(args, "%", i128::checked_rem, |x, y| x % y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcl::eval::Evaluate;

    fn eval(src: &str) -> Result<Value, String> {
        let mut e = hcl_edit::parser::parse_expr(src).map_err(|e| e.to_string())?;
        rewrite(&mut e);
        let mut ctx = Context::new();
        declare(&mut ctx);
        hcl::Expression::from(e)
            .evaluate(&ctx)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn same_values_as_hcl() {
        assert_eq!(eval("1 + 2 * 3").unwrap(), Value::from(7));
        assert_eq!(eval("(1 + 2) * 3").unwrap(), Value::from(9));
        assert_eq!(eval("7 % 3").unwrap(), Value::from(1));
        assert_eq!(eval("-7 % 3").unwrap(), Value::from(-1));
        assert_eq!(eval("1 - 3").unwrap(), Value::from(-2));
        assert_eq!(eval("7 / 2").unwrap(), Value::from(3.5));
        assert_eq!(eval("1.5 + 1").unwrap(), Value::from(2.5));
        assert_eq!(eval("\"n-${1 + 1}\"").unwrap(), Value::from("n-2"));
        assert_eq!(
            eval("[for i in [1, 2] : i * 10]").unwrap(),
            Value::from(vec![10, 20])
        );
        assert_eq!(eval("1 + 1 == 2").unwrap(), Value::from(true));
    }

    #[test]
    fn errors_instead_of_panics() {
        assert!(eval("5 % 0").is_err());
        assert!(eval("5.5 % 0").is_err());
        assert!(eval("5 / 0").is_err());
        assert!(eval("-9223372036854775808 % -1").is_ok());
        assert!(eval("18446744073709551615 + 18446744073709551615").is_ok());
        assert!(eval("9223372036854775807 * 9223372036854775807 * 9223372036854775807").is_ok());
        assert!(eval("1e308 * 10").is_err());
        assert!(eval("\"${10 % 0}\"").is_err());
        assert!(eval("\"a\" + 1").is_err());
    }
}
