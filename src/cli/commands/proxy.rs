//! `tg proxy HOST PORT`: relay stdin/stdout to a node's TCP port.
//!
//! Used as ssh's `ProxyCommand` so Ansible reaches netns nodes, which live
//! in per-session namespaces the host's root namespace has no route to.
//! The command finds the session's runtime folder by name (`session.json`
//! written by the netns platform under its run folder, `/run/tg` unless
//! `TG_NETNS_RUN_DIR` says otherwise), enters the session's router network
//! namespace (this process is single-threaded at that point), connects and
//! copies bytes both ways until the node closes the connection.
//!
//! Not here: anything about other platforms (their nodes are reachable
//! directly).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

use crate::cli::args::ProxyArgs;
use crate::cli::Ctx;
use crate::platform::netns::net::{self, SessionRecord};
use crate::platform::netns::{names, NetnsOptions};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(ctx: &Ctx, args: &ProxyArgs) -> i32 {
    match proxy(ctx, args) {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("error: {msg}");
            1
        }
    }
}

/// The netns platform's runtime folder as `tg proxy` sees it.
pub fn run_dir() -> PathBuf {
    std::env::var_os("TG_NETNS_RUN_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| NetnsOptions::default().run_dir)
}

fn proxy(ctx: &Ctx, args: &ProxyArgs) -> Result<(), String> {
    let run_dir = run_dir();
    let rec = pick_session(&run_dir, ctx.session.as_str(), &ctx.dir)?;
    let addr = resolve(&run_dir, &rec, &args.host)?;
    let router = net::router_netns_path(&run_dir, &rec.sid);
    let ns = File::open(&router).map_err(|e| {
        format!(
            "cannot open the router namespace `{}` of session `{}`: {e}",
            router.display(),
            rec.name
        )
    })?;
    setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| {
        format!(
            "cannot enter the router namespace of session `{}`: {e} (tg proxy needs root)",
            rec.name
        )
    })?;
    let target = SocketAddr::new(IpAddr::V4(addr), args.port);
    let stream = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT).map_err(|e| {
        format!(
            "cannot connect to `{target}` in session `{}`: {e}",
            rec.name
        )
    })?;
    relay(stream).map_err(|e| format!("relay to `{target}` failed: {e}"))
}

/// The running session named `name`; when several testbeds have one, the
/// one whose testbed directory is `dir`.
fn pick_session(run_dir: &Path, name: &str, dir: &Path) -> Result<SessionRecord, String> {
    let mut found = net::find_sessions(run_dir, name);
    if found.len() > 1 {
        let here = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let here_only: Vec<SessionRecord> = found
            .iter()
            .filter(|r| {
                r.testbed_dir
                    .canonicalize()
                    .unwrap_or_else(|_| r.testbed_dir.clone())
                    == here
            })
            .cloned()
            .collect();
        if !here_only.is_empty() {
            found = here_only;
        }
    }
    match found.len() {
        0 => Err(format!(
            "no session `{name}` has networks on this host (looked in `{}`): run `tg apply` first, or pass `-session`",
            run_dir.display()
        )),
        1 => Ok(found.remove(0)),
        _ => Err(format!(
            "several testbeds have a session `{name}` on this host: run `tg proxy` from the testbed's directory or with `-chdir`"
        )),
    }
}

/// `host` as an address: an IPv4 address, or a node's hostname looked up
/// in the session's hosts file.
fn resolve(run_dir: &Path, rec: &SessionRecord, host: &str) -> Result<Ipv4Addr, String> {
    if let Ok(a) = host.parse::<Ipv4Addr>() {
        return Ok(a);
    }
    let hosts = names::session_dir(run_dir, &rec.sid).join("hosts");
    let text = std::fs::read_to_string(&hosts).unwrap_or_default();
    lookup_hosts(&text, host).ok_or_else(|| {
        format!(
            "unknown host `{host}` in session `{}`: give a node's hostname or IPv4 address",
            rec.name
        )
    })
}

/// The first address `host` has in a hosts file's text.
fn lookup_hosts(text: &str, host: &str) -> Option<Ipv4Addr> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let addr = f.next()?.parse::<Ipv4Addr>().ok()?;
            f.any(|n| n == host).then_some(addr)
        })
        .next()
}

/// Copy stdin to the stream and the stream to stdout until the stream's
/// end. stdin's end half-closes the connection; a closed stdout ends it.
fn relay(stream: TcpStream) -> io::Result<()> {
    let mut up = stream.try_clone()?;
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buf = [0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if up.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = up.shutdown(Shutdown::Write);
    });
    let mut down = stream;
    let mut stdout = io::stdout().lock();
    let mut buf = [0u8; 32 * 1024];
    loop {
        let n = match down.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        match stdout.write_all(&buf[..n]).and_then(|_| stdout.flush()) {
            Ok(()) => {}
            // The reader went away (ssh exited): not an error.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(e),
        }
    }
    let _ = down.shutdown(Shutdown::Both);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lookup() {
        let text = "# tg\n10.0.0.2 edge-0 edge-0.lab\n10.1.0.2 edge-0\n10.0.0.3 web # x\n";
        assert_eq!(
            lookup_hosts(text, "edge-0"),
            Some(Ipv4Addr::new(10, 0, 0, 2))
        );
        assert_eq!(lookup_hosts(text, "web"), Some(Ipv4Addr::new(10, 0, 0, 3)));
        assert_eq!(lookup_hosts(text, "x"), None);
        assert_eq!(lookup_hosts(text, "edge"), None);
    }

    #[test]
    fn sessions_are_found_by_name_then_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let write = |sid: &str, name: &str, dir: &Path| {
            let d = tmp.path().join(sid);
            std::fs::create_dir_all(&d).unwrap();
            let rec = SessionRecord {
                name: name.into(),
                lineage: format!("l-{sid}"),
                testbed_dir: dir.to_path_buf(),
                sid: sid.into(),
            };
            std::fs::write(d.join("session.json"), serde_json::to_string(&rec).unwrap()).unwrap();
        };
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        write("00000001", "default", &a);
        write("00000002", "default", &b);
        write("00000003", "pr-1", &a);
        assert_eq!(
            pick_session(tmp.path(), "pr-1", &b).unwrap().sid,
            "00000003"
        );
        assert_eq!(
            pick_session(tmp.path(), "default", &b).unwrap().sid,
            "00000002"
        );
        let e = pick_session(tmp.path(), "nope", &a).unwrap_err();
        assert!(e.contains("no session `nope`"), "{e}");
        let e = pick_session(tmp.path(), "default", tmp.path()).unwrap_err();
        assert!(e.contains("several testbeds"), "{e}");
    }
}
