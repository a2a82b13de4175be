//! The `ssh` platform: a shared pool of existing hosts, leased per session.
//!
//! Today only the driver's shape: `platform "ssh" "NAME"` blocks are
//! accepted and become a platform that refuses every node with a clear
//! reason, so a testbed that declares a pool validates and plans its other
//! nodes. The pool itself (placement on hosts, leases, SSH) comes with the
//! pool issue.

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::model::PlatformConfig;
use crate::environment::Environment;
use crate::platform::factory::Driver;
use crate::platform::{
    Capability, CreateRequest, CreateResponse, DeleteRequest, ExecRequest, ExecStatus, NodeSpec,
    Platform, PlatformError, PlatformResult, ReadRequest, ReadResponse, UpdateRequest,
};

/// Makes `ssh` pool platforms.
#[derive(Debug, Default)]
pub struct SshDriver;

impl Driver for SshDriver {
    fn kind(&self) -> &str {
        "ssh"
    }

    fn build(
        &self,
        block: &PlatformConfig,
        _env: &Environment,
    ) -> Result<Arc<dyn Platform>, String> {
        Ok(Arc::new(SshPool {
            name: block.name.clone(),
        }))
    }
}

/// A pool of hosts (not yet able to host nodes).
struct SshPool {
    name: String,
}

fn unavailable(name: &str) -> PlatformError {
    PlatformError::new(format!(
        "the ssh pool `{name}` cannot make anything yet: this tg does not drive ssh pools"
    ))
}

#[async_trait]
impl Platform for SshPool {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "ssh"
    }

    fn check_node(&self, _spec: &NodeSpec) -> Capability {
        Capability {
            refused: Some("this tg does not drive ssh pools yet".into()),
            warnings: Vec::new(),
        }
    }

    async fn create(&self, _req: CreateRequest) -> PlatformResult<CreateResponse> {
        Err(unavailable(&self.name))
    }
    async fn read(&self, _req: ReadRequest) -> PlatformResult<ReadResponse> {
        Err(unavailable(&self.name))
    }
    async fn update(&self, _req: UpdateRequest) -> PlatformResult<CreateResponse> {
        Err(unavailable(&self.name))
    }
    async fn delete(&self, _req: DeleteRequest) -> PlatformResult<()> {
        Err(unavailable(&self.name))
    }
    async fn exec(&self, _req: ExecRequest) -> PlatformResult<ExecStatus> {
        Err(unavailable(&self.name))
    }
}
