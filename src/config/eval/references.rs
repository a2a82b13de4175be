//! Reference checks: what each attribute may refer to (the table in
//! docs/language.md), unknown references and functions, wrong indexing and
//! `depends_on` lists. Static: runs before any evaluation.

use super::*;

impl Checker<'_> {
    /// What each attribute of each block may refer to.
    pub(super) fn allow_for(&self, block: &RawBlock, attr: &str, nested: Option<&str>) -> Allow {
        let rep = Allow {
            count: block.attrs.contains_key("count"),
            each: block.attrs.contains_key("for_each"),
            ..NOTHING
        };
        match (block.kind.as_str(), nested) {
            ("variable", Some("validation")) => Allow {
                var: true,
                ..NOTHING
            },
            ("variable", _) => NOTHING,
            ("locals", _) | ("profile", _) | ("testbed", _) | ("state", _) | ("platform", _) => {
                VARS
            }
            ("network", Some("lifecycle"))
            | ("node", Some("lifecycle"))
            | ("package", Some("lifecycle")) => NOTHING,
            ("network", _) => match attr {
                "count" | "for_each" => Allow {
                    network: false,
                    ..VARS
                },
                _ => Allow {
                    network: true,
                    ..VARS.merge(rep)
                },
            },
            ("node", _) => match attr {
                "count" | "for_each" => Allow {
                    network: true,
                    ..VARS
                },
                "network" | "networks" | "address" => Allow {
                    network: true,
                    ..VARS.merge(rep)
                },
                _ => Allow {
                    network: true,
                    node: true,
                    ..VARS.merge(rep)
                },
            },
            ("package", Some("requires")) => Allow {
                network: true,
                ..VARS
            },
            ("package", _) => Allow {
                network: true,
                node: true,
                ..VARS
            },
            ("output", _) => Allow {
                network: true,
                node: true,
                package: true,
                ..VARS
            },
            _ => VARS,
        }
    }

    pub(super) fn check_all_references(&mut self) {
        let blocks = self.blocks;
        for b in blocks.iter() {
            if b.kind == "moved" {
                // Addresses, not expressions: see `moved`.
                continue;
            }
            for (name, a) in &b.attrs {
                if name == "depends_on" {
                    self.check_depends_on(b, a);
                    continue;
                }
                if b.kind == "variable" && name == "type" {
                    if let Err(why) = types::parse_type(&a.expr) {
                        self.err(
                            Diagnostic::error(format!("invalid type: {why}"))
                                .at(a.expr_span.clone()),
                        );
                    }
                    continue;
                }
                let allow = self.allow_for(b, name, None);
                self.check_refs(b, a, allow);
            }
            for nb in &b.blocks {
                for (name, a) in &nb.attrs {
                    let allow = self.allow_for(b, name, Some(&nb.kind));
                    self.check_refs(b, a, allow);
                }
            }
        }
    }

    pub(super) fn check_refs(&mut self, block: &RawBlock, a: &RawAttr, allow: Allow) {
        let found = refs::scan(a.expr_span.file, &a.expr);
        for call in &found.calls {
            if !functions::NAMES.contains(&call.name.as_str()) {
                let mut d = Diagnostic::error(format!("unknown function `{}`", call.name))
                    .at(call.span.clone());
                d = match did_you_mean(&call.name, functions::NAMES.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("see the list of functions in docs/language.md"),
                };
                self.err(d);
            }
        }
        for r in &found.refs {
            if let Some(d) = self.check_ref(block, &a.name, r, allow) {
                self.err(d);
            }
            if let ("local", Some(name)) = (r.root.as_str(), &r.name) {
                if block.kind == "locals" {
                    *self.decl.local_sites.entry(name.clone()).or_default() += 1;
                } else {
                    self.decl.locals_used_outside.insert(name.clone());
                }
            }
        }
    }

    pub(super) fn check_ref(
        &self,
        block: &RawBlock,
        attr: &str,
        r: &Reference,
        allow: Allow,
    ) -> Option<Diagnostic> {
        let here = if block.labels.is_empty() {
            format!("a `{}` block", block.kind)
        } else {
            format!(
                "{} `{}`",
                block.kind,
                block.labels.last().cloned().unwrap_or_default()
            )
        };
        let not_here = |what: &str, why: &str| {
            Some(
                Diagnostic::error(format!("`{what}` cannot be used in `{attr}` of {here}"))
                    .at(r.span.clone())
                    .help(why.to_string()),
            )
        };
        let (kind, allowed, attrs): (&str, bool, &[&str]) = match r.root.as_str() {
            "var" => ("variable", allow.var, &[]),
            "local" => ("local", allow.local, &[]),
            "network" => ("network", allow.network, NETWORK_ATTRS),
            "node" => ("node", allow.node, NODE_ATTRS),
            "package" => ("package", allow.package, PACKAGE_ATTRS),
            "count" => {
                if !allow.count {
                    return not_here(
                        "count",
                        "`count.index` is only known in a block that sets `count`",
                    );
                }
                if r.name.as_deref() != Some("index") {
                    return Some(
                        Diagnostic::error("`count` only has the attribute `index`")
                            .at(r.span.clone())
                            .help("write `count.index`"),
                    );
                }
                return None;
            }
            "each" => {
                if !allow.each {
                    return not_here("each", "`each.key` and `each.value` are only known in a block that sets `for_each`");
                }
                if !matches!(r.name.as_deref(), Some("key") | Some("value")) {
                    return Some(
                        Diagnostic::error("`each` only has the attributes `key` and `value`")
                            .at(r.span.clone()),
                    );
                }
                return None;
            }
            other => {
                let roots = [
                    "var", "local", "network", "node", "package", "count", "each",
                ];
                let mut d =
                    Diagnostic::error(format!("unknown reference `{other}`")).at(r.span.clone());
                d = match (other, did_you_mean(other, roots)) {
                    ("profile" | "platform", _) => d.help(format!(
                        "a {other} is named with a string: write `{other} = \"{}\"`",
                        r.name.as_deref().unwrap_or("NAME")
                    )),
                    (_, s) => match s {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("references start with `var.`, `local.`, `network.`, `node.` or `package.`; a string needs quotes"),
                    },
                };
                return Some(d);
            }
        };
        let Some(name) = &r.name else {
            return Some(
                Diagnostic::error(format!("`{}` must be followed by a {kind} name", r.root))
                    .at(r.span.clone())
                    .help(format!("write `{}.NAME`", r.root)),
            );
        };
        let exists = match kind {
            "local" => self.decl.locals.contains_key(name),
            "variable" => self.decl.is_declared("variable", name),
            "node" => {
                self.decl.is_declared("node", name)
                    || self.decl.names_of("package").iter().any(|p| {
                        implicit_node_name(p) == *name
                            && self.decl.declared["package"]
                                .get(p)
                                .is_some_and(|&bi| self.blocks[bi].attr("on").is_none())
                    })
            }
            k => self.decl.is_declared(k, name),
        };
        if !exists {
            let candidates: Vec<String> = if kind == "local" {
                self.decl.locals.keys().cloned().collect()
            } else {
                self.decl.names_of(kind)
            };
            let mut d =
                Diagnostic::error(format!("unknown {kind} `{}.{name}`", r.root)).at(r.span.clone());
            d = match did_you_mean(name, candidates.iter().map(String::as_str)) {
                Some(s) => d.help(format!("did you mean `{}.{s}`?", r.root)),
                None if candidates.is_empty() => d.help(match kind {
                    "local" => format!("no local value is declared: declare it in a `locals` block: `{name} = ...`"),
                    "variable" => format!("no variable is declared: declare it with `variable \"{name}\" {{ ... }}`"),
                    k => format!("no {k} is declared: declare it with `{k} \"{name}\" {{ ... }}`"),
                }),
                None => d.help(format!("declared: {}", candidates.join(", "))),
            };
            return Some(d);
        }
        if !allowed {
            let why = match (block.kind.as_str(), r.root.as_str()) {
                ("variable", _) => "variable defaults and types are constants; validations may use `var.` only",
                ("node", "node") => "`count`, `for_each`, `network`, `networks` and `address` are evaluated before node addresses exist, so they cannot refer to nodes",
                (_, "node") | (_, "network") | (_, "package") => "resources can be referred to from nodes, packages and outputs",
                _ => "this attribute is evaluated before that value exists",
            };
            return not_here(&format!("{}.{name}", r.root), why);
        }
        if let Some(d) = self.check_indexing(r, kind, name) {
            return Some(d);
        }
        if let Some(at) = &r.attr {
            if !attrs.is_empty() && !attrs.contains(&at.as_str()) {
                let mut d = Diagnostic::error(format!("a {kind} has no attribute `{at}`"))
                    .at(r.attr_span.clone().unwrap_or_else(|| r.span.clone()));
                d = match did_you_mean(at, attrs.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("a {kind} has: {}", attrs.join(", "))),
                };
                return Some(d);
            }
        }
        None
    }

    /// `node.edge.address` of a node with `count` (a list: it needs an
    /// index), and `node.one[0]` of a node without `count` or `for_each`.
    pub(super) fn check_indexing(
        &self,
        r: &Reference,
        kind: &str,
        name: &str,
    ) -> Option<Diagnostic> {
        if !matches!(kind, "node" | "network") || r.splat {
            return None;
        }
        let block = self
            .decl
            .of(kind)
            .and_then(|m| m.get(name))
            .map(|&bi| &self.blocks[bi])?;
        let attr = r.attr.as_deref().unwrap_or("id");
        let repeated = ["count", "for_each"]
            .into_iter()
            .find(|a| block.attrs.contains_key(*a));
        match (repeated, r.indexed) {
            (Some(rep), false) if r.attr.is_some() => {
                let one = if rep == "count" { "[0]" } else { "[\"KEY\"]" };
                Some(
                    Diagnostic::error(format!(
                        "`{kind}.{name}` has `{rep}`: it is a {} of instances, not one",
                        if rep == "count" { "list" } else { "map" }
                    ))
                    .at(r.attr_span.clone().unwrap_or_else(|| r.span.clone()))
                    .help(format!(
                        "refer to one instance, such as `{kind}.{name}{one}.{attr}`, or to all with `{kind}.{name}[*].{attr}`"
                    )),
                )
            }
            (None, true) => Some(
                Diagnostic::error(format!(
                    "`{kind}.{name}` has no `count` or `for_each`: it is one instance, not a list"
                ))
                .at(r.span.clone())
                .help(format!("write `{kind}.{name}.{attr}`, without an index")),
            ),
            _ => None,
        }
    }

    pub(super) fn check_depends_on(&mut self, b: &RawBlock, a: &RawAttr) {
        match refs::static_list(a.expr_span.file, &a.expr) {
            Err(span) => {
                let quoted = self
                    .parsed
                    .sources
                    .get(span.file)
                    .text
                    .get(span.range.clone())
                    .is_some_and(|t| t.starts_with('"'));
                self.err(
                    Diagnostic::error("`depends_on` takes a list of resources")
                        .at(span)
                        .help(if quoted {
                            "write the resources without quotes: `depends_on = [node.edge, network.lab]`"
                        } else {
                            "write `depends_on = [node.edge, network.lab]`"
                        }),
                )
            }
            Ok(list) => {
                for (r, _) in list {
                    let allow = Allow {
                        network: true,
                        node: true,
                        package: true,
                        ..NOTHING
                    };
                    if !matches!(r.root.as_str(), "network" | "node" | "package") {
                        self.err(
                            Diagnostic::error(format!(
                                "`depends_on` takes resources, found `{}`",
                                r.root
                            ))
                            .at(r.span.clone())
                            .help("list networks, nodes or packages, such as `node.edge`"),
                        );
                        continue;
                    }
                    if let Some(d) = self.check_ref(b, "depends_on", &r, allow) {
                        self.err(d);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::check;

    #[test]
    fn unknown_references_and_functions() {
        check(
            "output \"o\" {\n  value = var.nope\n}\n",
            "2:11: error: unknown variable `var.nope`",
        );
        check(
            "locals {\n  a = 1\n}\noutput \"o\" {\n  value = local.b\n}\n",
            "5:11: error: unknown local `local.b`",
        );
        check(
            "output \"o\" {\n  value = nope.x\n}\n",
            "2:11: error: unknown reference `nope`",
        );
        check(
            "output \"o\" {\n  value = lenght([])\n}\n",
            "2:11: error: unknown function `lenght`",
        );
        check(
            "output \"o\" {\n  value = tg_host\n}\n",
            "2:11: error: unknown reference `tg_host`",
        );
        check(
            "output \"o\" {\n  value = tg_checked_add(1, 2)\n}\n",
            "2:11: error: unknown function `tg_checked_add`",
        );
        check(
            "network \"lab\" {}\noutput \"o\" {\n  value = network.lab.cdir\n}\n",
            "3:23: error: a network has no attribute `cdir`",
        );
    }

    #[test]
    fn what_may_refer_to_what() {
        check(
            "variable \"a\" {\n  default = 1\n}\nvariable \"b\" {\n  default = var.a\n}\n",
            "5:13: error: `var.a` cannot be used in `default` of variable `b`",
        );
        check(
            "network \"lab\" {}\nlocals {\n  a = network.lab.cidr\n}\n",
            "3:7: error: `network.lab` cannot be used in `a` of a `locals` block",
        );
        check("network \"lab\" {}\nnode \"a\" {\n  image = \"host\"\n}\nnode \"b\" {\n  image   = \"host\"\n  address = node.a.address\n}\n", "7:13: error: `node.a` cannot be used in `address` of node `b`");
        check("network \"lab\" {}\nnode \"a\" {\n  image = \"host\"\n  labels = { i = count.index }\n}\n", "4:18: error: `count` cannot be used in `labels` of node `a`");
    }

    #[test]
    fn indexing_and_depends_on() {
        check("network \"lab\" {}\nnode \"e\" {\n  count = 2\n  image = \"host\"\n}\noutput \"o\" {\n  value = node.e.address\n}\n", "7:18: error: `node.e` has `count`: it is a list of instances, not one");
        check("network \"lab\" {}\nnode \"e\" {\n  image = \"host\"\n}\noutput \"o\" {\n  value = node.e[0].address\n}\n", "6:11: error: `node.e` has no `count` or `for_each`: it is one instance, not a list");
        check("network \"lab\" {}\nnode \"e\" {\n  image      = \"host\"\n  depends_on = [\"network.lab\"]\n}\n", "4:17: error: `depends_on` takes a list of resources");
        check("network \"lab\" {}\nnode \"e\" {\n  image      = \"host\"\n  depends_on = [var.x]\n}\n", "4:17: error: `depends_on` takes resources, found `var`");
    }
}
