//! Names that reach shells, kernels and DNS: which strings are safe.
//!
//! Node and network names become host names and parts of host object names;
//! package names and versions reach `apt-get`. Anything outside these rules
//! is rejected at validate time, so no later stage has to quote or escape.

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
    fn profile_names() {
        assert!(check_profile_name("cdn:basic").is_ok());
        assert!(check_profile_name("cdn basic").is_err());
        assert!(check_profile_name("a/b").is_err());
    }
}
