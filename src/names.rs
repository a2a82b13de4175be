//! Names that reach shells, kernels and DNS: which strings are safe.
//!
//! Node and network names become host names and parts of host object names;
//! package names and versions reach `apt-get`; session names reach file
//! names, lock records and (quoted) command lines. Anything outside these
//! rules is rejected where the name enters tg (`tg validate` for testbed
//! names, [`SessionName::parse`] for `-session`, `TG_SESSION` and library
//! callers), so no later stage has to quote or escape. Platforms call the
//! same checks to defend against specs that did not come through `config`.
//!
//! Not here: how host objects are named from these (each platform's own
//! `names` module) - host objects use a session's id, never its name.

use std::fmt;

/// Longest host name label (RFC 1123).
pub const MAX_HOSTNAME: usize = 63;

/// A node or network name: lowercase letters, digits and `-`, starting with
/// a letter, not ending with `-`, at most 63 characters. `Err` says why not.
pub fn check_resource_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > MAX_HOSTNAME {
        return Err(format!(
            "it is {} characters long, the limit is {MAX_HOSTNAME}",
            name.len()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("it must start with a lowercase letter".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "it contains `{c}`: only lowercase letters, digits and `-` are allowed"
        ));
    }
    if name.ends_with('-') {
        return Err("it must not end with `-`".into());
    }
    Ok(())
}

/// Longest session name (Jenkins' `BUILD_TAG`, `jenkins-Folder-job-42`, fits).
pub const MAX_SESSION_NAME: usize = 128;

/// A checked session name: letters, digits, `-`, `_` and `.`, starting with
/// a letter or a digit, at most [`MAX_SESSION_NAME`] characters. A session
/// of a `tg serve` user is recorded as `OWNER/NAME`, each part following
/// the same rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct SessionName(String);

impl SessionName {
    /// The default session.
    pub fn default_session() -> SessionName {
        SessionName("default".into())
    }

    /// Check `name`; the error says why it is refused (as the tail of a
    /// message such as "invalid session name `x`: ...").
    pub fn parse(name: &str) -> Result<SessionName, String> {
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() > 2 {
            return Err("it may contain at most one `/` (`OWNER/NAME`)".into());
        }
        for part in &parts {
            check_session_part(part)?;
        }
        if name.len() > MAX_SESSION_NAME * 2 + 1 {
            return Err(format!(
                "it is longer than {} characters",
                MAX_SESSION_NAME * 2 + 1
            ));
        }
        Ok(SessionName(name.to_string()))
    }

    /// `OWNER/NAME` for a session of `owner` (a `tg serve` user).
    pub fn owned(owner: &str, name: &SessionName) -> Result<SessionName, String> {
        check_session_part(owner).map_err(|e| format!("the user name: {e}"))?;
        if name.owner().is_some() {
            return Err("it already names an owner".into());
        }
        Ok(SessionName(format!("{owner}/{}", name.0)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owner part of `OWNER/NAME`, if any.
    pub fn owner(&self) -> Option<&str> {
        self.0.split_once('/').map(|(o, _)| o)
    }

    /// The name without its owner.
    pub fn short(&self) -> &str {
        self.0.split_once('/').map_or(&self.0, |(_, n)| n)
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SessionName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SessionName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SessionName::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for SessionName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SessionName::parse(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid session name `{s}`: {e}")))
    }
}

/// One part of a session name (see [`SessionName`]).
fn check_session_part(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.chars().count() > MAX_SESSION_NAME {
        return Err(format!(
            "it is {} characters long, the limit is {MAX_SESSION_NAME}",
            name.chars().count()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("it must start with a letter or a digit".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "it contains {}: only letters, digits, `-`, `_` and `.` are allowed",
            shown_char(c)
        ));
    }
    Ok(())
}

/// A character as a message shows it: printable ones in backticks, others
/// by their code point (a control or bidirectional character must not
/// reach a terminal raw).
pub fn shown_char(c: char) -> String {
    if c.is_control() || is_bidi_control(c) || c.is_whitespace() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("`{c}`")
    }
}

/// Unicode bidirectional formatting characters (the "Trojan Source" set).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// A `for_each` key that becomes part of a host name (`web-a`).
pub fn check_instance_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "it contains `{c}`: only lowercase letters, digits and `-` are allowed"
        ));
    }
    if key.starts_with('-') || key.ends_with('-') {
        return Err("it must not start or end with `-`".into());
    }
    Ok(())
}

/// A host name made of a resource name and a key.
pub fn check_hostname(host: &str) -> Result<(), String> {
    if host.len() > MAX_HOSTNAME {
        return Err(format!(
            "host name `{host}` is {} characters long, the limit is {MAX_HOSTNAME}",
            host.len()
        ));
    }
    Ok(())
}

/// A profile name: like a resource name, but `:`, `.` and `_` are allowed
/// inside (`cdn:basic`).
pub fn check_profile_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > MAX_HOSTNAME {
        return Err(format!(
            "it is {} characters long, the limit is {MAX_HOSTNAME}",
            name.len()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err("it must start with a lowercase letter or a digit".into());
    }
    if let Some(c) = name.chars().find(|c| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | ':' | '.' | '_'))
    }) {
        return Err(format!(
            "it contains `{c}`: only lowercase letters, digits, `-`, `_`, `.` and `:` are allowed"
        ));
    }
    Ok(())
}

/// An identifier-like name (variables, outputs, locals, platform blocks).
pub fn check_identifier(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("it is empty".into()),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
            return Err("it must start with a letter or `_`".into())
        }
        _ => {}
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Err(format!(
            "it contains `{c}`: only letters, digits, `_` and `-` are allowed"
        ));
    }
    Ok(())
}

/// A Debian package name (Debian Policy 5.6.1): lowercase letters, digits,
/// `+`, `-`, `.`; at least two characters; starts with a letter or digit.
pub fn check_debian_package(name: &str) -> Result<(), String> {
    if name.len() < 2 {
        return Err("a Debian package name has at least two characters".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err("a Debian package name starts with a lowercase letter or a digit".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')))
    {
        return Err(format!(
            "`{c}` is not allowed in a Debian package name (lowercase letters, digits, `+`, `-`, `.`)"
        ));
    }
    Ok(())
}

/// A Debian version (Debian Policy 5.6.12): `[epoch:]upstream[-revision]`.
pub fn check_debian_version(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("the version is empty".into());
    }
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, v),
    };
    if let Some(e) = epoch {
        if e.is_empty() || !e.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("the epoch `{e}` must be a number"));
        }
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("the upstream version must start with a digit".into());
    }
    let up_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | '-' | ':');
    if let Some(c) = upstream.chars().find(|c| !up_ok(*c)) {
        return Err(format!("`{c}` is not allowed in a Debian version"));
    }
    if upstream.contains(':') {
        return Err("`:` is only allowed after the epoch".into());
    }
    if let Some(r) = revision {
        if r.is_empty() {
            return Err("the revision after `-` is empty".into());
        }
        if let Some(c) = r
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~')))
        {
            return Err(format!("`{c}` is not allowed in a Debian revision"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names() {
        for ok in ["edge", "a", "web-1", "x9"] {
            assert!(check_resource_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Edge",
            "1a",
            "a_b",
            "a b",
            "a;rm",
            "a-",
            &"a".repeat(64),
            "é",
        ] {
            assert!(check_resource_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debian_names_and_versions() {
        for ok in ["nginx", "g++", "libc6", "python3.11", "0ad"] {
            assert!(check_debian_package(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "Nginx", "-x", "a_b", "a;b", "a b", "$(x)"] {
            assert!(check_debian_package(bad).is_err(), "{bad}");
        }
        for ok in [
            "1.0",
            "16.3-1",
            "1:2.3~rc1-0ubuntu1",
            "2.36-9+deb12u4",
            "1.2-3-4",
        ] {
            assert!(check_debian_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a1", "1.0-", "x:1", "1.0 ", "1;2", "1.0-a_b", "1:"] {
            assert!(check_debian_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn session_names() {
        for ok in [
            "default",
            "pr-123",
            "jenkins-Folder-job-42",
            "a.b_c",
            "0",
            "alice/helloworld",
            &"x".repeat(128),
        ] {
            assert!(SessionName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            ".hidden",
            "s$(touch /tmp/x)",
            "a b",
            "a;b",
            "a/b/c",
            "/a",
            "a/",
            "a\u{202e}b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(SessionName::parse(bad).is_err(), "{bad:?}");
        }
        let e = SessionName::parse("a\u{202e}b").unwrap_err();
        assert!(e.contains("U+202E"), "{e}");
        let n = SessionName::parse("helloworld").unwrap();
        let o = SessionName::owned("alice", &n).unwrap();
        assert_eq!(o.as_str(), "alice/helloworld");
        assert_eq!((o.owner(), o.short()), (Some("alice"), "helloworld"));
        assert!(SessionName::owned("alice", &o).is_err());
        assert!(serde_json::from_str::<SessionName>("\"a b\"").is_err());
    }

    #[test]
    fn profile_names() {
        assert!(check_profile_name("cdn:basic").is_ok());
        assert!(check_profile_name("cdn basic").is_err());
        assert!(check_profile_name("a/b").is_err());
    }
}
