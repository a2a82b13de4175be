//! The Ansible inventory of a session's recorded nodes.
//!
//! Pure: a [`Snapshot`] in, the dynamic-inventory (`--list`) JSON document
//! out. Not here: how the CLI prints it or finds the snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::platform::Spec;
use crate::state::Snapshot;

/// Options of the Ansible inventory.
#[derive(Debug, Clone)]
pub struct InventoryOptions {
    pub session: String,
    /// The `tg` executable to name in ProxyCommand (absolute).
    pub tg_exe: PathBuf,
    /// The testbed directory, passed to the proxy with `--chdir`.
    pub testbed_dir: PathBuf,
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

/// The Ansible dynamic inventory (`--list` form) of the recorded nodes.
pub fn inventory(snap: &Snapshot, opts: &InventoryOptions) -> Value {
    let mut hostvars = serde_json::Map::new();
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rec in snap.instances.values() {
        let Spec::Node(n) = &rec.spec else { continue };
        let host = n.hostname.clone();
        let mut vars = serde_json::Map::new();
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
        vars.insert("tg_address".into(), json!(rec.address.to_string()));
        vars.insert("tg_platform".into(), json!(rec.platform));
        vars.insert("tg_image".into(), json!(n.image));
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
        if rec.platform == "netns" {
            vars.insert(
                "ansible_ssh_common_args".into(),
                json!(format!(
                    "-o ProxyCommand=\"{} --chdir {} --session {} proxy %h %p\" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                    opts.tg_exe.display(),
                    opts.testbed_dir.display(),
                    opts.session
                )),
            );
        }
        hostvars.insert(host.clone(), Value::Object(vars));
        groups
            .entry(group_name(rec.address.name()))
            .or_default()
            .insert(host.clone());
        for (k, v) in &n.labels {
            groups
                .entry(group_name(&format!("{k}_{v}")))
                .or_default()
                .insert(host.clone());
        }
        groups
            .entry(group_name(&format!("platform_{}", rec.platform)))
            .or_default()
            .insert(host);
    }
    // A single-instance node's group (`origin`) would share its host's
    // name, which Ansible warns about: the host alone is enough.
    groups.retain(|g, _| !hostvars.contains_key(g));
    let mut doc = serde_json::Map::new();
    doc.insert("_meta".into(), json!({ "hostvars": hostvars }));
    doc.insert(
        "all".into(),
        json!({ "children": groups.keys().cloned().collect::<Vec<_>>() }),
    );
    for (g, hosts) in groups {
        if g == "all" || g == "_meta" {
            continue;
        }
        doc.insert(g, json!({ "hosts": hosts.into_iter().collect::<Vec<_>>() }));
    }
    Value::Object(doc)
}
