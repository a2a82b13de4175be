//! `tg plan`: show what apply would do; optionally save it.

use std::sync::Arc;

use crate::apply::ApplyHook;
use crate::cli::args::{PlanArgs, PlanFormat, PlanOptions};
use crate::cli::engine;
use crate::cli::progress::Progress;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::diagnostics;
use crate::ops::{self, Planned};
use crate::plan::planfile::PlanFile;
use crate::plan::render_json::plan_json;
use crate::plan::render_markdown::render_markdown;
use crate::plan::render_text::{render_plan, TextOptions};

pub fn run(ctx: &Ctx, args: &PlanArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

/// Lock, evaluate, refresh, place and diff; warnings and errors are
/// printed. The session stays locked until the result is dropped.
pub(crate) fn make_plan(
    ctx: &Ctx,
    rt: &tokio::runtime::Runtime,
    options: &PlanOptions,
    destroy: bool,
    operation: &str,
    hook: Arc<dyn ApplyHook>,
) -> CmdResult<Planned> {
    let ws = engine::workspace(ctx, &options.vars, hook);
    let timeout = engine::lock_timeout(&options.lock_timeout)?;
    let opts = plan_options(options, destroy)?;
    let planned = rt
        .block_on(ops::plan_session(
            &ws,
            &ctx.session,
            &opts,
            operation,
            timeout,
        ))
        .map_err(|e| report::ops_error(e, None, ctx.json, operation))?;
    if !planned.warnings.is_empty() {
        eprint!(
            "{}",
            diagnostics::render_all(&planned.warnings, &planned.testbed.sources)
        );
    }
    Ok(planned)
}

/// The library's plan options from the flags (errors printed).
pub(crate) fn plan_options(options: &PlanOptions, destroy: bool) -> CmdResult<ops::PlanOptions> {
    let targets = ops::parse_addresses("-target", &options.targets).map_err(report::fail)?;
    let replace = ops::parse_addresses("-replace", &options.replace).map_err(report::fail)?;
    let excludes = ops::parse_addresses("-exclude", &options.excludes).map_err(report::fail)?;
    if options.refresh_only && (destroy || options.destroy) {
        return Err(report::fail(
            "`-refresh-only` and `-destroy` do not go together: pick one",
        ));
    }
    if options.refresh_only && !options.refresh {
        return Err(report::fail(
            "`-refresh-only` needs the refresh: drop `-refresh=false`",
        ));
    }
    Ok(ops::PlanOptions {
        destroy: destroy || options.destroy,
        targets,
        replace,
        excludes,
        refresh_only: options.refresh_only,
        refresh: options.refresh,
        parallelism: 10,
    })
}

fn run_inner(ctx: &Ctx, args: &PlanArgs) -> CmdResult<i32> {
    let rt = engine::runtime()?;
    let progress = Arc::new(Progress::new(false, true).quiet_refresh());
    let planned = make_plan(ctx, &rt, &args.options, false, "plan", progress)?;
    let Planned { plan, locked, .. } = planned;
    rt.block_on(locked.release())
        .map_err(|e| report::ops_error(e, None, false, "plan"))?;

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan_json(&plan)).unwrap_or_default()
        );
    } else {
        match args.format {
            PlanFormat::Text => print!("{}", render_plan(&plan, TextOptions { color: ctx.color })),
            PlanFormat::Markdown => print!("{}", render_markdown(&plan)),
        }
    }
    if let Some(out) = &args.out {
        PlanFile::new(
            plan.clone(),
            args.options.vars.vars.clone(),
            args.options.vars.var_files.clone(),
        )
        .save(out)
        .map_err(report::fail)?;
        if !args.json {
            println!();
            println!("Saved the plan to: {}", out.display());
            println!();
            println!("To perform exactly these actions, run:");
            println!("  tg apply {}", out.display());
        }
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    })
}
