//! The `netns` platform: local nodes made of Linux namespaces.
//!
//! To be written. Layout (each file owns one concern):
//! - `names`: host object names derived from the session and instance.
//! - `net`: per-session router namespace, bridges, veths, NAT, isolation.
//! - `node`: a node's persistent namespaces and overlay root filesystem.
//! - `image`: image resolution and building (`host`, `debian:RELEASE`, `dir:PATH`).
//! - `cgroup`: cpu and memory limits.
//! - `exec`: running a command inside a node.
//! - `package`: installing packages inside a node's root filesystem.

pub mod cgroup;
pub mod exec;
pub mod image;
pub mod names;
pub mod net;
pub mod node;
pub mod package;

use std::path::PathBuf;

/// Options of the netns platform.
#[derive(Debug, Clone)]
pub struct NetnsOptions {
    /// Where per-session runtime data lives (default `/run/tg`).
    pub run_dir: PathBuf,
    /// Where built images are cached (default `/var/lib/tg/images`).
    pub image_dir: PathBuf,
}

impl Default for NetnsOptions {
    fn default() -> Self {
        NetnsOptions {
            run_dir: PathBuf::from("/run/tg"),
            image_dir: PathBuf::from("/var/lib/tg/images"),
        }
    }
}

/// The netns platform driver.
#[derive(Debug, Clone)]
pub struct NetnsPlatform {
    pub options: NetnsOptions,
}

impl NetnsPlatform {
    pub fn new(options: NetnsOptions) -> NetnsPlatform {
        NetnsPlatform { options }
    }
}
