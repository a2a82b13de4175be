//! One file per command: parse options, call the library, print, return the exit code.

pub mod apply;
pub mod capture;
pub mod console;
pub mod destroy;
pub mod exec;
pub mod fmt;
pub mod force_unlock;
pub mod graph;
pub mod impair;
pub mod init;
pub mod inventory;
pub mod output;
pub mod plan;
pub mod platforms;
pub mod pool;
pub mod proxy;
pub mod serve;
pub mod session;
pub mod show;
pub mod ssh_config;
pub mod state;
pub mod validate;
pub mod version;
