//! `tg init`: create the state store and the session.

use crate::cli::args::InitArgs;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;

pub fn run(ctx: &Ctx, args: &InitArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, _args: &InitArgs) -> CmdResult<i32> {
    let dir = engine::abs_dir(ctx);
    let tg_dir = dir.join(".tg");
    let created_dir = !tg_dir.exists();
    if created_dir {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        // 0700 whatever the umask: state is nobody else's business.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tg_dir)
            .and_then(|()| {
                std::fs::set_permissions(&tg_dir, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|e| report::fail(format!("cannot create `{}`: {e}", tg_dir.display())))?;
    }
    let ignore = tg_dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "# tg's local state: never commit it\n*\n")
            .map_err(|e| report::fail(format!("cannot write `{}`: {e}", ignore.display())))?;
    }
    if created_dir {
        println!("Created {}", engine::display_path(&dir, &tg_dir));
    }
    let store = engine::store_to_write(ctx)?;
    println!("State store: {}", store.location());
    let existed = store
        .get_session(ctx.session.as_str())
        .map_err(report::fail)?;
    let s = store
        .ensure_session(ctx.session.as_str())
        .map_err(report::fail)?;
    match existed {
        Some(_) => println!(
            "Session `{}` exists (lineage {}, serial {}, {} instance(s)).",
            s.name, s.lineage, s.serial, s.instances
        ),
        None => println!("Created session `{}` (lineage {}).", s.name, s.lineage),
    }
    let platforms: Vec<String> = engine::factory(ctx).kinds();
    println!(
        "Platforms: {}",
        if platforms.is_empty() {
            "none available".to_string()
        } else {
            platforms.join(", ")
        }
    );
    println!("\ntg is ready. Run `tg plan` to see what it would do.");
    Ok(0)
}
