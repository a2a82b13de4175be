//! A node's create, read, in-place update and delete on the netns
//! platform: its init and namespaces (`node`), its links (`net`), its
//! SSH server, impairments and checks.

use std::path::PathBuf;

use super::{
    cgroup, impair, locks, names, net, node, node_id, node_veths, to_private, NetnsPlatform,
    NodePrivate,
};
use crate::platform::{
    Cancel, CreateResponse, NodeSpec, PlatformError, PlatformResult, ReadResponse, SessionRef, Spec,
};

impl NetnsPlatform {
    pub(super) fn create_node(
        &self,
        session: &SessionRef,
        spec: &NodeSpec,
        cancel: &Cancel,
        trace: &crate::platform::trace::OpTrace,
    ) -> PlatformResult<CreateResponse> {
        let sid = Self::sid(session);
        let run_dir = &self.options.run_dir;
        let lock = self.session_lock(&sid);
        let id = node::new_id();
        let init = self.init_program()?;
        let secrets = self.secrets(session);
        let created = {
            let _p = trace.phase("namespaces");
            node::create_node(
                &lock,
                &self.options,
                &sid,
                spec,
                &node::NodeOptions {
                    id: &id,
                    secrets: &secrets,
                    init: &init,
                    ssh: (spec.settings.ssh != Some(false))
                        .then_some(session.ssh_client_key.as_deref()),
                    filters: self.filters()?,
                },
            )?
        };
        let veths = node_veths(&sid, &id, spec);
        let result = (|| {
            {
                let _p = trace.phase("links");
                self.plug(&lock, &sid, &created, spec, &veths, &[])?;
                self.impair_links(&sid, spec, &veths, None)?;
            }
            if spec.settings.wait_for.is_empty() {
                return Ok(());
            }
            let _p = trace.phase("wait_for");
            self.wait_for(
                &sid,
                format!("node `{}`", spec.hostname),
                &created,
                spec.interfaces.first().map(|i| i.address),
                &spec.settings.wait_for,
                cancel,
            )
        })();
        if let Err(e) = result {
            // Leave nothing half made behind.
            let _ = net::detach(run_dir, &sid, &veths);
            let _ = node::delete_node(&created.paths);
            return Err(e);
        }
        let private = NodePrivate {
            sid,
            id: Some(id),
            dir: created.paths.dir.clone(),
            veths,
            ssh_host_key: created.record.ssh_host_key.clone(),
            host: Some(self.options.host.clone()),
        };
        Ok(CreateResponse {
            private: to_private(&private),
        })
    }

    /// Link the node's interfaces to their networks, but those in `keep`
    /// (indexes whose veth is in place already).
    pub(super) fn plug(
        &self,
        lock: &locks::SessionLock,
        sid: &str,
        node: &node::Node,
        spec: &NodeSpec,
        veths: &[String],
        keep: &[usize],
    ) -> PlatformResult<()> {
        let netns = PathBuf::from(format!("/proc/{}/ns/net", node.pid()));
        for (i, (iface, veth)) in spec.interfaces.iter().zip(veths).enumerate() {
            if keep.contains(&i) {
                continue;
            }
            let ifname = names::node_ifname(i);
            let plug = net::links::Plug {
                network: &iface.network,
                node_netns: &netns,
                veth,
                ifname_in_node: &ifname,
                address: iface.address,
                prefix_len: iface.prefix_len,
                gateway: (i == 0).then_some(iface.gateway),
            };
            net::attach(
                lock,
                &self.shared.bridges,
                &self.options.run_dir,
                sid,
                &plug,
            )?;
        }
        if !node.alive() {
            return Err(PlatformError::new(format!(
                "node `{}` ended while it was being linked to its networks",
                spec.hostname
            )));
        }
        Ok(())
    }

    pub(super) fn delete_node(
        &self,
        sid: &str,
        spec: &NodeSpec,
        private: &serde_json::Value,
        trace: &crate::platform::trace::OpTrace,
    ) -> PlatformResult<()> {
        self.check_here(spec, private)?;
        let run_dir = &self.options.run_dir;
        let id = node_id(private, spec);
        let paths = node::node_paths(run_dir, sid, &id);
        let veths = NodePrivate::of(private)
            .map(|p| p.veths)
            .unwrap_or_else(|| node_veths(sid, &id, spec));
        let alive = node::node_exists(&paths);
        let deleted = {
            let _p = trace.phase("namespaces");
            node::delete_node(&paths)
        };
        // Once the node's init is gone the kernel destroys its network
        // namespace and its veth pairs itself, in batches (deleting them
        // one by one here costs a third of a 100-node destroy). Only when
        // the node was not running are its veths taken off the bridges
        // explicitly.
        if deleted.is_err() || !alive {
            let _p = trace.phase("links");
            net::detach(run_dir, sid, &veths)?;
        }
        deleted
    }

    /// An error when the node of `private` runs on another machine: this
    /// one cannot see it, so it must not take it for gone.
    pub(super) fn check_here(
        &self,
        spec: &NodeSpec,
        private: &serde_json::Value,
    ) -> PlatformResult<()> {
        match super::node_host(private) {
            Some(h) if h != self.options.host => Err(PlatformError::new(format!(
                "node `{}` runs on host `{h}`, not on this one (`{}`): run tg for this session there",
                spec.hostname, self.options.host
            ))),
            _ => Ok(()),
        }
    }

    /// The running node of a node spec and its private value.
    pub(super) fn open_node(
        &self,
        sid: &str,
        spec: &NodeSpec,
        private: &serde_json::Value,
    ) -> Option<node::Node> {
        let id = node_id(private, spec);
        node::Node::open(&node::node_paths(&self.options.run_dir, sid, &id))
    }

    pub(super) fn read_node(
        &self,
        sid: &str,
        spec: &NodeSpec,
        private: &serde_json::Value,
    ) -> PlatformResult<ReadResponse> {
        self.check_here(spec, private)?;
        let Some(node) = self.open_node(sid, spec, private) else {
            return Ok(ReadResponse::Gone);
        };
        let veths = NodePrivate::of(private)
            .map(|p| p.veths)
            .filter(|v| v.len() == spec.interfaces.len())
            .unwrap_or_else(|| node_veths(sid, &node.paths.id, spec));
        let plugs: Vec<(String, String)> = veths
            .iter()
            .cloned()
            .zip(spec.interfaces.iter().map(|i| i.network.clone()))
            .collect();
        // Only nodes whose links should all be unimpaired ask for the
        // kinds of their root qdiscs (over netlink, with the links).
        let wanted = spec.interfaces.iter().any(|i| !i.impair.is_none());
        let seen_links = net::links::inspect(&self.options.run_dir, sid, &plugs, !wanted)?;
        let plugged = &seen_links.plugged;
        let mut seen = spec.clone();
        seen.hostname = node.record.hostname.clone();
        // A veth gone, or left without its bridge (deleted behind tg's
        // back), no longer links the node to that network.
        // Its impairment is what tc shows on the router side now. `tc`
        // runs (once for the node) only when a link should be impaired,
        // or has a root qdisc of a kind tg makes (`tbf`, `netem`) that
        // someone added by hand: a refresh of nodes without impairments
        // starts no process.
        let foreign = seen_links
            .root_qdiscs
            .values()
            .any(|k| impair::is_tg_kind(k));
        let seen_impairs = if wanted || foreign {
            impair::read(&self.options.run_dir, sid, &veths)?
        } else {
            vec![Some(Default::default()); veths.len()]
        };
        let mut interfaces = Vec::new();
        for ((iface, veth), now) in spec.interfaces.iter().zip(&veths).zip(seen_impairs) {
            if !plugged.contains(veth) {
                continue;
            }
            let mut iface = iface.clone();
            let now = now.unwrap_or_default();
            if !impair::same(&now, &iface.impair) {
                iface.impair = now;
            }
            interfaces.push(iface);
        }
        seen.interfaces = interfaces;
        Ok(ReadResponse::Present {
            spec: Spec::Node(seen),
        })
    }

    /// Change a node in place: hostname, limits, interfaces.
    pub(super) fn update_node(
        &self,
        session: &SessionRef,
        before: &NodeSpec,
        after: &NodeSpec,
        private: &serde_json::Value,
        trace: &crate::platform::trace::OpTrace,
    ) -> PlatformResult<CreateResponse> {
        let sid = Self::sid(session);
        self.check_here(before, private)?;
        let node = self.open_node(&sid, before, private).ok_or_else(|| {
            PlatformError::not_found(format!(
                "node `{}` does not exist on this host: run `tg apply` to make it",
                before.hostname
            ))
        })?;
        let id = node.paths.id.clone();
        if node.record.hostname != after.hostname {
            names::check_hostname(&after.hostname).map_err(PlatformError::new)?;
            node.set_hostname(&after.hostname)?;
        }
        {
            let _p = trace.phase("cgroups");
            cgroup::apply(&sid, &id, after)?;
        }
        let old_veths = NodePrivate::of(private)
            .map(|p| p.veths)
            .unwrap_or_else(|| node_veths(&sid, &id, before));
        let veths = node_veths(&sid, &id, after);
        let plugs: Vec<(String, String)> = veths
            .iter()
            .cloned()
            .zip(after.interfaces.iter().map(|i| i.network.clone()))
            .collect();
        let plugged = net::links::plugged(&self.options.run_dir, &sid, &plugs)?;
        // An interface stays when it is the same as before, in place, and
        // still on its bridge; anything else is linked anew.
        let keep: Vec<usize> = (0..after.interfaces.len())
            .filter(|&i| {
                impair::without_impair(before.interfaces.get(i))
                    == impair::without_impair(after.interfaces.get(i))
                    && old_veths.get(i) == veths.get(i)
                    && plugged.contains(&veths[i])
            })
            .collect();
        let doomed: Vec<String> = old_veths
            .iter()
            .enumerate()
            .filter(|(i, _)| !keep.contains(i))
            .map(|(_, v)| v.clone())
            .chain(
                veths
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !keep.contains(i))
                    .map(|(_, v)| v.clone()),
            )
            .collect();
        {
            let _p = trace.phase("links");
            net::detach(&self.options.run_dir, &sid, &doomed)?;
            let lock = self.session_lock(&sid);
            self.plug(&lock, &sid, &node, after, &veths, &keep)?;
            self.impair_links(&sid, after, &veths, Some((before, &keep)))?;
        }
        Ok(CreateResponse {
            private: to_private(&NodePrivate {
                sid,
                id: Some(id),
                dir: node.paths.dir.clone(),
                veths,
                ssh_host_key: node.record.ssh_host_key.clone(),
                host: Some(self.options.host.clone()),
            }),
        })
    }
}
