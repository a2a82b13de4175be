//! The PostgreSQL state store, shared by teams and CI agents.
//!
//! Owns the connection to one database (URL plus the standard `PG*`
//! environment variables, TLS through rustls), the schema migrations in
//! `state/postgres/`, and session locks. It does not decide what to write
//! (the engine does) and keeps no cache: every call reads or writes the
//! database. Semantics match [`super::sqlite`].
//!
//! - Writes: one transaction each, which also bumps the session's serial.
//!   A connection found dead before COMMIT is replaced and the call runs
//!   once more (nothing was applied); one lost during COMMIT is reported as
//!   [`StateError::ConnectionLost`] (applied whole or not at all).
//! - Locks: a session lock is a session-level advisory lock keyed by a hash
//!   of the session name, held by a connection of its own, so a holder that
//!   dies releases it with its connection. The `locks` table only says who
//!   holds it and counts only while the advisory lock is held. A server
//!   restart or `force_unlock` ends the lock: later writes through the store
//!   that held it fail instead of going on unlocked.
//! - TLS: `sslmode=disable|prefer|require` as libpq means them (`require`
//!   encrypts but does not check the certificate); `verify-*` are refused.

// `StateError` is the shared error type of every store (it carries a lock
// holder); boxing it is not this module's call.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::config::SslMode;
use postgres::{Client, Config, GenericClient, Statement};
use sha2::{Digest, Sha256};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{
    now_rfc3339, InstanceRecord, LockInfo, OutputRecord, SessionInfo, SessionLock, Snapshot,
    StateError, StateResult, StateStore, SCHEMA_VERSION,
};
use crate::addrs::InstanceAddr;

/// Migrations by the schema version they lead to, in order.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../state/postgres/0001_init.sql"))];

/// The advisory lock key that serializes migrations (`tg_migr` in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0074_675f_6d69_6772;

/// How often `lock` asks again while another holder has the session.
const LOCK_POLL: Duration = Duration::from_millis(200);

/// How long a connection attempt may take when neither the URL nor
/// `PGCONNECT_TIMEOUT` says.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// State in a PostgreSQL database.
pub struct PostgresStore {
    config: Config,
    tls: MakeRustlsConnect,
    location: String,
    conn: Mutex<Option<Conn>>,
    /// Session locks this store holds now: session → backend pid of the lock
    /// connection. Writes to such a session check the lock is still held.
    held: Arc<Mutex<HashMap<String, i32>>>,
}

/// A connection with its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    fn new(client: Client) -> Conn {
        Conn {
            client,
            statements: HashMap::new(),
        }
    }
}

/// Why an operation on one connection failed.
enum Fail {
    /// Any error; a connection error here means nothing was committed.
    Pg(postgres::Error),
    /// The error came from COMMIT: if the connection dropped, the outcome
    /// is unknown.
    Commit(postgres::Error),
    /// A state error decided by the operation itself.
    State(StateError),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Fail {
        Fail::Pg(e)
    }
}

impl From<StateError> for Fail {
    fn from(e: StateError) -> Fail {
        Fail::State(e)
    }
}

/// The statement `sql`, prepared once per connection.
fn prepared(
    statements: &mut HashMap<&'static str, Statement>,
    client: &mut impl GenericClient,
    sql: &'static str,
) -> Result<Statement, postgres::Error> {
    if let Some(s) = statements.get(sql) {
        return Ok(s.clone());
    }
    let s = client.prepare(sql)?;
    statements.insert(sql, s.clone());
    Ok(s)
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Does this error mean the connection is gone (rather than the statement
/// being refused)?
fn is_connection_error(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        // 08: connection exception; 57P01-03: admin shutdown, crash
        // shutdown, cannot connect now.
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// A one-line description of a PostgreSQL error.
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = db.message().to_string();
        if let Some(detail) = db.detail() {
            s.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            s.push_str(&format!("; hint: {hint}"));
        }
        return s;
    }
    e.to_string()
}

/// The advisory lock key of a session: a stable 64-bit hash of its name.
pub fn session_lock_key(session: &str) -> i64 {
    let digest = Sha256::digest(format!("tg/session-lock/{session}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The `pg_locks` (classid, objid) pair of a 64-bit advisory lock key.
fn key_parts(key: i64) -> (u32, u32) {
    let k = key as u64;
    ((k >> 32) as u32, k as u32)
}

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

fn config_error(message: String) -> StateError {
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
fn location_of(config: &Config) -> String {
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

/// A rustls connector that encrypts without checking the server certificate,
/// which is what `sslmode=prefer` and `sslmode=require` mean for libpq too.
fn tls_connector() -> StateResult<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Accepts any server certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

const SQL_BUMP: &str = "UPDATE sessions SET serial = serial + 1, updated_at = $2 WHERE name = $1 \
     RETURNING serial, ($3::int4 = 0 OR EXISTS (SELECT 1 FROM pg_locks \
       WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid = $4 AND objid = $5 AND objsubid = 1 AND granted AND pid = $3))";
const SQL_PUT_INSTANCE: &str =
    "INSERT INTO instances (session, address, platform, status, record) \
     VALUES ($1, $2, $3, $4, $5::text::json) \
     ON CONFLICT (session, address) DO UPDATE SET platform = excluded.platform, \
       status = excluded.status, record = excluded.record";
const SQL_REMOVE_INSTANCE: &str = "DELETE FROM instances WHERE session = $1 AND address = $2";
const SQL_PUT_OUTPUT: &str = "INSERT INTO outputs (session, name, value, sensitive) \
     VALUES ($1, $2, $3::text::json, $4)";
const SQL_SESSION: &str = "SELECT name, lineage, serial, created_at, updated_at, \
     (SELECT count(*) FROM instances i WHERE i.session = s.name) \
     FROM sessions s WHERE name = $1";
const SQL_SESSIONS: &str = "SELECT name, lineage, serial, created_at, updated_at, \
     (SELECT count(*) FROM instances i WHERE i.session = s.name) \
     FROM sessions s ORDER BY name";
const SQL_LOCK_PID: &str = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' \
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
     AND classid = $1 AND objid = $2 AND objsubid = 1 AND granted LIMIT 1";
const SQL_LOCK_ROW: &str =
    "SELECT id, operation, \"user\", host, pid, created_at FROM locks WHERE session = $1";

fn session_info(row: &postgres::Row) -> SessionInfo {
    SessionInfo {
        name: row.get(0),
        lineage: row.get(1),
        serial: row.get::<_, i64>(2).max(0) as u64,
        created_at: row.get(3),
        updated_at: row.get(4),
        instances: row.get::<_, i64>(5).max(0) as usize,
    }
}

impl PostgresStore {
    /// Connect to the database at `url` (see [`parse_target`]) and bring
    /// its schema up to date.
    pub fn connect(url: &str) -> StateResult<PostgresStore> {
        Self::connect_with_env(url, &|k| std::env::var(k).ok())
    }

    /// [`PostgresStore::connect`] with the environment given explicitly.
    pub fn connect_with_env(
        url: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> StateResult<PostgresStore> {
        let target = parse_target(url, env)?;
        let store = PostgresStore {
            config: target.config,
            tls: tls_connector()?,
            location: target.location,
            conn: Mutex::new(None),
            held: Arc::new(Mutex::new(HashMap::new())),
        };
        let mut conn = store.open().map_err(|e| match e {
            StateError::ConnectionLost { location, message } => StateError::Backend {
                location,
                message: format!("{message}; check the state URL and that the server is running"),
            },
            other => other,
        })?;
        store.migrate(&mut conn.client)?;
        *relock(&store.conn) = Some(conn);
        Ok(store)
    }

    fn open(&self) -> StateResult<Conn> {
        match self.config.connect(self.tls.clone()) {
            Ok(client) => Ok(Conn::new(client)),
            Err(e) if is_connection_error(&e) => Err(StateError::ConnectionLost {
                location: self.location.clone(),
                message: format!("cannot connect: {}", describe(&e)),
            }),
            Err(e) => Err(StateError::Backend {
                location: self.location.clone(),
                message: format!("cannot connect: {}", describe(&e)),
            }),
        }
    }

    fn backend(&self, e: &postgres::Error) -> StateError {
        StateError::Backend {
            location: self.location.clone(),
            message: describe(e),
        }
    }

    fn damaged(&self, reason: String) -> StateError {
        StateError::Damaged {
            location: self.location.clone(),
            reason,
        }
    }

    /// The store's schema version (0 for an empty database), or why this
    /// database is not tg state.
    fn schema_version(&self, client: &mut impl GenericClient) -> Result<i64, Fail> {
        // `pg_tables`, not `to_regclass`: a fresh snapshot sees tables that
        // another process created while this one waited for the lock.
        let row = client.query_one(
            "SELECT bool_or(tablename = 'schema_migrations'), bool_or(tablename = 'sessions') \
             FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
            &[],
        )?;
        let (has_migrations, has_sessions): (Option<bool>, Option<bool>) = (row.get(0), row.get(1));
        let (has_migrations, has_sessions) = (
            has_migrations.unwrap_or(false),
            has_sessions.unwrap_or(false),
        );
        if has_migrations {
            let v: Option<i64> = client
                .query_one("SELECT max(version) FROM schema_migrations", &[])?
                .get(0);
            return Ok(v.unwrap_or(0));
        }
        if has_sessions {
            return Err(self
                .damaged(
                    "it has a `sessions` table but no `schema_migrations` table, so it is not tg state; use another database"
                        .into(),
                )
                .into());
        }
        Ok(0)
    }

    /// Bring the schema up to date: read the version without writing, then
    /// apply every newer migration in one transaction that holds an advisory
    /// lock (so processes starting at once migrate only once) and reads the
    /// version again.
    fn migrate(&self, client: &mut Client) -> StateResult<()> {
        let run = |client: &mut Client| -> Result<(), Fail> {
            let too_new = |found: i64| -> Fail {
                StateError::TooNew {
                    location: self.location.clone(),
                    found,
                    known: SCHEMA_VERSION,
                }
                .into()
            };
            let found = self.schema_version(client)?;
            if found > SCHEMA_VERSION {
                return Err(too_new(found));
            }
            if found == SCHEMA_VERSION {
                return Ok(());
            }
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])?;
            let found = self.schema_version(&mut tx)?;
            if found > SCHEMA_VERSION {
                return Err(too_new(found));
            }
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
                tx.batch_execute(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at, tg_version) VALUES ($1, $2, $3)",
                    &[version, &now_rfc3339(), &env!("CARGO_PKG_VERSION")],
                )?;
            }
            tx.commit().map_err(Fail::Commit)?;
            Ok(())
        };
        run(client).map_err(|f| self.fail(f, false))
    }

    /// Turn a failure into a state error.
    fn fail(&self, f: Fail, write: bool) -> StateError {
        match f {
            Fail::State(e) => e,
            Fail::Pg(e) if is_connection_error(&e) => StateError::ConnectionLost {
                location: self.location.clone(),
                message: if write {
                    format!(
                        "{}; nothing was written, tg reconnects on the next call",
                        describe(&e)
                    )
                } else {
                    format!("{}; tg reconnects on the next call", describe(&e))
                },
            },
            Fail::Commit(e) if is_connection_error(&e) => StateError::ConnectionLost {
                location: self.location.clone(),
                message: format!(
                    "{} while committing; the write may or may not have been recorded (it was not half-applied); check with `tg show` before going on",
                    describe(&e)
                ),
            },
            Fail::Pg(e) | Fail::Commit(e) => self.backend(&e),
        }
    }

    /// Run `op` on the store's connection, connecting first when there is
    /// none. A connection that turns out dead before anything was committed
    /// is replaced and `op` runs once more.
    fn run<T>(
        &self,
        write: bool,
        mut op: impl FnMut(&mut Conn) -> Result<T, Fail>,
    ) -> StateResult<T> {
        let mut guard = relock(&self.conn);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if guard.as_ref().is_none_or(|c| c.client.is_closed()) {
                *guard = None;
                *guard = Some(self.open()?);
            }
            let conn = guard.as_mut().expect("a connection was just opened");
            match op(conn) {
                Ok(v) => return Ok(v),
                Err(Fail::Pg(e)) if is_connection_error(&e) && attempt < 2 => {
                    *guard = None;
                }
                Err(f) => {
                    let lost = match &f {
                        Fail::Pg(e) | Fail::Commit(e) => is_connection_error(e),
                        Fail::State(_) => false,
                    };
                    if lost {
                        *guard = None;
                    }
                    return Err(self.fail(f, write));
                }
            }
        }
    }

    /// In `tx`, bump the session's serial (refusing when this store held
    /// its lock and lost it); returns the new serial.
    fn bump(
        &self,
        statements: &mut HashMap<&'static str, Statement>,
        tx: &mut postgres::Transaction<'_>,
        session: &str,
    ) -> Result<u64, Fail> {
        let pid = relock(&self.held).get(session).copied().unwrap_or(0);
        let (classid, objid) = key_parts(session_lock_key(session));
        let st = prepared(statements, tx, SQL_BUMP)?;
        let row = tx.query_opt(&st, &[&session, &now_rfc3339(), &pid, &classid, &objid])?;
        let Some(row) = row else {
            return Err(StateError::NoSuchSession(session.to_string()).into());
        };
        let held: bool = row.get(1);
        if !held {
            return Err(StateError::ConnectionLost {
                location: self.location.clone(),
                message: format!(
                    "the lock on session `{session}` was lost with its connection (a server restart or `tg force-unlock`); nothing was written, run the command again"
                ),
            }
            .into());
        }
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    fn lock_holder_on(&self, client: &mut Client, session: &str) -> Result<Option<LockInfo>, Fail> {
        let (classid, objid) = key_parts(session_lock_key(session));
        let Some(pid_row) = client.query_opt(SQL_LOCK_PID, &[&classid, &objid])? else {
            return Ok(None);
        };
        let backend_pid: i32 = pid_row.get(0);
        if let Some(row) = client.query_opt(SQL_LOCK_ROW, &[&session])? {
            return Ok(Some(LockInfo {
                id: row.get(0),
                session: session.to_string(),
                operation: row.get(1),
                user: row.get(2),
                host: row.get(3),
                pid: u32::try_from(row.get::<_, i64>(4)).unwrap_or(0),
                created_at: row.get(5),
            }));
        }
        // Held, but the holder has not written who it is (yet, or it is not
        // tg): say what the server knows.
        let who = client.query_opt(
            "SELECT usename::text, coalesce(host(client_addr), 'local') FROM pg_stat_activity WHERE pid = $1",
            &[&backend_pid],
        )?;
        let (user, host) = who
            .map(|r| (r.get::<_, Option<String>>(0), r.get::<_, String>(1)))
            .map(|(u, h)| (u.unwrap_or_else(|| "unknown".into()), h))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        Ok(Some(LockInfo {
            id: "unknown".into(),
            session: session.to_string(),
            operation: "unknown".into(),
            user,
            host,
            pid: 0,
            created_at: "unknown".into(),
        }))
    }
}

impl StateStore for PostgresStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn list_sessions(&self) -> StateResult<Vec<SessionInfo>> {
        self.run(false, |c| {
            let st = prepared(&mut c.statements, &mut c.client, SQL_SESSIONS)?;
            Ok(c.client.query(&st, &[])?.iter().map(session_info).collect())
        })
    }

    fn get_session(&self, name: &str) -> StateResult<Option<SessionInfo>> {
        self.run(false, |c| {
            let st = prepared(&mut c.statements, &mut c.client, SQL_SESSION)?;
            Ok(c.client
                .query_opt(&st, &[&name])?
                .as_ref()
                .map(session_info))
        })
    }

    fn create_session(&self, name: &str) -> StateResult<SessionInfo> {
        self.run(true, |c| {
            let now = now_rfc3339();
            let lineage = uuid::Uuid::new_v4().to_string();
            let n = c.client.execute(
                "INSERT INTO sessions (name, lineage, serial, created_at, updated_at) \
                 VALUES ($1, $2, 0, $3, $3) ON CONFLICT (name) DO NOTHING",
                &[&name, &lineage, &now],
            )?;
            if n == 0 {
                return Err(StateError::SessionExists(name.to_string()).into());
            }
            Ok(SessionInfo {
                name: name.to_string(),
                lineage,
                serial: 0,
                created_at: now.clone(),
                updated_at: now,
                instances: 0,
            })
        })
    }

    fn delete_session(&self, name: &str) -> StateResult<()> {
        self.run(true, |c| {
            let n = c
                .client
                .execute("DELETE FROM sessions WHERE name = $1", &[&name])?;
            if n == 0 {
                return Err(StateError::NoSuchSession(name.to_string()).into());
            }
            Ok(())
        })
    }

    fn load(&self, session: &str) -> StateResult<Snapshot> {
        self.run(false, |c| {
            let mut tx = c
                .client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let Some(head) = tx.query_opt(
                "SELECT lineage, serial FROM sessions WHERE name = $1",
                &[&session],
            )?
            else {
                return Err(StateError::NoSuchSession(session.to_string()).into());
            };
            let mut snapshot = Snapshot {
                lineage: head.get(0),
                serial: head.get::<_, i64>(1).max(0) as u64,
                ..Snapshot::default()
            };
            for row in tx.query(
                "SELECT address, record::text FROM instances WHERE session = $1",
                &[&session],
            )? {
                let address: String = row.get(0);
                let text: String = row.get(1);
                let record: InstanceRecord = serde_json::from_str(&text).map_err(|e| {
                    self.damaged(format!(
                        "instance `{address}` of session `{session}` cannot be read: {e}"
                    ))
                })?;
                snapshot.instances.insert(record.address.clone(), record);
            }
            for row in tx.query(
                "SELECT name, value::text, sensitive FROM outputs WHERE session = $1",
                &[&session],
            )? {
                let name: String = row.get(0);
                let text: String = row.get(1);
                let value = serde_json::from_str(&text).map_err(|e| {
                    self.damaged(format!(
                        "output `{name}` of session `{session}` cannot be read: {e}"
                    ))
                })?;
                snapshot.outputs.insert(
                    name,
                    OutputRecord {
                        value,
                        sensitive: row.get(2),
                    },
                );
            }
            // Read only: a failed commit loses nothing, so it may be retried.
            tx.commit()?;
            Ok(snapshot)
        })
    }

    fn put_instance(&self, session: &str, record: &InstanceRecord) -> StateResult<u64> {
        let json = serde_json::to_string(record).map_err(|e| StateError::Backend {
            location: self.location.clone(),
            message: format!("cannot encode instance `{}`: {e}", record.address),
        })?;
        let address = record.address.to_string();
        let status = match record.status {
            super::InstanceStatus::Ready => "ready",
            super::InstanceStatus::Tainted => "tainted",
        };
        self.run(true, |c| {
            let mut tx = c.client.transaction()?;
            let serial = self.bump(&mut c.statements, &mut tx, session)?;
            let st = prepared(&mut c.statements, &mut tx, SQL_PUT_INSTANCE)?;
            tx.execute(&st, &[&session, &address, &record.platform, &status, &json])?;
            tx.commit().map_err(Fail::Commit)?;
            Ok(serial)
        })
    }

    fn remove_instance(&self, session: &str, address: &InstanceAddr) -> StateResult<u64> {
        let address = address.to_string();
        self.run(true, |c| {
            let mut tx = c.client.transaction()?;
            let serial = self.bump(&mut c.statements, &mut tx, session)?;
            let st = prepared(&mut c.statements, &mut tx, SQL_REMOVE_INSTANCE)?;
            tx.execute(&st, &[&session, &address])?;
            tx.commit().map_err(Fail::Commit)?;
            Ok(serial)
        })
    }

    fn put_outputs(
        &self,
        session: &str,
        outputs: &BTreeMap<String, OutputRecord>,
    ) -> StateResult<u64> {
        let encoded = encode_outputs(&self.location, outputs)?;
        self.run(true, |c| {
            let mut tx = c.client.transaction()?;
            let serial = self.bump(&mut c.statements, &mut tx, session)?;
            tx.execute("DELETE FROM outputs WHERE session = $1", &[&session])?;
            let st = prepared(&mut c.statements, &mut tx, SQL_PUT_OUTPUT)?;
            for (name, value, sensitive) in &encoded {
                tx.execute(&st, &[&session, name, value, sensitive])?;
            }
            tx.commit().map_err(Fail::Commit)?;
            Ok(serial)
        })
    }

    fn import(&self, session: &str, snapshot: &Snapshot) -> StateResult<u64> {
        let outputs = encode_outputs(&self.location, &snapshot.outputs)?;
        let mut instances = Vec::with_capacity(snapshot.instances.len());
        for record in snapshot.instances.values() {
            let json = serde_json::to_string(record).map_err(|e| StateError::Backend {
                location: self.location.clone(),
                message: format!("cannot encode instance `{}`: {e}", record.address),
            })?;
            let status = match record.status {
                super::InstanceStatus::Ready => "ready",
                super::InstanceStatus::Tainted => "tainted",
            };
            instances.push((
                record.address.to_string(),
                record.platform.clone(),
                status,
                json,
            ));
        }
        let serial_floor = i64::try_from(snapshot.serial).map_err(|_| StateError::Backend {
            location: self.location.clone(),
            message: format!("the snapshot's serial {} is too large", snapshot.serial),
        })?;
        // An empty lineage keeps the session's (or makes a fresh one).
        let lineage = Some(snapshot.lineage.as_str()).filter(|l| !l.is_empty());
        let fresh_lineage = uuid::Uuid::new_v4().to_string();
        self.run(true, |c| {
            let mut tx = c.client.transaction()?;
            let now = now_rfc3339();
            // The serial moves past both the imported one and the current one.
            tx.execute(
                "INSERT INTO sessions (name, lineage, serial, created_at, updated_at) \
                 VALUES ($1, coalesce($2, $3), $4, $5, $5) \
                 ON CONFLICT (name) DO UPDATE SET \
                   lineage = coalesce($2, sessions.lineage), \
                   serial = GREATEST(sessions.serial, excluded.serial)",
                &[&session, &lineage, &fresh_lineage, &serial_floor, &now],
            )?;
            let serial = self.bump(&mut c.statements, &mut tx, session)?;
            tx.execute("DELETE FROM instances WHERE session = $1", &[&session])?;
            tx.execute("DELETE FROM outputs WHERE session = $1", &[&session])?;
            let st = prepared(&mut c.statements, &mut tx, SQL_PUT_INSTANCE)?;
            for (address, platform, status, json) in &instances {
                tx.execute(&st, &[&session, address, platform, status, json])?;
            }
            let st = prepared(&mut c.statements, &mut tx, SQL_PUT_OUTPUT)?;
            for (name, value, sensitive) in &outputs {
                tx.execute(&st, &[&session, name, value, sensitive])?;
            }
            tx.commit().map_err(Fail::Commit)?;
            Ok(serial)
        })
    }

    fn lock(&self, request: LockInfo, timeout: Duration) -> StateResult<Box<dyn SessionLock>> {
        let key = session_lock_key(&request.session);
        let mut conn = self.open()?;
        let client = &mut conn.client;
        let deadline = Instant::now() + timeout;
        let lock_err = |e: postgres::Error| self.fail(Fail::Pg(e), false);
        loop {
            let got: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map_err(lock_err)?
                .get(0);
            if got {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                // The holder writes its row right after it gets the lock:
                // give it a moment before reporting an anonymous holder.
                let mut holder = None;
                for _ in 0..5 {
                    match self.lock_holder_on(client, &request.session) {
                        Ok(Some(h)) if h.id != "unknown" => {
                            holder = Some(h);
                            break;
                        }
                        Ok(h) => holder = h,
                        Err(f) => return Err(self.fail(f, false)),
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                match holder {
                    Some(holder) => {
                        return Err(StateError::Locked {
                            session: request.session.clone(),
                            holder,
                        })
                    }
                    // Let go in the meantime: try once more.
                    None => continue,
                }
            }
            std::thread::sleep(LOCK_POLL.min(deadline - now));
        }
        let pid = i64::from(request.pid);
        let written = client
            .execute(
                "INSERT INTO locks (session, id, operation, \"user\", host, pid, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (session) DO UPDATE SET id = excluded.id, \
                   operation = excluded.operation, \"user\" = excluded.\"user\", \
                   host = excluded.host, pid = excluded.pid, created_at = excluded.created_at",
                &[
                    &request.session,
                    &request.id,
                    &request.operation,
                    &request.user,
                    &request.host,
                    &pid,
                    &request.created_at,
                ],
            )
            .and_then(|_| client.query_one("SELECT pg_backend_pid()", &[]));
        let backend_pid: i32 = match written {
            Ok(row) => row.get(0),
            Err(e) => {
                // Dropping the connection releases the advisory lock.
                return Err(self.fail(Fail::Pg(e), false));
            }
        };
        relock(&self.held).insert(request.session.clone(), backend_pid);
        Ok(Box::new(PgSessionLock {
            client: Some(conn.client),
            key,
            backend_pid,
            info: request,
            held: Arc::clone(&self.held),
        }))
    }

    fn lock_holder(&self, session: &str) -> StateResult<Option<LockInfo>> {
        self.run(false, |c| self.lock_holder_on(&mut c.client, session))
    }

    fn force_unlock(&self, session: &str, id: &str) -> StateResult<()> {
        let key = session_lock_key(session);
        let (classid, objid) = key_parts(key);
        let no_such = || StateError::NoSuchLock {
            session: session.to_string(),
            id: id.to_string(),
        };
        let pid = self.run(true, |c| {
            let row_id: Option<String> = c
                .client
                .query_opt("SELECT id FROM locks WHERE session = $1", &[&session])?
                .map(|r| r.get(0));
            if row_id.as_deref() != Some(id) {
                return Err(no_such().into());
            }
            let pid: Option<i32> = c
                .client
                .query_opt(SQL_LOCK_PID, &[&classid, &objid])?
                .map(|r| r.get(0));
            let Some(pid) = pid else {
                // The holder is gone already: only its row is left.
                c.client.execute(
                    "DELETE FROM locks WHERE session = $1 AND id = $2",
                    &[&session, &id],
                )?;
                return Ok(None);
            };
            let ended: bool = c
                .client
                .query_one("SELECT pg_terminate_backend($1)", &[&pid])?
                .get(0);
            if !ended {
                return Err(StateError::Backend {
                    location: self.location.clone(),
                    message: format!(
                        "could not end the connection (backend pid {pid}) holding the lock on session `{session}`; the PostgreSQL user needs the holder's role or `pg_signal_backend`"
                    ),
                }
                .into());
            }
            Ok(Some(pid))
        })?;
        let Some(pid) = pid else { return Ok(()) };
        // The backend exits asynchronously; wait until the lock is free.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let still = self.run(false, |c| {
                Ok(c.client
                    .query_opt(SQL_LOCK_PID, &[&classid, &objid])?
                    .map(|r| r.get::<_, i32>(0))
                    == Some(pid))
            })?;
            if !still {
                break;
            }
            if Instant::now() >= deadline {
                return Err(StateError::Backend {
                    location: self.location.clone(),
                    message: format!(
                        "the connection (backend pid {pid}) holding the lock on session `{session}` was told to end but still holds it after 10s; try again"
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.run(true, |c| {
            c.client.execute(
                "DELETE FROM locks WHERE session = $1 AND id = $2",
                &[&session, &id],
            )?;
            Ok(())
        })
    }
}

fn encode_outputs(
    location: &str,
    outputs: &BTreeMap<String, OutputRecord>,
) -> StateResult<Vec<(String, String, bool)>> {
    outputs
        .iter()
        .map(|(name, o)| {
            serde_json::to_string(&o.value)
                .map(|v| (name.clone(), v, o.sensitive))
                .map_err(|e| StateError::Backend {
                    location: location.to_string(),
                    message: format!("cannot encode output `{name}`: {e}"),
                })
        })
        .collect()
}

/// A held session lock: an advisory lock on its own connection.
struct PgSessionLock {
    client: Option<Client>,
    key: i64,
    backend_pid: i32,
    info: LockInfo,
    held: Arc<Mutex<HashMap<String, i32>>>,
}

impl SessionLock for PgSessionLock {
    fn info(&self) -> &LockInfo {
        &self.info
    }
}

impl Drop for PgSessionLock {
    fn drop(&mut self) {
        {
            let mut held = relock(&self.held);
            if held.get(&self.info.session) == Some(&self.backend_pid) {
                held.remove(&self.info.session);
            }
        }
        if let Some(mut client) = self.client.take() {
            // Errors are ignored: a dead connection has released the lock
            // already, and closing the connection below releases it anyway.
            let _ = client.execute(
                "DELETE FROM locks WHERE session = $1 AND id = $2",
                &[&self.info.session, &self.info.id],
            );
            let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&self.key]);
            let _ = client.close();
        }
    }
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

    #[test]
    fn migrations_are_numbered_without_gaps_up_to_the_schema_version() {
        for (i, (version, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(session_lock_key("default"), session_lock_key("default"));
        assert_ne!(session_lock_key("default"), session_lock_key("ci-1"));
        let (hi, lo) = key_parts(-2);
        assert_eq!((hi, lo), (u32::MAX, u32::MAX - 1));
    }
}
