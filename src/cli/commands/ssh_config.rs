//! `tg ssh-config`: an OpenSSH client config for the session's netns nodes
//! and pool hosts (`tg ssh-config > ssh.cfg; ssh -F ssh.cfg edge-0`,
//! `scp -F`, `sftp -F`), and `tg ssh TARGET [-- CMD...]`, which runs the
//! system `ssh` with the same settings (passed as arguments, never through
//! a shell).
//! Not here: quoting and the blocks themselves (`ops::ssh_args`).

use std::os::unix::process::CommandExt;

use crate::cli::args::SshArgs;
use crate::cli::commands::inventory::ssh_reach;
use crate::cli::commands::output::load_with_platforms;
use crate::cli::report::{self, CmdResult, Failed};
use crate::cli::Ctx;
use crate::ops;
use crate::platform::{Spec, SshLogin};
use crate::state::Snapshot;

pub fn run(ctx: &Ctx) -> i32 {
    match run_inner(ctx) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

/// The recorded netns nodes: (hostname, first address, instance address).
fn netns_hosts(snap: &crate::state::Snapshot) -> Vec<(String, String, String)> {
    snap.instances
        .values()
        .filter(|r| r.platform == "netns")
        .filter_map(|r| match &r.spec {
            Spec::Node(n) => n.interfaces.first().map(|i| {
                (
                    n.hostname.clone(),
                    i.address.to_string(),
                    r.address.to_string(),
                )
            }),
            _ => None,
        })
        .collect()
}

/// The recorded nodes that are pool hosts: (hostname, login, instance
/// address).
fn pool_hosts(
    snap: &Snapshot,
    platforms: &crate::platform::registry::Registry,
) -> Vec<(String, SshLogin, String)> {
    let logins = ops::ssh_logins(platforms, snap);
    snap.instances
        .values()
        .filter_map(|r| match &r.spec {
            Spec::Node(n) => logins
                .get(&r.address.to_string())
                .map(|l| (n.hostname.clone(), l.clone(), r.address.to_string())),
            _ => None,
        })
        .collect()
}

fn run_inner(ctx: &Ctx) -> CmdResult<i32> {
    let (snap, platforms) = load_with_platforms(ctx)?;
    let reach = ssh_reach(ctx, &snap);
    let hosts: Vec<(String, String)> = netns_hosts(&snap)
        .into_iter()
        .map(|(h, a, _)| (h, a))
        .collect();
    let key = ops::session_ssh_dir(&reach.testbed_dir, ctx.session.as_str())
        .join(ops::ssh_files::CLIENT_KEY);
    let mut text = ops::ssh_config_file(&reach, &hosts, key.is_file().then_some(key.as_path()))
        .map_err(report::fail)?;
    let pool: Vec<(String, SshLogin)> = pool_hosts(&snap, &platforms)
        .into_iter()
        .map(|(h, l, _)| (h, l))
        .collect();
    text.push_str(&ops::ssh_login_blocks(&pool).map_err(report::fail)?);
    print!("{text}");
    Ok(0)
}

pub fn ssh(ctx: &Ctx, args: &SshArgs) -> i32 {
    match ssh_inner(ctx, args) {
        Ok(code) => code,
        Err(Failed(code)) => code,
    }
}

/// The command line as one string for the remote shell: each argument
/// quoted, so the node runs exactly this argv, as `tg exec` does.
fn remote_line(command: &[String]) -> CmdResult<Option<String>> {
    if command.is_empty() {
        return Ok(None);
    }
    shlex::try_join(command.iter().map(String::as_str))
        .map(Some)
        .map_err(|_| report::fail("the command holds a NUL byte"))
}

/// `ssh` to a pool host, as its pool logs in.
fn ssh_pool_host(login: &SshLogin, command: &[String]) -> CmdResult<i32> {
    let mut cmd = std::process::Command::new("ssh");
    cmd.args(ops::ssh_login_options(login).map_err(report::fail)?);
    cmd.arg("-i").arg(&login.identity_file);
    cmd.arg("-p").arg(login.port.to_string());
    cmd.args(["-l", login.user.as_str(), "--", login.address.as_str()]);
    if let Some(line) = remote_line(command)? {
        cmd.arg(line);
    }
    let err = cmd.exec();
    Err(report::fail(format!(
        "cannot run `ssh`: {err} (install openssh-client)"
    )))
}

fn ssh_inner(ctx: &Ctx, args: &SshArgs) -> CmdResult<i32> {
    let (snap, platforms) = load_with_platforms(ctx)?;
    let pool = pool_hosts(&snap, &platforms);
    if let Some((_, login, _)) = pool
        .iter()
        .find(|(h, _, a)| *h == args.target || *a == args.target)
    {
        return ssh_pool_host(login, &args.command);
    }
    let hosts = netns_hosts(&snap);
    let Some((_, addr, instance)) = hosts
        .iter()
        .find(|(h, _, a)| *h == args.target || *a == args.target)
    else {
        let names: Vec<&str> = hosts
            .iter()
            .map(|(h, _, _)| h.as_str())
            .chain(pool.iter().map(|(h, _, _)| h.as_str()))
            .collect();
        let hint = match crate::diagnostics::did_you_mean(&args.target, names.iter().copied()) {
            Some(s) => format!(": did you mean `{s}`?"),
            None => ": give a node's hostname or address (`tg ssh-config` lists them)".into(),
        };
        return Err(report::fail(format!(
            "no netns node or pool host `{}` in session `{}`{hint}",
            args.target, ctx.session
        )));
    };
    let reach = ssh_reach(ctx, &snap);
    if let Some(kh) = reach.known_hosts.as_ref().filter(|kh| !kh.is_file()) {
        eprintln!(
            "warning: the session's known hosts file `{}` is missing, so ssh cannot check host keys and refuses them: run `tg apply` to write it again",
            kh.display()
        );
    }
    let mut cmd = std::process::Command::new("ssh");
    cmd.args(reach.ssh_options().map_err(report::fail)?);
    let key = ops::session_ssh_dir(&reach.testbed_dir, ctx.session.as_str())
        .join(ops::ssh_files::CLIENT_KEY);
    if key.is_file() {
        cmd.arg("-i").arg(&key).args(["-o", "IdentitiesOnly=yes"]);
    }
    cmd.args(["-l", "root", addr.as_str()]);
    if let Some(line) = remote_line(&args.command)? {
        cmd.arg("--").arg(line);
    }
    // Waited for, not exec'd: when ssh itself fails (255), the reason may
    // be the node's server, whose log only `tg exec` reads.
    let status = cmd
        .status()
        .map_err(|err| report::fail(format!("cannot run `ssh`: {err} (install openssh-client)")))?;
    let code = exit_code(status);
    if code == 255 {
        eprintln!("{}", sshd_log_hint(instance, &ctx.session));
    }
    Ok(code)
}

/// A child's exit status as a process exit code (128+N for signal N).
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// What to read when ssh to the netns node `instance` failed: the node's
/// SSH server log (its server starts per connection, so a broken config
/// shows only there).
fn sshd_log_hint(instance: &str, session: &crate::names::SessionName) -> String {
    let quoted = shlex::try_quote(instance).unwrap_or(instance.into());
    let session = if *session == crate::names::SessionName::default_session() {
        String::new()
    } else {
        format!(" -session {}", session.as_str())
    };
    format!(
        "help: the node's SSH server log: `tg{session} exec {quoted} -- cat {}`",
        crate::platform::netns::sshd::LOG_IN_NODE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_ssh_names_the_nodes_server_log() {
        let default = crate::names::SessionName::default_session();
        assert_eq!(
            sshd_log_hint("node.web[0]", &default),
            "help: the node's SSH server log: `tg exec 'node.web[0]' -- cat /run/tg-sshd.log`"
        );
        let pr = crate::names::SessionName::parse("pr-7").unwrap();
        assert_eq!(
            sshd_log_hint("node.db", &pr),
            "help: the node's SSH server log: `tg -session pr-7 exec node.db -- cat /run/tg-sshd.log`"
        );
    }
}
