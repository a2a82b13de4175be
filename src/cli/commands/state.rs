//! `tg state list [ADDR...] | show ADDR | rm ADDR... | migrate --to URL`.

use std::sync::Arc;

use crate::addrs::{InstanceAddr, InstanceKey};
use crate::apply::NoHook;
use crate::cli::args::StateCommand;
use crate::cli::commands::show::state_json;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops;
use crate::plan::spec_attributes;
use crate::state::{InstanceStatus, Snapshot};

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
                return Err(report::fail("`tg state rm` needs at least one address"));
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
            // One instance, or a whole resource (`node.a` -> `node.b` moves
            // `node.a[0]`, `node.a[1]`... to the same keys).
            let renames: Vec<(InstanceAddr, InstanceAddr)> = if snap.instances.contains_key(&from) {
                vec![(from.clone(), to.clone())]
            } else if from.key == InstanceKey::None && to.key == InstanceKey::None {
                snap.instances
                    .keys()
                    .filter(|a| a.resource == from.resource)
                    .map(|a| {
                        (
                            a.clone(),
                            InstanceAddr::new(to.kind(), to.name(), a.key.clone()),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            };
            if renames.is_empty() {
                return Err(report::fail(format!(
                    "`{from}` is not recorded in session `{}`: see `tg state list`",
                    ctx.session
                )));
            }
            let mut renames = renames;
            // Packages are addressed with their node: they move with it.
            let nodes: std::collections::BTreeMap<InstanceAddr, InstanceAddr> =
                renames.iter().cloned().collect();
            for a in snap.instances.keys() {
                if let InstanceKey::Node(n) = &a.key {
                    if let Some(new) = nodes.get(n.as_ref()) {
                        renames.push((
                            a.clone(),
                            InstanceAddr::new(
                                a.kind(),
                                a.name(),
                                InstanceKey::Node(Box::new(new.clone())),
                            ),
                        ));
                    }
                }
            }
            let map: std::collections::BTreeMap<InstanceAddr, InstanceAddr> =
                renames.iter().cloned().collect();
            for (_, new) in &renames {
                if snap.instances.contains_key(new) && !map.contains_key(new) {
                    return Err(report::fail(format!(
                        "`{new}` is already recorded in session `{}`: remove it first (`tg state rm`) or pick another address",
                        ctx.session
                    )));
                }
            }
            // What depended on an old address now depends on the new one.
            let mut moved = snap.clone();
            moved.instances = snap
                .instances
                .values()
                .map(|r| {
                    let mut r = r.clone();
                    if let Some(new) = map.get(&r.address) {
                        r.address = new.clone();
                    }
                    for d in &mut r.dependencies {
                        if let Some(new) = map.get(d) {
                            *d = new.clone();
                        }
                    }
                    (r.address.clone(), r)
                })
                .collect();
            store
                .import(ctx.session.as_str(), &moved)
                .map_err(report::fail)?;
            rt.block_on(locked.release()).map_err(report::fail)?;
            for (old, new) in &renames {
                println!("Move \"{old}\" to \"{new}\"");
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
