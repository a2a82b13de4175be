//! Connections to the PostgreSQL server and what their errors mean.
//!
//! Owns a connection with its prepared statements ([`Conn`]), the split of
//! failures into "nothing was committed" and "the outcome of COMMIT is
//! unknown" ([`Fail`]), telling a lost connection from a refused statement,
//! checked column reads (a hand-edited schema is damage, never a panic), and
//! [`off_runtime`], which keeps the `postgres` client (it runs a runtime of
//! its own) off tokio's threads. It does not decide what to run: the store
//! and the locks do.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use postgres::types::FromSql;
use postgres::{Client, GenericClient, Statement};

use crate::state::codec;
use crate::state::{in_async_context, StateError, StateResult};

/// A connection with its prepared statements.
pub(super) struct Conn {
    pub client: Client,
    pub statements: HashMap<&'static str, Statement>,
}

impl Conn {
    pub fn new(client: Client) -> Conn {
        Conn {
            client,
            statements: HashMap::new(),
        }
    }
}

/// Why an operation on one connection failed.
pub(super) enum Fail {
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
pub(super) fn prepared(
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

pub(super) fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Column `i` of a row of a tg table as `T`. A value tg did not write (a
/// NULL, another type: a hand-edited schema or row) is damage naming
/// `column` and `which` row.
pub(super) fn column<'a, T: FromSql<'a>>(
    location: &str,
    row: &'a postgres::Row,
    i: usize,
    column: &str,
    which: &str,
) -> StateResult<T> {
    row.try_get(i)
        .map_err(|e| codec::bad_column(location, column, which, describe(&e)))
}

/// Run `f`, which uses the blocking `postgres` client, where that is
/// allowed: on this thread, or, when this thread is inside a tokio runtime
/// (where the client's own runtime cannot start), on a helper thread while
/// this one waits. The store is blocking by contract; this keeps a call
/// from async code from panicking.
pub(super) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if !in_async_context() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Does this error mean the connection is gone (rather than the statement
/// being refused)?
pub(super) fn is_connection_error(e: &postgres::Error) -> bool {
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

/// Did a prepared statement go stale because a table it reads changed
/// ("cached plan must not change result type")?
pub(super) fn is_stale_statement(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code() == "0A000")
        && e.as_db_error()
            .is_some_and(|d| d.message().contains("cached plan"))
}

/// A one-line description of a PostgreSQL error.
pub(super) fn describe(e: &postgres::Error) -> String {
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
