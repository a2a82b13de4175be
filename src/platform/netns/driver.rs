//! The netns driver: the implicit `netns` platform, and one per
//! `platform "netns" "NAME"` block (same host, its own name).

use std::sync::Arc;

use super::{NetnsOptions, NetnsPlatform};
use crate::config::model::PlatformConfig;
use crate::environment::Environment;
use crate::platform::factory::Driver;
use crate::platform::Platform;

/// Makes netns platforms with one set of host options.
pub struct NetnsDriver {
    options: NetnsOptions,
}

impl NetnsDriver {
    pub fn new(options: NetnsOptions) -> NetnsDriver {
        NetnsDriver { options }
    }
}

impl Driver for NetnsDriver {
    fn kind(&self) -> &str {
        "netns"
    }

    fn implicit(&self) -> Option<Arc<dyn Platform>> {
        Some(Arc::new(NetnsPlatform::new(self.options.clone())))
    }

    fn build(
        &self,
        block: &PlatformConfig,
        _env: &Environment,
    ) -> Result<Arc<dyn Platform>, String> {
        if let Some(k) = block.attributes.keys().next() {
            return Err(format!("a netns platform takes no attributes, found `{k}`"));
        }
        Ok(Arc::new(
            NetnsPlatform::new(self.options.clone()).named(&block.name),
        ))
    }
}
