//! What a caller hands the library instead of process-wide state.
//!
//! The library never reads the process environment, the working directory
//! or the user's identity itself: a `tg serve` process runs many tenants side
//! by side, each with its own. The CLI builds these from its process at the
//! edge ([`Environment::from_process`], [`Caller::this_process`]); a server
//! builds them per request.
//!
//! Not here: what the variables mean (`config` reads `TG_VAR_*` and `env()`,
//! `ops` reads `TG_STATE_URL`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Environment variables and the working directory of one caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: Arc<BTreeMap<String, String>>,
    /// Where relative paths given by the caller (`-var-file`) are resolved.
    cwd: PathBuf,
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
        }
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
    }
}
