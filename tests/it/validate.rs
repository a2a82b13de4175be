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

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tg::addrs::InstanceAddr;
use tg::config::{self, LoadOptions, Prior};

use crate::support::Testbed;

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
fn ipam_skips_fixed_addresses_and_the_host_side() {
    let (_d, opts) = inline(IPAM_BED);
    let tb = load_with(opts);
    let got = addresses(&tb);
    assert_eq!(got["node.fixed"], "10.42.0.3");
    // Lowest free, skipping .0, .1 (host side) and the fixed .3.
    assert_eq!(got["node.edge[0]"], "10.42.0.2");
    assert_eq!(got["node.edge[1]"], "10.42.0.4");
    assert_eq!(got["node.edge[2]"], "10.42.0.5");
    assert_eq!(attr(&tb, "network.lab", "gateway"), json!("10.42.0.1"));
    assert!(!got.values().any(|a| a == "10.42.0.1"));
}

#[test]
fn ipam_is_deterministic() {
    let (_d, opts) = inline(IPAM_BED);
    let a = addresses(&load_with(opts.clone()));
    let b = addresses(&load_with(opts));
    assert_eq!(a, b);
}

#[test]
fn ipam_fills_a_small_network_without_the_host_side() {
    // A /29 has 8 addresses: .0, .1 (host side) and .7 (broadcast) are never
    // given, so it holds exactly five nodes.
    let (_d, opts) = inline(
        r#"
network "lab" {
  cidr = "10.9.0.0/29"
}
node "n" {
  count = 5
  image = "host"
}
"#,
    );
    let got: Vec<String> = addresses(&load_with(opts)).into_values().collect();
    assert_eq!(
        got,
        ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
    );
}

#[test]
fn ipam_keeps_recorded_addresses_when_a_node_is_added_before() {
    // State recorded `node.b` at .2; a new node `a` declared before it must
    // not take .2 away: `b` keeps its address and `a` gets the next free one.
    let (_d, mut opts) = inline(
        r#"
network "lab" {
  cidr = "10.42.0.0/24"
}
node "a" {
  image = "host"
}
node "b" {
  image = "host"
}
"#,
    );
    let mut recorded = BTreeMap::new();
    recorded.insert("lab".to_string(), "10.42.0.2".parse::<Ipv4Addr>().unwrap());
    opts.prior = Prior {
        node_addresses: BTreeMap::from([("node.b".parse().unwrap(), recorded)]),
        network_cidrs: BTreeMap::new(),
    };
    let got = addresses(&load_with(opts));
    assert_eq!(got["node.b"], "10.42.0.2");
    assert_eq!(got["node.a"], "10.42.0.3");
}

#[test]
fn ipam_gives_pool_cidrs_to_networks_without_cidr_and_keeps_them() {
    let text = r#"
network "fixed" {
  cidr = "10.200.0.0/24"
}
network "a" {}
network "b" {}
node "x" {
  image   = "host"
  network = network.b
}
"#;
    let (_d, mut opts) = inline(text);
    let tb = load_with(opts.clone());
    // The first free /24s of 10.200.0.0/16, skipping the one in use.
    assert_eq!(attr(&tb, "network.a", "cidr"), json!("10.200.1.0/24"));
    assert_eq!(attr(&tb, "network.b", "cidr"), json!("10.200.2.0/24"));
    assert_eq!(attr(&tb, "node.x", "address"), json!("10.200.2.2"));
    // Recorded CIDRs stay, even when the order of first-free would differ.
    opts.prior.network_cidrs = BTreeMap::from([(
        "network.b".parse().unwrap(),
        "10.200.7.0/24".parse().unwrap(),
    )]);
    let tb = load_with(opts);
    assert_eq!(attr(&tb, "network.a", "cidr"), json!("10.200.1.0/24"));
    assert_eq!(attr(&tb, "network.b", "cidr"), json!("10.200.7.0/24"));
    assert_eq!(attr(&tb, "node.x", "address"), json!("10.200.7.2"));
}

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

/// Regression: a new network without `cidr`, declared before an existing
/// one, took the existing network's recorded /24 (pool CIDRs were handed
/// out in declaration order, each looking at its own record only).
#[test]
fn ipam_pool_keeps_recorded_cidrs_when_a_network_is_added_before() {
    let (_d, mut opts) = inline(
        r#"
network "new" {}
network "old" {}
node "x" {
  image   = "host"
  network = network.old
}
"#,
    );
    opts.prior = Prior {
        network_cidrs: BTreeMap::from([(
            "network.old".parse().unwrap(),
            "10.200.0.0/24".parse().unwrap(),
        )]),
        node_addresses: BTreeMap::from([(
            "node.x".parse().unwrap(),
            BTreeMap::from([("old".to_string(), "10.200.0.2".parse().unwrap())]),
        )]),
    };
    let tb = load_with(opts);
    assert_eq!(attr(&tb, "network.old", "cidr"), json!("10.200.0.0/24"));
    assert_eq!(attr(&tb, "network.new", "cidr"), json!("10.200.1.0/24"));
    assert_eq!(attr(&tb, "node.x", "address"), json!("10.200.0.2"));
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

// ----- hostile inputs ------------------------------------------------------

/// `locals { NAME = ... }` with one local per line of `body(i)`, i = 1..=n.
fn locals_chain(first: &str, n: usize, body: impl Fn(usize) -> String, output: &str) -> String {
    let mut s = format!("locals {{\n  l0 = {first}\n");
    for i in 1..=n {
        s.push_str(&format!("  l{i} = {}\n", body(i)));
    }
    s.push_str(&format!("}}\noutput \"o\" {{\n  value = {output}\n}}\n"));
    s
}

/// Locals that double at each step reached gigabytes at 24 levels: now the
/// value that passes the size limit is refused where it is written.
#[test]
fn doubling_locals_are_refused_at_the_size_limit() {
    let text = locals_chain(
        "[\"x\"]",
        30,
        |i| format!("[local.l{}, local.l{}]", i - 1, i - 1),
        "length(local.l30)",
    );
    let tb = Testbed::new(&[("main.tg.hcl", &text)]);
    let run = tb.tg(&["validate"]);
    run.expect_code(1);
    let err = run.stderr();
    assert!(
        err.starts_with("main.tg.hcl:21:9: error: the value of `l19` is too large: it holds more than 1048576 list elements and map entries"),
        "{err}"
    );
    assert!(err.contains("1 error, 0 warnings"), "{err}");
}

/// A chain of 1,000 nested locals (each holding the one before) took more
/// than 20 s: it evaluates now, and a deeper one is refused by the depth
/// limit instead of overflowing the stack.
#[test]
fn chains_of_nested_locals_evaluate_or_hit_the_depth_limit() {
    let chain = |n| {
        locals_chain(
            "\"x\"",
            n,
            |i| format!("{{ prev = local.l{}, n = {i} }}", i - 1),
            &format!("local.l{n}.prev.n"),
        )
    };
    let tb = Testbed::new(&[("main.tg.hcl", &chain(1000))]);
    let run = tb.tg(&["validate"]);
    run.expect_code(0);
    let tb = Testbed::new(&[("main.tg.hcl", &chain(5000))]);
    let run = tb.tg(&["validate"]);
    run.expect_code(1);
    assert!(
        run.stderr().contains("error: the value of `l1025` is too large: it holds lists and maps nested more than 1024 levels deep"),
        "{}",
        run.stderr()
    );
    // A long chain of plain values is fine.
    let flat = locals_chain(
        "0",
        5000,
        |i| format!("local.l{} + 1", i - 1),
        "local.l5000",
    );
    let tb = Testbed::new(&[("main.tg.hcl", &flat)]);
    tb.tg(&["validate"]).expect_code(0);
}

/// Ten `count = 100000` blocks took 26 s and 5.7 GB: the first is refused.
#[test]
fn instances_past_the_limit_are_refused() {
    let mut text = String::from("network \"lab\" {\n  cidr = \"10.0.0.0/8\"\n}\n");
    for i in 0..10 {
        text.push_str(&format!(
            "node \"n{i}\" {{\n  count = 100000\n  image = \"host\"\n}}\n"
        ));
    }
    let tb = Testbed::new(&[("main.tg.hcl", &text)]);
    let run = tb.tg(&["validate"]);
    run.expect_code(1);
    let err = run.stderr();
    assert!(
        err.starts_with("main.tg.hcl:5:11: error: `count` must be a whole number from 0 to 50000, found number 100000"),
        "{err}"
    );
    assert!(
        err.contains("raise the limit with `TG_MAX_INSTANCES`"),
        "{err}"
    );
    // Through the library: the caller's limit, and `TG_MAX_INSTANCES` in
    // the caller's environment.
    let small = "network \"lab\" {}\nnode \"a\" {\n  count = 30\n  image = \"host\"\n}\n";
    let (_d, mut opts) = inline(small);
    opts.limits.max_instances = 20;
    let e = config::load(&opts).expect_err("over the limit");
    assert_eq!(
        e.diagnostics.0[0].summary,
        "`count` must be a whole number from 0 to 20, found number 30"
    );
    opts.env = opts.env.with_var("TG_MAX_INSTANCES", "40");
    assert_eq!(load_with(opts).instances.len(), 31);
}

/// A testbed file whose symlink target is gone was skipped (and plan then
/// proposed to destroy what it described): it is refused with its path.
#[test]
fn broken_symlinks_and_special_files_are_refused() {
    let tb = Testbed::new(&[("main.tg.hcl", "network \"lab\" {}\n")]);
    std::os::unix::fs::symlink("gone/nodes.tg.hcl", tb.path().join("nodes.tg.hcl")).unwrap();
    let run = tb.tg(&["validate"]);
    run.expect_code(1);
    assert_eq!(
        run.stderr().lines().next().unwrap_or(""),
        "error: `nodes.tg.hcl` is a symbolic link to `gone/nodes.tg.hcl`, which does not exist"
    );
    std::fs::remove_file(tb.path().join("nodes.tg.hcl")).unwrap();
    std::fs::create_dir(tb.path().join("dir.tg.hcl")).unwrap();
    let run = tb.tg(&["validate"]);
    run.expect_code(1);
    assert_eq!(
        run.stderr().lines().next().unwrap_or(""),
        "error: `dir.tg.hcl` is a directory, not a testbed file"
    );
    std::fs::remove_dir(tb.path().join("dir.tg.hcl")).unwrap();
    // A FIFO would block a read forever.
    let fifo = tb.path().join("pipe.tg.hcl");
    let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let run = tb.tg(&["validate"]);
    run.expect_code(1);
    assert_eq!(
        run.stderr().lines().next().unwrap_or(""),
        "error: `pipe.tg.hcl` is a FIFO, not a testbed file"
    );
    // So would a FIFO given as a variable file.
    std::fs::remove_file(&fifo).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::fs::rename(&fifo, tb.path().join("vars.fifo")).unwrap();
    let run = tb.tg(&["validate", "-var-file", "vars.fifo"]);
    run.expect_code(1);
    assert!(
        run.stderr()
            .starts_with("error: cannot read `vars.fifo`: it is a FIFO, not a regular file"),
        "{}",
        run.stderr()
    );
}

/// Relative `-var-file` paths and `~/` in `file()` follow the caller's
/// working directory and `HOME`, not the process's.
#[test]
fn paths_come_from_the_callers_environment() {
    let (dir, mut opts) = inline(
        "variable \"n\" {\n  default = 0\n}\noutput \"n\" {\n  value = var.n\n}\noutput \"f\" {\n  value = file(\"~/greeting.txt\")\n}\n",
    );
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("v.tgvars.hcl"), "n = 7\n").unwrap();
    std::fs::write(elsewhere.path().join("greeting.txt"), "hi").unwrap();
    opts.var_files = vec!["v.tgvars.hcl".into()];
    opts.env = tg::environment::Environment::new(
        [("HOME".to_string(), elsewhere.path().display().to_string())],
        elsewhere.path(),
    );
    let tb = load_with(opts);
    assert_eq!(output(&tb, "n"), json!(7));
    assert_eq!(output(&tb, "f"), json!("hi"));
    drop(dir);
}

// ----- sensitivity and escaping reach every rendering -----------------------

const SECRET: &str = "hunter2-very-secret";

fn secret_bed(secret: &str, extra_label: &str) -> String {
    format!(
        r#"
variable "pw" {{
  default   = "{secret}"
  sensitive = true
}}

locals {{
  header = "Bearer ${{var.pw}}"
}}

network "lab" {{
  cidr = "10.42.0.0/24"
}}

node "a" {{
  image    = "host"
  platform = "double"
  labels   = {{ pw = var.pw, auth = local.header, role = "edge"{extra_label} }}
}}

node "b" {{
  image    = "host"
  platform = "double"
  labels   = {{ copied = node.a.labels.pw, role = node.a.labels.role }}
}}
"#
    )
}

fn plan_schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/plan.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// Every way a plan is shown: text, markdown, JSON.
fn renderings(bed: &crate::engine::Bed, args: &[&str]) -> [String; 3] {
    let run = |more: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(more);
        let r = bed.tg(&all);
        assert!(matches!(r.code(), 0 | 2), "{all:?}: {}", r.stderr());
        format!("{}{}", r.stdout(), r.stderr())
    };
    [run(&[]), run(&["-format", "markdown"]), run(&["-json"])]
}

/// With `variable "pw" { sensitive = true }` a node's `labels = { pw =
/// var.pw }` printed the secret in all three plan renderings; values
/// derived from it (a local's template, another node's label) too.
#[test]
fn sensitive_values_never_appear_in_plans() {
    let bed = crate::engine::Bed::new(&secret_bed(SECRET, ""));
    let validator = plan_schema();
    let check = |args: &[&str], what: &str| {
        let [text, md, json] = renderings(&bed, args);
        for (name, out) in [("text", &text), ("markdown", &md), ("json", &json)] {
            assert!(
                !out.contains(SECRET),
                "{what}: the secret is in the {name} plan:\n{out}"
            );
            assert!(
                !out.contains("hunter2"),
                "{what}: part of the secret is in the {name} plan"
            );
        }
        assert!(text.contains("(sensitive value)"), "{what}:\n{text}");
        assert!(md.contains("(sensitive value)"), "{what}:\n{md}");
        assert!(
            text.contains("role   = \"edge\"") || text.contains("role = \"edge\""),
            "{what}: non-sensitive labels stay visible:\n{text}"
        );
        let doc: Value = serde_json::from_str(&json).expect("one JSON document");
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{what}: {errors:?}\n{doc:#}");
        doc
    };
    let doc = check(&["plan"], "create");
    let change = |doc: &Value, addr: &str| -> Value {
        doc["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["address"] == addr)
            .unwrap_or_else(|| panic!("no change for {addr}"))["change"]
            .clone()
    };
    let a = change(&doc, "node.a");
    assert_eq!(
        a["after_sensitive"],
        json!({"labels": {"pw": true, "auth": true}})
    );
    assert_eq!(a["before_sensitive"], json!(false));
    assert_eq!(a["after"]["labels"]["pw"], Value::Null);
    assert_eq!(a["after"]["labels"]["role"], json!("edge"));
    assert_eq!(
        change(&doc, "node.b")["after_sensitive"],
        json!({"labels": {"copied": true}})
    );
    // Recorded, then changed: `before` is hidden too (it was recorded
    // sensitive), and so is a destroy's.
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    std::fs::write(
        bed.tb.path().join("main.tg.hcl"),
        secret_bed(&format!("{SECRET}-2"), ""),
    )
    .unwrap();
    let doc = check(&["plan"], "update");
    let a = change(&doc, "node.a");
    assert_eq!(
        a["before_sensitive"],
        json!({"labels": {"pw": true, "auth": true}})
    );
    let [_, _, _] = renderings(&bed, &["plan", "-destroy"]);
    let doc = check(&["plan", "-destroy"], "destroy");
    assert_eq!(
        change(&doc, "node.a")["before_sensitive"],
        json!({"labels": {"pw": true, "auth": true}})
    );
    assert_eq!(change(&doc, "node.a")["after_sensitive"], json!(false));
}

/// Control and bidirectional characters in values (written as escapes in
/// the file) are escaped in plans, not printed raw.
#[test]
fn control_and_bidi_characters_in_values_are_escaped_in_plans() {
    let bed = crate::engine::Bed::new(&secret_bed(
        "x",
        r#", evil = "admin\u202e\u2066txt\u001b[31m""#,
    ));
    let [text, md, _] = renderings(&bed, &["plan"]);
    for (name, out) in [("text", &text), ("markdown", &md)] {
        assert!(
            !out.chars()
                .any(|c| tg::names::is_bidi_control(c) || c == '\u{1b}'),
            "{name} plan holds a raw control character:\n{out:?}"
        );
    }
    assert!(
        text.contains(r#""admin\u{202E}\u{2066}txt\u001b[31m""#),
        "{text}"
    );
    // Label keys cannot hold them at all; the message escapes it too.
    let bed = crate::engine::Bed::new(&secret_bed("x", r#", "k\u202e" = "v""#));
    let r = bed.tg(&["plan"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains(r"error: invalid label key `k\u{202e}`"),
        "{}",
        r.stderr()
    );
}

/// A value holding backticks cannot close the markdown plan's code fence.
#[test]
fn markdown_plans_keep_values_inside_the_code_block() {
    let bed = crate::engine::Bed::new(&secret_bed("x", r#", md = "```\n# injected heading""#));
    let [_, md, _] = renderings(&bed, &["plan"]);
    assert!(md.contains("\n````diff\n"), "{md}");
    assert!(md.contains("\n````\n\n</details>"), "{md}");
}

/// Nested `for` loops inside one expression ran for minutes and filled
/// memory before hcl-rs returned: their work is bounded too.
#[test]
fn nested_for_loops_are_bounded() {
    for value in [
        "length([for i in range(1000) : [for j in range(1000) : range(100)]])",
        r#"length("%{for i in range(100000)}%{for j in range(1000)}xxxxxxxxxxxxxxxx%{endfor}%{endfor}")"#,
    ] {
        let tb = Testbed::new(&[(
            "main.tg.hcl",
            &format!("output \"o\" {{\n  value = {value}\n}}\n"),
        )]);
        let run = tb.tg(&["validate"]);
        run.expect_code(1);
        assert!(
            run.stderr()
                .starts_with("main.tg.hcl:2:11: error: this expression does too much work"),
            "{}",
            run.stderr()
        );
    }
    // Loops of a sensible size are fine.
    let tb = Testbed::new(&[(
        "main.tg.hcl",
        "output \"o\" {\n  value = length([for i in range(300) : [for j in range(300) : i * j]])\n}\n",
    )]);
    tb.tg(&["validate"]).expect_code(0);
}
