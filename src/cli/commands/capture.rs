//! `tg capture TARGET [-w FILE] [-c COUNT] [-filter BPF] [-network NAME]`:
//! packets of a network or of one node's link, as pcap, captured from
//! outside the nodes.
//!
//! pcap goes to stdout (so `tg capture network.lab | wireshark -k -i -`
//! works) unless `-w` names a file (made 0600: a capture holds whatever
//! crossed the wire). A terminal on stdout is refused: binary pcap would
//! garble it. Ctrl-C ends the capture with a whole file and exit 0.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::apply::NoHook;
use crate::cli::args::CaptureArgs;
use crate::cli::commands::exec::forward_signals;
use crate::cli::engine;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops::{self, CaptureOptions};
use crate::platform::ExecIo;

pub fn run(ctx: &Ctx, args: &CaptureArgs) -> i32 {
    match run_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx, args: &CaptureArgs) -> CmdResult<i32> {
    if args.write.is_none() && std::io::stdout().is_terminal() {
        return Err(report::fail(
            "stdout is a terminal and a capture is binary pcap: pass `-w FILE`, or pipe it (`| tcpdump -r -`, `| wireshark -k -i -`)",
        ));
    }
    if args.count == Some(0) {
        return Err(report::fail(
            "`-c` must be a positive number of packets, found 0",
        ));
    }
    let mut sink: Box<dyn Write + Send> = match &args.write {
        Some(path) => {
            let path = ctx.dir.join(path);
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| report::fail(format!("cannot write `{}`: {e}", path.display())))?;
            Box::new(file)
        }
        None => Box::new(std::io::stdout()),
    };
    let filter: Vec<String> = args
        .filter
        .as_deref()
        .map(|f| f.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let rt = engine::runtime()?;
    let context = engine::open_for_reading(ctx, &rt, Arc::new(NoHook))?;
    let status = rt.block_on(async {
        let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
        let (err_tx, mut err_rx) = mpsc::channel::<Vec<u8>>(64);
        let writer = tokio::task::spawn_blocking(move || {
            let mut failed = None;
            while let Some(chunk) = out_rx.blocking_recv() {
                if let Err(e) = sink.write_all(&chunk).and_then(|()| sink.flush()) {
                    // The reader went away (`| head`): stop quietly.
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        failed = Some(e.to_string());
                    }
                    break;
                }
            }
            failed
        });
        let messages = tokio::spawn(async move {
            while let Some(chunk) = err_rx.recv().await {
                let _ = std::io::stderr().write_all(&chunk);
            }
        });
        let io = ExecIo {
            stdin: None,
            stdout: out_tx,
            stderr: err_tx,
            signals: Some(forward_signals()),
        };
        let opts = CaptureOptions {
            network: args.network.clone(),
            filter,
            count: args.count,
        };
        let r = ops::capture(&context, &args.target, opts, io, Default::default()).await;
        let write_error = writer.await.ok().flatten();
        let _ = messages.await;
        (r, write_error)
    });
    match status {
        (Err(e), _) => Err(report::fail(e)),
        (Ok(_), Some(e)) => Err(report::fail(format!("cannot write the capture: {e}"))),
        (Ok(s), None) => Ok(s.exit_code.clamp(0, 255)),
    }
}
