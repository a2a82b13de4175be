//! The command-line interface: the only module that prints.
//!
//! Each command (one file in `commands/`) parses its options, calls one
//! library operation and maps the result to an exit code. Errors are
//! rendered once, here: `0` success, `1` error, `2` changes present with
//! `-detailed-exitcode`.

pub mod args;
pub mod commands;
pub mod engine;
pub mod progress;
pub mod prompt;
pub mod report;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// What every command gets: global options, resolved.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The testbed directory (after `-chdir`).
    pub dir: PathBuf,
    /// The session name (checked).
    pub session: crate::names::SessionName,
    /// Colour allowed on stdout (a terminal, no `NO_COLOR`, no `-no-color`).
    pub color: bool,
    /// stderr is a terminal (live progress allowed).
    pub interactive: bool,
    /// The command prints one JSON document (`-json`): problems with the
    /// testbed are printed as `tg validate -json`'s document too.
    pub json: bool,
    /// The process's environment and working directory, read once here:
    /// the library never reads them itself.
    pub env: crate::environment::Environment,
}

/// Run tg with the process's arguments; returns the exit code.
pub fn main() -> ExitCode {
    quiet_broken_pipe();
    let argv = args::normalize_args(std::env::args());
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let text = terraform_spelling(&e.render().to_string());
            if e.use_stderr() {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            return ExitCode::from(code);
        }
    };
    let dir = match &cli.chdir {
        Some(d) => d.clone(),
        None => PathBuf::from("."),
    };
    if !dir.is_dir() {
        eprintln!(
            "error: `-chdir` directory `{}` does not exist",
            dir.display()
        );
        return ExitCode::from(1);
    }
    let session = match crate::names::SessionName::parse(&cli.session) {
        Ok(s) => s,
        Err(why) => {
            let from = if std::env::var_os("TG_SESSION").is_some_and(|v| v == cli.session.as_str())
            {
                "`TG_SESSION`"
            } else {
                "`-session`"
            };
            eprintln!(
                "error: invalid session name {:?} in {from}: {why}",
                cli.session
            );
            eprintln!("  help: a session name has 1 to 128 letters, digits, `-`, `_` and `.`, and starts with a letter or a digit (`pr-123`, `jenkins-folder-job-42`)");
            return ExitCode::from(1);
        }
    };
    let color = !cli.no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal();
    let ctx = Ctx {
        dir,
        session,
        color,
        interactive: std::io::stderr().is_terminal(),
        json: match &cli.command {
            Command::Plan(a) => a.json,
            Command::Apply(a) => a.json,
            Command::Destroy(a) => a.json,
            Command::Validate(a) => a.json,
            _ => false,
        },
        env: crate::environment::Environment::from_process(),
    };
    let code = run(&ctx, &cli.command);
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Help and errors spell long flags as Terraform users type them and as
/// the docs write them (`-chdir`, `-auto-approve`); `--flag` works too.
/// A bare `--` (the separator before a command) is left alone.
pub fn terraform_spelling(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let starts_flag = b[i] == b'-'
            && b.get(i + 1) == Some(&b'-')
            && b.get(i + 2).is_some_and(u8::is_ascii_alphabetic)
            && (i == 0 || matches!(b[i - 1], b' ' | b'[' | b'\'' | b'`' | b'\n' | b',' | b'('));
        if starts_flag {
            out.push('-');
            i += 2;
            continue;
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A closed stdout (`tg output inventory | head`) is not an error worth a
/// backtrace: `println!` panics on it, so end quietly with the shell's
/// SIGPIPE code (128 + 13) instead. State is written per instance, so
/// nothing recorded is lost. Every other panic keeps the default report.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn run(ctx: &Ctx, command: &Command) -> i32 {
    use commands::*;
    match command {
        Command::Init(a) => init::run(ctx, a),
        Command::Validate(a) => validate::run(ctx, a),
        Command::Fmt(a) => fmt::run(ctx, a),
        Command::Plan(a) => plan::run(ctx, a),
        Command::Apply(a) => apply::run(ctx, a),
        Command::Destroy(a) => destroy::run(ctx, a),
        Command::Show(a) => show::run(ctx, a),
        Command::Output(a) => output::run(ctx, a),
        Command::Inventory(a) => inventory::run(ctx, a),
        Command::State(a) => state::run(ctx, a),
        Command::ForceUnlock(a) => force_unlock::run(ctx, a),
        Command::Graph(a) => graph::run(ctx, a),
        Command::Console(a) => console::run(ctx, a),
        Command::Exec(a) => exec::run(ctx, a),
        Command::Capture(a) => capture::run(ctx, a),
        Command::Impair(a) => impair::run(ctx, a),
        Command::Session(a) => session::run(ctx, a),
        Command::Proxy(a) => proxy::run(ctx, a),
        Command::Serve(a) => serve::run(ctx, a),
        Command::SshConfig => ssh_config::run(ctx),
        Command::Ssh(a) => ssh_config::ssh(ctx, a),
        Command::Platforms(a) => platforms::run(ctx, a),
        Command::Pool(a) => pool::run(ctx, a),
        Command::Version(a) => version::run(ctx, a),
        Command::Completion(a) => version::completion(ctx, a),
        Command::Man => version::man(ctx),
    }
}
