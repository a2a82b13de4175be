//! How OpenSSH (and Ansible, which runs it) reaches a session's nodes: the
//! `ProxyCommand` through `tg proxy`, the `-o` options of the inventory's
//! `ansible_ssh_common_args`, and the quoting each layer needs.
//!
//! Three layers parse what is built here, and each gets its own quoting:
//! - ssh expands `%` tokens in `ProxyCommand` and `UserKnownHostsFile`:
//!   a literal `%` is written `%%`;
//! - ssh runs `ProxyCommand` with `/bin/sh -c`: every argument is quoted
//!   for a POSIX shell (`shlex`), so a testbed path with spaces or shell
//!   metacharacters stays one word and runs nothing;
//! - Ansible splits `ansible_ssh_common_args` with Python's `shlex.split`:
//!   each `-o` option is quoted again as one word.
//!
//! Pool hosts (`ssh` platform) are reached directly, with the pool's own
//! user, key and `known_hosts` ([`login_options`], [`login_blocks`]).
//!
//! Session names never need any of this ([`crate::names::SessionName`]
//! admits letters, digits, `-`, `_`, `.` and one `/`), but they are quoted
//! all the same. Not here: the inventory's groups and variables
//! (`ops::inventory`), or making keys.

use std::path::{Path, PathBuf};

use crate::platform::SshLogin;

/// What ssh needs to reach the nodes of one session.
#[derive(Debug, Clone)]
pub struct SshReach {
    /// The `tg` executable to name in `ProxyCommand` (absolute).
    pub tg_exe: PathBuf,
    /// The testbed directory, passed to the proxy with `--chdir`.
    pub testbed_dir: PathBuf,
    pub session: String,
    /// The session's known hosts file, when tg knows its nodes' host keys:
    /// host key checking is then on (`StrictHostKeyChecking=yes`).
    pub known_hosts: Option<PathBuf>,
}

/// The folder of a session's SSH files (`.tg/ssh/SESSION/`; an owner's
/// `OWNER/NAME` becomes `OWNER+NAME`): its client key `id_ed25519` and its
/// `known_hosts`.
pub fn session_ssh_dir(testbed_dir: &Path, session: &str) -> PathBuf {
    testbed_dir
        .join(".tg")
        .join("ssh")
        .join(session.replace('/', "+"))
}

/// A path or word that cannot be quoted (it holds a NUL byte or a line break).
#[derive(Debug, thiserror::Error)]
#[error("`{}` cannot be passed to ssh: it holds a NUL byte or a line break", .0.escape_debug())]
pub struct Unquotable(pub String);

/// `s` with every `%` doubled, so ssh's `%` expansion gives `s` back.
fn escape_percent(s: &str) -> String {
    s.replace('%', "%%")
}

fn shell_word(s: &str) -> Result<String, Unquotable> {
    // A line break would end an ssh config line (a new directive).
    if s.contains(['\n', '\r']) {
        return Err(Unquotable(s.to_string()));
    }
    shlex::try_quote(s)
        .map(|q| q.into_owned())
        .map_err(|_| Unquotable(s.to_string()))
}

/// A path as one word of ssh's own option syntax (double quotes, `\` and
/// `"` escaped), with `%` doubled.
fn ssh_option_word(p: &Path) -> String {
    let s = escape_percent(&p.to_string_lossy());
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl SshReach {
    /// The `ProxyCommand` value: `'/path/tg' --chdir '/dir' --session S proxy %h %p`.
    pub fn proxy_command(&self) -> Result<String, Unquotable> {
        let exe = self.tg_exe.to_string_lossy();
        let dir = self.testbed_dir.to_string_lossy();
        let mut words = Vec::new();
        for w in [&*exe, "--chdir", &*dir, "--session", &self.session, "proxy"] {
            words.push(escape_percent(&shell_word(w)?));
        }
        words.push("%h".into());
        words.push("%p".into());
        Ok(words.join(" "))
    }

    /// The `-o` options ssh needs, each one argument (`-o`, `KEY=VALUE`).
    pub fn ssh_options(&self) -> Result<Vec<String>, Unquotable> {
        let mut opts = vec![
            "-o".to_string(),
            format!("ProxyCommand={}", self.proxy_command()?),
        ];
        match &self.known_hosts {
            Some(kh) => {
                opts.push("-o".into());
                opts.push("StrictHostKeyChecking=yes".into());
                opts.push("-o".into());
                opts.push(format!("UserKnownHostsFile={}", ssh_option_word(kh)));
                // The host's own known hosts know nothing of these nodes,
                // and a stale entry there must not stand for one.
                opts.push("-o".into());
                opts.push("GlobalKnownHostsFile=/dev/null".into());
            }
            None => {
                opts.push("-o".into());
                opts.push("StrictHostKeyChecking=no".into());
                opts.push("-o".into());
                opts.push("UserKnownHostsFile=/dev/null".into());
            }
        }
        Ok(opts)
    }

    /// [`Self::ssh_options`] as one string for `ansible_ssh_common_args`
    /// (split again by Python's `shlex`).
    pub fn ansible_common_args(&self) -> Result<String, Unquotable> {
        let opts = self.ssh_options()?;
        shlex::try_join(opts.iter().map(String::as_str)).map_err(|_| Unquotable(opts.join(" ")))
    }
}

/// An OpenSSH client config for `hosts` (hostname, address): one `Host`
/// block each, for `ssh -F FILE HOST`, `scp -F`, `sftp -F` and IDEs.
pub fn config_file(
    reach: &SshReach,
    hosts: &[(String, String)],
    identity: Option<&Path>,
) -> Result<String, Unquotable> {
    let proxy = reach.proxy_command()?;
    let mut out = format!(
        "# tg session `{}` of {}\n",
        reach.session,
        reach.testbed_dir.display()
    );
    for (host, addr) in hosts {
        out.push_str(&format!("\nHost {host}\n  HostName {addr}\n  User root\n"));
        if let Some(k) = identity {
            out.push_str(&format!(
                "  IdentityFile {}\n  IdentitiesOnly yes\n",
                ssh_option_word(k)
            ));
        }
        match &reach.known_hosts {
            Some(kh) => out.push_str(&format!(
                "  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
                ssh_option_word(kh)
            )),
            None => out.push_str(
                "  # tg knows no host keys of this session: host key checking is off\n  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n",
            ),
        }
        out.push_str(&format!("  ProxyCommand {proxy}\n"));
    }
    Ok(out)
}

/// A pool's path for ssh's option syntax; refused when it holds a NUL
/// byte or a line break (a new directive in a config file).
fn login_path(p: &Path) -> Result<String, Unquotable> {
    let s = p.to_string_lossy();
    if s.contains(['\n', '\r', '\0']) {
        return Err(Unquotable(s.into_owned()));
    }
    Ok(ssh_option_word(p))
}

/// A user name or address as a bare word of ssh's config: refused when it
/// holds white space, quotes, `%` or control characters (no user or host
/// name does).
fn login_word(s: &str) -> Result<&str, Unquotable> {
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '%' | '\\'))
    {
        return Err(Unquotable(s.to_string()));
    }
    Ok(s)
}

/// The `-o` options ssh needs for a pool host, each one argument: the
/// pool's `known_hosts` alone, checked strictly (what tg itself checks);
/// with `insecure_accept_host_key` no key is checked, as tg does not.
/// Only the pool's key is offered (`IdentitiesOnly`), as tg offers it. No
/// proxy: the host is reached directly.
pub fn login_options(login: &SshLogin) -> Result<Vec<String>, Unquotable> {
    let mut opts = Vec::new();
    let mut o = |v: String| {
        opts.push("-o".to_string());
        opts.push(v);
    };
    if login.insecure {
        o("UserKnownHostsFile=/dev/null".into());
        o("StrictHostKeyChecking=no".into());
    } else {
        o(format!(
            "UserKnownHostsFile={}",
            login_path(&login.known_hosts)?
        ));
        o("StrictHostKeyChecking=yes".into());
        o("GlobalKnownHostsFile=/dev/null".into());
    }
    o("IdentitiesOnly=yes".into());
    Ok(opts)
}

/// [`login_options`] as one string for `ansible_ssh_common_args`.
pub fn login_common_args(login: &SshLogin) -> Result<String, Unquotable> {
    let opts = login_options(login)?;
    shlex::try_join(opts.iter().map(String::as_str)).map_err(|_| Unquotable(opts.join(" ")))
}

/// OpenSSH config blocks for pool hosts (hostname, login): `HostName`,
/// `Port`, `User`, the pool's key and `known_hosts`, no `ProxyCommand`.
pub fn login_blocks(hosts: &[(String, SshLogin)]) -> Result<String, Unquotable> {
    let mut out = String::new();
    for (host, l) in hosts {
        out.push_str(&format!(
            "\nHost {}\n  HostName {}\n",
            login_word(host)?,
            login_word(&l.address)?
        ));
        if l.port != 22 {
            out.push_str(&format!("  Port {}\n", l.port));
        }
        out.push_str(&format!(
            "  User {}\n  IdentityFile {}\n  IdentitiesOnly yes\n",
            login_word(&l.user)?,
            login_path(&l.identity_file)?
        ));
        if l.insecure {
            out.push_str(
                "  # the pool accepts any host key (`insecure_accept_host_key = true`)\n  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n",
            );
        } else {
            out.push_str(&format!(
                "  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
                login_path(&l.known_hosts)?
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(dir: &str, kh: Option<&str>) -> SshReach {
        SshReach {
            tg_exe: "/opt/my tools/tg".into(),
            testbed_dir: dir.into(),
            session: "pr-1".into(),
            known_hosts: kh.map(PathBuf::from),
        }
    }

    #[test]
    fn every_proxy_argument_is_one_shell_word() {
        let r = reach("/work/a b/$(touch x);`id` 100%", None);
        let cmd = r.proxy_command().unwrap();
        // ssh's % expansion first (%% -> %), leaving %h %p for the host.
        let expanded = cmd.replace("%%", "%");
        let words = shlex::split(&expanded).unwrap();
        assert_eq!(
            words,
            [
                "/opt/my tools/tg",
                "--chdir",
                "/work/a b/$(touch x);`id` 100%",
                "--session",
                "pr-1",
                "proxy",
                "%h",
                "%p"
            ]
        );
    }

    #[test]
    fn common_args_split_back_into_the_options() {
        let r = reach("/t b", Some("/t b/.tg/ssh/pr-1/known_hosts"));
        let args = r.ansible_common_args().unwrap();
        let words = shlex::split(&args).unwrap();
        assert_eq!(words, r.ssh_options().unwrap());
        assert_eq!(words[3], "StrictHostKeyChecking=yes");
        assert_eq!(
            words[5],
            "UserKnownHostsFile=\"/t b/.tg/ssh/pr-1/known_hosts\""
        );
    }

    #[test]
    fn config_blocks_name_every_file() {
        let r = reach("/t b", Some("/t b/.tg/ssh/pr-1/known_hosts"));
        let hosts = [("edge-0".to_string(), "10.0.0.2".to_string())];
        let text =
            config_file(&r, &hosts, Some(Path::new("/t b/.tg/ssh/pr-1/id_ed25519"))).unwrap();
        assert!(
            text.contains("\nHost edge-0\n  HostName 10.0.0.2\n  User root\n"),
            "{text}"
        );
        assert!(
            text.contains("IdentityFile \"/t b/.tg/ssh/pr-1/id_ed25519\""),
            "{text}"
        );
        assert!(text.contains("StrictHostKeyChecking yes"), "{text}");
        assert!(
            text.contains(
                "ProxyCommand '/opt/my tools/tg' --chdir '/t b' --session pr-1 proxy %h %p"
            ),
            "{text}"
        );
    }

    #[test]
    fn line_breaks_are_refused() {
        // They would end a line of the ssh config `tg ssh-config` prints.
        let r = reach("/t\nPermitLocalCommand yes", None);
        assert!(r.proxy_command().is_err());
        assert!(config_file(&r, &[("a".into(), "10.0.0.2".into())], None).is_err());
    }

    #[test]
    fn nul_bytes_are_refused() {
        let r = reach("/a\0b", None);
        assert!(r.proxy_command().is_err());
    }

    fn login(kh: &str) -> SshLogin {
        SshLogin {
            address: "192.0.2.10".into(),
            port: 2222,
            user: "ops".into(),
            identity_file: "/home/a b/.ssh/id_ed25519".into(),
            known_hosts: kh.into(),
            insecure: false,
        }
    }

    #[test]
    fn pool_logins_check_the_pools_known_hosts_without_a_proxy() {
        let l = login("/home/a b/kh 100%");
        let words = shlex::split(&login_common_args(&l).unwrap()).unwrap();
        assert_eq!(words, login_options(&l).unwrap());
        assert_eq!(words[1], "UserKnownHostsFile=\"/home/a b/kh 100%%\"");
        assert_eq!(words[3], "StrictHostKeyChecking=yes");
        assert!(!words.iter().any(|w| w.contains("ProxyCommand")));
        let text = login_blocks(&[("edge-0".into(), l.clone())]).unwrap();
        assert!(
            text.contains("\nHost edge-0\n  HostName 192.0.2.10\n  Port 2222\n  User ops\n  IdentityFile \"/home/a b/.ssh/id_ed25519\"\n"),
            "{text}"
        );
        assert!(text.contains("StrictHostKeyChecking yes"), "{text}");
        assert!(!text.contains("ProxyCommand"), "{text}");
        let insecure = SshLogin {
            insecure: true,
            ..l.clone()
        };
        assert!(login_common_args(&insecure)
            .unwrap()
            .contains("StrictHostKeyChecking=no"));
        // A line break would start a directive of its own.
        assert!(login_blocks(&[("e".into(), login("/k\nProxyCommand x"))]).is_err());
        let spaced = SshLogin {
            user: "a b".into(),
            ..l
        };
        assert!(login_blocks(&[("e".into(), spaced)]).is_err());
    }
}
