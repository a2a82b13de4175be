//! Encoding and conversion to strings: `jsonencode`, `jsondecode`,
//! `tostring`.
//!
//! `jsonencode` writes map keys in lexical order, as Terraform does, so the
//! same value always encodes to the same text. `jsondecode` is bounded by
//! serde_json's nesting limit and rejects numbers outside `f64`. Does not
//! handle YAML or base64.

use hcl::Value;

use super::args::{describe, quote_truncated, sorted_keys, to_str, Args, FnResult};

pub(super) fn jsonencode(a: &Args<'_>) -> FnResult {
    serde_json::to_string(&sorted_keys(a.get(0)))
        .map(Value::String)
        .map_err(|e| format!("cannot encode {} as json: {e}", a.at(0)))
}

pub(super) fn jsondecode(a: &Args<'_>) -> FnResult {
    let text = a.string(0)?;
    serde_json::from_str::<Value>(&text).map_err(|e| {
        format!(
            "{} is not valid json ({e}): {}",
            a.at(0),
            quote_truncated(&text, 40)
        )
    })
}

pub(super) fn tostring(a: &Args<'_>) -> FnResult {
    match a.get(0) {
        Value::Null => Ok(Value::Null),
        v => to_str(v)
            .map(|s| Value::String(s.into_owned()))
            .ok_or_else(|| {
                format!(
                    "cannot convert {} to a string; use `jsonencode` to serialize collections",
                    describe(v)
                )
            }),
    }
}
