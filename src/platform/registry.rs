//! The platforms of one run, by name, and which of them can host a node.
//!
//! A [`Registry`] is built by a [`super::factory::Factory`] from a testbed's
//! platform blocks. It answers "which platform is `pool-a`", "which
//! platforms are of kind `ssh`" and "which platform, in preference order,
//! accepts this node". Not here: the placement of whole plans
//! (`plan::placement`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{NodeSpec, Platform};

/// The platforms available to one run.
#[derive(Clone, Default)]
pub struct Registry {
    platforms: BTreeMap<String, Arc<dyn Platform>>,
    /// The order in which platforms are tried when a node names none.
    preference: Vec<String>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn register(&mut self, platform: Arc<dyn Platform>) {
        let name = platform.name().to_string();
        if !self.platforms.contains_key(&name) {
            self.preference.push(name.clone());
        }
        self.platforms.insert(name, platform);
    }

    /// The platform named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Platform>> {
        self.platforms.get(name)
    }

    /// Platform names in preference order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.preference.iter().map(String::as_str)
    }

    /// Every registered platform, in preference order.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Platform>> {
        self.preference.iter().filter_map(|n| self.platforms.get(n))
    }

    /// The platforms a node's `platform = "X"` can mean: the platform named
    /// `X`, else every platform of kind `X` (`ssh`: any pool); `None`
    /// asks for every platform. In preference order.
    pub fn candidates(&self, wanted: Option<&str>) -> Vec<&Arc<dyn Platform>> {
        match wanted {
            None => self.all().collect(),
            Some(w) => match self.platforms.get(w) {
                Some(p) => vec![p],
                None => self.all().filter(|p| p.kind() == w).collect(),
            },
        }
    }

    /// The first candidate (see [`Registry::candidates`]) that can host
    /// `spec`, with its warnings, or the reasons each one refused.
    pub fn pick(
        &self,
        spec: &NodeSpec,
        wanted: Option<&str>,
    ) -> Result<(String, Vec<String>), Vec<String>> {
        let mut refusals = Vec::new();
        for p in self.candidates(wanted) {
            let cap = p.check_node(spec);
            match cap.refused {
                None => return Ok((p.name().to_string(), cap.warnings)),
                Some(r) => refusals.push(format!("{}: {r}", p.name())),
            }
        }
        Err(refusals)
    }
}
