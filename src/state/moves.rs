//! Moves: recorded instances renamed, without touching what they are.
//!
//! What `tg state mv` and `moved` blocks share. A move names an instance
//! (`node.a[0]` → `node.b[0]`) or, when `from` is not recorded as such and
//! neither address has a key, a whole resource (`node.a` → `node.b` moves
//! `node.a[0]`, `node.a[1]`... to the same keys). Packages are addressed
//! with their node (`package.p[node.a]`), so they follow it. What depended
//! on an old address depends on the new one. Only addresses change: specs,
//! platform data and statuses stay, so platforms find their objects again
//! and the next diff sees only what the new block asks differently (a node's
//! hostname).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::addrs::{InstanceAddr, InstanceKey};

use super::Snapshot;

/// One recorded instance renamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renamed {
    pub from: InstanceAddr,
    pub to: InstanceAddr,
}

/// Why a move cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    /// The new address holds a recorded instance that is not moved away.
    #[error("cannot move `{from}` to `{to}`: `{to}` is already recorded")]
    Occupied {
        from: InstanceAddr,
        to: InstanceAddr,
    },
}

/// The instance renames moving `from` to `to` means in `snap`, packages on
/// moved nodes included; empty when nothing recorded matches `from`.
pub fn expand(snap: &Snapshot, from: &InstanceAddr, to: &InstanceAddr) -> Vec<Renamed> {
    let mut renames: Vec<Renamed> = if snap.instances.contains_key(from) {
        vec![Renamed {
            from: from.clone(),
            to: to.clone(),
        }]
    } else if from.key == InstanceKey::None && to.key == InstanceKey::None {
        snap.instances
            .keys()
            .filter(|a| a.resource == from.resource)
            .map(|a| Renamed {
                from: a.clone(),
                to: InstanceAddr::new(to.kind(), to.name(), a.key.clone()),
            })
            .collect()
    } else {
        Vec::new()
    };
    let nodes: BTreeMap<&InstanceAddr, &InstanceAddr> =
        renames.iter().map(|r| (&r.from, &r.to)).collect();
    let mut packages = Vec::new();
    for a in snap.instances.keys() {
        if let InstanceKey::Node(n) = &a.key {
            if let Some(new) = nodes.get(n.as_ref()) {
                packages.push(Renamed {
                    from: a.clone(),
                    to: InstanceAddr::new(
                        a.kind(),
                        a.name(),
                        InstanceKey::Node(Box::new((*new).clone())),
                    ),
                });
            }
        }
    }
    renames.extend(packages);
    renames
}

/// `snap` with every rename of `renames` made at once (dependencies
/// follow). Fails when a new address is recorded and not moved away.
pub fn rename(snap: &Snapshot, renames: &[Renamed]) -> Result<Snapshot, MoveError> {
    let map: BTreeMap<&InstanceAddr, &InstanceAddr> =
        renames.iter().map(|r| (&r.from, &r.to)).collect();
    for r in renames {
        if snap.instances.contains_key(&r.to) && !map.contains_key(&r.to) {
            return Err(MoveError::Occupied {
                from: r.from.clone(),
                to: r.to.clone(),
            });
        }
    }
    let mut moved = snap.clone();
    moved.instances = snap
        .instances
        .values()
        .map(|r| {
            let mut r = r.clone();
            if let Some(new) = map.get(&r.address) {
                r.address = (*new).clone();
            }
            for d in &mut r.dependencies {
                if let Some(new) = map.get(d) {
                    *d = (*new).clone();
                }
            }
            (r.address.clone(), r)
        })
        .collect();
    Ok(moved)
}

/// Make `moves` (`(from, to)`, in order: a chain `a` → `b`, `b` → `c` ends
/// at `c`) on `snap`. Returns the moved snapshot and every instance that
/// moved, from where it was recorded to where it ends. A move that matches
/// nothing recorded does nothing; one whose new address is taken fails
/// with its index in `moves`.
pub fn apply_moves(
    snap: &Snapshot,
    moves: &[(InstanceAddr, InstanceAddr)],
) -> Result<(Snapshot, Vec<Renamed>), (usize, MoveError)> {
    let mut current = std::borrow::Cow::Borrowed(snap);
    // Where each moved instance is now → where it was recorded.
    let mut origin: BTreeMap<InstanceAddr, InstanceAddr> = BTreeMap::new();
    for (i, (from, to)) in moves.iter().enumerate() {
        let renames = expand(&current, from, to);
        if renames.is_empty() {
            continue;
        }
        let next = rename(&current, &renames).map_err(|e| (i, e))?;
        for r in renames {
            let first = origin.remove(&r.from).unwrap_or(r.from);
            origin.insert(r.to, first);
        }
        current = std::borrow::Cow::Owned(next);
    }
    let mut done: Vec<Renamed> = origin
        .into_iter()
        .filter(|(to, from)| to != from)
        .map(|(to, from)| Renamed { from, to })
        .collect();
    done.sort_by(|a, b| a.from.cmp(&b.from));
    Ok((current.into_owned(), done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{NetworkSpec, Spec};
    use crate::state::{InstanceRecord, InstanceStatus};

    fn addr(s: &str) -> InstanceAddr {
        s.parse().unwrap()
    }

    fn snap(addrs: &[&str]) -> Snapshot {
        let mut s = Snapshot {
            lineage: "L".into(),
            serial: 3,
            ..Snapshot::default()
        };
        for a in addrs {
            let rec = InstanceRecord {
                address: addr(a),
                platform: "double".into(),
                status: InstanceStatus::Ready,
                spec: Spec::Network(NetworkSpec {
                    name: a.to_string(),
                    cidr: "10.0.0.0/24".parse().unwrap(),
                    gateway: "10.0.0.1".parse().unwrap(),
                    nat: false,
                    hosts: Vec::new(),
                }),
                private: serde_json::json!({ "id": a }),
                dependencies: addrs
                    .iter()
                    .filter(|d| **d != *a && d.starts_with("network."))
                    .map(|d| addr(d))
                    .collect(),
                attributes: serde_json::Value::Null,
                sensitive: vec![],
            };
            s.instances.insert(rec.address.clone(), rec);
        }
        s
    }

    fn keys(s: &Snapshot) -> Vec<String> {
        s.instances.keys().map(|a| a.to_string()).collect()
    }

    #[test]
    fn a_resource_moves_key_by_key_with_the_packages_on_its_nodes() {
        let s = snap(&["node.a[0]", "node.a[1]", "package.p[node.a[1]]", "node.z"]);
        let (moved, done) = apply_moves(&s, &[(addr("node.a"), addr("node.b"))]).unwrap();
        assert_eq!(
            keys(&moved),
            ["node.b[0]", "node.b[1]", "node.z", "package.p[node.b[1]]"]
        );
        assert_eq!(done.len(), 3);
        // The platform's data stays: the object is found again.
        assert_eq!(
            moved.instances[&addr("node.b[1]")].private,
            serde_json::json!({ "id": "node.a[1]" })
        );
        assert_eq!(moved.serial, 3);
    }

    #[test]
    fn dependencies_follow_a_moved_network() {
        let s = snap(&["network.lab", "node.n"]);
        let (moved, _) = apply_moves(&s, &[(addr("network.lab"), addr("network.core"))]).unwrap();
        assert_eq!(
            moved.instances[&addr("node.n")].dependencies,
            [addr("network.core")]
        );
    }

    #[test]
    fn a_chain_ends_at_its_last_address_and_what_is_not_recorded_does_nothing() {
        let s = snap(&["node.a"]);
        let moves = [
            (addr("node.a"), addr("node.b")),
            (addr("node.b"), addr("node.c")),
            (addr("node.x"), addr("node.y")),
        ];
        let (moved, done) = apply_moves(&s, &moves).unwrap();
        assert_eq!(keys(&moved), ["node.c"]);
        assert_eq!(
            done,
            [Renamed {
                from: addr("node.a"),
                to: addr("node.c")
            }]
        );
        // A session that made the first move already makes only the second.
        let s = snap(&["node.b"]);
        let (_, done) = apply_moves(&s, &moves).unwrap();
        assert_eq!(done[0].from, addr("node.b"));
    }

    #[test]
    fn one_instance_moves_into_a_counted_resource() {
        let s = snap(&["node.a"]);
        let (moved, _) = apply_moves(&s, &[(addr("node.a"), addr("node.a[0]"))]).unwrap();
        assert_eq!(keys(&moved), ["node.a[0]"]);
    }

    #[test]
    fn a_taken_address_is_refused() {
        let s = snap(&["node.a", "node.b"]);
        let err = apply_moves(
            &s,
            &[
                (addr("node.x"), addr("node.y")),
                (addr("node.a"), addr("node.b")),
            ],
        )
        .unwrap_err();
        assert_eq!(err.0, 1);
        assert_eq!(
            err.1.to_string(),
            "cannot move `node.a` to `node.b`: `node.b` is already recorded"
        );
        // Two instances trading places is fine.
        let (moved, _) = rename(
            &s,
            &[
                Renamed {
                    from: addr("node.a"),
                    to: addr("node.b"),
                },
                Renamed {
                    from: addr("node.b"),
                    to: addr("node.a"),
                },
            ],
        )
        .map(|m| (m, ()))
        .unwrap();
        assert_eq!(moved.instances[&addr("node.b")].private["id"], "node.a");
    }
}
