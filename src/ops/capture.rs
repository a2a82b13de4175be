//! Packet capture on a running session (`tg capture`): which link the
//! target names, and the platform that owns it.
//!
//! Not here: how a platform captures (`Platform::capture`).

use super::{exec::select_nodes, parse_addresses, Context, OpsError, OpsResult};
use crate::platform::{Cancel, CaptureRequest, CaptureTarget, ExecIo, ExecStatus, Spec};

/// What to capture and how much.
#[derive(Debug, Default, Clone)]
pub struct CaptureOptions {
    /// For a node on several networks: which link (default: its first).
    pub network: Option<String>,
    /// A BPF filter expression, word by word.
    pub filter: Vec<String>,
    pub count: Option<u64>,
}

/// Capture on `target`: a network (`network.lab`) or one node
/// (`node.edge[0]`, a selector that matches exactly one node).
pub async fn capture(
    ctx: &Context,
    target: &str,
    opts: CaptureOptions,
    io: ExecIo,
    cancel: Cancel,
) -> OpsResult<ExecStatus> {
    let (session, snap) = ctx.existing_session_and_state().await?;
    let target = target.trim();
    let (platform, what) = if target.starts_with("network.") {
        let t = parse_addresses("capture", &[target.to_string()])?.remove(0);
        let nets: Vec<_> = snap
            .instances
            .values()
            .filter(|r| matches!(r.spec, Spec::Network(_)) && r.address.matches(&t))
            .collect();
        let rec = match nets.as_slice() {
            [one] => *one,
            [] => {
                return Err(OpsError::Usage(format!(
                    "`{target}` matches no network recorded in session `{}`: see `tg state list`",
                    session.name
                )))
            }
            more => {
                return Err(OpsError::Usage(format!(
                    "`{target}` matches {} networks: name one (`network.lab[0]`)",
                    more.len()
                )))
            }
        };
        let Spec::Network(n) = &rec.spec else {
            unreachable!("filtered on networks")
        };
        (
            rec.platform.clone(),
            CaptureTarget::Network {
                name: n.name.clone(),
            },
        )
    } else {
        let nodes = select_nodes(&snap, &session.name, target)?;
        let rec = match nodes.as_slice() {
            [one] => *one,
            more => {
                return Err(OpsError::Usage(format!(
                    "`{target}` matches {} nodes, and a capture listens on one link: name one node (`node.edge[0]`) or a network (`network.lab`)",
                    more.len()
                )))
            }
        };
        let Spec::Node(spec) = &rec.spec else {
            unreachable!("select_nodes returns nodes")
        };
        let network = match &opts.network {
            Some(n) => {
                if !spec.interfaces.iter().any(|i| &i.network == n) {
                    let on: Vec<String> = spec
                        .interfaces
                        .iter()
                        .map(|i| format!("`{}`", i.network))
                        .collect();
                    return Err(OpsError::Usage(format!(
                        "`{}` is not on network `{n}`; it is on {}",
                        rec.address,
                        on.join(", ")
                    )));
                }
                n.clone()
            }
            None => match spec.interfaces.first() {
                Some(i) => i.network.clone(),
                None => {
                    return Err(OpsError::Usage(format!(
                        "`{}` has no network link to capture on",
                        rec.address
                    )))
                }
            },
        };
        (
            rec.platform.clone(),
            CaptureTarget::Node {
                spec: Box::new(spec.clone()),
                private: rec.private.clone(),
                network,
            },
        )
    };
    let p =
        ctx.registry.get(&platform).cloned().ok_or_else(|| {
            OpsError::Usage(format!("platform `{platform}` is not available here"))
        })?;
    if let Some(problem) = p.host_problem() {
        return Err(OpsError::Usage(problem));
    }
    p.capture(CaptureRequest {
        session,
        target: what,
        filter: opts.filter,
        count: opts.count,
        io,
        cancel,
    })
    .await
    .map_err(|e| OpsError::Usage(e.full()))
}
