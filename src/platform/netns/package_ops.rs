//! A package's install, read and removal on the netns platform, and
//! which running node it goes on.

use std::collections::BTreeMap;

use super::{node, node_id, package, to_private, NetnsPlatform, PackagePrivate};
use crate::platform::{
    Cancel, CreateResponse, Dependency, PackageSpec, PlatformError, PlatformResult, ReadResponse,
    SessionRef, Spec,
};

impl NetnsPlatform {
    /// The running node a package goes on: from its node's recorded
    /// private value (`deps`), else from the package's own record, else
    /// by hostname (older records).
    pub(super) fn package_node(
        &self,
        sid: &str,
        spec: &PackageSpec,
        private: Option<&serde_json::Value>,
        deps: &BTreeMap<String, Dependency>,
    ) -> Option<node::Node> {
        let from_deps = deps.values().find_map(|d| match &d.spec {
            Spec::Node(n) if n.hostname == spec.node => Some(node_id(&d.private, n)),
            _ => None,
        });
        let from_private = private
            .and_then(|p| serde_json::from_value::<PackagePrivate>(p.clone()).ok())
            .and_then(|p| p.node_id);
        match from_deps.or(from_private) {
            Some(id) => node::Node::open(&node::node_paths(&self.options.run_dir, sid, &id)),
            None => node::find_by_hostname(&self.options.run_dir, sid, &spec.node),
        }
    }

    pub(super) fn install_package(
        &self,
        session: &SessionRef,
        spec: &PackageSpec,
        node: Option<node::Node>,
        cancel: &Cancel,
        trace: &crate::platform::trace::OpTrace,
    ) -> PlatformResult<CreateResponse> {
        let node = node.ok_or_else(|| {
            PlatformError::new(format!(
                "node `{}` does not exist on this host: run `tg apply` to make it",
                spec.node
            ))
        })?;
        let sandbox = self.sandbox_of(&node)?;
        {
            let _p = trace.phase("packages");
            package::install(
                &package::Target {
                    node: &node,
                    sandbox: &sandbox,
                    cancel: Some(cancel),
                },
                spec,
                &session.testbed_dir,
            )?;
        }
        Ok(CreateResponse {
            private: to_private(&PackagePrivate {
                node: spec.node.clone(),
                node_id: Some(node.paths.id.clone()),
            }),
        })
    }

    pub(super) fn read_package(
        &self,
        sid: &str,
        spec: &PackageSpec,
        private: &serde_json::Value,
    ) -> PlatformResult<ReadResponse> {
        let Some(node) = self.package_node(sid, spec, Some(private), &BTreeMap::new()) else {
            return Ok(ReadResponse::Gone);
        };
        let sandbox = self.sandbox_of(&node)?;
        let t = package::Target {
            node: &node,
            sandbox: &sandbox,
            cancel: None,
        };
        let Some(installed) = package::installed_version(&t, &spec.name)? else {
            return Ok(ReadResponse::Gone);
        };
        let mut seen = spec.clone();
        if spec
            .version
            .as_deref()
            .is_some_and(|want| want != installed)
        {
            seen.version = Some(installed);
        }
        Ok(ReadResponse::Present {
            spec: Spec::Package(seen),
        })
    }

    pub(super) fn delete_package(
        &self,
        node: Option<node::Node>,
        spec: &PackageSpec,
        cancel: &Cancel,
        trace: &crate::platform::trace::OpTrace,
    ) -> PlatformResult<()> {
        let Some(node) = node else {
            return Ok(());
        };
        let sandbox = self.sandbox_of(&node)?;
        let _p = trace.phase("packages");
        package::remove(
            &package::Target {
                node: &node,
                sandbox: &sandbox,
                cancel: Some(cancel),
            },
            &spec.name,
        )
    }
}
