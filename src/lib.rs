//! tg (TestGrid): a declarative plan engine for programmable test environments.
//!
//! The data flows one way, and the modules follow it:
//! `config` (HCL → typed, evaluated model with spans) → `graph` (instances and
//! their dependencies) → `plan` (diff against recorded state) → `apply` (a
//! concurrent walk of the plan) → `state` (stores) and `platform` (drivers).
//! `cli` is the only module that prints; everything else returns values,
//! typed errors or [`diagnostics::Diagnostic`]s.
//!
//! See `ARCHITECTURE.md` for the one-page map and its invariants.

// State errors carry the lock holder's record so a refusal can say who holds
// the lock; they are rare and never on a hot path, so their size is fine.
#![allow(clippy::result_large_err)]

pub mod addrs;
pub mod apply;
pub mod cli;
pub mod config;
pub mod diagnostics;
pub mod environment;
pub mod files;
pub mod format;
pub mod graph;
pub mod names;
pub mod ops;
pub mod plan;
pub mod platform;
pub mod serve;
pub mod ssh_keys;
pub mod state;
pub mod units;
