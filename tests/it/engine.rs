//! The engine through the real `tg` binary and the test-double platform
//! (`TG_TESTDOUBLE_DIR`): ordering, concurrency bounds, partial failure,
//! taint, resume after SIGKILL, stale plans, locks, drift, destroy order and
//! `prevent_destroy`. Each test has its own testbed and double directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{tg_bin, Run, Testbed};

pub(crate) const BED: &str = r#"
network "lab" {
  cidr = "10.42.0.0/24"
}

node "edge" {
  count    = 2
  image    = "host"
  network  = network.lab
  platform = "double"
  labels   = { role = "edge" }
}

node "origin" {
  image      = "host"
  network    = network.lab
  platform   = "double"
  depends_on = [node.edge]
}

package "fleche" {
  version = "16.3-1"
  on      = [node.edge]
}

output "edge_addresses" {
  value = node.edge[*].address
}
"#;

/// A testbed plus its test double's directory.
pub struct Bed {
    pub tb: Testbed,
    pub double: PathBuf,
}

impl Bed {
    pub fn new(hcl: &str) -> Bed {
        let tb = Testbed::new(&[("main.tg.hcl", hcl)]);
        let double = tb.path().join("double");
        std::fs::create_dir_all(&double).unwrap();
        Bed { tb, double }
    }

    pub fn tg(&self, args: &[&str]) -> Run {
        self.tg_env(args, &[])
    }

    pub fn tg_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let d = self.double.to_string_lossy().into_owned();
        let mut all = vec![("TG_TESTDOUBLE_DIR", d.as_str())];
        all.extend_from_slice(env);
        self.tb.tg_env(args, &all)
    }

    /// A library workspace on this bed: nothing from the process, the
    /// test double as the only driver.
    pub fn workspace(&self) -> tg::ops::Workspace {
        use std::sync::Arc;
        let env = tg::environment::Environment::new([], self.tb.path());
        tg::ops::Workspace {
            dir: self.tb.path().to_path_buf(),
            vars: vec![],
            var_files: vec![],
            caller: tg::environment::Caller::this_process(&env),
            env,
            factory: tg::platform::factory::Factory::new().with(Arc::new(
                tg::platform::testdouble::TestDoubleDriver::new(&self.double),
            )),
            hook: Arc::new(tg::apply::NoHook),
            leases_dir: None,
        }
    }

    /// A library context for `session` on `store`, with `ws`'s platforms.
    pub fn context(
        ws: &tg::ops::Workspace,
        store: std::sync::Arc<dyn tg::state::StateStore>,
        session: &str,
    ) -> tg::ops::Context {
        tg::ops::Context {
            store,
            registry: ws.factory.registry(&[], &ws.env).unwrap(),
            session: tg::names::SessionName::parse(session).unwrap(),
            testbed_dir: ws.dir.clone(),
            hook: ws.hook.clone(),
            caller: ws.caller.clone(),
            parsed: None,
        }
    }

    /// `tg ARGS` as a command to spawn (stdin from `/dev/null`, output piped).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(tg_bin());
        cmd.args(args).current_dir(self.tb.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("TG_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("NO_COLOR", "1")
            .env("TG_TESTDOUBLE_DIR", &self.double)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Start `tg ARGS` without waiting.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().expect("spawn tg")
    }

    pub fn config(&self, v: Value) {
        std::fs::write(self.double.join("config.json"), v.to_string()).unwrap();
    }

    pub fn calls(&self) -> Vec<Value> {
        read_calls(&self.double)
    }

    /// The double's fake objects, keyed `LINEAGE/ADDRESS`.
    pub fn objects(&self) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        let Ok(sessions) = std::fs::read_dir(self.double.join("objects")) else {
            return out;
        };
        for s in sessions.flatten() {
            let lineage = s.file_name().to_string_lossy().into_owned();
            for f in std::fs::read_dir(s.path()).unwrap().flatten() {
                let v: Value = serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap();
                out.insert(format!("{lineage}/{}", v["address"].as_str().unwrap()), v);
            }
        }
        out
    }

    /// Replace the double's fake objects (changes "outside tg").
    pub fn write_objects(&self, o: &serde_json::Map<String, Value>) {
        let root = self.double.join("objects");
        let _ = std::fs::remove_dir_all(&root);
        for (k, v) in o {
            let (lineage, _) = k.split_once('/').unwrap();
            let dir = root.join(lineage);
            std::fs::create_dir_all(&dir).unwrap();
            let name = tg::platform::testdouble::escape(v["address"].as_str().unwrap());
            std::fs::write(dir.join(format!("{name}.json")), v.to_string()).unwrap();
        }
    }

    /// What state records (nothing when the session was never made).
    pub fn state_list(&self) -> Vec<String> {
        let r = self.tg(&["state", "list"]);
        if r.code() == 1 && r.stderr().contains("does not exist") {
            return Vec::new();
        }
        r.expect_code(0);
        r.stdout().lines().map(String::from).collect()
    }
}

fn read_calls(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Index in the call log of the first `event` of `op` on `address`.
fn pos(calls: &[Value], op: &str, address: &str, event: &str) -> usize {
    calls
        .iter()
        .position(|c| c["op"] == op && c["address"] == address && c["event"] == event)
        .unwrap_or_else(|| panic!("no {op} {event} for {address} in {calls:#?}"))
}

fn max_in_flight(calls: &[Value], op: &str) -> u64 {
    calls
        .iter()
        .filter(|c| c["op"] == op && c["event"] == "start")
        .filter_map(|c| c["in_flight"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Kills the child on drop (a failing test must not leave `tg` running).
struct KillOnDrop(Option<Child>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn apply_orders_networks_nodes_and_packages() {
    let bed = Bed::new(BED);
    let r = bed.tg(&["apply", "-auto-approve"]);
    r.expect_code(0);
    assert!(
        r.stdout()
            .contains("Apply complete! 6 added, 0 changed, 0 destroyed."),
        "{}",
        r.stdout()
    );
    let calls = bed.calls();
    for node in ["node.edge[0]", "node.edge[1]", "node.origin"] {
        assert!(pos(&calls, "create", "network.lab", "end") < pos(&calls, "create", node, "start"));
    }
    for i in 0..2 {
        let node = format!("node.edge[{i}]");
        let pkg = format!("package.fleche[node.edge[{i}]]");
        assert!(pos(&calls, "create", &node, "end") < pos(&calls, "create", &pkg, "start"));
        assert!(
            pos(&calls, "create", &node, "end") < pos(&calls, "create", "node.origin", "start")
        );
    }
    // A second plan finds nothing to do; state recorded every instance.
    let r = bed.tg(&["plan", "-detailed-exitcode"]);
    r.expect_code(0);
    assert!(r
        .stdout()
        .contains("No changes. Your testbed matches the recorded state."));
    assert_eq!(bed.state_list().len(), 6);
    let out = bed.tg(&["output", "-json"]);
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(v["edge_addresses"]["value"][0], "10.42.0.2");
}

fn many_nodes(n: usize) -> String {
    format!(
        r#"
network "lab" {{
  cidr = "10.43.0.0/24"
}}
node "n" {{
  count    = {n}
  image    = "host"
  network  = network.lab
  platform = "double"
}}
"#
    )
}

#[test]
fn parallelism_bounds_work_in_flight() {
    let bed = Bed::new(&many_nodes(8));
    bed.config(serde_json::json!({ "delay_ms": { "node.n": 150 } }));
    bed.tg(&["apply", "-auto-approve", "-parallelism", "3"])
        .expect_code(0);
    let m = max_in_flight(&bed.calls(), "create");
    assert!(m <= 3, "max in flight {m} > 3");
    assert!(m >= 2, "work did not run concurrently (max in flight {m})");
}

#[test]
fn platform_max_parallelism_bounds_work_in_flight() {
    let bed = Bed::new(&many_nodes(6));
    bed.config(serde_json::json!({ "delay_ms": { "node.n": 150 }, "max_parallelism": 2 }));
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let m = max_in_flight(&bed.calls(), "create");
    assert_eq!(
        m, 2,
        "the platform's bound of 2 was not used fully or was exceeded"
    );
}

#[test]
fn a_failure_skips_dependents_and_lets_independent_work_finish() {
    let bed = Bed::new(BED);
    bed.config(serde_json::json!({
        "fail": { "node.edge[1]": { "on": "create", "message": "no room for edge-1" } }
    }));
    let r = bed.tg(&["apply", "-auto-approve"]);
    r.expect_code(1);
    let err = r.stderr();
    assert!(
        err.contains("error: `node.edge[1]`: create failed: no room for edge-1"),
        "{err}"
    );
    assert!(
        err.contains(
            "skipped: `package.fleche[node.edge[1]]` (create) because `node.edge[1]` failed"
        ),
        "{err}"
    );
    assert!(
        err.contains("skipped: `node.origin` (create) because `node.edge[1]` failed"),
        "{err}"
    );
    assert!(err.contains("Apply failed: 3 done"), "{err}");
    let listed = bed.state_list();
    assert!(listed.contains(&"node.edge[0]".to_string()));
    assert!(listed.contains(&"package.fleche[node.edge[0]]".to_string()));
    assert!(!listed.contains(&"node.origin".to_string()));
}

#[test]
fn a_half_created_instance_is_tainted_and_replaced_next_time() {
    let bed = Bed::new(BED);
    bed.config(serde_json::json!({
        "fail": { "node.edge[0]": { "on": "create", "after_create": true } }
    }));
    bed.tg(&["apply", "-auto-approve"]).expect_code(1);
    let show = bed.tg(&["state", "show", "node.edge[0]"]);
    show.expect_code(0);
    assert!(show.stdout().contains("(tainted)"), "{}", show.stdout());

    bed.config(serde_json::json!({}));
    let plan = bed.tg(&["plan"]);
    plan.expect_code(0);
    assert!(
        plan.stdout()
            .contains("# node.edge[0] is tainted, so it must be replaced"),
        "{}",
        plan.stdout()
    );
    let r = bed.tg(&["apply", "-auto-approve"]);
    r.expect_code(0);
    let calls = bed.calls();
    let deletes: Vec<_> = calls
        .iter()
        .filter(|c| c["op"] == "delete" && c["address"] == "node.edge[0]")
        .collect();
    assert!(
        !deletes.is_empty(),
        "the tainted node was not deleted first"
    );
    bed.tg(&["plan", "-detailed-exitcode"]).expect_code(0);
}

#[test]
fn resume_after_sigkill_mid_apply() {
    let bed = Bed::new(&many_nodes(6));
    bed.config(serde_json::json!({ "delay_ms": { "node.n": 400 } }));
    let mut child = KillOnDrop(Some(bed.spawn(&[
        "apply",
        "-auto-approve",
        "-parallelism",
        "2",
    ])));
    let dir = bed.double.clone();
    wait_until(
        "two node creates to finish",
        Duration::from_secs(30),
        || {
            read_calls(&dir)
                .iter()
                .filter(|c| {
                    c["op"] == "create"
                        && c["event"] == "end"
                        && c["address"]
                            .as_str()
                            .is_some_and(|a| a.starts_with("node."))
                })
                .count()
                >= 2
        },
    );
    let c = child.0.as_mut().unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    child.0 = None;

    // What finished is recorded; the lock of the dead process is taken over.
    let listed = bed.state_list();
    assert!(listed.contains(&"network.lab".to_string()), "{listed:?}");
    assert!(
        listed.iter().filter(|a| a.starts_with("node.n")).count() >= 2,
        "{listed:?}"
    );

    bed.config(serde_json::json!({}));
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    bed.tg(&["plan", "-detailed-exitcode"]).expect_code(0);
    assert_eq!(bed.state_list().len(), 7);
    let objects = bed.objects();
    assert_eq!(objects.len(), 7, "{objects:#?}");
}

#[test]
fn a_stale_plan_file_is_refused() {
    let bed = Bed::new(BED);
    bed.tg(&["plan", "-out", "p.tgplan"]).expect_code(0);
    let show = bed.tg(&["show", "p.tgplan"]);
    show.expect_code(0);
    assert!(show
        .stdout()
        .contains("Plan: 6 to add, 0 to change, 0 to destroy."));
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let r = bed.tg(&["apply", "p.tgplan"]);
    r.expect_code(1);
    assert!(
        r.stderr()
            .contains("error: the plan was made at serial 0 of lineage"),
        "{}",
        r.stderr()
    );
    assert!(
        r.stderr().contains(": run `tg plan` again"),
        "{}",
        r.stderr()
    );
}

#[test]
fn a_plan_file_of_a_changed_testbed_is_refused_and_a_fresh_one_applies() {
    let bed = Bed::new(BED);
    bed.tg(&["plan", "-out", "p.tgplan"]).expect_code(0);
    bed.tb
        .write("main.tg.hcl", &BED.replace("count    = 2", "count    = 3"));
    let r = bed.tg(&["apply", "p.tgplan"]);
    r.expect_code(1);
    assert!(
        r.stderr()
            .contains("the testbed changed since the plan was made"),
        "{}",
        r.stderr()
    );
    bed.tg(&["plan", "-out", "q.tgplan"]).expect_code(0);
    let r = bed.tg(&["apply", "q.tgplan"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("Apply complete! 8 added"),
        "{}",
        r.stdout()
    );
}

#[test]
fn a_second_apply_is_refused_while_the_first_holds_the_lock() {
    let bed = Bed::new(&many_nodes(2));
    bed.config(serde_json::json!({ "delay_ms": { "node.n": 1500 } }));
    let mut first = KillOnDrop(Some(bed.spawn(&["apply", "-auto-approve"])));
    let dir = bed.double.clone();
    wait_until("the first apply to start", Duration::from_secs(30), || {
        read_calls(&dir).iter().any(|c| c["op"] == "create")
    });
    let r = bed.tg(&["apply", "-auto-approve"]);
    r.expect_code(1);
    let err = r.stderr();
    assert!(err.contains("session `default` is locked"), "{err}");
    assert!(err.contains("operation: apply"), "{err}");
    assert!(err.contains("tg force-unlock"), "{err}");

    // With a timeout the second one waits its turn and finds nothing to do.
    let r = bed.tg(&["apply", "-auto-approve", "-lock-timeout", "60s"]);
    r.expect_code(0);
    assert!(r.stdout().contains("No changes."), "{}", r.stdout());
    let out = first.0.take().unwrap().wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn drift_is_shown_and_repaired() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let mut objs = bed.objects();
    let key = objs
        .keys()
        .find(|k| k.ends_with("/node.origin"))
        .cloned()
        .unwrap();
    objs.remove(&key);
    let key = objs
        .keys()
        .find(|k| k.ends_with("/node.edge[1]"))
        .cloned()
        .unwrap();
    objs[&key]["spec"]["labels"] = serde_json::json!({"role": "hacked"});
    bed.write_objects(&objs);

    let plan = bed.tg(&["plan", "-detailed-exitcode"]);
    plan.expect_code(2);
    let out = plan.stdout();
    assert!(
        out.contains("# node.origin has been deleted outside tg"),
        "{out}"
    );
    assert!(
        out.contains("# node.edge[1] has changed outside tg"),
        "{out}"
    );
    assert!(
        out.contains("# node.origin will be created (it was deleted outside tg)"),
        "{out}"
    );
    assert!(
        out.contains("# node.edge[1] will be updated in-place"),
        "{out}"
    );
    assert!(
        out.contains("Plan: 1 to add, 1 to change, 0 to destroy."),
        "{out}"
    );

    // Without refresh, tg trusts the state.
    bed.tg(&["plan", "-refresh=false", "-detailed-exitcode"])
        .expect_code(0);

    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    bed.tg(&["plan", "-detailed-exitcode"]).expect_code(0);
}

#[test]
fn destroy_goes_in_reverse_order_and_sweeps() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let before = bed.calls().len();
    let r = bed.tg(&["destroy", "-auto-approve"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("Destroy complete! 6 destroyed."),
        "{}",
        r.stdout()
    );
    let calls: Vec<Value> = bed.calls().split_off(before);
    for i in 0..2 {
        let node = format!("node.edge[{i}]");
        let pkg = format!("package.fleche[node.edge[{i}]]");
        assert!(pos(&calls, "delete", &pkg, "end") < pos(&calls, "delete", &node, "start"));
        assert!(
            pos(&calls, "delete", "node.origin", "end") < pos(&calls, "delete", &node, "start")
        );
        assert!(
            pos(&calls, "delete", &node, "end") < pos(&calls, "delete", "network.lab", "start")
        );
    }
    assert!(bed.state_list().is_empty());
    assert!(bed.objects().is_empty());
}

#[test]
fn destroy_works_from_state_when_the_config_is_gone() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    std::fs::remove_file(bed.tb.path().join("main.tg.hcl")).unwrap();
    bed.tb.write("empty.tg.hcl", "");
    let before = bed.calls().len();
    bed.tg(&["destroy", "-auto-approve"]).expect_code(0);
    let calls: Vec<Value> = bed.calls().split_off(before);
    assert!(
        pos(&calls, "delete", "node.edge[0]", "end")
            < pos(&calls, "delete", "network.lab", "start")
    );
    assert!(bed.objects().is_empty());
}

#[test]
fn prevent_destroy_refuses_with_the_instance_named() {
    let hcl = BED.replace(
        "  depends_on = [node.edge]\n}",
        "  depends_on = [node.edge]\n  lifecycle {\n    prevent_destroy = true\n  }\n}",
    );
    let bed = Bed::new(&hcl);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let r = bed.tg(&["destroy", "-auto-approve"]);
    r.expect_code(1);
    let err = r.stderr();
    assert!(
        err.contains("`node.origin` has `lifecycle { prevent_destroy = true }` and this plan would destroy it"),
        "{err}"
    );
    assert!(err.contains("main.tg.hcl:"), "{err}");
    assert_eq!(bed.state_list().len(), 6, "nothing may be destroyed");
}

#[test]
fn targeted_plans_include_dependencies_and_destroy_includes_dependents() {
    let bed = Bed::new(BED);
    let r = bed.tg(&["plan", "-target", "package.fleche[node.edge[0]]"]);
    r.expect_code(0);
    let out = r.stdout();
    assert!(out.contains("# network.lab will be created"), "{out}");
    assert!(out.contains("# node.edge[0] will be created"), "{out}");
    assert!(!out.contains("node.edge[1]"), "{out}");
    assert!(out.contains("Plan: 3 to add"), "{out}");

    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let r = bed.tg(&["plan", "-destroy", "-target", "node.edge[1]"]);
    r.expect_code(0);
    let out = r.stdout();
    assert!(out.contains("# node.edge[1] will be destroyed"), "{out}");
    assert!(
        out.contains("# package.fleche[node.edge[1]] will be destroyed"),
        "{out}"
    );
    assert!(out.contains("# node.origin will be destroyed"), "{out}");
    assert!(
        out.contains("Plan: 0 to add, 0 to change, 3 to destroy."),
        "{out}"
    );

    let r = bed.tg(&["plan", "-replace", "node.edge[0]"]);
    r.expect_code(0);
    assert!(
        r.stdout()
            .contains("# node.edge[0] will be replaced, as requested"),
        "{}",
        r.stdout()
    );
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let bed = Bed::new(BED);
    let r = bed.tg(&["apply"]);
    r.expect_code(1);
    assert!(
        r.stderr().contains(
            "needs confirmation but stdin is not a terminal: run it with `-auto-approve`"
        ),
        "{}",
        r.stderr()
    );
    assert!(bed.state_list().is_empty());
}

#[test]
fn first_sigint_lets_work_in_flight_finish() {
    let bed = Bed::new(&many_nodes(6));
    bed.config(serde_json::json!({ "delay_ms": { "node.n": 700 } }));
    let child = bed.spawn(&["apply", "-auto-approve", "-parallelism", "2"]);
    let pid = child.id();
    let mut child = KillOnDrop(Some(child));
    let dir = bed.double.clone();
    wait_until("node creates to start", Duration::from_secs(30), || {
        read_calls(&dir).iter().any(|c| {
            c["op"] == "create"
                && c["event"] == "start"
                && c["address"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("node."))
        })
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.0.take().unwrap().wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("interrupted"), "{err}");
    // Everything started finished and is recorded; nothing new started.
    let calls = read_calls(&bed.double);
    let mut open: HashMap<String, i32> = HashMap::new();
    for c in &calls {
        let a = c["address"].as_str().unwrap_or_default().to_string();
        *open.entry(a).or_default() += if c["event"] == "start" { 1 } else { -1 };
    }
    assert!(
        open.values().all(|v| *v == 0),
        "work was abandoned: {open:?}"
    );
    let started = calls
        .iter()
        .filter(|c| c["op"] == "create" && c["event"] == "start")
        .count();
    assert!(started < 7, "new work started after the interrupt");
    assert_eq!(bed.state_list().len(), started);
}

/// The whole cycle against PostgreSQL (`TG_STATE_URL`), when a test server
/// is given in `TG_PG_TEST_URL` (`.ci/postgres.sh` starts one).
#[test]
fn apply_and_destroy_with_postgres_state() {
    crate::require_pg!(url);
    let bed = Bed::new(BED);
    let session = format!(
        "engine-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let env = [
        ("TG_STATE_URL", url.as_str()),
        ("TG_SESSION", session.as_str()),
    ];
    let r = bed.tg_env(&["apply", "-auto-approve"], &env);
    r.expect_code(0);
    assert!(
        !bed.tb.path().join(".tg/state.db").exists(),
        "sqlite was used"
    );
    let r = bed.tg_env(&["state", "list"], &env);
    assert_eq!(r.stdout().lines().count(), 6, "{}", r.stdout());
    bed.tg_env(&["plan", "-detailed-exitcode"], &env)
        .expect_code(0);
    bed.tg_env(&["destroy", "-auto-approve"], &env)
        .expect_code(0);
    bed.tg_env(&["session", "delete", &session], &env)
        .expect_code(0);
}

#[test]
fn apply_syncs_the_session_with_every_node() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    let sync: Value = serde_json::from_str(
        &std::fs::read_to_string(bed.double.join("sync-default.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sync["edge-0"]["lab"], "10.42.0.2");
    assert_eq!(sync["origin"]["lab"], "10.42.0.4");
}

#[test]
fn second_sigint_abandons_work_in_flight_and_taints_it() {
    let bed = Bed::new(&many_nodes(4));
    bed.config(serde_json::json!({ "delay_ms": { "node.n": 20000 } }));
    let child = bed.spawn(&["apply", "-auto-approve", "-parallelism", "2"]);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut child = KillOnDrop(Some(child));
    let dir = bed.double.clone();
    wait_until("node creates to start", Duration::from_secs(30), || {
        read_calls(&dir)
            .iter()
            .filter(|c| c["op"] == "create" && c["event"] == "start")
            .count()
            >= 3
    });
    let started = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.0.take().unwrap().wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the second interrupt did not stop the run"
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("interrupted"), "{err}");
    // The two creates in flight are recorded as tainted, so whatever they
    // half made is replaced next time.
    let show = bed.tg(&["show", "-json"]);
    show.expect_code(0);
    let doc: Value = serde_json::from_str(&show.stdout()).unwrap();
    let tainted = doc["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "tainted")
        .count();
    assert_eq!(tainted, 2, "{doc:#}");
    bed.config(serde_json::json!({}));
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    bed.tg(&["plan", "-detailed-exitcode"]).expect_code(0);
}
