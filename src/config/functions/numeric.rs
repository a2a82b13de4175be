//! Numeric functions: `abs`, `ceil`, `floor`, `min`, `max`, `sum`, `range`,
//! `tonumber`.
//!
//! Integers stay exact (64-bit, widened to 128 bits where sums or ranges
//! need it); anything else is `f64`. No result can be infinite or NaN, and
//! `range` refuses to build more than [`RANGE_MAX`] elements.

use hcl::{Number, Value};

use super::args::{cmp_numbers, describe, float_value, parse_number, to_number, Args, FnResult};

/// The most elements `range` produces.
pub(super) const RANGE_MAX: usize = 1_024_000;

pub(super) fn abs(a: &Args<'_>) -> FnResult {
    let n = a.number(0)?;
    if let Some(u) = n.as_u64() {
        return Ok(Value::from(u));
    }
    if let Some(i) = n.as_i64() {
        return Ok(Value::from(i.unsigned_abs()));
    }
    float_value(n.as_f64().unwrap_or(0.0).abs())
}

pub(super) fn ceil(a: &Args<'_>) -> FnResult {
    let n = a.number(0)?;
    if !n.is_f64() {
        return Ok(Value::Number(n));
    }
    float_value(n.as_f64().unwrap_or(0.0).ceil())
}

pub(super) fn floor(a: &Args<'_>) -> FnResult {
    let n = a.number(0)?;
    if !n.is_f64() {
        return Ok(Value::Number(n));
    }
    float_value(n.as_f64().unwrap_or(0.0).floor())
}

/// Every argument as a number.
fn numbers(a: &Args<'_>) -> Result<Vec<Number>, String> {
    (0..a.len())
        .map(|i| {
            a.number(i).map_err(|e| match a.get(i) {
                Value::Array(_) => format!(
                    "{e}; expand a list into arguments with `...`, as in `{}(list...)`",
                    a.name()
                ),
                _ => e,
            })
        })
        .collect()
}

pub(super) fn min(a: &Args<'_>) -> FnResult {
    numbers(a)?
        .into_iter()
        .min_by(cmp_numbers)
        .map(Value::Number)
        .ok_or_else(|| "expected at least one number".to_string())
}

pub(super) fn max(a: &Args<'_>) -> FnResult {
    numbers(a)?
        .into_iter()
        .max_by(cmp_numbers)
        .map(Value::Number)
        .ok_or_else(|| "expected at least one number".to_string())
}

pub(super) fn sum(a: &Args<'_>) -> FnResult {
    let list = a.array(0)?;
    if list.is_empty() {
        return Err(format!("{} is empty; there is nothing to sum", a.at(0)));
    }
    let mut int: Option<i128> = Some(0);
    let mut float = 0.0f64;
    for (j, v) in list.iter().enumerate() {
        let n = to_number(v).ok_or_else(|| {
            format!(
                "element {j} of {} must be a number, found {}",
                a.at(0),
                describe(v)
            )
        })?;
        float += n.as_f64().unwrap_or(0.0);
        int = match (int, n.as_i64(), n.as_u64()) {
            (Some(acc), Some(i), _) => acc.checked_add(i128::from(i)),
            (Some(acc), None, Some(u)) => acc.checked_add(i128::from(u)),
            _ => None,
        };
    }
    match int {
        Some(i) => int_value(i).map_or_else(|| float_value(float), Ok),
        None => float_value(float),
    }
}

/// An exact integer as a value, if it fits in 64 bits.
fn int_value(i: i128) -> Option<Value> {
    if let Ok(i) = i64::try_from(i) {
        return Some(Value::from(i));
    }
    u64::try_from(i).ok().map(Value::from)
}

pub(super) fn tonumber(a: &Args<'_>) -> FnResult {
    match a.get(0) {
        Value::Null => Ok(Value::Null),
        Value::Number(n) => Ok(Value::Number(*n)),
        Value::String(s) => parse_number(s).map(Value::Number).ok_or_else(|| {
            format!(
                "cannot convert {} to a number",
                super::args::quote_truncated(s, 40)
            )
        }),
        other => Err(format!("cannot convert {} to a number", describe(other))),
    }
}

pub(super) fn range(a: &Args<'_>) -> FnResult {
    let (start, limit) = match a.len() {
        1 => (
            Number::from(0),
            a.number(0)
                .map_err(|e| e.replacen("`start`", "`limit`", 1))?,
        ),
        _ => (a.number(0)?, a.number(1)?),
    };
    let step = match a.opt(2) {
        Some(_) => a.number(2)?,
        None if cmp_numbers(&start, &limit).is_gt() => Number::from(-1),
        None => Number::from(1),
    };
    let step_index = 2;

    // Exact integer arithmetic when every bound is an integer.
    if let (Some(s), Some(l), Some(st)) = (as_i128(&start), as_i128(&limit), as_i128(&step)) {
        if st == 0 {
            return Err(format!("{} must not be zero", a.at(step_index)));
        }
        check_direction(st > 0, s, l)?;
        // Element count: ceil((l - s) / st), all within i128 for 64-bit inputs.
        let span = (l - s).abs();
        let stride = st.abs();
        let count = (span + stride - 1) / stride;
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        too_many(count)?;
        return Ok(Value::Array(
            (0..count)
                .filter_map(|k| int_value(s + st * k as i128))
                .collect(),
        ));
    }

    let (s, l, st) = (
        start.as_f64().unwrap_or(0.0),
        limit.as_f64().unwrap_or(0.0),
        step.as_f64().unwrap_or(0.0),
    );
    if st == 0.0 {
        return Err(format!("{} must not be zero", a.at(step_index)));
    }
    check_direction(st > 0.0, s, l)?;
    let count = ((l - s) / st).ceil();
    if !count.is_finite() || count > RANGE_MAX as f64 {
        too_many(usize::MAX)?;
    }
    // 0 <= count <= RANGE_MAX here.
    let count = count.max(0.0) as usize;
    (0..count)
        .map(|k| float_value(s + st * k as f64))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn check_direction<T: PartialOrd + std::fmt::Display>(
    up: bool,
    start: T,
    limit: T,
) -> Result<(), String> {
    if up && limit < start {
        return Err(format!(
            "`limit` {limit} is less than `start` {start} but the step is positive; use a negative step to count down"
        ));
    }
    if !up && limit > start {
        return Err(format!(
            "`limit` {limit} is greater than `start` {start} but the step is negative; use a positive step to count up"
        ));
    }
    Ok(())
}

fn too_many(count: usize) -> Result<(), String> {
    if count > RANGE_MAX {
        return Err(format!(
            "the range would have more than {RANGE_MAX} elements; narrow start and limit or use a larger step"
        ));
    }
    Ok(())
}
