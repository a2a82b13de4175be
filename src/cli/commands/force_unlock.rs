//! `tg force-unlock ID`: remove a session's lock left by a dead process.

use crate::cli::args::ForceUnlockArgs;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;

pub fn run(ctx: &Ctx, args: &ForceUnlockArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, args: &ForceUnlockArgs) -> CmdResult<i32> {
    let store = engine::store(ctx)?;
    let holder = store
        .lock_holder(ctx.session.as_str())
        .map_err(report::fail)?;
    match &holder {
        Some(h) if h.id == args.id => {
            println!(
                "Lock {} on session `{}`: {} by {}@{} (pid {}) since {}",
                h.id, h.session, h.operation, h.user, h.host, h.pid, h.created_at
            );
        }
        Some(h) => {
            return Err(report::fail(format!(
                "session `{}` is locked with id `{}`, not `{}`: check the id",
                ctx.session, h.id, args.id
            )))
        }
        None => {
            return Err(report::fail(format!(
                "session `{}` is not locked: there is nothing to unlock",
                ctx.session
            )))
        }
    }
    if !args.force {
        let ok = crate::cli::prompt::confirm(
            "\nDo you really want to force-unlock?",
            "Removing the lock of a running process can corrupt the session's state.",
            "`tg force-unlock`",
        )?;
        if !ok {
            println!("\nForce-unlock cancelled.");
            return Ok(1);
        }
    }
    store
        .force_unlock(ctx.session.as_str(), &args.id)
        .map_err(report::fail)?;
    println!("Session `{}` has been unlocked.", ctx.session);
    Ok(0)
}
