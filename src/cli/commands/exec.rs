//! `tg exec TARGET -- CMD...`: run a command on every matching node at once.

use std::sync::Arc;

use serde_json::json;

use crate::apply::NoHook;
use crate::cli::args::ExecArgs;
use crate::cli::render::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops;

pub fn run(ctx: &Ctx, args: &ExecArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, args: &ExecArgs) -> CmdResult<i32> {
    let rt = render::runtime()?;
    let store = render::open_store(ctx, &render::backend_config_quietly(ctx))?;
    let context = render::context(ctx, store, Arc::new(NoHook));
    let results = rt
        .block_on(ops::exec(&context, &args.target, &args.command))
        .map_err(render::fail)?;
    let failed = results.iter().filter(|r| r.exit_code != Some(0)).count();
    if args.json {
        let doc = json!({
            "format_version": "1.0",
            "session": ctx.session,
            "command": args.command,
            "results": results,
            "failed": failed,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        let prefix = results.len() > 1;
        for r in &results {
            let p = if prefix {
                format!("[{}] ", r.hostname)
            } else {
                String::new()
            };
            for l in r.stdout.lines() {
                println!("{p}{l}");
            }
            for l in r.stderr.lines() {
                eprintln!("{p}{l}");
            }
            match (&r.error, r.exit_code) {
                (Some(e), _) => eprintln!("{p}error: `{}`: {e}", r.address),
                (None, Some(c)) if c != 0 && prefix => {
                    eprintln!("{p}exited with status {c}")
                }
                _ => {}
            }
        }
    }
    Ok(match (results.len(), results.first()) {
        (1, Some(r)) => match r.exit_code {
            Some(c) => c.clamp(0, 255),
            None => 1,
        },
        _ => i32::from(failed > 0),
    })
}
