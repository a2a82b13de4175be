//! Structural expressions - literals, lists, objects with constant keys and
//! references to variables and locals that resolve completely
//! (`{ prev = local.a, n = 2 }`, `[local.a, local.a]`, `local.cfg.port`) -
//! are built here directly, moving values where `resolve` allows and adding
//! up sizes from the parts, instead of going through hcl-rs (which copies
//! every value it reads). A chain of locals built this way costs time in
//! proportion to its length, not to its length squared.
//!
//! Anything else (an operator, a function call, a template, a `for`) is
//! hcl-rs's to evaluate (`expressions`).

use hcl::Value;
use hcl_edit::expr::{Expression as E, ObjectKey};

use super::resolve::{follow, static_steps, Base, Step};
use super::size::{measure, Size};
use super::{Evaluator, Repetition};

impl Evaluator<'_> {
    /// `e` evaluated directly, with its size, when it is structural and
    /// every reference in it resolves; `None` (having changed nothing)
    /// otherwise.
    pub(super) fn eval_structural(&mut self, e: &E, rep: &Repetition) -> Option<(Value, Size)> {
        if !self.structural(e, rep) {
            return None;
        }
        Some(self.build(e, rep))
    }

    /// Is `e` structural, with every reference resolving to a value?
    fn structural(&self, e: &E, rep: &Repetition) -> bool {
        match e {
            E::Null(_) | E::Bool(_) | E::Number(_) | E::String(_) => true,
            E::Parenthesis(p) => self.structural(p.inner(), rep),
            E::Array(a) => a.iter().all(|x| self.structural(x, rep)),
            E::Object(o) => {
                let mut keys = std::collections::HashSet::new();
                o.iter().all(|(k, v)| {
                    key_name(k).is_some_and(|k| keys.insert(k)) && self.structural(v.expr(), rep)
                })
            }
            E::Traversal(t) => {
                let E::Variable(root) = &t.expr else {
                    return false;
                };
                let steps = static_steps(&t.operators, rep, &[]);
                steps.len() == t.operators.len() && self.reaches(root.as_str(), &steps)
            }
            _ => false,
        }
    }

    /// Does `root.steps` lead to a value?
    fn reaches(&self, root: &str, steps: &[Step]) -> bool {
        let Some(Step::Key(name)) = steps.first() else {
            return false;
        };
        let base = match root {
            "var" => self.var_values.get(name),
            "local" => self.local_values.get(name),
            _ => None,
        };
        let Some(mut v) = base else { return false };
        for s in &steps[1..] {
            let next = match (s, v) {
                (Step::Key(k), Value::Object(o)) => o.get(k),
                (Step::Index(i), Value::Array(a)) => a.get(*i as usize),
                _ => None,
            };
            match next {
                Some(n) => v = n,
                None => return false,
            }
        }
        true
    }

    /// Build a structural expression (checked with [`Self::structural`]).
    fn build(&mut self, e: &E, rep: &Repetition) -> (Value, Size) {
        match e {
            E::Null(_) => (Value::Null, Size::default()),
            E::Bool(b) => (Value::Bool(*b.value()), Size::default()),
            E::Number(n) => (Value::Number(*n.value()), Size::default()),
            E::String(s) => (Value::String(s.value().clone()), Size::of_str(s.value())),
            E::Parenthesis(p) => self.build(p.inner(), rep),
            E::Array(a) => {
                let mut items = Vec::with_capacity(a.len());
                let mut sizes = Vec::with_capacity(a.len());
                for x in a.iter() {
                    let (v, s) = self.build(x, rep);
                    items.push(v);
                    sizes.push(s);
                }
                (
                    Value::Array(items),
                    Size::of_collection(sizes.len(), 0, sizes),
                )
            }
            E::Object(o) => {
                let mut m = hcl::Map::new();
                let mut sizes = Vec::with_capacity(o.len());
                let mut key_bytes = 0;
                for (k, v) in o.iter() {
                    let key = key_name(k).unwrap_or_default();
                    let (v, s) = self.build(v.expr(), rep);
                    key_bytes += key.len();
                    sizes.push(s);
                    m.insert(key, v);
                }
                (
                    Value::Object(m),
                    Size::of_collection(sizes.len(), key_bytes, sizes),
                )
            }
            E::Traversal(t) => {
                let root = match &t.expr {
                    E::Variable(r) => r.as_str(),
                    _ => "",
                };
                let steps = static_steps(&t.operators, rep, &[]);
                self.build_reference(root, &steps)
            }
            _ => (Value::Null, Size::default()),
        }
    }

    /// The value `root.steps` reaches (checked with [`Self::reaches`]):
    /// a local's last use is moved, and a whole local's size is known.
    fn build_reference(&mut self, root: &str, steps: &[Step]) -> (Value, Size) {
        let Some(Step::Key(name)) = steps.first() else {
            return (Value::Null, Size::default());
        };
        let whole = steps.len() == 1;
        let base = match root {
            "local" if self.take_local_use(name) => {
                self.local_values.swap_remove(name).map(Base::Owned)
            }
            "local" => self.local_values.get(name).map(Base::Borrowed),
            _ => self.var_values.get(name).map(Base::Borrowed),
        };
        let Some(base) = base else {
            return (Value::Null, Size::default());
        };
        let (v, _) = follow(base, &steps[1..], 1);
        let known = (whole && root == "local")
            .then(|| self.local_sizes.get(name).copied())
            .flatten();
        let size = match known {
            Some(s) => s,
            // Measured without limits here; the result is checked whole.
            None => measure(&v, &unlimited()).unwrap_or_default(),
        };
        (v, size)
    }
}

/// The name of a constant object key (`a`, `"a"`).
fn key_name(k: &ObjectKey) -> Option<String> {
    match k {
        ObjectKey::Ident(i) => Some(i.as_str().to_string()),
        ObjectKey::Expression(E::String(s)) => Some(s.value().clone()),
        ObjectKey::Expression(E::Variable(i)) => Some(i.as_str().to_string()),
        _ => None,
    }
}

fn unlimited() -> crate::config::Limits {
    crate::config::Limits {
        max_instances: u64::MAX,
        max_value_elements: usize::MAX,
        max_value_bytes: usize::MAX,
    }
}
