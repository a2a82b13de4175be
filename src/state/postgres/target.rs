//! Where a PostgreSQL state store is: parsing its URL.
//!
//! Owns turning a `postgres://` URL (or a `key=value` connection string),
//! plus the standard `PG*` environment variables for what it leaves out,
//! into a driver [`Config`], a [`TlsMode`] and a location to show users
//! (never with the password). It does not connect: the store does.

use std::str::FromStr;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::Config;

use crate::state::{StateError, StateResult};

/// How long a connection attempt may take when neither the URL nor
/// `PGCONNECT_TIMEOUT` says.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS modes tg supports (`sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
}

/// A parsed connection target: what to connect to, and how to name it
/// without its password.
#[derive(Debug)]
pub struct Target {
    pub config: Config,
    pub tls: TlsMode,
    /// `postgres tg@127.0.0.1:54329/tg`.
    pub location: String,
}

pub(super) fn config_error(message: String) -> StateError {
    StateError::Backend {
        location: "postgres".into(),
        message,
    }
}

/// Parse a `postgres://` URL (or a `key=value` connection string), taking
/// missing parts from `env` (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
/// `PGDATABASE`, `PGSSLMODE`, `PGCONNECT_TIMEOUT`).
pub fn parse_target(url: &str, env: &dyn Fn(&str) -> Option<String>) -> StateResult<Target> {
    let url = url.trim();
    // `sslmode` is taken out before the driver sees the URL: tg knows more
    // values than the driver and reports them better.
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let mut sslmode: Option<String> = None;
    let rest = if is_url {
        match url.split_once('?') {
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    match pair.split_once('=') {
                        Some(("sslmode", v)) => sslmode = Some(v.to_string()),
                        _ => kept.push(pair),
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_string(),
        }
    } else {
        url.to_string()
    };
    let env_port = match env("PGPORT").filter(|p| !p.is_empty()) {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| config_error(format!("`PGPORT` is `{p}`, expected a port number")))?,
        ),
        None => None,
    };
    // The driver takes 5432 for a host without a port: `PGPORT` goes in first.
    let rest = match env_port {
        Some(port) if is_url => with_default_port(&rest, port),
        _ => rest,
    };
    let mut config = Config::from_str(&rest).map_err(|e| {
        config_error(format!(
            "the state URL is not a valid PostgreSQL connection string ({e}); expected `postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require`"
        ))
    })?;

    if config.get_hosts().is_empty() {
        let host = env("PGHOST").filter(|h| !h.is_empty());
        config.host(host.as_deref().unwrap_or("localhost"));
    }
    if config.get_ports().is_empty() {
        if let Some(port) = env_port {
            config.port(port);
        }
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .or_else(|| env("LOGNAME"))
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                config_error(
                    "no PostgreSQL user: put one in the state URL or set `PGUSER`".to_string(),
                )
            })?;
        config.user(&user);
    }
    if config.get_password().is_none() {
        if let Some(p) = env("PGPASSWORD") {
            config.password(p);
        }
    }
    if config.get_dbname().is_none() {
        if let Some(db) = env("PGDATABASE").filter(|d| !d.is_empty()) {
            config.dbname(&db);
        }
    }
    if config.get_connect_timeout().is_none() {
        let timeout = match env("PGCONNECT_TIMEOUT").filter(|t| !t.is_empty()) {
            Some(t) => {
                let secs: u64 = t.parse().map_err(|_| {
                    config_error(format!(
                        "`PGCONNECT_TIMEOUT` is `{t}`, expected a number of seconds"
                    ))
                })?;
                Duration::from_secs(secs.max(1))
            }
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        config.connect_timeout(timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("tg");
    }

    let tls = if is_url {
        match sslmode.or_else(|| env("PGSSLMODE").filter(|m| !m.is_empty())) {
            Some(mode) => parse_sslmode(&mode)?,
            None => TlsMode::Prefer,
        }
    } else {
        // The driver parsed `sslmode` itself.
        match config.get_ssl_mode() {
            SslMode::Disable => TlsMode::Disable,
            SslMode::Require => TlsMode::Require,
            _ => TlsMode::Prefer,
        }
    };
    config.ssl_mode(match tls {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require => SslMode::Require,
    });

    let location = location_of(&config);
    Ok(Target {
        config,
        tls,
        location,
    })
}

/// `url` with `port` added to each host that has none (the driver would
/// take 5432 for those).
fn with_default_port(url: &str, port: u16) -> String {
    let Some((scheme, after)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let (authority, tail) = after.split_at(end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if hosts.is_empty() {
        return url.to_string();
    }
    let hosts: Vec<String> = hosts
        .split(',')
        .map(|h| {
            let has_port = match h.rfind(']') {
                Some(close) => h[close..].contains(':'),
                None => h.contains(':'),
            };
            if has_port || h.is_empty() {
                h.to_string()
            } else {
                format!("{h}:{port}")
            }
        })
        .collect();
    let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    format!("{scheme}://{userinfo}{}{tail}", hosts.join(","))
}

fn parse_sslmode(mode: &str) -> StateResult<TlsMode> {
    match mode {
        "disable" => Ok(TlsMode::Disable),
        "allow" | "prefer" => Ok(TlsMode::Prefer),
        "require" => Ok(TlsMode::Require),
        "verify-ca" | "verify-full" => Err(config_error(format!(
            "`sslmode={mode}` is not supported yet; use `sslmode=require` (encrypted, the server certificate is not checked)"
        ))),
        other => Err(config_error(format!(
            "unknown `sslmode` `{other}`; expected `disable`, `prefer` or `require`"
        ))),
    }
}

/// `postgres USER@HOST:PORT/DATABASE`, never with the password.
pub(super) fn location_of(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres {user}@{host}:{port}/{db}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn url_parts_and_location_without_password() {
        let t = parse_target(
            "postgres://tg:s3cret@db.example:6543/state?sslmode=require",
            &env_of(&[]),
        )
        .unwrap();
        assert_eq!(t.location, "postgres tg@db.example:6543/state");
        assert!(!t.location.contains("s3cret"));
        assert_eq!(t.tls, TlsMode::Require);
        assert_eq!(t.config.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(t.config.get_application_name(), Some("tg"));
    }

    #[test]
    fn missing_parts_come_from_the_environment() {
        let env = env_of(&[
            ("PGHOST", "pg.internal"),
            ("PGPORT", "5544"),
            ("PGUSER", "ci"),
            ("PGPASSWORD", "pw"),
            ("PGDATABASE", "tgstate"),
            ("PGSSLMODE", "disable"),
        ]);
        let t = parse_target("postgres://", &env).unwrap();
        assert_eq!(t.location, "postgres ci@pg.internal:5544/tgstate");
        assert_eq!(t.tls, TlsMode::Disable);
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        // The URL wins over the environment.
        let t = parse_target("postgres://me@h/db?sslmode=prefer", &env).unwrap();
        assert_eq!(t.location, "postgres me@h:5544/db");
        assert_eq!(t.tls, TlsMode::Prefer);
    }

    #[test]
    fn bad_settings_are_explained() {
        let err = parse_target("postgres://u@h/db?sslmode=verify-full", &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`sslmode=verify-full` is not supported"),
            "{err}"
        );
        let err = parse_target("postgres://u@h/db?sslmode=maybe", &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown `sslmode` `maybe`"), "{err}");
        let err = parse_target("postgres://u@h/db", &env_of(&[("PGPORT", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`PGPORT` is `x`"), "{err}");
        let err = parse_target("postgres://u:hunter2@h:notaport/db", &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
