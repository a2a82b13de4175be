//! Integration tests: one binary, one module per area. They run the real
//! `tg` binary (see `support`) or the library against real backends.

mod fmt;
mod state_postgres;
mod state_sqlite;
mod netns;
mod netns_node;
mod support;
