//! Nodes: placement (instances, networks, fixed addresses), then every other
//! attribute (profile, image, labels, platform) and their dependencies. Address
//! assignment itself is in `addresses`.

use super::*;

impl Evaluator<'_> {
    /// Node blocks, and packages without `on` (their implicit node), in
    /// declaration order.
    pub(super) fn node_sources(&self) -> Vec<(String, usize, bool)> {
        let mut out: Vec<(String, usize, bool)> = Vec::new();
        if let Some(m) = self.decl.of("node") {
            out.extend(m.iter().map(|(n, &bi)| (n.clone(), bi, false)));
        }
        if let Some(m) = self.decl.of("package") {
            for (p, &bi) in m {
                if self.blocks[bi].attr("on").is_none() {
                    out.push((implicit_node_name(p), bi, true));
                }
            }
        }
        out.sort_by_key(|(_, bi, _)| *bi);
        out
    }

    /// The block whose attributes describe a node: the node block, or the
    /// `requires` block of a package (an empty one when absent).
    pub(super) fn node_attrs_block(blocks: &[RawBlock], bi: usize, implicit: bool) -> &RawBlock {
        let b = &blocks[bi];
        if !implicit {
            return b;
        }
        // `new` gave every package without `on` a `requires` block.
        b.blocks
            .iter()
            .find(|nb| nb.kind == "requires")
            .unwrap_or(b)
    }

    pub(super) fn place_nodes(&mut self) {
        let blocks = self.blocks;
        for (name, bi, implicit) in self.node_sources() {
            self.open_value(format!("node.{name}"));
            let ab = Self::node_attrs_block(blocks, bi, implicit);
            let exp = if implicit {
                self.admit_instances(1, ab.span.clone())
                    .then_some(Expansion::Single)
            } else {
                self.expand(ab)
            };
            let Some(exp) = exp else { continue };
            self.expansions
                .insert((ResourceKind::Node, name.clone()), exp.clone());
            let prevent = if implicit {
                false
            } else {
                self.prevent_destroy(ab)
            };
            let depends_on = if implicit {
                self.static_depends_on(&blocks[bi])
            } else {
                self.static_depends_on(ab)
            };
            for (key, rep) in exp.instances() {
                let addr = InstanceAddr::new(ResourceKind::Node, name.clone(), key);
                let host = addr.host_name();
                if let Err(why) = names::check_hostname(&host) {
                    self.err(
                        Diagnostic::error(why)
                            .at(ab.span.clone())
                            .help("use a shorter node name or key"),
                    );
                    continue;
                }
                let pkg = implicit.then(|| blocks[bi].label());
                let networks = self.eval_node_networks(ab, &rep, &addr, pkg);
                let Some(networks) = networks else { continue };
                let fixed = match ab.attr("address") {
                    None => None,
                    Some(a) => match self.eval(a, &rep) {
                        Some(Value::String(s)) => match s.parse::<Ipv4Addr>() {
                            Ok(ip) => Some((ip, a.expr_span.clone())),
                            Err(_) => {
                                self.err(Diagnostic::error(format!("invalid address `{}`: expected an IPv4 address such as 10.42.0.10", self.shown(&a.expr, &s))).at(a.expr_span.clone()));
                                continue;
                            }
                        },
                        Some(Value::Null) => None,
                        Some(other) => {
                            self.err(
                                Diagnostic::error(format!(
                                    "`address` must be a string, found {}",
                                    types::describe(&other)
                                ))
                                .at(a.expr_span.clone()),
                            );
                            continue;
                        }
                        None => continue,
                    },
                };
                let inst = NodeInst {
                    addr: addr.clone(),
                    block: bi,
                    rep,
                    host,
                    networks,
                    fixed,
                    addresses: Vec::new(),
                    object: Value::Null,
                    spec: None,
                    platform: None,
                    prevent_destroy: prevent,
                    depends_on: depends_on.clone(),
                    sensitive: Vec::new(),
                };
                self.node_resource
                    .entry(name.clone())
                    .or_default()
                    .push(self.nodes.len());
                self.node_by_addr.insert(addr, self.nodes.len());
                self.nodes.push(inst);
            }
        }
        self.close_value();
        // Host names must be unique in a session.
        let mut seen: HashMap<String, InstanceAddr> = HashMap::new();
        for n in &self.nodes {
            if let Some(other) = seen.insert(n.host.clone(), n.addr.clone()) {
                let span = self.blocks[n.block].span.clone();
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{}` and `{other}` would both have the host name `{}`",
                        n.addr, n.host
                    ))
                    .at(span)
                    .help("rename one of the nodes"),
                );
            }
        }
    }

    /// The networks of a node; `pkg` names the package of an implicit node.
    pub(super) fn eval_node_networks(
        &mut self,
        b: &RawBlock,
        rep: &Repetition,
        addr: &InstanceAddr,
        pkg: Option<&str>,
    ) -> Option<Vec<usize>> {
        let (attr, many) = match (b.attr("network").cloned(), b.attr("networks").cloned()) {
            (Some(_), Some(m)) => {
                self.err(
                    Diagnostic::error("`network` and `networks` cannot both be set")
                        .at(m.span.clone())
                        .help("list every network in `networks`"),
                );
                return None;
            }
            (Some(a), None) => (a, false),
            (None, Some(a)) => (a, true),
            (None, None) => {
                // A node on an ssh pool is a whole host: no tg network
                // unless it names one.
                if self.on_ssh_pool(b, rep) {
                    return Some(Vec::new());
                }
                // No network given: the first declared network, if there is exactly one.
                return match self.nets.len() {
                    1 => Some(vec![0]),
                    0 => {
                        self.err(
                            Diagnostic::error(format!("`{addr}` is on no network"))
                                .at(b.span.clone())
                                .help("declare a `network` block and set `network = network.NAME`"),
                        );
                        None
                    }
                    _ => {
                        let d = match pkg {
                            None => Diagnostic::error(format!(
                                "`{addr}` does not say which network it is on"
                            ))
                            .help("set `network = network.NAME` or `networks = [...]`"),
                            Some(p) => Diagnostic::error(format!(
                                "package `{p}` has no `on`, and does not say which network its node `{addr}` is on"
                            ))
                            .help(format!(
                                "add `requires {{ network = network.NAME }}` to package `{p}`, or install it on existing nodes with `on = [node.NAME]`"
                            )),
                        };
                        self.err(d.at(b.span.clone()));
                        None
                    }
                };
            }
        };
        let v = self.eval(&attr, rep)?;
        let items: Vec<Value> = match (many, v) {
            (false, Value::Array(_)) => {
                self.err(
                    Diagnostic::error("`network` takes one network; use `networks` for several")
                        .at(attr.expr_span.clone()),
                );
                return None;
            }
            (_, Value::Array(a)) => a,
            (_, v) => vec![v],
        };
        let mut out = Vec::new();
        for item in items {
            let id = item
                .as_object()
                .and_then(|o| o.get("id"))
                .and_then(|v| v.as_str())
                .map(str::to_string);
            let idx = id
                .as_deref()
                .and_then(|id| id.parse::<InstanceAddr>().ok())
                .and_then(|a| self.net_by_addr.get(&a).copied());
            match idx {
                Some(i) if !out.contains(&i) => out.push(i),
                Some(_) => {
                    self.err(
                        Diagnostic::error("the same network is listed twice")
                            .at(attr.expr_span.clone()),
                    );
                    return None;
                }
                None => {
                    self.err(
                        Diagnostic::error(format!(
                            "`{}` must name networks, such as `network.lab`, found {}",
                            attr.name,
                            types::describe(&item)
                        ))
                        .at(attr.expr_span.clone())
                        .help(match &item {
                            Value::String(name) => format!(
                                "write a reference, without quotes: `network.{name}`"
                            ),
                            _ => "a network with `count` or `for_each` needs an index: `network.lab[0]`"
                                .to_string(),
                        }),
                    );
                    return None;
                }
            }
        }
        if out.is_empty() {
            self.err(
                Diagnostic::error(format!("`{}` names no network", attr.name))
                    .at(attr.expr_span.clone()),
            );
            return None;
        }
        Some(out)
    }

    pub(super) fn base_node_object(&self, i: usize) -> hcl::Map<String, Value> {
        let n = &self.nodes[i];
        let mut o = hcl::Map::new();
        o.insert("id".into(), Value::from(n.addr.to_string()));
        o.insert("name".into(), Value::from(n.addr.name()));
        o.insert("hostname".into(), Value::from(n.host.as_str()));
        o.insert(
            "address".into(),
            n.addresses
                .first()
                .map(|a| Value::from(a.to_string()))
                .unwrap_or(Value::Null),
        );
        let mut addrs = hcl::Map::new();
        for (slot, &net) in n.networks.iter().enumerate() {
            addrs.insert(
                self.nets[net].host.clone(),
                Value::from(n.addresses[slot].to_string()),
            );
        }
        o.insert("addresses".into(), Value::Object(addrs));
        o
    }

    pub(super) fn eval_nodes(&mut self) {
        // Order node resources by their references to each other.
        let sources = self.node_sources();
        let names: Vec<String> = sources.iter().map(|(n, _, _)| n.clone()).collect();
        let blocks = self.blocks;
        let edges = edges_by_name(&names, |i| {
            let (_, bi, implicit) = &sources[i];
            Self::node_attrs_block(blocks, *bi, *implicit)
                .attrs
                .values()
                .flat_map(|a| referenced_names(a, "node"))
                .collect()
        });
        for ri in topo_order(&edges) {
            let (name, bi, implicit) = &sources[ri];
            if self.is_poisoned("node", name) {
                continue;
            }
            self.open_value(format!("node.{name}"));
            let ab = Self::node_attrs_block(blocks, *bi, *implicit);
            let Some(ids) = self.node_resource.get(name).cloned() else {
                continue;
            };
            for i in ids {
                self.eval_node(i, ab);
            }
        }
    }

    pub(super) fn eval_node(&mut self, i: usize, ab: &RawBlock) {
        self.referred_instances.clear();
        self.referred_resources.clear();
        let rep = self.nodes[i].rep.clone();
        let addr = self.nodes[i].addr.clone();
        let profile_name = self.eval_string(ab, "profile", &rep);
        let profile = match &profile_name {
            None => Profile::default(),
            Some(p) if self.is_poisoned("profile", p) => {
                self.silenced = true;
                return;
            }
            Some(p) => match self.profiles.get(p) {
                Some(p) => p.clone(),
                None => {
                    let span = ab
                        .attr("profile")
                        .map(|a| a.expr_span.clone())
                        .unwrap_or(ab.span.clone());
                    let known: Vec<String> = self.profiles.keys().cloned().collect();
                    let mut d = Diagnostic::error(format!("unknown profile `{p}`")).at(span);
                    d = match did_you_mean(p, known.iter().map(String::as_str)) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None if known.is_empty() => d.help("declare it with a `profile` block"),
                        None => d.help(format!("declared profiles: {}", known.join(", "))),
                    };
                    self.err(d);
                    return;
                }
            },
        };
        let image = match self.eval_string(ab, "image", &rep) {
            Some(img) => {
                self.check_image(
                    &img,
                    ab.attr("image")
                        .map(|a| a.expr_span.clone())
                        .unwrap_or(ab.span.clone()),
                );
                img
            }
            // Set but not a string: already reported.
            None if ab.attr("image").is_some() => return,
            None => match profile.image.clone() {
                Some(img) => img,
                None => {
                    let d = if ab.kind == "requires" {
                        let p = self.blocks[self.nodes[i].block].label().to_string();
                        Diagnostic::error(format!(
                            "package `{p}` has no `on`, and its node `{addr}` has no image"
                        ))
                        .help(format!(
                            "add `requires {{ image = \"host\" }}` (or a `profile`) to package `{p}`, or install it on existing nodes with `on = [node.NAME]`"
                        ))
                    } else {
                        Diagnostic::error(format!("`{addr}` has no image")).help(
                            "set `image = \"host\"` (or `debian:bookworm`, `dir:/path`), or a `profile` that has one",
                        )
                    };
                    self.err(d.at(ab.span.clone()));
                    return;
                }
            },
        };
        let cpus = self.eval_cpus(ab, &rep).or(profile.cpus);
        let memory_mib = self.eval_memory(ab, &rep).or(profile.memory_mib);
        let node_settings = crate::platform::NodeSettings {
            privileged: self.eval_bool(ab, "privileged", &rep).unwrap_or(false),
            pids: self.eval_pids(ab, &rep),
            ssh: self.eval_bool(ab, "ssh", &rep),
            wait_for: self.eval_wait_for(ab, &rep),
        };
        let mut labels = profile.labels.clone();
        labels.extend(self.eval_labels(ab, &rep).unwrap_or_default());
        let platform = self
            .eval_string(ab, "platform", &rep)
            .or(profile.platform.clone());
        if let Some(p) = &platform {
            let span = ab
                .attr("platform")
                .map(|a| a.expr_span.clone())
                .unwrap_or(ab.span.clone());
            self.check_platform_name(p, span);
        }
        let networks = self.nodes[i].networks.clone();
        let own_impairs = self.eval_node_impairs(ab, &rep, &networks);
        let impairs: Vec<_> = networks
            .iter()
            .map(|&net| self.link_impairment(net, &own_impairs))
            .collect();
        let n = &self.nodes[i];
        let interfaces: Vec<Interface> = n
            .networks
            .iter()
            .enumerate()
            .map(|(slot, &net)| {
                let cidr = self.nets[net].cidr.unwrap_or_default();
                Interface {
                    impair: impairs[slot],
                    network: self.nets[net].host.clone(),
                    address: n.addresses[slot],
                    prefix_len: cidr.prefix_len(),
                    gateway: ipam::gateway(cidr),
                }
            })
            .collect();
        let spec = NodeSpec {
            settings: node_settings,
            host: None,
            hostname: n.host.clone(),
            image: image.clone(),
            cpus,
            memory_mib,
            labels: labels.clone(),
            interfaces,
        };
        let mut depends_on: Vec<InstanceAddr> = n
            .networks
            .iter()
            .map(|&net| self.nets[net].addr.clone())
            .collect();
        let targets = n.depends_on.clone();
        depends_on.extend(self.expand_targets(&targets));
        // Packages are evaluated after nodes: a package target stays as
        // written here and `finish` expands it to the package's instances.
        depends_on.extend(
            targets
                .iter()
                .filter(|t| t.kind() == ResourceKind::Package)
                .cloned(),
        );
        // References to other nodes in attributes are dependencies too:
        // the instance referred to, or every instance of a resource used
        // whole (as the evaluation recorded them).
        let own = &self.nodes[i].addr;
        depends_on.extend(
            self.referred_instances
                .iter()
                .filter(|a| *a != own)
                .cloned(),
        );
        for name in &self.referred_resources {
            for &j in self
                .node_resource
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                if j != i {
                    depends_on.push(self.nodes[j].addr.clone());
                }
            }
        }
        dedup(&mut depends_on);
        let mut o = self.base_node_object(i);
        o.insert(
            "platform".into(),
            platform.clone().map(Value::from).unwrap_or(Value::Null),
        );
        o.insert("image".into(), Value::from(image));
        o.insert(
            "profile".into(),
            profile_name.clone().map(Value::from).unwrap_or(Value::Null),
        );
        o.insert(
            "labels".into(),
            Value::Object(
                labels
                    .into_iter()
                    .map(|(k, v)| (k, Value::from(v)))
                    .collect(),
            ),
        );
        o.insert(
            "cpus".into(),
            cpus.and_then(hcl::Number::from_f64)
                .map(Value::Number)
                .unwrap_or(Value::Null),
        );
        o.insert(
            "memory".into(),
            memory_mib
                .map(|m| Value::from(format!("{m}MiB")))
                .unwrap_or(Value::Null),
        );
        let mark = self.node_mark(ab, profile_name.as_deref());
        let sensitive = mark
            .as_ref()
            .map(sensitivity::node_paths)
            .unwrap_or_default();
        if let Some(m) = mark {
            let name = self.nodes[i].addr.name().to_string();
            let merged = sensitivity::union(self.marks.nodes.remove(&name), Some(m));
            if let Some(m) = merged {
                self.marks.nodes.insert(name, m);
            }
        }
        let n = &mut self.nodes[i];
        n.object = Value::Object(o);
        n.spec = Some(spec);
        n.platform = platform;
        n.depends_on = depends_on;
        n.sensitive = sensitive;
    }

    /// Does the node's `platform` name the `ssh` kind or an `ssh` block?
    fn on_ssh_pool(&mut self, b: &RawBlock, rep: &Repetition) -> bool {
        if b.attr("platform").is_none() {
            return false;
        }
        let seen = self.diags.0.len();
        let p = self.eval_string(b, "platform", rep);
        // The node's own evaluation reports a bad value; not twice.
        self.diags.0.truncate(seen);
        match p {
            Some(p) if p == "ssh" => true,
            Some(p) => self.blocks.iter().any(|x| {
                x.kind == "platform"
                    && x.labels.first().map(String::as_str) == Some("ssh")
                    && x.labels.get(1) == Some(&p)
            }),
            None => false,
        }
    }

    /// A node's `platform` names a platform kind the caller offers or a
    /// declared `platform` block.
    pub(super) fn check_platform_name(&mut self, p: &str, span: Span) {
        let kinds = &self.opts.drivers;
        if kinds.iter().any(|k| k == p) || self.decl.is_declared("platform", p) {
            return;
        }
        let blocks = self.decl.names_of("platform");
        let mut d = Diagnostic::error(format!("unknown platform `{p}`")).at(span);
        let candidates = kinds.iter().chain(blocks.iter()).map(String::as_str);
        let listed = |names: &[String]| {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let known = match (kinds.is_empty(), blocks.is_empty()) {
            (true, true) => {
                "no platform kind is available and no `platform` block is declared".to_string()
            }
            (false, true) => format!(
                "platform kinds: {}; or declare a `platform \"KIND\" \"NAME\"` block and name it",
                listed(kinds)
            ),
            (true, false) => format!("declared platforms: {}", listed(&blocks)),
            (false, false) => format!(
                "platform kinds: {}; declared platforms: {}",
                listed(kinds),
                listed(&blocks)
            ),
        };
        d = match did_you_mean(p, candidates) {
            Some(s) => d.help(format!("did you mean `{s}`? ({known})")),
            None => d.help(known),
        };
        self.err(d);
    }

    /// `depends_on` targets as instances: a whole resource expands to all of
    /// its instances.
    pub(super) fn expand_targets(&self, targets: &[InstanceAddr]) -> Vec<InstanceAddr> {
        let mut out = Vec::new();
        for t in targets {
            match t.kind() {
                ResourceKind::Node => {
                    for &j in self
                        .node_resource
                        .get(t.name())
                        .map(Vec::as_slice)
                        .unwrap_or(&[])
                    {
                        if self.nodes[j].addr.matches(t) {
                            out.push(self.nodes[j].addr.clone());
                        }
                    }
                }
                ResourceKind::Network => {
                    out.extend(
                        self.nets
                            .iter()
                            .filter(|n| n.addr.matches(t))
                            .map(|n| n.addr.clone()),
                    );
                }
                ResourceKind::Package => {
                    out.extend(
                        self.packages
                            .iter()
                            .filter(|p| p.address.resource == t.resource)
                            .map(|p| p.address.clone()),
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::{check, check_with, options};

    #[test]
    fn platforms_are_the_callers_kinds_or_declared_blocks() {
        let node = |p: &str| {
            format!("network \"lab\" {{}}\nplatform \"ssh\" \"pool-a\" {{}}\nnode \"a\" {{\n  image    = \"host\"\n  platform = \"{p}\"\n}}\noutput \"p\" {{\n  value = node.a.platform\n}}\n")
        };
        check(&node("netns"), r#"p = "netns""#);
        check(&node("ssh"), r#"p = "ssh""#);
        check(&node("pool-a"), r#"p = "pool-a""#);
        check(&node("pool-b"), "5:14: error: unknown platform `pool-b`");
        check(&node("docker"), "5:14: error: unknown platform `docker`");
        let mut opts = options();
        opts.drivers = vec!["double".into()];
        check_with(
            &opts,
            &node("double"),
            "2:1: error: unknown platform kind `ssh`",
        );
        check_with(
            &opts,
            "network \"lab\" {}\nnode \"a\" {\n  image    = \"host\"\n  platform = \"double\"\n}\n",
            "ok",
        );
    }

    #[test]
    fn networks_and_host_names() {
        check(
            "node \"a\" {\n  image = \"host\"\n}\n",
            "1:1: error: `node.a` is on no network",
        );
        check(
            "network \"a\" {}\nnetwork \"b\" {}\nnode \"n\" {\n  image = \"host\"\n}\n",
            "3:1: error: `node.n` does not say which network it is on",
        );
        check(
            "network \"a\" {}\nnode \"n\" {\n  image   = \"host\"\n  network = \"a\"\n}\n",
            "4:13: error: `network` must name networks, such as `network.lab`, found string \"a\"",
        );
        check(
            "network \"lab\" {}\nnode \"a\" {\n  count = 2\n  image = \"host\"\n}\nnode \"a-1\" {\n  image = \"host\"\n}\n",
            "6:1: error: `node.a-1` and `node.a[1]` would both have the host name `a-1`",
        );
        check(
            "network \"lab\" {}\nnode \"a\" {}\n",
            "2:1: error: `node.a` has no image",
        );
    }
}
