//! The netns driver: the implicit `netns` platform, and one per
//! `platform "netns" "NAME"` block (same host, its own name).

use std::sync::Arc;

use super::{NetnsOptions, NetnsPlatform};
use crate::config::model::PlatformConfig;
use crate::environment::Environment;
use crate::platform::factory::Driver;
use crate::platform::Platform;

/// Makes netns platforms with one set of host options. They all work on
/// this host's objects, so they share one set of session locks.
pub struct NetnsDriver {
    base: NetnsPlatform,
}

impl NetnsDriver {
    pub fn new(options: NetnsOptions) -> NetnsDriver {
        NetnsDriver {
            base: NetnsPlatform::new(options),
        }
    }
}

impl Driver for NetnsDriver {
    fn kind(&self) -> &str {
        "netns"
    }

    fn implicit(&self) -> Option<Arc<dyn Platform>> {
        Some(Arc::new(self.base.clone()))
    }

    fn build(
        &self,
        block: &PlatformConfig,
        _env: &Environment,
    ) -> Result<Arc<dyn Platform>, String> {
        if let Some(k) = block.attributes.keys().next() {
            return Err(format!("a netns platform takes no attributes, found `{k}`"));
        }
        Ok(Arc::new(self.base.clone().named(&block.name)))
    }
}
