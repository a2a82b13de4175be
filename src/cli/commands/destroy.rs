//! `tg destroy`: remove everything the session made.

use std::sync::Arc;

use crate::cli::args::DestroyArgs;
use crate::cli::commands::apply::walk_and_report;
use crate::cli::commands::plan::make_plan;
use crate::cli::engine;
use crate::cli::progress::Progress;
use crate::cli::prompt;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops::Planned;
use crate::plan::render_text::{render_plan, TextOptions};

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
    let Planned { plan, locked, .. } =
        make_plan(ctx, &rt, &args.options, true, "destroy", progress.clone())?;
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
        args.parallelism,
        args.json,
        &progress,
        true,
    )
}
