//! What a caller hands the library instead of process-wide state.
//!
//! The library never reads the process environment, the working directory
//! or the user's identity itself: a `tg serve` process runs many tenants side
//! by side, each with its own. The CLI builds these from its process at the
//! edge ([`Environment::from_process`], [`Caller::this_process`]); a server
//! builds them per request.
//!
//! A caller may also be *confined* ([`Environment::confined_to`],
//! [`Environment::with_testbed_vars`]): what its testbed may read of the
//! host (`file()` and the other file functions, `.deb` paths) and which
//! variables its `env()` sees. `tg serve` confines its tenants so that a
//! testbed cannot read the server's secrets.
//!
//! Not here: what the variables mean (`config` reads `TG_VAR_*` and `env()`,
//! `ops` reads `TG_STATE_URL`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Environment variables and the working directory of one caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: Arc<BTreeMap<String, String>>,
    /// Where relative paths given by the caller (`-var-file`) are resolved.
    cwd: PathBuf,
    /// When set, the only directories (canonical) a testbed may read files
    /// under.
    roots: Option<Arc<Vec<PathBuf>>>,
    /// When set, the only variables a testbed's `env()` sees.
    testbed_vars: Option<Arc<BTreeSet<String>>>,
    /// When set, the only folders (canonical) a testbed's `dir:` images
    /// may be.
    image_dirs: Option<Arc<Vec<PathBuf>>>,
}

/// A path a confined testbed may not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Confined {
    /// Its canonical path (symlinks and `..` resolved) is under no root.
    #[error("`{}` is outside the directories this testbed may read", .0.display())]
    Outside(PathBuf),
    /// A `dir:` image folder the caller was not offered.
    #[error("`dir:{}` is not an image this testbed may use", .0.display())]
    ImageNotOffered(PathBuf),
    /// It cannot be resolved (a component is unreadable, say).
    #[error("cannot resolve `{}`: {reason}", .path.display())]
    Unresolved { path: PathBuf, reason: String },
}

/// Where `path` (absolute) really points, with symlinks and `..`
/// resolved: the canonical path of its longest existing prefix, then the
/// rest (which does not exist, so holds no symlinks) with `..` taken
/// lexically.
pub fn real_path(path: &Path) -> Result<PathBuf, Confined> {
    let unresolved = |e: std::io::Error| Confined::Unresolved {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    let base = loop {
        match std::fs::canonicalize(&existing) {
            Ok(p) => break p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match (existing.file_name(), existing.parent()) {
                    (Some(name), Some(parent)) => {
                        rest.push(name.to_os_string());
                        existing = parent.to_path_buf();
                    }
                    // `..` or the root itself: resolve what is left lexically.
                    _ => break PathBuf::from("/"),
                }
            }
            Err(e) => return Err(unresolved(e)),
        }
    };
    let mut out = base;
    for part in rest.iter().rev() {
        for c in Path::new(part).components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(n) => out.push(n),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The canonical path of `path` when it lies under one of `roots`
/// (canonical themselves), else why not.
pub fn confine(roots: &[PathBuf], path: &Path) -> Result<PathBuf, Confined> {
    let real = real_path(path)?;
    if roots.iter().any(|r| real.starts_with(r)) {
        Ok(real)
    } else {
        Err(Confined::Outside(path.to_path_buf()))
    }
}

impl Environment {
    /// This process's environment (variables that are not UTF-8 are left
    /// out) and working directory. Only the CLI edge calls this.
    pub fn from_process() -> Environment {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Environment {
            vars: Arc::new(vars),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            ..Environment::default()
        }
    }

    /// An environment with exactly these variables.
    pub fn new(
        vars: impl IntoIterator<Item = (String, String)>,
        cwd: impl Into<PathBuf>,
    ) -> Environment {
        Environment {
            vars: Arc::new(vars.into_iter().collect()),
            cwd: cwd.into(),
            ..Environment::default()
        }
    }

    /// The same environment, with its testbed's file reads (`file()`,
    /// `templatefile()`, `fileexists()`, ..., `.deb` paths) confined to
    /// files whose canonical path lies under one of `roots`. A root that
    /// does not exist yet is kept as given (its files are refused if a
    /// symlink leads there). No roots: nothing may be read.
    pub fn confined_to(mut self, roots: Vec<PathBuf>) -> Environment {
        let roots = roots
            .into_iter()
            .map(|r| {
                let r = self.resolve(&r);
                real_path(&r).unwrap_or(r)
            })
            .collect();
        self.roots = Some(Arc::new(roots));
        self
    }

    /// The directories a confined testbed may read under (`None`: not
    /// confined).
    pub fn roots(&self) -> Option<&[PathBuf]> {
        self.roots.as_deref().map(Vec::as_slice)
    }

    /// `path` (absolute) as a testbed may read it: its canonical path
    /// when confined and under a root, the path itself when not confined.
    pub fn check_readable(&self, path: &Path) -> Result<PathBuf, Confined> {
        match self.roots() {
            Some(roots) => confine(roots, path),
            None => Ok(path.to_path_buf()),
        }
    }

    /// The same environment, with its testbed's `env()` (and `~/` in
    /// paths, through `HOME`) seeing only the variables named; the
    /// library itself (state URL, platforms) still sees them all.
    pub fn with_testbed_vars(
        mut self,
        names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Environment {
        self.testbed_vars = Some(Arc::new(names.into_iter().map(Into::into).collect()));
        self
    }

    /// The same environment, with its testbed's `dir:` images limited to
    /// these folders (compared by canonical path). None: no `dir:` image.
    pub fn with_image_dirs(mut self, dirs: Vec<PathBuf>) -> Environment {
        let dirs = dirs
            .into_iter()
            .map(|d| {
                let d = self.resolve(&d);
                real_path(&d).unwrap_or(d)
            })
            .collect();
        self.image_dirs = Some(Arc::new(dirs));
        self
    }

    /// Whether a testbed may use the `dir:` image at `dir` (absolute).
    pub fn check_image_dir(&self, dir: &Path) -> Result<(), Confined> {
        let Some(allowed) = &self.image_dirs else {
            return Ok(());
        };
        let real = real_path(dir)?;
        if allowed.contains(&real) {
            Ok(())
        } else {
            Err(Confined::ImageNotOffered(dir.to_path_buf()))
        }
    }

    /// The variables a testbed's `env()` sees, in name order.
    pub fn testbed_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars().filter(|(k, _)| {
            self.testbed_vars
                .as_ref()
                .is_none_or(|allowed| allowed.contains(*k))
        })
    }

    /// `HOME` as a testbed sees it.
    pub fn testbed_home(&self) -> Option<&Path> {
        self.testbed_vars()
            .find(|(k, v)| *k == "HOME" && !v.is_empty())
            .map(|(_, v)| Path::new(v))
    }

    /// The same environment with `name` set to `value`.
    pub fn with_var(mut self, name: &str, value: &str) -> Environment {
        Arc::make_mut(&mut self.vars).insert(name.to_string(), value.to_string());
        self
    }

    /// The same environment with `name` removed.
    pub fn without_var(mut self, name: &str) -> Environment {
        Arc::make_mut(&mut self.vars).remove(name);
        self
    }

    /// The value of `name`, if set.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The value of `name` when set and not empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.var(name).filter(|v| !v.is_empty())
    }

    /// Every variable, in name order.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `HOME`, for `~/` in paths.
    pub fn home(&self) -> Option<&Path> {
        self.non_empty("HOME").map(Path::new)
    }

    pub fn cwd(&self) -> &Path {
        &self.cwd
    }

    /// `path` resolved against the working directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.cwd.join(path)
        }
    }
}

/// Who asks: recorded with the session lock ("locked by alice@ci-7 pid 42")
/// and, for `tg serve`, whose sessions these are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    pub host: String,
    /// The process doing the work (a server's own pid for its tenants).
    pub pid: u32,
}

impl Caller {
    /// This process, as `env` names its user.
    pub fn this_process(env: &Environment) -> Caller {
        Caller {
            user: env
                .non_empty("USER")
                .or_else(|| env.non_empty("LOGNAME"))
                .unwrap_or("unknown")
                .to_string(),
            host: crate::state::hostname(),
            pid: std::process::id(),
        }
    }

    /// A named user of this process (a `tg serve` tenant).
    pub fn user_of_this_process(user: &str) -> Caller {
        Caller {
            user: user.to_string(),
            host: crate::state::hostname(),
            pid: std::process::id(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_and_paths() {
        let e = Environment::new([("HOME".into(), "/home/a".into())], "/work")
            .with_var("X", "1")
            .with_var("EMPTY", "");
        assert_eq!(e.var("X"), Some("1"));
        assert_eq!(e.non_empty("EMPTY"), None);
        assert_eq!(e.home(), Some(Path::new("/home/a")));
        assert_eq!(
            e.resolve(Path::new("v.tgvars.hcl")),
            Path::new("/work/v.tgvars.hcl")
        );
        assert_eq!(e.resolve(Path::new("/abs")), Path::new("/abs"));
        assert_eq!(e.clone().without_var("X").var("X"), None);
        let c = Caller::this_process(&e);
        assert_eq!(c.user, "unknown");
        assert_eq!(c.pid, std::process::id());
        let t = e.clone().with_testbed_vars(["X"]);
        assert_eq!(t.testbed_vars().collect::<Vec<_>>(), [("X", "1")]);
        assert_eq!(t.testbed_home(), None);
        assert_eq!(t.var("HOME"), Some("/home/a"));
        assert_eq!(e.testbed_home(), Some(Path::new("/home/a")));
    }

    #[test]
    fn confinement_reads_only_under_its_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/ok.txt"), "ok").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/ok.txt"), root.join("inner")).unwrap();
        let e = Environment::new([], dir.path()).confined_to(vec![PathBuf::from("root")]);
        let real = std::fs::canonicalize(&root).unwrap();
        assert_eq!(e.roots(), Some(&[real.clone()][..]));
        assert_eq!(
            e.check_readable(&root.join("sub/ok.txt")),
            Ok(real.join("sub/ok.txt"))
        );
        assert_eq!(
            e.check_readable(&root.join("sub/../inner")),
            Ok(real.join("sub/ok.txt"))
        );
        // Not there yet, but under a root: the read itself says so.
        assert!(e.check_readable(&root.join("sub/missing")).is_ok());
        for bad in [
            root.join("../secret"),
            root.join("sub/../../secret"),
            root.join("missing/../../secret"),
            PathBuf::from("/etc/passwd"),
            root.join("link"),
            dir.path().join("missing"),
        ] {
            assert_eq!(
                e.check_readable(&bad),
                Err(Confined::Outside(bad.clone())),
                "{}",
                bad.display()
            );
        }
        // Unconfined: anything.
        let free = Environment::new([], dir.path());
        assert_eq!(
            free.check_readable(Path::new("/etc/passwd")),
            Ok(PathBuf::from("/etc/passwd"))
        );
        // No roots: nothing.
        let none = Environment::new([], "/").confined_to(Vec::new());
        assert!(none.check_readable(&root.join("sub/ok.txt")).is_err());
    }

    #[test]
    fn image_dirs_are_only_those_offered() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("rootfs");
        std::fs::create_dir_all(&img).unwrap();
        std::os::unix::fs::symlink(&img, dir.path().join("alias")).unwrap();
        let free = Environment::new([], "/");
        assert!(free.check_image_dir(Path::new("/")).is_ok());
        let e = Environment::new([], "/").with_image_dirs(vec![img.clone()]);
        assert!(e.check_image_dir(&img).is_ok());
        assert!(e.check_image_dir(&dir.path().join("alias")).is_ok());
        assert!(e.check_image_dir(&img.join("../rootfs")).is_ok());
        for bad in [
            PathBuf::from("/"),
            img.join("sub"),
            dir.path().to_path_buf(),
        ] {
            assert_eq!(
                e.check_image_dir(&bad),
                Err(Confined::ImageNotOffered(bad.clone()))
            );
        }
    }
}
