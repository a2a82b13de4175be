//! Integration tests: one binary, one module per area. They run the real
//! `tg` binary (see `support`) or the library against real backends.
#![allow(clippy::result_large_err)]

mod ansible;
mod capture;
mod cli_conventions;
mod cli_plan;
mod config_props;
mod console;
mod e2e_netns;
mod engine;
mod engine_library;
mod examples;
mod fmt;
mod impair;
mod messages;
mod moved;
mod netns;
mod netns_node;
mod netns_sandbox;
mod pool;
mod pool_auth;
mod pool_segment;
mod pool_sshd;
mod serve;
mod serve_files;
mod serve_shared;
mod state_contract;
mod state_postgres;
mod state_sqlite;
mod support;
mod validate;
mod wait_for;
