//! Driving the library from the command line: the [`Workspace`] a command
//! works in (built from its flags and this process), the platform drivers
//! the binary offers, the async runtime, durations and Ctrl-C.
//!
//! This is the only place that turns process-wide inputs (environment,
//! working directory, user) into the values the library takes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::apply::ApplyHook;
use crate::cli::args::VarArgs;
use crate::cli::report::{fail, ops_error, CmdResult};
use crate::cli::Ctx;
use crate::config::Settings;
use crate::environment::Caller;
use crate::ops::{self, Context, OpsError, Workspace};
use crate::platform::factory::Factory;
use crate::platform::netns::driver::NetnsDriver;
use crate::platform::netns::NetnsOptions;
use crate::platform::testdouble::{self, TestDoubleDriver};

/// Where the netns platform keeps its runtime data, when not `/run/tg`.
pub const ENV_NETNS_RUN_DIR: &str = "TG_NETNS_RUN_DIR";
/// The name netns records give this machine (default: its host name).
pub const ENV_HOSTNAME: &str = "TG_HOSTNAME";

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

/// The netns platform's options for this process.
pub fn netns_options(ctx: &Ctx) -> NetnsOptions {
    let mut o = NetnsOptions::default();
    if let Some(d) = ctx.env.non_empty(ENV_NETNS_RUN_DIR) {
        o.run_dir = PathBuf::from(d);
    }
    if let Some(h) = ctx.env.non_empty(ENV_HOSTNAME) {
        o.host = h.to_string();
    }
    o
}

/// The platform drivers the `tg` binary offers: the built-in ones, and
/// the test double when `TG_TESTDOUBLE_DIR` names a directory (tg's own
/// tests and benchmarks; never documented for users).
pub fn factory(ctx: &Ctx) -> Factory {
    factory_hiding(ctx, &[])
}

/// [`factory`], with netns nodes that cannot see `secrets` either (`tg
/// serve` hides its data folder: other tenants' keys and state).
pub fn factory_hiding(ctx: &Ctx, secrets: &[PathBuf]) -> Factory {
    let mut netns = netns_options(ctx);
    netns.secrets.extend(secrets.iter().cloned());
    let mut f = Factory::new()
        .with(Arc::new(NetnsDriver::new(netns)))
        .with(Arc::new(crate::platform::ssh::SshDriver));
    if let Some(d) = ctx.env.non_empty(testdouble::ENV_DIR) {
        f = f.with(Arc::new(TestDoubleDriver::new(d)));
    }
    f
}

/// The library workspace of this command.
pub fn workspace(ctx: &Ctx, vars: &VarArgs, hook: Arc<dyn ApplyHook>) -> Workspace {
    Workspace {
        dir: abs_dir(ctx),
        vars: vars.vars.clone(),
        var_files: vars.var_files.clone(),
        env: ctx.env.clone(),
        caller: Caller::this_process(&ctx.env),
        factory: factory(ctx),
        hook,
        leases_dir: None,
    }
}

/// The session's context for read-only work. When the testbed's files
/// exist but do not load, say so and read the default store (state must
/// stay readable while the files are being fixed). A SQLite file that does
/// not exist is read as empty, not created.
pub fn open_for_reading(
    ctx: &Ctx,
    rt: &tokio::runtime::Runtime,
    hook: Arc<dyn ApplyHook>,
) -> CmdResult<Context> {
    open_context(ctx, rt, hook, ops::StoreAccess::Read)
}

fn open_context(
    ctx: &Ctx,
    rt: &tokio::runtime::Runtime,
    hook: Arc<dyn ApplyHook>,
    access: ops::StoreAccess,
) -> CmdResult<Context> {
    let ws = workspace(ctx, &VarArgs::default(), hook);
    match rt.block_on(ops::open_for(&ws, &ctx.session, access)) {
        Ok(c) => Ok(c),
        Err(OpsError::Load(l)) => {
            let has_files = crate::config::source::testbed_files(&ws.dir)
                .map(|f| !f.is_empty())
                .unwrap_or(false);
            if has_files && ctx.env.non_empty(ops::ENV_STATE_URL).is_none() {
                eprintln!(
                    "warning: the testbed does not load ({} error(s), see `tg validate`), so tg reads the default state store",
                    l.diagnostics.error_count()
                );
            }
            ops::open_with(&ws, &ctx.session, &Settings::default(), access)
                .map_err(|e| ops_error(e, None, false, "read"))
        }
        Err(e) => Err(ops_error(e, None, false, "read")),
    }
}

/// The session's state store for read-only work (see [`open_for_reading`]).
pub fn store(ctx: &Ctx) -> CmdResult<Arc<dyn crate::state::StateStore>> {
    store_for(ctx, ops::StoreAccess::Read)
}

/// The session's state store for a command that makes something in it
/// (`tg init`, `tg session new`): a SQLite file is created when missing.
pub fn store_to_write(ctx: &Ctx) -> CmdResult<Arc<dyn crate::state::StateStore>> {
    store_for(ctx, ops::StoreAccess::Write)
}

/// The session's state store for `access`.
pub fn store_for(
    ctx: &Ctx,
    access: ops::StoreAccess,
) -> CmdResult<Arc<dyn crate::state::StateStore>> {
    let rt = runtime()?;
    Ok(open_context(ctx, &rt, Arc::new(crate::apply::NoHook), access)?.store)
}

/// The testbed's settings (no variables given), and the workspace they
/// were read in.
pub fn settings(ctx: &Ctx) -> (Workspace, Result<Settings, crate::config::LoadError>) {
    let ws = workspace(ctx, &VarArgs::default(), Arc::new(crate::apply::NoHook));
    let settings = crate::config::load_settings(&ws.load_options(Default::default()));
    (ws, settings)
}

/// Take the lock of `context`'s session for `operation` (no waiting).
pub fn lock_now(
    rt: &tokio::runtime::Runtime,
    context: Context,
    operation: &str,
) -> CmdResult<ops::Locked> {
    rt.block_on(ops::lock(context, operation, Duration::ZERO))
        .map_err(|e| ops_error(e, None, false, operation))
}

/// Load the testbed with no state (validate, graph); errors and warnings
/// are printed.
pub fn load_testbed(ctx: &Ctx, vars: &VarArgs) -> CmdResult<crate::config::model::Testbed> {
    let ws = workspace(ctx, vars, Arc::new(crate::apply::NoHook));
    match crate::config::load(&ws.load_options(Default::default())) {
        Ok((tb, warnings)) => {
            if !warnings.is_empty() {
                eprint!("{}", crate::diagnostics::render_all(&warnings, &tb.sources));
            }
            Ok(tb)
        }
        Err(e) => Err(ops_error(
            OpsError::Load(Box::new(e)),
            None,
            ctx.json,
            "load",
        )),
    }
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
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("invalid duration `{s}`"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `-lock-timeout`, parsed.
pub fn lock_timeout(s: &str) -> CmdResult<Duration> {
    parse_duration(s).map_err(|e| fail(format!("`-lock-timeout`: {e}")))
}

/// Spawn the Ctrl-C handler: the first SIGINT stops new work, the second
/// abandons (and cancels) the work in flight, the third stops waiting for it.
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
                2 => eprintln!("\nsecond interrupt: cancelling the work in flight and saving what is known"),
                _ => eprintln!("\nthird interrupt: no longer waiting for the work in flight"),
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
        for s in ["", "s", "5x", "-1s", "1e400s", "99999999999h"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }
}
