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

use crate::ops::ssh_args::{SshReach, Unquotable};
use crate::platform::Spec;
use crate::state::Snapshot;

/// Options of the Ansible inventory.
#[derive(Debug, Clone)]
pub struct InventoryOptions {
    /// How ssh reaches the session's netns nodes (through `tg proxy`).
    pub reach: SshReach,
    /// The session's client private key, when tg made one.
    pub private_key: Option<std::path::PathBuf>,
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
        if rec.platform == "netns" {
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
