//! The pool driver's side of cross-host segments ([`super::segment`]):
//! leasing VNIs with the hosts, making and checking a node's segment
//! interfaces, and changing the peers when a network's hosts change.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use super::conn::Target;
use super::segment::{self, Link};
use super::SshPool;
use crate::platform::{
    Dependency, NetworkSpec, NodeSpec, PlatformError, PlatformResult, PrepareRequest, Spec,
};
use crate::state::leases::conflicts;

/// How many times apply chooses VNIs again when another session took one
/// between the read and the take.
const VNI_TRIES: usize = 8;

impl SshPool {
    /// The pool address of host `name` as its peers reach it.
    pub(super) fn underlay(&self, name: &str) -> PlatformResult<Ipv4Addr> {
        let t = self.host(name)?;
        segment::underlay_ip(&t.address, t.port)
            .map_err(|e| PlatformError::new(format!("pool host `{name}`: {e}")))
    }

    /// Lease, in one transaction, the hosts `keys` and a VNI for each
    /// network the changes of `req` create (nothing when there are
    /// neither); the VNIs are kept for the networks' creates. Returns the
    /// refusals (empty: all taken).
    pub(super) async fn take_with_vnis(
        &self,
        req: &PrepareRequest,
        keys: Vec<String>,
    ) -> PlatformResult<Vec<String>> {
        let networks: Vec<String> = req
            .changes
            .iter()
            .filter(|c| c.action == "create" || c.action == "replace")
            .filter_map(|c| match &c.after {
                Some(Spec::Network(n)) => Some(n.name.clone()),
                _ => None,
            })
            .collect();
        if keys.is_empty() && networks.is_empty() {
            return Ok(Vec::new());
        }
        let (name, lineage) = (req.session.name.clone(), req.session.lineage.clone());
        for _ in 0..VNI_TRIES {
            let rows = self.on_store(|s| s.leases()).await?;
            let taken: BTreeSet<u32> = rows
                .iter()
                .filter(|r| r.lineage.is_some() || r.quarantined.is_some())
                .filter_map(|r| segment::vni_of_key(&r.host))
                .collect();
            let vnis = segment::choose(&lineage, &networks, &taken).ok_or_else(|| {
                PlatformError::new("every VXLAN network identifier of the pool's store is leased")
            })?;
            let mut all = keys.clone();
            all.extend(vnis.iter().map(|v| segment::lease_key(*v)));
            let (n, l) = (name.clone(), lineage.clone());
            let refused = self.on_store(move |s| s.take_leases(&n, &l, &all)).await?;
            if refused.is_empty() {
                let mut kept = self
                    .vnis
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                kept.extend(networks.iter().cloned().zip(vnis));
                return Ok(Vec::new());
            }
            // A host taken is final; a VNI taken meanwhile: choose again.
            let rows = self.on_store(|s| s.leases()).await?;
            let hosts_refused = conflicts(&rows, &lineage, &keys);
            if !hosts_refused.is_empty() {
                return Ok(hosts_refused);
            }
        }
        Err(PlatformError::retryable(
            "other sessions kept taking the VXLAN network identifiers chosen: apply again",
        ))
    }

    /// The VNI this run leased for network `name`.
    pub(super) fn leased_vni(&self, name: &str) -> PlatformResult<u32> {
        self.vnis
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .copied()
            .ok_or_else(|| {
                PlatformError::new(format!(
                    "network `{name}` got no VXLAN network identifier before the apply: plan again"
                ))
            })
    }

    /// The segment interfaces of node `n` on its host, from its networks
    /// among `deps`, by network name.
    pub(super) fn links(
        &self,
        n: &NodeSpec,
        deps: &BTreeMap<String, Dependency>,
    ) -> PlatformResult<Vec<(String, Link)>> {
        let Some(own) = &n.host else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for i in &n.interfaces {
            let net = deps.values().find_map(|d| match &d.spec {
                Spec::Network(net) if net.name == i.network => Some((net, &d.private)),
                _ => None,
            });
            let Some((net, private)) = net else {
                return Err(PlatformError::new(format!(
                    "node `{}`: its network `{}` is not made",
                    n.hostname, i.network
                )));
            };
            let vni = vni_in(private).ok_or_else(|| {
                PlatformError::new(format!(
                    "network `{}` has no VXLAN network identifier recorded: replace it (`-replace`)",
                    net.name
                ))
            })?;
            let peers = net
                .hosts
                .iter()
                .filter(|h| *h != own)
                .map(|h| self.underlay(h))
                .collect::<PlatformResult<Vec<_>>>()?;
            out.push((
                i.network.clone(),
                Link {
                    vni,
                    local: self.underlay(own)?,
                    peers,
                    address: i.address,
                    prefix_len: i.prefix_len,
                },
            ));
        }
        Ok(out)
    }

    /// Make `links` on `t` (each from nothing); returns the private record
    /// of them (network → interface).
    pub(super) async fn make_links(
        &self,
        t: Target,
        links: &[(String, Link)],
    ) -> PlatformResult<serde_json::Value> {
        let mut record = serde_json::Map::new();
        if links.is_empty() {
            self.must(t, "checking the host", "true".into()).await?;
            return Ok(serde_json::Value::Object(record));
        }
        let line = links
            .iter()
            .map(|(_, l)| format!("( {} )", segment::up_lines(l)))
            .collect::<Vec<_>>()
            .join(" && ");
        self.must(t, "making the segment interfaces", segment::locked(&line))
            .await?;
        for (net, l) in links {
            record.insert(net.clone(), segment::ifname(l.vni).into());
        }
        Ok(serde_json::Value::Object(record))
    }

    /// Remove the segment interfaces `private` records on `t`.
    pub(super) async fn remove_links(
        &self,
        t: Target,
        private: &serde_json::Value,
    ) -> PlatformResult<()> {
        let devs = recorded_links(private);
        if devs.is_empty() {
            return Ok(());
        }
        let line = devs
            .values()
            .map(|d| segment::down_line(d))
            .collect::<Vec<_>>()
            .join("; ");
        self.must(t, "removing the segment interfaces", segment::locked(&line))
            .await
            .map(|_| ())
    }

    /// Node `n` as its host has it: without the interfaces that are missing
    /// there (so the plan makes them again), `None` when all are there.
    pub(super) async fn read_links(
        &self,
        t: Target,
        n: &NodeSpec,
        private: &serde_json::Value,
    ) -> PlatformResult<Option<NodeSpec>> {
        let devs = recorded_links(private);
        let checks: Vec<(String, Ipv4Addr)> = n
            .interfaces
            .iter()
            .map(|i| match devs.get(&i.network) {
                Some(d) => (d.clone(), i.address),
                // Never made: reported missing under a name no host has.
                None => ("tgvx-none".to_string(), i.address),
            })
            .collect();
        if checks.is_empty() {
            return Ok(None);
        }
        let out = self
            .must(
                t,
                "checking the segment interfaces",
                segment::locked(&segment::missing_line(&checks)),
            )
            .await?;
        let missing: BTreeSet<&str> = out.lines().map(str::trim).collect();
        if missing.is_empty() {
            return Ok(None);
        }
        let mut now = n.clone();
        now.interfaces.retain(|i| {
            devs.get(&i.network)
                .is_some_and(|d| !missing.contains(d.as_str()))
        });
        Ok(Some(now))
    }

    /// A network's hosts changed: on every host that stays, add the new
    /// peers and drop the gone ones.
    pub(super) async fn change_peers(
        &self,
        before: &NetworkSpec,
        after: &NetworkSpec,
        private: &serde_json::Value,
    ) -> PlatformResult<()> {
        let Some(vni) = vni_in(private) else {
            return Ok(());
        };
        let (old, new): (BTreeSet<&String>, BTreeSet<&String>) =
            (before.hosts.iter().collect(), after.hosts.iter().collect());
        let added = new
            .difference(&old)
            .map(|h| self.underlay(h))
            .collect::<PlatformResult<Vec<_>>>()?;
        // A host gone from the pool block cannot be resolved: its entry
        // goes with the interface when the host is reset.
        let removed: Vec<Ipv4Addr> = old
            .difference(&new)
            .filter_map(|h| self.underlay(h).ok())
            .collect();
        for h in old.intersection(&new) {
            let t = self.host(h)?;
            let line = segment::locked(&segment::peers_line(vni, &added, &removed));
            self.must(t, "changing the segment's peers", line).await?;
        }
        Ok(())
    }
}

/// The VNI a network's private record holds.
pub(super) fn vni_in(private: &serde_json::Value) -> Option<u32> {
    private
        .get("vni")
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok())
}

/// Network → interface, as a node's private record has them.
fn recorded_links(private: &serde_json::Value) -> BTreeMap<String, String> {
    private
        .get("links")
        .and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                // Only names tg makes go into a shell line.
                .filter(|(_, d)| {
                    d.strip_prefix("tgvx")
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                })
                .collect()
        })
        .unwrap_or_default()
}
