//! Cases of the functions that read the host: `env`, `file` and
//! `templatefile`.

use super::*;

#[test]
fn env_function() {
    let mut t = Table::default();
    let path = std::env::var("PATH").unwrap_or_default();
    t.ok(r#"env("PATH")"#, json!(path));
    t.ok(
        r#"env("TG_FUNCTIONS_TEST_SURELY_UNSET_7F3A", "fallback")"#,
        json!("fallback"),
    );
    t.ok(
        r#"env("TG_FUNCTIONS_TEST_SURELY_UNSET_7F3A", null)"#,
        json!(null),
    );
    t.err(
        r#"env("TG_FUNCTIONS_TEST_SURELY_UNSET_7F3A")"#,
        "environment variable `TG_FUNCTIONS_TEST_SURELY_UNSET_7F3A` is not set; set it, or pass a default",
    );
    t.err(
        r#"env("A=B")"#,
        "`name` is not a valid environment variable name",
    );
    t.err(
        r#"env("")"#,
        "`name` is not a valid environment variable name",
    );
    t.err(r#"env([])"#, "`name` must be a string");
    t.finish();
}

#[test]
fn file_function_resolves_against_base_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("certs")).expect("mkdir");
    std::fs::write(dir.path().join("certs/ca.pem"), "-----BEGIN-----\nü\n").expect("write");
    std::fs::write(dir.path().join("bin.dat"), [b'o', b'k', 0xff, 0xfe]).expect("write");
    let absolute = dir.path().join("certs/ca.pem").display().to_string();

    {
        let mut t = Table::in_dir(dir.path());
        t.ok(r#"file("certs/ca.pem")"#, json!("-----BEGIN-----\nü\n"));
        t.ok(
            r#"file("./certs/../certs/ca.pem")"#,
            json!("-----BEGIN-----\nü\n"),
        );
        t.ok(
            &format!("file({:?})", absolute),
            json!("-----BEGIN-----\nü\n"),
        );
        t.err(
            r#"file("missing.txt")"#,
            "cannot read `missing.txt` (resolved to `",
        );
        t.err(
            r#"file("missing.txt")"#,
            "missing.txt`): no such file or directory",
        );
        t.err(r#"file("certs")"#, "it is a directory, not a file");
        t.err(
            r#"file("bin.dat")"#,
            "it is not utf-8 text (invalid byte at offset 2)",
        );
        t.err(r#"file("")"#, "`path` is empty");
        t.ok(r#"filebase64("bin.dat")"#, json!("b2v//g=="));
        t.err(r#"filebase64("nope")"#, "cannot read `nope`");
        t.ok(
            r#"filesha256("certs/ca.pem")"#,
            json!(super::super::encoding::sha256_hex(
                "-----BEGIN-----\nü\n".as_bytes()
            )),
        );
        t.err(r#"filesha256("certs")"#, "it is a directory");
        t.ok(r#"fileexists("certs/ca.pem")"#, json!(true));
        t.ok(r#"fileexists("certs/nope.pem")"#, json!(false));
        t.err(
            r#"fileexists("certs")"#,
            "is a directory; `fileexists` checks for files",
        );
        t.err(
            r#"file(1, 2)"#,
            "expected 1 argument, found 2; usage: `file(path)`",
        );
        t.err(r#"file("/dev/null")"#, "it is not a regular file");
        t.finish();
    }

    // Each evaluation has its own directory.
    let inner = dir.path().join("certs");
    assert!(eval_in(&inner, r#"file("ca.pem")"#).is_ok());
    assert!(eval_in(dir.path(), r#"file("certs/ca.pem")"#).is_ok());
    assert!(eval_in(dir.path(), r#"file("ca.pem")"#).is_err());
    // `~/` is the caller's HOME, not the process's.
    let mut edit = hcl_edit::parser::parse_expr(r#"file("~/certs/ca.pem")"#).unwrap();
    bind_host(&mut edit);
    let mut ctx = Context::new();
    declare_all(&mut ctx);
    let env = Environment::new(
        [("HOME".to_string(), dir.path().display().to_string())],
        "/",
    );
    ctx.declare_var(HOST_VAR, host_value(std::path::Path::new("/"), &env));
    assert!(Expression::from(edit).evaluate(&ctx).is_ok());
    // A call that did not go through `bind_host` fails instead of reading.
    let raw = Expression::from_str(r#"file("certs/ca.pem")"#).unwrap();
    assert!(raw.evaluate(&ctx).is_err());
}

#[test]
fn templatefile_renders_with_vars_and_functions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write(
        "hosts.tpl",
        "%{ for i, h in hosts ~}\n${h} ${cidrhost(cidr, i + 10)}\n%{ endfor ~}\nname=${upper(name)}",
    );
    write("self.tpl", "${templatefile(\"self.tpl\", {})}");
    write("bad.tpl", "${");
    write("undef.tpl", "${nope}");
    write("failing.tpl", "x ${cidrhost(\"10.0.0.0/30\", 9)}");

    {
        let mut t = Table::in_dir(dir.path());
        t.ok(
            r#"templatefile("hosts.tpl", {hosts = ["a", "b"], cidr = "10.0.0.0/24", name = "lab"})"#,
            json!("a 10.0.0.10\nb 10.0.0.11\nname=LAB"),
        );
        t.err(
            r#"templatefile("self.tpl", {})"#,
            "`templatefile` cannot be called from inside a template",
        );
        t.err(
            r#"templatefile("bad.tpl", {})"#,
            "cannot parse template `bad.tpl`",
        );
        t.err(
            r#"templatefile("undef.tpl", {})"#,
            "undefined variable `nope`",
        );
        t.err(r#"templatefile("undef.tpl", {})"#, "; pass it in `vars`");
        t.err(
            r#"templatefile("failing.tpl", {})"#,
            "host number 9 does not fit in 10.0.0.0/30 (4 addresses)",
        );
        t.err(
            r#"templatefile("hosts.tpl", ["a"])"#,
            "`vars` must be a map",
        );
        t.err(
            r#"templatefile("hosts.tpl", {"not valid" = 1})"#,
            "is not a valid variable name",
        );
        t.err(
            r#"templatefile("missing.tpl", {})"#,
            "no such file or directory",
        );
        t.finish();
    }
}

#[test]
fn file_refuses_special_files() {
    let err = eval(r#"file("/dev/zero")"#).expect_err("reading /dev/zero must fail");
    assert!(err.contains("it is not a regular file"), "{err}");
}
