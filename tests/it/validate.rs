//! `tg validate` against a corpus of testbeds.
//!
//! - `tests/testbeds/invalid/*.tg.hcl`: one small broken testbed per file.
//!   Each runs through the real binary; the rendered diagnostics are
//!   snapshotted (`snapshots/it__validate__invalid__NAME.snap`, with the
//!   input in the snapshot's description). A file's leading comments may
//!   say `# args: ...` (extra arguments to `tg validate`) and
//!   `# env: NAME=VALUE ...`; a sibling `NAME.tgvars.hcl` is copied along.
//!   A few cases that need bytes a text file cannot hold are inline here.
//! - `tests/testbeds/valid/*/`: testbeds that must validate cleanly; the
//!   tests below also check the values they evaluate to (functions,
//!   expansion, variable precedence, IPAM).
//! - Every `-json` output, valid or not, is checked against
//!   `schemas/validate.schema.json`.
//!
//! IPAM cases are in `validate/ipam.rs`, hostile inputs in
//! `validate/hostile.rs`, sensitivity and escaping in plans in
//! `validate/sensitive.rs`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tg::addrs::InstanceAddr;
use tg::config::{self, LoadOptions, Prior};

use crate::support::Testbed;

mod hostile;
mod ipam;
mod sensitive;

fn corpus_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testbeds")
        .join(kind)
}

/// One invalid testbed: its files and how `tg validate` is run on it.
struct Case {
    name: String,
    /// The main file's text (shown in the snapshot's description).
    text: String,
    files: Vec<(String, Vec<u8>)>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// The directives of a case file's leading comment lines.
fn directives(text: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut args = Vec::new();
    let mut env = Vec::new();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(a) = line.strip_prefix("# args:") {
            args.extend(a.split_whitespace().map(str::to_string));
        } else if let Some(e) = line.strip_prefix("# env:") {
            for kv in e.split_whitespace() {
                let (k, v) = kv.split_once('=').expect("env directive is NAME=VALUE");
                env.push((k.to_string(), v.to_string()));
            }
        }
    }
    (args, env)
}

fn file_cases() -> Vec<Case> {
    let dir = corpus_dir("invalid");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/testbeds/invalid")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".tg.hcl"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            let name = file.trim_end_matches(".tg.hcl").to_string();
            let text = std::fs::read_to_string(&p).expect("case file is UTF-8");
            let (args, env) = directives(&text);
            let mut files = vec![("main.tg.hcl".to_string(), text.clone().into_bytes())];
            let mut shown = text.clone();
            let vars = dir.join(format!("{name}.tgvars.hcl"));
            if vars.exists() {
                let vars_text = std::fs::read_to_string(&vars).expect("vars file");
                shown.push_str(&format!("--- {name}.tgvars.hcl\n{vars_text}"));
                files.push((format!("{name}.tgvars.hcl"), vars_text.into_bytes()));
            }
            Case {
                name,
                text: shown,
                files,
                args,
                env,
            }
        })
        .collect()
}

/// Cases whose files are not plain text, or that need several files.
fn inline_cases() -> Vec<Case> {
    let case = |name: &str, files: Vec<(&str, Vec<u8>)>| Case {
        name: name.to_string(),
        // Bidirectional controls are shown as escapes in the snapshot.
        text: files
            .iter()
            .map(|(n, b)| format!("--- {n}\n{}", String::from_utf8_lossy(b)))
            .collect::<String>()
            .chars()
            .map(|c| {
                if tg::names::is_bidi_control(c) {
                    format!("\\u{{{:04X}}}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect(),
        files: files.into_iter().map(|(n, b)| (n.to_string(), b)).collect(),
        args: Vec::new(),
        env: Vec::new(),
    };
    vec![
        case(
            "inline_not_utf8",
            vec![(
                "main.tg.hcl",
                b"network \"lab\" {}\nnode \"a\" {\n  image = \"h\xffst\"\n}\n".to_vec(),
            )],
        ),
        case(
            "inline_nul_byte",
            vec![(
                "main.tg.hcl",
                b"network \"lab\" {}\nnode \"a\" {\n  image = \"host\"\0\n}\n".to_vec(),
            )],
        ),
        case(
            "inline_error_in_second_file",
            vec![
                ("a.tg.hcl", b"network \"lab\" {}\n".to_vec()),
                (
                    "b.tg.hcl",
                    b"node \"a\" {\n  image   = \"host\"\n  network = network.lba\n}\n".to_vec(),
                ),
            ],
        ),
        case(
            "inline_cycle_across_files",
            vec![
                ("a.tg.hcl", b"locals {\n  a = local.b\n}\n".to_vec()),
                ("b.tg.hcl", b"locals {\n  b = local.a\n}\n".to_vec()),
            ],
        ),
        // Regression: the syntax error hid `network.lab`, and `b.tg.hcl` got
        // an "unknown network" error for it too.
        case(
            "inline_syntax_error_no_cascade",
            vec![
                (
                    "a.tg.hcl",
                    b"network \"lab\" {\n  cidr = \"10.42.0.0/24\"\n".to_vec(),
                ),
                (
                    "b.tg.hcl",
                    b"node \"a\" {\n  image   = \"host\"\n  network = network.lab\n}\n".to_vec(),
                ),
            ],
        ),
        // Regression: at the `\n` of a CRLF line break the column counted
        // the `\r` (10:3 for a line holding only `}`).
        case(
            "inline_crlf_unclosed_block",
            vec![(
                "main.tg.hcl",
                b"network \"lab\" {\r\n \r\nnode \"a\" {\r\n  image = \"host\"\r\n}\r\n".to_vec(),
            )],
        ),
        // Trojan Source: a right-to-left override makes the line display
        // differently from what it is.
        case(
            "inline_bidi_override",
            vec![(
                "main.tg.hcl",
                "network \"lab\" {}\nnode \"a\" {\n  image  = \"host\"\n  labels = { role = \"admin\u{202E} \u{2066}// not\u{2069}\u{2066}\" }\n}\n"
                    .as_bytes()
                    .to_vec(),
            )],
        ),
        case(
            "inline_no_testbed_files",
            vec![("README.md", b"# no testbed here\n".to_vec())],
        ),
    ]
}

fn all_invalid_cases() -> Vec<Case> {
    let mut cases = file_cases();
    cases.extend(inline_cases());
    cases
}

fn setup(case: &Case) -> Testbed {
    let tb = Testbed::new(&[]);
    for (name, bytes) in &case.files {
        std::fs::write(tb.path().join(name), bytes).expect("write case file");
    }
    tb
}

fn run_validate(tb: &Testbed, case: &Case, extra: &[&str]) -> crate::support::Run {
    let mut args: Vec<&str> = vec!["validate"];
    args.extend(extra);
    args.extend(case.args.iter().map(String::as_str));
    let env: Vec<(&str, &str)> = case
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    tb.tg_env(&args, &env)
}

/// Replace the temporary directory in output with `[TESTBED]`.
fn scrub(s: &str, tb: &Testbed) -> String {
    let mut s = s.to_string();
    for p in [
        tb.path().to_path_buf(),
        tb.path().canonicalize().unwrap_or_default(),
    ] {
        let p = p.to_string_lossy().into_owned();
        if !p.is_empty() {
            s = s.replace(&p, "[TESTBED]");
        }
    }
    s
}

/// Every `FILE:LINE:COL:` header must name a line and column that exist.
fn check_positions(stderr: &str, case: &Case) {
    for line in stderr.lines() {
        let Some((head, _)) = line
            .split_once(": error:")
            .or(line.split_once(": warning:"))
        else {
            continue;
        };
        let mut parts = head.rsplitn(3, ':');
        let (Some(col), Some(ln), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(col), Ok(ln)) = (col.parse::<usize>(), ln.parse::<usize>()) else {
            continue;
        };
        let Some((_, bytes)) = case.files.iter().find(|(n, _)| n == file) else {
            panic!("{}: diagnostic names an unknown file `{file}`", case.name);
        };
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.split('\n').collect();
        assert!(
            ln >= 1 && ln <= lines.len(),
            "{}: line {ln} outside the file",
            case.name
        );
        assert!(
            col >= 1 && col <= lines[ln - 1].chars().count() + 1,
            "{}: column {col} outside line {ln}",
            case.name
        );
    }
}

/// Messages are lowercase and end without a period; help lines too.
fn check_style(stderr: &str, case: &Case) {
    for line in stderr.lines() {
        let text = match line.split_once("error: ").or(line.split_once("help: ")) {
            Some((_, t)) => t,
            None => continue,
        };
        assert!(
            !text.starts_with(|c: char| c.is_ascii_uppercase()),
            "{}: message starts uppercase: {text}",
            case.name
        );
        assert!(
            !text.ends_with('.'),
            "{}: message ends with a period: {text}",
            case.name
        );
    }
}

#[test]
fn invalid_testbeds_report_errors_and_match_snapshots() {
    let cases = all_invalid_cases();
    assert!(
        cases.len() >= 30,
        "the corpus must hold at least 30 invalid testbeds"
    );
    for case in &cases {
        let tb = setup(case);
        let run = run_validate(&tb, case, &[]);
        let stderr = scrub(&run.stderr(), &tb);
        let stdout = scrub(&run.stdout(), &tb);
        assert_eq!(
            run.code(),
            1,
            "{}: expected exit 1\n{stdout}\n{stderr}",
            case.name
        );
        assert!(
            !stderr.contains("panicked"),
            "{}: tg panicked\n{stderr}",
            case.name
        );
        assert!(
            stderr.contains("error: "),
            "{}: no error reported\n{stderr}",
            case.name
        );
        check_positions(&stderr, case);
        check_style(&stderr, case);
        let shown = format!(
            "exit: {}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            run.code()
        );
        insta::with_settings!({
            description => case.text.clone(),
            omit_expression => true,
            prepend_module_to_snapshot => true,
        }, {
            insta::assert_snapshot!(format!("invalid__{}", case.name), shown);
        });
    }
}

// ----- JSON schema --------------------------------------------------------

fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/validate.schema.json");
    let text = std::fs::read_to_string(&path).expect("schemas/validate.schema.json");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

#[track_caller]
fn assert_schema_valid(validator: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: `tg validate -json` does not match the schema:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

#[test]
fn json_output_of_every_case_matches_the_schema() {
    let validator = schema();
    for case in all_invalid_cases() {
        let tb = setup(&case);
        let run = run_validate(&tb, &case, &["-json"]);
        run.expect_code(1);
        let doc: Value = serde_json::from_str(&run.stdout())
            .unwrap_or_else(|e| panic!("{}: stdout is not one JSON document: {e}", case.name));
        assert_schema_valid(&validator, &doc, &case.name);
        assert_eq!(doc["valid"], json!(false), "{}", case.name);
        assert!(
            doc["error_count"].as_u64().unwrap_or(0) >= 1,
            "{}",
            case.name
        );
        let listed = doc["diagnostics"]
            .as_array()
            .map(|d| d.iter().filter(|x| x["severity"] == "error").count())
            .unwrap_or(0);
        assert_eq!(
            doc["error_count"].as_u64(),
            Some(listed as u64),
            "{}",
            case.name
        );
    }
    for dir in valid_dirs() {
        let tb = copy_valid(&dir);
        let run = tb.tg(&["validate", "-json"]);
        run.expect_code(0);
        let doc: Value = serde_json::from_str(&run.stdout()).expect("one JSON document");
        assert_schema_valid(&validator, &doc, &dir.display().to_string());
        assert_eq!(doc["valid"], json!(true));
    }
}

#[test]
fn the_schema_rejects_documents_that_break_it() {
    let validator = schema();
    let good = json!({
        "format_version": "1.0", "valid": false, "error_count": 1, "warning_count": 0,
        "diagnostics": [{
            "severity": "error", "summary": "unknown block type `nodes`",
            "help": "did you mean `node`?",
            "range": {
                "filename": "main.tg.hcl",
                "start": {"line": 2, "column": 1, "byte": 10},
                "end": {"line": 2, "column": 6, "byte": 15}
            }
        }]
    });
    assert!(validator.is_valid(&good));
    for (what, bad) in [
        (
            "no format_version",
            json!({"valid": true, "error_count": 0, "warning_count": 0, "diagnostics": []}),
        ),
        (
            "severity fatal",
            json!({"format_version": "1.0", "valid": false, "error_count": 1, "warning_count": 0,
            "diagnostics": [{"severity": "fatal", "summary": "x"}]}),
        ),
        (
            "line 0",
            json!({"format_version": "1.0", "valid": false, "error_count": 1, "warning_count": 0,
            "diagnostics": [{"severity": "error", "summary": "x", "range": {"filename": "a",
            "start": {"line": 0, "column": 1, "byte": 0}, "end": {"line": 1, "column": 1, "byte": 0}}}]}),
        ),
        (
            "unknown key",
            json!({"format_version": "1.0", "valid": true, "error_count": 0, "warning_count": 0,
            "diagnostics": [], "extra": 1}),
        ),
    ] {
        assert!(
            !validator.is_valid(&bad),
            "the schema accepts a document with {what}"
        );
    }
}

// ----- valid testbeds -------------------------------------------------------

fn valid_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus_dir("valid"))
        .expect("tests/testbeds/valid")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// A copy of a valid testbed in a temporary directory.
fn copy_valid(dir: &Path) -> Testbed {
    let tb = Testbed::new(&[]);
    copy_dir(dir, tb.path());
    tb
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("read dir") {
        let p = e.expect("dir entry").path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn valid_dir(name: &str) -> PathBuf {
    corpus_dir("valid").join(name)
}

fn load_dir(dir: &Path) -> tg::config::model::Testbed {
    load_with(LoadOptions {
        dir: dir.to_path_buf(),
        ..LoadOptions::default()
    })
}

fn load_with(opts: LoadOptions) -> tg::config::model::Testbed {
    match config::load(&opts) {
        Ok((tb, warnings)) => {
            assert!(
                warnings.is_empty(),
                "unexpected warnings:\n{}",
                tg::diagnostics::render_all(&warnings, &tb.sources)
            );
            tb
        }
        Err(e) => panic!(
            "the testbed does not load:\n{}",
            tg::diagnostics::render_all(&e.diagnostics, &e.sources)
        ),
    }
}

fn output(tb: &tg::config::model::Testbed, name: &str) -> Value {
    tb.outputs
        .get(name)
        .unwrap_or_else(|| panic!("no output `{name}`"))
        .value
        .clone()
}

fn attr(tb: &tg::config::model::Testbed, addr: &str, key: &str) -> Value {
    let a: InstanceAddr = addr.parse().expect("address");
    tb.instances
        .get(&a)
        .unwrap_or_else(|| panic!("no instance `{addr}`"))
        .attributes[key]
        .clone()
}

#[test]
fn valid_testbeds_validate_cleanly() {
    let dirs = valid_dirs();
    assert!(dirs.len() >= 5);
    for dir in dirs {
        let tb = copy_valid(&dir);
        let run = tb.tg(&["validate"]);
        run.expect_code(0);
        assert!(
            run.stdout().starts_with("The testbed is valid: "),
            "{}: {}",
            dir.display(),
            run.stdout()
        );
        assert_eq!(run.stderr(), "", "{}: warnings", dir.display());
    }
}

#[test]
fn every_block_type_is_covered_by_the_valid_corpus() {
    let mut text = String::new();
    for dir in valid_dirs() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".tg.hcl") {
                text.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    for block in [
        "testbed {",
        "variable \"",
        "validation {",
        "locals {",
        "profile \"",
        "network \"",
        "node \"",
        "lifecycle {",
        "package \"",
        "requires {",
        "output \"",
        "platform \"ssh\" \"",
        "host \"",
        "state {",
    ] {
        assert!(text.contains(block), "no valid testbed has `{block}`");
    }
}

/// Every function of the library is called in `valid/functions`, and each
/// output there has the value the function should give.
#[test]
fn every_function_evaluates_to_its_expected_value() {
    let dir = valid_dir("functions");
    let text = std::fs::read_to_string(dir.join("main.tg.hcl")).unwrap();
    for f in tg::config::functions::NAMES {
        assert!(
            text.contains(&format!("{f}(")),
            "function `{f}` is not called in valid/functions"
        );
    }
    let tb = load_dir(&dir);
    let expected: BTreeMap<&str, Value> = BTreeMap::from([
        ("abs", json!(3)),
        ("ceil", json!(2)),
        ("chomp", json!("line")),
        ("cidrhost", json!("10.42.0.10")),
        ("cidrnetmask", json!("255.255.255.0")),
        ("cidrsubnet", json!("10.42.1.0/24")),
        ("coalesce", json!("first")),
        ("compact", json!(["a", "b"])),
        ("concat", json!(["a", "b", "c"])),
        ("contains", json!(true)),
        ("distinct", json!(["a", "b"])),
        ("element", json!("b")),
        ("endswith", json!(true)),
        ("env", json!("fallback")),
        ("file", json!("hello from a file\n")),
        ("flatten", json!([1, 2, 3])),
        ("floor", json!(1)),
        ("format", json!("edge-007")),
        ("formatlist", json!(["web-a", "web-b"])),
        ("index", json!(1)),
        ("join", json!("a,b,c")),
        ("jsondecode", json!({"a": [1, 2]})),
        ("jsonencode", json!("{\"a\":1}")),
        ("keys", json!(["a", "b"])),
        ("length", json!(3)),
        ("lookup", json!("default")),
        ("lower", json!("edge")),
        ("max", json!(9)),
        ("merge", json!({"a": 1, "b": 3})),
        ("min", json!(-2)),
        ("range", json!([0, 2, 4])),
        ("replace", json!("a-b-c")),
        ("reverse", json!([3, 2, 1])),
        ("slice", json!(["b", "c"])),
        ("sort", json!(["a", "b", "c"])),
        ("split", json!(["a", "b", "c"])),
        ("startswith", json!(false)),
        ("substr", json!("dge")),
        ("sum", json!(6)),
        ("tolist", json!(["a", "b"])),
        ("tomap", json!({"a": "x"})),
        ("tonumber", json!(42)),
        ("toset", json!(["a", "b"])),
        ("tostring", json!("5")),
        ("trimprefix", json!("edge")),
        ("trimspace", json!("edge")),
        ("trimsuffix", json!("edge")),
        ("upper", json!("EDGE")),
        ("values", json!([1, 2])),
        ("zipmap", json!({"a": 1, "b": 2})),
        ("alltrue", json!(true)),
        ("anytrue", json!(true)),
        ("base64decode", json!("tg")),
        ("base64encode", json!("dGc=")),
        ("chunklist", json!([["a", "b"], ["c"]])),
        ("cidrsubnets", json!(["10.0.0.0/24", "10.0.1.0/24"])),
        ("filebase64", json!("aGVsbG8gZnJvbSBhIGZpbGUK")),
        ("fileexists", json!(true)),
        (
            "filesha256",
            json!("bffc61ff16a681ec509e5f20b56017cc17c75f9e9f98bd44450e493acfaf0f71"),
        ),
        ("indent", json!("a\n  b")),
        ("one", json!("x")),
        ("setintersection", json!(["b"])),
        ("setsubtract", json!(["a"])),
        ("setunion", json!(["a", "b"])),
        (
            "sha256",
            json!("e9ed69a6ea08507ea7f2d93985c23588cc4c5bd46b0f9997f1193238542ca395"),
        ),
        ("strrev", json!("egde")),
        ("templatefile", json!("hello tg")),
        ("title", json!("Edge Node")),
    ]);
    for f in tg::config::functions::NAMES {
        let want = expected
            .get(f)
            .unwrap_or_else(|| panic!("no expected value for `{f}`"));
        let got = output(&tb, f);
        assert_eq!(&got, want, "output `{f}`");
    }
}

#[test]
fn expansion_references_splat_templates_and_for_expressions() {
    let tb = load_dir(&valid_dir("expansion"));
    assert_eq!(
        output(&tb, "edge_hosts"),
        json!(["edge-0", "edge-1", "edge-2"])
    );
    assert_eq!(
        output(&tb, "edge_addresses"),
        json!(["10.42.0.2", "10.42.0.3", "10.42.0.4"])
    );
    assert_eq!(
        output(&tb, "web_roles"),
        json!({"a": "role-a", "b": "role-b"})
    );
    assert_eq!(output(&tb, "web_hosts"), json!(["web-a", "web-b"]));
    assert_eq!(
        output(&tb, "greeting"),
        json!("bed expansion has 3 edges: edge-0, edge-1, edge-2")
    );
    assert_eq!(
        output(&tb, "upper_hosts"),
        json!({"edge-0": "EDGE-0", "edge-1": "EDGE-1", "edge-2": "EDGE-2"})
    );
    assert_eq!(output(&tb, "odd_indexes"), json!([1]));
    // Regression: a node with `count = 0` (or an empty `for_each`) could not
    // be referred to ("no key or attribute").
    assert_eq!(
        output(&tb, "no_spares"),
        json!({"list": [], "map": {}, "n": 0})
    );
    assert_eq!(
        output(&tb, "template_directives"),
        json!("edge-0;edge-1;edge-2;")
    );
    assert_eq!(
        output(&tb, "nginx_nodes"),
        json!(["edge-0", "edge-1", "edge-2"])
    );
    // count.index and each.key/each.value reach attributes.
    assert_eq!(
        attr(&tb, "node.edge[1]", "labels"),
        json!({"slot": "1", "tier": "cdn"})
    );
    assert_eq!(
        attr(&tb, "node.web[\"b\"]", "labels"),
        json!({"role": "role-b", "site": "b"})
    );
    // A network with for_each, and a node on two networks.
    assert_eq!(
        attr(&tb, "network.site[\"eu\"]", "cidr"),
        json!("10.50.1.0/24")
    );
    assert_eq!(
        attr(&tb, "network.site[\"us\"]", "cidr"),
        json!("10.50.2.0/24")
    );
    assert_eq!(
        attr(&tb, "node.router", "addresses"),
        json!({"lab": "10.42.0.7", "site-eu": "10.50.1.2"})
    );
    // depends_on, and references, become instance dependencies.
    let router: InstanceAddr = "node.router".parse().unwrap();
    let deps: Vec<String> = tb.instances[&router]
        .depends_on
        .iter()
        .map(|a| a.to_string())
        .collect();
    for want in [
        "network.lab",
        "network.site[\"eu\"]",
        "node.edge[0]",
        "node.edge[2]",
    ] {
        assert!(
            deps.contains(&want.to_string()),
            "router depends on {deps:?}"
        );
    }
}

/// default < TG_VAR_name < -var-file < -var, seen in the number of
/// instances `count = var.n` gives (one network plus n nodes).
#[test]
fn variable_precedence() {
    let tb = copy_valid(&valid_dir("precedence"));
    let instances = |args: &[&str], env: &[(&str, &str)]| -> String {
        let mut all = vec!["validate"];
        all.extend(args);
        let run = tb.tg_env(&all, env);
        run.expect_code(0);
        run.stdout()
    };
    assert_eq!(instances(&[], &[]), "The testbed is valid: 2 instances.\n");
    assert_eq!(
        instances(&[], &[("TG_VAR_n", "2")]),
        "The testbed is valid: 3 instances.\n"
    );
    assert_eq!(
        instances(&["-var-file", "three.tgvars.hcl"], &[("TG_VAR_n", "2")]),
        "The testbed is valid: 4 instances.\n"
    );
    assert_eq!(
        instances(
            &["-var-file", "three.tgvars.hcl", "-var", "n=4"],
            &[("TG_VAR_n", "2")]
        ),
        "The testbed is valid: 5 instances.\n"
    );
    // Later `-var` and `-var-file` win over earlier ones.
    assert_eq!(
        instances(&["-var", "n=4", "-var", "n=1"], &[]),
        "The testbed is valid: 2 instances.\n"
    );
}

// ----- IPAM ------------------------------------------------------------------

fn inline(text: &str) -> (tempfile::TempDir, LoadOptions) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tg.hcl"), text).unwrap();
    let opts = LoadOptions {
        dir: dir.path().to_path_buf(),
        ..LoadOptions::default()
    };
    (dir, opts)
}

fn addresses(tb: &tg::config::model::Testbed) -> BTreeMap<String, String> {
    tb.instances
        .iter()
        .filter(|(a, _)| a.to_string().starts_with("node."))
        .map(|(a, i)| {
            (
                a.to_string(),
                i.attributes["address"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

const IPAM_BED: &str = r#"
network "lab" {
  cidr = "10.42.0.0/24"
}
node "fixed" {
  image   = "host"
  address = "10.42.0.3"
}
node "edge" {
  count = 3
  image = "host"
}
"#;

#[test]
fn a_single_network_is_the_default_network() {
    let (_d, opts) = inline(
        "network \"only\" {\n  cidr = \"10.1.2.0/24\"\n}\nnode \"n\" {\n  image = \"host\"\n}\n",
    );
    let tb = load_with(opts);
    assert_eq!(
        attr(&tb, "node.n", "addresses"),
        json!({"only": "10.1.2.2"})
    );
}

#[test]
fn implicit_defaults_single_network_implicit_node_and_pool() {
    let tb = load_dir(&valid_dir("implicit"));
    // The only network is every node's network, and it comes from the pool.
    assert_eq!(output(&tb, "cidr"), json!("10.200.0.0/24"));
    assert_eq!(output(&tb, "a_address"), json!("10.200.0.2"));
    // A package without `on` gets the node `pkg-NAME` (`.` and `+` become `-`),
    // shaped by `requires`.
    assert_eq!(attr(&tb, "node.pkg-python3-11", "profile"), json!("small"));
    assert_eq!(attr(&tb, "node.pkg-nginx", "memory"), json!("256MiB"));
    assert_eq!(output(&tb, "where"), json!(["pkg-nginx"]));
    let pkg: InstanceAddr = "package.nginx[node.pkg-nginx]".parse().unwrap();
    assert!(tb.instances.contains_key(&pkg));
}

/// Warnings are shown but do not fail the run.
#[test]
fn warnings_are_shown_and_exit_zero() {
    let tb = Testbed::new(&[
        (
            "main.tg.hcl",
            "variable \"edge_count\" {\n  default = 1\n}\nnetwork \"lab\" {}\nnode \"edge\" {\n  count = 0\n  image = \"host\"\n}\npackage \"nginx\" {\n  on = node.edge\n}\n",
        ),
        ("dev.tgvars.hcl", "edge_cuont = 2\n"),
    ]);
    let run = tb.tg(&["validate", "-var-file", "dev.tgvars.hcl"]);
    run.expect_code(0);
    let shown = format!(
        "--- stdout\n{}--- stderr\n{}",
        scrub(&run.stdout(), &tb),
        scrub(&run.stderr(), &tb)
    );
    insta::assert_snapshot!("warnings", shown);
    let json = tb.tg(&["validate", "-json", "-var-file", "dev.tgvars.hcl"]);
    json.expect_code(0);
    let doc: Value = serde_json::from_str(&json.stdout()).expect("one JSON document");
    assert_schema_valid(&schema(), &doc, "warnings");
    assert_eq!(doc["valid"], json!(true));
    assert_eq!(doc["warning_count"], json!(2));
}

/// Regression: referring to one instance of another node resource
/// (`node.a[count.index]`) evaluated the whole resource for every instance
/// (quadratic); it is now narrowed to that instance. The values must stay
/// right, including through templates and for-expressions that still need
/// the whole resource.
#[test]
fn references_to_single_instances_resolve_per_instance() {
    let tb = crate::support::Testbed::new(&[(
        "main.tg.hcl",
        r#"
network "lab" {
  cidr = "10.42.0.0/24"
}

node "a" {
  count   = 3
  image   = "host"
  network = network.lab
}

node "b" {
  count   = 3
  image   = "host"
  network = network.lab
  labels  = { peer = node.a[count.index].hostname, first = node.a[0].address }
}

node "c" {
  for_each = { x = "1", y = "2" }
  image    = "host"
  network  = network.lab
  labels   = { all = join(",", [for n in node.a : n.hostname]), me = "${node.b[2].hostname}-${each.key}" }
}

output "peers" {
  value = [for n in node.b : n.labels.peer]
}

output "c" {
  value = { for k, n in node.c : k => n.labels }
}
"#,
    )]);
    let tb = load_dir(tb.path());
    assert_eq!(output(&tb, "peers"), json!(["a-0", "a-1", "a-2"]));
    // Dependencies follow the references: b[1] needs a[1] and a[0] only;
    // c uses all of `node.a` and b[2].
    let deps = |addr: &str| -> Vec<String> {
        let a: tg::addrs::InstanceAddr = addr.parse().unwrap();
        let mut d: Vec<String> = tb.instances[&a]
            .depends_on
            .iter()
            .map(|x| x.to_string())
            .collect();
        d.sort();
        d
    };
    assert_eq!(deps("node.b[1]"), ["network.lab", "node.a[0]", "node.a[1]"]);
    assert_eq!(
        deps("node.c[\"x\"]"),
        [
            "network.lab",
            "node.a[0]",
            "node.a[1]",
            "node.a[2]",
            "node.b[2]"
        ]
    );
    assert_eq!(
        output(&tb, "c"),
        json!({
            "x": {"all": "a-0,a-1,a-2", "me": "b-2-x"},
            "y": {"all": "a-0,a-1,a-2", "me": "b-2-y"}
        })
    );
}
