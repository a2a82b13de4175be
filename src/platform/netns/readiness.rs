//! Readiness checks (`wait_for`) of nodes and packages: part of creating
//! the instance, so apply reports it created (and its dependents start)
//! only once every check passed.
//!
//! - `command`: `sh -c COMMAND` fully inside the node; ready on exit 0.
//!   One try never outlasts what is left of the timeout: it is killed.
//! - `tcp`: a connection to the node's first address from the session's
//!   router namespace, where the networks' bridges are: the way a client
//!   on the node's network reaches it, through its link (impairments
//!   included), not through the node's loopback.
//!
//! A check that has not passed when its timeout ends fails the instance
//! with the last try's output; a cancelled apply stops waiting at once.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::exec::{collect, node_command, Enter};
use super::net::{self, in_netns};
use super::node::{self, Node};
use super::sandbox::Sandbox;
use super::NetnsPlatform;
use crate::platform::{
    Cancel, Check, CreateRequest, CreateResponse, PackageSpec, PlatformError, PlatformResult, Spec,
    WaitFor,
};

/// What one try gave.
enum Try {
    Ready,
    NotYet(String),
}

/// The node a check runs for.
pub struct Subject<'a> {
    /// `node `edge-0`` or `package `nginx` on node `edge-0``, for messages.
    pub what: String,
    pub node: &'a Node,
    pub sandbox: &'a std::sync::Arc<Sandbox>,
    /// The node's first address (for `tcp`), if it has one.
    pub address: Option<Ipv4Addr>,
    /// The session's router namespace.
    pub router: &'a Path,
}

/// Run every check in order until each passed; the first that times out
/// fails with its last output.
pub fn wait_all(subject: &Subject, checks: &[WaitFor], cancel: &Cancel) -> PlatformResult<()> {
    for check in checks {
        wait(subject, check, cancel)?;
    }
    Ok(())
}

fn wait(subject: &Subject, check: &WaitFor, cancel: &Cancel) -> PlatformResult<()> {
    let start = Instant::now();
    let deadline = start + check.timeout.as_duration();
    // Cancelled at the deadline (or with the apply): a hanging try ends.
    let limit = cancel.child_token();
    let (stop, stopped) = mpsc::channel::<()>();
    let watchdog = {
        let limit = limit.clone();
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::spawn(move || {
            if stopped.recv_timeout(left).is_err() {
                limit.cancel();
            }
        })
    };
    // The last finished try's output.
    let mut last: Option<String> = None;
    let mut tries = 0u32;
    let result = loop {
        if cancel.is_cancelled() {
            break Err(PlatformError::cancelled(format!(
                "{}: waiting for {} was cancelled",
                subject.what,
                check.describe()
            )));
        }
        tries += 1;
        match try_once(subject, check, &limit, deadline) {
            Ok(Try::Ready) => break Ok(()),
            Ok(Try::NotYet(out)) => last = Some(out),
            Err(e) if limit.is_cancelled() && !cancel.is_cancelled() => {
                // A try cut off by the timeout: the one before says more.
                if last.is_none() {
                    last = Some(format!("{} (stopped at the timeout)", e.message));
                }
            }
            Err(e) => break Err(e),
        }
        let now = Instant::now();
        if now >= deadline || limit.is_cancelled() {
            break Err(timed_out(subject, check, tries, last.as_deref()));
        }
        let pause = check
            .interval
            .as_duration()
            .min(deadline.saturating_duration_since(now));
        // Sleep, but wake for a cancel.
        let until = now + pause;
        while Instant::now() < until && !cancel.is_cancelled() {
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
        if Instant::now() >= deadline {
            break Err(timed_out(subject, check, tries, last.as_deref()));
        }
    };
    drop(stop);
    let _ = watchdog.join();
    result
}

fn timed_out(subject: &Subject, check: &WaitFor, tries: u32, last: Option<&str>) -> PlatformError {
    let last = last.unwrap_or("no try finished");
    PlatformError::new(format!(
        "{} is not ready: {} did not pass within {} ({tries} tries); fix what it waits for, or give `wait_for` a longer `timeout`",
        subject.what,
        check.describe(),
        check.timeout
    ))
    .with_detail(format!("last try: {last}"))
}

fn try_once(
    subject: &Subject,
    check: &WaitFor,
    limit: &Cancel,
    deadline: Instant,
) -> PlatformResult<Try> {
    match &check.check {
        Check::Command(command) => {
            let argv = vec!["sh".to_string(), "-c".to_string(), command.clone()];
            let cmd = node_command(subject.node, subject.sandbox, &argv, Enter::All, false)?;
            let r = collect(subject.node, cmd, &argv, Some(limit))?;
            if r.exit_code == 0 {
                return Ok(Try::Ready);
            }
            let mut out = String::from_utf8_lossy(&r.stdout).trim_end().to_string();
            let err = String::from_utf8_lossy(&r.stderr);
            if !err.trim().is_empty() {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(err.trim_end());
            }
            Ok(Try::NotYet(format!(
                "exit code {}{}",
                r.exit_code,
                if out.is_empty() {
                    String::new()
                } else {
                    format!(", output:\n{}", tail(&out, 2000))
                }
            )))
        }
        Check::Tcp(port) => {
            let Some(addr) = subject.address else {
                return Err(PlatformError::new(format!(
                    "{}: `wait_for {{ tcp = {port} }}` needs the node on a network",
                    subject.what
                )));
            };
            let to = SocketAddr::from((addr, *port));
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(10), Duration::from_secs(2));
            let r = in_netns(subject.router, move || {
                Ok(TcpStream::connect_timeout(&to, wait).map(drop))
            })
            .map_err(PlatformError::from)?;
            Ok(match r {
                Ok(()) => Try::Ready,
                Err(e) => Try::NotYet(format!("connecting to {to}: {e}")),
            })
        }
    }
}

/// The last `max` bytes of `s` (at a character boundary).
fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = s.len() - max;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

impl NetnsPlatform {
    /// Run readiness checks for `what` on `node`; `address`: the node's
    /// first address (what `tcp` connects to).
    pub(super) fn wait_for(
        &self,
        sid: &str,
        what: String,
        node: &node::Node,
        address: Option<Ipv4Addr>,
        checks: &[WaitFor],
        cancel: &Cancel,
    ) -> PlatformResult<()> {
        let sandbox = self.sandbox_of(node)?;
        let router = net::router_netns_path(&self.options.run_dir, sid);
        let subject = Subject {
            what,
            node,
            sandbox: &sandbox,
            address,
            router: &router,
        };
        wait_all(&subject, checks, cancel)
    }

    /// Install package `p` (see `install_package`), then wait for its checks.
    pub(super) fn create_package(
        &self,
        sid: &str,
        req: &CreateRequest,
        p: &PackageSpec,
    ) -> PlatformResult<CreateResponse> {
        let node = self.package_node(sid, p, None, &req.deps);
        self.install_checked(
            sid,
            &req.session,
            p,
            node,
            &req.deps,
            &req.cancel,
            &req.trace,
        )
    }

    /// Install (or upgrade) package `p` on `node`, then wait for its
    /// checks: a create and an in-place version change alike.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn install_checked(
        &self,
        sid: &str,
        session: &crate::platform::SessionRef,
        p: &PackageSpec,
        node: Option<node::Node>,
        deps: &std::collections::BTreeMap<String, crate::platform::Dependency>,
        cancel: &Cancel,
        trace: &crate::platform::trace::OpTrace,
    ) -> PlatformResult<CreateResponse> {
        let checked = node.as_ref().map(|n| n.paths.id.clone());
        let made = self.install_package(session, p, node, cancel, trace)?;
        if !p.wait_for.is_empty() {
            let _p = trace.phase("wait_for");
            let node = checked
                .and_then(|id| node::Node::open(&node::node_paths(&self.options.run_dir, sid, &id)))
                .ok_or_else(|| {
                    PlatformError::new(format!(
                        "node `{}` ended before package `{}` was ready",
                        p.node, p.name
                    ))
                })?;
            // The node's first address, from its spec among the deps.
            let address = deps.values().find_map(|d| match &d.spec {
                Spec::Node(n) if n.hostname == p.node => n.interfaces.first().map(|i| i.address),
                _ => None,
            });
            self.wait_for(
                sid,
                format!("package `{}` on node `{}`", p.name, p.node),
                &node,
                address,
                &p.wait_for,
                cancel,
            )?;
        }
        Ok(made)
    }
}
