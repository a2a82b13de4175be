//! Collection functions: lists, sets and maps.
//!
//! Lists and sets are arrays; a set is an array with duplicates removed and,
//! when every element is a string (or every element a number), sorted, so
//! `toset` gives the same order for the same elements. Maps are objects;
//! `keys` and `values` walk them in lexical key order as Terraform does.
//! Does not convert between primitive types beyond what Terraform's type
//! unification does (strings win over numbers and bools).

use std::cmp::Ordering;
use std::collections::HashSet;

use hcl::{Map, Value};

use super::args::{
    cmp_numbers, describe, elements, loose_eq, quote_truncated, sorted_keys, stringify, to_bool,
    to_str, unify_primitives, Args, FnResult,
};

pub(super) fn length(a: &Args<'_>) -> FnResult {
    let n = match a.get(0) {
        Value::String(s) => s.chars().count(),
        Value::Array(list) => list.len(),
        Value::Object(map) => map.len(),
        other => {
            return Err(format!(
                "{} must be a string, list or map, found {}",
                a.at(0),
                describe(other)
            ))
        }
    };
    Ok(Value::from(n))
}

pub(super) fn lookup(a: &Args<'_>) -> FnResult {
    let map = a.object(0)?;
    let key = a.string(1)?;
    if let Some(v) = map.get(key.as_ref()) {
        return Ok(v.clone());
    }
    if let Some(default) = a.opt(2) {
        return Ok(default.clone());
    }
    // Very short keys are "close" to everything; only suggest for longer ones.
    let suggestion = match key.chars().count() {
        0..=2 => None,
        _ => crate::diagnostics::did_you_mean(&key, map.keys().map(String::as_str)),
    };
    if let Some(close) = suggestion {
        return Err(format!(
            "key {} not found in the map; did you mean {}? (or pass a default as the third argument)",
            quote_truncated(&key, 60),
            quote_truncated(close, 60)
        ));
    }
    Err(format!(
        "key {} not found in the map{}; add it or pass a default as the third argument",
        quote_truncated(&key, 60),
        known_keys(map)
    ))
}

/// `(known keys: "a", "b")` for an error message, shortened for big maps.
fn known_keys(map: &Map<String, Value>) -> String {
    if map.is_empty() {
        return " (the map is empty)".to_string();
    }
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let shown: Vec<String> = keys
        .iter()
        .take(8)
        .map(|k| quote_truncated(k, 30))
        .collect();
    let more = if keys.len() > 8 {
        format!(" and {} more", keys.len() - 8)
    } else {
        String::new()
    };
    format!(" (known keys: {}{more})", shown.join(", "))
}

pub(super) fn concat(a: &Args<'_>) -> FnResult {
    let mut out = Vec::new();
    for i in 0..a.len() {
        out.extend_from_slice(a.array(i)?);
    }
    Ok(Value::Array(out))
}

pub(super) fn merge(a: &Args<'_>) -> FnResult {
    let mut out = Map::new();
    for i in 0..a.len() {
        // Null arguments are skipped, as in Terraform.
        if a.get(i).is_null() {
            continue;
        }
        for (k, v) in a.object(i)? {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(Value::Object(out))
}

/// Entries of a map in lexical key order.
fn sorted_entries(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|x, y| x.0.cmp(y.0));
    entries
}

pub(super) fn keys(a: &Args<'_>) -> FnResult {
    let map = a.object(0)?;
    Ok(Value::Array(
        sorted_entries(map)
            .into_iter()
            .map(|(k, _)| Value::String(k.clone()))
            .collect(),
    ))
}

pub(super) fn values(a: &Args<'_>) -> FnResult {
    let map = a.object(0)?;
    Ok(Value::Array(
        sorted_entries(map)
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect(),
    ))
}

pub(super) fn contains(a: &Args<'_>) -> FnResult {
    let list = a.array(0)?;
    let needle = a.get(1);
    Ok(Value::Bool(list.iter().any(|v| loose_eq(v, needle))))
}

pub(super) fn index(a: &Args<'_>) -> FnResult {
    let list = a.array(0)?;
    let needle = a.get(1);
    match list.iter().position(|v| loose_eq(v, needle)) {
        Some(i) => Ok(Value::from(i)),
        None => Err(format!(
            "{} is not in the list of {}",
            describe(needle),
            elements(list.len())
        )),
    }
}

pub(super) fn element(a: &Args<'_>) -> FnResult {
    let list = a.array(0)?;
    let index = a.int(1)?;
    if list.is_empty() {
        return Err(format!("{} is empty; there is no element to pick", a.at(0)));
    }
    if index < 0 {
        return Err(format!(
            "{} must not be negative, found {index}; use `length(list) - 1` for the last element",
            a.at(1)
        ));
    }
    // index >= 0, so the conversion cannot fail on 64-bit targets.
    let i = usize::try_from(index).unwrap_or(usize::MAX) % list.len();
    Ok(list[i].clone())
}

pub(super) fn distinct(a: &Args<'_>) -> FnResult {
    Ok(Value::Array(dedup(a.array(0)?)))
}

/// Elements in first-seen order without repeats.
fn dedup(list: &[Value]) -> Vec<Value> {
    // Values are not `Hash`; their canonical JSON (keys sorted) is, and two
    // values are equal exactly when it is.
    let mut seen: HashSet<String> = HashSet::with_capacity(list.len());
    let mut out: Vec<Value> = Vec::with_capacity(list.len());
    for v in list {
        let key = serde_json::to_string(&sorted_keys(v)).unwrap_or_default();
        if seen.insert(key) {
            out.push(v.clone());
        }
    }
    out
}

/// Unify the element types of a collection as Terraform's conversions do.
fn unified(list: &[Value], what: &str) -> Result<Vec<Value>, String> {
    let to_strings =
        unify_primitives(list.iter()).map_err(|e| format!("cannot convert to {what}: {e}"))?;
    Ok(if to_strings {
        list.iter().map(stringify).collect()
    } else {
        list.to_vec()
    })
}

/// A set from a list: nulls refused, types unified, duplicates removed,
/// sorted when every element is a string or every element a number.
fn make_set(list: &[Value], at: &str) -> Result<Vec<Value>, String> {
    if let Some(j) = list.iter().position(Value::is_null) {
        return Err(format!(
            "element {j} of {at} is null; sets cannot contain null"
        ));
    }
    let mut set = dedup(&unified(list, "a set")?);
    if set.iter().all(Value::is_string) {
        set.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
    } else if set.iter().all(Value::is_number) {
        set.sort_by(|x, y| match (x, y) {
            (Value::Number(p), Value::Number(q)) => cmp_numbers(p, q),
            _ => Ordering::Equal,
        });
    }
    Ok(set)
}

pub(super) fn toset(a: &Args<'_>) -> FnResult {
    match a.get(0) {
        Value::Null => Ok(Value::Null),
        _ => make_set(a.array(0)?, &a.at(0)).map(Value::Array),
    }
}

pub(super) fn setunion(a: &Args<'_>) -> FnResult {
    let mut all = Vec::new();
    for i in 0..a.len() {
        all.extend_from_slice(a.array(i)?);
    }
    make_set(&all, "the sets").map(Value::Array)
}

pub(super) fn setintersection(a: &Args<'_>) -> FnResult {
    let first = make_set(a.array(0)?, &a.at(0))?;
    let mut others = Vec::new();
    for i in 1..a.len() {
        others.push(make_set(a.array(i)?, &a.at(i))?);
    }
    Ok(Value::Array(
        first
            .into_iter()
            .filter(|v| others.iter().all(|o| o.iter().any(|w| loose_eq(v, w))))
            .collect(),
    ))
}

pub(super) fn setsubtract(a: &Args<'_>) -> FnResult {
    let first = make_set(a.array(0)?, &a.at(0))?;
    let second = make_set(a.array(1)?, &a.at(1))?;
    Ok(Value::Array(
        first
            .into_iter()
            .filter(|v| !second.iter().any(|w| loose_eq(v, w)))
            .collect(),
    ))
}

pub(super) fn alltrue(a: &Args<'_>) -> FnResult {
    bools(a).map(|b| Value::Bool(b.iter().all(|x| *x)))
}

pub(super) fn anytrue(a: &Args<'_>) -> FnResult {
    bools(a).map(|b| Value::Bool(b.iter().any(|x| *x)))
}

/// The list argument as bools (`"true"` and `"false"` convert).
fn bools(a: &Args<'_>) -> Result<Vec<bool>, String> {
    a.array(0)?
        .iter()
        .enumerate()
        .map(|(j, v)| {
            to_bool(v).ok_or_else(|| {
                format!(
                    "element {j} of {} must be a bool, found {}",
                    a.at(0),
                    describe(v)
                )
            })
        })
        .collect()
}

pub(super) fn one(a: &Args<'_>) -> FnResult {
    match a.get(0) {
        Value::Null => Ok(Value::Null),
        _ => match a.array(0)? {
            [] => Ok(Value::Null),
            [only] => Ok(only.clone()),
            many => Err(format!(
                "{} must have at most one element, found {}",
                a.at(0),
                many.len()
            )),
        },
    }
}

pub(super) fn chunklist(a: &Args<'_>) -> FnResult {
    let list = a.array(0)?;
    let size = a.int(1)?;
    if size < 0 {
        return Err(format!("{} must not be negative, found {size}", a.at(1)));
    }
    if size == 0 {
        // Terraform: a size of zero puts everything in one chunk.
        return Ok(Value::Array(vec![Value::Array(list.to_vec())]));
    }
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    Ok(Value::Array(
        list.chunks(size)
            .map(|c| Value::Array(c.to_vec()))
            .collect(),
    ))
}

pub(super) fn tolist(a: &Args<'_>) -> FnResult {
    match a.get(0) {
        Value::Null => Ok(Value::Null),
        _ => Ok(Value::Array(unified(a.array(0)?, "a list")?)),
    }
}

pub(super) fn tomap(a: &Args<'_>) -> FnResult {
    match a.get(0) {
        Value::Null => Ok(Value::Null),
        _ => {
            let map = a.object(0)?;
            let to_strings = unify_primitives(map.values())
                .map_err(|e| format!("cannot convert to a map: {e}"))?;
            Ok(Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), if to_strings { stringify(v) } else { v.clone() }))
                    .collect(),
            ))
        }
    }
}

pub(super) fn flatten(a: &Args<'_>) -> FnResult {
    fn walk(list: &[Value], out: &mut Vec<Value>) {
        for v in list {
            match v {
                Value::Array(inner) => walk(inner, out),
                other => out.push(other.clone()),
            }
        }
    }
    let mut out = Vec::new();
    walk(a.array(0)?, &mut out);
    Ok(Value::Array(out))
}

pub(super) fn coalesce(a: &Args<'_>) -> FnResult {
    a.all()
        .iter()
        .find(|v| !matches!(v, Value::Null) && !matches!(v, Value::String(s) if s.is_empty()))
        .cloned()
        .ok_or_else(|| {
            "every argument is null or an empty string; pass at least one value".to_string()
        })
}

pub(super) fn compact(a: &Args<'_>) -> FnResult {
    let list = a.array(0)?;
    let mut out = Vec::with_capacity(list.len());
    for (j, v) in list.iter().enumerate() {
        if v.is_null() {
            continue;
        }
        let s = to_str(v).ok_or_else(|| {
            format!(
                "element {j} of {} must be a string, found {}",
                a.at(0),
                describe(v)
            )
        })?;
        if !s.is_empty() {
            out.push(Value::String(s.into_owned()));
        }
    }
    Ok(Value::Array(out))
}

pub(super) fn sort(a: &Args<'_>) -> FnResult {
    // Terraform sorts a list of strings lexically (numbers as their strings).
    let mut strings = a.string_list(0)?;
    strings.sort();
    Ok(Value::Array(
        strings
            .into_iter()
            .map(|s| Value::String(s.into_owned()))
            .collect(),
    ))
}

pub(super) fn reverse(a: &Args<'_>) -> FnResult {
    let mut list = a.array(0)?.to_vec();
    list.reverse();
    Ok(Value::Array(list))
}

pub(super) fn slice(a: &Args<'_>) -> FnResult {
    let list = a.array(0)?;
    let start = a.int(1)?;
    let end = a.int(2)?;
    let len = list.len() as i64;
    if start < 0 {
        return Err(format!("{} must not be negative, found {start}", a.at(1)));
    }
    if end > len {
        return Err(format!(
            "{} {end} is past the end of the list of {}",
            a.at(2),
            elements(list.len())
        ));
    }
    if start > end {
        return Err(format!(
            "{} {start} is greater than {} {end}",
            a.at(1),
            a.at(2)
        ));
    }
    // 0 <= start <= end <= len, so these conversions and the slice are in bounds.
    let (s, e) = (start as usize, end as usize);
    Ok(Value::Array(list.get(s..e).unwrap_or_default().to_vec()))
}

pub(super) fn zipmap(a: &Args<'_>) -> FnResult {
    let keys = a.string_list(0)?;
    let values = a.array(1)?;
    if keys.len() != values.len() {
        return Err(format!(
            "{} has {} but {} has {}; they must have the same length",
            a.at(0),
            elements(keys.len()),
            a.at(1),
            elements(values.len())
        ));
    }
    let mut out = Map::new();
    // A repeated key keeps its last value, as in Terraform.
    for (k, v) in keys.into_iter().zip(values) {
        out.insert(k.into_owned(), v.clone());
    }
    Ok(Value::Object(out))
}
