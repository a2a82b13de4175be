//! Printing errors, once, at the edge: `error: MESSAGE` on stderr, the
//! testbed's diagnostics with their sources, and who holds a lock.

use crate::diagnostics::{self, SourceMap};
use crate::ops::OpsError;
use crate::state::StateError;

/// A command failed; the message was already printed. Carries the exit code.
#[derive(Debug, Clone, Copy)]
pub struct Failed(pub i32);

pub type CmdResult<T> = Result<T, Failed>;

/// Print `error: MESSAGE` on stderr and fail with exit code 1.
pub fn fail(message: impl std::fmt::Display) -> Failed {
    eprintln!("error: {message}");
    Failed(1)
}

/// Print an engine error once: diagnostics rendered with their sources
/// (as `tg validate -json`'s document when `json`), a lock refusal with its
/// holder, anything else as one line.
pub fn ops_error(e: OpsError, sources: Option<&SourceMap>, json: bool, operation: &str) -> Failed {
    match e {
        OpsError::Load(l) | OpsError::Plan(l) => {
            if json {
                crate::cli::commands::validate::print_json(&l.diagnostics, &l.sources);
            } else {
                eprint!("{}", diagnostics::render_all(&l.diagnostics, &l.sources));
            }
            Failed(1)
        }
        OpsError::Diagnostics(d) => {
            let empty = SourceMap::default();
            let sources = sources.unwrap_or(&empty);
            if json {
                crate::cli::commands::validate::print_json(&d, sources);
            } else {
                eprint!("{}", diagnostics::render_all(&d, sources));
            }
            Failed(1)
        }
        OpsError::State(b) if matches!(*b, StateError::Locked { .. }) => {
            let StateError::Locked { session, holder } = *b else {
                unreachable!("matched above")
            };
            eprintln!("error: session `{session}` is locked, so tg cannot {operation} it now");
            eprintln!();
            eprintln!("  lock id:   {}", holder.id);
            eprintln!("  operation: {}", holder.operation);
            eprintln!("  who:       {}@{}", holder.user, holder.host);
            eprintln!("  pid:       {}", holder.pid);
            eprintln!("  since:     {}", holder.created_at);
            eprintln!();
            eprintln!("  help: wait for it to finish (or use `-lock-timeout 5m`); if that process is gone, run `tg force-unlock {}`", holder.id);
            Failed(1)
        }
        other => fail(other),
    }
}
