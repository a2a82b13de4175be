//! `tg impair TARGET -set KEY=VALUE,... | -clear`: change the impairments
//! of a running session's links without editing the testbed (a test that
//! degrades the network mid-run). State records the change, so the next
//! plan shows the way back to what the file says.

use std::sync::Arc;

use crate::apply::NoHook;
use crate::cli::args::ImpairArgs;
use crate::cli::engine;
use crate::cli::report::{self, ops_error, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops::{self, ImpairChange};

pub fn run(ctx: &Ctx, args: &ImpairArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, args: &ImpairArgs) -> CmdResult<i32> {
    let change = match (&args.set, args.clear) {
        (Some(set), false) => ImpairChange::Set(
            ops::parse_impair_set(set).map_err(|why| report::fail(format!("`-set`: {why}")))?,
        ),
        (None, true) => ImpairChange::Clear,
        _ => return Err(report::fail("give `-set KEY=VALUE,...` or `-clear`")),
    };
    let timeout = engine::lock_timeout(&args.lock_timeout)?;
    let rt = engine::runtime()?;
    let context = engine::open_for_reading(ctx, &rt, Arc::new(NoHook))?;
    let locked = rt
        .block_on(ops::lock(context, "impair", timeout))
        .map_err(|e| ops_error(e, None, false, "impair"))?;
    let done = rt.block_on(ops::impair(
        &locked,
        &args.target,
        args.network.as_deref(),
        &change,
    ));
    rt.block_on(locked.release()).map_err(report::fail)?;
    let done = done.map_err(|e| ops_error(e, None, false, "impair"))?;
    for link in &done {
        let what = match link.impair.summary() {
            s if s.is_empty() => "no impairment".to_string(),
            s => s,
        };
        println!("{} on network `{}`: {what}", link.node, link.network);
    }
    println!(
        "Changed {} link(s). The next `tg plan` shows the way back to the testbed file.",
        done.len()
    );
    Ok(0)
}
