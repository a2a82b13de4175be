//! `tg ssh-config`: an OpenSSH client config for the session's netns nodes
//! (`tg ssh-config > ssh.cfg; ssh -F ssh.cfg edge-0`, `scp -F`, `sftp -F`).
//! Not here: quoting and the blocks themselves (`ops::ssh_args`).

use crate::cli::commands::inventory::ssh_reach;
use crate::cli::commands::output::load_snapshot;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops;
use crate::platform::Spec;

pub fn run(ctx: &Ctx) -> i32 {
    match run_inner(ctx) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

fn run_inner(ctx: &Ctx) -> CmdResult<i32> {
    let snap = load_snapshot(ctx)?;
    let reach = ssh_reach(ctx);
    let hosts: Vec<(String, String)> = snap
        .instances
        .values()
        .filter(|r| r.platform == "netns")
        .filter_map(|r| match &r.spec {
            Spec::Node(n) => n
                .interfaces
                .first()
                .map(|i| (n.hostname.clone(), i.address.to_string())),
            _ => None,
        })
        .collect();
    let key = ops::session_ssh_dir(&reach.testbed_dir, ctx.session.as_str()).join("id_ed25519");
    let text = ops::ssh_config_file(&reach, &hosts, key.is_file().then_some(key.as_path()))
        .map_err(report::fail)?;
    print!("{text}");
    Ok(0)
}
