//! What a Terraform user expects of the command line: outputs after
//! apply, `-exclude`, `-refresh-only`, `state mv`, destroy from state when
//! the testbed is broken or gone, planning without root, `platforms`,
//! `version`, completions and the manual page.

use serde_json::Value;

use crate::engine::Bed;

const BED: &str = r#"
network "lab" {
  cidr = "10.42.0.0/24"
}

node "edge" {
  count    = 2
  image    = "host"
  network  = network.lab
  platform = "double"
}

node "origin" {
  image      = "host"
  network    = network.lab
  platform   = "double"
  depends_on = [node.edge]
}

output "edges" {
  value = node.edge[*].address
}

output "first" {
  value = node.edge[0].hostname
}
"#;

/// `address action` of every planned change, from `plan -json`.
fn planned(bed: &Bed, args: &[&str]) -> Vec<String> {
    let mut all = vec!["plan", "-json"];
    all.extend_from_slice(args);
    let r = bed.tg(&all);
    r.expect_code(0);
    let doc: Value = serde_json::from_str(&r.stdout()).unwrap();
    doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"]["actions"] != serde_json::json!(["no-op"]))
        .map(|c| {
            format!(
                "{} {}",
                c["address"].as_str().unwrap(),
                c["change"]["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect()
}

#[test]
fn apply_prints_the_outputs_and_show_tells_a_destroyed_session() {
    let bed = Bed::new(BED);
    let r = bed.tg(&["apply", "-auto-approve"]);
    r.expect_code(0);
    let out = r.stdout();
    let tail: String = out[out.find("Apply complete!").unwrap()..]
        .lines()
        .map(|l| {
            if l.starts_with("Took ") {
                "Took [timing]"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(tail, @r#"
    Apply complete! 4 added, 0 changed, 0 destroyed.
    Took [timing]

    Outputs:

    edges = ["10.42.0.2", "10.42.0.3"]
    first = "edge-0"
    "#);
    // `tg show` and `tg output` render values alike.
    let show = bed.tg(&["show"]).stdout();
    assert!(
        show.contains("edges = [\"10.42.0.2\", \"10.42.0.3\"]"),
        "{show}"
    );
    let output = bed.tg(&["output"]).stdout();
    assert!(
        output.contains("edges = [\"10.42.0.2\", \"10.42.0.3\"]"),
        "{output}"
    );
    bed.tg(&["destroy", "-auto-approve"]).expect_code(0);
    let r = bed.tg(&["show"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("what it made was destroyed"),
        "{}",
        r.stdout()
    );
}

#[test]
fn exclude_leaves_out_an_instance_and_what_needs_it() {
    let bed = Bed::new(BED);
    assert_eq!(
        planned(&bed, &["-exclude", "node.edge[1]"]),
        ["network.lab create", "node.edge[0] create"]
    );
    assert_eq!(
        planned(&bed, &["-target", "node.origin", "-exclude", "node.origin"]),
        Vec::<String>::new()
    );
    assert_eq!(
        planned(&bed, &["-target", "node.edge", "-exclude", "node.edge[0]"]),
        ["network.lab create", "node.edge[1] create"]
    );
    bed.tg(&["apply", "-auto-approve", "-exclude", "node.origin"])
        .expect_code(0);
    assert_eq!(bed.state_list().len(), 3);
    // Destroying, what the excluded instance needs stays too.
    assert_eq!(
        planned(&bed, &["-destroy", "-exclude", "node.edge[0]"]),
        ["node.edge[1] delete"]
    );
    let r = bed.tg(&["plan", "-exclude", "node.nope"]);
    r.expect_code(1);
    assert!(
        r.stderr()
            .contains("`-exclude node.nope` matches no instance"),
        "{}",
        r.stderr()
    );
}

#[test]
fn refresh_only_accepts_drift_into_state_and_changes_nothing() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    // Someone deletes a node behind tg's back.
    let mut objects = bed.objects();
    let key = objects
        .keys()
        .find(|k| k.ends_with("/node.edge[1]"))
        .unwrap()
        .clone();
    objects.remove(&key);
    bed.write_objects(&objects);
    let r = bed.tg(&["plan", "-refresh-only", "-detailed-exitcode"]);
    r.expect_code(2);
    assert!(
        r.stdout()
            .contains("node.edge[1] has been deleted outside tg"),
        "{}",
        r.stdout()
    );
    let before = bed.calls().len();
    bed.tg(&["apply", "-refresh-only", "-auto-approve"])
        .expect_code(0);
    let creates = bed.calls()[before..]
        .iter()
        .filter(|c| c["op"] == "create")
        .count();
    assert_eq!(creates, 0, "refresh-only made something");
    assert!(!bed.state_list().contains(&"node.edge[1]".to_string()));
    // A normal plan now creates it again.
    assert_eq!(planned(&bed, &[]), ["node.edge[1] create"]);
    let r = bed.tg(&["plan", "-refresh-only", "-destroy"]);
    r.expect_code(1);
}

#[test]
fn state_mv_renames_without_recreating() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    bed.tb.write(
        "main.tg.hcl",
        &BED.replace("node \"origin\"", "node \"main\""),
    );
    bed.tg(&["state", "mv", "node.origin", "node.main"])
        .expect_code(0);
    // The hostname follows the block's name, in place: no replacement.
    assert_eq!(planned(&bed, &[]), ["node.main update"]);
    let r = bed.tg(&["state", "mv", "node.nope", "node.x"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains("`node.nope` is not recorded"),
        "{}",
        r.stderr()
    );
    let r = bed.tg(&["state", "mv", "node.main", "network.x"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains("expected a node address"),
        "{}",
        r.stderr()
    );
    // A whole counted resource moves key by key.
    bed.tb.write(
        "main.tg.hcl",
        &BED.replace("node \"origin\"", "node \"main\"")
            .replace("node \"edge\"", "node \"rim\"")
            .replace("node.edge", "node.rim"),
    );
    bed.tg(&["state", "mv", "node.edge", "node.rim"])
        .expect_code(0);
    let list = bed.state_list();
    assert!(list.contains(&"node.rim[0]".to_string()), "{list:?}");
    assert!(list.contains(&"node.rim[1]".to_string()), "{list:?}");
}

#[test]
fn a_broken_or_missing_testbed_still_destroys_from_state() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    bed.tb
        .write("main.tg.hcl", "node \"edge\" {\n  imagee = \"host\"\n}\n");
    let r = bed.tg(&["destroy", "-auto-approve"]);
    r.expect_code(0);
    assert!(
        r.stderr().contains("the testbed does not load"),
        "{}",
        r.stderr()
    );
    assert!(
        r.stdout().contains("Destroy complete! 4 destroyed."),
        "{}",
        r.stdout()
    );
    assert!(bed.objects().is_empty());

    // `session delete -destroy` with no testbed at all.
    let bed = Bed::new(BED);
    bed.tg(&["-session", "ci-42", "apply", "-auto-approve"])
        .expect_code(0);
    std::fs::remove_file(bed.tb.path().join("main.tg.hcl")).unwrap();
    let r = bed.tg(&["session", "delete", "ci-42"]);
    r.expect_code(1);
    assert!(r.stderr().contains("-destroy"), "{}", r.stderr());
    let r = bed.tg(&["session", "delete", "ci-42", "-destroy", "-auto-approve"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("Deleted session `ci-42`"),
        "{}",
        r.stdout()
    );
    assert!(bed.objects().is_empty());
}

/// Planning needs no root; applying says what it needs. State made by
/// root is refused with whose it is.
#[test]
fn without_root_plan_works_and_apply_says_it_needs_root() {
    crate::require_root!();
    if !crate::support::have_tools(&["setpriv"]) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tb = crate::support::Testbed::new(&[(
        "main.tg.hcl",
        "network \"lab\" {\n  cidr = \"10.90.0.0/24\"\n}\n\nnode \"edge\" {\n  image   = \"host\"\n  network = network.lab\n}\n",
    )]);
    std::fs::set_permissions(tb.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(crate::support::tg_bin())
            .args(args)
            .current_dir(tb.path())
            .env_remove("TG_SESSION")
            .env_remove("TG_STATE_URL")
            .env("NO_COLOR", "1");
        crate::support::Run(cmd.output().unwrap())
    };
    let r = as_nobody(&["plan"]);
    r.expect_code(0);
    assert!(r.stdout().contains("+ node \"edge\""), "{}", r.stdout());
    assert!(
        r.stdout().contains("applying this plan will fail here")
            && r.stdout().contains("needs root"),
        "{}",
        r.stdout()
    );
    let r = as_nobody(&["apply", "-auto-approve"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains("cannot apply here") && r.stderr().contains("needs root"),
        "{}",
        r.stderr()
    );

    // Root's state is private: another user is told whose it is.
    let tb2 = crate::support::Testbed::new(&[("main.tg.hcl", "")]);
    tb2.tg(&["session", "new", "x"]).expect_code(0);
    std::fs::set_permissions(tb2.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(crate::support::tg_bin())
        .args(["session", "list"])
        .current_dir(tb2.path());
    let r = crate::support::Run(cmd.output().unwrap());
    r.expect_code(1);
    assert!(r.stderr().contains("belongs to root"), "{}", r.stderr());
}

#[test]
fn version_platforms_completion_and_man() {
    let bed = Bed::new(BED);
    let r = bed.tg(&["version", "-json"]);
    r.expect_code(0);
    let doc: Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(doc["tg_version"], env!("CARGO_PKG_VERSION"));
    insta::assert_json_snapshot!(doc, { ".tg_version" => "[version]" }, @r#"
    {
      "format_version": "1.0",
      "tg_version": "[version]",
      "platform": "linux_x86_64",
      "state_schema_version": 3
    }
    "#);
    let r = bed.tg(&["platforms", "-json"]);
    r.expect_code(0);
    let doc: Value = serde_json::from_str(&r.stdout()).unwrap();
    let names: Vec<&str> = doc["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["netns", "double"]);
    assert!(doc["platforms"][0]["description"]
        .as_str()
        .unwrap()
        .contains("namespaces"));
    let r = bed.tg(&["platforms"]);
    r.expect_code(0);
    assert!(r.stdout().starts_with("netns "), "{}", r.stdout());
    let r = bed.tg(&["completion", "bash"]);
    r.expect_code(0);
    assert!(r.stdout().contains("complete -F"), "{}", r.stdout());
    let r = bed.tg(&["man"]);
    r.expect_code(0);
    assert!(r.stdout().contains(".TH tg"), "{}", &r.stdout()[..200]);
    // Help spells flags as the docs do.
    let r = bed.tg(&["plan", "-help"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("-chdir <DIR>") && !r.stdout().contains("--chdir"),
        "{}",
        r.stdout()
    );
    assert!(r.stdout().contains("Global options:"), "{}", r.stdout());
}

/// `-trace FILE` writes Chrome trace events named by instance address;
/// the summary says where the time went.
#[test]
fn apply_writes_a_trace_and_says_where_the_time_went() {
    let bed = Bed::new(BED);
    bed.config(serde_json::json!({ "delay_ms": { "node.edge": 200, "node.origin": 100 } }));
    let r = bed.tg(&["apply", "-auto-approve", "-trace", "apply.trace.json"]);
    r.expect_code(0);
    let summary = r.stdout();
    assert!(summary.contains("of work at parallelism"), "{summary}");
    assert!(
        summary.contains("critical path")
            && summary.contains("network.lab → node.edge[")
            && summary.contains("→ node.origin"),
        "{summary}"
    );
    let doc: Value =
        serde_json::from_slice(&std::fs::read(bed.tb.path().join("apply.trace.json")).unwrap())
            .unwrap();
    let spans: Vec<&Value> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "create")
        .collect();
    let mut names: Vec<&str> = spans.iter().map(|e| e["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        ["network.lab", "node.edge[0]", "node.edge[1]", "node.origin"]
    );
    // The two edges ran side by side, on two lanes, each about 200 ms.
    let edge: Vec<&&Value> = spans
        .iter()
        .filter(|e| e["name"].as_str().unwrap().starts_with("node.edge"))
        .collect();
    assert_ne!(edge[0]["tid"], edge[1]["tid"]);
    assert!(edge[0]["dur"].as_u64().unwrap() >= 150_000, "{doc:#}");
    // The picture docs/cli.md shows, drawn from the file: a row and a bar
    // per operation.
    if crate::support::have_tools(&["python3"]) {
        let svg = bed.tb.path().join("apply.svg");
        let drawn = std::process::Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/trace_svg.py"))
            .arg(bed.tb.path().join("apply.trace.json"))
            .arg(&svg)
            .output()
            .expect("run python3");
        assert!(drawn.status.success(), "{drawn:?}");
        let svg = std::fs::read_to_string(&svg).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        for name in ["network.lab", "node.edge[0]", "node.edge[1]", "node.origin"] {
            assert!(svg.contains(&format!(">{name}</text>")), "{name}: {svg}");
        }
    }
    let r = bed.tg(&["destroy", "-auto-approve", "-trace", "destroy.trace.json"]);
    r.expect_code(0);
    assert!(bed.tb.path().join("destroy.trace.json").exists());
}

#[test]
fn graph_of_a_saved_plan_is_coloured_and_drawn_as_svg() {
    let bed = Bed::new(BED);
    bed.tg(&["plan", "-out", "p.tgplan"]).expect_code(0);
    let r = bed.tg(&["graph", "p.tgplan"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains(
            "\"node.origin\" [style=filled, fillcolor=\"#c8f0c8\", tooltip=\"+ node.origin\"];"
        ),
        "{}",
        r.stdout()
    );
    if !crate::support::have_tools(&["dot"]) {
        return;
    }
    let r = bed.tg(&["graph", "-format", "svg", "p.tgplan"]);
    r.expect_code(0);
    assert!(r.stdout().contains("<svg"), "{}", r.stdout());
    assert!(r.stdout().contains("node.origin"), "{}", r.stdout());
}

/// `privileged = true` is an escape hatch the plan flags; `pids` must be a
/// positive whole number, and the error names where it was written.
#[test]
fn privileged_nodes_are_flagged_and_pids_checked() {
    let bed = Bed::new(
        r#"
network "lab" {
  cidr = "10.42.0.0/24"
}

node "debug" {
  image      = "host"
  network    = network.lab
  platform   = "double"
  privileged = true
  pids       = 512
}
"#,
    );
    let r = bed.tg(&["plan"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("node.debug: privileged = true"),
        "{}",
        r.stdout()
    );

    let bad = Bed::new(
        r#"
network "lab" {
  cidr = "10.42.0.0/24"
}
node "n" {
  image    = "host"
  network  = network.lab
  platform = "double"
  pids     = 0
}
"#,
    );
    let r = bad.tg(&["plan"]);
    r.expect_code(1);
    assert!(
        r.stderr()
            .contains("`pids` must be a positive whole number"),
        "{}",
        r.stderr()
    );
    assert!(r.stderr().contains(":9:"), "{}", r.stderr());
}
