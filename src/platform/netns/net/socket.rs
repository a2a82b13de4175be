//! A NETLINK_ROUTE socket bound to one network namespace, speaking the
//! messages of `codec`.
//!
//! A socket stays bound to the namespace it was made in: [`in_netns`]
//! enters the target namespace on the calling thread only for the work
//! given (the `socket` call, for [`Netlink::open_in`]) and goes back at
//! once; a thread spawned for each entry cost ~50 µs, four times per node.
//! No process is spawned. [`Netlink::batch`] sends many
//! requests in one datagram and reads their answers back by sequence number.
//!
//! Not here: what the requests are for (`links`, `router`, `nat`).

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sched::{setns, CloneFlags};

use super::codec::{self, Failure, LinkSeen, Reply, Request, Rule};
use super::{io_err, nix_err, NetError, NetResult};

/// Run `f` in the network namespace persisted at `ns`: the calling thread
/// enters it, runs `f` and is back in its own namespace when this returns
/// (also when `f` panics). A socket `f` makes stays in `ns`.
pub(crate) fn in_netns<T>(ns: &Path, f: impl FnOnce() -> NetResult<T>) -> NetResult<T> {
    let target =
        File::open(ns).map_err(io_err(format!("cannot open namespace `{}`", ns.display())))?;
    let home = File::open("/proc/thread-self/ns/net")
        .map_err(io_err("cannot open this thread's network namespace"))?;
    setns(target.as_fd(), CloneFlags::CLONE_NEWNET).map_err(nix_err(format!(
        "cannot enter namespace `{}`",
        ns.display()
    )))?;
    let _back = ReturnHome { home, from: ns };
    f()
}

/// Takes the calling thread back to its network namespace when dropped
/// (also when unwinding).
struct ReturnHome<'a> {
    home: File,
    from: &'a Path,
}

impl Drop for ReturnHome<'_> {
    fn drop(&mut self) {
        if let Err(e) = setns(self.home.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Going back to a namespace this thread was in a moment ago
            // cannot fail but for want of kernel memory; a thread left in
            // a node's namespace would open every later socket there, so
            // the process stops (state is safe against a kill at any
            // point; the next run resumes).
            eprintln!(
                "tg: fatal: cannot return from network namespace `{}`: {e}",
                self.from.display()
            );
            std::process::abort();
        }
    }
}

/// Most requests [`Netlink::batch`] sends in one datagram.
const BATCH_MAX: usize = 128;

/// A NETLINK_ROUTE socket, bound to the namespace it was opened in.
pub struct Netlink {
    socket: Socket,
    seq: u32,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> NetResult<Netlink> {
        let socket = Socket::new(NETLINK_ROUTE).map_err(io_err("cannot open a netlink socket"))?;
        // Failure only means less detailed errors.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        Ok(Netlink {
            socket,
            seq: 0,
            out: Vec::with_capacity(512),
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// A socket in the network namespace persisted at `ns` (see
    /// [`in_netns`]: the calling thread is back in its own namespace when
    /// this returns).
    pub fn open_in(ns: &Path) -> NetResult<Netlink> {
        in_netns(ns, Netlink::open)
    }

    /// Send `requests` in one datagram; their sequence numbers, in order.
    fn send(&mut self, requests: &[Request]) -> NetResult<Vec<u32>> {
        self.out.clear();
        let mut seqs = Vec::with_capacity(requests.len());
        for r in requests {
            self.seq = self.seq.wrapping_add(1);
            r.encode(self.seq, &mut self.out);
            seqs.push(self.seq);
        }
        self.socket
            .send_to(&self.out, &SocketAddr::new(0, 0), 0)
            .map_err(io_err("cannot send a netlink request"))?;
        Ok(seqs)
    }

    /// Read datagrams and hand every reply to `take` until it returns true.
    fn receive(&mut self, op: &str, mut take: impl FnMut(Reply) -> bool) -> NetResult<()> {
        loop {
            self.buf.clear();
            // Replies of the kernel fit in 64 KiB (dump parts are at most
            // 32 KiB, ACKs are capped); `MSG_TRUNC` tells if one did not.
            let n = match self.socket.recv(&mut self.buf, libc::MSG_TRUNC) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(NetError::Io {
                        context: format!("{op}: cannot read the netlink reply"),
                        source: e,
                    })
                }
            };
            if n > self.buf.len() {
                return Err(NetError::Netlink {
                    op: op.to_string(),
                    errno: libc::EMSGSIZE,
                    message: format!("a reply of {n} bytes did not fit the buffer"),
                });
            }
            let replies = codec::decode(&self.buf).map_err(|m| NetError::Netlink {
                op: op.to_string(),
                errno: libc::EBADMSG,
                message: m,
            })?;
            for r in replies {
                if take(r) {
                    return Ok(());
                }
            }
        }
    }

    /// Send one request; its answers (the messages of a dump or a `GET`).
    pub fn request(
        &mut self,
        request: Request,
        op: &str,
    ) -> NetResult<Vec<netlink_packet_route::RouteNetlinkMessage>> {
        let seq = self.send(std::slice::from_ref(&request))?[0];
        // An acknowledged request ends with its ACK, after any message.
        let acked = request.flags & netlink_packet_core::NLM_F_ACK != 0;
        let mut messages = Vec::new();
        let mut outcome = Ok(());
        self.receive(op, |r| match r {
            Reply::Message { seq: s, .. } if s != seq => false,
            Reply::Done { seq: s, .. } if s != seq => false,
            Reply::Message { message, last, .. } => {
                messages.push(message);
                last && !acked
            }
            Reply::Done { result, .. } => {
                outcome = result;
                true
            }
        })?;
        outcome.map_err(|f| failed(op, f))?;
        Ok(messages)
    }

    /// Send `requests` (each answered by an ACK) in one datagram; the
    /// outcome of each, in order.
    pub fn batch(&mut self, requests: &[Request], op: &str) -> NetResult<Vec<NetResult<()>>> {
        let mut all = Vec::with_capacity(requests.len());
        // The ACKs of one datagram queue up in the socket's receive buffer
        // (208 KiB by default): a few hundred at most before some are lost.
        for chunk in requests.chunks(BATCH_MAX) {
            all.extend(self.batch_one(chunk, op)?);
        }
        Ok(all)
    }

    fn batch_one(&mut self, requests: &[Request], op: &str) -> NetResult<Vec<NetResult<()>>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let seqs = self.send(requests)?;
        let first = seqs[0];
        let mut results: Vec<Option<NetResult<()>>> = (0..seqs.len()).map(|_| None).collect();
        let mut left = seqs.len();
        self.receive(op, |r| {
            if let Reply::Done { seq, result } = r {
                let i = seq.wrapping_sub(first) as usize;
                if let Some(slot @ None) = results.get_mut(i) {
                    *slot = Some(result.map_err(|f| failed(op, f)));
                    left -= 1;
                }
            }
            left == 0
        })?;
        Ok(results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect())
    }

    fn ack(&mut self, request: Request, op: &str) -> NetResult<()> {
        self.request(request, op).map(|_| ())
    }

    /// Link `name`, or `None` when there is none.
    pub fn link(&mut self, name: &str) -> NetResult<Option<LinkSeen>> {
        match self.request(
            codec::get_link(name),
            &format!("cannot look up link `{name}`"),
        ) {
            Ok(replies) => Ok(codec::links(&replies).into_iter().next()),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of link `name`, or `None` when there is none.
    pub fn link_index(&mut self, name: &str) -> NetResult<Option<u32>> {
        Ok(self.link(name)?.map(|l| l.index))
    }

    /// Link `index`, or `None` when there is none.
    pub fn link_by_index(&mut self, index: u32) -> NetResult<Option<LinkSeen>> {
        match self.request(codec::get_link_by_index(index), "cannot look up a link") {
            Ok(replies) => Ok(codec::links(&replies).into_iter().next()),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Is link `index`'s operational state `up`?
    pub fn is_oper_up(&mut self, index: u32) -> NetResult<bool> {
        let replies = self.request(
            codec::get_link_by_index(index),
            "cannot read a link's state",
        )?;
        Ok(codec::links(&replies).iter().any(|l| l.oper_up))
    }

    /// Every link.
    pub fn links(&mut self) -> NetResult<Vec<LinkSeen>> {
        let replies = self.request(codec::dump_links(), "cannot list links")?;
        Ok(codec::links(&replies))
    }

    /// The names of all links.
    pub fn link_names(&mut self) -> NetResult<Vec<String>> {
        Ok(self.links()?.into_iter().map(|l| l.name).collect())
    }

    /// The kind of link `index`'s root qdisc; `None` when it has none the
    /// kernel shows. The kernel sends the qdisc of a `GET` only to a
    /// requester that asks for an echo (it is a notification of the `tc`
    /// group), and nothing for a link whose root is its built-in default
    /// (a veth's `noqueue`): the request asks for an ACK too, so the answer
    /// always ends. Some versions answer `EINVAL` or `ENOENT` for a link
    /// without one.
    pub fn root_qdisc_kind(&mut self, index: u32) -> NetResult<Option<String>> {
        match self.request(codec::get_root_qdisc(index), "cannot read a link's qdisc") {
            Ok(replies) => Ok(codec::root_qdisc_kinds(&replies)
                .into_iter()
                .next()
                .map(|(_, kind)| kind)),
            Err(e) if matches!(e.errno(), Some(libc::EINVAL | libc::ENOENT)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The IPv4 addresses of link `index` (of every link when `None`).
    pub fn addresses(&mut self, index: Option<u32>) -> NetResult<Vec<(Ipv4Addr, u8)>> {
        let replies = self.request(codec::dump_addresses(), "cannot list addresses")?;
        Ok(codec::addresses(&replies)
            .into_iter()
            .filter(|(i, _, _)| index.is_none_or(|want| want == *i))
            .map(|(_, a, p)| (a, p))
            .collect())
    }

    pub fn set_up(&mut self, index: u32, name: &str) -> NetResult<()> {
        self.ack(codec::set_up(index), &format!("cannot bring `{name}` up"))
    }

    pub fn set_up_by_name(&mut self, name: &str) -> NetResult<()> {
        self.ack(
            codec::set_up_by_name(name),
            &format!("cannot bring `{name}` up"),
        )
    }

    pub fn create_bridge(&mut self, name: &str) -> NetResult<()> {
        self.ack(
            codec::new_bridge(name),
            &format!("cannot make bridge `{name}`"),
        )
    }

    /// A veth pair: `name` here, port of bridge `master`, up; its peer
    /// `peer_name` made directly in the namespace `peer_ns` (this one when
    /// `None`), down.
    pub fn create_veth(
        &mut self,
        name: &str,
        master: Option<u32>,
        peer_name: &str,
        peer_ns: Option<&File>,
    ) -> NetResult<()> {
        self.ack(
            codec::new_veth(name, master, peer_name, peer_ns.map(|f| f.as_raw_fd())),
            &format!("cannot make veth `{name}`"),
        )
    }

    /// Delete link `name`; a missing link is fine.
    pub fn delete_link(&mut self, name: &str) -> NetResult<()> {
        match self.ack(
            codec::del_link(name),
            &format!("cannot delete link `{name}`"),
        ) {
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }

    /// Delete links `names` in one batch; missing ones are fine.
    pub fn delete_links(&mut self, names: &[String]) -> NetResult<()> {
        let requests: Vec<Request> = names.iter().map(|n| codec::del_link(n)).collect();
        for r in self.batch(&requests, "cannot delete a link")? {
            match r {
                Err(e) if e.errno() == Some(libc::ENODEV) => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// Make link `index` a port of bridge `master`, up.
    pub fn enslave(&mut self, index: u32, master: u32) -> NetResult<()> {
        self.ack(
            codec::enslave(index, master),
            "cannot add a port to a bridge",
        )
    }

    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix_len: u8) -> NetResult<()> {
        self.ack(
            codec::new_address(index, addr, prefix_len),
            &format!("cannot add address `{addr}/{prefix_len}`"),
        )
    }

    /// Add (`add`) or delete an IPv4 policy rule. Adding an existing rule
    /// and deleting a missing one succeed.
    pub fn rule(&mut self, add: bool, rule: &Rule) -> NetResult<()> {
        match self.ack(
            codec::rule(add, rule),
            &format!("cannot change policy rule {}", rule.priority),
        ) {
            Err(e)
                if (add && e.errno() == Some(libc::EEXIST))
                    || (!add && e.errno() == Some(libc::ENOENT)) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    pub fn add_default_route(&mut self, index: u32, gateway: Ipv4Addr) -> NetResult<()> {
        self.ack(
            codec::default_route(index, gateway),
            &format!("cannot add the default route via `{gateway}`"),
        )
    }
}

fn failed(op: &str, f: Failure) -> NetError {
    NetError::Netlink {
        op: op.to_string(),
        errno: f.errno,
        message: f.message(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sched::unshare;

    /// Real netlink in a throwaway namespace: bridge, address, listing,
    /// a veth into another namespace, a batch.
    #[test]
    fn netlink_round_trip_in_a_private_namespace() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).unwrap();
            let mut nl = Netlink::open().unwrap();
            nl.set_up_by_name("lo").unwrap();
            nl.create_bridge("tgbtest").unwrap();
            let again = nl.create_bridge("tgbtest").unwrap_err();
            assert_eq!(again.errno(), Some(libc::EEXIST), "{again}");
            let idx = nl.link_index("tgbtest").unwrap().unwrap();
            nl.add_address(idx, Ipv4Addr::new(10, 9, 0, 1), 24).unwrap();
            assert_eq!(
                nl.addresses(Some(idx)).unwrap(),
                [(Ipv4Addr::new(10, 9, 0, 1), 24)]
            );
            assert!(nl.link_names().unwrap().contains(&"tgbtest".to_string()));
            let other = std::thread::spawn(|| {
                unshare(CloneFlags::CLONE_NEWNET).unwrap();
                File::open("/proc/thread-self/ns/net").unwrap()
            })
            .join()
            .unwrap();
            nl.create_veth("tgvtest", Some(idx), "eth0", Some(&other))
                .unwrap();
            let v = nl.link("tgvtest").unwrap().unwrap();
            assert_eq!(v.master, Some(idx));
            assert_eq!(v.port_no, Some(1), "the first port of the bridge");
            // The kernel's extended message reaches the error.
            let e = nl
                .create_veth("tgvtest", Some(idx), "eth0", Some(&other))
                .unwrap_err();
            assert_eq!(e.errno(), Some(libc::EEXIST), "{e}");
            // A batch: each request gets its own outcome.
            nl.create_bridge("tgbtest2").unwrap();
            let out = nl
                .batch(
                    &[
                        codec::del_link("tgbtest2"),
                        codec::del_link("nosuchlink"),
                        codec::set_up_by_name("lo"),
                    ],
                    "test",
                )
                .unwrap();
            assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
            assert_eq!(out[1].as_ref().unwrap_err().errno(), Some(libc::ENODEV));
            nl.delete_links(&["tgbtest".into(), "tgbtest".into()])
                .unwrap();
            assert_eq!(nl.link_index("tgbtest").unwrap(), None);
        })
        .join()
        .unwrap();
    }

    /// `open_in` makes its socket in the target namespace and leaves the
    /// calling thread in its own, also when the target is no namespace.
    #[test]
    fn open_in_leaves_the_calling_thread_in_its_namespace() {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "needs root (CI=true)");
            eprintln!("skipped: needs root");
            return;
        }
        let here = || std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        std::thread::spawn(move || {
            // This thread's own namespace: nothing here touches the host's.
            unshare(CloneFlags::CLONE_NEWNET).unwrap();
            let home = here();
            let (tid_tx, tid_rx) = std::sync::mpsc::channel();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            let other = std::thread::spawn(move || {
                unshare(CloneFlags::CLONE_NEWNET).unwrap();
                tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
                let _ = done_rx.recv();
            });
            let tid = tid_rx.recv().unwrap();
            let ns = std::path::PathBuf::from(format!("/proc/self/task/{tid}/ns/net"));
            let mut there = Netlink::open_in(&ns).unwrap();
            assert_eq!(here(), home, "open_in moved the calling thread");
            there.create_bridge("tgbopenin").unwrap();
            assert!(there.link_index("tgbopenin").unwrap().is_some());
            let mut mine = Netlink::open().unwrap();
            assert_eq!(mine.link_index("tgbopenin").unwrap(), None, "made here");
            for not_a_namespace in ["/etc/hostname", "/no/such/namespace"] {
                assert!(Netlink::open_in(Path::new(not_a_namespace)).is_err());
                assert_eq!(here(), home);
            }
            done_tx.send(()).unwrap();
            other.join().unwrap();
        })
        .join()
        .unwrap();
    }
}
