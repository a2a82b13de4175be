//! Hostile inputs: locals that blow up, deep chains, too many instances,
//! broken symlinks and special files, paths from the caller's environment.

use super::*;

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
