//! Resolving references before hcl-rs sees an expression: every traversal
//! rooted at `var`, `local`, `network`, `node` or `package` is followed as
//! far as its steps are constant (`.attr`, `[0]`, `["key"]`,
//! `[count.index]`, `[each.key]`) and replaced by a fresh variable holding
//! just the value reached.
//!
//! hcl-rs clones a variable's whole value each time an expression reads it:
//! declaring `local` (every local) or `node.edge` (every instance) for each
//! expression made evaluation quadratic, and a chain of nested locals cubic.
//! Resolved, an expression copies only what it reads, and a local read by
//! exactly one other local, for the last time, is moved rather than copied,
//! so a chain of nested locals is linear.
//!
//! Not here: what may be referred to (the static checks did that) and the
//! evaluation itself (`expressions`).

use hcl::Value;
use hcl_edit::expr::{Expression as E, ForExpr, Traversal, TraversalOperator as Op};
use hcl_edit::template::ForTemplateExpr;
use hcl_edit::visit_mut::{self as vm, VisitMut};

use super::{Evaluator, Expansion, Repetition};
use crate::addrs::{InstanceKey, ResourceKind};

/// What resolving one expression produced.
#[derive(Default)]
pub(super) struct Resolved {
    /// Fresh variables and their values.
    pub decls: Vec<(String, Value)>,
    /// Roots a traversal of which could not be resolved: they are declared
    /// whole, as hcl-rs would see them.
    pub unresolved: Vec<String>,
}

/// The roots resolved here.
const ROOTS: &[&str] = &["var", "local", "network", "node", "package"];

/// Resolve the references of `expr` (rewritten in place) for the instance
/// `rep`. Records which node instances and resources it referred to.
pub(super) fn resolve(ev: &mut Evaluator<'_>, expr: &mut E, rep: &Repetition) -> Resolved {
    let mut r = Resolver {
        ev,
        rep,
        bound: Vec::new(),
        out: Resolved::default(),
    };
    r.visit_expr_mut(expr);
    r.out
}

struct Resolver<'e, 'p> {
    ev: &'e mut Evaluator<'p>,
    rep: &'e Repetition,
    /// Names bound by enclosing `for` expressions and directives.
    bound: Vec<String>,
    out: Resolved,
}

/// The base value of a traversal: borrowed from the evaluator, or made
/// (a resource's value) or moved (a local's last use) for it.
pub(super) enum Base<'a> {
    Borrowed(&'a Value),
    Owned(Value),
}

impl Resolver<'_, '_> {
    /// Resolve `root.steps...` as far as it goes: the value reached and
    /// how many steps it took (at least the name), or `None`.
    fn lookup(&mut self, root: &str, steps: &[Step]) -> Option<(Value, usize)> {
        let Some(Step::Key(name)) = steps.first() else {
            return None;
        };
        let ev = &mut *self.ev;
        let (base, used) = match root {
            "var" => (Base::Borrowed(ev.var_values.get(name)?), 1),
            "local" => {
                if ev.take_local_use(name) {
                    (Base::Owned(ev.local_values.swap_remove(name)?), 1)
                } else {
                    (Base::Borrowed(ev.local_values.get(name)?), 1)
                }
            }
            "package" => (Base::Borrowed(ev.package_values.get(name)?), 1),
            "network" => (Base::Owned(ev.network_value(name)?), 1),
            "node" => {
                // One instance by a constant key: just its object.
                let key = match (
                    steps.get(1),
                    ev.expansions.get(&(ResourceKind::Node, name.clone())),
                ) {
                    (Some(Step::Index(i)), Some(Expansion::Count(_))) => Some(InstanceKey::Int(*i)),
                    (Some(Step::Key(k)), Some(Expansion::ForEach(_))) => {
                        Some(InstanceKey::Str(k.clone()))
                    }
                    _ => None,
                };
                match key.and_then(|k| ev.node_instance(name, &k)) {
                    Some(i) => {
                        ev.referred_instances.push(ev.nodes[i].addr.clone());
                        (Base::Borrowed(&ev.nodes[i].object), 2)
                    }
                    None => {
                        ev.referred_resources.insert(name.clone());
                        (Base::Owned(ev.node_value(name)?), 1)
                    }
                }
            }
            _ => return None,
        };
        Some(follow(base, &steps[used..], used))
    }
}

/// One constant step of a traversal.
pub(super) enum Step {
    Key(String),
    Index(u64),
}

/// A constant key of an index step: a literal, `count.index` or `each.key`
/// (unless a `for` binds `count` or `each`).
fn key_of(ix: &E, rep: &Repetition, bound: &[String]) -> Option<Step> {
    match ix {
        E::Number(n) => n.value().as_u64().map(Step::Index),
        E::String(s) => Some(Step::Key(s.value().clone())),
        E::Parenthesis(p) => key_of(p.inner(), rep, bound),
        E::Traversal(t) => {
            let E::Variable(root) = &t.expr else {
                return None;
            };
            if bound.iter().any(|b| b == root.as_str()) {
                return None;
            }
            let [op] = t.operators.as_slice() else {
                return None;
            };
            let Op::GetAttr(attr) = op.value() else {
                return None;
            };
            match (root.as_str(), attr.as_str()) {
                ("count", "index") => rep.count.map(Step::Index),
                ("each", "key") => match &rep.each {
                    Some((Value::String(k), _)) => Some(Step::Key(k.clone())),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

/// The constant steps at the start of `ops`.
pub(super) fn static_steps(
    ops: &[hcl_edit::Decorated<Op>],
    rep: &Repetition,
    bound: &[String],
) -> Vec<Step> {
    let mut out = Vec::new();
    for op in ops {
        let step = match op.value() {
            Op::GetAttr(id) => Some(Step::Key(id.as_str().to_string())),
            Op::Index(ix) => key_of(ix, rep, bound),
            Op::LegacyIndex(n) => Some(Step::Index(*n.value())),
            _ => None,
        };
        match step {
            Some(s) => out.push(s),
            None => break,
        }
    }
    out
}

/// Follow `steps` from `base` while they exist; the value reached and the
/// number of steps taken in all (`used` so far plus these).
pub(super) fn follow(base: Base<'_>, steps: &[Step], used: usize) -> (Value, usize) {
    let mut taken = used;
    match base {
        Base::Borrowed(mut v) => {
            for s in steps {
                let next = match (s, v) {
                    (Step::Key(k), Value::Object(o)) => o.get(k),
                    (Step::Index(i), Value::Array(a)) => a.get(*i as usize),
                    _ => None,
                };
                match next {
                    Some(n) => {
                        v = n;
                        taken += 1;
                    }
                    None => break,
                }
            }
            (v.clone(), taken)
        }
        Base::Owned(mut v) => {
            for s in steps {
                let found = match (s, &v) {
                    (Step::Key(k), Value::Object(o)) => o.contains_key(k),
                    (Step::Index(i), Value::Array(a)) => (*i as usize) < a.len(),
                    _ => false,
                };
                if !found {
                    break;
                }
                v = match (s, v) {
                    (Step::Key(k), Value::Object(mut o)) => o.swap_remove(k).unwrap_or(Value::Null),
                    (Step::Index(i), Value::Array(mut a)) => a.swap_remove(*i as usize),
                    (_, other) => other,
                };
                taken += 1;
            }
            (v, taken)
        }
    }
}

impl VisitMut for Resolver<'_, '_> {
    fn visit_expr_mut(&mut self, expr: &mut E) {
        if let E::Traversal(t) = expr {
            if let E::Variable(root) = &t.expr {
                let root = root.as_str().to_string();
                if ROOTS.contains(&root.as_str()) && !self.bound.contains(&root) {
                    let steps = static_steps(&t.operators, self.rep, &self.bound);
                    match self.lookup(&root, &steps) {
                        Some((value, used)) => {
                            let var = format!("tg_ref_{}", self.out.decls.len());
                            self.out.decls.push((var.clone(), value));
                            let head =
                                E::Variable(hcl_edit::Decorated::new(hcl_edit::Ident::new(var)));
                            let rest: Vec<_> = t.operators.drain(used..).collect();
                            *expr = if rest.is_empty() {
                                head
                            } else {
                                E::Traversal(Box::new(Traversal::new(head, rest)))
                            };
                        }
                        None => {
                            if !self.out.unresolved.contains(&root) {
                                self.out.unresolved.push(root);
                            }
                        }
                    }
                    // Index expressions of the steps left for hcl-rs.
                    if let E::Traversal(t) = expr {
                        for op in t.operators.iter_mut() {
                            vm::visit_traversal_operator_mut(self, op);
                        }
                    }
                    return;
                }
            }
        }
        vm::visit_expr_mut(self, expr);
    }

    fn visit_for_expr_mut(&mut self, node: &mut ForExpr) {
        self.visit_expr_mut(&mut node.intro.collection_expr);
        let n = self.bound.len();
        if let Some(k) = &node.intro.key_var {
            self.bound.push(k.as_str().to_string());
        }
        self.bound.push(node.intro.value_var.as_str().to_string());
        if let Some(k) = &mut node.key_expr {
            self.visit_expr_mut(k);
        }
        self.visit_expr_mut(&mut node.value_expr);
        if let Some(c) = &mut node.cond {
            self.visit_expr_mut(&mut c.expr);
        }
        self.bound.truncate(n);
    }

    fn visit_for_template_expr_mut(&mut self, node: &mut ForTemplateExpr) {
        self.visit_expr_mut(&mut node.collection_expr);
        let n = self.bound.len();
        if let Some(k) = &node.key_var {
            self.bound.push(k.as_str().to_string());
        }
        self.bound.push(node.value_var.as_str().to_string());
        vm::visit_template_mut(self, &mut node.template);
        self.bound.truncate(n);
    }
}

impl Evaluator<'_> {
    /// The node instance of resource `name` with `key`.
    pub(super) fn node_instance(&self, name: &str, key: &InstanceKey) -> Option<usize> {
        let idx = self.node_resource.get(name)?;
        // Instances are in key order: a count index is a position.
        if let InstanceKey::Int(i) = key {
            if let Some(&j) = idx.get(*i as usize) {
                if &self.nodes[j].addr.key == key {
                    return Some(j);
                }
            }
        }
        idx.iter()
            .copied()
            .find(|&i| &self.nodes[i].addr.key == key)
    }

    /// One use of `local.NAME` by another local is being resolved: is it
    /// the last one (so the value can be moved, not copied)? Locals used
    /// outside `locals` blocks are never moved.
    pub(super) fn take_local_use(&mut self, name: &str) -> bool {
        if self.decl.locals_used_outside.contains(name) {
            return false;
        }
        match self.local_uses_left.get_mut(name) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                self.local_uses_left.remove(name);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::check;

    #[test]
    fn references_resolve_to_what_they_read() {
        let vars = "variable \"m\" {\n  default = { a = [10, 20], b = { c = \"x\" } }\n}\nvariable \"k\" {\n  default = \"b\"\n}\n";
        let out = |e: &str| format!("{vars}output \"o\" {{\n  value = {e}\n}}\n");
        check(&out("var.m.a[1]"), "o = 20");
        check(&out("var.m[\"b\"].c"), r#"o = "x""#);
        check(&out("var.m[var.k].c"), r#"o = "x""#);
        check(&out("[for x in var.m.a : x + 1]"), "o = [11,21]");
        check(&out("\"${var.m.b.c}-${var.k}\""), r#"o = "x-b""#);
        // A `for` variable named like a root is that variable.
        check(&out("[for var in [1, 2] : var * 2]"), "o = [2,4]");
        // Steps that do not exist fail where hcl-rs fails them.
        check(
            &out("var.m.z"),
            "8:11: error: no key or attribute `z` in `value`",
        );
        check(&out("var.m.a[5]"), "8:11: error: index 5 is out of range");
    }

    #[test]
    fn node_instances_by_constant_keys() {
        check(
            "network \"lab\" {}\nnode \"a\" {\n  count = 2\n  image = \"host\"\n}\nnode \"b\" {\n  count  = 2\n  image  = \"host\"\n  labels = { peer = node.a[count.index].hostname, all = join(\",\", node.a[*].hostname) }\n}\noutput \"o\" {\n  value = [for b in node.b : b.labels]\n}\n",
            r#"o = [{"all":"a-0,a-1","peer":"a-0"},{"all":"a-0,a-1","peer":"a-1"}]"#,
        );
    }
}
