//! `tg show [PLANFILE] [-json]`: a saved plan, or the session's state.

use crate::plan::render_text::indent_value;
use serde_json::{json, Value};

use crate::cli::args::ShowArgs;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops;
use crate::plan::planfile::PlanFile;
use crate::plan::render_json::plan_json;
use crate::plan::render_text::{render_plan, TextOptions};
use crate::plan::{name_and_index, spec_attributes};
use crate::state::Snapshot;

pub fn run(ctx: &Ctx, args: &ShowArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, args: &ShowArgs) -> CmdResult<i32> {
    if let Some(path) = &args.plan_file {
        let pf = PlanFile::load(path).map_err(report::fail)?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan_json(&pf.plan)).unwrap_or_default()
            );
        } else {
            print!(
                "{}",
                render_plan(&pf.plan, TextOptions { color: ctx.color })
            );
        }
        return Ok(0);
    }
    let store = engine::store(ctx)?;
    let info = store
        .get_session(ctx.session.as_str())
        .map_err(report::fail)?;
    let snap = match &info {
        Some(_) => store.load(ctx.session.as_str()).map_err(report::fail)?,
        None => Snapshot::default(),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&state_json(ctx.session.as_str(), &snap))
                .unwrap_or_default()
        );
        return Ok(0);
    }
    if snap.instances.is_empty() {
        match &info {
            Some(_) if snap.serial > 0 => println!(
                "The state of session `{}` is empty: what it made was destroyed (state serial {}).",
                ctx.session, snap.serial
            ),
            _ => println!(
                "The state of session `{}` is empty: nothing has been applied.",
                ctx.session
            ),
        }
        return Ok(0);
    }
    for rec in snap.instances.values() {
        let tainted = match rec.status {
            crate::state::InstanceStatus::Tainted => " (tainted)",
            crate::state::InstanceStatus::Ready => "",
        };
        println!("# {}:{tainted}", rec.address);
        println!("{} \"{}\" {{", rec.address.kind(), rec.address.name());
        let attrs = spec_attributes(&rec.spec);
        let width = attrs.keys().map(|k| k.len()).max().unwrap_or(0).max(8);
        println!("    {:width$} = {}", "platform", json!(rec.platform));
        for (k, v) in attrs {
            if !v.is_null() {
                println!("    {k:width$} = {}", indent_value(&v, 4));
            }
        }
        println!("}}\n");
    }
    if !snap.outputs.is_empty() {
        println!("Outputs:\n");
        for (k, o) in &snap.outputs {
            if o.sensitive {
                println!("{k} = (sensitive value)");
            } else {
                println!("{k} = {}", indent_value(&o.value, 0));
            }
        }
    }
    Ok(0)
}

/// The state as one JSON document (`schemas/state.schema.json`).
pub fn state_json(session: &str, snap: &Snapshot) -> Value {
    let instances: Vec<Value> = snap
        .instances
        .values()
        .map(|r| {
            let (name, index) = name_and_index(&r.address);
            let mut v = json!({
                "address": r.address.to_string(),
                "type": r.address.kind().as_str(),
                "name": name,
                "platform": r.platform,
                "status": r.status,
                "spec": r.spec,
                "attributes": r.attributes,
                "dependencies": r.dependencies.iter().map(ToString::to_string).collect::<Vec<_>>(),
            });
            if let Some(i) = index {
                v["index"] = i;
            }
            v
        })
        .collect();
    let outputs: serde_json::Map<String, Value> = snap
        .outputs
        .iter()
        .map(|(k, o)| {
            (
                k.clone(),
                json!({"value": o.value, "sensitive": o.sensitive}),
            )
        })
        .collect();
    json!({
        "format_version": "1.0",
        "tg_version": ops::TG_VERSION,
        "session": session,
        "lineage": snap.lineage,
        "serial": snap.serial,
        "instances": instances,
        "outputs": outputs,
    })
}
