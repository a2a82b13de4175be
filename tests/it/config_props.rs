//! Property tests (the fuzz target) of the language front end: whatever the
//! bytes, `tg::config::load` returns a testbed or diagnostics, never panics,
//! and every diagnostic's position lies inside its file. Generated valid
//! testbeds load, with addresses that follow the IPAM rules.
//!
//! Three inputs: the corpus (`tests/testbeds/**`) mutated byte- and
//! token-wise; testbeds generated from the language's vocabulary (random
//! blocks, attributes, references and calls, mostly wrong); and valid
//! testbeds generated with known shapes. Run longer with
//! `PROPTEST_CASES=20000 cargo test --test it config_props` (see
//! docs/language.md for how long it ran clean).

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tg::config::{self, LoadOptions};
use tg::diagnostics::{self, Diagnostics, SourceMap};

fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testbeds");
        let mut files = Vec::new();
        collect(&root, &mut files);
        files.sort();
        files
            .into_iter()
            .map(|p| std::fs::read(p).expect("corpus file"))
            .collect()
    })
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("corpus dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.to_string_lossy().ends_with(".tg.hcl") {
            out.push(p);
        }
    }
}

/// Bits of the language a mutation may insert.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"",
    "=",
    ",",
    ".",
    "*",
    ":",
    "?",
    "=>",
    "...",
    "\n",
    "#",
    "${",
    "%{",
    "<<EOF\n",
    "EOF\n",
    "node",
    "network",
    "package",
    "var",
    "local",
    "count",
    "each",
    "count.index",
    "each.key",
    "node.a",
    "network.lab",
    "[*]",
    "[0]",
    "[\"a\"]",
    "null",
    "true",
    "-1",
    "1e309",
    "0x",
    "\u{0}",
    "é",
    "\u{feff}",
    "for x in",
    "if",
    "cidrhost(",
    "range(1000000000)",
    "format(\"%",
    "10.0.0.0/8",
    "\"10.42.0.1\"",
    " % 0",
    " / 0",
    " * 18446744073709551615",
    "-9223372036854775808 % -1",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: f64, len: usize },
    Insert { at: f64, token: usize },
    Duplicate { at: f64, len: usize },
    Byte { at: f64, byte: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0.0..1.0f64, 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (0.0..1.0f64, 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (0.0..1.0f64, 1usize..200).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (0.0..1.0f64, any::<u8>()).prop_map(|(at, byte)| Mutation::Byte { at, byte }),
    ]
}

fn mutate(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let pos = |at: f64, len: usize| ((at * len as f64) as usize).min(len);
        match *m {
            Mutation::Delete { at, len } => {
                let p = pos(at, bytes.len());
                let end = (p + len).min(bytes.len());
                bytes.drain(p..end);
            }
            Mutation::Insert { at, token } => {
                let p = pos(at, bytes.len());
                bytes.splice(p..p, TOKENS[token].bytes());
            }
            Mutation::Duplicate { at, len } => {
                let p = pos(at, bytes.len());
                let end = (p + len).min(bytes.len());
                let piece = bytes[p..end].to_vec();
                bytes.splice(end..end, piece);
            }
            Mutation::Byte { at, byte } => {
                if !bytes.is_empty() {
                    let p = pos(at, bytes.len() - 1);
                    bytes[p] = byte;
                }
            }
        }
    }
    bytes
}

/// Load `files` from a fresh directory the way `tg validate` does, and
/// check what came back.
fn load_and_check(files: &[(&str, &[u8])], vars: Vec<String>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    let opts = LoadOptions {
        dir: dir.path().to_path_buf(),
        vars,
        ..LoadOptions::default()
    };
    match config::load(&opts) {
        Ok((tb, warnings)) => {
            prop_assert!(!warnings.has_errors());
            check_diagnostics(&warnings, &tb.sources)?;
        }
        Err(e) => {
            prop_assert!(
                e.diagnostics.has_errors(),
                "a failed load carries at least one error"
            );
            check_diagnostics(&e.diagnostics, &e.sources)?;
        }
    }
    Ok(())
}

fn check_diagnostics(ds: &Diagnostics, sources: &SourceMap) -> Result<(), TestCaseError> {
    for d in ds.iter() {
        prop_assert!(!d.summary.is_empty());
        prop_assert!(
            !d.summary.contains('\n'),
            "summary is one line: {:?}",
            d.summary
        );
        prop_assert!(
            !d.summary.ends_with('.'),
            "no trailing period: {:?}",
            d.summary
        );
        if let Some(span) = &d.span {
            prop_assert!(
                sources.files().any(|(id, _)| id == span.file),
                "a span names a file that is not in the source map"
            );
            let f = sources.get(span.file);
            prop_assert!(span.range.start <= span.range.end || span.range.end == 0);
            prop_assert!(
                span.range.start <= f.text.len(),
                "span {:?} past the end of {} ({} bytes): {}",
                span.range,
                f.path.display(),
                f.text.len(),
                d.summary
            );
            let lines = f.text.split('\n').count();
            let start = f.position(span.range.start);
            prop_assert!(start.line >= 1 && start.line <= lines);
            prop_assert!(start.column >= 1);
            prop_assert!(
                start.column <= f.line_text(start.line).chars().count() + 1,
                "column {} past the end of line {} ({:?}): {}",
                start.column,
                start.line,
                f.line_text(start.line),
                d.summary
            );
        }
        let _ = diagnostics::to_json(d, sources);
    }
    let text = diagnostics::render_all(ds, sources);
    prop_assert!(ds.is_empty() || !text.is_empty());
    Ok(())
}

// ----- generated testbeds from the language's vocabulary ---------------------

const NAMES: &[&str] = &[
    "a", "b", "lab", "edge", "web", "Bad_Name", "x-1", "nginx", "",
];
/// Names that parse in a reference (`node.NAME`).
const REF_NAMES: &[&str] = &["a", "b", "lab", "edge", "web", "nginx"];
const BLOCKS: &[&str] = &[
    "testbed",
    "variable",
    "locals",
    "profile",
    "network",
    "node",
    "package",
    "output",
    "platform",
    "state",
    "validation",
    "lifecycle",
    "requires",
    "host",
    "bogus",
];
const ATTRS: &[&str] = &[
    "name",
    "type",
    "default",
    "sensitive",
    "condition",
    "error_message",
    "image",
    "cpus",
    "memory",
    "labels",
    "platform",
    "cidr",
    "nat",
    "count",
    "for_each",
    "network",
    "networks",
    "address",
    "depends_on",
    "profile",
    "version",
    "source",
    "deb",
    "on",
    "value",
    "backend",
    "url",
    "path",
    "user",
    "prevent_destroy",
    "description",
    "x",
];

const OPS: &[&str] = &["+", "-", "*", "/", "%", "==", "!=", "<", ">=", "&&", "||"];

fn expr() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        Just("\"host\"".to_string()),
        Just("\"10.42.0.0/24\"".to_string()),
        Just("\"10.42.0.7\"".to_string()),
        Just("\"512MiB\"".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        (-3i64..300).prop_map(|n| n.to_string()),
        Just("0".to_string()),
        Just("18446744073709551615".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("1e308".to_string()),
        Just("1.5".to_string()),
        Just("string".to_string()),
        Just("list(number)".to_string()),
        Just("count.index".to_string()),
        Just("each.key".to_string()),
        Just("each.value".to_string()),
        (0..REF_NAMES.len()).prop_map(|i| format!("var.{}", REF_NAMES[i])),
        (0..REF_NAMES.len()).prop_map(|i| format!("local.{}", REF_NAMES[i])),
        (0..REF_NAMES.len()).prop_map(|i| format!("network.{}", REF_NAMES[i])),
        (0..REF_NAMES.len()).prop_map(|i| format!("network.{}.cidr", REF_NAMES[i])),
        (0..REF_NAMES.len()).prop_map(|i| format!("network.{}[0]", REF_NAMES[i])),
        (0..REF_NAMES.len()).prop_map(|i| format!("node.{}", REF_NAMES[i])),
        (0..REF_NAMES.len()).prop_map(|i| format!("node.{}.address", REF_NAMES[i])),
        (0..REF_NAMES.len()).prop_map(|i| format!("node.{}[*].address", REF_NAMES[i])),
        (0..REF_NAMES.len()).prop_map(|i| format!("node.{}[0].hostname", REF_NAMES[i])),
        (0..REF_NAMES.len()).prop_map(|i| format!("package.{}.nodes", REF_NAMES[i])),
        (0..NAMES.len()).prop_map(|i| format!("\"{}\"", NAMES[i])),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((0..REF_NAMES.len(), inner.clone()), 0..3).prop_map(|v| {
                let mut seen = HashSet::new();
                let kv: Vec<String> = v
                    .into_iter()
                    .filter(|(k, _)| seen.insert(*k))
                    .map(|(k, e)| format!("{} = {e}", REF_NAMES[k]))
                    .collect();
                format!("{{ {} }}", kv.join(", "))
            }),
            (
                0..tg::config::functions::NAMES.len(),
                prop::collection::vec(inner.clone(), 0..4)
            )
                .prop_map(|(f, args)| format!(
                    "{}({})",
                    tg::config::functions::NAMES[f],
                    args.join(", ")
                )),
            (inner.clone(), 0..OPS.len(), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {} {b}", OPS[op])),
            inner.clone().prop_map(|a| format!("-{a}")),
            inner.clone().prop_map(|a| format!("!{a}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} == {b} ? {a} : {b}")),
            inner.clone().prop_map(|a| format!("\"x-${{{a}}}\"")),
            inner.clone().prop_map(|a| format!("[for v in {a} : v]")),
            inner.clone().prop_map(|a| format!("toset({a})")),
        ]
    })
    .boxed()
}

fn block() -> impl Strategy<Value = String> {
    let attr = (0..ATTRS.len(), expr()).prop_map(|(a, e)| format!("  {} = {e}\n", ATTRS[a]));
    let inner = (0..BLOCKS.len(), prop::collection::vec(attr.clone(), 0..3))
        .prop_map(|(b, attrs)| format!("  {} {{\n{}  }}\n", BLOCKS[b], attrs.concat()));
    (
        0..BLOCKS.len(),
        prop::collection::vec(0..NAMES.len(), 0..3),
        prop::collection::vec(attr, 0..6),
        prop::collection::vec(inner, 0..2),
    )
        .prop_map(|(b, labels, attrs, inner)| {
            let labels: Vec<String> = labels
                .iter()
                .map(|&l| format!("\"{}\" ", NAMES[l]))
                .collect();
            format!(
                "{} {}{{\n{}{}}}\n",
                BLOCKS[b],
                labels.concat(),
                attrs.concat(),
                inner.concat()
            )
        })
}

/// Function arguments: edge cases of every type.
fn arg_value() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1.5".to_string()),
        Just("-0.5".to_string()),
        Just("1e308".to_string()),
        Just("-1e308".to_string()),
        Just("18446744073709551615".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("4294967296".to_string()),
        Just("\"\"".to_string()),
        Just("\"10.42.0.0/24\"".to_string()),
        Just("\"10.42.0.0/0\"".to_string()),
        Just("\"0.0.0.0/32\"".to_string()),
        Just("\"fd00::/64\"".to_string()),
        Just("\"%\"".to_string()),
        Just("\"%[9]d %*d %.999999f %-+#0v\"".to_string()),
        Just("\"é🦀\\u0000\"".to_string()),
        Just("\"{\\\"a\\\": [1, 2]}\"".to_string()),
        Just("\"[[[[\"".to_string()),
        Just("\"/etc/hostname\"".to_string()),
        Just("\"~/nope\"".to_string()),
        Just("\".\"".to_string()),
        Just("\"HOME\"".to_string()),
        "[a-z%,.:/ -]{0,12}".prop_map(|s| format!("\"{s}\"")),
        (-1000i64..1000).prop_map(|n| n.to_string()),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(inner, 0..3).prop_map(|v| {
                let kv: Vec<String> = v
                    .iter()
                    .enumerate()
                    .map(|(i, e)| format!("k{i} = {e}"))
                    .collect();
                format!("{{ {} }}", kv.join(", "))
            }),
        ]
    })
    .boxed()
}

/// Declarations for the names generated references use.
const PRELUDE: &str = r#"
variable "a" {
  default = 2
}
variable "b" {
  default = "10.42.0.0/24"
}
locals {
  lab = "host"
  web = ["a", "b"]
}
network "lab" {
  cidr = "10.42.0.0/24"
}
network "web" {}
node "edge" {
  count   = 2
  image   = "host"
  network = network.lab
}
node "web" {
  for_each = toset(["a", "b"])
  image    = "host"
  network  = network.web
}
package "nginx" {
  on = node.edge
}
"#;

/// A block that follows the schema (right labels, known attributes and
/// nested blocks) with random values: gets past decoding into evaluation.
fn schema_block() -> impl Strategy<Value = String> {
    use tg::config::decode::{BlockSchema, TOP_LEVEL};
    fn attrs_of(schema: &BlockSchema) -> Vec<&'static str> {
        match schema.attrs {
            Some(a) => a.to_vec(),
            None => vec!["a", "b", "edge", "x"],
        }
    }
    fn render(
        schema: &BlockSchema,
        labels: &[usize],
        picks: &[(usize, String)],
        nested: &[(usize, Vec<(usize, String)>)],
        indent: &str,
    ) -> String {
        let mut out = format!("{indent}{}", schema.kind);
        for (i, _) in schema.labels.iter().enumerate() {
            let l = labels.get(i).copied().unwrap_or(0) % NAMES.len();
            let name = if schema.kind == "platform" && i == 0 {
                ["ssh", "netns", "docker"][l % 3]
            } else {
                NAMES[l]
            };
            out.push_str(&format!(" \"{name}\""));
        }
        out.push_str(" {\n");
        let attrs = attrs_of(schema);
        let mut seen = HashSet::new();
        for (a, e) in picks {
            let name = attrs[a % attrs.len()];
            if seen.insert(name) {
                out.push_str(&format!("{indent}  {name} = {e}\n"));
            }
        }
        if !schema.blocks.is_empty() {
            for (b, inner) in nested {
                let nb = schema.blocks[b % schema.blocks.len()];
                out.push_str(&render(nb, labels, inner, &[], &format!("{indent}  ")));
            }
        }
        out.push_str(&format!("{indent}}}\n"));
        out
    }
    let picks = || prop::collection::vec((0usize..64, expr()), 0..5);
    (
        0..TOP_LEVEL.len(),
        prop::collection::vec(0usize..64, 2),
        picks(),
        prop::collection::vec((0usize..8, picks()), 0..2),
    )
        .prop_map(|(k, labels, picks, nested)| render(&TOP_LEVEL[k], &labels, &picks, &nested, ""))
}

// ----- valid testbeds ----------------------------------------------------------

#[derive(Debug, Clone)]
struct NodeGen {
    count: Option<u8>,
    keys: Option<Vec<u8>>,
    net: usize,
    fixed: Option<u8>,
}

fn valid_bed() -> impl Strategy<Value = (usize, Vec<bool>, Vec<NodeGen>, bool)> {
    (1usize..4).prop_flat_map(|nets| {
        (
            Just(nets),
            prop::collection::vec(any::<bool>(), nets),
            prop::collection::vec(
                (
                    prop::option::of(0u8..6),
                    prop::option::of(prop::collection::vec(0u8..26, 1..4)),
                    0..nets,
                    prop::option::of(2u8..250),
                ),
                0..7,
            )
            .prop_map(|v| {
                v.into_iter()
                    .map(|(count, keys, net, fixed)| NodeGen {
                        // count and for_each never together
                        keys: if count.is_some() { None } else { keys },
                        count,
                        net,
                        fixed,
                    })
                    .collect()
            }),
            any::<bool>(),
        )
    })
}

fn render_valid(has_cidr: &[bool], nodes: &[NodeGen], package: bool) -> String {
    let mut s = String::new();
    for (i, &cidr) in has_cidr.iter().enumerate() {
        s.push_str(&format!("network \"net{i}\" {{\n"));
        if cidr {
            s.push_str(&format!("  cidr = \"10.{}.0.0/24\"\n", 60 + i));
        }
        s.push_str("}\n");
    }
    let mut used_fixed = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        s.push_str(&format!("node \"n{i}\" {{\n  image = \"host\"\n"));
        s.push_str(&format!("  network = network.net{}\n", n.net));
        if let Some(c) = n.count {
            s.push_str(&format!(
                "  count = {c}\n  labels = {{ slot = count.index }}\n"
            ));
        } else if let Some(keys) = &n.keys {
            let keys: Vec<String> = keys
                .iter()
                .map(|k| format!("\"{}\"", (b'a' + k) as char))
                .collect();
            s.push_str(&format!(
                "  for_each = toset([{}])\n  labels = {{ key = each.key }}\n",
                keys.join(", ")
            ));
        } else if let Some(f) = n.fixed {
            if used_fixed.insert((n.net, f)) {
                s.push_str(&format!(
                    "  address = cidrhost(network.net{}.cidr, {f})\n",
                    n.net
                ));
            }
        }
        s.push_str("}\n");
    }
    if package && !nodes.is_empty() {
        s.push_str("package \"nginx\" {\n  version = \"1.22.1-9\"\n  on = [node.n0]\n}\n");
    }
    s.push_str("output \"all\" {\n  value = [");
    for i in 0..nodes.len() {
        s.push_str(&format!("node.n{i}, "));
    }
    s.push_str("]\n}\n");
    s
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_corpus_never_panics(
        pick in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let files = corpus();
        let original = files[pick.index(files.len())].clone();
        let bytes = mutate(original, &muts);
        load_and_check(&[("main.tg.hcl", &bytes)], Vec::new())?;
    }

    #[test]
    fn generated_testbeds_never_panic(
        blocks in prop::collection::vec(block(), 0..8),
        vars in prop::collection::vec((0..NAMES.len(), expr()), 0..2),
    ) {
        let text = blocks.concat();
        let vars: Vec<String> = vars.into_iter().map(|(n, e)| format!("{}={e}", NAMES[n])).collect();
        load_and_check(&[("main.tg.hcl", text.as_bytes())], vars)?;
    }

    #[test]
    fn schema_shaped_testbeds_never_panic(
        prelude in any::<bool>(),
        blocks in prop::collection::vec(schema_block(), 1..10),
    ) {
        // With the prelude, most references resolve and evaluation runs.
        let mut text = if prelude { PRELUDE.to_string() } else { String::new() };
        text.push_str(&blocks.concat());
        load_and_check(&[("main.tg.hcl", text.as_bytes())], Vec::new())?;
    }

    #[test]
    fn functions_with_any_arguments_never_panic(
        f in 0..tg::config::functions::NAMES.len(),
        args in prop::collection::vec(arg_value(), 0..5),
    ) {
        let text = format!(
            "output \"o\" {{\n  value = {}({})\n}}\n",
            tg::config::functions::NAMES[f],
            args.join(", ")
        );
        load_and_check(&[("main.tg.hcl", text.as_bytes())], Vec::new())?;
    }

    #[test]
    fn generated_valid_testbeds_load_with_sound_addresses(
        (_nets, has_cidr, nodes, package) in valid_bed(),
    ) {
        let text = render_valid(&has_cidr, &nodes, package);
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        std::fs::write(dir.path().join("main.tg.hcl"), &text)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let opts = LoadOptions { dir: dir.path().to_path_buf(), ..LoadOptions::default() };
        let tb = match config::load(&opts) {
            Ok((tb, _)) => tb,
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "a valid testbed does not load:\n{text}\n{}",
                    diagnostics::render_all(&e.diagnostics, &e.sources)
                )))
            }
        };
        // Addresses: inside the network, never .0/.1/broadcast, never shared.
        let mut cidrs = BTreeMap::new();
        for (addr, inst) in &tb.instances {
            if let tg::platform::Spec::Network(n) = &inst.spec {
                cidrs.insert(n.name.clone(), n.cidr);
                prop_assert_eq!(n.gateway, Ipv4Addr::from(u32::from(n.cidr.network()) + 1), "{}", addr);
            }
        }
        let mut seen = HashSet::new();
        for (addr, inst) in &tb.instances {
            if let tg::platform::Spec::Node(n) = &inst.spec {
                for itf in &n.interfaces {
                    let cidr = cidrs[&itf.network];
                    prop_assert!(cidr.contains(&itf.address), "{} {} not in {}", addr, itf.address, cidr);
                    prop_assert!(itf.address != cidr.network() && itf.address != cidr.broadcast());
                    prop_assert!(itf.address != itf.gateway, "{} got the host side's address", addr);
                    prop_assert!(seen.insert(itf.address), "{} reused {}", addr, itf.address);
                }
            }
        }
        // Deterministic: a second load gives the same addresses.
        let again = config::load(&opts).map_err(|_| TestCaseError::fail("second load failed"))?.0;
        for (addr, inst) in &tb.instances {
            prop_assert_eq!(&inst.attributes, &again.instances[addr].attributes);
        }
    }
}
