//! `tg console`: evaluate expressions against the testbed and its state,
//! one per line, printing each value as HCL (as `tg output` prints them).
//!
//! On a terminal it prompts (`> `) and reads until `exit` or end of input;
//! from a pipe it reads every line, and exits 1 at the end when one of
//! them failed. An error is printed and the loop goes on.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use crate::apply::NoHook;
use crate::cli::args::ConsoleArgs;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops::{self, OpsError};
use crate::plan::redact::SENSITIVE;
use crate::plan::render_text::indent_value;
use crate::state::Snapshot;

pub fn run(ctx: &Ctx, args: &ConsoleArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, args: &ConsoleArgs) -> CmdResult<i32> {
    let rt = engine::runtime()?;
    let ws = engine::workspace(ctx, &args.vars, Arc::new(NoHook));
    let fail = |e: OpsError| report::ops_error(e, None, false, "console");
    let context = rt.block_on(ops::open(&ws, &ctx.session)).map_err(fail)?;
    // What state recorded, when the session exists: a console before the
    // first apply sees what apply would make.
    let snapshot = match context.store.get_session(ctx.session.as_str()) {
        Ok(Some(_)) => ops::snapshot(&context).map_err(fail)?,
        Ok(None) => Snapshot::default(),
        Err(e) => return Err(fail(e.into())),
    };
    let (parsed, prior) = rt
        .block_on(ops::parsed_and_prior(
            &ws,
            context.parsed.clone(),
            &snapshot,
        ))
        .map_err(fail)?;
    let (mut console, warnings) = parsed
        .console(&prior)
        .map_err(|e| fail(OpsError::Load(Box::new(e))))?;
    if !warnings.is_empty() {
        eprint!(
            "{}",
            crate::diagnostics::render_all(&warnings, parsed.sources())
        );
    }

    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let mut failed = false;
    let mut lines = stdin.lock().lines();
    loop {
        if tty {
            print!("> ");
            let _ = std::io::stdout().flush();
        }
        let line = match lines.next() {
            None => break,
            Some(Ok(l)) => l,
            Some(Err(e)) => return Err(report::fail(format!("cannot read stdin: {e}"))),
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if tty && (line == "exit" || line == "quit") {
            break;
        }
        match console.eval(line) {
            Ok(v) if v.sensitive => println!("{SENSITIVE}"),
            Ok(v) => println!("{}", indent_value(&v.value, 0)),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if tty {
        println!();
    }
    Ok(if failed && !tty { 1 } else { 0 })
}
