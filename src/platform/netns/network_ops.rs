//! A network's create, read and in-place update (NAT on or off) on the
//! netns platform; its delete is in the driver (`mod.rs`).

use super::{names, net, to_private, NetnsPlatform};
use crate::platform::{
    CreateResponse, NetworkSpec, PlatformError, PlatformResult, ReadResponse, SessionRef, Spec,
};

impl NetnsPlatform {
    pub(super) fn create_network(
        &self,
        session: &SessionRef,
        spec: &NetworkSpec,
    ) -> PlatformResult<CreateResponse> {
        let sid = Self::sid(session);
        let lock = self.session_lock(&sid);
        let held = lock.lock();
        let run_dir = &self.options.run_dir;
        let mut private = net::create_network(&held, run_dir, session, spec)?;
        if spec.nat {
            private.nat_via = Some(net::enable_nat(
                &held,
                &self.host(),
                run_dir,
                &sid,
                &spec.name,
            )?);
        }
        Ok(CreateResponse {
            private: to_private(&private),
        })
    }

    /// Turn NAT on or off for an existing network, as `spec.nat` says.
    pub(super) fn set_nat(
        &self,
        session: &SessionRef,
        spec: &NetworkSpec,
    ) -> PlatformResult<CreateResponse> {
        let run_dir = &self.options.run_dir;
        let sid = Self::sid(session);
        let lock = self.session_lock(&sid);
        let held = lock.lock();
        if net::network_addresses(run_dir, &sid, &spec.name)?.is_none() {
            return Err(PlatformError::new(format!(
                "network `{}` does not exist on this host: run `tg apply` to make it",
                spec.name
            )));
        }
        let nat_via = if spec.nat {
            Some(net::enable_nat(
                &held,
                &self.host(),
                run_dir,
                &sid,
                &spec.name,
            )?)
        } else {
            net::disable_nat(&held, &self.host(), run_dir, &sid, &spec.name)?;
            None
        };
        Ok(CreateResponse {
            private: to_private(&net::NetworkPrivate {
                bridge: names::bridge_name(&sid, &spec.name),
                router: net::router_netns_path(run_dir, &sid),
                nat_via,
            }),
        })
    }

    pub(super) fn read_network(
        &self,
        sid: &str,
        spec: &NetworkSpec,
    ) -> PlatformResult<ReadResponse> {
        // A bridge without its gateway address is as good as gone: create
        // makes it whole again.
        match net::network_addresses(&self.options.run_dir, sid, &spec.name)? {
            Some(addrs) if addrs.contains(&(spec.gateway, spec.cidr.prefix_len())) => {
                let mut seen = spec.clone();
                seen.nat = spec.nat && net::uplink_exists(sid);
                Ok(ReadResponse::Present {
                    spec: Spec::Network(seen),
                })
            }
            _ => Ok(ReadResponse::Gone),
        }
    }
}
