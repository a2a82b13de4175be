//! What every tg on this host shares: the host lock, the record of the
//! host settings tg changed, and the host's own routes.
//!
//! - The host lock is an `flock` on `<host_dir>/.host.lock`, held for
//!   host-wide work: choosing a NAT transfer network, the host's iptables
//!   rules, the host's sysctls. It works between processes and between
//!   platform instances of one process (each takes its own open file).
//! - `<host_dir>/forwarding.json` records, while any session uses NAT, the
//!   value `net.ipv4.ip_forward` had before tg turned it on and the
//!   sessions using it; the last one to stop puts the value back. A user
//!   whose uplink is gone (a crashed session) no longer counts.
//! - The host's routes (`/proc/net/route` of the host's namespace) let the
//!   plan warn about networks that overlap them.
//!
//! `host_dir` is the same for every tg on the host (`/run/tg` by default,
//! see `NetnsOptions::host_dir`), even when sessions keep their run files
//! elsewhere.
//!
//! Not here: the iptables rules themselves (`nat`).

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{io_err, NetError, NetResult};
use crate::files;

/// The host-wide state of every tg on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    dir: PathBuf,
    /// The host's IPv4 forwarding switch.
    ip_forward: PathBuf,
}

/// The host lock, held until dropped.
#[derive(Debug)]
pub struct HostLock {
    _file: File,
}

/// What `forwarding.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ForwardingRecord {
    /// `net.ipv4.ip_forward` before tg turned it on (`"0"` or `"1"`).
    pub before: String,
    /// The sessions (tags) whose NAT uses it.
    pub users: Vec<String>,
}

impl Host {
    /// The host-wide state under `dir`.
    pub fn new(dir: &Path) -> Host {
        Host {
            dir: dir.to_path_buf(),
            ip_forward: PathBuf::from("/proc/sys/net/ipv4/ip_forward"),
        }
    }

    /// The same, with the forwarding switch at `ip_forward` (for tests).
    pub fn with_ip_forward(dir: &Path, ip_forward: &Path) -> Host {
        Host {
            dir: dir.to_path_buf(),
            ip_forward: ip_forward.to_path_buf(),
        }
    }

    fn record_path(&self) -> PathBuf {
        self.dir.join("forwarding.json")
    }

    /// Wait for the host lock.
    pub fn lock(&self) -> NetResult<HostLock> {
        files::create_dir_all(&self.dir, files::DIR_MODE)
            .map_err(io_err(format!("cannot create `{}`", self.dir.display())))?;
        let path = self.dir.join(".host.lock");
        let file = files::open_for_write(&path, 0o600)
            .map_err(io_err(format!("cannot open `{}`", path.display())))?;
        loop {
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(HostLock { _file: file });
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(NetError::Io {
                    context: format!("cannot lock `{}`", path.display()),
                    source: e,
                });
            }
        }
    }

    /// The forwarding record, if any session uses NAT.
    pub fn forwarding_record(&self) -> NetResult<Option<ForwardingRecord>> {
        let path = self.record_path();
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                NetError::Missing(format!(
                    "`{}` is damaged ({e}): check `net.ipv4.ip_forward`, then remove the file",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(format!("cannot read `{}`", path.display()))(e)),
        }
    }

    fn write_record(&self, record: &ForwardingRecord) -> NetResult<()> {
        let path = self.record_path();
        let text = serde_json::to_string_pretty(record).unwrap_or_default();
        let tmp = self.dir.join(".forwarding.json.new");
        files::write(&tmp, text.as_bytes(), files::FILE_MODE)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(io_err(format!("cannot write `{}`", path.display())))
    }

    fn read_forwarding(&self) -> NetResult<String> {
        fs::read_to_string(&self.ip_forward)
            .map(|s| s.trim().to_string())
            .map_err(io_err(format!(
                "cannot read `{}`",
                self.ip_forward.display()
            )))
    }

    fn write_forwarding(&self, value: &str) -> NetResult<()> {
        fs::write(&self.ip_forward, value).map_err(io_err(format!(
            "cannot write `{value}` to `{}`",
            self.ip_forward.display()
        )))
    }

    /// Session `sid` needs the host to forward IPv4: record it (and, for
    /// the first user, the value found), and turn forwarding on. Returns
    /// whether forwarding was off before tg turned it on (then only tg's
    /// NAT traffic may pass, see `nat`).
    pub fn use_forwarding(&self, _held: &HostLock, sid: &str) -> NetResult<bool> {
        let mut record = match self.forwarding_record()? {
            Some(r) => r,
            None => ForwardingRecord {
                before: self.read_forwarding()?,
                users: Vec::new(),
            },
        };
        if !record.users.iter().any(|u| u == sid) {
            record.users.push(sid.to_string());
            record.users.sort();
        }
        // Recorded before the change, so a crash right after it is undone
        // by the next release.
        self.write_record(&record)?;
        self.write_forwarding("1")?;
        Ok(record.before == "0")
    }

    /// Session `sid` no longer needs forwarding. Users for which `alive`
    /// says no are dropped too. When no user is left, forwarding is put
    /// back as it was and the record removed: returns the value put back.
    pub fn release_forwarding(
        &self,
        _held: &HostLock,
        sid: &str,
        mut alive: impl FnMut(&str) -> bool,
    ) -> NetResult<Option<String>> {
        let Some(mut record) = self.forwarding_record()? else {
            return Ok(None);
        };
        record.users.retain(|u| u != sid && alive(u));
        if !record.users.is_empty() {
            self.write_record(&record)?;
            return Ok(None);
        }
        self.write_forwarding(&record.before)?;
        let path = self.record_path();
        fs::remove_file(&path).map_err(io_err(format!("cannot remove `{}`", path.display())))?;
        Ok(Some(record.before))
    }
}

/// One route of the host's main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub dest: Ipv4Net,
    pub dev: String,
}

/// The routes of the calling thread's namespace (the host's at plan time).
pub fn host_routes() -> Vec<HostRoute> {
    parse_proc_route(&fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default())
}

/// The routes in `/proc/net/route` text (addresses in host byte order).
pub fn parse_proc_route(text: &str) -> Vec<HostRoute> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, dest, mask) = (f.first()?, f.get(1)?, f.get(7)?);
            let dest = u32::from_str_radix(dest, 16).ok()?;
            let mask = u32::from_str_radix(mask, 16).ok()?;
            // The kernel prints its network-order words as native numbers.
            let dest = std::net::Ipv4Addr::from(dest.to_ne_bytes());
            let prefix = u32::from_be_bytes(mask.to_ne_bytes()).leading_ones() as u8;
            Some(HostRoute {
                dest: Ipv4Net::new(dest, prefix).ok()?.trunc(),
                dev: dev.to_string(),
            })
        })
        .collect()
}

/// The host routes `cidr` overlaps, but the default route and tg's own
/// uplinks.
pub fn overlapping<'a>(cidr: &Ipv4Net, routes: &'a [HostRoute]) -> Vec<&'a HostRoute> {
    routes
        .iter()
        .filter(|r| r.dest.prefix_len() > 0 && !r.dev.starts_with("tgu"))
        .filter(|r| r.dest.contains(&cidr.network()) || cidr.contains(&r.dest.network()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> (tempfile::TempDir, Host) {
        let tmp = tempfile::tempdir().unwrap();
        let sw = tmp.path().join("ip_forward");
        fs::write(&sw, "0\n").unwrap();
        let h = Host::with_ip_forward(&tmp.path().join("run"), &sw);
        (tmp, h)
    }

    fn switch(tmp: &tempfile::TempDir) -> String {
        fs::read_to_string(tmp.path().join("ip_forward"))
            .unwrap()
            .trim()
            .to_string()
    }

    #[test]
    fn forwarding_goes_back_when_the_last_user_leaves() {
        let (tmp, h) = host();
        let lock = h.lock().unwrap();
        assert!(h.use_forwarding(&lock, "aaaa").unwrap(), "it was off");
        assert_eq!(switch(&tmp), "1");
        assert!(h.use_forwarding(&lock, "bbbb").unwrap());
        assert!(h.use_forwarding(&lock, "aaaa").unwrap(), "twice is once");
        assert_eq!(
            h.forwarding_record().unwrap().unwrap().users,
            ["aaaa", "bbbb"]
        );
        assert_eq!(h.release_forwarding(&lock, "aaaa", |_| true).unwrap(), None);
        assert_eq!(switch(&tmp), "1", "bbbb still needs it");
        assert_eq!(
            h.release_forwarding(&lock, "bbbb", |_| true).unwrap(),
            Some("0".into())
        );
        assert_eq!(switch(&tmp), "0");
        assert_eq!(h.forwarding_record().unwrap(), None);
        // Releasing again (a second sweep) changes nothing.
        assert_eq!(h.release_forwarding(&lock, "bbbb", |_| true).unwrap(), None);
    }

    #[test]
    fn forwarding_that_was_on_stays_on() {
        let (tmp, h) = host();
        fs::write(tmp.path().join("ip_forward"), "1\n").unwrap();
        let lock = h.lock().unwrap();
        assert!(!h.use_forwarding(&lock, "aaaa").unwrap());
        assert_eq!(
            h.release_forwarding(&lock, "aaaa", |_| true).unwrap(),
            Some("1".into())
        );
        assert_eq!(switch(&tmp), "1");
    }

    #[test]
    fn crashed_users_do_not_keep_forwarding_on() {
        let (tmp, h) = host();
        let lock = h.lock().unwrap();
        h.use_forwarding(&lock, "dead").unwrap();
        h.use_forwarding(&lock, "live").unwrap();
        assert_eq!(
            h.release_forwarding(&lock, "live", |u| u != "dead")
                .unwrap(),
            Some("0".into())
        );
        assert_eq!(switch(&tmp), "0");
    }

    #[test]
    fn a_damaged_record_is_an_error_that_says_what_to_do() {
        let (_tmp, h) = host();
        let lock = h.lock().unwrap();
        fs::write(h.record_path(), "{").unwrap();
        let e = h.use_forwarding(&lock, "aaaa").unwrap_err().to_string();
        assert!(e.contains("damaged") && e.contains("ip_forward"), "{e}");
    }

    #[test]
    fn the_host_lock_excludes_other_holders() {
        let (_tmp, h) = host();
        let held = h.lock().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let h2 = h.clone();
        let t = std::thread::spawn(move || {
            let _l = h2.lock().unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        t.join().unwrap();
    }

    const ROUTES: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
tgu0123\t00007F64\t00000000\t0001\t0\t0\t0\tFCFFFFFF\t0\t0\t0
";

    // `/proc/net/route` prints addresses in the machine's byte order.
    #[cfg(target_endian = "little")]
    #[test]
    fn host_routes_are_read_and_compared() {
        let routes = parse_proc_route(ROUTES);
        assert_eq!(routes.len(), 4);
        assert_eq!(routes[1].dest, "10.0.0.0/16".parse::<Ipv4Net>().unwrap());
        assert_eq!(routes[2].dest, "172.17.0.0/16".parse::<Ipv4Net>().unwrap());
        assert_eq!(routes[3].dest, "100.127.0.0/30".parse::<Ipv4Net>().unwrap());
        let net = |s: &str| s.parse::<Ipv4Net>().unwrap();
        let over = |s: &str| {
            overlapping(&net(s), &routes)
                .iter()
                .map(|r| r.dev.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(over("10.0.3.0/24"), ["eth0"]);
        assert_eq!(over("10.0.0.0/8"), ["eth0"]);
        assert_eq!(over("172.17.5.0/24"), ["docker0"]);
        assert!(over("10.1.0.0/24").is_empty());
        assert!(over("100.127.0.0/24").is_empty(), "tg's own uplinks");
        assert!(parse_proc_route("").is_empty());
        assert!(parse_proc_route("head\nbad line\n").is_empty());
    }
}
