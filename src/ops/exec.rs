//! Commands on nodes: choosing the nodes (`tg exec TARGET`) and running a
//! command on each, all at once, with output streamed as it comes.
//!
//! Output bytes pass through untouched: a caller that wants lines (the
//! CLI's `[host]` prefixes) splits them itself. With no output channel the
//! bytes are collected into the [`ExecResult`]s (the JSON document, the
//! API). stdin and signals are copied to every node's command.
//!
//! Not here: how a platform runs a command (`Platform::exec`).

use std::time::Duration;

use base64::Engine as _;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use tokio::sync::mpsc;

use super::{parse_addresses, Context, OpsError, OpsResult};
use crate::addrs::InstanceAddr;
use crate::platform::{Cancel, ExecIo, ExecRequest, SessionRef, Spec};
use crate::state::{InstanceRecord, Snapshot};

/// Which output stream a chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Bytes one node's command wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecChunk {
    /// The node's position in the selection.
    pub node: usize,
    pub stream: Stream,
    pub bytes: Vec<u8>,
}

/// How to run the command.
#[derive(Debug, Default)]
pub struct ExecOptions {
    pub argv: Vec<String>,
    /// End the command after this long: exit code 124, like `timeout(1)`.
    pub timeout: Option<Duration>,
    /// A pseudo-terminal (one node only).
    pub tty: bool,
    /// Bytes for the command's stdin, copied to every node; `None` = none.
    pub stdin: Option<mpsc::Receiver<Vec<u8>>>,
    /// Signals to deliver to every node's command.
    pub signals: Option<mpsc::Receiver<i32>>,
    /// Cancelled: every command is ended.
    pub cancel: Cancel,
}

/// The result of a command on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    pub address: InstanceAddr,
    pub hostname: String,
    /// `None` when the command could not be run at all (see `error`).
    pub exit_code: Option<i32>,
    /// Ended by the timeout (`exit_code` is 124).
    pub timed_out: bool,
    /// Collected output (empty when it was streamed to the caller).
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub error: Option<String>,
}

impl Serialize for ExecResult {
    /// Output as text when it is UTF-8 (`stdout`), else base64
    /// (`stdout_base64`), so no byte is lost in the JSON document.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("address", &self.address.to_string())?;
        m.serialize_entry("hostname", &self.hostname)?;
        m.serialize_entry("exit_code", &self.exit_code)?;
        m.serialize_entry("timed_out", &self.timed_out)?;
        for (name, bytes) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            match std::str::from_utf8(bytes) {
                Ok(text) => m.serialize_entry(name, text)?,
                Err(_) => m.serialize_entry(
                    &format!("{name}_base64"),
                    &base64::engine::general_purpose::STANDARD.encode(bytes),
                )?,
            }
        }
        if let Some(e) = &self.error {
            m.serialize_entry("error", e)?;
        }
        m.end()
    }
}

/// Nodes recorded in state that a `tg exec` target selects: an instance
/// address, a splat `node.edge[*]`, a resource `node.edge`, or a label
/// selector `role=edge` (several joined with `,` must all match).
pub fn select_nodes<'a>(
    snap: &'a Snapshot,
    session: &str,
    target: &str,
) -> OpsResult<Vec<&'a InstanceRecord>> {
    let target = target.trim();
    let nodes = snap
        .instances
        .values()
        .filter(|r| matches!(r.spec, Spec::Node(_)));
    let picked: Vec<&InstanceRecord> = if target.starts_with("node.") {
        let t = parse_addresses("exec", &[target.to_string()])?.remove(0);
        nodes.filter(|r| r.address.matches(&t)).collect()
    } else if target.contains('=') {
        let mut want = Vec::new();
        for part in target.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                OpsError::Usage(format!(
                    "invalid label selector `{part}`: expected KEY=VALUE"
                ))
            })?;
            want.push((k.trim().to_string(), v.trim().to_string()));
        }
        nodes
            .filter(|r| match &r.spec {
                Spec::Node(n) => want.iter().all(|(k, v)| n.labels.get(k) == Some(v)),
                _ => false,
            })
            .collect()
    } else {
        return Err(OpsError::Usage(format!(
            "invalid target `{target}`: expected a node address (`node.edge[0]`, `node.edge[*]`, `node.edge`) or a label selector (`role=edge`)"
        )));
    };
    if picked.is_empty() {
        return Err(OpsError::Usage(format!(
            "`{target}` matches no node recorded in session `{session}`: see `tg state list`"
        )));
    }
    Ok(picked)
}

/// Run a command on every node `target` selects (see [`exec_on`]).
pub async fn exec(
    ctx: &Context,
    target: &str,
    opts: ExecOptions,
    output: Option<mpsc::Sender<ExecChunk>>,
) -> OpsResult<Vec<ExecResult>> {
    let (session, snap) = ctx.existing_session_and_state().await?;
    let nodes: Vec<InstanceRecord> = select_nodes(&snap, session.name.as_str(), target)?
        .into_iter()
        .cloned()
        .collect();
    exec_on(ctx, &session, nodes, opts, output).await
}

/// Run a command on `nodes`, all at once. Output goes to `output` as it
/// comes, or is collected into the results when `output` is `None`.
pub async fn exec_on(
    ctx: &Context,
    session: &SessionRef,
    nodes: Vec<InstanceRecord>,
    mut opts: ExecOptions,
    output: Option<mpsc::Sender<ExecChunk>>,
) -> OpsResult<Vec<ExecResult>> {
    if opts.argv.is_empty() {
        return Err(OpsError::Usage(
            "no command given: `tg exec TARGET -- CMD...`".into(),
        ));
    }
    if opts.tty && nodes.len() > 1 {
        return Err(OpsError::Usage(format!(
            "a terminal (`-t`) needs exactly one node, and {} match",
            nodes.len()
        )));
    }
    // Fan stdin and signals out to every node.
    let mut stdins: Vec<Option<mpsc::Receiver<Vec<u8>>>> = Vec::new();
    let mut stdin_txs: Vec<mpsc::Sender<Vec<u8>>> = Vec::new();
    let mut sig_rxs: Vec<Option<mpsc::Receiver<i32>>> = Vec::new();
    let mut sig_txs: Vec<mpsc::Sender<i32>> = Vec::new();
    for _ in &nodes {
        if opts.stdin.is_some() {
            let (tx, rx) = mpsc::channel(16);
            stdin_txs.push(tx);
            stdins.push(Some(rx));
        } else {
            stdins.push(None);
        }
        if opts.signals.is_some() {
            let (tx, rx) = mpsc::channel(8);
            sig_txs.push(tx);
            sig_rxs.push(Some(rx));
        } else {
            sig_rxs.push(None);
        }
    }
    if let Some(mut rx) = opts.stdin.take() {
        tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                for tx in &stdin_txs {
                    let _ = tx.send(chunk.clone()).await;
                }
            }
        });
    }
    if let Some(mut rx) = opts.signals.take() {
        tokio::spawn(async move {
            while let Some(sig) = rx.recv().await {
                for tx in &sig_txs {
                    let _ = tx.send(sig).await;
                }
            }
        });
    }

    let mut set = tokio::task::JoinSet::new();
    for (i, ((rec, stdin), signals)) in nodes.into_iter().zip(stdins).zip(sig_rxs).enumerate() {
        let Spec::Node(spec) = rec.spec.clone() else {
            continue;
        };
        let platform = ctx.registry.get(&rec.platform).cloned();
        let problem = platform.as_ref().and_then(|p| p.host_problem());
        let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(64);
        let (err_tx, err_rx) = mpsc::channel::<Vec<u8>>(64);
        let cancel = opts.cancel.child_token();
        let req = ExecRequest {
            session: session.clone(),
            address: rec.address.to_string(),
            spec: spec.clone(),
            private: rec.private.clone(),
            argv: opts.argv.clone(),
            timeout: opts.timeout,
            tty: opts.tty,
            io: ExecIo {
                stdin,
                stdout: out_tx,
                stderr: err_tx,
                signals,
            },
            cancel: cancel.clone(),
        };
        let collect = output.is_none();
        let pump_out = pump(out_rx, output.clone(), i, Stream::Stdout);
        let pump_err = pump(err_rx, output.clone(), i, Stream::Stderr);
        let timeout = opts.timeout;
        let pname = rec.platform.clone();
        let (address, hostname) = (rec.address.clone(), spec.hostname.clone());
        set.spawn(async move {
            let run = async {
                match (platform, problem) {
                    (None, _) => Err(format!("platform `{pname}` is not available here")),
                    (Some(_), Some(problem)) => Err(problem),
                    (Some(p), None) => run_with_timeout(p.exec(req), timeout, &cancel).await,
                }
            };
            let (status, stdout, stderr) = tokio::join!(run, pump_out, pump_err);
            let mut r = ExecResult {
                address,
                hostname,
                exit_code: None,
                timed_out: false,
                stdout: if collect { stdout } else { Vec::new() },
                stderr: if collect { stderr } else { Vec::new() },
                error: None,
            };
            match status {
                Ok(s) => {
                    r.exit_code = Some(s.exit_code);
                    r.timed_out = s.timed_out;
                }
                Err(e) => r.error = Some(e),
            }
            (i, r)
        });
    }
    let mut out: Vec<(usize, ExecResult)> = Vec::new();
    while let Some(j) = set.join_next().await {
        if let Ok(r) = j {
            out.push(r);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, r)| r).collect())
}

/// Wait for a platform's exec; past `timeout`, cancel it and report 124.
/// A platform that ignores the cancel is given a few seconds more.
async fn run_with_timeout(
    fut: impl std::future::Future<Output = crate::platform::PlatformResult<crate::platform::ExecStatus>>,
    timeout: Option<Duration>,
    cancel: &Cancel,
) -> Result<crate::platform::ExecStatus, String> {
    let timed_out = crate::platform::ExecStatus {
        exit_code: 124,
        timed_out: true,
    };
    tokio::pin!(fut);
    let result = match timeout {
        None => fut.await,
        Some(t) => match tokio::time::timeout(t, &mut fut).await {
            Ok(r) => r,
            Err(_) => {
                cancel.cancel();
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut fut).await;
                return Ok(timed_out);
            }
        },
    };
    match result {
        Ok(mut s) => {
            if s.timed_out {
                s.exit_code = 124;
            }
            Ok(s)
        }
        Err(e) if e.kind == crate::platform::ErrorKind::Cancelled && timeout.is_some() => {
            Ok(timed_out)
        }
        Err(e) => Err(e.full()),
    }
}

/// Forward one stream's chunks to the caller, or collect them.
async fn pump(
    mut rx: mpsc::Receiver<Vec<u8>>,
    to: Option<mpsc::Sender<ExecChunk>>,
    node: usize,
    stream: Stream,
) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(bytes) = rx.recv().await {
        match &to {
            Some(tx) => {
                let _ = tx
                    .send(ExecChunk {
                        node,
                        stream,
                        bytes,
                    })
                    .await;
            }
            None => all.extend_from_slice(&bytes),
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_that_is_not_utf8_travels_as_base64() {
        let r = ExecResult {
            address: "node.a".parse().unwrap(),
            hostname: "a".into(),
            exit_code: Some(0),
            timed_out: false,
            stdout: vec![0xff, b'\r', b'\n'],
            stderr: b"ok\r\n".to_vec(),
            error: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["stdout_base64"], "/w0K");
        assert_eq!(v["stderr"], "ok\r\n");
        assert!(v.get("stdout").is_none());
    }
}
