//! The `ssh` platform: a shared pool of existing hosts, leased per session.
//!
//! A `platform "ssh" "NAME"` block lists hosts (`host "H" { address, port,
//! profile, image, labels, cpus, memory }`) and how to reach them (`user`,
//! `identity_file`, `known_hosts`, `insecure_accept_host_key`) and what to
//! run on a host before it goes back to the pool (`reset`). A node placed on
//! the pool is one whole host: planning proposes a free host that fits
//! ([`fit`]) and leases nothing; apply leases every planned host in one
//! transaction of the shared state store before anything changes
//! ([`Platform::prepare`]); deleting the node runs `reset` and frees the
//! lease. Packages are apt packages (an exact version) or `.deb` files
//! uploaded over SFTP; removal purges. Commands run over one SSH
//! connection per host per run ([`conn`]).
//!
//! A network whose nodes are on the pool is a VXLAN segment among their
//! hosts ([`segment`]): its VNI is leased with the hosts; each node's create
//! makes the host's interface; a change of the network's hosts changes the
//! peers on the others.
//!
//! The phases a `-trace` shows: `links` (a node's segment interfaces; the
//! host's first command also opens the connection), `upload` (a `.deb`),
//! `packages`, `reset` and `lease` (a node's delete).
//!
//! Not here: the lease table (`state`), choosing between platforms
//! (`plan::placement`).

mod conn;
mod fit;
mod network;
mod segment;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

pub use self::conn::Target;
use self::conn::{shell_line, Connections, Streams};
use crate::config::model::{PlatformConfig, PoolHost};
use crate::environment::Environment;
use crate::platform::factory::Driver;
use crate::platform::{
    Capability, CreateRequest, CreateResponse, DeleteRequest, Dependency, ExecRequest, ExecStatus,
    NodeSpec, PackageSource, PackageSpec, PlaceRequest, Placement, Platform, PlatformError,
    PlatformResult, PrepareRequest, ReadRequest, ReadResponse, SessionRef, Spec, SshLogin,
    UpdateRequest,
};
use crate::state::StateStore;

/// apt-get on a pool host: no questions, the host's own config files kept,
/// and a wait of up to 5 minutes for the dpkg lock, which another apt (an
/// unattended upgrade, another session's package on a shared host) may hold.
const APT_GET: &str = "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=300";

/// The attributes a pool block takes.
const ATTRIBUTES: &[&str] = &[
    "user",
    "identity_file",
    "identity_passphrase",
    "agent",
    "known_hosts",
    "reset",
    "insecure_accept_host_key",
    "port",
    "max_parallelism",
    "state",
    "reuse_connections",
];

/// Makes `ssh` pool platforms.
#[derive(Debug, Default)]
pub struct SshDriver;

impl Driver for SshDriver {
    fn kind(&self) -> &str {
        "ssh"
    }

    fn build(
        &self,
        block: &PlatformConfig,
        env: &Environment,
    ) -> Result<Arc<dyn Platform>, String> {
        Ok(Arc::new(SshPool::from_block(block, env)?))
    }
}

/// A pool of hosts.
pub struct SshPool {
    name: String,
    hosts: Vec<PoolHost>,
    user: String,
    identity_file: PathBuf,
    /// The passphrase of an encrypted `identity_file`.
    passphrase: Option<String>,
    /// The ssh-agent socket to try first (`agent = true`: the environment's
    /// `SSH_AUTH_SOCK`).
    agent: Option<PathBuf>,
    known_hosts: PathBuf,
    reset: Option<String>,
    insecure: bool,
    /// The port of hosts that name none (`port` on the pool; 22).
    port: u16,
    parallelism: usize,
    leases: OnceLock<Arc<dyn StateStore>>,
    /// The hosts this run's apply leased in [`Platform::prepare`]: a node
    /// deleted from one of them (a replace on the same host) keeps the
    /// lease, since the new node needs it.
    kept: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// The VNI [`Platform::prepare`] leased for each network this run
    /// creates, by the network's name.
    vnis: std::sync::Mutex<std::collections::BTreeMap<String, u32>>,
    conns: Arc<Connections>,
}

fn string_attr(block: &PlatformConfig, name: &str) -> Result<Option<String>, String> {
    match block.attributes.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("`{name}` must be a string, found {v}")),
    }
}

fn path_attr(
    block: &PlatformConfig,
    name: &str,
    default: &str,
    env: &Environment,
) -> Result<PathBuf, String> {
    let raw = string_attr(block, name)?.unwrap_or_else(|| default.to_string());
    let path = match raw.strip_prefix("~/") {
        Some(rest) => match env.home() {
            Some(h) => h.join(rest),
            None => return Err(format!("`{name}` starts with `~/` but HOME is not set")),
        },
        None => PathBuf::from(&raw),
    };
    Ok(env.resolve(&path))
}

impl SshPool {
    /// The pool of one block; the error says what is wrong with it.
    pub fn from_block(block: &PlatformConfig, env: &Environment) -> Result<SshPool, String> {
        if let Some(k) = block
            .attributes
            .keys()
            .find(|k| !ATTRIBUTES.contains(&k.as_str()))
        {
            let hint = crate::diagnostics::did_you_mean(k, ATTRIBUTES.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("a pool takes {}", ATTRIBUTES.join(", ")));
            return Err(format!("unknown attribute `{k}`: {hint}"));
        }
        let flag = |name: &str, default: bool| match block.attributes.get(name) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(serde_json::Value::Bool(b)) => Ok(*b),
            Some(v) => Err(format!("`{name}` must be true or false, found {v}")),
        };
        let insecure = flag("insecure_accept_host_key", false)?;
        let agent = match flag("agent", false)? {
            false => None,
            true => match env.non_empty("SSH_AUTH_SOCK") {
                Some(sock) => Some(PathBuf::from(sock)),
                None => {
                    return Err("`agent = true` but `SSH_AUTH_SOCK` is not set: start an agent (`eval $(ssh-agent)`, `ssh-add KEY`), or authenticate with `identity_file` alone".into())
                }
            },
        };
        let reuse = flag("reuse_connections", true)?;
        let number = |name: &str, max: u64| -> Result<Option<u64>, String> {
            match block.attributes.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => match v.as_u64().filter(|n| (1..=max).contains(n)) {
                    Some(n) => Ok(Some(n)),
                    None => Err(format!(
                        "`{name}` must be a number from 1 to {max}, found {v}"
                    )),
                },
            }
        };
        // Where the leases live (opened by `ops`); only checked here.
        if let Some(url) = string_attr(block, "state")? {
            if url.trim().is_empty() {
                return Err("`state` is empty: give a `postgres://` URL or a SQLite file path, or leave it out to keep the leases in the testbed's own store".into());
            }
        }
        let port = number("port", 65535)?.unwrap_or(22) as u16;
        let parallelism = number("max_parallelism", 1024)?.unwrap_or(0) as usize;
        let mut seen = std::collections::BTreeSet::new();
        for h in &block.hosts {
            if h.address.is_empty() {
                return Err(format!("host `{}` has no `address`", h.name));
            }
            if !seen.insert(format!("{}:{}", h.address, h.port.unwrap_or(port))) {
                return Err(format!(
                    "host `{}`: another host of the pool has the address {}:{}",
                    h.name,
                    h.address,
                    h.port.unwrap_or(port)
                ));
            }
        }
        Ok(SshPool {
            name: block.name.clone(),
            hosts: block.hosts.clone(),
            user: string_attr(block, "user")?.unwrap_or_else(|| "root".into()),
            identity_file: path_attr(block, "identity_file", "~/.ssh/id_ed25519", env)?,
            passphrase: string_attr(block, "identity_passphrase")?,
            agent,
            known_hosts: path_attr(block, "known_hosts", "~/.ssh/known_hosts", env)?,
            reset: string_attr(block, "reset")?,
            insecure,
            port,
            parallelism,
            leases: OnceLock::new(),
            kept: Default::default(),
            vnis: Default::default(),
            conns: Arc::new(Connections::new(reuse)),
        })
    }

    /// The SSH connections of this pool (tests and the benchmark count them).
    pub fn connections(&self) -> &Connections {
        &self.conns
    }

    fn target(&self, h: &PoolHost) -> Target {
        Target {
            name: h.name.clone(),
            address: h.address.clone(),
            port: h.port.unwrap_or(self.port),
            user: h.user.clone().unwrap_or_else(|| self.user.clone()),
            identity_file: self.identity_file.clone(),
            passphrase: self.passphrase.clone(),
            agent: self.agent.clone(),
            known_hosts: self.known_hosts.clone(),
            insecure: self.insecure,
        }
    }

    fn host(&self, name: &str) -> PlatformResult<Target> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .map(|h| self.target(h))
            .ok_or_else(|| {
                PlatformError::new(format!(
                    "pool `{}` has no host `{name}` any more: put it back in the pool block, or `tg state rm` what was on it",
                    self.name
                ))
            })
    }

    fn store(&self) -> PlatformResult<Arc<dyn StateStore>> {
        self.leases.get().cloned().ok_or_else(|| {
            PlatformError::new(format!(
                "pool `{}` has no state store to keep its leases in",
                self.name
            ))
        })
    }

    /// Run `op` with `store` off the async threads.
    async fn on_store<T: Send + 'static>(
        &self,
        op: impl FnOnce(&dyn StateStore) -> crate::state::StateResult<T> + Send + 'static,
    ) -> PlatformResult<T> {
        let store = self.store()?;
        tokio::task::spawn_blocking(move || op(store.as_ref()))
            .await
            .map_err(|e| PlatformError::new(format!("the lease store call stopped: {e}")))?
            .map_err(|e| PlatformError::new(format!("pool leases: {e}")))
    }

    /// Run a shell command line on `t`, collected. Blocking work on the
    /// blocking pool.
    async fn run(&self, t: Target, line: String) -> PlatformResult<(i32, String, String)> {
        let conns = self.conns.clone();
        tokio::task::spawn_blocking(move || conns.with(&t, |s| conn::run_collected(s, &t, &line)))
            .await
            .map_err(|e| PlatformError::new(format!("the SSH call stopped: {e}")))?
    }

    /// Run `line` and fail with its output when it exits non-zero.
    async fn must(&self, t: Target, what: &str, line: String) -> PlatformResult<String> {
        let name = t.name.clone();
        let (code, out, err) = self.run(t, line).await?;
        if code != 0 {
            return Err(PlatformError::new(format!(
                "{what} on pool host `{name}` failed (exit code {code})"
            ))
            .with_detail(if err.trim().is_empty() { out } else { err }));
        }
        Ok(out)
    }

    /// The host of the node a package goes on.
    fn package_host(
        &self,
        pkg: &PackageSpec,
        private: &serde_json::Value,
        deps: &std::collections::BTreeMap<String, Dependency>,
    ) -> PlatformResult<Target> {
        if let Some(h) = private.get("host").and_then(|v| v.as_str()) {
            return self.host(h);
        }
        let host = deps.values().find_map(|d| match &d.spec {
            Spec::Node(n) if n.hostname == pkg.node => n.host.clone(),
            _ => None,
        });
        match host {
            Some(h) => self.host(&h),
            None => Err(PlatformError::new(format!(
                "package `{}`: its node `{}` is on no host of pool `{}`",
                pkg.name, pkg.node, self.name
            ))),
        }
    }

    fn node_host(&self, spec: &NodeSpec) -> PlatformResult<Target> {
        match &spec.host {
            Some(h) => self.host(h),
            None => Err(PlatformError::new(format!(
                "node `{}` was placed on no host of pool `{}`: plan again",
                spec.hostname, self.name
            ))),
        }
    }

    async fn install(
        &self,
        t: Target,
        session: &SessionRef,
        pkg: &PackageSpec,
        trace: &crate::platform::trace::OpTrace,
    ) -> PlatformResult<()> {
        let apt = APT_GET;
        match &pkg.source {
            PackageSource::Apt => {
                let want = match &pkg.version {
                    Some(v) => format!("{}={v}", pkg.name),
                    None => pkg.name.clone(),
                };
                let line = format!("{apt} --allow-downgrades install {}", shell_line(&[want]));
                let _p = trace.phase("packages");
                self.must(t, &format!("installing `{}`", pkg.name), line)
                    .await?;
            }
            PackageSource::Deb { path } => {
                let path = if path.is_absolute() {
                    path.clone()
                } else {
                    session.testbed_dir.join(path)
                };
                let lineage: String = session.lineage.chars().take(8).collect();
                let remote = format!("/tmp/tg-{lineage}-{}.deb", pkg.name);
                let (conns, up, r) = (self.conns.clone(), t.clone(), remote.clone());
                let uploading = trace.phase("upload");
                tokio::task::spawn_blocking(move || {
                    conns.with(&up, |s| conn::upload(s, &up, &path, &r))
                })
                .await
                .map_err(|e| PlatformError::new(format!("the upload stopped: {e}")))??;
                drop(uploading);
                let q = shell_line(std::slice::from_ref(&remote));
                let line = format!("{apt} install {q}; rc=$?; rm -f {q}; exit $rc");
                let _p = trace.phase("packages");
                self.must(t, &format!("installing `{}` from its .deb", pkg.name), line)
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Platform for SshPool {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "ssh"
    }

    fn describe(&self) -> String {
        format!(
            "a pool of {} existing host(s) reached over SSH as `{}`",
            self.hosts.len(),
            self.user
        )
    }

    fn max_parallelism(&self) -> usize {
        match self.parallelism {
            0 => self.hosts.len().clamp(1, 32),
            n => n,
        }
    }

    fn use_store(&self, store: Arc<dyn StateStore>) {
        let _ = self.leases.set(store);
    }

    fn ssh_login(&self, spec: &NodeSpec) -> Option<SshLogin> {
        let t = self.host(spec.host.as_deref()?).ok()?;
        Some(SshLogin {
            address: t.address,
            port: t.port,
            user: t.user,
            identity_file: t.identity_file,
            known_hosts: t.known_hosts,
            insecure: t.insecure,
        })
    }

    fn check_node(&self, spec: &NodeSpec) -> Capability {
        let mut warnings = Vec::new();
        if self.insecure {
            warnings.push(format!(
                "pool `{}` accepts any host key (`insecure_accept_host_key = true`): a machine in the middle is not noticed",
                self.name
            ));
        }
        if spec.settings.privileged {
            warnings.push("a pool host is a whole machine: `privileged` changes nothing".into());
        }
        if spec.settings.pids.is_some() {
            warnings.push("`pids` is not enforced on pool hosts".into());
        }
        if !spec.settings.wait_for.is_empty() {
            warnings.push(
                "`wait_for` checks are not run on pool hosts yet: the node counts as created when it is reachable".into(),
            );
        }
        if spec.interfaces.iter().any(|i| !i.impair.is_none()) {
            return Capability {
                refused: Some(
                    "impairments are not applied on pool segments yet: drop the `impair` block, or use the netns platform".into(),
                ),
                warnings,
            };
        }
        if self.hosts.is_empty() {
            return Capability {
                refused: Some("the pool has no hosts".into()),
                warnings,
            };
        }
        let reasons: Vec<String> = self
            .hosts
            .iter()
            .filter_map(|h| fit::misfit(h, spec).map(|r| format!("host `{}`: {r}", h.name)))
            .collect();
        Capability {
            refused: (reasons.len() == self.hosts.len()).then(|| reasons.join("; ")),
            warnings,
        }
    }

    fn check_spec(&self, spec: &Spec) -> Vec<String> {
        match spec {
            Spec::Network(n) if n.nat => vec![
                "a pool segment has no NAT: the hosts keep their own way out; drop `nat`".into(),
            ],
            _ => Vec::new(),
        }
    }

    async fn place(&self, req: PlaceRequest) -> PlatformResult<Vec<Placement>> {
        let rows = self.on_store(|s| s.leases()).await?;
        Ok(fit::place(
            &self.hosts,
            |h| self.target(h).key(),
            &rows,
            &req.session.lineage,
            &req.nodes,
        ))
    }

    async fn prepare(&self, req: PrepareRequest) -> PlatformResult<()> {
        let mut keys = Vec::new();
        for c in &req.changes {
            if c.action == "delete" {
                continue;
            }
            if let Some(Spec::Node(n)) = &c.after {
                keys.push(self.node_host(n)?.key());
            }
        }
        let refused = self.take_with_vnis(&req, keys.clone()).await?;
        if refused.is_empty() {
            self.kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(keys);
            Ok(())
        } else {
            Err(PlatformError::new(
                "hosts planned for this session were taken since the plan; nothing was changed, run `tg plan` again",
            )
            .with_detail(refused.join("\n")))
        }
    }

    async fn create(&self, req: CreateRequest) -> PlatformResult<CreateResponse> {
        match &req.spec {
            Spec::Node(n) => {
                let t = self.node_host(n)?;
                let host = t.name.clone();
                let links = self.links(n, &req.deps)?;
                // The host's first command also opens the connection.
                let links = {
                    let _p = req.trace.phase("links");
                    self.make_links(t, &links).await?
                };
                Ok(CreateResponse {
                    private: serde_json::json!({ "host": host, "links": links }),
                })
            }
            Spec::Package(p) => {
                let t = self.package_host(p, &serde_json::Value::Null, &req.deps)?;
                let host = t.name.clone();
                self.install(t, &req.session, p, &req.trace).await?;
                Ok(CreateResponse {
                    private: serde_json::json!({ "host": host }),
                })
            }
            // The hosts' interfaces come with their nodes.
            Spec::Network(n) => Ok(CreateResponse {
                private: serde_json::json!({ "vni": self.leased_vni(&n.name)? }),
            }),
        }
    }

    async fn read(&self, req: ReadRequest) -> PlatformResult<ReadResponse> {
        match &req.spec {
            Spec::Node(n) => {
                let t = self.node_host(n)?;
                match self.run(t.clone(), "true".into()).await {
                    Ok((0, _, _)) => match self.read_links(t, n, &req.private).await? {
                        None => Ok(ReadResponse::Present {
                            spec: req.spec.clone(),
                        }),
                        Some(now) => Ok(ReadResponse::Present {
                            spec: Spec::Node(now),
                        }),
                    },
                    Ok(_) => Ok(ReadResponse::Gone),
                    Err(e) if e.kind == crate::platform::ErrorKind::Retryable => {
                        Ok(ReadResponse::Gone)
                    }
                    Err(e) => Err(e),
                }
            }
            Spec::Package(p) => {
                // A create that failed recorded no host: nothing is known
                // to be there (the record is tainted and replaced).
                if req.private.get("host").is_none() {
                    return Ok(ReadResponse::Gone);
                }
                let t = self.package_host(p, &req.private, &Default::default())?;
                let q = shell_line(std::slice::from_ref(&p.name));
                let line = format!("dpkg-query -W -f='${{db:Status-Status}} ${{Version}}' {q}");
                let (code, out, _) = self.run(t, line).await?;
                let mut parts = out.split_whitespace();
                match (code, parts.next(), parts.next()) {
                    (0, Some("installed"), Some(v)) => {
                        let mut now = p.clone();
                        if now.version.is_some() {
                            now.version = Some(v.to_string());
                        }
                        Ok(ReadResponse::Present {
                            spec: Spec::Package(now),
                        })
                    }
                    _ => Ok(ReadResponse::Gone),
                }
            }
            Spec::Network(_) => match network::vni_in(&req.private) {
                Some(_) => Ok(ReadResponse::Present {
                    spec: req.spec.clone(),
                }),
                None => Ok(ReadResponse::Gone),
            },
        }
    }

    fn updatable(&self, kind: crate::addrs::ResourceKind) -> &'static [&'static str] {
        match kind {
            crate::addrs::ResourceKind::Network => &["hosts"],
            crate::addrs::ResourceKind::Node => &["interfaces"],
            crate::addrs::ResourceKind::Package => &[],
        }
    }

    async fn update(&self, req: UpdateRequest) -> PlatformResult<CreateResponse> {
        match (&req.before, &req.after) {
            (Spec::Network(before), Spec::Network(after)) => {
                self.change_peers(before, after, &req.private).await?;
                Ok(CreateResponse {
                    private: req.private.clone(),
                })
            }
            (Spec::Node(_), Spec::Node(after)) => {
                // The segment interfaces, made again as the node has them now.
                let t = self.node_host(after)?;
                let host = t.name.clone();
                let _p = req.trace.phase("links");
                self.remove_links(t.clone(), &req.private).await?;
                let links = self.links(after, &req.deps)?;
                let links = self.make_links(t, &links).await?;
                Ok(CreateResponse {
                    private: serde_json::json!({ "host": host, "links": links }),
                })
            }
            _ => Err(PlatformError::new(format!(
                "`{}` cannot change in place on a pool",
                req.address
            ))),
        }
    }

    async fn delete(&self, req: DeleteRequest) -> PlatformResult<()> {
        match &req.spec {
            Spec::Node(n) => {
                let t = self.node_host(n)?;
                let key = t.key();
                // Every segment interface of the host, recorded or not: an
                // apply killed mid-create leaves a record without them, and
                // the host is this session's alone.
                let unlinking = req.trace.phase("links");
                self.must(
                    t.clone(),
                    "removing segment interfaces",
                    segment::locked(&segment::sweep_line()),
                )
                .await?;
                drop(unlinking);
                if let Some(reset) = &self.reset {
                    let _p = req.trace.phase("reset");
                    self.must(t, "the pool's `reset`", reset.clone()).await?;
                }
                let kept = self
                    .kept
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .contains(&key);
                if kept {
                    // Replaced on the same host: the new node needs the
                    // lease; releasing it here would free the host under it.
                    return Ok(());
                }
                let lineage = req.session.lineage.clone();
                let _p = req.trace.phase("lease");
                self.on_store(move |s| s.release_leases(&lineage, &[key]))
                    .await
            }
            Spec::Package(p) => {
                let t = self.package_host(p, &req.private, &req.deps)?;
                let q = shell_line(std::slice::from_ref(&p.name));
                let line =
                    format!("if dpkg-query -W {q} >/dev/null 2>&1; then {APT_GET} purge {q}; fi");
                let _p = req.trace.phase("packages");
                self.must(t, &format!("purging `{}`", p.name), line)
                    .await
                    .map(|_| ())
            }
            Spec::Network(_) => match network::vni_in(&req.private) {
                Some(vni) => {
                    let (lineage, key) = (req.session.lineage.clone(), segment::lease_key(vni));
                    self.on_store(move |s| s.release_leases(&lineage, &[key]))
                        .await
                }
                None => Ok(()),
            },
        }
    }

    /// Every host of this pool leased by the session: reset and released.
    async fn sweep(&self, session: &SessionRef) -> PlatformResult<Vec<String>> {
        let rows = self.on_store(|s| s.leases()).await?;
        let mut done = Vec::new();
        for h in &self.hosts {
            let t = self.target(h);
            let key = t.key();
            if !rows
                .iter()
                .any(|r| r.host == key && r.held_by(&session.lineage))
            {
                continue;
            }
            self.must(
                t.clone(),
                "removing segment interfaces",
                segment::locked(&segment::sweep_line()),
            )
            .await?;
            if let Some(reset) = &self.reset {
                self.must(t, "the pool's `reset`", reset.clone()).await?;
            }
            let (lineage, k) = (session.lineage.clone(), key.clone());
            self.on_store(move |s| s.release_leases(&lineage, &[k]))
                .await?;
            done.push(format!("released pool host `{}` ({key})", h.name));
        }
        let vnis: Vec<String> = rows
            .iter()
            .filter(|r| r.held_by(&session.lineage) && segment::vni_of_key(&r.host).is_some())
            .map(|r| r.host.clone())
            .collect();
        if !vnis.is_empty() {
            let lineage = session.lineage.clone();
            let keys = vnis.clone();
            self.on_store(move |s| s.release_leases(&lineage, &keys))
                .await?;
            done.extend(vnis.iter().map(|k| format!("released segment `{k}`")));
        }
        Ok(done)
    }

    async fn exec(&self, req: ExecRequest) -> PlatformResult<ExecStatus> {
        let t = self.node_host(&req.spec)?;
        let line = shell_line(&req.argv);
        let conns = self.conns.clone();
        let ExecRequest {
            io,
            timeout,
            cancel,
            tty,
            ..
        } = req;
        tokio::task::spawn_blocking(move || {
            let streams = Streams {
                stdout: io.stdout,
                stderr: io.stderr,
                stdin: io.stdin,
                signals: io.signals,
                tty,
            };
            conns.with(&t, |s| conn::run(s, &t, &line, streams, timeout, &cancel))
        })
        .await
        .map_err(|e| PlatformError::new(format!("the SSH call stopped: {e}")))?
    }
}
