//! `moved` blocks: a renamed block keeps what it made. On the test double
//! (the plan's text and JSON, the apply's calls, chains, refusals) and on
//! the real netns platform as root (the same node process, its files and
//! address, a new hostname).

use serde_json::Value;

use crate::engine::Bed;

const BEFORE: &str = r#"
network "lab" {
  cidr = "10.42.0.0/24"
}

node "old" {
  image    = "host"
  network  = network.lab
  platform = "double"
}

node "edge" {
  count    = 2
  image    = "host"
  network  = network.lab
  platform = "double"
}
"#;

const AFTER: &str = r#"
network "lab" {
  cidr = "10.42.0.0/24"
}

node "new" {
  image    = "host"
  network  = network.lab
  platform = "double"
}

node "rim" {
  count    = 2
  image    = "host"
  network  = network.lab
  platform = "double"
}

moved {
  from = node.old
  to   = node.new
}

moved {
  from = node.edge
  to   = node.rim
}
"#;

/// The plan's changes as `address [<- previous] actions`, no-ops left out.
fn changes(doc: &Value) -> Vec<String> {
    doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"]["actions"] != serde_json::json!(["no-op"]))
        .map(|c| {
            let prev = c["previous_address"]
                .as_str()
                .map(|p| format!(" <- {p}"))
                .unwrap_or_default();
            format!(
                "{}{prev} {}",
                c["address"].as_str().unwrap(),
                c["change"]["actions"][0].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_moved_block_renames_nodes_in_place() {
    let bed = Bed::new(BEFORE);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let addresses = bed.tg(&["output", "-json"]);
    addresses.expect_code(0);
    let before: Vec<String> = bed.state_list();
    assert_eq!(before.len(), 4, "{before:?}");
    bed.tb.write("main.tg.hcl", AFTER);

    let r = bed.tg(&["plan"]);
    r.expect_code(0);
    let text = r.stdout();
    let text = &text[text.find("tg will perform").unwrap()..];
    insta::assert_snapshot!("moved_plan_text", text);

    let r = bed.tg(&["plan", "-json"]);
    r.expect_code(0);
    let doc: Value = serde_json::from_str(&r.stdout()).unwrap();
    insta::assert_snapshot!(changes(&doc).join("\n"), @r"
    node.new <- node.old update
    node.rim[0] <- node.edge[0] update
    node.rim[1] <- node.edge[1] update
    ");
    let new = doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "node.new")
        .unwrap();
    insta::assert_json_snapshot!("moved_plan_json_change", new);
    crate::cli_plan::validate("plan.schema.json", &doc);

    let calls_before = bed.calls().len();
    let r = bed.tg(&["apply", "-auto-approve"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("0 added, 3 changed, 0 destroyed"),
        "{}",
        r.stdout()
    );
    let ops: Vec<String> = bed.calls()[calls_before..]
        .iter()
        .filter(|c| c["event"] == "start")
        .map(|c| {
            format!(
                "{} {}",
                c["op"].as_str().unwrap(),
                c["address"].as_str().unwrap()
            )
        })
        .filter(|c| !c.starts_with("read"))
        .collect();
    assert!(
        ops.iter().all(|o| o.starts_with("update ")),
        "something was recreated: {ops:?}"
    );
    assert_eq!(
        bed.state_list(),
        ["network.lab", "node.new", "node.rim[0]", "node.rim[1]"]
    );
    // Addresses stay, hostnames follow the new names.
    let show = bed.tg(&["state", "show", "node.rim[1]"]).stdout();
    assert!(show.contains("\"rim-1\""), "{show}");
    assert!(show.contains("10.42.0.4"), "{show}");
    // The moves are done: the blocks now match nothing.
    let r = bed.tg(&["plan", "-detailed-exitcode"]);
    r.expect_code(0);
    assert!(r.stdout().contains("No changes."), "{}", r.stdout());
}

#[test]
fn a_chain_of_moves_ends_at_the_last_address() {
    let bed = Bed::new(BEFORE);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let chained = AFTER.replace("node \"new\"", "node \"newest\"")
        + "\nmoved {\n  from = node.new\n  to   = node.newest\n}\n";
    bed.tb.write("main.tg.hcl", &chained);
    let r = bed.tg(&["plan", "-json"]);
    r.expect_code(0);
    let doc: Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(
        changes(&doc)[0],
        "node.newest <- node.old update",
        "{:?}",
        changes(&doc)
    );
}

#[test]
fn a_move_to_an_address_state_holds_is_refused_at_its_block() {
    let bed = Bed::new(BEFORE);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    // `node.edge[1]` is recorded: moving `node.old` onto it is refused.
    let clash = BEFORE.replace("node \"old\"", "node \"spare\"")
        + "\nmoved {\n  from = node.old\n  to   = node.edge[1]\n}\n";
    bed.tb.write("main.tg.hcl", &clash);
    let r = bed.tg(&["plan"]);
    r.expect_code(1);
    let err = r.stderr();
    assert!(
        err.contains(
            "cannot move `node.old` to `node.edge[1]`: `node.edge[1]` is already recorded"
        ),
        "{err}"
    );
    assert!(err.contains("main.tg.hcl:19:1"), "{err}");
    assert!(err.contains("tg state rm node.edge[1]"), "{err}");
}

/// As root on netns: the node is the same process with the same files and
/// address after the rename; only its hostname changed.
#[test]
fn a_moved_netns_node_keeps_its_process_files_and_address() {
    crate::require_root!();
    use crate::e2e_netns::{unique, Session};
    let before = r#"
network "lab" {
  cidr = "10.93.7.0/24"
}

node "old" {
  image   = "host"
  network = network.lab
}
"#;
    let after = r#"
network "lab" {
  cidr = "10.93.7.0/24"
}

node "new" {
  image   = "host"
  network = network.lab
}

moved {
  from = node.old
  to   = node.new
}
"#;
    let tb = crate::support::Testbed::new(&[("main.tg.hcl", before)]);
    let s = Session {
        tb: &tb,
        name: unique("moved"),
    };
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    let exec = |node: &str, cmd: &str| {
        let r = s.tg(&["exec", node, "--", "sh", "-c", cmd]);
        r.expect_code(0);
        r.stdout().trim().to_string()
    };
    // The node's folder, named from its id, holds `node.json` (its init's
    // PID and start time): the same folder and init after the rename.
    let sid = s.sid();
    let nodes = || {
        let dir = std::path::Path::new("/run/tg").join(&sid).join("nodes");
        let mut found: Vec<(String, Value)> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| {
                let json = std::fs::read_to_string(e.path().join("node.json")).unwrap_or_default();
                let v: Value = serde_json::from_str(&json).unwrap_or_default();
                let kept =
                    serde_json::json!({ "id": v["id"], "pid": v["pid"], "start": v["start"] });
                (e.file_name().to_string_lossy().into_owned(), kept)
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    };
    exec("node.old", "echo kept > /tmp/mark");
    let addr_before = exec("node.old", "hostname -I");
    let ns_before = exec("node.old", "readlink /proc/1/ns/pid /proc/1/ns/net");
    let nodes_before = nodes();
    assert_eq!(nodes_before.len(), 1, "{nodes_before:?}");
    assert!(
        nodes_before[0].1["pid"].as_u64().is_some(),
        "{nodes_before:?}"
    );

    tb.write("main.tg.hcl", after);
    let r = s.tg(&["plan"]);
    r.expect_code(0);
    let plan = r.stdout();
    assert!(
        plan.contains("# node.new will be updated in-place"),
        "{plan}"
    );
    assert!(plan.contains("# (moved from node.old)"), "{plan}");
    assert!(
        plan.lines()
            .any(|l| l.contains("~ hostname") && l.contains("\"old\" -> \"new\"")),
        "{plan}"
    );
    assert!(
        plan.contains("0 to add, 1 to change, 0 to destroy"),
        "{plan}"
    );
    s.tg(&["apply", "-auto-approve"]).expect_code(0);

    assert_eq!(exec("node.new", "hostname"), "new");
    assert_eq!(exec("node.new", "cat /tmp/mark"), "kept");
    assert_eq!(exec("node.new", "hostname -I"), addr_before);
    assert_eq!(
        exec("node.new", "readlink /proc/1/ns/pid /proc/1/ns/net"),
        ns_before,
        "the node was recreated"
    );
    assert_eq!(nodes(), nodes_before, "the node was recreated");
    let r = s.tg(&["plan", "-detailed-exitcode"]);
    r.expect_code(0);
}

/// Packages follow their moved node; a moved network keeps its CIDR and
/// its record (the double, like netns, cannot rename one in place); a
/// saved plan carries its moves to the apply.
#[test]
fn packages_follow_networks_move_and_saved_plans_keep_their_moves() {
    let before = r#"
network "lab" {
  cidr = "10.42.0.0/24"
}

node "edge" {
  count    = 2
  image    = "host"
  network  = network.lab
  platform = "double"
}

package "fleche" {
  version = "16.3-1"
  on      = [node.edge]
}
"#;
    let bed = Bed::new(before);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let after = before
        .replace("node \"edge\"", "node \"rim\"")
        .replace("[node.edge]", "[node.rim]")
        + "\nmoved {\n  from = node.edge\n  to   = node.rim\n}\n";
    bed.tb.write("main.tg.hcl", &after);
    let r = bed.tg(&["plan", "-json"]);
    r.expect_code(0);
    let doc: Value = serde_json::from_str(&r.stdout()).unwrap();
    let moved: Vec<String> = doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            Some(format!(
                "{} <- {}",
                c["address"].as_str()?,
                c["previous_address"].as_str()?
            ))
        })
        .collect();
    assert_eq!(
        moved,
        [
            "node.rim[0] <- node.edge[0]",
            "node.rim[1] <- node.edge[1]",
            "package.fleche[node.rim[0]] <- package.fleche[node.edge[0]]",
            "package.fleche[node.rim[1]] <- package.fleche[node.edge[1]]",
        ]
    );
    // Saved, then applied: the moves come with the plan file.
    bed.tg(&["plan", "-out", "moves.plan"]).expect_code(0);
    let calls = bed.calls().len();
    bed.tg(&["apply", "moves.plan"]).expect_code(0);
    let made = bed.calls()[calls..]
        .iter()
        .filter(|c| {
            c["event"] == "start"
                && c["op"] == "create"
                && c["address"].as_str().unwrap().starts_with("node.")
        })
        .count();
    assert_eq!(made, 0, "a node was recreated");
    assert!(bed
        .state_list()
        .contains(&"package.fleche[node.rim[1]]".to_string()));

    // A network: its CIDR is kept, the plan says why it is made again.
    let net = after
        .replace("network \"lab\"", "network \"core\"")
        .replace("network.lab", "network.core")
        + "\nmoved {\n  from = network.lab\n  to   = network.core\n}\n";
    let net = net.replace("cidr = \"10.42.0.0/24\"", "");
    bed.tb.write("main.tg.hcl", &net);
    let r = bed.tg(&["plan", "-json"]);
    r.expect_code(0);
    let doc: Value = serde_json::from_str(&r.stdout()).unwrap();
    let core = doc["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "network.core")
        .unwrap();
    assert_eq!(core["previous_address"], "network.lab");
    assert_eq!(core["change"]["after"]["cidr"], "10.42.0.0/24", "{core}");
    assert_eq!(
        core["change"]["replace_reasons"][0]["attribute"], "name",
        "{core}"
    );
}
