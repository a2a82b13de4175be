//! Declarations: every block's name, checked and registered once; duplicates and
//! clashing implicit package nodes. Owns the name → block tables the later
//! stages look things up in; evaluates nothing.

use super::*;

impl Checker<'_> {
    pub(super) fn declare(&mut self) {
        let blocks = self.blocks;
        let mut singletons: HashMap<&str, Span> = HashMap::new();
        for (i, b) in blocks.iter().enumerate() {
            let kind: &'static str = match b.kind.as_str() {
                "variable" => "variable",
                "profile" => "profile",
                "network" => "network",
                "node" => "node",
                "package" => "package",
                "output" => "output",
                "platform" => "platform",
                "locals" => {
                    for (name, a) in &b.attrs {
                        if let Some((bi, an)) = self.decl.locals.get(name) {
                            let first = blocks[*bi].attrs[an].span.clone();
                            let d = Diagnostic::error(format!(
                                "local value `{name}` is declared twice"
                            ))
                            .at(a.span.clone())
                            .help(format!(
                                "the first is at {}: rename or remove one",
                                self.loc(&first)
                            ));
                            self.err(d);
                            continue;
                        }
                        self.decl.locals.insert(name.clone(), (i, name.clone()));
                    }
                    continue;
                }
                other @ ("testbed" | "state") => {
                    if let Some(first) = singletons.get(other) {
                        let d = Diagnostic::error(format!("only one `{other}` block is allowed"))
                            .at(b.span.clone())
                            .help(format!("merge it with the one at {}", self.loc(first)));
                        self.err(d);
                    } else {
                        singletons.insert(
                            if other == "testbed" {
                                "testbed"
                            } else {
                                "state"
                            },
                            b.span.clone(),
                        );
                    }
                    continue;
                }
                _ => continue,
            };
            let name = if kind == "platform" {
                b.labels.get(1).cloned().unwrap_or_default()
            } else {
                b.label().to_string()
            };
            let check = match kind {
                "network" | "node" => names::check_resource_name(&name),
                "profile" => names::check_profile_name(&name),
                "package" => names::check_debian_package(&name),
                _ => names::check_identifier(&name),
            };
            if let Err(why) = check {
                let what = match kind {
                    "network" | "node" => format!("invalid {kind} name `{name}`: {why}"),
                    "package" => format!("invalid package name `{name}`: {why}"),
                    _ => format!("invalid {kind} name `{name}`: {why}"),
                };
                let help = match kind {
                    "network" | "node" => "it becomes a host name and part of host object names: use lowercase letters, digits and `-`, such as `edge-eu`",
                    "package" => "use the package's name as Debian spells it, such as `nginx` or `libssl3`",
                    "profile" => "use lowercase letters, digits and `-`, `_`, `.`, `:`, such as `cdn:basic`",
                    _ => "use letters, digits, `_` and `-`, starting with a letter",
                };
                self.err(Diagnostic::error(what).at(b.span.clone()).help(help));
            }
            let map = self.decl.declared.entry(kind).or_default();
            if let Some(&first) = map.get(&name) {
                let first_span = blocks[first].span.clone();
                let d = Diagnostic::error(format!("{kind} `{name}` is declared twice"))
                    .at(b.span.clone())
                    .help(format!(
                        "the first is at {}: rename or remove one",
                        self.loc(&first_span)
                    ));
                self.err(d);
                continue;
            }
            map.insert(name, i);
        }
        // A node and a package's implicit node must not clash, nor two
        // packages' implicit nodes (`python3.11` and `python3-11`).
        let mut implicit_of: HashMap<String, String> = HashMap::new();
        for (pkg, &bi) in self.decl.of("package").cloned().unwrap_or_default().iter() {
            if blocks[bi].attr("on").is_none() {
                let implicit = implicit_node_name(pkg);
                if let Some(other) = implicit_of.insert(implicit.clone(), pkg.clone()) {
                    let d = Diagnostic::error(format!(
                        "packages `{other}` and `{pkg}` have no `on`, and would both get the node `{implicit}`"
                    ))
                    .at(blocks[bi].span.clone())
                    .help("add `on = [...]` to one of them");
                    self.err(d);
                    continue;
                }
                if self.decl.is_declared("node", &implicit) {
                    let d = Diagnostic::error(format!(
                        "package `{pkg}` has no `on`, and its node `{implicit}` clashes with a node of that name"
                    ))
                    .at(blocks[bi].span.clone())
                    .help("add `on = [...]` to the package, or rename the node");
                    self.err(d);
                }
            }
        }
    }
}

/// The node a package without `on` gets: `pkg-NAME` with `+` and `.` as `-`.
pub fn implicit_node_name(package: &str) -> String {
    let cleaned: String = package
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("pkg-{}", cleaned.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit_names() {
        assert_eq!(implicit_node_name("nginx"), "pkg-nginx");
        assert_eq!(implicit_node_name("g++"), "pkg-g");
        assert_eq!(implicit_node_name("python3.11"), "pkg-python3-11");
    }
}

#[cfg(test)]
mod stage_tests {
    use crate::config::eval::testing::check;

    #[test]
    fn names_and_duplicates() {
        check(
            "network \"Lab\" {}\n",
            "1:1: error: invalid network name `Lab`: it must start with a lowercase letter",
        );
        check("node \"a_b\" {\n  image = \"host\"\n}\n", "1:1: error: invalid node name `a_b`: it contains `_`: only lowercase letters, digits and `-` are allowed");
        check(
            "network \"a\" {}\nnetwork \"a\" {}\n",
            "2:1: error: network `a` is declared twice",
        );
        check(
            "locals {\n  a = 1\n}\nlocals {\n  a = 2\n}\n",
            "5:3: error: local value `a` is declared twice",
        );
        check(
            "testbed {}\ntestbed {}\n",
            "2:1: error: only one `testbed` block is allowed",
        );
        check(
            "state {}\nstate {}\n",
            "2:1: error: only one `state` block is allowed",
        );
        check(
            "variable \"1x\" {\n  default = 1\n}\n",
            "1:1: error: invalid variable name `1x`: it must start with a letter or `_`",
        );
    }

    #[test]
    fn implicit_nodes() {
        check(
            "network \"lab\" {}\nnode \"pkg-nginx\" {\n  image = \"host\"\n}\npackage \"nginx\" {}\n",
            "5:1: error: package `nginx` has no `on`, and its node `pkg-nginx` clashes with a node of that name",
        );
        check(
            "network \"lab\" {}\npackage \"python3.11\" {}\npackage \"python3-11\" {}\n",
            "3:1: error: packages `python3.11` and `python3-11` have no `on`, and would both get the node `pkg-python3-11`",
        );
    }
}
