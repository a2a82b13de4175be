//! Typed addresses of resources and instances: `network.lab`,
//! `node.edge[0]`, `node.web["a"]`, `package.nginx[node.edge[0]]`.
//!
//! An address is what users type after `-target`, what plans and state are
//! keyed by, and what `Display` prints. This module parses and prints them; it
//! knows nothing of configuration or state.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The three kinds of managed resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    Network,
    Node,
    Package,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Network => "network",
            ResourceKind::Node => "node",
            ResourceKind::Package => "package",
        }
    }

    pub fn parse(s: &str) -> Option<ResourceKind> {
        match s {
            "network" => Some(ResourceKind::Network),
            "node" => Some(ResourceKind::Node),
            "package" => Some(ResourceKind::Package),
            _ => None,
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource block's address: `node.edge`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceAddr {
    pub kind: ResourceKind,
    pub name: String,
}

impl ResourceAddr {
    pub fn new(kind: ResourceKind, name: impl Into<String>) -> ResourceAddr {
        ResourceAddr {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for ResourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind, self.name)
    }
}

/// The key of one instance of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InstanceKey {
    /// A resource without `count` or `for_each`.
    None,
    /// `count`: `[0]`.
    Int(u64),
    /// `for_each`: `["a"]`.
    Str(String),
    /// A package instance: the node it is on, `[node.edge[0]]`.
    Node(Box<InstanceAddr>),
}

/// An instance's address: `node.edge[0]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceAddr {
    pub resource: ResourceAddr,
    pub key: InstanceKey,
}

impl InstanceAddr {
    pub fn new(kind: ResourceKind, name: impl Into<String>, key: InstanceKey) -> InstanceAddr {
        InstanceAddr {
            resource: ResourceAddr::new(kind, name),
            key,
        }
    }

    pub fn kind(&self) -> ResourceKind {
        self.resource.kind
    }

    pub fn name(&self) -> &str {
        &self.resource.name
    }

    /// The instance part used for host names: `edge-0`, `web-a`, `lab`.
    pub fn host_name(&self) -> String {
        match &self.key {
            InstanceKey::None | InstanceKey::Node(_) => self.resource.name.clone(),
            InstanceKey::Int(i) => format!("{}-{i}", self.resource.name),
            InstanceKey::Str(s) => format!("{}-{s}", self.resource.name),
        }
    }

    /// Does this instance belong to `target` (an instance, or a whole
    /// resource when `target` has no key)? A package instance also belongs
    /// to its package resource.
    pub fn matches(&self, target: &InstanceAddr) -> bool {
        if self.resource != target.resource {
            return false;
        }
        matches!(target.key, InstanceKey::None) || self.key == target.key
    }
}

impl fmt::Display for InstanceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.resource)?;
        match &self.key {
            InstanceKey::None => Ok(()),
            InstanceKey::Int(i) => write!(f, "[{i}]"),
            InstanceKey::Str(s) => write!(f, "[{}]", serde_json::Value::from(s.as_str())),
            InstanceKey::Node(n) => write!(f, "[{n}]"),
        }
    }
}

/// Why an address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address `{input}`: {reason}")]
pub struct AddrParseError {
    pub input: String,
    pub reason: String,
}

impl FromStr for InstanceAddr {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| AddrParseError {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let (addr, rest) = parse_instance(s.trim()).map_err(|r| err(&r))?;
        if !rest.is_empty() {
            return Err(err("unexpected text after the address"));
        }
        Ok(addr)
    }
}

fn parse_instance(s: &str) -> Result<(InstanceAddr, &str), String> {
    let (kind_s, rest) = s
        .split_once('.')
        .ok_or("expected `KIND.NAME`, such as `node.edge[0]`")?;
    let kind = ResourceKind::parse(kind_s)
        .ok_or_else(|| format!("unknown kind `{kind_s}`: expected network, node or package"))?;
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(rest.len());
    let name = &rest[..name_len];
    if name.is_empty() {
        return Err("missing name after the kind".into());
    }
    let rest = &rest[name_len..];
    let Some(inner) = rest.strip_prefix('[') else {
        return Ok((InstanceAddr::new(kind, name, InstanceKey::None), rest));
    };
    let (key, rest) = if let Some(quoted) = inner.strip_prefix('"') {
        let end = quoted.find('"').ok_or("unterminated string key")?;
        (
            InstanceKey::Str(quoted[..end].to_string()),
            &quoted[end + 1..],
        )
    } else if inner.starts_with(|c: char| c.is_ascii_digit()) {
        let end = inner
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(inner.len());
        let n = inner[..end].parse().map_err(|_| "index is too large")?;
        (InstanceKey::Int(n), &inner[end..])
    } else {
        let (node, rest) = parse_instance(inner)?;
        if node.kind() != ResourceKind::Node {
            return Err("a package instance is keyed by a node address".into());
        }
        (InstanceKey::Node(Box::new(node)), rest)
    };
    let rest = rest.strip_prefix(']').ok_or("expected `]`")?;
    Ok((InstanceAddr::new(kind, name, key), rest))
}

impl Serialize for InstanceAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InstanceAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for s in [
            "network.lab",
            "node.edge[0]",
            "node.web[\"a\"]",
            "package.nginx[node.edge[3]]",
            "package.x[node.web[\"b\"]]",
        ] {
            let a: InstanceAddr = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn bad_addresses_are_errors() {
        for s in [
            "",
            "node",
            "vm.x",
            "node.x[",
            "node.x[0",
            "node.[0]",
            "package.p[network.l]",
        ] {
            assert!(s.parse::<InstanceAddr>().is_err(), "{s}");
        }
    }

    #[test]
    fn host_names() {
        let a: InstanceAddr = "node.edge[1]".parse().unwrap();
        assert_eq!(a.host_name(), "edge-1");
        let a: InstanceAddr = "node.web[\"a\"]".parse().unwrap();
        assert_eq!(a.host_name(), "web-a");
    }
}
