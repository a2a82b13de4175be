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
//! Session names never need any of this ([`crate::names::SessionName`]
//! admits letters, digits, `-`, `_`, `.` and one `/`), but they are quoted
//! all the same. Not here: the inventory's groups and variables
//! (`ops::inventory`), or making keys.

use std::path::{Path, PathBuf};

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
}
