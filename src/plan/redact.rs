//! What the plan renderers must not show as written: sensitive values
//! (hidden at the dotted paths a change carries, see
//! [`super::ResourceChange::sensitive`]) and characters that would change
//! how a terminal or a pull request shows the text around them (control and
//! bidirectional formatting characters, escaped as `\u{202E}`).
//!
//! Pure functions on JSON values and strings; the renderers decide where.

use serde_json::{Map, Value};

/// What a hidden value is shown as.
pub const SENSITIVE: &str = "(sensitive value)";

/// Is the attribute at dotted `path` sensitive under `paths` (itself, or a
/// part of a sensitive value)? An empty path in `paths` covers everything.
pub fn covers(paths: &[String], path: &str) -> bool {
    paths.iter().any(|p| {
        p.is_empty()
            || path == p
            || (path.len() > p.len()
                && path.starts_with(p.as_str())
                && path.as_bytes()[p.len()] == b'.')
    })
}

/// Does any of `paths` lie at or under `path` (so a value there holds
/// something sensitive)?
fn holds(paths: &[String], path: &str) -> bool {
    paths.iter().any(|p| {
        p.is_empty()
            || p == path
            || (p.len() > path.len() && p.starts_with(path) && p.as_bytes()[path.len()] == b'.')
    })
}

/// `attrs` with every sensitive value replaced by `hidden`.
pub fn mask(attrs: &Map<String, Value>, paths: &[String], hidden: &Value) -> Map<String, Value> {
    if paths.is_empty() {
        return attrs.clone();
    }
    attrs
        .iter()
        .map(|(k, v)| (k.clone(), mask_value(v, k, paths, hidden)))
        .collect()
}

fn mask_value(v: &Value, path: &str, paths: &[String], hidden: &Value) -> Value {
    if covers(paths, path) {
        return hidden.clone();
    }
    if !holds(paths, path) {
        return v.clone();
    }
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        mask_value(x, &format!("{path}.{k}"), paths, hidden),
                    )
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| mask_value(x, &format!("{path}.{i}"), paths, hidden))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Terraform's `before_sensitive`/`after_sensitive`: `false` for no value,
/// else an object shaped like `attrs` holding `true` at each sensitive
/// value (and nothing for the others).
pub fn sensitive_tree(attrs: Option<&Map<String, Value>>, paths: &[String]) -> Value {
    let Some(attrs) = attrs else {
        return Value::Bool(false);
    };
    let mut out = Map::new();
    for (k, v) in attrs {
        if let Some(t) = tree(v, k, paths) {
            out.insert(k.clone(), t);
        }
    }
    Value::Object(out)
}

fn tree(v: &Value, path: &str, paths: &[String]) -> Option<Value> {
    if covers(paths, path) {
        return Some(Value::Bool(true));
    }
    if !holds(paths, path) {
        return None;
    }
    match v {
        Value::Object(o) => {
            let m: Map<String, Value> = o
                .iter()
                .filter_map(|(k, x)| Some((k.clone(), tree(x, &format!("{path}.{k}"), paths)?)))
                .collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        Value::Array(a) => {
            let items: Vec<Value> = a
                .iter()
                .enumerate()
                .map(|(i, x)| tree(x, &format!("{path}.{i}"), paths).unwrap_or(Value::Bool(false)))
                .collect();
            items
                .iter()
                .any(|x| x != &Value::Bool(false))
                .then_some(Value::Array(items))
        }
        _ => None,
    }
}

/// Characters escaped wherever user text reaches a rendered plan: control
/// characters (an escape sequence would recolour or move the cursor),
/// bidirectional formatting characters (they reorder the line: "Trojan
/// Source"), line and paragraph separators and zero-width characters.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || crate::names::is_bidi_control(c)
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
        )
}

/// `s` with every [`is_unsafe`] character but `keep` written as `\u{…}`.
pub fn escape<'a>(s: &'a str, keep: &[char]) -> std::borrow::Cow<'a, str> {
    if !s.chars().any(|c| is_unsafe(c) && !keep.contains(&c)) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if is_unsafe(c) && !keep.contains(&c) {
                format!("\\u{{{:04X}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn masks_at_paths() {
        let attrs =
            json!({"labels": {"pw": "s3cr3t", "role": "edge"}, "image": "host", "memory_mib": 512});
        let attrs = attrs.as_object().unwrap();
        let hidden = json!(SENSITIVE);
        let m = mask(attrs, &paths(&["labels.pw", "memory_mib"]), &hidden);
        assert_eq!(
            Value::Object(m),
            json!({"labels": {"pw": SENSITIVE, "role": "edge"}, "image": "host", "memory_mib": SENSITIVE})
        );
        assert_eq!(
            sensitive_tree(Some(attrs), &paths(&["labels.pw"])),
            json!({"labels": {"pw": true}})
        );
        assert_eq!(sensitive_tree(Some(attrs), &[]), json!({}));
        assert_eq!(sensitive_tree(None, &paths(&["image"])), json!(false));
        assert_eq!(
            Value::Object(mask(attrs, &paths(&[""]), &hidden))["image"],
            hidden
        );
        // `labels.p` is not `labels.pw`.
        assert!(!covers(&paths(&["labels.p"]), "labels.pw"));
        assert!(covers(&paths(&["labels"]), "labels.pw"));
    }

    #[test]
    fn escapes_what_would_change_the_display() {
        assert_eq!(escape("admin\u{202E}x", &[]), "admin\\u{202E}x");
        assert_eq!(escape("a\u{1b}[31mb", &[]), "a\\u{001B}[31mb");
        assert_eq!(escape("a\nb\tc", &['\n', '\t']), "a\nb\tc");
        assert_eq!(escape("plain é", &[]), "plain é");
    }
}
