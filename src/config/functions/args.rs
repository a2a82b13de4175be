//! Argument access and value conversions shared by every function.
//!
//! Owns the checked accessors (`Args::string`, `Args::int`, ...) that turn a
//! wrong argument into a one-line message naming the parameter, and the
//! Terraform-style conversions between primitive types (numbers and bools
//! where strings are expected, numeric strings where numbers are expected).
//! Does not know any function's semantics.

use std::borrow::Cow;
use std::cmp::Ordering;

use hcl::{Map, Number, Value};

/// The largest string a function builds (`format`, `join`, `replace`, ...):
/// a bound so no expression can exhaust memory.
pub(super) const MAX_STRING_BYTES: usize = 64 * 1024 * 1024;

/// Refuse to build a string of `bytes` bytes when it is over the bound.
pub(super) fn check_size(bytes: usize) -> Result<(), String> {
    if bytes > MAX_STRING_BYTES {
        return Err(format!(
            "the result would be larger than {} MiB",
            MAX_STRING_BYTES / (1024 * 1024)
        ));
    }
    Ok(())
}

/// The result every function implementation returns.
pub(super) type FnResult = Result<Value, String>;

/// The arguments of one call, with the signature used to name parameters in
/// error messages.
pub(super) struct Args<'a> {
    values: &'a [Value],
    signature: &'static str,
}

impl<'a> Args<'a> {
    pub(super) fn new(values: &'a [Value], signature: &'static str) -> Args<'a> {
        Args { values, signature }
    }

    /// The function's name, from its signature.
    pub(super) fn name(&self) -> &'static str {
        self.signature
            .split_once('(')
            .map_or(self.signature, |(name, _)| name)
    }

    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    pub(super) fn all(&self) -> &'a [Value] {
        self.values
    }

    /// The raw value at `i` (callers only ask for indexes the arity check
    /// guarantees; a missing one reads as null rather than panicking).
    pub(super) fn get(&self, i: usize) -> &'a Value {
        const NULL: &Value = &Value::Null;
        self.values.get(i).unwrap_or(NULL)
    }

    /// The value at `i`, or `None` when the call has fewer arguments.
    pub(super) fn opt(&self, i: usize) -> Option<&'a Value> {
        self.values.get(i)
    }

    /// The parameter name for position `i`, taken from the signature.
    pub(super) fn param(&self, i: usize) -> String {
        param_name(self.signature, i)
    }

    /// A `which argument` prefix for error messages.
    pub(super) fn at(&self, i: usize) -> String {
        let name = self.param(i);
        if is_variadic(self.signature, i) {
            format!("argument {} (`{name}`)", i + 1)
        } else {
            format!("`{name}`")
        }
    }

    fn not_null(&self, i: usize) -> Result<&'a Value, String> {
        match self.get(i) {
            Value::Null => Err(format!("{} must not be null", self.at(i))),
            v => Ok(v),
        }
    }

    /// A string argument; numbers and bools convert as in Terraform.
    pub(super) fn string(&self, i: usize) -> Result<Cow<'a, str>, String> {
        let v = self.not_null(i)?;
        to_str(v).ok_or_else(|| format!("{} must be a string, found {}", self.at(i), describe(v)))
    }

    /// A number argument; numeric strings convert as in Terraform.
    pub(super) fn number(&self, i: usize) -> Result<Number, String> {
        let v = self.not_null(i)?;
        to_number(v)
            .ok_or_else(|| format!("{} must be a number, found {}", self.at(i), describe(v)))
    }

    /// A whole-number argument that fits in 64 bits.
    pub(super) fn int(&self, i: usize) -> Result<i64, String> {
        let n = self.number(i)?;
        number_to_i64(&n).ok_or_else(|| {
            if is_whole(&n) {
                format!("{} is out of range: {n}", self.at(i))
            } else {
                format!("{} must be a whole number, found {n}", self.at(i))
            }
        })
    }

    /// A list argument (HCL tuples and lists are both arrays).
    pub(super) fn array(&self, i: usize) -> Result<&'a [Value], String> {
        let v = self.not_null(i)?;
        v.as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| format!("{} must be a list, found {}", self.at(i), describe(v)))
    }

    /// A map or object argument.
    pub(super) fn object(&self, i: usize) -> Result<&'a Map<String, Value>, String> {
        let v = self.not_null(i)?;
        v.as_object()
            .ok_or_else(|| format!("{} must be a map, found {}", self.at(i), describe(v)))
    }

    /// A list whose elements are all strings (numbers and bools convert).
    pub(super) fn string_list(&self, i: usize) -> Result<Vec<Cow<'a, str>>, String> {
        let list = self.array(i)?;
        list.iter()
            .enumerate()
            .map(|(j, v)| match v {
                Value::Null => Err(format!("element {j} of {} must not be null", self.at(i))),
                v => to_str(v).ok_or_else(|| {
                    format!(
                        "element {j} of {} must be a string, found {}",
                        self.at(i),
                        describe(v)
                    )
                }),
            })
            .collect()
    }
}

/// The name of parameter `i` in a signature like `join(separator, lists...)`;
/// positions past the end name the last (variadic) parameter.
pub(super) fn param_name(signature: &str, i: usize) -> String {
    let inner = signature
        .split_once('(')
        .map(|(_, rest)| rest.trim_end_matches(')'))
        .unwrap_or("");
    let params: Vec<&str> = inner
        .split(',')
        .map(|p| p.trim().trim_matches(|c| c == '[' || c == ']'))
        .map(|p| p.trim_end_matches("..."))
        .filter(|p| !p.is_empty())
        .collect();
    match params.get(i).or(params.last()) {
        Some(p) => (*p).to_string(),
        None => format!("argument {}", i + 1),
    }
}

/// Whether position `i` falls on the variadic (`name...`) parameter.
fn is_variadic(signature: &str, i: usize) -> bool {
    let params: Vec<&str> = signature
        .split_once('(')
        .map_or("", |(_, rest)| rest.trim_end_matches(')'))
        .split(',')
        .map(str::trim)
        .collect();
    match params.last() {
        Some(last) if last.ends_with("...") => i + 1 >= params.len(),
        _ => false,
    }
}

/// A short description of a value for error messages: its type and, for
/// primitives, a truncated rendering.
pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("bool `{b}`"),
        Value::Number(n) => format!("number `{n}`"),
        Value::String(s) => format!("string {}", quote_truncated(s, 40)),
        Value::Array(a) => format!("a list of {}", elements(a.len())),
        Value::Object(o) => format!("a map of {}", elements(o.len())),
    }
}

/// `1 element`, `3 elements`.
pub(super) fn elements(n: usize) -> String {
    match n {
        1 => "1 element".to_string(),
        n => format!("{n} elements"),
    }
}

/// A JSON-quoted rendering of `s`, shortened to about `max` characters.
pub(super) fn quote_truncated(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        quote(s)
    } else {
        let head: String = s.chars().take(max).collect();
        let quoted = quote(&head);
        format!("{}...\"", &quoted[..quoted.len() - 1])
    }
}

/// `s` as a double-quoted string with JSON escapes.
pub(super) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// A primitive as a string, as Terraform converts it; `None` for null and
/// collections.
pub(super) fn to_str(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A number, or a string that parses as one.
pub(super) fn to_number(v: &Value) -> Option<Number> {
    match v {
        Value::Number(n) => Some(*n),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

/// A bool, or the string `true` or `false`.
pub(super) fn to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

/// Parse a decimal number the way Terraform does: no surrounding spaces,
/// no infinities or NaN; integers keep full 64-bit precision.
pub(super) fn parse_number(s: &str) -> Option<Number> {
    if s.is_empty() || s.trim() != s {
        return None;
    }
    if let Ok(i) = s.parse::<i64>() {
        return Some(Number::from(i));
    }
    if let Ok(u) = s.parse::<u64>() {
        return Some(Number::from(u));
    }
    // Rust accepts `inf`, `nan` and friends; Terraform does not.
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse::<f64>().ok().and_then(Number::from_f64)
}

/// Whether a number has no fractional part.
pub(super) fn is_whole(n: &Number) -> bool {
    !n.is_f64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

/// A whole number that fits in `i64`.
pub(super) fn number_to_i64(n: &Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.is_f64() {
        let f = n.as_f64()?;
        // -2^63 is exact in f64; 2^63 is not representable in i64.
        if f.fract() == 0.0
            && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
        {
            #[allow(clippy::cast_possible_truncation)]
            return Some(f as i64);
        }
    }
    None
}

/// A finite `f64` as a number value.
pub(super) fn float_value(f: f64) -> Result<Value, String> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| "result is not a finite number".to_string())
}

/// Compare two numbers exactly where both are integers.
pub(super) fn cmp_numbers(a: &Number, b: &Number) -> Ordering {
    a.partial_cmp(b).unwrap_or(Ordering::Equal)
}

/// Equality as Terraform sees it for `contains` and `index`: a string equals
/// a number or bool whose string form it is.
pub(super) fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(s), Value::Number(_) | Value::Bool(_)) => to_str(b).is_some_and(|t| t == *s),
        (Value::Number(_) | Value::Bool(_), Value::String(s)) => to_str(a).is_some_and(|t| t == *s),
        _ => a == b,
    }
}

/// Give a collection of primitives one element type, as Terraform's
/// conversion to a list, set or map does: when strings mix with numbers or
/// bools, everything becomes a string; numbers mixed with bools is an error.
/// Nulls and collections are left alone.
pub(super) fn unify_primitives<'v>(
    values: impl IntoIterator<Item = &'v Value>,
) -> Result<bool, String> {
    let (mut strings, mut numbers, mut bools) = (false, false, false);
    for v in values {
        match v {
            Value::String(_) => strings = true,
            Value::Number(_) => numbers = true,
            Value::Bool(_) => bools = true,
            Value::Null => {}
            Value::Array(_) | Value::Object(_) => return Ok(false),
        }
    }
    if strings && (numbers || bools) {
        return Ok(true);
    }
    if numbers && bools {
        return Err(
            "cannot mix numbers and bools in one collection; convert them with `tostring` first"
                .to_string(),
        );
    }
    Ok(false)
}

/// Convert every primitive element to a string (used after
/// [`unify_primitives`] said so).
pub(super) fn stringify(v: &Value) -> Value {
    match to_str(v) {
        Some(s) => Value::String(s.into_owned()),
        None => v.clone(),
    }
}

/// Sort keys of every map inside `v`, recursively (Terraform orders map
/// keys lexically wherever it serializes them).
pub(super) fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(sorted_keys).collect()),
        Value::Object(o) => {
            let mut entries: Vec<(&String, &Value)> = o.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted_keys(v)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}
