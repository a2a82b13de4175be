//! Finish: the evaluated parts assembled into a [`Testbed`] with its hash.

#[allow(unused_imports)]
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
                },
            );
        }
        for n in &self.nodes {
            let Some(spec) = n.spec.clone() else { continue };
            instances.insert(
                n.addr.clone(),
                DesiredInstance {
                    address: n.addr.clone(),
                    platform: n.platform.clone(),
                    spec: Spec::Node(spec),
                    depends_on: n.depends_on.clone(),
                    attributes: to_json(&n.object),
                    prevent_destroy: n.prevent_destroy,
                    span: Some(self.blocks[n.block].span.clone()),
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
            hash,
            sources: self.parsed.sources.clone(),
        }
    }
}
