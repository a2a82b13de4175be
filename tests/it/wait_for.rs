//! `wait_for` on the real netns platform, as root: a node counts as
//! created only once its checks pass (a command in the node, a TCP port
//! reached from its network), its dependents wait for that, and a check
//! that times out fails the node with the last output and holds its
//! dependents back. A package's checks run once it is installed.

use crate::e2e_netns::{prerequisites, unique, Session};
use crate::support::Testbed;

/// A node `srv` with `checks` and a node `cli` that depends on it.
fn testbed(prefix: &str, checks: &str) -> String {
    format!(
        "network \"lab\" {{\n  cidr = \"{prefix}.0/24\"\n}}\n\
         node \"srv\" {{\n  image = \"host\"\n{checks}}}\n\
         node \"cli\" {{\n  image      = \"host\"\n  depends_on = [node.srv]\n}}\n"
    )
}

#[test]
fn checks_pass_before_the_node_counts_as_created_and_dependents_wait() {
    if !prerequisites(&["ip", "socat"]) {
        return;
    }
    // Ready at the fourth try; then a TCP listener, reached from the network.
    let checks = r#"  wait_for {
    command  = "n=$(cat /tmp/tries 2>/dev/null || echo 0); echo $((n + 1)) > /tmp/tries; test $n -ge 3"
    interval = "300ms"
    timeout  = "30s"
  }
  wait_for {
    command = "nohup socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:true >/dev/null 2>&1 &"
  }
  wait_for {
    tcp      = 8080
    interval = "200ms"
  }
"#;
    let tb = Testbed::new(&[("main.tg.hcl", &testbed("10.82.0", checks))]);
    let s = Session {
        tb: &tb,
        name: unique("wait-pass"),
    };
    let plan = s.tg(&["plan", "-no-color"]);
    plan.expect_code(0);
    let text = plan.stdout();
    assert!(text.contains("+ wait_for"), "{text}");
    assert!(
        text.contains("{ tcp = 8080, timeout = \"1m\", interval = \"200ms\" }"),
        "{text}"
    );
    let r = s.tg(&["apply", "-auto-approve", "-no-color"]);
    r.expect_code(0);
    let out = r.stdout();
    let ready = out
        .find("node.srv: Creation complete")
        .expect("srv created");
    let cli = out.find("node.cli: Creating...").expect("cli created");
    assert!(
        ready < cli,
        "the dependent started before its dependency was ready:\n{out}"
    );
    let tries = s.tg(&["exec", "node.srv", "--", "cat", "/tmp/tries"]);
    assert_eq!(tries.stdout().trim(), "4");
    // A changed check is no reason to touch the node.
    tb.write(
        "main.tg.hcl",
        &testbed("10.82.0", &checks.replace("\"30s\"", "\"40s\"")),
    );
    let plan = s.tg(&["plan", "-no-color"]);
    assert!(
        plan.stdout()
            .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        plan.stdout()
    );
    s.tg(&["apply", "-auto-approve"]).expect_code(0);
    let tries = s.tg(&["exec", "node.srv", "--", "cat", "/tmp/tries"]);
    assert_eq!(tries.stdout().trim(), "4", "checks run when a node is made");
}

#[test]
fn a_check_that_times_out_fails_the_node_with_its_last_output() {
    if !prerequisites(&["ip"]) {
        return;
    }
    let checks = r#"  wait_for {
    command  = "echo still-starting >&2; exit 3"
    timeout  = "2s"
    interval = "500ms"
  }
"#;
    let tb = Testbed::new(&[("main.tg.hcl", &testbed("10.83.0", checks))]);
    let s = Session {
        tb: &tb,
        name: unique("wait-timeout"),
    };
    let started = std::time::Instant::now();
    let r = s.tg(&["apply", "-auto-approve", "-no-color"]);
    r.expect_code(1);
    let all = format!("{}{}", r.stdout(), r.stderr());
    assert!(all.contains("node `srv` is not ready"), "{all}");
    assert!(all.contains("did not pass within 2s"), "{all}");
    assert!(all.contains("exit code 3"), "{all}");
    assert!(all.contains("still-starting"), "{all}");
    assert!(
        !all.contains("node.cli: Creating"),
        "the dependent was held back:\n{all}"
    );
    assert!(started.elapsed().as_secs_f64() < 30.0);
    // The failed node is tainted: the next plan makes it anew, and `cli` waits.
    let plan = s.tg(&["plan", "-no-color"]);
    let text = plan.stdout();
    assert!(
        text.contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{text}"
    );

    // A TCP port nothing listens on.
    let checks = "  wait_for {\n    tcp     = 9\n    timeout = \"1s\"\n  }\n";
    tb.write("main.tg.hcl", &testbed("10.83.0", checks));
    let r = s.tg(&["apply", "-auto-approve", "-no-color"]);
    r.expect_code(1);
    let all = format!("{}{}", r.stdout(), r.stderr());
    assert!(all.contains("tcp port 9 did not pass within 1s"), "{all}");
    assert!(all.contains("connecting to 10.83.0.2:9"), "{all}");
}

#[test]
fn a_package_counts_as_installed_once_its_checks_pass() {
    let _dpkg = crate::support::host_dpkg_read();
    if !prerequisites(&["ip", "dpkg-deb"]) {
        return;
    }
    let bed = |check: &str| {
        format!(
            "network \"lab\" {{\n  cidr = \"10.84.0.0/24\"\n}}\n\
             node \"srv\" {{\n  image = \"host\"\n}}\n\
             package \"tgwait\" {{\n  deb = \"tgwait_1.0_all.deb\"\n  on  = [node.srv]\n  wait_for {{\n    command  = \"{check}\"\n    timeout  = \"5s\"\n    interval = \"300ms\"\n  }}\n}}\n"
        )
    };
    // Passes at the third try, once the package's file is there.
    let tb = Testbed::new(&[(
        "main.tg.hcl",
        &bed("n=$(cat /tmp/tries 2>/dev/null || echo 0); echo $((n + 1)) > /tmp/tries; test $n -ge 2 && test -e /usr/share/doc/tgwait/README"),
    )]);
    crate::netns::build_deb(tb.path(), "tgwait", "1.0");
    let s = Session {
        tb: &tb,
        name: unique("wait-pkg"),
    };
    let r = s.tg(&["apply", "-auto-approve", "-no-color"]);
    r.expect_code(0);
    let tries = s.tg(&["exec", "node.srv", "--", "cat", "/tmp/tries"]);
    assert_eq!(tries.stdout().trim(), "3");

    // A check that never passes fails the package with its output.
    tb.write("main.tg.hcl", &bed("echo no-service-yet; exit 1"));
    let r = s.tg(&[
        "apply",
        "-auto-approve",
        "-no-color",
        "-replace",
        "package.tgwait",
    ]);
    r.expect_code(1);
    let all = format!("{}{}", r.stdout(), r.stderr());
    assert!(
        all.contains("package `tgwait` on node `srv` is not ready"),
        "{all}"
    );
    assert!(all.contains("no-service-yet"), "{all}");
}

/// A check whose command leaves a process holding its output (`sleep &`)
/// passes when the command exits: reading its output stopped waiting for
/// the pipes to close (apply used to hang there for good).
#[test]
fn a_check_that_leaves_a_background_process_behind_does_not_hang() {
    if !prerequisites(&["ip", "timeout"]) {
        return;
    }
    let checks =
        "  wait_for {\n    command = \"sleep 300 & echo started\"\n    timeout = \"20s\"\n  }\n";
    let tb = Testbed::new(&[("main.tg.hcl", &testbed("10.82.3", checks))]);
    let s = Session {
        tb: &tb,
        name: unique("wait-bg"),
    };
    let started = std::time::Instant::now();
    let out = std::process::Command::new("timeout")
        .arg("90")
        .arg(crate::support::tg_bin())
        .args(["--session", &s.name, "apply", "-auto-approve"])
        .current_dir(tb.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "apply failed or hung ({:?}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}
