//! What the engine's commands share: loading the testbed, opening state,
//! building the library [`Context`], printing errors, asking for
//! confirmation, reading durations. Everything here may print (to stderr).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::apply::ApplyHook;
use crate::cli::args::VarArgs;
use crate::cli::Ctx;
use crate::config::model::{StateBackendConfig, Testbed};
use crate::config::{LoadOptions, Prior};
use crate::diagnostics::{self, SourceMap};
use crate::ops::{self, Context, OpsError};
use crate::platform::registry::Registry;
use crate::state::StateStore;

/// The environment variable naming the state backend (wins over the `state` block).
pub const ENV_STATE_URL: &str = "TG_STATE_URL";

/// A command failed; the message was already printed. Carries the exit code.
#[derive(Debug, Clone, Copy)]
pub struct Failed(pub i32);

pub type CmdResult<T> = Result<T, Failed>;

/// Print `error: MESSAGE` on stderr and fail with exit code 1.
pub fn fail(message: impl std::fmt::Display) -> Failed {
    eprintln!("error: {message}");
    Failed(1)
}

/// Print an engine error once (diagnostics rendered with their sources).
pub fn report_ops_error(e: &OpsError, sources: &SourceMap) -> Failed {
    match e {
        OpsError::Diagnostics(d) => {
            eprint!("{}", diagnostics::render_all(d, sources));
            Failed(1)
        }
        other => fail(other),
    }
}

/// A tokio runtime for one command.
pub fn runtime() -> CmdResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the async runtime: {e}")))
}

/// The testbed directory as an absolute path.
pub fn abs_dir(ctx: &Ctx) -> PathBuf {
    std::fs::canonicalize(&ctx.dir).unwrap_or_else(|_| ctx.dir.clone())
}

/// Load the testbed; errors are printed, warnings too.
pub fn load_testbed(ctx: &Ctx, vars: &VarArgs, prior: Prior) -> CmdResult<Testbed> {
    load_testbed_with(ctx, vars, prior, true)
}

/// Load the testbed; errors are printed (as JSON with `-json`), warnings
/// only when asked (a second load of the same files would repeat them).
fn load_testbed_with(
    ctx: &Ctx,
    vars: &VarArgs,
    prior: Prior,
    show_warnings: bool,
) -> CmdResult<Testbed> {
    let opts = LoadOptions {
        dir: abs_dir(ctx),
        vars: vars.vars.clone(),
        var_files: vars.var_files.clone(),
        prior,
        env: ctx.env.clone(),
        drivers: Registry::driver_kinds(),
        limits: Default::default(),
    };
    match crate::config::load(&opts) {
        Ok((tb, warnings)) => {
            if show_warnings && !warnings.is_empty() {
                eprint!("{}", diagnostics::render_all(&warnings, &tb.sources));
            }
            Ok(tb)
        }
        Err(e) => {
            if ctx.json {
                crate::cli::commands::validate::print_json(&e.diagnostics, &e.sources);
            } else {
                eprint!("{}", diagnostics::render_all(&e.diagnostics, &e.sources));
            }
            Err(Failed(1))
        }
    }
}

/// The state backend configured by the testbed, when it loads; the default
/// otherwise (commands that only read state do not need valid variables).
pub fn backend_config_quietly(ctx: &Ctx) -> StateBackendConfig {
    let opts = LoadOptions {
        dir: abs_dir(ctx),
        env: ctx.env.clone(),
        drivers: Registry::driver_kinds(),
        ..LoadOptions::default()
    };
    crate::config::load(&opts)
        .map(|(tb, _)| tb.state)
        .unwrap_or_default()
}

/// Open the state store for `config` (or `TG_STATE_URL`).
pub fn open_store(ctx: &Ctx, config: &StateBackendConfig) -> CmdResult<Arc<dyn StateStore>> {
    let env = std::env::var(ENV_STATE_URL).ok();
    ops::open_store(&abs_dir(ctx), config, env.as_deref()).map_err(fail)
}

/// The engine context for this command.
pub fn context(ctx: &Ctx, store: Arc<dyn StateStore>, hook: Arc<dyn ApplyHook>) -> Context {
    Context {
        store,
        registry: Registry::for_this_host(),
        session: ctx.session.clone(),
        testbed_dir: abs_dir(ctx),
        hook,
    }
}

/// Load the testbed the way plan needs it: the state block first, then the
/// state, then again with the recorded addresses so IPAM keeps them.
pub fn load_with_state(ctx: &Ctx, vars: &VarArgs) -> CmdResult<(Testbed, Arc<dyn StateStore>)> {
    let first = load_testbed(ctx, vars, Prior::default())?;
    let store = open_store(ctx, &first.state)?;
    store.ensure_session(&ctx.session).map_err(fail)?;
    let snap = store.load(&ctx.session).map_err(fail)?;
    if snap.instances.is_empty() {
        return Ok((first, store));
    }
    let tb = load_testbed_with(ctx, vars, ops::prior(&snap), false)?;
    Ok((tb, store))
}

/// Parse `30s`, `5m`, `1h`, `250ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        format!("invalid duration `{s}`: expected a number and a unit, such as `30s` or `5m`")
    })?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "invalid duration `{s}`: unknown unit `{other}` (use ms, s, m or h)"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration `{s}`"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Take the session lock, printing who holds it on refusal.
pub fn lock(
    c: &Context,
    operation: &str,
    timeout: &str,
) -> CmdResult<Box<dyn crate::state::SessionLock>> {
    let t = parse_duration(timeout).map_err(|e| fail(format!("`-lock-timeout`: {e}")))?;
    c.lock(operation, t).map_err(|e| match e {
        OpsError::State(b) if matches!(*b, crate::state::StateError::Locked { .. }) => {
            let crate::state::StateError::Locked { session, holder } = *b else {
                unreachable!("matched above")
            };
            eprintln!("error: session `{session}` is locked, so tg cannot {operation} it now");
            eprintln!();
            eprintln!("  lock id:   {}", holder.id);
            eprintln!("  operation: {}", holder.operation);
            eprintln!("  who:       {}@{}", holder.user, holder.host);
            eprintln!("  pid:       {}", holder.pid);
            eprintln!("  since:     {}", holder.created_at);
            eprintln!();
            eprintln!("  help: wait for it to finish (or use `-lock-timeout 5m`); if that process is gone, run `tg force-unlock {}`", holder.id);
            Failed(1)
        }
        other => fail(other),
    })
}

/// Ask `question`; only `yes` approves. Refuses when stdin is not a terminal.
pub fn confirm(question: &str, detail: &str, what: &str) -> CmdResult<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(fail(format!(
            "{what} needs confirmation but stdin is not a terminal: run it with `-auto-approve`"
        )));
    }
    let mut out = std::io::stdout();
    let _ = write!(
        out,
        "{question}\n  {detail}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
    );
    let _ = out.flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| fail(format!("cannot read the answer: {e}")))?;
    Ok(line.trim() == "yes")
}

/// Ask for approval (unless `auto_approve`): on anything but `yes`, say
/// `cancelled` and end the command with exit code 1.
pub fn approve(
    auto_approve: bool,
    question: &str,
    detail: &str,
    what: &str,
    cancelled: &str,
) -> CmdResult<()> {
    if auto_approve {
        return Ok(());
    }
    if !confirm(question, detail, what)? {
        println!("\n{cancelled}");
        return Err(Failed(1));
    }
    println!();
    Ok(())
}

/// Spawn the Ctrl-C handler: first SIGINT stops new work, second abandons
/// work in flight.
pub fn watch_interrupts(rt: &tokio::runtime::Runtime, interrupt: crate::apply::Interrupt) {
    rt.spawn(async move {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            match interrupt.raise() {
                1 => eprintln!(
                    "\ninterrupt received: starting nothing new, waiting for the work in flight to finish (press Ctrl-C again to stop now)"
                ),
                _ => eprintln!("\nsecond interrupt: stopping now and saving what is known"),
            }
        }
    });
}

/// Relative display of a path under the testbed directory.
pub fn display_path(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir).unwrap_or(p).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        for (s, d) in [
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("250ms", Duration::from_millis(250)),
            ("0", Duration::ZERO),
            ("1.5s", Duration::from_millis(1500)),
        ] {
            assert_eq!(parse_duration(s).unwrap(), d, "{s}");
        }
        for s in ["", "s", "5x", "-1s", "1e400s"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }
}
