//! `tg console`: expressions read from a pipe, evaluated against the
//! testbed and its state, printed as HCL; errors do not stop the loop.

use std::io::Write;
use std::process::Stdio;

use crate::engine::Bed;

const BED: &str = r#"
variable "pw" {
  default   = "hunter22"
  sensitive = true
}

locals {
  replicas = 2
}

network "lab" {
  cidr = "10.42.0.0/24"
}

node "edge" {
  count    = local.replicas
  image    = "host"
  network  = network.lab
  platform = "double"
  labels   = { role = "edge" }
}

output "edges" {
  value = node.edge[*].address
}
"#;

/// `tg console` with `input` on stdin: exit code, stdout, stderr.
fn console(bed: &Bed, input: &str) -> (i32, String, String) {
    let mut child = bed
        .command(&["console"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn tg console");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn console_evaluates_each_line_and_goes_on_after_an_error() {
    let bed = Bed::new(BED);
    let input = "\
cidrhost(network.lab.cidr, 5)
node.edge[*].address
node.edge[0]
output.edges
local.replicas * 10
var.pw
upper(\"${node.edge[1].hostname}\")
{ for n in node.edge : n.hostname => n.labels.role }

# comments and blank lines are skipped
node.nope
cidrhost(network.lab.cidr)
network.lab.cidr +
nosuch(1)
length(node.edge)
";
    let (code, out, err) = console(&bed, input);
    insta::assert_snapshot!("console_stdout", out);
    insta::assert_snapshot!("console_stderr", err);
    // A failed line makes a piped console fail at the end.
    assert_eq!(code, 1);
    let (code, out, _) = console(&bed, "network.lab.gateway\n");
    assert_eq!((code, out.as_str()), (0, "\"10.42.0.1\"\n"));
}

/// What state recorded wins: addresses stay where apply put them.
#[test]
fn console_sees_the_recorded_addresses() {
    let bed = Bed::new(BED);
    bed.tg(&["apply", "-auto-approve"]).expect_code(0);
    // A node declared first would take `.2` in a fresh session.
    bed.tb.write(
        "main.tg.hcl",
        &format!(
            "node \"first\" {{\n  image    = \"host\"\n  network  = network.lab\n  platform = \"double\"\n}}\n{BED}"
        ),
    );
    let (code, out, err) = console(&bed, "node.first.address\nnode.edge[0].address\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "\"10.42.0.4\"\n\"10.42.0.2\"\n");
    // A testbed that does not load is reported as `tg validate` would.
    bed.tb
        .write("main.tg.hcl", "node \"x\" {\n  imagee = \"host\"\n}\n");
    let (code, _, err) = console(&bed, "1\n");
    assert_eq!(code, 1);
    assert!(err.contains("main.tg.hcl:2:3"), "{err}");
}
