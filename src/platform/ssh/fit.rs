//! Which pool host fits which node, and the placement of a session's nodes
//! on free hosts. Pure: the leases come in as rows.
//!
//! A host fits a node when the node's image is `host` or the host's image,
//! every label of the node is a label of the host with the same value, and
//! the node's `cpus` and `memory` (where both declare them) are no more
//! than the host's. A fitting host is free for a session when no lease row
//! keeps it from that session (another session's lease, a quarantine) and
//! no other node of the same plan took it. Not here: leasing (the store).

use super::PoolHost;
use crate::platform::{NodeSpec, PlaceNode, Placement};
use crate::state::Lease;

/// Why `host` cannot hold `spec` by its attributes, if it cannot.
pub fn misfit(host: &PoolHost, spec: &NodeSpec) -> Option<String> {
    if spec.image != "host" {
        match &host.image {
            Some(i) if *i == spec.image => {}
            Some(i) => return Some(format!("image `{}` wanted, the host has `{i}`", spec.image)),
            None => {
                return Some(format!(
                    "image `{}` wanted, the host declares no image",
                    spec.image
                ))
            }
        }
    }
    for (k, v) in &spec.labels {
        match host.labels.get(k) {
            Some(hv) if hv == v => {}
            Some(hv) => return Some(format!("label `{k}` is `{hv}`, `{v}` wanted")),
            None => return Some(format!("no label `{k}`")),
        }
    }
    if let (Some(want), Some(has)) = (spec.cpus, host.cpus) {
        if want > has {
            return Some(format!("{want} cpus wanted, the host has {has}"));
        }
    }
    if let (Some(want), Some(has)) = (spec.memory_mib, host.memory_mib) {
        if want > has {
            return Some(format!(
                "{want} MiB of memory wanted, the host has {has} MiB"
            ));
        }
    }
    None
}

/// Place `nodes` (of the session of `lineage`) on `hosts`, given the lease
/// rows: the recorded host while it still fits and is free, else the first
/// free host that fits.
pub fn place(
    hosts: &[PoolHost],
    key_of: impl Fn(&PoolHost) -> String,
    rows: &[Lease],
    lineage: &str,
    nodes: &[PlaceNode],
) -> Vec<Placement> {
    let mut taken: Vec<(String, String)> = Vec::new(); // (host name, node)
    let why_not = |h: &PoolHost, n: &PlaceNode, taken: &[(String, String)]| -> Option<String> {
        if let Some(r) = misfit(h, &n.spec) {
            return Some(r);
        }
        let key = key_of(h);
        if let Some(r) = rows
            .iter()
            .find(|r| r.host == key)
            .and_then(|r| r.refusal(lineage))
        {
            return Some(r.replacen(&format!("`{key}` is "), "", 1));
        }
        taken
            .iter()
            .find(|(host, _)| *host == h.name)
            .map(|(_, other)| format!("planned for `{other}`"))
    };
    // Recorded hosts first, so a kept node never loses its host to a new one.
    let mut out: Vec<Option<Placement>> = vec![None; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let Some(rec) = &n.recorded_host else {
            continue;
        };
        if let Some(h) = hosts.iter().find(|h| &h.name == rec) {
            if why_not(h, n, &taken).is_none() {
                taken.push((h.name.clone(), n.address.clone()));
                out[i] = Some(Placement::Placed {
                    host: Some(h.name.clone()),
                });
            }
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        if out[i].is_some() {
            continue;
        }
        let mut reasons = Vec::new();
        let mut chosen = None;
        for h in hosts {
            match why_not(h, n, &taken) {
                None => {
                    chosen = Some(h.name.clone());
                    break;
                }
                Some(r) => reasons.push(format!("host `{}` ({}): {r}", h.name, key_of(h))),
            }
        }
        out[i] = Some(match chosen {
            Some(name) => {
                taken.push((name.clone(), n.address.clone()));
                Placement::Placed { host: Some(name) }
            }
            None => {
                if reasons.is_empty() {
                    reasons.push("the pool has no hosts".into());
                }
                Placement::Refused { reasons }
            }
        });
    }
    out.into_iter()
        .map(|p| {
            p.unwrap_or(Placement::Refused {
                reasons: Vec::new(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn host(name: &str, labels: &[(&str, &str)]) -> PoolHost {
        PoolHost {
            name: name.into(),
            address: format!("192.0.2.{}", name.len()),
            port: Some(22),
            user: None,
            profile: None,
            image: Some("debian:bookworm".into()),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cpus: Some(4.0),
            memory_mib: Some(4096),
        }
    }

    fn node(addr: &str, labels: &[(&str, &str)], recorded: Option<&str>) -> PlaceNode {
        PlaceNode {
            address: addr.into(),
            spec: NodeSpec {
                hostname: addr.into(),
                image: "host".into(),
                cpus: None,
                memory_mib: None,
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
                interfaces: Vec::new(),
                host: None,
                settings: Default::default(),
            },
            recorded_host: recorded.map(str::to_string),
        }
    }

    #[test]
    fn recorded_hosts_are_kept_and_the_rest_take_free_fitting_hosts() {
        let hosts = [host("h1", &[("rack", "a")]), host("h22", &[("rack", "b")])];
        let key = |h: &PoolHost| format!("{}:22", h.address);
        let nodes = [node("n0", &[], None), node("n1", &[], Some("h1"))];
        let got = place(&hosts, key, &[], "L", &nodes);
        assert_eq!(
            got,
            vec![
                Placement::Placed {
                    host: Some("h22".into())
                },
                Placement::Placed {
                    host: Some("h1".into())
                }
            ]
        );
    }

    #[test]
    fn a_refusal_says_per_host_why_not() {
        let hosts = [host("h1", &[("rack", "a")]), host("h22", &[("rack", "b")])];
        let key = |h: &PoolHost| format!("{}:22", h.address);
        let rows = [Lease {
            host: "192.0.2.3:22".into(),
            session: Some("other".into()),
            lineage: Some("L2".into()),
            since: Some("2026-12-02T00:00:00Z".into()),
            quarantined: None,
        }];
        let got = place(
            &hosts,
            key,
            &rows,
            "L",
            &[node("n0", &[("rack", "b")], None)],
        );
        let Placement::Refused { reasons } = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].contains("host `h1`") && reasons[0].contains("label `rack` is `a`"));
        assert!(
            reasons[1].contains("host `h22`") && reasons[1].contains("leased by session `other`")
        );
    }
}
