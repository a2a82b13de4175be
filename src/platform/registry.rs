//! The platforms tg offers, by name, and the choice of one for a node.

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
        self.preference.push(name.clone());
        self.platforms.insert(name, platform);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Platform>> {
        self.platforms.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.preference.iter().map(String::as_str)
    }

    /// The first platform, in preference order, that can host `spec`, or
    /// the reasons each one refused.
    pub fn pick(&self, spec: &NodeSpec) -> Result<(String, Vec<String>), Vec<String>> {
        let mut refusals = Vec::new();
        for name in &self.preference {
            let cap = self.platforms[name].check_node(spec);
            match cap.refused {
                None => return Ok((name.clone(), cap.warnings)),
                Some(r) => refusals.push(format!("{name}: {r}")),
            }
        }
        Err(refusals)
    }
}

impl Registry {
    /// Every registered platform, in preference order.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Platform>> {
        self.preference.iter().filter_map(|n| self.platforms.get(n))
    }

    /// The driver kinds tg's platforms come from (what `platform "KIND"`
    /// blocks and `platform = "KIND"` may name), `double` included when the
    /// test double is on.
    pub fn driver_kinds() -> Vec<String> {
        let mut kinds = vec!["netns".to_string(), "ssh".to_string()];
        if std::env::var_os(super::testdouble::ENV_DIR).is_some_and(|v| !v.is_empty()) {
            kinds.push("double".to_string());
        }
        kinds
    }

    /// The platforms `tg` offers on this machine: `netns`. The test double
    /// ([`super::testdouble`]) is added only when `TG_TESTDOUBLE_DIR` is set:
    /// it is a test aid, never offered to users.
    pub fn for_this_host() -> Registry {
        let mut r = Registry::new();
        r.register(Arc::new(super::netns::NetnsPlatform::new(
            super::netns::NetnsOptions::default(),
        )));
        if let Some(d) = super::testdouble::TestDouble::from_env() {
            r.register(Arc::new(d));
        }
        r
    }
}
