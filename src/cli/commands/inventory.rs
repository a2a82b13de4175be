//! `tg inventory --list | --host H`: the Ansible dynamic-inventory script
//! interface (`ansible -i inventory.sh ...` with a wrapper that runs it),
//! and the inventory `tg output inventory` prints.

use serde_json::Value;

use crate::cli::args::{InventoryArgs, InventoryFormat};
use crate::cli::commands::output::load_with_platforms;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops::{self, Inventory, InventoryOptions, SshReach};
use crate::platform::registry::Registry;
use crate::state::Snapshot;

pub fn run(ctx: &Ctx, args: &InventoryArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

/// How ssh reaches the session's netns nodes. Host keys are checked
/// whenever the session has netns nodes, even when its `known_hosts` is
/// missing (then ssh refuses them, and `tg apply` writes it again): a lost
/// file never turns checking off.
pub(crate) fn ssh_reach(ctx: &Ctx, snap: &Snapshot) -> SshReach {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| std::fs::canonicalize(p).ok())
        .unwrap_or_else(|| "tg".into());
    let dir = engine::abs_dir(ctx);
    let kh = ops::session_ssh_dir(&dir, ctx.session.as_str()).join(ops::ssh_files::KNOWN_HOSTS);
    SshReach {
        tg_exe: exe,
        testbed_dir: dir,
        session: ctx.session.to_string(),
        known_hosts: (kh.is_file() || has_netns_nodes(snap)).then_some(kh),
    }
}

fn has_netns_nodes(snap: &Snapshot) -> bool {
    snap.instances
        .values()
        .any(|r| r.platform == "netns" && matches!(r.spec, crate::platform::Spec::Node(_)))
}

/// The whole inventory of the session's recorded nodes.
pub(crate) fn inventory_of(
    ctx: &Ctx,
    snap: &Snapshot,
    platforms: &Registry,
) -> CmdResult<Inventory> {
    let reach = ssh_reach(ctx, snap);
    let key = ops::session_ssh_dir(&reach.testbed_dir, ctx.session.as_str())
        .join(ops::ssh_files::CLIENT_KEY);
    ops::inventory(
        snap,
        &InventoryOptions {
            reach,
            private_key: key.is_file().then_some(key),
            logins: ops::ssh_logins(platforms, snap),
        },
    )
    .map_err(report::fail)
}

/// The inventory in `format`, as printed.
pub(crate) fn render(inv: &Inventory, format: InventoryFormat) -> String {
    match format {
        InventoryFormat::Script => pretty(&inv.script_json()),
        InventoryFormat::Json => pretty(&inv.static_doc()),
        InventoryFormat::Yaml => serde_norway::to_string(&inv.static_doc()).unwrap_or_default(),
    }
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

fn run_inner(ctx: &Ctx, args: &InventoryArgs) -> CmdResult<i32> {
    if args.list == args.host.is_some() {
        return Err(report::fail(
            "give exactly one of `--list` or `--host HOST`",
        ));
    }
    let (snap, platforms) = load_with_platforms(ctx)?;
    let inv = inventory_of(ctx, &snap, &platforms)?;
    match &args.host {
        Some(h) => print!("{}", pretty(&inv.host_json(h))),
        None => print!("{}", render(&inv, InventoryFormat::Script)),
    }
    Ok(0)
}
