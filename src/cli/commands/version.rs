//! `tg version [-json]`, `tg completion SHELL` and `tg man`: what tg is,
//! from the clap definitions.

use clap::CommandFactory;
use serde_json::json;

use crate::cli::args::{Cli, CompletionArgs, VersionArgs};
use crate::cli::Ctx;

pub fn run(_ctx: &Ctx, args: &VersionArgs) -> i32 {
    if args.json {
        let doc = json!({
            "format_version": "1.0",
            "tg_version": crate::ops::TG_VERSION,
            "platform": format!("{}_{}", std::env::consts::OS, std::env::consts::ARCH),
            "state_schema_version": crate::state::SCHEMA_VERSION,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!("tg v{}", crate::ops::TG_VERSION);
        println!("on {}_{}", std::env::consts::OS, std::env::consts::ARCH);
    }
    0
}

pub fn completion(_ctx: &Ctx, args: &CompletionArgs) -> i32 {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "tg", &mut std::io::stdout());
    0
}

pub fn man(_ctx: &Ctx) -> i32 {
    let cmd = Cli::command();
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
        eprintln!("error: cannot render the manual page: {e}");
        return 1;
    }
    use std::io::Write;
    let _ = std::io::stdout().write_all(&out);
    0
}
