//! `tg session list | new | delete | show | export`.

use serde_json::json;

use crate::cli::args::SessionCommand;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::environment::Caller;
use crate::names::SessionName;
use crate::state::{LockInfo, SessionInfo};

pub fn run(ctx: &Ctx, args: &SessionCommand) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn info_json(s: &SessionInfo, lock: Option<&LockInfo>) -> serde_json::Value {
    json!({
        "name": s.name,
        "lineage": s.lineage,
        "serial": s.serial,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "instances": s.instances,
        "lock": lock,
    })
}

/// Every store that keeps leases of this testbed's pools: `own`, and the
/// store of each pool with a `state` of its own (only `own` when the
/// testbed does not load; an error when a pool's store cannot be opened).
fn lease_stores(
    ctx: &Ctx,
    own: &std::sync::Arc<dyn crate::state::StateStore>,
) -> CmdResult<Vec<std::sync::Arc<dyn crate::state::StateStore>>> {
    let (ws, settings) = engine::settings(ctx);
    let mut stores = vec![own.clone()];
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            if crate::config::source::testbed_files(&ws.dir).is_ok_and(|f| !f.is_empty()) {
                eprintln!(
                    "warning: the testbed does not load ({} error(s), see `tg validate`): pool leases are looked for in this testbed's state store only",
                    e.diagnostics.error_count()
                );
            }
            return Ok(stores);
        }
    };
    let by_pool = crate::ops::pool::lease_stores(
        ws.leases_dir(),
        &settings,
        own,
        crate::ops::StoreAccess::Read,
    )
    .map_err(|e| {
        report::fail(format!(
            "cannot read the leases of the testbed's pools ({e}): the session may still hold hosts; `-force` deletes it anyway"
        ))
    })?;
    for s in by_pool.into_values() {
        if !stores.iter().any(|k| std::sync::Arc::ptr_eq(k, &s)) {
            stores.push(s);
        }
    }
    Ok(stores)
}

/// The one session name rule ([`SessionName`]), as a command error.
fn check_name(name: &str) -> CmdResult<SessionName> {
    SessionName::parse(name)
        .map_err(|why| report::fail(format!("invalid session name {name:?}: {why}")))
}

/// `tg session delete NAME -destroy`: destroy what the session records,
/// from state alone (no testbed needed), before it is deleted.
fn destroy_session(ctx: &Ctx, name: &SessionName, auto_approve: bool) -> CmdResult<()> {
    let ctx = Ctx {
        session: name.clone(),
        ..ctx.clone()
    };
    let rt = engine::runtime()?;
    let progress = std::sync::Arc::new(crate::cli::progress::Progress::new(ctx.interactive, false));
    let context = engine::open_for_reading(&ctx, &rt, progress.clone())?;
    let planned = crate::cli::commands::destroy::destroy_from_state(
        &ctx,
        &rt,
        context,
        &crate::cli::args::PlanOptions {
            refresh: true,
            lock_timeout: "0s".into(),
            ..Default::default()
        },
    )?;
    print!(
        "{}",
        crate::plan::render_text::render_plan(
            &planned.plan,
            crate::plan::render_text::TextOptions { color: ctx.color }
        )
    );
    if planned.plan.has_changes() {
        crate::cli::prompt::approve(
            auto_approve,
            &format!(
                "\nDo you really want to destroy everything of session `{name}` and delete it?"
            ),
            "tg will destroy everything shown above. There is no undo.",
            "`tg session delete -destroy`",
            "Delete cancelled.",
        )?;
    }
    let code = crate::cli::commands::apply::walk_and_report(
        &rt,
        planned.locked,
        &planned.plan,
        &crate::cli::commands::apply::walk_opts(10, false, None, true),
        &progress,
    )?;
    if code != 0 {
        return Err(report::fail(format!(
            "session `{name}` was not deleted: its destroy did not finish (see above)"
        )));
    }
    Ok(())
}

/// `tg session export OWNER/NAME [-o FILE|DIR]`: the testbed of a `tg
/// serve` session, from the server's data dir when given and there, else
/// from the state store (which keeps each session's model and the
/// catalog files it was opened with).
fn export(
    ctx: &Ctx,
    name: &str,
    out: Option<&std::path::Path>,
    data_dir: &std::path::Path,
) -> CmdResult<i32> {
    let session = check_name(name)?;
    let Some(owner) = session.owner() else {
        return Err(report::fail(format!(
            "`{name}` is not a `tg serve` session: expected `OWNER/NAME` (`tg session list` shows them)"
        )));
    };
    let data = ctx.env.resolve(data_dir);
    let dir = crate::serve::model::session_dir(&data, owner, session.short());
    let files = match crate::serve::model::testbed_in_folder(&dir).map_err(report::fail)? {
        Some(files) => files,
        None => {
            let store = engine::store(ctx)?;
            crate::serve::stored::testbed_in_store(store.as_ref(), session.as_str())
                .map_err(report::fail)?
                .ok_or_else(|| {
                    report::fail(format!(
                        "no `tg serve` session `{session}` in `{}` nor in the state store {}: give `-data-dir` the server's data dir and `TG_STATE_URL` its store, or fetch the testbed over the API (`GET /v1/sessions/{}/testbed`, `session.export()` in Python)",
                        data.display(),
                        store.location(),
                        session.as_str().replace('/', "%2F")
                    ))
                })?
        }
    };
    let write = |path: &std::path::Path, text: &str| {
        std::fs::write(path, text)
            .map_err(|e| report::fail(format!("cannot write `{}`: {e}", path.display())))
    };
    let doc = &files[0].1;
    match out {
        None => print!("{doc}"),
        Some(o) => {
            let o = ctx.env.resolve(o);
            if !o.is_dir() {
                write(&o, doc)?;
                return Ok(0);
            }
            for (f, text) in &files {
                write(&o.join(f), text)?;
            }
            let names: Vec<&str> = files.iter().map(|(f, _)| f.as_str()).collect();
            eprintln!(
                "Wrote {} to {}: review it, then `tg -chdir {} plan`.",
                names.join(", "),
                o.display(),
                o.display()
            );
        }
    }
    Ok(0)
}

fn run_inner(ctx: &Ctx, args: &SessionCommand) -> CmdResult<i32> {
    // Each command opens the store only after its name is checked: a
    // refused name touches nothing. `export` reads a server's data dir
    // first, the store only when the data dir has no such session.
    match args {
        SessionCommand::Export {
            name,
            out,
            data_dir,
        } => export(ctx, name, out.as_deref(), data_dir),
        SessionCommand::List { json } => {
            let store = engine::store(ctx)?;
            let list = store.list_sessions().map_err(report::fail)?;
            if *json {
                let v: Vec<_> = list
                    .iter()
                    .map(|s| info_json(s, store.lock_holder(&s.name).ok().flatten().as_ref()))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"sessions": v})).unwrap_or_default()
                );
            } else if list.is_empty() {
                println!("No sessions yet: `tg init` or `tg apply` creates one.");
            } else {
                for s in &list {
                    let mark = if s.name == ctx.session.as_str() {
                        "*"
                    } else {
                        " "
                    };
                    println!(
                        "{mark} {:20} {:>5} instance(s)  serial {:<5} updated {}",
                        s.name, s.instances, s.serial, s.updated_at
                    );
                }
            }
            Ok(0)
        }
        SessionCommand::New { name } => {
            let name = check_name(name)?;
            let store = engine::store_to_write(ctx)?;
            let s = store.create_session(name.as_str()).map_err(report::fail)?;
            println!(
                "Created session `{}` (lineage {}) in {}.",
                s.name,
                s.lineage,
                store.location()
            );
            println!(
                "Use it with `-session {}` or `TG_SESSION={}`.",
                s.name, s.name
            );
            Ok(0)
        }
        SessionCommand::Delete {
            name,
            force,
            destroy,
            auto_approve,
        } => {
            let name = check_name(name)?;
            if *destroy {
                destroy_session(ctx, &name, *auto_approve)?;
            }
            let store = engine::store(ctx)?;
            let name = name.as_str();
            let Some(s) = store.get_session(name).map_err(report::fail)? else {
                return Err(report::fail(format!(
                    "session `{name}` does not exist: see `tg session list`"
                )));
            };
            if s.instances > 0 && !force {
                return Err(report::fail(format!(
                    "session `{name}` still records {} instance(s): run `tg session delete {name} -destroy` to destroy them first, or `-force` to forget them (the objects stay)",
                    s.instances
                )));
            }
            // An apply killed before its first record can leave hosts leased
            // to a session that records nothing: in this store, and in the
            // store of each pool with a `state` of its own.
            let mut held = Vec::new();
            let stores = if *force {
                Vec::new()
            } else {
                lease_stores(ctx, &store)?
            };
            for leases in stores {
                held.extend(
                    leases
                        .leases()
                        .map_err(report::fail)?
                        .into_iter()
                        .filter(|l| l.held_by(&s.lineage))
                        .map(|l| l.host),
                );
            }
            if !held.is_empty() && !force {
                return Err(report::fail(format!(
                    "session `{name}` still holds pool host(s) {}: run `tg session delete {name} -destroy` to reset and free them first, or `-force` to forget them (then `tg pool release HOST`)",
                    held.join(", ")
                )));
            }
            let lock = store
                .lock(
                    LockInfo::new(name, "session delete", &Caller::this_process(&ctx.env)),
                    std::time::Duration::ZERO,
                )
                .map_err(report::fail)?;
            store.delete_session(name).map_err(report::fail)?;
            lock.release().map_err(report::fail)?;
            println!("Deleted session `{name}`.");
            Ok(0)
        }
        SessionCommand::Show { name, json } => {
            let name = match name {
                Some(n) => check_name(n)?.as_str().to_string(),
                None => ctx.session.as_str().to_string(),
            };
            let name = name.as_str();
            let store = engine::store(ctx)?;
            let Some(s) = store.get_session(name).map_err(report::fail)? else {
                return Err(report::fail(format!(
                    "session `{name}` does not exist: see `tg session list`"
                )));
            };
            let lock = store.lock_holder(name).map_err(report::fail)?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&info_json(&s, lock.as_ref())).unwrap_or_default()
                );
            } else {
                println!("session:   {}", s.name);
                println!("lineage:   {}", s.lineage);
                println!("serial:    {}", s.serial);
                println!("instances: {}", s.instances);
                println!("created:   {}", s.created_at);
                println!("updated:   {}", s.updated_at);
                println!("state:     {}", store.location());
                match lock {
                    Some(l) => println!(
                        "lock:      {} by {}@{} pid {} since {} (id {})",
                        l.operation, l.user, l.host, l.pid, l.created_at, l.id
                    ),
                    None => println!("lock:      none"),
                }
            }
            Ok(0)
        }
    }
}
