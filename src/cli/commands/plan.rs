//! `tg plan`: show what apply would do; optionally save it.

use std::sync::Arc;

use crate::apply::ApplyHook;
use crate::cli::args::{PlanArgs, PlanFormat, PlanOptions};
use crate::cli::progress::Progress;
use crate::cli::render::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops::{self, Context};
use crate::plan::planfile::PlanFile;
use crate::plan::render_json::plan_json;
use crate::plan::render_markdown::render_markdown;
use crate::plan::render_text::{render_plan, TextOptions};
use crate::plan::Plan;
use crate::state::SessionLock;

pub fn run(ctx: &Ctx, args: &PlanArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

/// A plan made by a command, with what it was made from; the lock is held
/// until this is dropped.
pub(crate) struct Planned {
    pub plan: Plan,
    pub context: Context,
    pub lock: Box<dyn SessionLock>,
}

/// Load, lock, refresh and diff. Errors are printed.
pub(crate) fn make_plan(
    ctx: &Ctx,
    rt: &tokio::runtime::Runtime,
    options: &PlanOptions,
    destroy: bool,
    operation: &str,
    hook: Arc<dyn ApplyHook>,
) -> CmdResult<Planned> {
    let (testbed, store) = render::load_with_state(ctx, &options.vars)?;
    let context = render::context(ctx, store, hook);
    let lock = render::lock(&context, operation, &options.lock_timeout)?;
    let targets = ops::parse_addresses("-target", &options.targets).map_err(render::fail)?;
    let replace = ops::parse_addresses("-replace", &options.replace).map_err(render::fail)?;
    let opts = ops::PlanOptions {
        destroy: destroy || options.destroy,
        targets,
        replace,
        refresh: options.refresh,
        parallelism: 10,
    };
    let plan = rt
        .block_on(ops::plan(&context, &testbed, &opts))
        .map_err(|e| render::report_ops_error(&e, &testbed.sources))?;
    Ok(Planned {
        plan,
        context,
        lock,
    })
}

fn run_inner(ctx: &Ctx, args: &PlanArgs) -> CmdResult<i32> {
    let rt = render::runtime()?;
    let progress = Arc::new(Progress::new(false, true).quiet_refresh());
    let planned = make_plan(ctx, &rt, &args.options, false, "plan", progress)?;
    drop(planned.lock);
    let plan = planned.plan;

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
        .map_err(render::fail)?;
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
