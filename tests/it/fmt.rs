//! `tg fmt`: rewriting in place, `-check`, `-diff`, parse errors, stdin.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{tg_bin, Run, Testbed};

const MESSY: &str =
    "node \"edge\" {\n  image=\"host\"\n  cpus = 1\n\n\n  memory    =   \"512MiB\"   \n}\n";
const MESSY_FORMATTED: &str =
    "node \"edge\" {\n  image = \"host\"\n  cpus  = 1\n\n  memory = \"512MiB\"\n}\n";
const TIDY: &str = "network \"lab\" {\n  cidr = \"10.42.0.0/24\"\n  nat  = false\n}\n";
const VARS_MESSY: &str = "edge_count=3\nname = \"bed\"\n";
const VARS_FORMATTED: &str = "edge_count = 3\nname       = \"bed\"\n";

fn read(tb: &Testbed, name: &str) -> String {
    std::fs::read_to_string(tb.path().join(name)).unwrap()
}

/// Run `tg ARGS` in the testbed with `input` on stdin.
fn tg_stdin(tb: &Testbed, args: &[&str], input: &str) -> Run {
    let mut child = Command::new(tg_bin())
        .args(args)
        .current_dir(tb.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tg");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    Run(child.wait_with_output().expect("wait for tg"))
}

#[test]
fn rewrites_changed_testbed_files_and_lists_them() {
    let tb = Testbed::new(&[
        ("main.tg.hcl", MESSY),
        ("net.tg.hcl", TIDY),
        ("dev.tgvars.hcl", VARS_MESSY),
        ("other.hcl", "x=1\n"),
    ]);
    let run = tb.tg(&["fmt"]);
    run.expect_code(0);
    // Name order; only the files that changed; other `.hcl` files are not ours.
    assert_eq!(run.stdout(), "dev.tgvars.hcl\nmain.tg.hcl\n");
    assert_eq!(read(&tb, "main.tg.hcl"), MESSY_FORMATTED);
    assert_eq!(read(&tb, "dev.tgvars.hcl"), VARS_FORMATTED);
    assert_eq!(read(&tb, "net.tg.hcl"), TIDY);
    assert_eq!(read(&tb, "other.hcl"), "x=1\n");

    // A second run has nothing to do.
    let again = tb.tg(&["fmt"]);
    again.expect_code(0);
    assert_eq!(again.stdout(), "");
}

#[test]
fn rewrite_keeps_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let tb = Testbed::new(&[("main.tg.hcl", MESSY)]);
    let path = tb.path().join("main.tg.hcl");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    tb.tg(&["fmt"]).expect_code(0);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    assert_eq!(read(&tb, "main.tg.hcl"), MESSY_FORMATTED);
}

#[test]
fn crlf_files_are_rewritten_with_lf() {
    let tb = Testbed::new(&[("main.tg.hcl", "network \"lab\" {\r\n  nat = false\r\n}\r\n")]);
    let run = tb.tg(&["fmt"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "main.tg.hcl\n");
    assert_eq!(
        read(&tb, "main.tg.hcl"),
        "network \"lab\" {\n  nat = false\n}\n"
    );
}

#[test]
fn check_lists_unformatted_files_exits_3_and_writes_nothing() {
    let tb = Testbed::new(&[
        ("a.tg.hcl", MESSY),
        ("b.tg.hcl", TIDY),
        ("c.tgvars.hcl", VARS_MESSY),
    ]);
    let run = tb.tg(&["fmt", "-check"]);
    run.expect_code(3);
    assert_eq!(run.stdout(), "a.tg.hcl\nc.tgvars.hcl\n");
    assert_eq!(run.stderr(), "");
    assert_eq!(read(&tb, "a.tg.hcl"), MESSY);
    assert_eq!(read(&tb, "c.tgvars.hcl"), VARS_MESSY);

    // Both spellings of the flag work.
    tb.tg(&["fmt", "--check"]).expect_code(3);
}

#[test]
fn check_exits_0_when_everything_is_formatted() {
    let tb = Testbed::new(&[("a.tg.hcl", MESSY_FORMATTED), ("b.tg.hcl", TIDY)]);
    let run = tb.tg(&["fmt", "-check"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "");
}

#[test]
fn diff_prints_a_unified_diff_and_rewrites() {
    let tb = Testbed::new(&[("main.tg.hcl", MESSY), ("net.tg.hcl", TIDY)]);
    let run = tb.tg(&["fmt", "-diff"]);
    run.expect_code(0);
    insta::assert_snapshot!(run.stdout());
    assert_eq!(read(&tb, "main.tg.hcl"), MESSY_FORMATTED);
}

#[test]
fn check_with_diff_prints_the_diff_and_writes_nothing() {
    let tb = Testbed::new(&[("main.tg.hcl", MESSY)]);
    let run = tb.tg(&["fmt", "-check", "-diff"]);
    run.expect_code(3);
    let out = run.stdout();
    assert!(
        out.starts_with("main.tg.hcl\n--- a/main.tg.hcl\n+++ b/main.tg.hcl\n"),
        "{out}"
    );
    assert!(out.contains("\n-  image=\"host\"\n"), "{out}");
    assert!(out.contains("\n+  image = \"host\"\n"), "{out}");
    assert_eq!(read(&tb, "main.tg.hcl"), MESSY);
}

#[test]
fn parse_error_names_file_line_col_and_other_files_are_still_formatted() {
    let bad = "node \"a\" {\n  image = \"host\"\n  cpus = = 2\n}\n";
    let tb = Testbed::new(&[("a.tg.hcl", MESSY), ("b.tg.hcl", bad)]);
    let run = tb.tg(&["fmt"]);
    run.expect_code(1);
    let err = run.stderr();
    assert!(err.starts_with("b.tg.hcl:3:10: error: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // The broken file is untouched, the good one is rewritten and listed.
    assert_eq!(read(&tb, "b.tg.hcl"), bad);
    assert_eq!(read(&tb, "a.tg.hcl"), MESSY_FORMATTED);
    assert_eq!(run.stdout(), "a.tg.hcl\n");
}

#[test]
fn parse_error_wins_over_check_exit_code() {
    let tb = Testbed::new(&[("a.tg.hcl", MESSY), ("b.tg.hcl", "node {\n")]);
    let run = tb.tg(&["fmt", "-check"]);
    run.expect_code(1);
    assert!(run.stderr().starts_with("b.tg.hcl:"), "{}", run.stderr());
    assert_eq!(run.stdout(), "a.tg.hcl\n");
}

#[test]
fn named_files_are_relative_to_the_current_directory() {
    let tb = Testbed::new(&[
        ("sub/extra.hcl", "x=1\n"),
        ("main.tg.hcl", MESSY),
        ("sub/node.tg.hcl", MESSY),
    ]);
    let run = tb.tg(&["fmt", "sub/extra.hcl"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "sub/extra.hcl\n");
    assert_eq!(read(&tb, "sub/extra.hcl"), "x = 1\n");
    // Only the named file.
    assert_eq!(read(&tb, "main.tg.hcl"), MESSY);

    // A directory argument formats its testbed files.
    let run = tb.tg(&["fmt", "-check", "sub"]);
    run.expect_code(3);
    assert_eq!(run.stdout(), "sub/node.tg.hcl\n");
}

#[test]
fn chdir_selects_the_testbed_directory() {
    let tb = Testbed::new(&[("bed/main.tg.hcl", MESSY), ("top.tg.hcl", MESSY)]);
    let run = tb.tg(&["-chdir=bed", "fmt"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "main.tg.hcl\n");
    assert_eq!(read(&tb, "bed/main.tg.hcl"), MESSY_FORMATTED);
    assert_eq!(read(&tb, "top.tg.hcl"), MESSY);
}

#[test]
fn missing_file_is_an_error_and_the_rest_is_processed() {
    let tb = Testbed::new(&[("main.tg.hcl", MESSY)]);
    let run = tb.tg(&["fmt", "nope.tg.hcl", "main.tg.hcl"]);
    run.expect_code(1);
    assert!(
        run.stderr()
            .contains("error: file `nope.tg.hcl` does not exist"),
        "{}",
        run.stderr()
    );
    assert_eq!(read(&tb, "main.tg.hcl"), MESSY_FORMATTED);
}

#[test]
fn stdin_is_formatted_to_stdout() {
    let tb = Testbed::new(&[("main.tg.hcl", MESSY)]);
    let run = tg_stdin(&tb, &["fmt", "-"], MESSY);
    run.expect_code(0);
    assert_eq!(run.stdout(), MESSY_FORMATTED);
    // Files in the directory are not touched in stdin mode.
    assert_eq!(read(&tb, "main.tg.hcl"), MESSY);

    // Already formatted input comes back unchanged.
    let run = tg_stdin(&tb, &["fmt", "-"], TIDY);
    run.expect_code(0);
    assert_eq!(run.stdout(), TIDY);
}

#[test]
fn stdin_check_and_diff() {
    let tb = Testbed::new(&[]);
    let run = tg_stdin(&tb, &["fmt", "-check", "-"], MESSY);
    run.expect_code(3);
    assert_eq!(run.stdout(), "");
    tg_stdin(&tb, &["fmt", "-check", "-"], TIDY).expect_code(0);

    let run = tg_stdin(&tb, &["fmt", "-diff", "-"], MESSY);
    run.expect_code(0);
    assert!(
        run.stdout().starts_with("--- a/<stdin>\n+++ b/<stdin>\n"),
        "{}",
        run.stdout()
    );
}

#[test]
fn stdin_parse_error() {
    let tb = Testbed::new(&[]);
    let run = tg_stdin(&tb, &["fmt", "-"], "a = 1\nb = [1,\n");
    run.expect_code(1);
    assert!(run.stderr().starts_with("<stdin>:"), "{}", run.stderr());
    assert!(run.stderr().contains(": error: "), "{}", run.stderr());
    assert_eq!(run.stdout(), "");
}

#[test]
fn empty_directory_is_fine() {
    let tb = Testbed::new(&[]);
    let run = tb.tg(&["fmt", "-check"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "");
}

#[test]
fn non_utf8_file_is_an_error() {
    let tb = Testbed::new(&[("main.tg.hcl", MESSY)]);
    std::fs::write(tb.path().join("bad.tg.hcl"), b"a = \"\xff\"\n").unwrap();
    let run = tb.tg(&["fmt"]);
    run.expect_code(1);
    assert!(
        run.stderr().contains("`bad.tg.hcl` is not valid UTF-8"),
        "{}",
        run.stderr()
    );
    assert_eq!(read(&tb, "main.tg.hcl"), MESSY_FORMATTED);
}

#[test]
fn symlinked_file_is_rewritten_through_the_link() {
    let tb = Testbed::new(&[("shared/real.hcl", MESSY)]);
    std::os::unix::fs::symlink("shared/real.hcl", tb.path().join("main.tg.hcl")).unwrap();
    let run = tb.tg(&["fmt"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "main.tg.hcl\n");
    let link = tb.path().join("main.tg.hcl");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(read(&tb, "shared/real.hcl"), MESSY_FORMATTED);
    // No temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(tb.path().join("shared"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["real.hcl"]);
}
