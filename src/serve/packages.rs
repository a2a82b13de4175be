//! Is a Debian package version installable: the host's apt sources
//! (`apt-cache madison`), or a fixed table the caller gives (tg's own
//! tests, with the test-double platform).
//!
//! Not here: installing anything (the platforms do, through apply).

use std::collections::BTreeMap;

use super::error::{ApiError, ApiResult};

/// Where versions come from.
#[derive(Debug, Clone)]
pub enum Versions {
    /// `apt-cache madison NAME` on this host.
    Apt,
    /// A fixed table: package → versions.
    Table(BTreeMap<String, Vec<String>>),
}

impl Versions {
    /// The versions of `name` that can be installed.
    pub async fn of(&self, name: &str) -> ApiResult<Vec<String>> {
        match self {
            Versions::Table(t) => Ok(t.get(name).cloned().unwrap_or_default()),
            Versions::Apt => {
                // `name` passed the Debian name check: no option, no glob.
                let out = tokio::process::Command::new("apt-cache")
                    .arg("madison")
                    .arg("--")
                    .arg(name)
                    .stdin(std::process::Stdio::null())
                    .output()
                    .await
                    .map_err(|e| {
                        ApiError::internal(format!("cannot run `apt-cache madison`: {e}"))
                    })?;
                Ok(parse_madison(&String::from_utf8_lossy(&out.stdout), name))
            }
        }
    }

    /// Check that `name` `version` is installable; a 404 lists the versions
    /// that are.
    pub async fn check(&self, name: &str, version: &str) -> ApiResult<Vec<String>> {
        let versions = self.of(name).await?;
        if versions.is_empty() {
            return Err(ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "no_such_package",
                format!("package `{name}` is not in the host's apt sources (try `apt-get update` on the server)"),
            ));
        }
        if !versions.iter().any(|v| v == version) {
            return Err(ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "no_such_version",
                format!(
                    "version `{version}` of `{name}` is not installable: expected one of {}",
                    versions
                        .iter()
                        .map(|v| format!("`{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(versions)
    }
}

/// The versions in `apt-cache madison` output (`name | version | source`).
pub fn parse_madison(text: &str, name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        if cols.len() >= 3 && cols[0] == name && !out.iter().any(|v| v == cols[1]) {
            out.push(cols[1].to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn madison() {
        let t = "     hello |   2.10-3 | http://deb.example/debian bookworm/main amd64 Packages\n     hello |   2.10-3 | http://deb.example/debian bookworm/main Sources\n";
        assert_eq!(super::parse_madison(t, "hello"), vec!["2.10-3"]);
        assert!(super::parse_madison("", "hello").is_empty());
    }
}
