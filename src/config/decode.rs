//! Decoding: a parsed HCL body into raw blocks, checked against the
//! language's schema (block types, labels, attributes, nested blocks).
//!
//! Expressions stay unevaluated here; `eval` evaluates them. Every raw item
//! keeps its span so later errors can point at it.

use indexmap::IndexMap;

use hcl_edit::expr::Expression;
use hcl_edit::structure::{Block, BlockLabel, Body, Structure};
use hcl_edit::Span as _;

use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics, FileId, Span};

/// One attribute: `name = expr`.
#[derive(Debug, Clone)]
pub struct RawAttr {
    pub name: String,
    pub expr: Expression,
    /// The whole `name = expr`.
    pub span: Span,
    /// The expression only.
    pub expr_span: Span,
}

/// One block with its labels, attributes and nested blocks.
#[derive(Debug, Clone)]
pub struct RawBlock {
    pub kind: String,
    pub labels: Vec<String>,
    /// The block header: type and labels.
    pub span: Span,
    pub attrs: IndexMap<String, RawAttr>,
    pub blocks: Vec<RawBlock>,
}

impl RawBlock {
    pub fn attr(&self, name: &str) -> Option<&RawAttr> {
        self.attrs.get(name)
    }

    pub fn label(&self) -> &str {
        self.labels.first().map(String::as_str).unwrap_or("")
    }

    pub fn blocks_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a RawBlock> {
        self.blocks.iter().filter(move |b| b.kind == kind)
    }
}

/// The schema of one block type.
pub struct BlockSchema {
    pub kind: &'static str,
    /// Label names, e.g. `["name"]`.
    pub labels: &'static [&'static str],
    /// Allowed attributes; `None` = any (locals).
    pub attrs: Option<&'static [&'static str]>,
    pub required: &'static [&'static str],
    pub blocks: &'static [&'static BlockSchema],
}

const VALIDATION: BlockSchema = BlockSchema {
    kind: "validation",
    labels: &[],
    attrs: Some(&["condition", "error_message"]),
    required: &["condition", "error_message"],
    blocks: &[],
};
const LIFECYCLE: BlockSchema = BlockSchema {
    kind: "lifecycle",
    labels: &[],
    attrs: Some(&["prevent_destroy"]),
    required: &[],
    blocks: &[],
};
const REQUIRES: BlockSchema = BlockSchema {
    kind: "requires",
    labels: &[],
    attrs: Some(&[
        "profile", "image", "cpus", "memory", "labels", "network", "networks", "platform",
    ]),
    required: &[],
    blocks: &[],
};
/// `network` and the keys of `platform::impairment::IMPAIR_KEYS`, in
/// their order (a test checks they agree).
const IMPAIR_ATTRS: &[&str] = &[
    "network",
    "delay",
    "jitter",
    "loss",
    "rate",
    "corrupt",
    "duplicate",
    "reorder",
];

const IMPAIR: BlockSchema = BlockSchema {
    kind: "impair",
    labels: &[],
    attrs: Some(IMPAIR_ATTRS),
    required: &[],
    blocks: &[],
};
const WAIT_FOR: BlockSchema = BlockSchema {
    kind: "wait_for",
    labels: &[],
    attrs: Some(&["command", "tcp", "timeout", "interval"]),
    required: &[],
    blocks: &[],
};
const POOL_HOST: BlockSchema = BlockSchema {
    kind: "host",
    labels: &["name"],
    attrs: Some(&[
        "address", "port", "user", "profile", "image", "labels", "cpus", "memory",
    ]),
    required: &["address"],
    blocks: &[],
};

/// Every top-level block type of the language.
pub const TOP_LEVEL: &[BlockSchema] = &[
    BlockSchema {
        kind: "testbed",
        labels: &[],
        attrs: Some(&["name", "description"]),
        required: &[],
        blocks: &[],
    },
    BlockSchema {
        kind: "variable",
        labels: &["name"],
        attrs: Some(&["type", "default", "description", "sensitive", "nullable"]),
        required: &[],
        blocks: &[&VALIDATION],
    },
    BlockSchema {
        kind: "locals",
        labels: &[],
        attrs: None,
        required: &[],
        blocks: &[],
    },
    BlockSchema {
        kind: "profile",
        labels: &["name"],
        attrs: Some(&[
            "image",
            "cpus",
            "memory",
            "labels",
            "platform",
            "description",
        ]),
        required: &[],
        blocks: &[],
    },
    BlockSchema {
        kind: "network",
        labels: &["name"],
        attrs: Some(&[
            "cidr",
            "nat",
            "count",
            "for_each",
            "depends_on",
            "description",
        ]),
        required: &[],
        blocks: &[&LIFECYCLE, &IMPAIR],
    },
    BlockSchema {
        kind: "node",
        labels: &["name"],
        attrs: Some(&[
            "count",
            "for_each",
            "profile",
            "image",
            "cpus",
            "memory",
            "network",
            "networks",
            "platform",
            "labels",
            "address",
            "depends_on",
            "description",
            "privileged",
            "pids",
            "ssh",
        ]),
        required: &[],
        blocks: &[&LIFECYCLE, &IMPAIR, &WAIT_FOR],
    },
    BlockSchema {
        kind: "package",
        labels: &["name"],
        attrs: Some(&[
            "version",
            "source",
            "deb",
            "on",
            "depends_on",
            "description",
        ]),
        required: &[],
        blocks: &[&REQUIRES, &LIFECYCLE, &WAIT_FOR],
    },
    BlockSchema {
        kind: "output",
        labels: &["name"],
        attrs: Some(&["value", "description", "sensitive", "depends_on"]),
        required: &["value"],
        blocks: &[],
    },
    BlockSchema {
        kind: "platform",
        labels: &["driver", "name"],
        attrs: Some(&[
            "user",
            "identity_file",
            "identity_passphrase",
            "agent",
            "known_hosts",
            "port",
            "max_parallelism",
            "reset",
            "insecure_accept_host_key",
            "state",
            "reuse_connections",
        ]),
        required: &[],
        blocks: &[&POOL_HOST],
    },
    BlockSchema {
        kind: "moved",
        labels: &[],
        attrs: Some(&["from", "to"]),
        required: &["from", "to"],
        blocks: &[],
    },
    BlockSchema {
        kind: "state",
        labels: &[],
        attrs: Some(&["backend", "url", "path"]),
        required: &[],
        blocks: &[],
    },
];

/// "a `node` block", "an `output` block".
fn a_block(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} `{kind}` block")
}

pub fn span_of(file: FileId, item: &impl hcl_edit::Span) -> Span {
    Span::new(file, item.span().unwrap_or(0..0))
}

/// Decode a parsed file's body against the top-level schema.
pub fn decode_body(file: FileId, body: Body, diags: &mut Diagnostics) -> Vec<RawBlock> {
    let mut out = Vec::new();
    for structure in body {
        match structure {
            Structure::Attribute(a) => {
                diags.push(
                    Diagnostic::error(format!(
                        "unexpected attribute `{}` at the top level",
                        a.key.as_str()
                    ))
                    .at(span_of(file, &a.key))
                    .help("attributes go inside a block; shared values go in a `locals` block"),
                );
            }
            Structure::Block(b) => {
                let kind = b.ident.as_str();
                match TOP_LEVEL.iter().find(|s| s.kind == kind) {
                    Some(schema) => {
                        if let Some(raw) = decode_block(file, b, schema, diags) {
                            out.push(raw);
                        }
                    }
                    None => {
                        let mut d = Diagnostic::error(format!("unknown block type `{kind}`"))
                            .at(span_of(file, &b.ident));
                        d = match did_you_mean(kind, TOP_LEVEL.iter().map(|s| s.kind)) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d.help(format!(
                                "expected one of: {}",
                                TOP_LEVEL
                                    .iter()
                                    .map(|s| s.kind)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                        };
                        diags.push(d);
                    }
                }
            }
        }
    }
    out
}

fn header_span(file: FileId, b: &Block) -> Span {
    let start = b.ident.span().map(|r| r.start).unwrap_or(0);
    let end = b
        .labels
        .last()
        .and_then(|l| l.span())
        .or_else(|| b.ident.span())
        .map(|r| r.end)
        .unwrap_or(start);
    Span::new(file, start..end)
}

fn decode_block(
    file: FileId,
    b: Block,
    schema: &BlockSchema,
    diags: &mut Diagnostics,
) -> Option<RawBlock> {
    let span = header_span(file, &b);
    let kind = schema.kind;
    let a_kind = a_block(kind);
    let labels: Vec<String> = b
        .labels
        .iter()
        .map(|l| match l {
            BlockLabel::Ident(i) => i.as_str().to_string(),
            BlockLabel::String(s) => s.as_str().to_string(),
        })
        .collect();
    if labels.len() != schema.labels.len() {
        let want = match schema.labels.len() {
            0 => format!("{a_kind} takes no labels"),
            1 => format!("{a_kind} takes one label, its {}", schema.labels[0]),
            _ => format!(
                "{a_kind} takes {} labels: {}",
                schema.labels.len(),
                schema.labels.join(", ")
            ),
        };
        let example = match schema.labels.len() {
            0 => format!("{kind} {{ ... }}"),
            _ => format!(
                "{kind} {} {{ ... }}",
                schema
                    .labels
                    .iter()
                    .map(|l| format!("\"{l}\""))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        };
        diags.push(
            Diagnostic::error(format!(
                "{want}, found {}",
                match labels.len() {
                    0 => "none".to_string(),
                    n => n.to_string(),
                }
            ))
            .at(span)
            .help(format!("write it as `{example}`")),
        );
        return None;
    }
    let mut raw = RawBlock {
        kind: kind.to_string(),
        labels,
        span: span.clone(),
        attrs: IndexMap::new(),
        blocks: Vec::new(),
    };
    for structure in b.body {
        match structure {
            Structure::Attribute(a) => {
                let name = a.key.as_str().to_string();
                let name = name.as_str();
                if let Some(allowed) = schema.attrs {
                    if !allowed.contains(&name) {
                        let mut d =
                            Diagnostic::error(format!("unknown attribute `{name}` in {a_kind}"))
                                .at(span_of(file, &a.key));
                        d = match did_you_mean(name, allowed.iter().copied()) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d.help(format!("{a_kind} takes: {}", allowed.join(", "))),
                        };
                        diags.push(d);
                        continue;
                    }
                }
                if let Some(prev) = raw.attrs.get(name) {
                    let _ = prev;
                    diags.push(
                        Diagnostic::error(format!("attribute `{name}` is set twice"))
                            .at(span_of(file, &a.key))
                            .help("remove one of the two"),
                    );
                    continue;
                }
                let span = span_of(file, &a);
                let expr_span = span_of(file, &a.value);
                raw.attrs.insert(
                    name.to_string(),
                    RawAttr {
                        name: name.to_string(),
                        expr: a.value,
                        span,
                        expr_span,
                    },
                );
            }
            Structure::Block(inner) => {
                let ikind = inner.ident.as_str();
                match schema.blocks.iter().find(|s| s.kind == ikind) {
                    Some(ischema) => {
                        if let Some(r) = decode_block(file, inner, ischema, diags) {
                            raw.blocks.push(r);
                        }
                    }
                    None => {
                        let mut d =
                            Diagnostic::error(format!("unknown block `{ikind}` in {a_kind}"))
                                .at(span_of(file, &inner.ident));
                        let names = schema.blocks.iter().map(|s| s.kind);
                        d = match did_you_mean(ikind, names.clone()) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None if schema.blocks.is_empty() => {
                                d.help(format!("{a_kind} has no nested blocks"))
                            }
                            None => d.help(format!(
                                "{a_kind} takes the blocks: {}",
                                names.collect::<Vec<_>>().join(", ")
                            )),
                        };
                        if schema.attrs.is_some_and(|a| a.contains(&ikind)) {
                            d = d.help(format!(
                                "`{ikind}` is an attribute: write `{ikind} = {{ ... }}`"
                            ));
                        }
                        diags.push(d);
                    }
                }
            }
        }
    }
    for req in schema.required {
        if !raw.attrs.contains_key(*req) {
            diags.push(
                Diagnostic::error(format!("missing required attribute `{req}` in {a_kind}"))
                    .at(span.clone())
                    .help(format!("add `{req} = ...` to the block")),
            );
        }
    }
    Some(raw)
}

#[cfg(test)]
mod impair_schema_tests {
    #[test]
    fn the_impair_block_takes_the_impairment_keys() {
        assert_eq!(
            &super::IMPAIR_ATTRS[1..],
            crate::platform::impairment::IMPAIR_KEYS
        );
    }
}
