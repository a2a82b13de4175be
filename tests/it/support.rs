//! Shared test support: run the real `tg` binary in a temporary testbed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Is this a CI run (`CI` set to anything but ``, `0` or `false`)? There a
/// test that cannot run fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Skip (outside CI) or fail (in CI) a test that cannot run, saying why.
/// Returns `false` so callers can `return` on it.
#[track_caller]
pub fn cannot_run(why: &str) -> bool {
    assert!(!in_ci(), "this test cannot run in CI: {why}");
    eprintln!("skipped: {why}");
    false
}

/// Root, or skip/fail (see [`cannot_run`]).
#[track_caller]
pub fn have_root() -> bool {
    nix::unistd::geteuid().is_root() || cannot_run("it needs root")
}

/// Every tool on `PATH`, or skip/fail.
#[track_caller]
pub fn have_tools(tools: &[&str]) -> bool {
    for t in tools {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return cannot_run(&format!(
                "`{t}` is not installed (scripts/setup installs it)"
            ));
        }
    }
    true
}

/// The PostgreSQL test server's URL (`TG_PG_TEST_URL`, which
/// `.ci/postgres.sh` prints), or skip/fail.
#[track_caller]
pub fn pg_url() -> Option<String> {
    match std::env::var("TG_PG_TEST_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            cannot_run("TG_PG_TEST_URL is not set (`scripts/test` starts the server and sets it)");
            None
        }
    }
}

/// Return from the test unless it runs as root (skip outside CI, fail in CI).
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::support::have_root() {
            return;
        }
    };
}

/// Return from the test unless PostgreSQL is there; binds its URL.
#[macro_export]
macro_rules! require_pg {
    ($url:ident) => {
        let Some($url) = $crate::support::pg_url() else {
            return;
        };
    };
}

/// The `tg` binary built for these tests.
pub fn tg_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tg"))
}

/// A temporary testbed directory with files in it.
pub struct Testbed {
    pub dir: tempfile::TempDir,
}

impl Testbed {
    pub fn new(files: &[(&str, &str)]) -> Testbed {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            let p = dir.path().join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(p, text).unwrap();
        }
        Testbed { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    /// Run `tg ARGS` in the testbed directory with a clean `TG_*` environment.
    pub fn tg(&self, args: &[&str]) -> Run {
        self.tg_env(args, &[])
    }

    pub fn tg_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(tg_bin());
        cmd.args(args).current_dir(self.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("TG_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run(cmd.output().expect("run tg"))
    }
}

/// The lines of `text`, sorted: output streamed from several nodes at
/// once comes in no fixed order.
pub fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(String::from).collect();
    v.sort();
    v
}

/// The result of one `tg` run.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Assert the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// The host's dpkg database. Packages installed into netns nodes go into
/// an overlay whose lower layer is the host's `/`; the pool's `.deb` test,
/// whose sshd hosts share the host's files, installs and purges on the host
/// itself. A lower layer changed under a mounted overlay is undefined (dpkg
/// in a node then fails with "Stale file handle"), so node installs hold
/// this for reading and host installs for writing.
static HOST_DPKG: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held while a test installs packages into netns nodes.
pub fn host_dpkg_read() -> std::sync::RwLockReadGuard<'static, ()> {
    HOST_DPKG
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Held while a test changes the host's own dpkg database.
pub fn host_dpkg_write() -> std::sync::RwLockWriteGuard<'static, ()> {
    HOST_DPKG
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
