//! `tg platforms [-json]`: the platforms this machine offers (with the
//! testbed's `platform` blocks, when it has a testbed), what each can host,
//! and why not.

use serde_json::json;

use crate::cli::args::PlatformsArgs;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::config::Settings;

pub fn run(ctx: &Ctx, args: &PlatformsArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, args: &PlatformsArgs) -> CmdResult<i32> {
    let (ws, loaded) = engine::settings(ctx);
    let has_files = crate::config::source::testbed_files(&ws.dir).is_ok_and(|f| !f.is_empty());
    let settings = if has_files {
        loaded.unwrap_or_else(|e| {
            eprintln!(
                "warning: the testbed does not load ({} error(s), see `tg validate`): its `platform` blocks are left out",
                e.diagnostics.error_count()
            );
            Settings::default()
        })
    } else {
        Settings::default()
    };
    let registry = ws
        .factory
        .registry(&settings.platforms, &ws.env)
        .map_err(|errs| {
            report::fail(
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
    let rows: Vec<(String, String, String, Option<String>)> = registry
        .all()
        .map(|p| {
            (
                p.name().to_string(),
                p.kind().to_string(),
                p.describe(),
                p.host_problem(),
            )
        })
        .collect();
    if args.json {
        let doc = json!({
            "format_version": "1.0",
            "platforms": rows.iter().map(|(name, kind, about, problem)| json!({
                "name": name,
                "kind": kind,
                "description": about,
                "ready": problem.is_none(),
                "problem": problem,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(0);
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(8);
    for (name, kind, about, problem) in &rows {
        let kind = if kind == name {
            String::new()
        } else {
            format!(" ({kind})")
        };
        match problem {
            None => println!("{name:width$}  ready{kind}: {about}"),
            Some(p) => println!("{name:width$}  not ready{kind}: {p}"),
        }
    }
    Ok(0)
}
