//! An API session's model (its nodes and packages) and the testbed
//! document rendered from it.
//!
//! The model is kept in the state store (`serve::stored`); each server has
//! a folder per session under its data dir (`sessions/OWNER/NAME/`):
//! `session.json`, a copy of the model, `main.tg.hcl` the testbed rendered
//! from it (what plan and apply read, and what a user can review and
//! re-apply), next to a copy of the catalog's files.
//! Every value that reaches the document is checked here first against a
//! strict character set, so rendering never needs to escape anything.
//! Not here: planning or applying (`jobs`), HTTP (`handlers`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use crate::names;
use crate::platform::impairment::{Impairment, IMPAIR_KEYS};

/// The document's file name in a session folder.
pub const DOCUMENT: &str = "main.tg.hcl";
/// The model's file name in a session folder.
pub const MODEL: &str = "session.json";
/// How a catalog file is named in a session folder: `catalog-NAME`.
pub const CATALOG_PREFIX: &str = "catalog-";
/// The session network's resource name.
pub const NETWORK: &str = "net";
/// The folder of a session's uploaded files, in its folder: the testbed
/// names them `files/NAME`.
pub const UPLOADS: &str = "files";
/// Most nodes one API session may hold.
pub const MAX_NODES: usize = 64;

/// One node of a session, as the client asked for it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeModel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The node's `impair` block: every link of the node (over the
    /// session's, key by key).
    #[serde(default, skip_serializing_if = "Impairment::is_none")]
    pub impair: Impairment,
}

/// One package of a session and the nodes it is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PackageModel {
    pub version: String,
    pub nodes: Vec<String>,
    /// Installed from this uploaded `.deb` (a file name in the session's
    /// uploads) instead of the apt archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deb: Option<String>,
}

/// An API session's model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SessionModel {
    /// `OWNER/NAME`.
    pub name: String,
    pub owner: String,
    /// The platform its nodes are on.
    pub platform: String,
    pub created: String,
    pub nodes: BTreeMap<String, NodeModel>,
    pub packages: BTreeMap<String, PackageModel>,
    /// The number of the next automatically named node (`n1`, `n2`, ...).
    pub next_node: u32,
    /// The session network's `impair` block: every node's link.
    #[serde(default, skip_serializing_if = "Impairment::is_none")]
    pub impair: Impairment,
    /// A close has begun: the session takes no change any more (a job
    /// waiting for the lock gives up), only another close.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closing: bool,
    /// Set once when the session is opened: a later session of the same
    /// name is another one (a server's folder copy tells them apart).
    #[serde(default)]
    pub id: String,
    /// The machine its nodes run on, when they are local (netns): only the
    /// server there serves the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The store's revision this model was read at or written as (not
    /// stored; see `serve::stored`).
    #[serde(skip)]
    pub revision: Option<i64>,
}

impl SessionModel {
    pub fn new(name: &str, owner: &str, platform: &str) -> SessionModel {
        SessionModel {
            name: name.to_string(),
            owner: owner.to_string(),
            platform: platform.to_string(),
            created: crate::state::now_rfc3339(),
            id: uuid::Uuid::new_v4().to_string(),
            next_node: 1,
            ..SessionModel::default()
        }
    }

    /// A free node name (`nN`).
    pub fn fresh_node_name(&mut self) -> String {
        loop {
            let n = format!("n{}", self.next_node.max(1));
            self.next_node = self.next_node.max(1) + 1;
            if !self.nodes.contains_key(&n) {
                return n;
            }
        }
    }

    /// Add a node (checked first).
    pub fn add_node(&mut self, name: &str, node: NodeModel) -> ApiResult<()> {
        check_node(name, &node)?;
        if self.nodes.contains_key(name) {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "exists",
                format!("the session already has a node `{name}`"),
            ));
        }
        if self.nodes.len() >= MAX_NODES {
            return Err(ApiError::bad_request(format!(
                "a session holds at most {MAX_NODES} nodes: release one first"
            )));
        }
        self.nodes.insert(name.to_string(), node);
        Ok(())
    }

    /// Check each node's link as the testbed will make it (the session's
    /// impairment overridden key by key by the node's): `jitter` and
    /// `reorder` need a `delay`, ...
    pub fn check_links(&self) -> ApiResult<()> {
        if let Some(why) = self.impair.problem() {
            return Err(ApiError::bad_request(format!(
                "the session's impairment `{}`: {why}",
                self.impair.summary()
            )));
        }
        for (name, n) in &self.nodes {
            let link = self.impair.overridden_by(&n.impair);
            if let Some(why) = link.problem() {
                return Err(ApiError::bad_request(format!(
                    "node `{name}`'s link would be `{}` (the session's impairment, then the node's): {why}",
                    link.summary()
                )));
            }
        }
        Ok(())
    }

    /// The testbed document of this model.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# The testbed of the tg serve session `{}`, written by tg serve.\n",
            self.name
        );
        let _ = writeln!(s, "network \"{NETWORK}\" {{");
        render_impair(&mut s, &self.impair);
        let _ = writeln!(s, "}}\n");
        for (name, n) in &self.nodes {
            let _ = writeln!(s, "node \"{name}\" {{");
            if let Some(p) = &n.profile {
                let _ = writeln!(s, "  profile  = \"{p}\"");
            }
            if let Some(i) = &n.image {
                let _ = writeln!(s, "  image    = \"{i}\"");
            } else if n.profile.is_none() {
                let _ = writeln!(s, "  image    = \"host\"");
            }
            if let Some(c) = n.cpus {
                let _ = writeln!(s, "  cpus     = {c}");
            }
            if let Some(m) = &n.memory {
                let _ = writeln!(s, "  memory   = \"{m}\"");
            }
            let _ = writeln!(s, "  network  = network.{NETWORK}");
            let _ = writeln!(s, "  platform = \"{}\"", self.platform);
            if !n.labels.is_empty() {
                let labels: Vec<String> = n
                    .labels
                    .iter()
                    .map(|(k, v)| format!("\"{k}\" = \"{v}\""))
                    .collect();
                let _ = writeln!(s, "  labels   = {{ {} }}", labels.join(", "));
            }
            render_impair(&mut s, &n.impair);
            let _ = writeln!(s, "}}\n");
        }
        for (name, p) in &self.packages {
            let on: Vec<String> = p.nodes.iter().map(|n| format!("node.{n}")).collect();
            let _ = writeln!(s, "package \"{name}\" {{");
            let _ = writeln!(s, "  version = \"{}\"", p.version);
            if let Some(deb) = &p.deb {
                let _ = writeln!(s, "  deb     = \"{UPLOADS}/{deb}\"");
            }
            let _ = writeln!(s, "  on      = [{}]", on.join(", "));
            let _ = writeln!(s, "}}\n");
        }
        s
    }
}

/// An `impair` block (none when no key is set), indented for a resource
/// block. The values are the impairment's own text (`50ms`, `1%`,
/// `10mbit`): digits, letters, `.` and `%`, nothing to escape.
fn render_impair(s: &mut String, imp: &Impairment) {
    if imp.is_none() {
        return;
    }
    let v = serde_json::to_value(imp).unwrap_or_default();
    let _ = writeln!(s, "  impair {{");
    for k in IMPAIR_KEYS {
        if let Some(x) = v.get(*k).and_then(|x| x.as_str()) {
            let _ = writeln!(s, "    {k:<9} = \"{x}\"");
        }
    }
    let _ = writeln!(s, "  }}");
}

/// An impairment from a request body (`{"delay": "50ms", "loss": "1%"}`),
/// each value checked by the parser a testbed's `impair` block uses;
/// at least one key. The 400 names the key and why.
pub fn parse_impairment(
    body: &serde_json::Map<String, serde_json::Value>,
) -> ApiResult<Impairment> {
    if body.is_empty() {
        return Err(ApiError::bad_request(format!(
            "give at least one impairment ({}); `DELETE` removes them",
            IMPAIR_KEYS.join(", ")
        )));
    }
    let mut imp = Impairment::default();
    for (k, v) in body {
        if !IMPAIR_KEYS.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown impairment `{}`: expected one of {}",
                k.escape_debug(),
                IMPAIR_KEYS.join(", ")
            )));
        }
        let Some(text) = v.as_str() else {
            return Err(ApiError::bad_request(format!(
                "invalid `{k}`: expected a string such as {}, found `{v}`",
                match k.as_str() {
                    "delay" | "jitter" => "\"50ms\"",
                    "rate" => "\"10mbit\"",
                    _ => "\"1%\"",
                }
            )));
        };
        imp.set(k, text)
            .map_err(|why| ApiError::bad_request(format!("invalid `{k}`: {why}")))?;
    }
    Ok(imp)
}

/// Characters allowed in images, memory sizes and label values.
fn plain_value(what: &str, v: &str) -> ApiResult<()> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/+@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid {what} `{}`: expected 1 to 128 letters, digits and `-_.:/+@`",
            v.escape_debug()
        )))
    }
}

/// Check a node name and its fields.
pub fn check_node(name: &str, n: &NodeModel) -> ApiResult<()> {
    names::check_resource_name(name)
        .and_then(|_| names::check_hostname(name))
        .map_err(|e| {
            ApiError::bad_request(format!("invalid node name `{}`: {e}", name.escape_debug()))
        })?;
    if let Some(i) = &n.image {
        plain_value("image", i)?;
        if i.starts_with("dir:") {
            return Err(ApiError::bad_request(format!(
                "image `{i}`: `dir:` images are not offered through the API (they read the server's files)"
            )));
        }
    }
    if let Some(p) = &n.profile {
        names::check_profile_name(p).map_err(|e| {
            ApiError::bad_request(format!("invalid profile `{}`: {e}", p.escape_debug()))
        })?;
    }
    if let Some(m) = &n.memory {
        plain_value("memory", m)?;
    }
    if n.cpus == Some(0) || n.cpus.is_some_and(|c| c > 1024) {
        return Err(ApiError::bad_request("invalid `cpus`: expected 1 to 1024"));
    }
    if n.labels.len() > 32 {
        return Err(ApiError::bad_request("a node has at most 32 labels"));
    }
    for (k, v) in &n.labels {
        names::check_identifier(k).map_err(|e| {
            ApiError::bad_request(format!("invalid label key `{}`: {e}", k.escape_debug()))
        })?;
        plain_value(&format!("value of label `{k}`"), v)?;
    }
    Ok(())
}

/// Check a package name and version.
pub fn check_package(name: &str, version: &str) -> ApiResult<()> {
    names::check_debian_package(name).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid package name `{}`: {e}",
            name.escape_debug()
        ))
    })?;
    names::check_debian_version(version).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid version `{}` of `{name}`: {e}",
            version.escape_debug()
        ))
    })?;
    // A package is also a resource name in the document.
    names::check_resource_name(name).map_err(|e| {
        ApiError::bad_request(format!(
            "package `{name}` cannot be deployed through the API yet: {e}"
        ))
    })
}

/// Longest uploaded file name.
pub const MAX_FILE_NAME: usize = 128;

/// Check the name of an uploaded file: a plain file name (no `/`, not
/// `.` or `..`, no leading `.`) of letters, digits and `-_.+`, so it is
/// safe in a path and in the document.
pub fn check_file_name(name: &str) -> ApiResult<()> {
    let why = if name.is_empty() {
        Some("it is empty".to_string())
    } else if name.len() > MAX_FILE_NAME {
        Some(format!("it is longer than {MAX_FILE_NAME} bytes"))
    } else if name.starts_with('.') {
        Some("it starts with `.`".to_string())
    } else if name.contains('/') || name.contains('\\') {
        Some("it is a path: give a plain file name".to_string())
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-_.+".contains(*c)))
            .map(|c| {
                format!(
                    "it contains `{}`: only letters, digits and `-_.+` are allowed",
                    c.escape_debug()
                )
            })
    };
    match why {
        None => Ok(()),
        Some(why) => Err(ApiError::bad_request(format!(
            "invalid file name `{}`: {why}",
            name.escape_debug()
        ))),
    }
}

/// Where sessions live under a data dir.
pub fn session_dir(data: &Path, owner: &str, name: &str) -> PathBuf {
    data.join("sessions").join(owner).join(name)
}

/// Read a session's model (`None`: no such session).
pub fn load(dir: &Path) -> ApiResult<Option<SessionModel>> {
    let path = dir.join(MODEL);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ApiError::internal(format!("cannot read `{}`: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ApiError::internal(format!(
            "cannot read `{}`: {e}",
            path.display()
        ))),
    }
}

/// Write a session's model and its document (each atomically).
pub fn save(dir: &Path, model: &SessionModel) -> ApiResult<()> {
    let json = serde_json::to_string_pretty(model)
        .map_err(|e| ApiError::internal(format!("cannot encode the session: {e}")))?;
    write_atomic(&dir.join(DOCUMENT), model.render())?;
    write_atomic(&dir.join(MODEL), &json)
}

/// Write `text` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, text: impl AsRef<[u8]>) -> ApiResult<()> {
    // A name of its own: two requests may refresh one folder at once.
    let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| ApiError::internal(format!("cannot write `{}`: {e}", path.display())))
}

/// The testbed a session folder holds: its document first, then the
/// catalog's files (`catalog-*.tg.hcl`, sorted); `None`: no session there.
pub fn testbed_in_folder(dir: &Path) -> Result<Option<Vec<(String, String)>>, String> {
    if !dir.join(MODEL).is_file() {
        return Ok(None);
    }
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
    };
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    let mut catalog: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with(CATALOG_PREFIX) && f.ends_with(".tg.hcl"))
        .collect();
    catalog.sort();
    let mut files = vec![(DOCUMENT.to_string(), read(DOCUMENT)?)];
    for f in catalog {
        let text = read(&f)?;
        files.push((f, text));
    }
    Ok(Some(files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_nodes_and_packages() {
        let mut m = SessionModel::new("alice/hw", "alice", "double");
        let n = m.fresh_node_name();
        m.add_node(
            &n,
            NodeModel {
                image: None,
                profile: Some("cdn:basic".into()),
                cpus: None,
                memory: None,
                labels: [("role".to_string(), "edge".to_string())].into(),
                impair: parse_impairment(
                    json!({"rate": "10mbit", "loss": "1%"}).as_object().unwrap(),
                )
                .unwrap(),
            },
        )
        .unwrap();
        m.packages.insert(
            "hello".into(),
            PackageModel {
                version: "2.10-3".into(),
                nodes: vec![n.clone()],
                deb: None,
            },
        );
        m.packages.insert(
            "mine".into(),
            PackageModel {
                version: "1.0".into(),
                nodes: vec![n.clone()],
                deb: Some("mine_1.0_all.deb".into()),
            },
        );
        let doc = m.render();
        assert!(
            doc.contains("deb     = \"files/mine_1.0_all.deb\""),
            "{doc}"
        );
        assert!(doc.contains("node \"n1\""), "{doc}");
        assert!(doc.contains("on      = [node.n1]"), "{doc}");
        assert!(doc.contains("\"role\" = \"edge\""), "{doc}");
        assert!(!doc.contains("network \"net\" {\n  impair"), "{doc}");
        assert!(
            doc.contains("  impair {\n    loss      = \"1%\"\n    rate      = \"10mbit\"\n  }\n}"),
            "{doc}"
        );
        m.impair = parse_impairment(json!({"delay": "50ms"}).as_object().unwrap()).unwrap();
        let doc = m.render();
        assert!(
            doc.contains("network \"net\" {\n  impair {\n    delay     = \"50ms\"\n  }\n}"),
            "{doc}"
        );
        assert!(m.check_links().is_ok());
    }

    #[test]
    fn impairments_are_checked_key_by_key() {
        let err = |v: serde_json::Value| {
            parse_impairment(v.as_object().unwrap())
                .unwrap_err()
                .message
        };
        assert!(err(json!({})).contains("at least one"));
        assert!(err(json!({"speed": "1"})).contains("unknown impairment `speed`"));
        assert!(err(json!({"loss": 5})).starts_with("invalid `loss`: expected a string"));
        let e = err(json!({"loss": "150%"}));
        assert!(
            e.starts_with("invalid `loss`:") && e.contains("at most"),
            "{e}"
        );
        assert!(err(json!({"rate": "0mbit"})).contains("above zero"));
        let mut m = SessionModel::new("alice/hw", "alice", "double");
        m.add_node("n1", NodeModel::default()).unwrap();
        m.nodes.get_mut("n1").unwrap().impair =
            parse_impairment(json!({"jitter": "5ms"}).as_object().unwrap()).unwrap();
        let e = m.check_links().unwrap_err().message;
        assert!(
            e.contains("node `n1`") && e.contains("needs a `delay`"),
            "{e}"
        );
        m.impair = parse_impairment(json!({"delay": "50ms"}).as_object().unwrap()).unwrap();
        assert!(m.check_links().is_ok());
    }

    #[test]
    fn refuses_what_would_need_escaping() {
        let bad = NodeModel {
            image: Some("a\"b${x}".into()),
            profile: None,
            cpus: None,
            memory: None,
            labels: Default::default(),
            impair: Impairment::default(),
        };
        assert!(check_node("n1", &bad).is_err());
        let mut lab = bad.clone();
        lab.image = None;
        lab.labels.insert("k".into(), "${env(\"HOME\")}".into());
        assert!(check_node("n1", &lab).is_err());
        assert!(check_node("a b", &lab).is_err());
        assert!(check_package("hello", "2.10-3").is_ok());
        assert!(check_package("hello", "2.10 3").is_err());
        assert!(check_file_name("hello_2.10-3_amd64.deb").is_ok());
        for bad in [
            "", ".", "..", ".hidden", "a/b", "../x", "a b", "a\"b", "${x}", "a\\b",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad}");
        }
        assert!(check_file_name(&"a".repeat(129)).is_err());
    }
}
