//! Sensitivity: which values derive from a sensitive variable, found from
//! the expressions (hcl-rs values carry no marks), as Terraform does.
//!
//! A [`Mark`] says what of a value is sensitive: all of it, or some of its
//! keys. A sensitive variable is sensitive whole. An object or list written
//! out (`{ pw = var.pw, user = "a" }`) is sensitive where its parts are; a
//! reference reads the mark of what it names (`local.cfg.user` is not
//! sensitive when only `local.cfg.pw` is); anything computed from a
//! sensitive part (a function, a template, an operator, a `for`, a
//! condition on it) is sensitive whole. Locals, profiles, networks, nodes
//! and packages keep the marks of their attributes, so sensitivity follows
//! values through them.
//!
//! Used for: each instance's sensitive attribute paths
//! ([`crate::config::model::DesiredInstance::sensitive`], hidden by the plan
//! renderers), the rule that an output showing a sensitive value is
//! sensitive, the refusal of sensitive `count`/`for_each` (instance keys
//! are shown everywhere), and keeping sensitive values out of messages.

use std::collections::BTreeMap;

use hcl_edit::expr::{Expression as E, ObjectKey, TraversalOperator as Op};
use hcl_edit::template::{Directive, Element, Template};

use super::Evaluator;
use crate::config::decode::RawBlock;

/// What of a value is sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mark {
    /// All of it.
    Whole,
    /// These keys (list indexes as decimal strings); never empty.
    Parts(BTreeMap<String, Mark>),
}

impl Mark {
    /// The mark of the part under `key`.
    pub fn get(&self, key: &str) -> Option<Mark> {
        match self {
            Mark::Whole => Some(Mark::Whole),
            Mark::Parts(m) => m.get(key).cloned(),
        }
    }

    /// An object's mark from its keys' marks.
    pub fn object(parts: impl IntoIterator<Item = (String, Option<Mark>)>) -> Option<Mark> {
        let m: BTreeMap<String, Mark> = parts
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        (!m.is_empty()).then_some(Mark::Parts(m))
    }

    /// The dotted paths of the sensitive parts, under `prefix`.
    pub fn paths(&self, prefix: &str, out: &mut Vec<String>) {
        match self {
            Mark::Whole => out.push(prefix.to_string()),
            Mark::Parts(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    v.paths(&p, out);
                }
            }
        }
    }
}

/// Both marks: sensitive where either is.
pub(crate) fn union(a: Option<Mark>, b: Option<Mark>) -> Option<Mark> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(Mark::Parts(mut x)), Some(Mark::Parts(y))) => {
            for (k, v) in y {
                let merged = union(x.remove(&k), Some(v));
                if let Some(m) = merged {
                    x.insert(k, m);
                }
            }
            Some(Mark::Parts(x))
        }
        _ => Some(Mark::Whole),
    }
}

/// Whole when any part is sensitive.
fn whole_if(m: Option<Mark>) -> Option<Mark> {
    m.map(|_| Mark::Whole)
}

/// The kinds of resource whose marks are kept per block name.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    pub locals: BTreeMap<String, Mark>,
    /// Per profile: the mark of its attributes as an object.
    pub profiles: BTreeMap<String, Mark>,
    /// Per resource name: the mark of one instance's object.
    pub networks: BTreeMap<String, Mark>,
    pub nodes: BTreeMap<String, Mark>,
    pub packages: BTreeMap<String, Mark>,
}

impl Evaluator<'_> {
    /// The mark of what `e` evaluates to.
    pub(super) fn mark_of(&self, e: &E) -> Option<Mark> {
        if self.sensitive_vars.is_empty() {
            // Nothing is sensitive without a sensitive variable.
            return None;
        }
        self.mark(e, &mut Vec::new())
    }

    fn mark(&self, e: &E, bound: &mut Vec<String>) -> Option<Mark> {
        match e {
            E::Null(_) | E::Bool(_) | E::Number(_) | E::String(_) => None,
            E::Parenthesis(p) => self.mark(p.inner(), bound),
            E::Array(a) => Mark::object(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| (i.to_string(), self.mark(x, bound))),
            ),
            E::Object(o) => {
                let mut parts = Vec::new();
                let mut dynamic = None;
                for (k, v) in o.iter() {
                    let vm = self.mark(v.expr(), bound);
                    match static_key(k) {
                        Some(k) => parts.push((k, vm)),
                        None => {
                            let km = match k {
                                ObjectKey::Expression(ke) => self.mark(ke, bound),
                                ObjectKey::Ident(_) => None,
                            };
                            dynamic = union(dynamic, whole_if(union(km, vm)));
                        }
                    }
                }
                union(Mark::object(parts), dynamic)
            }
            E::Variable(v) => {
                if bound.iter().any(|b| b == v.as_str()) {
                    None
                } else {
                    self.root_mark(v.as_str(), None)
                }
            }
            E::Traversal(t) => {
                // Sensitive index expressions make the result sensitive.
                let mut idx = None;
                for op in &t.operators {
                    if let Op::Index(ix) = op.value() {
                        idx = union(idx, whole_if(self.mark(ix, bound)));
                    }
                }
                let base = match &t.expr {
                    E::Variable(v) if !bound.iter().any(|b| b == v.as_str()) => {
                        let root = v.as_str();
                        let name = match t.operators.first().map(|o| o.value()) {
                            Some(Op::GetAttr(n)) => Some(n.as_str()),
                            _ => None,
                        };
                        let m = self.root_mark(root, name);
                        let ops = &t.operators;
                        if name.is_some() && self.is_repeated(root, name) {
                            // Every instance has the same mark: an index
                            // picks one, a splat or the whole resource has
                            // it in every element.
                            match ops.get(1).map(|o| o.value()) {
                                Some(Op::Index(_) | Op::LegacyIndex(_)) => follow_ops(m, &ops[2..]),
                                Some(Op::AttrSplat(_) | Op::FullSplat(_)) => {
                                    whole_if(follow_ops(m, &ops[2..]))
                                }
                                _ => whole_if(m),
                            }
                        } else {
                            follow_ops(m, ops.get(1..).unwrap_or(&[]))
                        }
                    }
                    E::Variable(_) => None,
                    other => follow_ops(self.mark(other, bound), &t.operators),
                };
                union(base, idx)
            }
            E::FuncCall(f) => {
                let mut m = None;
                for a in f.args.iter() {
                    m = union(m, self.mark(a, bound));
                }
                whole_if(m)
            }
            E::Conditional(c) => {
                let cond = whole_if(self.mark(&c.cond_expr, bound));
                union(
                    cond,
                    union(
                        self.mark(&c.true_expr, bound),
                        self.mark(&c.false_expr, bound),
                    ),
                )
            }
            E::UnaryOp(u) => whole_if(self.mark(&u.expr, bound)),
            E::BinaryOp(b) => whole_if(union(
                self.mark(&b.lhs_expr, bound),
                self.mark(&b.rhs_expr, bound),
            )),
            E::StringTemplate(t) => whole_if(self.template_mark(t, bound)),
            E::HeredocTemplate(h) => whole_if(self.template_mark(&h.template, bound)),
            E::ForExpr(f) => {
                let mut m = self.mark(&f.intro.collection_expr, bound);
                let n = bound.len();
                if let Some(k) = &f.intro.key_var {
                    bound.push(k.as_str().to_string());
                }
                bound.push(f.intro.value_var.as_str().to_string());
                if let Some(k) = &f.key_expr {
                    m = union(m, self.mark(k, bound));
                }
                m = union(m, self.mark(&f.value_expr, bound));
                if let Some(c) = &f.cond {
                    m = union(m, self.mark(&c.expr, bound));
                }
                bound.truncate(n);
                whole_if(m)
            }
        }
    }

    fn template_mark(&self, t: &Template, bound: &mut Vec<String>) -> Option<Mark> {
        let mut m = None;
        for el in t.iter() {
            match el {
                Element::Literal(_) => {}
                Element::Interpolation(i) => m = union(m, self.mark(&i.expr, bound)),
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(i) => {
                        m = union(m, self.mark(&i.if_expr.cond_expr, bound));
                        m = union(m, self.template_mark(&i.if_expr.template, bound));
                        if let Some(e) = &i.else_expr {
                            m = union(m, self.template_mark(&e.template, bound));
                        }
                    }
                    Directive::For(f) => {
                        m = union(m, self.mark(&f.for_expr.collection_expr, bound));
                        let n = bound.len();
                        if let Some(k) = &f.for_expr.key_var {
                            bound.push(k.as_str().to_string());
                        }
                        bound.push(f.for_expr.value_var.as_str().to_string());
                        m = union(m, self.template_mark(&f.for_expr.template, bound));
                        bound.truncate(n);
                    }
                },
            }
        }
        m
    }

    /// The mark of `root.name` (or of `root` alone).
    fn root_mark(&self, root: &str, name: Option<&str>) -> Option<Mark> {
        let name = name?;
        match root {
            "var" => self.sensitive_vars.contains(name).then_some(Mark::Whole),
            "local" => self.marks.locals.get(name).cloned(),
            "network" => self.marks.networks.get(name).cloned(),
            "node" => self.marks.nodes.get(name).cloned(),
            "package" => self.marks.packages.get(name).cloned(),
            _ => None,
        }
    }

    /// Is `root.name` a resource with `count` or `for_each` (a list or map
    /// of instances, all with one mark)?
    fn is_repeated(&self, root: &str, name: Option<&str>) -> bool {
        let (Some(kind), Some(name)) = (
            match root {
                "network" => Some("network"),
                "node" => Some("node"),
                _ => None,
            },
            name,
        ) else {
            return false;
        };
        self.decl
            .of(kind)
            .and_then(|m| m.get(name))
            .is_some_and(|&bi| {
                let b = &self.blocks[bi];
                b.attrs.contains_key("count") || b.attrs.contains_key("for_each")
            })
    }

    /// The marks of `attrs` of block `b`, as an object.
    pub(super) fn attr_marks(&self, b: &RawBlock, attrs: &[&str]) -> Option<Mark> {
        if self.sensitive_vars.is_empty() {
            return None;
        }
        Mark::object(attrs.iter().map(|name| {
            (
                name.to_string(),
                b.attr(name).and_then(|a| self.mark_of(&a.expr)),
            )
        }))
    }

    /// The mark of one node's object: its own attributes, else its
    /// profile's (labels from both).
    pub(super) fn node_mark(&self, b: &RawBlock, profile: Option<&str>) -> Option<Mark> {
        if self.sensitive_vars.is_empty() {
            return None;
        }
        let from_profile = profile.and_then(|p| self.marks.profiles.get(p));
        let own = |attr: &str| b.attr(attr).and_then(|a| self.mark_of(&a.expr));
        let own_or_profile = |attr: &str| match b.attr(attr) {
            Some(a) => self.mark_of(&a.expr),
            None => from_profile.and_then(|m| m.get(attr)),
        };
        let address = own("address");
        Mark::object([
            ("image".to_string(), own_or_profile("image")),
            ("cpus".to_string(), own_or_profile("cpus")),
            ("memory".to_string(), own_or_profile("memory")),
            ("platform".to_string(), own_or_profile("platform")),
            ("profile".to_string(), own("profile")),
            (
                "labels".to_string(),
                union(from_profile.and_then(|m| m.get("labels")), own("labels")),
            ),
            ("address".to_string(), address.clone()),
            ("addresses".to_string(), whole_if(address)),
        ])
    }

    /// The last line of defence: a message that quotes a sensitive
    /// variable's value (a function's error, say) shows
    /// `(sensitive value)` instead. Values shorter than four characters are
    /// left alone (they would garble every message); messages about a
    /// sensitive value should not quote it in the first place.
    pub(super) fn scrub_sensitive(&mut self) {
        if self.sensitive_vars.is_empty() {
            return;
        }
        let mut secrets: Vec<String> = Vec::new();
        for name in &self.sensitive_vars {
            if let Some(v) = self.var_values.get(name) {
                leaf_strings(v, &mut secrets);
            }
            if let Some(raw) = self.var_raw.get(name) {
                secrets.push(raw.clone());
            }
        }
        secrets.retain(|s| s.chars().count() >= 4);
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        if secrets.is_empty() {
            return;
        }
        let scrub = |s: &mut String| {
            for secret in &secrets {
                if s.contains(secret.as_str()) {
                    *s = s.replace(secret.as_str(), "(sensitive value)");
                }
            }
        };
        for d in self.diags.0.iter_mut() {
            scrub(&mut d.summary);
            if let Some(h) = d.help.as_mut() {
                scrub(h);
            }
            if let Some(x) = d.detail.as_mut() {
                scrub(x);
            }
        }
    }

    /// Does `e` read a sensitive value? For messages that would quote it.
    pub(super) fn is_sensitive(&self, e: &E) -> bool {
        self.mark_of(e).is_some()
    }

    /// `text` as a message may show it: not at all when `e` is sensitive.
    pub(super) fn shown(&self, e: &E, text: &str) -> String {
        if self.is_sensitive(e) {
            "(sensitive value)".to_string()
        } else {
            text.to_string()
        }
    }
}

/// The sensitive attribute paths of a node from its object's mark, named
/// as both its attributes and its spec name them (`memory` is the spec's
/// `memory_mib`, an address is in the spec's `interfaces`).
pub(crate) fn node_paths(m: &Mark) -> Vec<String> {
    paths_with(m, |k| match k {
        "memory" => &["memory", "memory_mib"],
        "address" | "addresses" => &["address", "addresses", "interfaces"],
        _ => &[],
    })
}

/// [`node_paths`] for a network (`cidr` gives `gateway` too).
pub(crate) fn network_paths(m: &Mark) -> Vec<String> {
    paths_with(m, |k| match k {
        "cidr" => &["cidr", "gateway"],
        _ => &[],
    })
}

/// [`node_paths`] for a package (`deb` is the spec's `source`).
pub(crate) fn package_paths(m: &Mark) -> Vec<String> {
    paths_with(m, |k| match k {
        "deb" => &["source"],
        _ => &[],
    })
}

/// The dotted paths of `m`, with each top-level key named by `alias` (or
/// as itself when `alias` gives none); sorted, without repeats.
fn paths_with(m: &Mark, alias: impl Fn(&str) -> &'static [&'static str]) -> Vec<String> {
    let mut out = Vec::new();
    match m {
        Mark::Whole => out.push(String::new()),
        Mark::Parts(parts) => {
            for (k, sub) in parts {
                let names = alias(k);
                if names.is_empty() {
                    sub.paths(k, &mut out);
                }
                for n in names {
                    sub.paths(n, &mut out);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every string (and number, as written) inside `v`.
fn leaf_strings(v: &hcl::Value, out: &mut Vec<String>) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            hcl::Value::String(s) => out.push(s.clone()),
            hcl::Value::Number(n) => out.push(n.to_string()),
            hcl::Value::Array(a) => stack.extend(a.iter()),
            hcl::Value::Object(o) => stack.extend(o.values()),
            _ => {}
        }
    }
}

/// Follow the steps of a traversal through a mark: constant keys narrow it,
/// anything else (a computed index, a splat) keeps all of what is marked.
fn follow_ops(mut m: Option<Mark>, ops: &[hcl_edit::Decorated<Op>]) -> Option<Mark> {
    for op in ops {
        let cur = m?;
        m = match (op.value(), &cur) {
            (_, Mark::Whole) => Some(Mark::Whole),
            (Op::GetAttr(k), _) => cur.get(k.as_str()),
            (Op::Index(E::String(s)), _) => cur.get(s.value()),
            (Op::Index(E::Number(n)), _) => cur.get(&n.value().to_string()),
            (Op::LegacyIndex(n), _) => cur.get(&n.value().to_string()),
            _ => Some(Mark::Whole),
        };
    }
    m
}

/// A constant object key.
fn static_key(k: &ObjectKey) -> Option<String> {
    match k {
        ObjectKey::Ident(i) => Some(i.as_str().to_string()),
        ObjectKey::Expression(E::String(s)) => Some(s.value().clone()),
        ObjectKey::Expression(E::Variable(i)) => Some(i.as_str().to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_combine_and_give_paths() {
        let parts = |k: &str| Some(Mark::Parts(BTreeMap::from([(k.to_string(), Mark::Whole)])));
        let m = union(parts("a"), parts("b")).unwrap();
        let mut out = Vec::new();
        m.paths("labels", &mut out);
        assert_eq!(out, ["labels.a", "labels.b"]);
        assert_eq!(union(parts("a"), Some(Mark::Whole)), Some(Mark::Whole));
        assert_eq!(m.get("a"), Some(Mark::Whole));
        assert_eq!(m.get("c"), None);
        assert_eq!(Mark::object([("x".to_string(), None)]), None);
    }
}

#[cfg(test)]
mod stage_tests {
    use crate::config::eval::testing::{check, options};
    use crate::config::parse::parse_texts;
    use crate::config::Prior;

    const VARS: &str = "variable \"pw\" {\n  default   = \"s3cr3t-pw\"\n  sensitive = true\n}\nvariable \"v\" {\n  default   = \"1.2-3\"\n  sensitive = true\n}\nnetwork \"lab\" {}\n";

    /// The sensitive paths of every instance that has some, one per line.
    fn sensitive(src: &str) -> String {
        let text = format!("{VARS}{src}");
        let parsed = parse_texts(&options(), &[("main.tg.hcl", &text)]).unwrap();
        match parsed.evaluate(&Prior::default()) {
            Err(e) => e
                .diagnostics
                .iter()
                .map(|d| format!("error: {}", d.summary))
                .collect::<Vec<_>>()
                .join("\n"),
            Ok((tb, _)) => tb
                .instances
                .values()
                .filter(|i| !i.sensitive.is_empty())
                .map(|i| format!("{}: {}", i.address, i.sensitive.join(", ")))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    fn node(attrs: &str) -> String {
        format!("node \"a\" {{\n  image = \"host\"\n  {attrs}\n}}\n")
    }

    #[test]
    fn what_derives_from_a_sensitive_value_is_sensitive() {
        let t = |src: &str, expect: &str| assert_eq!(sensitive(src), expect, "\n{src}");
        t(
            &node("labels = { pw = var.pw, role = \"edge\" }"),
            "node.a: labels.pw",
        );
        t(&node("labels = { role = \"edge\" }"), "");
        t(
            &format!(
                "locals {{\n  h = \"Bearer ${{var.pw}}\"\n}}\n{}",
                node("labels = { h = local.h }")
            ),
            "node.a: labels.h",
        );
        t(
            &node("labels = { for k in [\"x\"] : k => var.pw }"),
            "node.a: labels",
        );
        t(
            &node("labels = merge({ a = \"1\" }, { pw = var.pw })"),
            "node.a: labels",
        );
        t(
            &node("labels = { pw = upper(var.pw) }"),
            "node.a: labels.pw",
        );
        t(
            &node("labels = { pw = var.pw == \"x\" ? \"a\" : \"b\" }"),
            "node.a: labels.pw",
        );
        t(&node("labels = { n = length(var.pw) }"), "node.a: labels.n");
        // Only what is read: the non-sensitive part of a local is not.
        let cfg = "locals {\n  cfg = { pw = var.pw, user = \"u\" }\n}\n";
        t(
            &format!("{cfg}{}", node("labels = { u = local.cfg.user }")),
            "",
        );
        t(
            &format!("{cfg}{}", node("labels = local.cfg")),
            "node.a: labels.pw",
        );
        t(
            &format!("{cfg}{}", node("labels = { x = local.cfg[\"pw\"] }")),
            "node.a: labels.x",
        );
        // Spec names too.
        t("node \"a\" {\n  image  = var.pw == \"\" ? \"host\" : \"host\"\n  memory = var.v == \"\" ? \"1GiB\" : \"2GiB\"\n}\n", "node.a: image, memory, memory_mib");
        // Through a profile, and from node to node.
        t(
            "profile \"p\" {\n  image  = \"host\"\n  labels = { pw = var.pw }\n}\nnode \"a\" {\n  profile = \"p\"\n}\nnode \"b\" {\n  count  = 2\n  image  = \"host\"\n  labels = { x = node.a.labels.pw, y = node.a.hostname }\n}\n",
            "node.a: labels.pw\nnode.b[0]: labels.x\nnode.b[1]: labels.x",
        );
        // Packages and networks.
        t(
            &format!(
                "{}package \"curl\" {{\n  version = var.v\n  on      = [node.a]\n}}\n",
                node("")
            ),
            "package.curl[node.a]: version",
        );
        t(
            "network \"n\" {\n  cidr = var.pw == \"\" ? \"10.1.0.0/24\" : \"10.2.0.0/24\"\n}\n",
            "network.n: cidr, gateway",
        );
    }

    #[test]
    fn sensitive_values_cannot_make_instance_keys() {
        assert_eq!(
            sensitive("node \"a\" {\n  count = length(var.pw)\n  image = \"host\"\n}\n"),
            "error: `count` cannot be derived from a sensitive value"
        );
        assert_eq!(
            sensitive("node \"a\" {\n  for_each = toset([var.pw])\n  image    = \"host\"\n}\n"),
            "error: `for_each` cannot be derived from a sensitive value"
        );
    }

    #[test]
    fn outputs_and_messages() {
        let v = format!("{VARS}node \"a\" {{\n  image  = \"host\"\n  labels = {{ pw = var.pw, role = \"x\" }}\n}}\n");
        check(
            &format!("{v}output \"o\" {{\n  value = node.a.labels\n}}\n"),
            "15:11: error: output `o` shows a sensitive value through `node.a`",
        );
        check(
            &format!("{v}output \"o\" {{\n  value = node.a.labels.role\n}}\n"),
            r#"o = "x""#,
        );
        // Messages do not quote sensitive values.
        check(
            &format!("{VARS}node \"a\" {{\n  image = \"host\"\n  cpus  = var.pw\n}}\n"),
            "12:11: error: `cpus` must be a positive number, found a sensitive value",
        );
        check(
            &format!("{VARS}output \"o\" {{\n  value     = var.pw + 1\n  sensitive = true\n}}\n"),
            "11:15: error: `+` cannot combine these values (they are sensitive: not shown)",
        );
        check(
            &format!("{VARS}output \"o\" {{\n  value     = cidrhost(var.pw, 1)\n  sensitive = true\n}}\n"),
            "11:15: error: in `cidrhost(...)`: the call failed (its arguments are sensitive, so the reason is not shown)",
        );
        check(
            &format!("{VARS}network \"n\" {{\n  cidr = var.pw\n}}\n"),
            "11:10: error: invalid CIDR `(sensitive value)`: expected an IPv4 network such as 10.42.0.0/24",
        );
    }
}
