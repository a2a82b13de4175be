//! `tg state list [ADDR...] | show ADDR | rm ADDR... | migrate --to URL`.

use std::sync::Arc;

use crate::addrs::InstanceAddr;
use crate::apply::NoHook;
use crate::cli::args::StateCommand;
use crate::cli::commands::show::state_json;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops;
use crate::plan::spec_attributes;
use crate::state::{moves, InstanceStatus, Snapshot};

pub fn run(ctx: &Ctx, args: &StateCommand) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn matching<'a>(snap: &'a Snapshot, addrs: &[InstanceAddr]) -> Vec<&'a InstanceAddr> {
    snap.instances
        .keys()
        .filter(|a| addrs.is_empty() || addrs.iter().any(|t| a.matches(t)))
        .collect()
}

fn run_inner(ctx: &Ctx, args: &StateCommand) -> CmdResult<i32> {
    let rt = engine::runtime()?;
    let context = engine::open_for_reading(ctx, &rt, Arc::new(NoHook))?;
    let store = context.store.clone();
    match args {
        StateCommand::List { addresses } => {
            let addrs = ops::parse_addresses("state list", addresses).map_err(report::fail)?;
            let snap = ops::snapshot(&context).map_err(report::fail)?;
            for a in matching(&snap, &addrs) {
                println!("{a}");
            }
            Ok(0)
        }
        StateCommand::Show { address } => {
            let addr: InstanceAddr = address.parse().map_err(report::fail)?;
            let snap = ops::snapshot(&context).map_err(report::fail)?;
            let Some(rec) = snap.instances.get(&addr) else {
                return Err(report::fail(format!(
                    "`{addr}` is not recorded in session `{}`: see `tg state list`",
                    ctx.session
                )));
            };
            let status = match rec.status {
                InstanceStatus::Ready => "",
                InstanceStatus::Tainted => " (tainted)",
            };
            println!("# {}:{status}", rec.address);
            println!("{} \"{}\" {{", rec.address.kind(), rec.address.name());
            let attrs = spec_attributes(&rec.spec);
            let width = attrs.keys().map(|k| k.len()).max().unwrap_or(0).max(12);
            println!("    {:width$} = {:?}", "platform", rec.platform);
            for (k, v) in attrs {
                println!("    {k:width$} = {v}");
            }
            if !rec.dependencies.is_empty() {
                let deps: Vec<String> = rec.dependencies.iter().map(|d| d.to_string()).collect();
                println!("    {:width$} = [{}]", "dependencies", deps.join(", "));
            }
            println!("}}");
            Ok(0)
        }
        StateCommand::Rm { addresses } => {
            if addresses.is_empty() {
                return Err(report::fail("`tg state rm` needs at least one address: name an instance (`node.edge[0]`) or a resource (`node.edge`); `tg state list` shows them"));
            }
            let addrs = ops::parse_addresses("state rm", addresses).map_err(report::fail)?;
            let _lock = engine::lock_now(&rt, context.clone(), "state rm")?;
            let snap = ops::snapshot(&context).map_err(report::fail)?;
            let doomed: Vec<InstanceAddr> = matching(&snap, &addrs).into_iter().cloned().collect();
            if doomed.is_empty() {
                return Err(report::fail(format!(
                    "no recorded instance matches {}: see `tg state list`",
                    addresses
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            for a in &doomed {
                store
                    .remove_instance(ctx.session.as_str(), a)
                    .map_err(report::fail)?;
                println!("Removed {a}");
            }
            println!(
                "Successfully removed {} instance(s). The objects themselves were not destroyed.",
                doomed.len()
            );
            Ok(0)
        }
        StateCommand::Mv { from, to } => {
            let from: InstanceAddr = from.parse().map_err(report::fail)?;
            let to: InstanceAddr = to.parse().map_err(report::fail)?;
            if from.kind() != to.kind() {
                return Err(report::fail(format!(
                    "cannot move `{from}` to `{to}`: expected a {} address, found a {} one",
                    from.kind(),
                    to.kind()
                )));
            }
            let locked = engine::lock_now(&rt, context.clone(), "state mv")?;
            let snap = &locked.snapshot;
            let renames = moves::expand(snap, &from, &to);
            if renames.is_empty() {
                return Err(report::fail(format!(
                    "`{from}` is not recorded in session `{}`: see `tg state list`",
                    ctx.session
                )));
            }
            let moved = moves::rename(snap, &renames).map_err(|e| {
                report::fail(format!(
                    "{e} in session `{}`: remove it first (`tg state rm`) or pick another address",
                    ctx.session
                ))
            })?;
            store
                .import(ctx.session.as_str(), &moved)
                .map_err(report::fail)?;
            rt.block_on(locked.release()).map_err(report::fail)?;
            for r in &renames {
                println!("Move \"{}\" to \"{}\"", r.from, r.to);
            }
            println!(
                "Successfully moved {} object(s). Nothing was recreated.",
                renames.len()
            );
            Ok(0)
        }
        StateCommand::Migrate { to } => {
            let _lock = engine::lock_now(&rt, context.clone(), "state migrate")?;
            let snap = ops::snapshot(&context).map_err(report::fail)?;
            let target = ops::open_store(&engine::abs_dir(ctx), &Default::default(), Some(to))
                .map_err(report::fail)?;
            target
                .import(ctx.session.as_str(), &snap)
                .map_err(report::fail)?;
            let check = target.load(ctx.session.as_str()).map_err(report::fail)?;
            if check.instances != snap.instances {
                return Err(report::fail(format!(
                    "the copy at {} does not match the original: the original was kept",
                    target.location()
                )));
            }
            let _ = state_json;
            println!(
                "Copied session `{}` ({} instance(s), lineage {}) from {} to {}.",
                ctx.session,
                snap.instances.len(),
                snap.lineage,
                store.location(),
                target.location()
            );
            println!("Point tg at it with `TG_STATE_URL` or the testbed's `state` block.");
            Ok(0)
        }
    }
}
