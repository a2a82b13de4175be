//! `tg serve`: the REST API. This file turns the process (flags,
//! environment, signals) into a [`crate::serve::Config`] and runs the
//! server; everything else is in `crate::serve`.
//!
//! With `TG_TESTDOUBLE_DIR` set (tg's own tests), sessions' nodes are on
//! the test double, and the installable package versions come from
//! `DIR/apt.json` (`{"hello": ["2.10-3"]}`) when that file exists.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::args::ServeArgs;
use crate::cli::engine;
use crate::cli::Ctx;
use crate::platform::testdouble;
use crate::serve::{auth::Tokens, packages::Versions, App, Config};

/// How long SIGTERM waits for running jobs.
const DRAIN: Duration = Duration::from_secs(120);

pub fn run(ctx: &Ctx, args: &ServeArgs) -> i32 {
    match serve(ctx, args) {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("error: {msg}");
            1
        }
    }
}

fn serve(ctx: &Ctx, args: &ServeArgs) -> Result<(), String> {
    let tokens = Tokens::load(&ctx.env.resolve(&args.token_file))?;
    if tokens.is_empty() {
        return Err(format!(
            "the token file `{}` has no tokens: add a line `TOKEN USER [admin]`",
            args.token_file.display()
        ));
    }
    let data_dir = ctx.env.resolve(&args.data_dir);
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create the data dir `{}`: {e}", data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
    let double = ctx.env.non_empty(testdouble::ENV_DIR).map(str::to_string);
    let platform = match (&double, args.platform.as_str()) {
        (Some(_), "netns") => "double".to_string(),
        (_, p) => p.to_string(),
    };
    crate::names::check_identifier(&platform)
        .map_err(|e| format!("invalid `-platform` `{platform}`: {e}"))?;
    let versions = match &double {
        Some(d) if Path::new(d).join("apt.json").is_file() => {
            let path = Path::new(d).join("apt.json");
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            Versions::Table(
                serde_json::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))?,
            )
        }
        _ => Versions::Apt,
    };
    let mut env = Vec::new();
    for name in [
        "PATH",
        "HOME",
        testdouble::ENV_DIR,
        engine::ENV_NETNS_RUN_DIR,
    ] {
        if let Some(v) = ctx.env.non_empty(name) {
            env.push((name.to_string(), v.to_string()));
        }
    }
    // A testbed's `env()` sees only what the catalog allows, with the
    // server's values.
    let catalog = args.catalog.as_ref().map(|c| ctx.env.resolve(c));
    let env_allow = match &catalog {
        Some(c) => crate::serve::read_env_allow(c)?,
        None => Vec::new(),
    };
    for name in &env_allow {
        if env.iter().any(|(k, _)| k == name) {
            continue;
        }
        if let Some(v) = ctx.env.var(name) {
            env.push((name.clone(), v.to_string()));
        }
    }
    // A tenant's node must not read the server's data: other sessions'
    // keys, documents and (by default) the state store.
    let mut hidden = vec![data_dir.clone()];
    if let Some(p) = ctx
        .env
        .non_empty(crate::ops::ENV_STATE_URL)
        .map(std::path::Path::new)
        .filter(|p| p.is_absolute())
    {
        hidden.push(p.to_path_buf());
    }
    let config = Config {
        data_dir,
        catalog,
        platform,
        factory: engine::factory_hiding(ctx, &hidden),
        versions,
        state_url: ctx
            .env
            .non_empty(crate::ops::ENV_STATE_URL)
            .map(str::to_string),
        env,
        env_allow,
        host: crate::state::hostname(),
        netns_host: engine::netns_options(ctx).host,
        pid: std::process::id(),
    };
    let app = Arc::new(App::new(config, tokens)?);
    let rt = engine::runtime().map_err(|_| "cannot start the async runtime".to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| format!("cannot listen on `{}`: {e}", args.listen))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        // Tests and scripts read this line to learn the port.
        println!("tg serve: listening on http://{local}");
        watch_hangups(app.clone(), ctx.env.resolve(&args.token_file));
        crate::serve::serve(app, listener, terminated(), DRAIN)
            .await
            .map_err(|e| format!("the server stopped: {e}"))
    })
}

/// SIGTERM or Ctrl-C: stop accepting and drain.
async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("tg serve: stopping (waiting for running jobs)");
}

/// SIGHUP: reload the token file (a broken file keeps the old tokens).
fn watch_hangups(app: Arc<App>, path: std::path::PathBuf) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match Tokens::load(&path) {
                Ok(t) => {
                    if let Ok(mut w) = app.tokens.write() {
                        *w = t;
                    }
                    eprintln!("tg serve: reloaded `{}`", path.display());
                }
                Err(e) => eprintln!("tg serve: kept the old tokens: {e}"),
            }
        }
    });
}
