//! The Ansible inventory of a session's recorded nodes.
//!
//! Pure: a [`Snapshot`] in, an [`Inventory`] out, rendered two ways:
//! [`Inventory::script_json`] answers the dynamic-inventory script protocol
//! (`--list`: `_meta.hostvars`, groups with `hosts` lists), and
//! [`Inventory::static_doc`] is the static form Ansible's `yaml` inventory
//! plugin reads from a file (`inventory.yml` or `inventory.json`: groups
//! nest under `all.children` as mappings, hosts are mappings too).
//! Not here: how the CLI prints it or finds the snapshot; how ssh options
//! are quoted (`ops::ssh_args`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::ops::ssh_args::{login_common_args, SshReach, Unquotable};
use crate::platform::registry::Registry;
use crate::platform::{Spec, SshLogin};
use crate::state::Snapshot;

/// Options of the Ansible inventory.
#[derive(Debug, Clone)]
pub struct InventoryOptions {
    /// How ssh reaches the session's netns nodes (through `tg proxy`).
    pub reach: SshReach,
    /// The session's client private key, when tg made one.
    pub private_key: Option<std::path::PathBuf>,
    /// How ssh logs in to the nodes that are pool hosts, by instance
    /// address (`node.edge[0]`): [`ssh_logins`].
    pub logins: BTreeMap<String, SshLogin>,
}

/// How ssh logs in to each recorded node that its platform reaches over
/// SSH itself (a pool host: its address, port, user, key and known
/// hosts, from the pool's block), by instance address. A node whose pool
/// or host is no longer in the testbed has none.
pub fn ssh_logins(registry: &Registry, snap: &Snapshot) -> BTreeMap<String, SshLogin> {
    snap.instances
        .values()
        .filter_map(|rec| {
            let Spec::Node(n) = &rec.spec else {
                return None;
            };
            let login = registry.get(&rec.platform)?.ssh_login(n)?;
            Some((rec.address.to_string(), login))
        })
        .collect()
}

/// The hosts and groups of a session, before rendering.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    /// Host name → its variables.
    pub hostvars: BTreeMap<String, Map<String, Value>>,
    /// Group name → its hosts (every group is a child of `all`).
    pub groups: BTreeMap<String, BTreeSet<String>>,
}

/// Turn a string into an Ansible group name (`[A-Za-z0-9_]`).
fn group_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The inventory of the recorded nodes.
pub fn inventory(snap: &Snapshot, opts: &InventoryOptions) -> Result<Inventory, Unquotable> {
    let common_args = opts.reach.ansible_common_args()?;
    let mut packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rec in snap.instances.values() {
        if let Spec::Package(p) = &rec.spec {
            packages
                .entry(p.node.clone())
                .or_default()
                .insert(p.name.clone());
        }
    }
    // Ansible shares one ssh connection per user, address and port
    // (`ControlPath`): two sessions may use the same addresses, so each
    // session's connections get sockets of their own.
    let control_path = format!(
        "%(directory)s/tg-{}-%%C",
        crate::platform::netns::names::sid(&snap.lineage)
    );
    let mut inv = Inventory::default();
    for rec in snap.instances.values() {
        let Spec::Node(n) = &rec.spec else { continue };
        let host = n.hostname.clone();
        let mut vars = Map::new();
        if let Some(i) = n.interfaces.first() {
            vars.insert("ansible_host".into(), json!(i.address.to_string()));
        }
        vars.insert("ansible_user".into(), json!("root"));
        // Nodes are Debian systems: name the system Python, so Ansible's
        // discovery is not misled by the controller's environment (pyenv).
        vars.insert(
            "ansible_python_interpreter".into(),
            json!("/usr/bin/python3"),
        );
        if let Some(l) = opts.logins.get(&rec.address.to_string()) {
            // A pool host: reached directly, as the pool's user, with the
            // pool's key and known hosts.
            vars.insert("ansible_host".into(), json!(l.address));
            if l.port != 22 {
                vars.insert("ansible_port".into(), json!(l.port));
            }
            vars.insert("ansible_user".into(), json!(l.user));
            vars.insert(
                "ansible_ssh_private_key_file".into(),
                json!(l.identity_file.to_string_lossy()),
            );
            vars.insert(
                "ansible_ssh_common_args".into(),
                json!(login_common_args(l)?),
            );
        } else if rec.platform == "netns" {
            vars.insert("ansible_ssh_common_args".into(), json!(common_args));
            vars.insert("ansible_control_path".into(), json!(control_path));
            if let Some(k) = &opts.private_key {
                vars.insert(
                    "ansible_ssh_private_key_file".into(),
                    json!(k.to_string_lossy()),
                );
            }
        }
        vars.insert("tg_address".into(), json!(rec.address.to_string()));
        vars.insert("tg_platform".into(), json!(rec.platform));
        vars.insert("tg_image".into(), json!(n.image));
        if let Some(p) = rec.attributes.get("profile").filter(|p| p.is_string()) {
            vars.insert("tg_profile".into(), p.clone());
        }
        vars.insert(
            "tg_addresses".into(),
            json!(n
                .interfaces
                .iter()
                .map(|i| (i.network.clone(), i.address.to_string()))
                .collect::<BTreeMap<_, _>>()),
        );
        vars.insert("tg_labels".into(), json!(n.labels));
        for (k, v) in &n.labels {
            vars.insert(format!("tg_label_{}", group_name(k)), json!(v));
        }
        let pkgs = packages.get(&host).cloned().unwrap_or_default();
        vars.insert("tg_packages".into(), json!(pkgs));
        inv.hostvars.insert(host.clone(), vars);

        let mut add = |g: String| {
            inv.groups.entry(g).or_default().insert(host.clone());
        };
        add(group_name(rec.address.name()));
        for (k, v) in &n.labels {
            add(group_name(&format!("{k}_{v}")));
        }
        for i in &n.interfaces {
            add(group_name(&format!("net_{}", i.network)));
        }
        add(group_name(&format!("platform_{}", rec.platform)));
        for p in &pkgs {
            add(group_name(&format!("pkg_{p}")));
        }
    }
    // A single-instance node's group (`origin`) would share its host's
    // name, which Ansible warns about: the host alone is enough. `all`
    // and `_meta` are Ansible's own.
    let hosts = inv.hostvars.keys().cloned().collect::<BTreeSet<_>>();
    inv.groups
        .retain(|g, _| !hosts.contains(g) && g != "all" && g != "_meta" && g != "ungrouped");
    Ok(inv)
}

impl Inventory {
    /// The dynamic-inventory script answer to `--list`.
    pub fn script_json(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("_meta".into(), json!({ "hostvars": self.hostvars }));
        doc.insert(
            "all".into(),
            json!({ "children": self.groups.keys().cloned().collect::<Vec<_>>() }),
        );
        for (g, hosts) in &self.groups {
            doc.insert(g.clone(), json!({ "hosts": hosts }));
        }
        Value::Object(doc)
    }

    /// The answer to `--host HOST`: its variables (empty when unknown).
    pub fn host_json(&self, host: &str) -> Value {
        Value::Object(self.hostvars.get(host).cloned().unwrap_or_default())
    }

    /// The static inventory (Ansible's `yaml` plugin, YAML or JSON file).
    pub fn static_doc(&self) -> Value {
        let hosts: Map<String, Value> = self
            .hostvars
            .iter()
            .map(|(h, v)| (h.clone(), Value::Object(v.clone())))
            .collect();
        let children: Map<String, Value> = self
            .groups
            .iter()
            .map(|(g, members)| {
                let members: Map<String, Value> =
                    members.iter().map(|h| (h.clone(), Value::Null)).collect();
                (g.clone(), json!({ "hosts": members }))
            })
            .collect();
        json!({ "all": { "hosts": hosts, "children": children } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{PlatformConfig, PoolHost};
    use crate::platform::{Interface, NodeSpec};
    use crate::state::{InstanceRecord, InstanceStatus};

    fn node(hostname: &str, host: Option<&str>, address: Option<&str>) -> NodeSpec {
        NodeSpec {
            settings: Default::default(),
            hostname: hostname.into(),
            image: "host".into(),
            cpus: None,
            memory_mib: None,
            labels: Default::default(),
            interfaces: address
                .map(|a| Interface {
                    impair: Default::default(),
                    network: "lab".into(),
                    address: a.parse().unwrap(),
                    prefix_len: 24,
                    gateway: "10.0.0.1".parse().unwrap(),
                })
                .into_iter()
                .collect(),
            host: host.map(str::to_string),
        }
    }

    fn record(addr: &str, platform: &str, n: NodeSpec) -> InstanceRecord {
        InstanceRecord {
            address: addr.parse().unwrap(),
            platform: platform.into(),
            status: InstanceStatus::Ready,
            spec: Spec::Node(n),
            private: serde_json::Value::Null,
            dependencies: vec![],
            attributes: serde_json::Value::Null,
            sensitive: vec![],
        }
    }

    fn pool_host(name: &str, address: &str, port: Option<u16>) -> PoolHost {
        PoolHost {
            name: name.into(),
            address: address.into(),
            port,
            user: None,
            profile: None,
            image: None,
            labels: Default::default(),
            cpus: None,
            memory_mib: None,
        }
    }

    /// A pool `lab` (user `ops`, its own key and known hosts) and a netns
    /// node beside two pool nodes, one on a host with port 2222.
    fn inventory_of_a_pool() -> Inventory {
        let block = PlatformConfig {
            driver: "ssh".into(),
            name: "lab".into(),
            attributes: [
                ("user".to_string(), json!("ops")),
                ("identity_file".to_string(), json!("~/keys/lab key")),
                ("known_hosts".to_string(), json!("/etc/lab/known_hosts")),
            ]
            .into(),
            hosts: vec![
                pool_host("h1", "192.0.2.10", None),
                pool_host("h2", "192.0.2.11", Some(2222)),
            ],
        };
        let env = crate::environment::Environment::new(
            [("HOME".to_string(), "/home/u".to_string())],
            "/work",
        );
        let pool = crate::platform::ssh::SshPool::from_block(&block, &env).unwrap();
        let mut registry = Registry::new();
        registry.register(std::sync::Arc::new(pool));
        let recs = [
            record("node.a[0]", "lab", node("a-0", Some("h1"), None)),
            record("node.a[1]", "lab", node("a-1", Some("h2"), None)),
            record("node.n", "netns", node("n", None, Some("10.0.0.2"))),
        ];
        let snap = Snapshot {
            lineage: "0123456789abcdef".into(),
            serial: 1,
            instances: recs.into_iter().map(|r| (r.address.clone(), r)).collect(),
            outputs: Default::default(),
        };
        let opts = InventoryOptions {
            reach: SshReach {
                tg_exe: "/usr/bin/tg".into(),
                testbed_dir: "/work".into(),
                session: "s".into(),
                known_hosts: Some("/work/.tg/ssh/s/known_hosts".into()),
            },
            private_key: Some("/work/.tg/ssh/s/id_ed25519".into()),
            logins: ssh_logins(&registry, &snap),
        };
        inventory(&snap, &opts).unwrap()
    }

    #[test]
    fn pool_nodes_are_reached_as_the_pool_says_without_the_proxy() {
        let inv = inventory_of_a_pool();
        let a0 = &inv.hostvars["a-0"];
        assert_eq!(a0["ansible_host"], "192.0.2.10");
        assert!(a0.get("ansible_port").is_none(), "{a0:?}");
        assert_eq!(a0["ansible_user"], "ops");
        assert_eq!(a0["ansible_ssh_private_key_file"], "/home/u/keys/lab key");
        let args = a0["ansible_ssh_common_args"].as_str().unwrap();
        let words = shlex::split(args).unwrap();
        assert!(
            words.contains(&"UserKnownHostsFile=\"/etc/lab/known_hosts\"".to_string()),
            "{words:?}"
        );
        assert!(words.contains(&"StrictHostKeyChecking=yes".to_string()));
        assert!(!args.contains("ProxyCommand"), "{args}");
        assert!(a0.get("ansible_control_path").is_none());
        assert_eq!(inv.hostvars["a-1"]["ansible_port"], 2222);
        assert_eq!(inv.hostvars["a-1"]["ansible_host"], "192.0.2.11");
        assert!(inv.groups["platform_lab"].contains("a-0"));
        // The netns node keeps the proxy, the session's key and root.
        let n = &inv.hostvars["n"];
        assert_eq!(n["ansible_host"], "10.0.0.2");
        assert_eq!(n["ansible_user"], "root");
        assert!(n["ansible_ssh_common_args"]
            .as_str()
            .unwrap()
            .contains("ProxyCommand"));
        assert_eq!(
            n["ansible_ssh_private_key_file"],
            "/work/.tg/ssh/s/id_ed25519"
        );
    }

    #[test]
    fn a_pool_node_whose_pool_is_gone_has_no_login() {
        let snap = Snapshot {
            lineage: "0123456789abcdef".into(),
            serial: 1,
            instances: [record("node.a", "lab", node("a", Some("h1"), None))]
                .into_iter()
                .map(|r| (r.address.clone(), r))
                .collect(),
            outputs: Default::default(),
        };
        assert!(ssh_logins(&Registry::new(), &snap).is_empty());
    }
}
