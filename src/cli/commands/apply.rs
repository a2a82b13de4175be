//! `tg apply [PLANFILE]`: make the testbed real.

use std::sync::Arc;

use serde_json::json;

use crate::apply::{ApplyReport, Interrupt, WalkOptions};
use crate::cli::args::{ApplyArgs, VarArgs};
use crate::cli::commands::plan::make_plan;
use crate::cli::progress::Progress;
use crate::cli::render::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops::{self, Context};
use crate::plan::planfile::PlanFile;
use crate::plan::render_text::{render_plan, TextOptions};
use crate::plan::Plan;

pub fn run(ctx: &Ctx, args: &ApplyArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, args: &ApplyArgs) -> CmdResult<i32> {
    if args.json && !args.auto_approve && args.plan_file.is_none() {
        return Err(render::fail(
            "`-json` needs `-auto-approve` (or a saved plan): nobody can review a plan printed as JSON; review it with `tg plan` first",
        ));
    }
    let rt = render::runtime()?;
    let progress = Arc::new(Progress::new(ctx.interactive && !args.json, args.json));
    if let Some(path) = &args.plan_file {
        let pf = PlanFile::load(path).map_err(render::fail)?;
        let vars = VarArgs {
            vars: pf.vars.clone(),
            var_files: pf.var_files.clone(),
        };
        let (testbed, store) = render::load_with_state(ctx, &vars)?;
        let context = render::context(ctx, store, progress.clone());
        let _lock = render::lock(&context, "apply", &args.options.lock_timeout)?;
        let snap = ops::snapshot(&context).map_err(render::fail)?;
        pf.check_current(&ctx.session, &snap.lineage, snap.serial, &testbed.hash)
            .map_err(render::fail)?;
        return walk_and_report(
            &rt,
            &context,
            &pf.plan,
            args.parallelism,
            args.json,
            &progress,
            false,
        );
    }

    let planned = make_plan(ctx, &rt, &args.options, false, "apply", progress.clone())?;
    let plan = &planned.plan;
    if !args.json {
        print!("{}", render_plan(plan, TextOptions { color: ctx.color }));
    }
    if !plan.has_changes() {
        let snap = ops::snapshot(&planned.context).map_err(render::fail)?;
        if snap.outputs == plan.outputs || plan.targeted {
            progress.finish();
            if args.json {
                print_json(
                    &planned.context,
                    &ApplyReport {
                        serial: snap.serial,
                        ..ApplyReport::default()
                    },
                    false,
                );
            }
            return Ok(0);
        }
    } else {
        render::approve(
            args.auto_approve,
            "\nDo you want to perform these actions?",
            "tg will perform the actions described above.",
            "`tg apply`",
            "Apply cancelled.",
        )?;
    }
    walk_and_report(
        &rt,
        &planned.context,
        plan,
        args.parallelism,
        args.json,
        &progress,
        false,
    )
}

/// Walk a plan with progress and Ctrl-C handling, then print the summary.
#[allow(clippy::too_many_arguments)]
pub(crate) fn walk_and_report(
    rt: &tokio::runtime::Runtime,
    context: &Context,
    plan: &Plan,
    parallelism: usize,
    json: bool,
    progress: &Progress,
    destroy: bool,
) -> CmdResult<i32> {
    let interrupt = Interrupt::new();
    render::watch_interrupts(rt, interrupt.clone());
    progress.start();
    let walk = WalkOptions {
        parallelism,
        interrupt,
    };
    let report = rt
        .block_on(ops::apply(context, plan, &walk))
        .map_err(render::fail)?;
    progress.finish();
    if json {
        print_json(context, &report, destroy);
    } else {
        print_summary(&report, destroy);
    }
    Ok(if report.success() { 0 } else { 1 })
}

fn print_json(context: &Context, r: &ApplyReport, destroy: bool) {
    let doc = json!({
        "format_version": "1.0",
        "tg_version": ops::TG_VERSION,
        "session": context.session,
        "operation": if destroy { "destroy" } else { "apply" },
        "success": r.success(),
        "interrupted": r.interrupted,
        "added": r.added,
        "changed": r.changed,
        "destroyed": r.destroyed,
        "serial": r.serial,
        "done": r.done.iter().map(|(a, op)| json!({"address": a.to_string(), "op": op})).collect::<Vec<_>>(),
        "failed": r.failed,
        "skipped": r.skipped,
        "state_error": r.state_error,
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

fn print_summary(r: &ApplyReport, destroy: bool) {
    println!();
    if r.success() {
        if destroy {
            println!("Destroy complete! {} destroyed.", r.destroyed);
        } else {
            println!(
                "Apply complete! {} added, {} changed, {} destroyed.",
                r.added, r.changed, r.destroyed
            );
        }
        return;
    }
    let what = if destroy { "Destroy" } else { "Apply" };
    if r.interrupted {
        eprintln!("error: interrupted: {what} stopped before it finished");
    }
    eprintln!(
        "{what} failed: {} done ({} added, {} changed, {} destroyed), {} failed, {} skipped.",
        r.done.len(),
        r.added,
        r.changed,
        r.destroyed,
        r.failed.len(),
        r.skipped.len()
    );
    for f in &r.failed {
        eprintln!();
        eprintln!("error: `{}`: {} failed: {}", f.address, f.op, f.message);
        if let Some(d) = &f.detail {
            for l in d.lines() {
                eprintln!("  {l}");
            }
        }
    }
    if !r.skipped.is_empty() {
        eprintln!();
        for s in &r.skipped {
            match &s.because {
                Some(b) => eprintln!("skipped: `{}` ({}) because `{b}` failed", s.address, s.op),
                None => eprintln!("not started: `{}` ({})", s.address, s.op),
            }
        }
    }
    if let Some(e) = &r.state_error {
        eprintln!();
        eprintln!("error: writing state failed, so tg stopped: {e}");
    }
    eprintln!();
    eprintln!("What finished is recorded in state; run `tg plan` to see what is left, and `tg apply` to go on.");
}
