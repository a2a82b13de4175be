//! Finish: the evaluated parts assembled into a [`Testbed`] with its hash.

use super::*;

impl Evaluator<'_> {
    pub(super) fn finish(
        &mut self,
        name: String,
        description: Option<String>,
        settings: Settings,
    ) -> Testbed {
        let mut instances = IndexMap::new();
        for n in &self.nets {
            let cidr = n.cidr.unwrap_or_default();
            let spec = NetworkSpec {
                name: n.host.clone(),
                cidr,
                gateway: ipam::gateway(cidr),
                nat: n.nat,
                hosts: Vec::new(),
            };
            let mut depends_on = self.expand_targets(&n.depends_on);
            dedup(&mut depends_on);
            instances.insert(
                n.addr.clone(),
                DesiredInstance {
                    address: n.addr.clone(),
                    platform: None,
                    spec: Spec::Network(spec),
                    depends_on,
                    attributes: to_json(&Value::Object(network_object(n))),
                    prevent_destroy: n.prevent_destroy,
                    span: Some(self.blocks[n.block].span.clone()),
                    sensitive: n.sensitive.clone(),
                },
            );
        }
        for n in &self.nodes {
            let Some(spec) = n.spec.clone() else { continue };
            // A node's `depends_on = [package.X]`: now that packages are
            // evaluated, their instances (see `nodes`).
            let mut depends_on = Vec::new();
            for d in &n.depends_on {
                if d.kind() == ResourceKind::Package {
                    depends_on.extend(self.expand_targets(std::slice::from_ref(d)));
                } else {
                    depends_on.push(d.clone());
                }
            }
            dedup(&mut depends_on);
            instances.insert(
                n.addr.clone(),
                DesiredInstance {
                    address: n.addr.clone(),
                    platform: n.platform.clone(),
                    spec: Spec::Node(spec),
                    depends_on,
                    attributes: to_json(&n.object),
                    prevent_destroy: n.prevent_destroy,
                    span: Some(self.blocks[n.block].span.clone()),
                    sensitive: n.sensitive.clone(),
                },
            );
        }
        for p in self.packages.drain(..) {
            instances.insert(p.address.clone(), p);
        }
        // The testbed's hash: every file and every variable value.
        let mut h = Sha256::new();
        for (_, f) in self.parsed.sources.files() {
            h.update(f.path.to_string_lossy().as_bytes());
            h.update([0]);
            h.update(f.text.as_bytes());
            h.update([0]);
        }
        for (k, v) in &self.var_values {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.to_string().as_bytes());
            h.update([0]);
        }
        let hash = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Testbed {
            name,
            description,
            instances,
            outputs: std::mem::take(&mut self.outputs),
            state: settings.state,
            platforms: settings.platforms,
            moves: self.decl.moves.clone(),
            hash,
            sources: self.parsed.sources.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::options;
    use crate::config::parse::parse_texts;
    use crate::config::Prior;

    fn load(src: &str, vars: &[&str]) -> crate::config::model::Testbed {
        let mut opts = options();
        opts.vars = vars.iter().map(|v| v.to_string()).collect();
        let parsed = parse_texts(&opts, &[("main.tg.hcl", src)]).unwrap();
        parsed.evaluate(&Prior::default()).unwrap().0
    }

    const BED: &str = "variable \"n\" {\n  default = 1\n}\nnetwork \"lab\" {}\nnode \"a\" {\n  count      = var.n\n  image      = \"host\"\n  depends_on = [network.lab]\n}\npackage \"curl\" {\n  on = node.a\n}\n";

    #[test]
    fn instances_in_declaration_order_with_dependencies() {
        let tb = load(BED, &["n=2"]);
        let got: Vec<String> = tb
            .instances
            .values()
            .map(|i| {
                let deps: Vec<String> = i.depends_on.iter().map(|d| d.to_string()).collect();
                format!("{} <- [{}]", i.address, deps.join(", "))
            })
            .collect();
        assert_eq!(
            got,
            [
                "network.lab <- []",
                "node.a[0] <- [network.lab]",
                "node.a[1] <- [network.lab]",
                "package.curl[node.a[0]] <- [node.a[0]]",
                "package.curl[node.a[1]] <- [node.a[1]]",
            ]
        );
        assert_eq!(
            tb.name,
            std::env::temp_dir().file_name().unwrap().to_string_lossy()
        );
    }

    /// Nodes are evaluated before packages: a node's `depends_on` naming a
    /// package used to expand to nothing, so the node did not wait for it.
    #[test]
    fn a_node_can_depend_on_a_package_of_another_node() {
        let bed = format!(
            "{BED}node \"b\" {{\n  image      = \"host\"\n  depends_on = [package.curl]\n}}\n"
        );
        let tb = load(&bed, &["n=2"]);
        let b = tb
            .instances
            .values()
            .find(|i| i.address.to_string() == "node.b")
            .unwrap();
        let deps: Vec<String> = b.depends_on.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            deps,
            [
                "network.lab",
                "package.curl[node.a[0]]",
                "package.curl[node.a[1]]"
            ]
        );
    }

    #[test]
    fn the_hash_covers_files_and_variable_values() {
        let (a, b, c) = (
            load(BED, &[]).hash,
            load(BED, &["n=2"]).hash,
            load(BED, &[]).hash,
        );
        assert_ne!(a, b);
        assert_eq!(a, c);
    }
}
