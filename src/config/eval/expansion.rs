//! Expansion: `count` and `for_each` into instance keys, the values a
//! repeated resource has in expressions (list, map or one object), and the
//! static `depends_on` and `lifecycle` of a block.

use super::*;

impl Evaluator<'_> {
    /// How block `b` expands, counted against the instance limit.
    pub(super) fn expand(&mut self, b: &RawBlock) -> Option<Expansion> {
        let exp = self.expansion(b)?;
        let n = match &exp {
            Expansion::Single => 1,
            Expansion::Count(n) => *n,
            Expansion::ForEach(items) => items.len() as u64,
        };
        let at = b
            .attr("count")
            .or(b.attr("for_each"))
            .map(|a| a.expr_span.clone())
            .unwrap_or(b.span.clone());
        self.admit_instances(n, at).then_some(exp)
    }

    /// Count `n` more instances against the limit; `false` (with an error
    /// at `at`, once) when the testbed would have too many.
    pub(super) fn admit_instances(&mut self, n: u64, at: Span) -> bool {
        let before = self.instance_count;
        self.instance_count = before.saturating_add(n);
        if self.instance_count <= self.max_instances {
            return true;
        }
        if before <= self.max_instances {
            let max = self.max_instances;
            self.err(
                Diagnostic::error(format!(
                    "the testbed would have more than {max} instances (networks, nodes and packages)"
                ))
                .at(at)
                .help(limit_help(max)),
            );
        } else {
            self.silenced = true;
        }
        false
    }

    fn expansion(&mut self, b: &RawBlock) -> Option<Expansion> {
        let rep = Repetition::default();
        for name in ["count", "for_each"] {
            if let Some(a) = b.attr(name) {
                if self.is_sensitive(&a.expr) {
                    self.err(
                        Diagnostic::error(format!(
                            "`{name}` cannot be derived from a sensitive value"
                        ))
                        .at(a.expr_span.clone())
                        .help("instance keys are shown in every plan and address: use a value that is not sensitive"),
                    );
                    return None;
                }
            }
        }
        match (b.attr("count").cloned(), b.attr("for_each").cloned()) {
            (Some(_), Some(fe)) => {
                self.err(
                    Diagnostic::error("`count` and `for_each` cannot both be set")
                        .at(fe.span.clone())
                        .help("keep one of them"),
                );
                None
            }
            (Some(c), None) => {
                let v = self.eval(&c, &rep)?;
                let max = self.max_instances;
                match v.as_f64() {
                    Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= max as f64 => {
                        Some(Expansion::Count(n as u64))
                    }
                    n => {
                        let mut d = Diagnostic::error(format!(
                            "`count` must be a whole number from 0 to {max}, found {}",
                            types::describe(&v)
                        ))
                        .at(c.expr_span.clone());
                        if n.is_some_and(|n| n > max as f64 && n.fract() == 0.0) {
                            d = d.help(limit_help(max));
                        }
                        self.err(d);
                        None
                    }
                }
            }
            (None, Some(fe)) => {
                let v = self.eval(&fe, &rep)?;
                let items: Vec<(String, Value)> = match v {
                    Value::Object(o) => o.into_iter().collect(),
                    Value::Array(a) => {
                        let mut items = Vec::new();
                        for x in a {
                            match x {
                                Value::String(s) => items.push((s.clone(), Value::String(s))),
                                other => {
                                    self.err(
                                        Diagnostic::error(format!(
                                            "`for_each` over a list needs strings, found {}",
                                            types::describe(&other)
                                        ))
                                        .at(fe.expr_span.clone())
                                        .help("use `toset([\"a\", \"b\"])` or a map"),
                                    );
                                    return None;
                                }
                            }
                        }
                        items.sort_by(|a, b| a.0.cmp(&b.0));
                        items.dedup_by(|a, b| a.0 == b.0);
                        items
                    }
                    other => {
                        self.err(
                            Diagnostic::error(format!(
                                "`for_each` must be a map or a set of strings, found {}",
                                types::describe(&other)
                            ))
                            .at(fe.expr_span.clone()),
                        );
                        return None;
                    }
                };
                if b.kind == "node" || b.kind == "network" {
                    for (k, _) in &items {
                        if let Err(why) = names::check_instance_key(k) {
                            self.err(
                                Diagnostic::error(format!("invalid `for_each` key `{k}`: {why}"))
                                    .at(fe.expr_span.clone())
                                    .help("keys become part of host names (`web-a`)"),
                            );
                            return None;
                        }
                    }
                }
                Some(Expansion::ForEach(items))
            }
            (None, None) => Some(Expansion::Single),
        }
    }

    pub(super) fn resource_value(
        &self,
        kind: ResourceKind,
        name: &str,
        objects: &[(InstanceKey, Value)],
    ) -> Option<Value> {
        let exp = self.expansions.get(&(kind, name.to_string()))?;
        Some(match exp {
            Expansion::Single => objects
                .first()
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null),
            Expansion::Count(_) => Value::Array(objects.iter().map(|(_, v)| v.clone()).collect()),
            Expansion::ForEach(_) => Value::Object(
                objects
                    .iter()
                    .filter_map(|(k, v)| match k {
                        InstanceKey::Str(s) => Some((s.clone(), v.clone())),
                        _ => None,
                    })
                    .collect(),
            ),
        })
    }

    pub(super) fn network_value(&self, name: &str) -> Option<Value> {
        let objs: Vec<(InstanceKey, Value)> = self
            .nets
            .iter()
            .filter(|n| n.addr.name() == name)
            .map(|n| (n.addr.key.clone(), Value::Object(network_object(n))))
            .collect();
        self.resource_value(ResourceKind::Network, name, &objs)
    }

    pub(super) fn node_value(&self, name: &str) -> Option<Value> {
        // A node with `count = 0` or an empty `for_each` has no instances
        // but is still a (empty) value.
        let idx = self
            .node_resource
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let objs: Vec<(InstanceKey, Value)> = idx
            .iter()
            .map(|&i| (self.nodes[i].addr.key.clone(), self.nodes[i].object.clone()))
            .collect();
        self.resource_value(ResourceKind::Node, name, &objs)
    }

    pub(super) fn prevent_destroy(&mut self, b: &RawBlock) -> bool {
        b.blocks_of("lifecycle")
            .any(|l| self.eval_bool(l, "prevent_destroy", &Repetition::default()) == Some(true))
    }

    pub(super) fn static_depends_on(&self, b: &RawBlock) -> Vec<InstanceAddr> {
        let Some(a) = b.attr("depends_on") else {
            return Vec::new();
        };
        let Ok(list) = refs::static_list(a.expr_span.file, &a.expr) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (r, index) in list {
            let (Some(kind), Some(name)) = (ResourceKind::parse(&r.root), r.name) else {
                continue;
            };
            let key = match index {
                Some(i) => InstanceKey::Int(i),
                None => InstanceKey::None,
            };
            out.push(InstanceAddr::new(kind, name, key));
        }
        out
    }
}

/// How to get past the instance limit.
fn limit_help(max: u64) -> String {
    format!(
        "tg stops at {max} instances so that no testbed exhausts time and memory: use fewer, or raise the limit with `{}`, such as `{}={}`",
        crate::config::ENV_MAX_INSTANCES,
        crate::config::ENV_MAX_INSTANCES,
        max.saturating_mul(4)
    )
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::{check, check_with, options};

    fn nodes(rep: &str) -> String {
        format!("network \"lab\" {{\n  cidr = \"10.0.0.0/16\"\n}}\nnode \"n\" {{\n  {rep}\n  image = \"host\"\n}}\noutput \"h\" {{\n  value = [for x in node.n : x.hostname]\n}}\n")
    }

    #[test]
    fn count_and_for_each() {
        check(&nodes("count = 2"), r#"h = ["n-0","n-1"]"#);
        check(&nodes("count = 0"), "h = []");
        check(
            &nodes("for_each = toset([\"b\", \"a\", \"b\"])"),
            r#"h = ["n-a","n-b"]"#,
        );
        check(
            &nodes("for_each = { y = 1, x = 2 }"),
            r#"h = ["n-y","n-x"]"#,
        );
        check(
            &nodes("count = -1"),
            "5:11: error: `count` must be a whole number from 0 to 50000, found number -1",
        );
        check(
            &nodes("count = 1.5"),
            "5:11: error: `count` must be a whole number from 0 to 50000, found number 1.5",
        );
        check(
            &nodes("for_each = [1]"),
            "5:14: error: `for_each` over a list needs strings, found number 1",
        );
        check(&nodes("for_each = toset([\"A\"])"), "5:14: error: invalid `for_each` key `A`: it contains `A`: only lowercase letters, digits and `-` are allowed");
        check(
            &nodes("for_each = 3"),
            "5:14: error: `for_each` must be a map or a set of strings, found number 3",
        );
    }

    #[test]
    fn the_testbed_holds_a_bounded_number_of_instances() {
        let mut opts = options();
        opts.limits.max_instances = 10;
        check_with(
            &opts,
            &nodes("count = 9"),
            r#"h = ["n-0","n-1","n-2","n-3","n-4","n-5","n-6","n-7","n-8"]"#,
        );
        check_with(
            &opts,
            &nodes("count = 11"),
            "5:11: error: `count` must be a whole number from 0 to 10, found number 11",
        );
        // One network and ten nodes: eleven.
        check_with(&opts, &nodes("count = 10"), "5:11: error: the testbed would have more than 10 instances (networks, nodes and packages)");
        // Reported once, at the block that passes the limit.
        let two = "network \"lab\" {}\nnode \"a\" {\n  count = 6\n  image = \"host\"\n}\nnode \"b\" {\n  count = 6\n  image = \"host\"\n}\nnode \"c\" {\n  count = 6\n  image = \"host\"\n}\n";
        check_with(&opts, two, "7:11: error: the testbed would have more than 10 instances (networks, nodes and packages)");
        // The caller's `TG_MAX_INSTANCES` raises it.
        opts.env = opts.env.with_var("TG_MAX_INSTANCES", "100");
        check_with(&opts, two, "ok");
        opts.env = opts.env.with_var("TG_MAX_INSTANCES", "lots");
        check_with(&opts, two, "error: invalid `TG_MAX_INSTANCES=lots`: expected a whole number greater than 0\n7:11: error: the testbed would have more than 10 instances (networks, nodes and packages)");
    }

    #[test]
    fn packages_count_too() {
        let mut opts = options();
        opts.limits.max_instances = 10;
        check_with(
            &opts,
            "network \"lab\" {}\nnode \"a\" {\n  count = 4\n  image = \"host\"\n}\npackage \"curl\" {\n  on = node.a\n}\npackage \"jq\" {\n  on = node.a\n}\n",
            "10:8: error: the testbed would have more than 10 instances (networks, nodes and packages)",
        );
    }
}
