//! Packages: the nodes a package goes on (`on`, or its implicit node), its
//! source and version, and one instance per node.

use super::*;

impl Evaluator<'_> {
    pub(super) fn eval_packages(&mut self) {
        let blocks = self.blocks;
        let rep = Repetition::default();
        let decls = self.decl.of("package").cloned().unwrap_or_default();
        // Packages may depend on packages: order them.
        let names: Vec<String> = decls.keys().cloned().collect();
        let edges = edges_by_name(&names, |i| {
            self.static_depends_on(&blocks[decls[&names[i]]])
                .into_iter()
                .filter(|t| t.kind() == ResourceKind::Package)
                .map(|t| t.name().to_string())
                .collect()
        });
        for pi in topo_order(&edges) {
            let name = names[pi].clone();
            self.open_value(format!("package.{name}"));
            let b = &blocks[decls[&name]];
            let version = self.eval_string(b, "version", &rep);
            if let Some(v) = &version {
                if let Err(why) = names::check_debian_version(v) {
                    let span = b
                        .attr("version")
                        .map(|a| a.expr_span.clone())
                        .unwrap_or(b.span.clone());
                    self.err(Diagnostic::error(format!("invalid version `{v}` for package `{name}`: {why}")).at(span).help("give the exact Debian version, such as `1.22.1-9`; `apt-cache policy NAME` lists them"));
                }
            }
            let source_kind = self.eval_string(b, "source", &rep);
            let deb = self.eval_string(b, "deb", &rep);
            let source = match (source_kind.as_deref(), deb) {
                (None | Some("apt"), None) => PackageSource::Apt,
                (None | Some("deb"), Some(path)) => {
                    let p = PathBuf::from(&path);
                    let full = if p.is_absolute() {
                        p
                    } else {
                        self.opts.dir.join(p)
                    };
                    let confined = self.opts.env.check_readable(&full);
                    let full = match &confined {
                        Ok(real) if self.opts.env.roots().is_some() => real.clone(),
                        _ => std::fs::canonicalize(&full).unwrap_or(full),
                    };
                    let problem = match confined.map(|_| std::fs::metadata(&full)) {
                        Err(crate::environment::Confined::Outside(_)) => Some(format!(
                            "deb file `{path}` is outside the directories this testbed may read"
                        )),
                        Err(e) => Some(format!("deb file `{path}`: {e}")),
                        Ok(meta) => match meta {
                            Ok(m) if m.is_file() => None,
                            Ok(m) => Some(format!(
                                "deb file `{path}` is not a regular file: it is {}",
                                crate::config::source::kind_of(&m)
                            )),
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                                Some(format!("deb file `{path}` does not exist"))
                            }
                            Err(e) => Some(format!("cannot read deb file `{path}`: {e}")),
                        },
                    };
                    if let Some(problem) = problem {
                        let span = b
                            .attr("deb")
                            .map(|a| a.expr_span.clone())
                            .unwrap_or(b.span.clone());
                        self.err(Diagnostic::error(problem).at(span).help(
                            "give a path to a `.deb` file, relative to the testbed directory",
                        ));
                    }
                    PackageSource::Deb { path: full }
                }
                (Some("deb"), None) => {
                    self.err(
                        Diagnostic::error(format!(
                            "package `{name}` has `source = \"deb\"` but no `deb` file"
                        ))
                        .at(b.span.clone())
                        .help("add `deb = \"path/to/file.deb\"`"),
                    );
                    continue;
                }
                (Some("apt"), Some(_)) => {
                    let span = b
                        .attr("source")
                        .map(|a| a.expr_span.clone())
                        .unwrap_or(b.span.clone());
                    self.err(
                        Diagnostic::error("`source = \"apt\"` and `deb` do not go together")
                            .at(span)
                            .help("remove `source`, or the `deb` file"),
                    );
                    continue;
                }
                (Some(other), _) => {
                    let span = b
                        .attr("source")
                        .map(|a| a.expr_span.clone())
                        .unwrap_or(b.span.clone());
                    let mut d =
                        Diagnostic::error(format!("unknown package source `{other}`")).at(span);
                    d = match did_you_mean(other, ["apt", "deb"]) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(
                            "sources are `apt` (default) and `deb` (with `deb = \"file.deb\"`)",
                        ),
                    };
                    self.err(d);
                    continue;
                }
            };
            let on: Vec<usize> = match b.attr("on").cloned() {
                None => self
                    .node_resource
                    .get(&implicit_node_name(&name))
                    .cloned()
                    .unwrap_or_default(),
                Some(a) => match self.package_targets(&a) {
                    Some(v) => v,
                    None => continue,
                },
            };
            let wait_for = self.eval_wait_for(b, &Repetition::default());
            let mut extra = self.static_depends_on(b);
            extra = self.expand_targets(&extra);
            let prevent = self.prevent_destroy(b);
            let mark = self.attr_marks(b, &["version", "deb"]);
            let sensitive = mark
                .as_ref()
                .map(sensitivity::package_paths)
                .unwrap_or_default();
            if let Some(m) = mark {
                self.marks.packages.insert(name.clone(), m);
            }
            let at = b
                .attr("on")
                .map(|a| a.expr_span.clone())
                .unwrap_or(b.span.clone());
            if !self.admit_instances(on.len() as u64, at) {
                continue;
            }
            let mut hosts = Vec::new();
            for ni in on {
                let node = &self.nodes[ni];
                hosts.push(Value::from(node.host.as_str()));
                let addr = InstanceAddr::new(
                    ResourceKind::Package,
                    name.clone(),
                    InstanceKey::Node(Box::new(node.addr.clone())),
                );
                let mut depends_on = vec![node.addr.clone()];
                depends_on.extend(
                    extra
                        .iter()
                        .filter(|d| {
                            // A package depending on a package: the instance on the same node.
                            d.kind() != ResourceKind::Package
                                || matches!(&d.key, InstanceKey::Node(n) if **n == node.addr)
                        })
                        .cloned(),
                );
                dedup(&mut depends_on);
                let spec = PackageSpec {
                    wait_for: wait_for.clone(),
                    name: name.clone(),
                    version: version.clone(),
                    source: source.clone(),
                    node: node.host.clone(),
                };
                let mut attrs = serde_json::Map::new();
                attrs.insert("name".into(), name.clone().into());
                attrs.insert(
                    "version".into(),
                    version
                        .clone()
                        .map(Into::into)
                        .unwrap_or(serde_json::Value::Null),
                );
                attrs.insert("node".into(), node.host.clone().into());
                self.packages.push(DesiredInstance {
                    address: addr,
                    platform: node.platform.clone(),
                    spec: Spec::Package(spec),
                    depends_on,
                    attributes: serde_json::Value::Object(attrs),
                    prevent_destroy: prevent,
                    span: Some(b.span.clone()),
                    sensitive: sensitive.clone(),
                });
            }
            let mut o = hcl::Map::new();
            o.insert("id".into(), Value::from(format!("package.{name}")));
            o.insert("name".into(), Value::from(name.as_str()));
            o.insert(
                "version".into(),
                version.map(Value::from).unwrap_or(Value::Null),
            );
            o.insert("nodes".into(), Value::Array(hosts));
            self.package_values.insert(name.clone(), Value::Object(o));
        }
    }

    /// The nodes a package's `on` names.
    pub(super) fn package_targets(&mut self, a: &RawAttr) -> Option<Vec<usize>> {
        let v = self.eval(a, &Repetition::default())?;
        let mut ids: Vec<String> = Vec::new();
        let mut bad = None;
        collect_node_ids(&v, &mut |id| ids.push(id.to_string()), &mut |other| {
            bad = Some(types::describe(other))
        });
        let mut out = Vec::new();
        for id in ids {
            match id
                .parse::<InstanceAddr>()
                .ok()
                .and_then(|x| self.node_by_addr.get(&x).copied())
            {
                Some(i) if !out.contains(&i) => out.push(i),
                Some(_) => {}
                None => bad = Some(format!("`{id}`")),
            }
        }
        if let Some(b) = bad {
            self.err(
                Diagnostic::error(format!(
                    "`on` takes nodes, such as `[node.edge]`, found {b}"
                ))
                .at(a.expr_span.clone())
                .help("write node references, without quotes: `on = [node.edge, node.web[\"a\"]]`"),
            );
            return None;
        }
        if out.is_empty() {
            self.err(
                Diagnostic::warning("`on` names no node: the package is installed nowhere")
                    .at(a.expr_span.clone())
                    .help(
                        "name a node in `on`, or remove `on` to give the package a node of its own",
                    ),
            );
        }
        Some(out)
    }
}

pub(super) fn collect_node_ids(
    v: &Value,
    found: &mut dyn FnMut(&str),
    other: &mut dyn FnMut(&Value),
) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| collect_node_ids(x, found, other)),
        Value::Object(o) => match o.get("id").and_then(|i| i.as_str()) {
            Some(id) if id.starts_with("node.") => found(id),
            _ => o.values().for_each(|x| collect_node_ids(x, found, other)),
        },
        x => other(x),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::{check, check_with, options};

    /// A confined caller reads files, `.deb`s and variables only as
    /// allowed, and what it may not read is an error at the call.
    #[test]
    fn confined_reads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tb");
        std::fs::create_dir_all(root.join("files")).unwrap();
        std::fs::write(root.join("files/a.txt"), "in").unwrap();
        std::fs::write(root.join("files/t.tpl"), "${x}").unwrap();
        std::fs::write(root.join("files/p.deb"), "deb").unwrap();
        std::fs::write(root.join("secret"), "out").unwrap();
        std::os::unix::fs::symlink(root.join("secret"), root.join("files/link")).unwrap();
        let mut opts = options();
        opts.dir = root.clone();
        opts.env = opts
            .env
            .with_var("SECRET", "s3")
            .confined_to(vec![root.join("files")])
            .with_testbed_vars(["TG_TEST"]);
        let out = |expr: &str| format!("output \"o\" {{\n  value = {expr}\n}}\n");
        check_with(&opts, &out(r#"file("files/a.txt")"#), r#"o = "in""#);
        check_with(&opts, &out(r#"fileexists("files/none")"#), "o = false");
        check_with(
            &opts,
            &out(r#"templatefile("files/t.tpl", { x = env("TG_TEST") })"#),
            r#"o = "from-env""#,
        );
        let outside = |call: &str, path: &str| {
            format!(
                "2:11: error: in `{call}(...)`: cannot read `{path}`{}: it is outside the directories this testbed may read",
                if path.starts_with('/') { String::new() } else { format!(" (resolved to `{}`)", root.join(path).display()) }
            )
        };
        for (call, path) in [
            ("file", "secret"),
            ("file", "files/../secret"),
            ("file", "files/link"),
            ("file", "/etc/passwd"),
            ("fileexists", "/etc/passwd"),
            ("filebase64", "/etc/passwd"),
        ] {
            let src = out(&format!("{call}({path:?})"));
            let got = crate::config::eval::testing::render_with(&opts, &src);
            assert!(got.contains(&outside(call, path)), "{call}({path}): {got}");
        }
        check_with(&opts, &out(r#"env("SECRET", "none")"#), r#"o = "none""#);
        check_with(&opts, &out(r#"env("HOME", "none")"#), r#"o = "none""#);
        let pkg = |deb: &str| {
            format!("network \"lab\" {{}}\nnode \"e\" {{\n  image = \"host\"\n}}\npackage \"pk\" {{\n  deb = \"{deb}\"\n  on  = [node.e]\n}}\n")
        };
        check_with(&opts, &pkg("files/p.deb"), "ok");
        for deb in ["/etc/passwd", "files/link", "files/../secret"] {
            check_with(
                &opts,
                &pkg(deb),
                &format!(
                    "6:9: error: deb file `{deb}` is outside the directories this testbed may read"
                ),
            );
        }
    }

    #[test]
    fn packages() {
        check(
            "network \"lab\" {}\nnode \"e\" {\n  count = 2\n  image = \"host\"\n}\npackage \"nginx\" {\n  version = \"1.22.1-9\"\n  on      = node.e\n}\noutput \"p\" {\n  value = [package.nginx.nodes, package.nginx.version]\n}\n",
            r#"p = [["e-0","e-1"],"1.22.1-9"]"#,
        );
        check(
            "network \"lab\" {}\npackage \"nginx\" {\n  requires {\n    image = \"host\"\n  }\n}\noutput \"p\" {\n  value = package.nginx.nodes\n}\n",
            r#"p = ["pkg-nginx"]"#,
        );
        check("network \"lab\" {}\nnode \"e\" {\n  image = \"host\"\n}\npackage \"nginx\" {\n  deb = \"/dev/null\"\n  on  = [node.e]\n}\n", "6:9: error: deb file `/dev/null` is not a regular file: it is a character device");
        check("network \"lab\" {}\nnode \"e\" {\n  image = \"host\"\n}\npackage \"nginx\" {\n  deb = \"/nonexistent/x.deb\"\n  on  = [node.e]\n}\n", "6:9: error: deb file `/nonexistent/x.deb` does not exist");
        check("network \"lab\" {}\nnode \"e\" {\n  image = \"host\"\n}\npackage \"nginx\" {\n  deb = \"/tmp\"\n  on  = [node.e]\n}\n", "6:9: error: deb file `/tmp` is not a regular file: it is a directory");
        check(
            "network \"lab\" {}\nnode \"e\" {\n  image = \"host\"\n}\npackage \"nginx\" {\n  version = \"x\"\n  on      = [node.e]\n}\n",
            "6:13: error: invalid version `x` for package `nginx`: the upstream version must start with a digit",
        );
        check(
            "network \"lab\" {}\nnode \"e\" {\n  image = \"host\"\n}\npackage \"nginx\" {\n  on = [\"e\"]\n}\n",
            "6:8: error: `on` takes nodes, such as `[node.edge]`, found string \"e\"",
        );
    }
}
