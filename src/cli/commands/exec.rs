//! `tg exec TARGET -- CMD...`: run a command on every matching node at once.
//!
//! With one node the command's output is passed through byte for byte, as
//! it comes, and tg exits with the command's status (124 after
//! `-timeout`). With several, each line is prefixed with `[hostname] `.
//! stdin reaches the command when it is not a terminal (or with `-t`);
//! with several nodes a piped stdin is refused unless `-stdin-all` copies
//! it to each. SIGINT and SIGTERM are forwarded to the command.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc;

use crate::apply::NoHook;
use crate::cli::args::ExecArgs;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops::{self, ExecChunk, ExecOptions, Stream};
use crate::state::InstanceRecord;

pub fn run(ctx: &Ctx, args: &ExecArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

/// What stdin is: a terminal, nothing worth reading (`/dev/null`, a closed
/// or absent stdin), or data (a pipe or a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StdinKind {
    Terminal,
    Nothing,
    Data,
}

fn stdin_kind() -> StdinKind {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return StdinKind::Terminal;
    }
    match std::fs::metadata("/proc/self/fd/0") {
        Ok(m) if m.file_type().is_fifo() || m.file_type().is_socket() || m.is_file() => {
            StdinKind::Data
        }
        _ => StdinKind::Nothing,
    }
}

fn run_inner(ctx: &Ctx, args: &ExecArgs) -> CmdResult<i32> {
    if args.json && args.tty {
        return Err(report::fail(
            "`-json` and `-t` do not go together: a terminal session has no JSON result",
        ));
    }
    let timeout = match &args.timeout {
        Some(t) => {
            Some(engine::parse_duration(t).map_err(|e| report::fail(format!("`-timeout`: {e}")))?)
        }
        None => None,
    };
    let rt = engine::runtime()?;
    let context = engine::open_for_reading(ctx, &rt, Arc::new(NoHook))?;
    let (session, snap) = rt
        .block_on(context.existing_session_and_state())
        .map_err(report::fail)?;
    let nodes: Vec<InstanceRecord> = ops::select_nodes(&snap, ctx.session.as_str(), &args.target)
        .map_err(report::fail)?
        .into_iter()
        .cloned()
        .collect();
    let several = nodes.len() > 1;
    if args.tty && several {
        return Err(report::fail(format!(
            "`-t` needs exactly one node, and `{}` matches {}: name one node (`node.edge[0]`)",
            args.target,
            nodes.len()
        )));
    }
    let kind = stdin_kind();
    if several && kind == StdinKind::Data && !args.stdin_all {
        return Err(report::fail(format!(
            "stdin is given but `{}` matches {} nodes: pass `-stdin-all` to send it to each, or name one node",
            args.target,
            nodes.len()
        )));
    }
    let forward_stdin = match kind {
        StdinKind::Data => !several || args.stdin_all,
        StdinKind::Terminal => args.tty,
        StdinKind::Nothing => false,
    };
    let hostnames: Vec<String> = nodes
        .iter()
        .map(|r| match &r.spec {
            crate::platform::Spec::Node(n) => n.hostname.clone(),
            _ => r.address.to_string(),
        })
        .collect();

    let _raw = if args.tty && kind == StdinKind::Terminal {
        RawTerminal::enter()
    } else {
        None
    };
    let (result, code) = rt.block_on(async {
        let stdin = forward_stdin.then(read_stdin);
        let signals = (!args.tty).then(forward_signals);
        let opts = ExecOptions {
            argv: args.command.clone(),
            timeout,
            tty: args.tty,
            stdin,
            signals,
            cancel: Default::default(),
        };
        let (tx, printer) = if args.json {
            (None, None)
        } else {
            let (tx, rx) = mpsc::channel::<ExecChunk>(64);
            let names = hostnames.clone();
            (
                Some(tx),
                Some(tokio::spawn(print_chunks(rx, several.then_some(names)))),
            )
        };
        let r = ops::exec_on(&context, &session, nodes, opts, tx).await;
        if let Some(p) = printer {
            let _ = p.await;
        }
        let code = match &r {
            Ok(results) => exit_code(results),
            Err(_) => 1,
        };
        (r, code)
    });
    drop(_raw);
    let results = result.map_err(report::fail)?;
    if args.json {
        let failed = results.iter().filter(|r| r.exit_code != Some(0)).count();
        let doc = json!({
            "format_version": "1.0",
            "session": ctx.session,
            "command": args.command,
            "results": results,
            "failed": failed,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for r in &results {
            let p = if several {
                format!("[{}] ", r.hostname)
            } else {
                String::new()
            };
            match (&r.error, r.exit_code) {
                (Some(e), _) => eprintln!("{p}error: `{}`: {e}", r.address),
                (None, Some(124)) if r.timed_out => {
                    eprintln!("{p}tg: the command timed out and was ended")
                }
                (None, Some(c)) if c != 0 && several => eprintln!("{p}exited with status {c}"),
                _ => {}
            }
        }
    }
    Ok(code)
}

/// One node: its status; several: 1 when any did not exit 0.
fn exit_code(results: &[ops::ExecResult]) -> i32 {
    match results {
        [one] => one.exit_code.map_or(1, |c| c.clamp(0, 255)),
        many => i32::from(many.iter().any(|r| r.exit_code != Some(0))),
    }
}

/// stdin, read on a thread, in chunks as they come.
fn read_stdin() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
    rx
}

/// SIGINT and SIGTERM received by tg, for the command.
pub(crate) fn forward_signals() -> mpsc::Receiver<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = mpsc::channel(8);
    for (kind, num) in [
        (SignalKind::interrupt(), libc::SIGINT),
        (SignalKind::terminate(), libc::SIGTERM),
    ] {
        let tx = tx.clone();
        if let Ok(mut s) = signal(kind) {
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(num).await.is_err() {
                        break;
                    }
                }
            });
        }
    }
    rx
}

/// Print chunks as they come: untouched for one node, line by line with
/// `[hostname] ` for several (a last line without newline gets one).
async fn print_chunks(mut rx: mpsc::Receiver<ExecChunk>, prefixes: Option<Vec<String>>) {
    let mut partial: BTreeMap<(usize, bool), Vec<u8>> = BTreeMap::new();
    let write = |stream: Stream, bytes: &[u8]| {
        let r = match stream {
            Stream::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(bytes).and_then(|()| o.flush())
            }
            Stream::Stderr => {
                let mut e = std::io::stderr().lock();
                e.write_all(bytes).and_then(|()| e.flush())
            }
        };
        if let Err(e) = r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(141);
            }
        }
    };
    while let Some(c) = rx.recv().await {
        let Some(names) = &prefixes else {
            write(c.stream, &c.bytes);
            continue;
        };
        let key = (c.node, c.stream == Stream::Stderr);
        let buf = partial.entry(key).or_default();
        buf.extend_from_slice(&c.bytes);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let mut out = format!("[{}] ", names[c.node]).into_bytes();
            out.extend_from_slice(&line);
            write(c.stream, &out);
        }
    }
    if let Some(names) = &prefixes {
        for ((node, err), rest) in partial {
            if !rest.is_empty() {
                let mut out = format!("[{}] ", names[node]).into_bytes();
                out.extend_from_slice(&rest);
                out.push(b'\n');
                write(if err { Stream::Stderr } else { Stream::Stdout }, &out);
            }
        }
    }
}

/// The local terminal in raw mode for `-t`, restored on drop.
struct RawTerminal {
    saved: nix::sys::termios::Termios,
}

impl RawTerminal {
    fn enter() -> Option<RawTerminal> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}
