//! `tg destroy`: remove everything the session made.

use std::sync::Arc;

use crate::cli::args::DestroyArgs;
use crate::cli::commands::apply::walk_and_report;
use crate::cli::commands::plan::plan_options;
use crate::cli::engine;
use crate::cli::progress::Progress;
use crate::cli::prompt;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops::{self, Planned};
use crate::plan::render_text::{render_plan, TextOptions};

/// The destroy plan: from the testbed, or, when the testbed does not load
/// (a broken edit, deleted files), from what state records, so a session
/// can always be cleaned up.
fn plan_destroy(
    ctx: &Ctx,
    rt: &tokio::runtime::Runtime,
    args: &DestroyArgs,
    hook: Arc<dyn crate::apply::ApplyHook>,
) -> CmdResult<Planned> {
    let has_files =
        crate::config::source::testbed_files(&engine::abs_dir(ctx)).is_ok_and(|f| !f.is_empty());
    if has_files {
        match make_plan_quiet(ctx, rt, args, hook.clone()) {
            Ok(p) => return Ok(p),
            Err(ops::OpsError::Load(l)) => eprintln!(
                "warning: the testbed does not load ({} error(s), see `tg validate`), so tg destroys what state records for session `{}`",
                l.diagnostics.error_count(),
                ctx.session
            ),
            Err(e) => return Err(report::ops_error(e, None, ctx.json, "destroy")),
        }
    }
    let context = engine::open_for_reading(ctx, rt, hook)?;
    destroy_from_state(ctx, rt, context, &args.options)
}

/// Plan a destroy of `context`'s session from state alone.
pub(crate) fn destroy_from_state(
    ctx: &Ctx,
    rt: &tokio::runtime::Runtime,
    context: ops::Context,
    options: &crate::cli::args::PlanOptions,
) -> CmdResult<Planned> {
    let opts = plan_options(options, true)?;
    let timeout = engine::lock_timeout(&options.lock_timeout)?;
    rt.block_on(ops::plan_destroy_from_state(context, &opts, timeout))
        .map_err(|e| report::ops_error(e, None, ctx.json, "destroy"))
}

fn make_plan_quiet(
    ctx: &Ctx,
    rt: &tokio::runtime::Runtime,
    args: &DestroyArgs,
    hook: Arc<dyn crate::apply::ApplyHook>,
) -> Result<Planned, ops::OpsError> {
    let ws = engine::workspace(ctx, &args.options.vars, hook);
    let opts = plan_options(&args.options, true)
        .map_err(|_| ops::OpsError::Usage("invalid flags".into()))?;
    let timeout =
        engine::parse_duration(&args.options.lock_timeout).map_err(ops::OpsError::Usage)?;
    let planned = rt.block_on(ops::plan_session(
        &ws,
        &ctx.session,
        &opts,
        "destroy",
        timeout,
    ))?;
    if !planned.warnings.is_empty() {
        eprint!(
            "{}",
            crate::diagnostics::render_all(&planned.warnings, &planned.testbed.sources)
        );
    }
    Ok(planned)
}

pub fn run(ctx: &Ctx, args: &DestroyArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, args: &DestroyArgs) -> CmdResult<i32> {
    if args.json && !args.auto_approve {
        return Err(report::fail(
            "`-json` needs `-auto-approve`: nobody can review a plan printed as JSON; review it with `tg plan -destroy` first",
        ));
    }
    let rt = engine::runtime()?;
    let progress = Arc::new(Progress::new(ctx.interactive && !args.json, args.json));
    let Planned { plan, locked, .. } = plan_destroy(ctx, &rt, args, progress.clone())?;
    if !args.json {
        print!("{}", render_plan(&plan, TextOptions { color: ctx.color }));
    }
    if plan.has_changes() {
        prompt::approve(
            args.auto_approve,
            &format!(
                "\nDo you really want to destroy all resources in session `{}`?",
                ctx.session
            ),
            "tg will destroy everything shown above. There is no undo.",
            "`tg destroy`",
            "Destroy cancelled.",
        )?;
    }
    walk_and_report(
        &rt,
        locked,
        &plan,
        &crate::cli::commands::apply::walk_opts(
            args.parallelism,
            args.json,
            args.trace.as_deref(),
            true,
        ),
        &progress,
    )
}
