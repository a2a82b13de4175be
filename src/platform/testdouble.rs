//! The test-double platform: a fake driver for testing tg itself.
//!
//! **A testing aid only, never offered to users.** The library never
//! registers it: a caller adds [`TestDoubleDriver`] to its factory. The
//! `tg` binary does so (as platform `double`) only when the environment
//! variable `TG_TESTDOUBLE_DIR` names a directory, for tg's own tests and
//! benchmarks; it appears in no help text.
//!
//! `exec` understands a few commands: `cat` copies stdin to stdout, `sleep
//! SECONDS` waits (and honours cancellation), `false` exits 1, `exit N`
//! exits N, `bytes` writes `\xff\r\n` without a trailing newline;
//! anything else prints `HOSTNAME: ARGV`.
//!
//! It makes nothing real. Its "objects" live in that directory, one JSON
//! file per object (`objects/LINEAGE/ADDRESS.json`, written atomically), so several `tg`
//! processes in a row, even one killed mid-apply, see the same world. Tests
//! steer it with an optional `config.json` there, re-read on every call:
//!
//! ```json
//! { "fail":  { "node.edge[1]": { "on": "create", "message": "boom", "after_create": true } },
//!   "delay_ms": { "node.edge": 300, "*": 10 },
//!   "max_parallelism": 3,
//!   "refuse_images": ["windows"],
//!   "warn_images": ["slow"] }
//! ```
//!
//! Keys are instance or resource addresses (or `*`). Every call is appended
//! to `calls.jsonl` (`{"op","address","event":"start"|"end","in_flight"}`)
//! so tests can check order and concurrency; `sync-SESSION.json` (`/` as `%2F`) records the
//! last `sync_session`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::factory::Driver;
use super::{
    Capability, CreateRequest, CreateResponse, DeleteRequest, ExecRequest, ExecStatus, NodeSpec,
    Platform, PlatformError, PlatformResult, ReadRequest, ReadResponse, SessionRef, SessionSync,
    Spec, UpdateRequest,
};
use crate::addrs::{InstanceAddr, ResourceKind};
use crate::config::model::PlatformConfig;
use crate::environment::Environment;

/// The environment variable that enables the test double.
pub const ENV_DIR: &str = "TG_TESTDOUBLE_DIR";

/// One injected failure.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Failure {
    /// `create`, `update`, `delete`, `read`, `exec` or `any`.
    pub on: String,
    #[serde(default)]
    pub message: Option<String>,
    /// For `create`: make the object, then fail (a half-made instance).
    #[serde(default)]
    pub after_create: bool,
}

/// The steering file `config.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DoubleConfig {
    #[serde(default)]
    pub fail: BTreeMap<String, Failure>,
    #[serde(default)]
    pub delay_ms: BTreeMap<String, u64>,
    #[serde(default)]
    pub max_parallelism: Option<usize>,
    #[serde(default)]
    pub refuse_images: Vec<String>,
    #[serde(default)]
    pub warn_images: Vec<String>,
}

/// One fake object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FakeObject {
    pub session: String,
    pub address: String,
    pub spec: Spec,
}

/// The test-double driver.
#[derive(Debug)]
pub struct TestDouble {
    dir: PathBuf,
    io: Mutex<()>,
    in_flight: AtomicUsize,
}

impl TestDouble {
    /// A double keeping its files in `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> TestDouble {
        let dir = dir.into();
        let _ = std::fs::create_dir_all(&dir);
        TestDouble {
            dir,
            io: Mutex::new(()),
            in_flight: AtomicUsize::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn config(&self) -> DoubleConfig {
        std::fs::read(self.dir.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Every fake object, keyed `LINEAGE/ADDRESS`.
    pub fn objects(&self) -> BTreeMap<String, FakeObject> {
        let mut out = BTreeMap::new();
        let Ok(sessions) = std::fs::read_dir(self.dir.join("objects")) else {
            return out;
        };
        for s in sessions.flatten() {
            let lineage = s.file_name().to_string_lossy().into_owned();
            let Ok(files) = std::fs::read_dir(s.path()) else {
                continue;
            };
            for f in files.flatten() {
                if let Some(o) = std::fs::read(f.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<FakeObject>(&b).ok())
                {
                    out.insert(format!("{lineage}/{}", o.address), o);
                }
            }
        }
        out
    }

    fn object_path(&self, lineage: &str, address: &str) -> PathBuf {
        self.dir
            .join("objects")
            .join(lineage)
            .join(format!("{}.json", escape(address)))
    }

    fn get_object(&self, lineage: &str, address: &str) -> Option<FakeObject> {
        std::fs::read(self.object_path(lineage, address))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    fn put_object(&self, lineage: &str, obj: &FakeObject) -> PlatformResult<()> {
        let path = self.object_path(lineage, &obj.address);
        let err =
            |e: std::io::Error| PlatformError::new(format!("double: cannot write objects: {e}"));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        let text = serde_json::to_vec_pretty(obj)
            .map_err(|e| PlatformError::new(format!("double: {e}")))?;
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(err)
    }

    fn remove_object(&self, lineage: &str, address: &str) -> PlatformResult<()> {
        match std::fs::remove_file(self.object_path(lineage, address)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(PlatformError::new(format!("double: cannot delete: {e}"))),
        }
    }

    fn log(&self, op: &str, address: &str, event: &str, in_flight: usize) {
        let _g = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let line = serde_json::json!({
            "op": op, "address": address, "event": event, "in_flight": in_flight,
            "pid": std::process::id(),
        });
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("calls.jsonl"))
        {
            let _ = writeln!(f, "{line}");
        }
    }

    /// Log the start, wait the configured delay, check for an injected failure.
    async fn begin(&self, op: &str, address: &str) -> (DoubleConfig, Option<Failure>) {
        self.begin_cancellable(op, address, &super::Cancel::new())
            .await
            .unwrap_or_default()
    }

    /// Like `begin`; `None` when `cancel` fired during the delay.
    async fn begin_cancellable(
        &self,
        op: &str,
        address: &str,
        cancel: &super::Cancel,
    ) -> Option<(DoubleConfig, Option<Failure>)> {
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.log(op, address, "start", n);
        let cfg = self.config();
        if let Some(ms) = lookup(&cfg.delay_ms, address) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(*ms)) => {}
                _ = cancel.cancelled() => return None,
            }
        }
        let fail = lookup(&cfg.fail, address)
            .filter(|f| f.on == op || f.on == "any")
            .cloned();
        Some((cfg, fail))
    }

    fn end(&self, op: &str, address: &str) {
        let n = self.in_flight.fetch_sub(1, Ordering::SeqCst) - 1;
        self.log(op, address, "end", n);
    }

    fn key(session: &SessionRef, address: &str) -> String {
        format!("{}/{address}", session.lineage)
    }
}

/// The double's few commands (see the module documentation).
async fn fake_exec(req: &mut ExecRequest) -> PlatformResult<ExecStatus> {
    let argv: Vec<&str> = req.argv.iter().map(String::as_str).collect();
    let out = &req.io.stdout;
    let done = |exit_code| {
        Ok(ExecStatus {
            exit_code,
            timed_out: false,
        })
    };
    match argv.as_slice() {
        ["cat"] => {
            if let Some(stdin) = req.io.stdin.as_mut() {
                loop {
                    tokio::select! {
                        chunk = stdin.recv() => match chunk {
                            Some(c) => { let _ = out.send(c).await; }
                            None => break,
                        },
                        _ = req.cancel.cancelled() => {
                            return Err(PlatformError::cancelled("double: `cat` was cancelled"));
                        }
                    }
                }
            }
            done(0)
        }
        ["sleep", secs] => {
            let secs: f64 = secs.parse().unwrap_or(0.0);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))) => done(0),
                _ = req.cancel.cancelled() => Err(PlatformError::cancelled("double: `sleep` was cancelled")),
                sig = async {
                    match req.io.signals.as_mut() {
                        Some(s) => s.recv().await,
                        None => std::future::pending().await,
                    }
                } => done(128 + sig.unwrap_or(15)),
            }
        }
        ["false"] => done(1),
        ["exit", n] => done(n.parse().unwrap_or(2)),
        ["bytes"] => {
            let _ = out.send(vec![0xff, b'\r', b'\n']).await;
            let _ = req.io.stderr.send(b"err".to_vec()).await;
            done(0)
        }
        _ => {
            let line = format!("{}: {}\n", req.spec.hostname, req.argv.join(" "));
            let _ = out.send(line.into_bytes()).await;
            done(0)
        }
    }
}

/// The test double as a driver: one implicit platform `double` keeping its
/// objects in a directory.
pub struct TestDoubleDriver {
    double: std::sync::Arc<TestDouble>,
}

impl TestDoubleDriver {
    pub fn new(dir: impl Into<PathBuf>) -> TestDoubleDriver {
        TestDoubleDriver {
            double: std::sync::Arc::new(TestDouble::new(dir)),
        }
    }
}

impl Driver for TestDoubleDriver {
    fn kind(&self) -> &str {
        "double"
    }

    fn implicit(&self) -> Option<std::sync::Arc<dyn Platform>> {
        Some(self.double.clone())
    }

    fn build(
        &self,
        _block: &PlatformConfig,
        _env: &Environment,
    ) -> Result<std::sync::Arc<dyn Platform>, String> {
        Err("the test double takes no `platform` block".into())
    }
}

/// The address an object was made under (its private `key`), which
/// stays when `tg state mv` renames the instance.
fn made_as<'a>(private: &'a serde_json::Value, address: &'a str) -> &'a str {
    private
        .get("key")
        .and_then(|k| k.as_str())
        .and_then(|k| k.split_once('/'))
        .map_or(address, |(_, a)| a)
}

/// A file name for an address (`/` and `%` escaped).
pub fn escape(address: &str) -> String {
    address.replace('%', "%25").replace('/', "%2F")
}

/// The entry for `address`: exact, then its resource, then `*`.
fn lookup<'a, T>(map: &'a BTreeMap<String, T>, address: &str) -> Option<&'a T> {
    if let Some(v) = map.get(address) {
        return Some(v);
    }
    if let Ok(a) = address.parse::<InstanceAddr>() {
        for (k, v) in map {
            if let Ok(t) = k.parse::<InstanceAddr>() {
                if a.matches(&t) {
                    return Some(v);
                }
            }
        }
    }
    map.get("*")
}

fn failure(f: &Failure, op: &str, address: &str) -> PlatformError {
    PlatformError::new(
        f.message
            .clone()
            .unwrap_or_else(|| format!("injected {op} failure for `{address}`")),
    )
    .with_detail(format!(
        "double: failure injected by config.json for `{address}`"
    ))
}

#[async_trait]
impl Platform for TestDouble {
    fn name(&self) -> &str {
        "double"
    }

    fn max_parallelism(&self) -> usize {
        self.config().max_parallelism.unwrap_or(10)
    }

    fn check_node(&self, spec: &NodeSpec) -> Capability {
        let cfg = self.config();
        let mut cap = Capability::default();
        if cfg.refuse_images.contains(&spec.image) {
            cap.refused = Some(format!("the test double refuses image `{}`", spec.image));
        }
        if cfg.warn_images.contains(&spec.image) {
            cap.warnings.push(format!(
                "image `{}` is only simulated by the test double",
                spec.image
            ));
        }
        cap
    }

    fn updatable(&self, kind: ResourceKind) -> &'static [&'static str] {
        match kind {
            ResourceKind::Node => &["hostname", "labels", "cpus", "memory_mib"],
            ResourceKind::Network => &["nat"],
            ResourceKind::Package => &["version"],
        }
    }

    async fn create(&self, req: CreateRequest) -> PlatformResult<CreateResponse> {
        let Some((_, fail)) = self
            .begin_cancellable("create", &req.address, &req.cancel)
            .await
        else {
            self.end("create", &req.address);
            return Err(PlatformError::cancelled("double: the create was cancelled"));
        };
        let key = Self::key(&req.session, &req.address);
        let result = match fail {
            Some(f) if !f.after_create => Err(failure(&f, "create", &req.address)),
            fail => {
                let obj = FakeObject {
                    session: req.session.name.clone(),
                    address: req.address.clone(),
                    spec: req.spec.clone(),
                };
                let made = self.put_object(&req.session.lineage, &obj);
                match (made, fail) {
                    (Err(e), _) => Err(e),
                    (Ok(()), Some(f)) => Err(failure(&f, "create", &req.address)),
                    (Ok(()), None) => Ok(CreateResponse {
                        private: serde_json::json!({ "key": key }),
                    }),
                }
            }
        };
        self.end("create", &req.address);
        result
    }

    async fn read(&self, req: ReadRequest) -> PlatformResult<ReadResponse> {
        let (_, fail) = self.begin("read", &req.address).await;
        let result = match fail {
            Some(f) => Err(failure(&f, "read", &req.address)),
            None => Ok(
                match self.get_object(&req.session.lineage, made_as(&req.private, &req.address)) {
                    Some(o) => ReadResponse::Present { spec: o.spec },
                    None => ReadResponse::Gone,
                },
            ),
        };
        self.end("read", &req.address);
        result
    }

    async fn update(&self, req: UpdateRequest) -> PlatformResult<CreateResponse> {
        let (_, fail) = self.begin("update", &req.address).await;
        let key = Self::key(&req.session, made_as(&req.private, &req.address));
        let result = match fail {
            Some(f) => Err(failure(&f, "update", &req.address)),
            None => {
                let made = match self
                    .get_object(&req.session.lineage, made_as(&req.private, &req.address))
                {
                    Some(mut obj) => {
                        obj.spec = req.after.clone();
                        self.put_object(&req.session.lineage, &obj)
                    }
                    None => Err(PlatformError::new(format!(
                        "double: `{}` does not exist",
                        req.address
                    ))),
                };
                made.map(|_| CreateResponse {
                    private: serde_json::json!({ "key": key }),
                })
            }
        };
        self.end("update", &req.address);
        result
    }

    async fn delete(&self, req: DeleteRequest) -> PlatformResult<()> {
        let (_, fail) = self.begin("delete", &req.address).await;
        let result = match fail {
            Some(f) => Err(failure(&f, "delete", &req.address)),
            None => self.remove_object(&req.session.lineage, made_as(&req.private, &req.address)),
        };
        self.end("delete", &req.address);
        result
    }

    async fn exec(&self, mut req: ExecRequest) -> PlatformResult<ExecStatus> {
        let (_, fail) = self.begin("exec", &req.address).await;
        let result = match fail {
            Some(f) => Err(failure(&f, "exec", &req.address)),
            None => fake_exec(&mut req).await,
        };
        self.end("exec", &req.address);
        result
    }

    async fn sync_session(&self, req: SessionSync) -> PlatformResult<()> {
        let name = req
            .session
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let text = serde_json::to_vec_pretty(&req.nodes)
            .map_err(|e| PlatformError::new(format!("double: {e}")))?;
        std::fs::write(self.dir.join(format!("sync-{}.json", escape(&name))), text)
            .map_err(|e| PlatformError::new(format!("double: {e}")))
    }

    async fn sweep(&self, session: &SessionRef) -> PlatformResult<Vec<String>> {
        let _g = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = format!("{}/", session.lineage);
        let removed: Vec<String> = self
            .objects()
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .map(|k| format!("fake object {k}"))
            .collect();
        match std::fs::remove_dir_all(self.dir.join("objects").join(&session.lineage)) {
            Ok(()) => Ok(removed),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(removed),
            Err(e) => Err(PlatformError::new(format!("double: cannot sweep: {e}"))),
        }
    }
}
