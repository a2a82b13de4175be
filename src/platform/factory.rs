//! Building platforms: one [`Driver`] per kind, a [`Registry`] per testbed.
//!
//! A driver knows how to make platforms of its kind (`netns`, `ssh`). The
//! caller assembles a [`Factory`] from the drivers it offers (the CLI: the
//! built-in ones, plus the test double for tg's own tests; a library user:
//! whatever it wants), and the factory turns a testbed's `platform "KIND"
//! "NAME"` blocks into the platforms of one run. Nothing here knows a list
//! of platform names: `config` checks names against [`Factory::kinds`].
//!
//! Not here: choosing a platform for a node (`plan::placement`).

use std::sync::Arc;

use super::registry::Registry;
use super::Platform;
use crate::config::model::PlatformConfig;
use crate::environment::Environment;

/// A maker of platforms of one kind.
pub trait Driver: Send + Sync {
    /// The kind users write in `platform "KIND" "NAME"` and `platform = "KIND"`.
    fn kind(&self) -> &str;

    /// The platform this driver offers without any block (named like the
    /// kind), if it has one: `netns` needs no configuration, a pool does.
    fn implicit(&self) -> Option<Arc<dyn Platform>> {
        None
    }

    /// The platform of one `platform "KIND" "NAME"` block. The error says
    /// what is wrong with the block (shown with its name).
    fn build(&self, block: &PlatformConfig, env: &Environment)
        -> Result<Arc<dyn Platform>, String>;
}

/// A problem building one platform block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("platform `{name}` (kind `{kind}`): {message}")]
pub struct BuildError {
    pub kind: String,
    pub name: String,
    pub message: String,
}

/// The drivers one caller offers.
#[derive(Clone, Default)]
pub struct Factory {
    drivers: Vec<Arc<dyn Driver>>,
}

impl Factory {
    /// A factory with no driver.
    pub fn new() -> Factory {
        Factory::default()
    }

    /// The same factory with `driver` added (a later driver of the same
    /// kind replaces an earlier one).
    pub fn with(mut self, driver: Arc<dyn Driver>) -> Factory {
        self.drivers.retain(|d| d.kind() != driver.kind());
        self.drivers.push(driver);
        self
    }

    /// The driver kinds offered, in preference order.
    pub fn kinds(&self) -> Vec<String> {
        self.drivers.iter().map(|d| d.kind().to_string()).collect()
    }

    /// The platforms of a testbed: every driver's implicit platform, then
    /// one per `platform` block (a block of an unknown kind is an error).
    /// Implicit platforms come first in preference order: a node that
    /// names no platform is put on the first that accepts it.
    pub fn registry(
        &self,
        blocks: &[PlatformConfig],
        env: &Environment,
    ) -> Result<Registry, Vec<BuildError>> {
        let mut registry = Registry::new();
        let mut errors = Vec::new();
        for d in &self.drivers {
            if let Some(p) = d.implicit() {
                registry.register(p);
            }
        }
        for b in blocks {
            let Some(d) = self.drivers.iter().find(|d| d.kind() == b.driver) else {
                errors.push(BuildError {
                    kind: b.driver.clone(),
                    name: b.name.clone(),
                    message: format!(
                        "no driver of this kind is available here (available: {})",
                        self.kinds().join(", ")
                    ),
                });
                continue;
            };
            if registry.get(&b.name).is_some() {
                errors.push(BuildError {
                    kind: b.driver.clone(),
                    name: b.name.clone(),
                    message: "the name is already taken by another platform".into(),
                });
                continue;
            }
            match d.build(b, env) {
                Ok(p) => registry.register(p),
                Err(message) => errors.push(BuildError {
                    kind: b.driver.clone(),
                    name: b.name.clone(),
                    message,
                }),
            }
        }
        if errors.is_empty() {
            Ok(registry)
        } else {
            Err(errors)
        }
    }
}
