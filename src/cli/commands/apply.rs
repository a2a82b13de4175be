//! `tg apply [PLANFILE]`: make the testbed real.

use std::sync::Arc;

use serde_json::json;

use crate::apply::{ApplyReport, Interrupt, WalkOptions};
use crate::cli::args::{ApplyArgs, VarArgs};
use crate::cli::commands::plan::make_plan;
use crate::cli::engine;
use crate::cli::progress::Progress;
use crate::cli::prompt;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops::{self, Locked, Planned};
use crate::plan::planfile::PlanFile;
use crate::plan::render_text::{indent_value, render_plan, TextOptions};
use crate::plan::Plan;

pub fn run(ctx: &Ctx, args: &ApplyArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, args: &ApplyArgs) -> CmdResult<i32> {
    if args.json && !args.auto_approve && args.plan_file.is_none() {
        return Err(report::fail(
            "`-json` needs `-auto-approve` (or a saved plan): nobody can review a plan printed as JSON; review it with `tg plan` first",
        ));
    }
    let rt = engine::runtime()?;
    let progress = Arc::new(Progress::new(ctx.interactive && !args.json, args.json));
    if let Some(path) = &args.plan_file {
        let pf = PlanFile::load(path).map_err(report::fail)?;
        let vars = VarArgs {
            vars: pf.vars.clone(),
            var_files: pf.var_files.clone(),
        };
        let ws = engine::workspace(ctx, &vars, progress.clone());
        let timeout = engine::lock_timeout(&args.options.lock_timeout)?;
        let locked = rt
            .block_on(async {
                let context = ops::open(&ws, &ctx.session).await?;
                ops::lock(context, "apply", timeout).await
            })
            .map_err(|e| report::ops_error(e, None, ctx.json, "apply"))?;
        let (testbed, _) = rt
            .block_on(ops::evaluate(&ws, &locked))
            .map_err(|e| report::ops_error(e, None, ctx.json, "apply"))?;
        pf.check_current(
            ctx.session.as_str(),
            &locked.snapshot.lineage,
            locked.snapshot.serial,
            &testbed.hash,
        )
        .map_err(report::fail)?;
        return walk_and_report(
            &rt,
            locked,
            &pf.plan,
            &crate::cli::commands::apply::walk_opts(
                args.parallelism,
                args.json,
                args.trace.as_deref(),
                false,
            ),
            &progress,
        );
    }

    let planned = make_plan(ctx, &rt, &args.options, false, "apply", progress.clone())?;
    let Planned { plan, locked, .. } = planned;
    if !args.json {
        print!("{}", render_plan(&plan, TextOptions { color: ctx.color }));
    }
    if !plan.has_changes() && (locked.snapshot.outputs == plan.outputs || plan.targeted) {
        progress.finish();
        if let Err(e) = crate::ops::write_known_hosts(&locked.context, &locked.snapshot) {
            eprintln!("warning: {e}");
        }
        if args.json {
            print_json(
                ctx,
                &ApplyReport {
                    serial: locked.snapshot.serial,
                    recorded: Some(locked.snapshot.instances.len()),
                    ..ApplyReport::default()
                },
                false,
            );
        } else {
            print_outputs(&plan);
        }
        return Ok(0);
    }
    if plan.has_changes() {
        render_approve(args.auto_approve)?;
    }
    walk_and_report(
        &rt,
        locked,
        &plan,
        &crate::cli::commands::apply::walk_opts(
            args.parallelism,
            args.json,
            args.trace.as_deref(),
            false,
        ),
        &progress,
    )
}

fn render_approve(auto_approve: bool) -> CmdResult<()> {
    prompt::approve(
        auto_approve,
        "\nDo you want to perform these actions?",
        "tg will perform the actions described above.",
        "`tg apply`",
        "Apply cancelled.",
    )
}

/// Walk a plan with progress and Ctrl-C handling, release the lock, then
/// print the summary.
/// How a command walks and reports.
pub(crate) struct WalkReport<'a> {
    pub parallelism: usize,
    pub json: bool,
    pub trace: Option<&'a std::path::Path>,
    pub destroy: bool,
}

pub(crate) fn walk_opts(
    parallelism: usize,
    json: bool,
    trace: Option<&std::path::Path>,
    destroy: bool,
) -> WalkReport<'_> {
    WalkReport {
        parallelism,
        json,
        trace,
        destroy,
    }
}

pub(crate) fn walk_and_report(
    rt: &tokio::runtime::Runtime,
    locked: Locked,
    plan: &Plan,
    how: &WalkReport<'_>,
    progress: &Progress,
) -> CmdResult<i32> {
    let (parallelism, json, destroy) = (how.parallelism, how.json, how.destroy);
    let interrupt = Interrupt::new();
    engine::watch_interrupts(rt, interrupt.clone());
    progress.start();
    let walk = WalkOptions {
        parallelism,
        interrupt,
    };
    let result = rt.block_on(ops::apply(&locked, plan, &walk));
    progress.finish();
    let released = rt.block_on(locked.release());
    let report = result.map_err(|e| report::ops_error(e, None, json, "apply"))?;
    if let Err(e) = released {
        eprintln!("warning: {e}");
    }
    if let Some(path) = how.trace {
        let doc = report
            .timeline
            .chrome_trace(if destroy { "tg destroy" } else { "tg apply" });
        std::fs::write(path, serde_json::to_vec(&doc).unwrap_or_default()).map_err(|e| {
            report::fail(format!("cannot write the trace `{}`: {e}", path.display()))
        })?;
    }
    let ctx_session = plan.session.clone();
    if json {
        print_json_for(&ctx_session, &report, destroy);
    } else {
        print_summary(&report, destroy);
        print_timing(&report);
        if report.success() && !destroy {
            print_outputs(plan);
        }
    }
    Ok(if report.success() { 0 } else { 1 })
}

/// Where the time went, once some operation started.
fn timing(r: &ApplyReport) -> Option<crate::apply::timeline::TimelineSummary> {
    r.timeline
        .ops
        .iter()
        .any(|o| o.started.is_some())
        .then(|| r.timeline.summary())
}

/// The summary line's figures for `-json` (`null` when no operation started).
fn timing_json(r: &ApplyReport) -> serde_json::Value {
    let Some(s) = timing(r) else {
        return serde_json::Value::Null;
    };
    json!({
        "wall_s": s.wall.as_secs_f64(),
        "work_s": s.busy.as_secs_f64(),
        "parallelism": s.parallelism,
        "critical_path_s": s.critical_time.as_secs_f64(),
        "critical_path": s.critical_path.iter().map(|(a, op)| json!({"address": a.to_string(), "op": op})).collect::<Vec<_>>(),
    })
}

/// Where the time went: wall, work, parallelism, the critical path.
fn print_timing(r: &ApplyReport) {
    let Some(s) = timing(r) else {
        return;
    };
    let path: Vec<String> = s.critical_path.iter().map(|(a, _)| a.to_string()).collect();
    let shown = if path.len() > 6 {
        format!(
            "{} → … → {}",
            path[..3].join(" → "),
            path[path.len() - 2..].join(" → ")
        )
    } else {
        path.join(" → ")
    };
    println!(
        "Took {:.2}s: {:.2}s of work at parallelism {:.1}; critical path {:.2}s ({} step(s)): {shown}",
        s.wall.as_secs_f64(),
        s.busy.as_secs_f64(),
        s.parallelism,
        s.critical_time.as_secs_f64(),
        path.len()
    );
}

/// The outputs at the end of an apply, as Terraform prints them.
fn print_outputs(plan: &Plan) {
    if plan.outputs.is_empty() || plan.destroy {
        return;
    }
    println!("\nOutputs:\n");
    for (k, o) in &plan.outputs {
        if o.sensitive {
            println!("{k} = (sensitive value)");
        } else {
            println!("{k} = {}", indent_value(&o.value, 0));
        }
    }
}

fn print_json(ctx: &Ctx, r: &ApplyReport, destroy: bool) {
    print_json_for(ctx.session.as_str(), r, destroy)
}

fn print_json_for(session: &str, r: &ApplyReport, destroy: bool) {
    let doc = json!({
        "format_version": "1.0",
        "tg_version": ops::TG_VERSION,
        "session": session,
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
        "unrecorded": r.unrecorded.iter().map(|(a, op)| json!({"address": a.to_string(), "op": op})).collect::<Vec<_>>(),
        "recorded": r.recorded,
        "timing": timing_json(r),
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
        for (a, op) in &r.unrecorded {
            eprintln!(
                "  `{a}`: the {op} finished but could not be recorded{}",
                if *op == crate::apply::OpKind::Create {
                    " (state holds it as tainted: the next apply replaces it)"
                } else {
                    " (the next plan sees what is really there)"
                }
            );
        }
    }
    if let Some(n) = r.recorded {
        eprintln!("State now records {n} instance(s).");
    }
    eprintln!();
    eprintln!("What finished is recorded in state; run `tg plan` to see what is left, and `tg apply` to go on.");
}
