//! How large a value is - list elements and map entries, bytes of strings
//! (keys included), depth of nesting - checked against [`Limits`] after
//! every evaluation, so no testbed makes a value that exhausts memory (a
//! local that doubles at each step) or the stack (a chain of nested locals
//! deeper than anything reads).
//!
//! Sizes of locals are kept, so a value built from them is measured from
//! its parts, not walked again.

use hcl::Value;

use crate::config::Limits;

/// The most levels of lists and maps one value may nest. Not configurable:
/// deeper values would overflow the stack of code that walks them.
pub const MAX_DEPTH: usize = 1024;

/// The size of one value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Size {
    pub elements: usize,
    pub bytes: usize,
    pub depth: usize,
}

impl Size {
    /// The size of a string.
    pub fn of_str(s: &str) -> Size {
        Size {
            bytes: s.len(),
            ..Size::default()
        }
    }

    /// The size of a list or map of `n` entries with `key_bytes` bytes of
    /// keys, holding values of the sizes `parts`.
    pub fn of_collection(
        n: usize,
        key_bytes: usize,
        parts: impl IntoIterator<Item = Size>,
    ) -> Size {
        let mut s = Size {
            elements: n,
            bytes: key_bytes,
            depth: 0,
        };
        for p in parts {
            s.elements = s.elements.saturating_add(p.elements);
            s.bytes = s.bytes.saturating_add(p.bytes);
            s.depth = s.depth.max(p.depth);
        }
        s.depth += 1;
        s
    }

    /// What passes a limit, said for a message, or `None`.
    pub fn over(&self, limits: &Limits) -> Option<String> {
        if self.elements > limits.max_value_elements {
            Some(format!(
                "more than {} list elements and map entries",
                limits.max_value_elements
            ))
        } else if self.bytes > limits.max_value_bytes {
            Some(format!(
                "more than {} MiB of strings",
                limits.max_value_bytes >> 20
            ))
        } else if self.depth > MAX_DEPTH {
            Some(format!(
                "lists and maps nested more than {MAX_DEPTH} levels deep"
            ))
        } else {
            None
        }
    }
}

/// Measure `v`, walking it without recursion; stops (with what is over)
/// as soon as a limit is passed.
pub(crate) fn measure(v: &Value, limits: &Limits) -> Result<Size, String> {
    let mut size = Size::default();
    let mut stack = vec![(v, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::String(s) => size.bytes = size.bytes.saturating_add(s.len()),
            Value::Array(a) => {
                size.elements = size.elements.saturating_add(a.len());
                size.depth = size.depth.max(depth + 1);
                if size.over(limits).is_none() {
                    stack.extend(a.iter().map(|x| (x, depth + 1)));
                }
            }
            Value::Object(o) => {
                size.elements = size.elements.saturating_add(o.len());
                size.depth = size.depth.max(depth + 1);
                if size.over(limits).is_none() {
                    for (k, x) in o {
                        size.bytes = size.bytes.saturating_add(k.len());
                        stack.push((x, depth + 1));
                    }
                }
            }
            _ => {}
        }
        if let Some(what) = size.over(limits) {
            return Err(what);
        }
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str, expect: &str) {
        let v: Value = hcl::eval::Evaluate::evaluate(
            &hcl::Expression::from(hcl_edit::parser::parse_expr(src).unwrap()),
            &hcl::eval::Context::new(),
        )
        .unwrap();
        let limits = Limits {
            max_instances: 10,
            max_value_elements: 4,
            max_value_bytes: 8,
        };
        let got = match measure(&v, &limits) {
            Ok(s) => format!(
                "{} elements, {} bytes, depth {}",
                s.elements, s.bytes, s.depth
            ),
            Err(e) => format!("over: {e}"),
        };
        assert_eq!(got, expect, "{src}");
    }

    #[test]
    fn sizes() {
        check("1", "0 elements, 0 bytes, depth 0");
        check("\"abc\"", "0 elements, 3 bytes, depth 0");
        check("[1, 2]", "2 elements, 0 bytes, depth 1");
        check("{ ab = [\"c\"] }", "2 elements, 3 bytes, depth 2");
        check(
            "[1, 2, 3, 4, 5]",
            "over: more than 4 list elements and map entries",
        );
        check("\"123456789\"", "over: more than 0 MiB of strings");
        let deep = format!("{}1{}", "[".repeat(3), "]".repeat(3));
        check(&deep, "3 elements, 0 bytes, depth 3");
    }

    #[test]
    fn sizes_add_up_from_parts() {
        let part = Size {
            elements: 2,
            bytes: 3,
            depth: 2,
        };
        assert_eq!(
            Size::of_collection(2, 4, [part, Size::of_str("ab")]),
            Size {
                elements: 4,
                bytes: 9,
                depth: 3
            }
        );
    }
}
