//! Expansion: `count` and `for_each` into instance keys, the values a
//! repeated resource has in expressions (list, map or one object), and the
//! static `depends_on` and `lifecycle` of a block.

#[allow(unused_imports)]
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
                .help(format!(
                    "tg stops at {max} instances so that no testbed exhausts time and memory: use fewer, or raise the limit with `{}`, such as `{}={}`",
                    crate::config::ENV_MAX_INSTANCES,
                    crate::config::ENV_MAX_INSTANCES,
                    max.saturating_mul(4)
                )),
            );
        } else {
            self.silenced = true;
        }
        false
    }

    fn expansion(&mut self, b: &RawBlock) -> Option<Expansion> {
        let rep = Repetition::default();
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
                    _ => {
                        self.err(
                            Diagnostic::error(format!(
                                "`count` must be a whole number from 0 to {max}, found {}",
                                types::describe(&v)
                            ))
                            .at(c.expr_span.clone()),
                        );
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
