//! `tg output [NAME] [-json] [-raw]`, and `tg output inventory`.

use serde_json::{json, Value};

use crate::cli::args::OutputArgs;
use crate::cli::commands::inventory::{inventory_of, render};
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::platform::registry::Registry;
use crate::state::Snapshot;

pub fn run(ctx: &Ctx, args: &OutputArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

/// The session's state and the testbed's platforms (what reaches a pool
/// host is in its pool's block, not in state).
pub(crate) fn load_with_platforms(ctx: &Ctx) -> CmdResult<(Snapshot, Registry)> {
    let rt = engine::runtime()?;
    let context = engine::open_for_reading(ctx, &rt, std::sync::Arc::new(crate::apply::NoHook))?;
    let store = context.store;
    let snap = match store
        .get_session(ctx.session.as_str())
        .map_err(report::fail)?
    {
        Some(_) => store.load(ctx.session.as_str()).map_err(report::fail)?,
        None => {
            return Err(report::fail(crate::state::StateError::NoSuchSession(
                ctx.session.to_string(),
            )))
        }
    };
    Ok((snap, context.registry))
}

fn run_inner(ctx: &Ctx, args: &OutputArgs) -> CmdResult<i32> {
    let (snap, platforms) = load_with_platforms(ctx)?;
    match args.name.as_deref() {
        Some("inventory") if !snap.outputs.contains_key("inventory") => {
            let inv = inventory_of(ctx, &snap, &platforms)?;
            print!("{}", render(&inv, args.format));
            Ok(0)
        }
        Some(name) => {
            let Some(o) = snap.outputs.get(name) else {
                let names: Vec<&str> = snap.outputs.keys().map(String::as_str).collect();
                let hint = match crate::diagnostics::did_you_mean(name, names.iter().copied()) {
                    Some(s) => format!(": did you mean `{s}`?"),
                    None if names.is_empty() => {
                        ": the session records no outputs (run `tg apply`)".into()
                    }
                    None => format!(
                        ": the outputs are {}",
                        names
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err(report::fail(format!("no output named `{name}`{hint}")));
            };
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&o.value).unwrap_or_default()
                );
            } else if args.raw {
                match &o.value {
                    Value::String(s) => println!("{s}"),
                    Value::Number(_) | Value::Bool(_) => println!("{}", o.value),
                    _ => {
                        return Err(report::fail(format!(
                            "`-raw` prints only strings, numbers and bools; output `{name}` is a list or map: use `-json`"
                        )))
                    }
                }
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&o.value).unwrap_or_default()
                );
            }
            Ok(0)
        }
        None => {
            if args.json {
                let doc: serde_json::Map<String, Value> = snap
                    .outputs
                    .iter()
                    .map(|(k, o)| {
                        (
                            k.clone(),
                            json!({"sensitive": o.sensitive, "value": o.value}),
                        )
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else if snap.outputs.is_empty() {
                eprintln!("warning: no outputs recorded in session `{}`", ctx.session);
            } else {
                for (k, o) in &snap.outputs {
                    if o.sensitive {
                        println!("{k} = (sensitive value)");
                    } else {
                        println!(
                            "{k} = {}",
                            crate::plan::render_text::indent_value(&o.value, 0)
                        );
                    }
                }
            }
            Ok(0)
        }
    }
}
