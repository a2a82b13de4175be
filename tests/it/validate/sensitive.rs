//! Sensitivity and escaping reach every rendering: secrets never appear in
//! plans, control and bidirectional characters are escaped, markdown
//! fences hold, nested `for` loops are bounded.

use super::*;

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
