//! `tg inventory --list | --host H`: the Ansible dynamic-inventory script
//! interface (`ansible -i 'tg inventory' ...` via a wrapper, or `tg output
//! inventory > inv.json`).

use serde_json::Value;

use crate::cli::args::InventoryArgs;
use crate::cli::commands::output::load_snapshot;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops::{self, InventoryOptions};
use crate::state::Snapshot;

pub fn run(ctx: &Ctx, args: &InventoryArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

/// The whole inventory of the session's recorded nodes.
pub(crate) fn inventory_doc(ctx: &Ctx, snap: &Snapshot) -> Value {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| std::fs::canonicalize(p).ok())
        .unwrap_or_else(|| "tg".into());
    ops::inventory(
        snap,
        &InventoryOptions {
            session: ctx.session.to_string(),
            tg_exe: exe,
            testbed_dir: engine::abs_dir(ctx),
        },
    )
}

fn run_inner(ctx: &Ctx, args: &InventoryArgs) -> CmdResult<i32> {
    if args.list == args.host.is_some() {
        return Err(report::fail(
            "give exactly one of `--list` or `--host HOST`",
        ));
    }
    let snap = load_snapshot(ctx)?;
    let doc = inventory_doc(ctx, &snap);
    let out = match &args.host {
        Some(h) => doc
            .pointer(&format!(
                "/_meta/hostvars/{}",
                h.replace('~', "~0").replace('/', "~1")
            ))
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default())),
        None => doc,
    };
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(0)
}
