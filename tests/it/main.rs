//! Integration tests: one binary, one module per area. They run the real
//! `tg` binary (see `support`) or the library against real backends.

mod config_props;
mod support;
mod validate;
