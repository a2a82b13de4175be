//! Data-driven tests: one line per case, an expression in the testbed
//! language and the JSON it must evaluate to (or a fragment of the error it
//! must fail with), plus a property test that no argument makes any
//! function panic.

use std::str::FromStr;

use hcl::eval::{Context, ErrorKind, Evaluate};
use hcl::expr::{Expression, FuncCall};
use hcl::Value;
use serde_json::{json, Value as Json};

use super::{
    bind_host, declare_all, host_value, signature, HOST_FUNCTIONS, HOST_VAR, NAMES, SPECS,
};
use crate::environment::Environment;

/// The host the tests evaluate in: this process's environment, relative
/// paths from `dir`.
fn host(dir: &std::path::Path) -> Value {
    host_value(dir, &Environment::from_process())
}

/// Evaluate `src` with relative paths starting from `dir`; a function's
/// own error comes back without hcl-rs's `error calling function` wrapper
/// so cases can match it exactly.
fn eval_in(dir: &std::path::Path, src: &str) -> Result<Value, String> {
    let mut edit = hcl_edit::parser::parse_expr(src).map_err(|e| format!("parse error: {e}"))?;
    bind_host(&mut edit);
    let expr = Expression::from(edit);
    let mut ctx = Context::new();
    declare_all(&mut ctx);
    ctx.declare_var(HOST_VAR, host(dir));
    expr.evaluate(&ctx).map_err(|e| match e.kind() {
        ErrorKind::FuncCall(_, msg) => msg.clone(),
        _ => format!("eval error: {e}"),
    })
}

fn eval(src: &str) -> Result<Value, String> {
    eval_in(&std::env::current_dir().unwrap_or_default(), src)
}

/// Collects every failing case so one run reports all of them.
#[derive(Default)]
struct Table {
    failures: Vec<String>,
    /// Where relative paths start; the current directory when `None`.
    dir: Option<std::path::PathBuf>,
}

impl Table {
    fn in_dir(dir: &std::path::Path) -> Table {
        Table {
            failures: Vec::new(),
            dir: Some(dir.to_path_buf()),
        }
    }

    fn eval(&self, src: &str) -> Result<Value, String> {
        match &self.dir {
            Some(d) => eval_in(d, src),
            None => eval(src),
        }
    }

    fn ok(&mut self, src: &str, want: Json) {
        match self.eval(src) {
            Ok(v) => {
                let got = serde_json::to_value(&v).unwrap_or(Json::Null);
                if got != want {
                    self.failures
                        .push(format!("{src}\n    want {want}\n    got  {got}"));
                }
            }
            Err(e) => self
                .failures
                .push(format!("{src}\n    want {want}\n    error {e}")),
        }
    }

    fn err(&mut self, src: &str, fragment: &str) {
        match self.eval(src) {
            Ok(v) => {
                let got = serde_json::to_value(&v).unwrap_or(Json::Null);
                self.failures.push(format!(
                    "{src}\n    want error {fragment:?}\n    got  {got}"
                ));
            }
            Err(e) => {
                if !e.contains(fragment) {
                    self.failures.push(format!(
                        "{src}\n    want error {fragment:?}\n    got  {e:?}"
                    ));
                }
                if let Some(problem) = style_problem(&e) {
                    self.failures.push(format!("{src}\n    {problem}: {e:?}"));
                }
            }
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} failing case(s):\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// Messages are one lowercase line without a trailing period.
fn style_problem(msg: &str) -> Option<&'static str> {
    if msg.contains('\n') {
        return Some("message spans lines");
    }
    if msg.starts_with(|c: char| c.is_uppercase()) {
        return Some("message starts uppercase");
    }
    if msg.ends_with('.') {
        return Some("message ends with a period");
    }
    None
}

#[test]
fn cidr_functions() {
    let mut t = Table::default();
    t.ok(r#"cidrhost("10.42.0.0/24", 10)"#, json!("10.42.0.10"));
    t.ok(r#"cidrhost("10.42.0.0/24", 0)"#, json!("10.42.0.0"));
    t.ok(r#"cidrhost("10.42.0.0/24", 255)"#, json!("10.42.0.255"));
    t.ok(r#"cidrhost("10.42.0.0/24", -1)"#, json!("10.42.0.255"));
    t.ok(r#"cidrhost("10.42.0.0/24", -256)"#, json!("10.42.0.0"));
    t.ok(r#"cidrhost("10.12.112.0/20", 16)"#, json!("10.12.112.16"));
    t.ok(r#"cidrhost("10.12.112.0/20", 268)"#, json!("10.12.113.12"));
    t.ok(r#"cidrhost("10.0.0.77/24", 5)"#, json!("10.0.0.5"));
    t.ok(r#"cidrhost("10.0.0.0/24", "7")"#, json!("10.0.0.7"));
    t.ok(r#"cidrhost("0.0.0.0/0", -1)"#, json!("255.255.255.255"));
    t.ok(r#"cidrhost("192.168.1.9/32", 0)"#, json!("192.168.1.9"));
    t.ok(
        r#"cidrhost("fd00:fd12:3456:7890::/56", 16)"#,
        json!("fd00:fd12:3456:7800::10"),
    );
    t.ok(
        r#"cidrhost("::/0", -1)"#,
        json!("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    );
    t.err(
        r#"cidrhost("10.0.0.0/24", 300)"#,
        "host number 300 does not fit in 10.0.0.0/24 (256 addresses)",
    );
    t.err(
        r#"cidrhost("10.0.0.0/24", -257)"#,
        "host number -257 does not fit in 10.0.0.0/24 (256 addresses)",
    );
    t.err(
        r#"cidrhost("10.0.0.0/33", 1)"#,
        "`prefix` is not a valid cidr prefix",
    );
    t.err(
        r#"cidrhost("10.0.0.0", 1)"#,
        "`prefix` is not a valid cidr prefix",
    );
    t.err(
        r#"cidrhost("10.0.0.0/24", 1.5)"#,
        "`hostnum` must be a whole number, found 1.5",
    );
    t.err(
        r#"cidrhost("10.0.0.0/24")"#,
        "expected 2 arguments, found 1; usage: `cidrhost(prefix, hostnum)`",
    );
    t.err(
        r#"cidrhost(["10.0.0.0/24"], 1)"#,
        "`prefix` must be a string, found a list of 1 element",
    );
    t.err(r#"cidrhost(null, 1)"#, "`prefix` must not be null");

    t.ok(r#"cidrsubnet("10.0.0.0/16", 8, 2)"#, json!("10.0.2.0/24"));
    t.ok(
        r#"cidrsubnet("172.16.0.0/12", 4, 2)"#,
        json!("172.18.0.0/16"),
    );
    t.ok(
        r#"cidrsubnet("10.1.2.0/24", 4, 15)"#,
        json!("10.1.2.240/28"),
    );
    t.ok(r#"cidrsubnet("10.1.2.3/24", 0, 0)"#, json!("10.1.2.0/24"));
    t.ok(
        r#"cidrsubnet("0.0.0.0/0", 32, 4294967295)"#,
        json!("255.255.255.255/32"),
    );
    t.ok(
        r#"cidrsubnet("fd00:fd12:3456:7890::/56", 16, 162)"#,
        json!("fd00:fd12:3456:7800:a200::/72"),
    );
    t.ok(r#"cidrsubnet("::/0", 0, 0)"#, json!("::/0"));
    t.err(
        r#"cidrsubnet("10.0.0.0/24", 9, 0)"#,
        "cannot extend the /24 prefix 10.0.0.0/24 by 9 bits",
    );
    t.err(
        r#"cidrsubnet("10.0.0.0/16", 8, 256)"#,
        "network number 256 does not fit in 8 new bits (256 subnets of 10.0.0.0/16)",
    );
    t.err(
        r#"cidrsubnet("10.0.0.0/16", -1, 0)"#,
        "`newbits` must not be negative",
    );
    t.err(
        r#"cidrsubnet("10.0.0.0/16", 4, -1)"#,
        "`netnum` must not be negative",
    );
    t.err(
        r#"cidrsubnet("10.0.0.0/16", 9223372036854775807, 0)"#,
        "cannot extend",
    );

    t.ok(
        r#"cidrsubnets("10.1.0.0/16", 4, 4, 8, 4)"#,
        json!([
            "10.1.0.0/20",
            "10.1.16.0/20",
            "10.1.32.0/24",
            "10.1.48.0/20"
        ]),
    );
    t.ok(
        r#"cidrsubnets("10.0.0.0/24", 1, 1)"#,
        json!(["10.0.0.0/25", "10.0.0.128/25"]),
    );
    t.ok(r#"cidrsubnets("10.0.0.0/24")"#, json!([]));
    t.ok(
        r#"cidrsubnets("fd00:fd12:3456:7890::/56", 16, 16, 16, 32)"#,
        json!([
            "fd00:fd12:3456:7800::/72",
            "fd00:fd12:3456:7800:100::/72",
            "fd00:fd12:3456:7800:200::/72",
            "fd00:fd12:3456:7800:300::/88"
        ]),
    );
    t.ok(
        r#"cidrsubnets("0.0.0.0/0", 1, 1)"#,
        json!(["0.0.0.0/1", "128.0.0.0/1"]),
    );
    t.err(
        r#"cidrsubnets("10.0.0.0/24", 1, 1, 1)"#,
        "not enough address space left in 10.0.0.0/24 for argument 4 (`newbits`) (a /25 subnet)",
    );
    t.err(
        r#"cidrsubnets("10.0.0.0/24", 0)"#,
        "must extend the prefix by at least 1 bit",
    );
    t.err(
        r#"cidrsubnets("10.0.0.0/24", 9)"#,
        "by 9 bits, longer than 32 bits",
    );

    t.ok(r#"cidrnetmask("172.16.0.0/12")"#, json!("255.240.0.0"));
    t.ok(r#"cidrnetmask("10.0.0.0/32")"#, json!("255.255.255.255"));
    t.ok(r#"cidrnetmask("0.0.0.0/0")"#, json!("0.0.0.0"));
    t.err(
        r#"cidrnetmask("fd00::/8")"#,
        "only ipv4 prefixes have a netmask",
    );
    t.err(r#"cidrnetmask("nope")"#, "not a valid cidr prefix");
    t.finish();
}

#[test]
fn format_function() {
    let mut t = Table::default();
    t.ok(r#"format("Hello, %s!", "Ander")"#, json!("Hello, Ander!"));
    t.ok(
        r#"format("There are %d lights", 4)"#,
        json!("There are 4 lights"),
    );
    t.ok(r#"format("%s-%d", "edge", 3)"#, json!("edge-3"));
    t.ok(r#"format("%03d", 7)"#, json!("007"));
    t.ok(r#"format("%5d|", 42)"#, json!("   42|"));
    t.ok(r#"format("%-5d|", 42)"#, json!("42   |"));
    t.ok(r#"format("%+d %+d", 5, -5)"#, json!("+5 -5"));
    t.ok(r#"format("%05d", -42)"#, json!("-0042"));
    t.ok(r#"format("%.2f", 3.14159)"#, json!("3.14"));
    t.ok(r#"format("%f", 1.5)"#, json!("1.500000"));
    t.ok(r#"format("%8.3f|", -1.5)"#, json!("  -1.500|"));
    t.ok(r#"format("%e", 1234.5678)"#, json!("1.234568e+03"));
    t.ok(
        r#"format("%g %g %g", 1.5, 100000, 1000000)"#,
        json!("1.5 100000 1e+06"),
    );
    t.ok(r#"format("%g", 0.00001)"#, json!("1e-05"));
    t.ok(
        r#"format("%x %X %o %b %#x", 255, 255, 8, 5, 255)"#,
        json!("ff FF 10 101 0xff"),
    );
    t.ok(r#"format("%t", true)"#, json!("true"));
    t.ok(r#"format("%v %v %v", "a", 1, true)"#, json!("a 1 true"));
    t.ok(r#"format("%v", [1, "a"])"#, json!("[1,\"a\"]"));
    t.ok(
        r#"format("%v", {b = 1, a = 2})"#,
        json!("{\"a\":2,\"b\":1}"),
    );
    t.ok(r#"format("%#v", "a")"#, json!("\"a\""));
    t.ok(r#"format("%q", "say \"hi\"")"#, json!("\"say \\\"hi\\\"\""));
    t.ok(r#"format("%s", 12)"#, json!("12"));
    t.ok(
        r#"format("%10s|%-4s|", "right", "l")"#,
        json!("     right|l   |"),
    );
    t.ok(r#"format("%.3s", "abcdef")"#, json!("abc"));
    t.ok(r#"format("100%%")"#, json!("100%"));
    t.ok(
        r#"format("%5.1f|% d|%x|%#o", 3.14159, 5, -255, 8)"#,
        json!("  3.1| 5|-ff|010"),
    );
    t.ok(
        r#"format("%08.3f|%+.2e|%G", -3.14159, 12345.678, 0.0000001)"#,
        json!("-003.142|+1.23e+04|1E-07"),
    );
    t.ok(
        r#"format("%v|%s|%-6s|%6.2s|%05s", null, true, "ab", "abc", "ab")"#,
        json!("null|true|ab    |    ab|000ab"),
    );
    t.ok(
        r#"format("%05v|%.3g|%.3g|%g", 42, 3.14159, 1, 1234567)"#,
        json!("00042|3.14|1|1.234567e+06"),
    );
    t.ok(r#"format("%[2]s %[1]s", "a", "b")"#, json!("b a"));
    t.ok(r#"format("%d", "12")"#, json!("12"));
    t.ok(r#"format("ünï %s", "cödé")"#, json!("ünï cödé"));
    t.ok(
        r#"format("%d", 18446744073709551615)"#,
        json!("18446744073709551615"),
    );
    t.err(
        r#"format("%d")"#,
        "not enough arguments for `%d` at offset 0: it needs argument 1 but none was given",
    );
    t.err(
        r#"format("%s %s", "a")"#,
        "it needs argument 2 but only 1 was given",
    );
    t.err(
        r#"format("x", 1)"#,
        "too many arguments: the format string uses none but 1 were given",
    );
    t.err(
        r#"format("%d", 1.5)"#,
        "`%d` at offset 0 needs a whole number, found 1.5",
    );
    t.err(
        r#"format("%d", "abc")"#,
        "cannot format string \"abc\" with `%d`",
    );
    t.err(
        r#"format("%s", [1])"#,
        "use `%v` or `jsonencode` for collections",
    );
    t.err(r#"format("%s", null)"#, "null cannot be formatted");
    t.err(r#"format("%y", 1)"#, "unsupported verb `%y` at offset 0");
    t.err(
        r#"format("abc %")"#,
        "format string ends in the middle of a verb at offset 4",
    );
    t.err(
        r#"format("%99999999999999999999999d", 1)"#,
        "larger than 10000",
    );
    t.err(r#"format("%[0]d", 1)"#, "invalid argument index");
    t.err(r#"format("%[1]s", "a", "b")"#, "argument 3 is not used");
    t.err(r#"format("%t", 1)"#, "cannot format number `1` with `%t`");
    t.err(r#"format()"#, "expected at least 1 argument, found 0");

    t.ok(
        r#"formatlist("Hello, %s!", ["Valentina", "Ander"])"#,
        json!(["Hello, Valentina!", "Hello, Ander!"]),
    );
    t.ok(
        r#"formatlist("%s-%d", "edge", [0, 1])"#,
        json!(["edge-0", "edge-1"]),
    );
    t.ok(
        r#"formatlist("%s=%s", ["a", "b"], ["1", "2"])"#,
        json!(["a=1", "b=2"]),
    );
    t.ok(r#"formatlist("%s", [])"#, json!([]));
    t.ok(r#"formatlist("x")"#, json!(["x"]));
    t.err(
        r#"formatlist("%s %s", ["a"], ["b", "c"])"#,
        "all list arguments must have the same length",
    );
    t.err(
        r#"formatlist("%d", ["a"])"#,
        "element 0: cannot format string \"a\" with `%d`",
    );
    t.finish();
}

#[test]
fn string_functions() {
    let mut t = Table::default();
    t.ok(
        r#"join(", ", ["foo", "bar", "baz"])"#,
        json!("foo, bar, baz"),
    );
    t.ok(r#"join(",", ["a"], [], ["b", 1])"#, json!("a,b,1"));
    t.ok(r#"join("-", [])"#, json!(""));
    t.err(
        r#"join(",", "a")"#,
        "argument 2 (`lists`) must be a list, found string \"a\"",
    );
    t.err(
        r#"join(",", ["a"], "b")"#,
        "argument 3 (`lists`) must be a list",
    );
    t.err(
        r#"join(",", [["a"]])"#,
        "element 0 of argument 2 (`lists`) must be a string, found a list of 1 element",
    );
    t.err(
        r#"join(",")"#,
        "expected at least 2 arguments, found 1; usage: `join(separator, lists...)`",
    );

    t.ok(r#"upper("hello ü")"#, json!("HELLO Ü"));
    t.ok(r#"upper(12)"#, json!("12"));
    t.err(
        r#"upper([])"#,
        "`string` must be a string, found a list of 0 elements",
    );
    t.ok(r#"lower("HELLO Ü")"#, json!("hello ü"));
    t.err(r#"lower(null)"#, "`string` must not be null");
    t.err(
        r#"lower("a", "b")"#,
        "expected 1 argument, found 2; usage: `lower(string)`",
    );

    t.ok(r#"split(",", "foo,bar,baz")"#, json!(["foo", "bar", "baz"]));
    t.ok(r#"split(",", "foo")"#, json!(["foo"]));
    t.ok(r#"split(",", "")"#, json!([""]));
    t.ok(r#"split("", "aé")"#, json!(["a", "é"]));
    t.err(
        r#"split(",", {})"#,
        "`string` must be a string, found a map of 0 elements",
    );

    t.ok(r#"replace("1 + 2 + 3", "+", "-")"#, json!("1 - 2 - 3"));
    t.ok(
        r#"replace("hello world", "/w.*d/", "everybody")"#,
        json!("hello world"),
    );
    t.ok(r#"replace("aaa", "a", "")"#, json!(""));
    t.err(r#"replace("a", "b")"#, "expected 3 arguments, found 2");

    t.ok(r#"trimspace("  hello\n\t")"#, json!("hello"));
    t.ok(r#"trimspace("")"#, json!(""));
    t.err(r#"trimspace({a = 1})"#, "must be a string");
    t.ok(r#"chomp("hello\r\n\n")"#, json!("hello"));
    t.err(r#"chomp([])"#, "must be a string");
    t.ok(r#"trimprefix("helloworld", "hello")"#, json!("world"));
    t.ok(r#"trimprefix("helloworld", "x")"#, json!("helloworld"));
    t.err(r#"trimprefix("a", [])"#, "`prefix` must be a string");
    t.ok(r#"trimsuffix("helloworld", "world")"#, json!("hello"));
    t.err(r#"trimsuffix("a")"#, "expected 2 arguments, found 1");

    t.ok(r#"startswith("hello world", "hello")"#, json!(true));
    t.ok(r#"startswith("hello world", "world")"#, json!(false));
    t.err(r#"startswith("a", null)"#, "`prefix` must not be null");
    t.ok(r#"endswith("hello world", "world")"#, json!(true));
    t.ok(r#"endswith("hello world", "hello")"#, json!(false));
    t.err(r#"endswith([], "a")"#, "`string` must be a string");

    t.ok(r#"strrev("héllo")"#, json!("olléh"));
    t.err(r#"strrev([])"#, "`string` must be a string");
    t.ok(
        r#"title("hello world-wide_web")"#,
        json!("Hello World-Wide_web"),
    );
    t.err(r#"title({})"#, "`string` must be a string");
    t.ok(r#"indent(2, "[\n  foo,\n]")"#, json!("[\n    foo,\n  ]"));
    t.ok(r#"indent(0, "a\nb")"#, json!("a\nb"));
    t.err(
        r#"indent(-1, "a")"#,
        "`spaces` must be between 0 and 10000, found -1",
    );

    t.ok(r#"substr("hello world", 1, 4)"#, json!("ello"));
    t.ok(r#"substr("🤔🤷", 0, 1)"#, json!("🤔"));
    t.ok(r#"substr("hello world", -5, -1)"#, json!("world"));
    t.ok(r#"substr("hello", 2, -1)"#, json!("llo"));
    t.ok(r#"substr("hello", 10, 2)"#, json!(""));
    t.ok(r#"substr("hello", 0, 100)"#, json!("hello"));
    t.err(
        r#"substr("hello", -10, 2)"#,
        "`offset` -10 is before the start of a string of 5 characters",
    );
    t.err(
        r#"substr("hello", 0, -2)"#,
        "`length` must be -1 (to the end) or a non-negative count",
    );
    t.finish();
}

#[test]
fn collection_functions() {
    let mut t = Table::default();
    t.ok(r#"length("héllo")"#, json!(5));
    t.ok(r#"length([1, 2, 3])"#, json!(3));
    t.ok(r#"length({a = 1, b = 2})"#, json!(2));
    t.ok(r#"length([])"#, json!(0));
    t.err(
        r#"length(5)"#,
        "`value` must be a string, list or map, found number `5`",
    );
    t.err(r#"length(null)"#, "found null");

    t.ok(r#"lookup({a = "ay", b = "bee"}, "a")"#, json!("ay"));
    t.ok(
        r#"lookup({a = "ay", b = "bee"}, "c", "what?")"#,
        json!("what?"),
    );
    t.ok(r#"lookup({a = null}, "a", 1)"#, json!(null));
    t.err(
        r#"lookup({a = "ay", b = "bee"}, "c")"#,
        "key \"c\" not found in the map (known keys: \"a\", \"b\"); add it or pass a default as the third argument",
    );
    t.err(r#"lookup({}, "c")"#, "(the map is empty)");
    t.err(
        r#"lookup({name = 1, image = 2}, "nmae")"#,
        "key \"nmae\" not found in the map; did you mean \"name\"? (or pass a default as the third argument)",
    );
    t.err(
        r#"lookup(["a"], "a")"#,
        "`map` must be a map, found a list of 1 element",
    );
    t.err(
        r#"lookup({}, "a", 1, 2)"#,
        "expected 2 or 3 arguments, found 4; usage: `lookup(map, key, [default])`",
    );

    t.ok(
        r#"concat(["a", ""], ["b", "c"])"#,
        json!(["a", "", "b", "c"]),
    );
    t.ok(r#"concat([])"#, json!([]));
    t.ok(r#"concat([1], [[2]])"#, json!([1, [2]]));
    t.err(
        r#"concat(["a"], "b")"#,
        "argument 2 (`lists`) must be a list, found string \"b\"",
    );
    t.err(r#"concat()"#, "expected at least 1 argument, found 0");

    t.ok(r#"toset(["c", "b", "b", "a"])"#, json!(["a", "b", "c"]));
    t.ok(r#"toset([3, 1, 2, 1])"#, json!([1, 2, 3]));
    t.ok(r#"toset(["a", 1, true])"#, json!(["1", "a", "true"]));
    t.ok(r#"toset([])"#, json!([]));
    t.ok(r#"toset(null)"#, json!(null));
    t.err(
        r#"toset({a = 1})"#,
        "`value` must be a list, found a map of 1 element",
    );
    t.err(r#"toset(["a", null])"#, "element 1 of `value` is null");
    t.err(r#"toset([1, true])"#, "cannot mix numbers and bools");

    t.ok(r#"tolist(["a", "b", "c"])"#, json!(["a", "b", "c"]));
    t.ok(r#"tolist(["a", 1])"#, json!(["a", "1"]));
    t.ok(r#"tolist(null)"#, json!(null));
    t.err(
        r#"tolist("a")"#,
        "`value` must be a list, found string \"a\"",
    );

    t.ok(r#"tomap({a = 1, b = "x"})"#, json!({"a": "1", "b": "x"}));
    t.ok(r#"tomap({a = [1]})"#, json!({"a": [1]}));
    t.err(
        r#"tomap([1])"#,
        "`value` must be a map, found a list of 1 element",
    );

    t.ok(
        r#"merge({a = "b", c = "d"}, {e = "f", c = "z"})"#,
        json!({"a": "b", "c": "z", "e": "f"}),
    );
    t.ok(r#"merge()"#, json!({}));
    t.ok(r#"merge({a = 1}, null)"#, json!({"a": 1}));
    t.err(
        r#"merge({a = 1}, [1])"#,
        "argument 2 (`maps`) must be a map, found a list of 1 element",
    );

    t.ok(r#"keys({b = 1, a = 2, c = 3})"#, json!(["a", "b", "c"]));
    t.ok(r#"keys({})"#, json!([]));
    t.err(r#"keys(["a"])"#, "`map` must be a map");
    t.ok(r#"values({b = 1, a = 2, c = 3})"#, json!([2, 1, 3]));
    t.ok(r#"values({})"#, json!([]));
    t.err(r#"values("a")"#, "`map` must be a map");

    t.ok(r#"contains(["a", "b", "c"], "a")"#, json!(true));
    t.ok(r#"contains(["a", "b", "c"], "d")"#, json!(false));
    t.ok(r#"contains(["80", "443"], 80)"#, json!(true));
    t.ok(r#"contains([[1]], [1])"#, json!(true));
    t.err(
        r#"contains({a = 1}, "a")"#,
        "`list` must be a list, found a map of 1 element",
    );

    t.ok(r#"index(["a", "b", "c"], "b")"#, json!(1));
    t.err(
        r#"index(["a"], "z")"#,
        "string \"z\" is not in the list of 1 element",
    );

    t.ok(r#"element(["a", "b", "c"], 1)"#, json!("b"));
    t.ok(r#"element(["a", "b", "c"], 3)"#, json!("a"));
    t.ok(
        r#"element(["a", "b", "c"], 9223372036854775807)"#,
        json!("b"),
    );
    t.err(
        r#"element([], 0)"#,
        "`list` is empty; there is no element to pick",
    );
    t.err(
        r#"element(["a"], -1)"#,
        "`index` must not be negative, found -1",
    );
    t.err(
        r#"element(["a"], 1.5)"#,
        "`index` must be a whole number, found 1.5",
    );

    t.ok(
        r#"distinct(["a", "b", "a", "c", "d", "b"])"#,
        json!(["a", "b", "c", "d"]),
    );
    t.ok(
        r#"distinct([{a = 1}, {a = 1}, 1, "1"])"#,
        json!([{"a": 1}, 1, "1"]),
    );
    t.err(r#"distinct("a")"#, "`list` must be a list");

    t.ok(
        r#"flatten([["a", "b"], [], ["c"], [["d"]], "e"])"#,
        json!(["a", "b", "c", "d", "e"]),
    );
    t.ok(r#"flatten([])"#, json!([]));
    t.err(r#"flatten({})"#, "`list` must be a list");

    t.ok(r#"coalesce("", "b", "c")"#, json!("b"));
    t.ok(r#"coalesce(null, 1, 2)"#, json!(1));
    t.err(
        r#"coalesce(null, "")"#,
        "every argument is null or an empty string",
    );

    t.ok(
        r#"compact(["a", "", "b", null, "c"])"#,
        json!(["a", "b", "c"]),
    );
    t.ok(r#"compact([1, ""])"#, json!(["1"]));
    t.err(
        r#"compact([[]])"#,
        "element 0 of `list` must be a string, found a list of 0 elements",
    );

    t.ok(r#"sort(["e", "d", "a", "x"])"#, json!(["a", "d", "e", "x"]));
    t.ok(r#"sort([3, 10, 2])"#, json!(["10", "2", "3"]));
    t.err(r#"sort([null])"#, "element 0 of `list` must not be null");

    t.ok(r#"reverse([1, 2, 3])"#, json!([3, 2, 1]));
    t.ok(r#"reverse([])"#, json!([]));
    t.err(r#"reverse("abc")"#, "`list` must be a list");

    t.ok(r#"slice(["a", "b", "c", "d"], 1, 3)"#, json!(["b", "c"]));
    t.ok(r#"slice(["a"], 1, 1)"#, json!([]));
    t.err(
        r#"slice(["a", "b"], 1, 3)"#,
        "`end` 3 is past the end of the list of 2 elements",
    );
    t.err(
        r#"slice(["a", "b"], 2, 1)"#,
        "`start` 2 is greater than `end` 1",
    );
    t.err(
        r#"slice(["a", "b"], -1, 1)"#,
        "`start` must not be negative, found -1",
    );

    t.ok(
        r#"setunion(["a", "b"], ["b", "c"], ["d"])"#,
        json!(["a", "b", "c", "d"]),
    );
    t.ok(r#"setunion([2], [1, 2])"#, json!([1, 2]));
    t.err(
        r#"setunion(["a"], "b")"#,
        "argument 2 (`sets`) must be a list",
    );
    t.ok(
        r#"setintersection(["a", "b"], ["b", "c"], ["b", "d"])"#,
        json!(["b"]),
    );
    t.ok(r#"setintersection(["a"], [])"#, json!([]));
    t.err(
        r#"setintersection(["a"], [null])"#,
        "element 0 of argument 2 (`sets`) is null",
    );
    t.ok(r#"setsubtract(["a", "b", "c"], ["a", "c"])"#, json!(["b"]));
    t.err(r#"setsubtract(["a"], 1)"#, "`b` must be a list");

    t.ok(r#"alltrue(["true", true])"#, json!(true));
    t.ok(r#"alltrue([true, false])"#, json!(false));
    t.ok(r#"alltrue([])"#, json!(true));
    t.err(
        r#"alltrue([1])"#,
        "element 0 of `list` must be a bool, found number `1`",
    );
    t.ok(r#"anytrue([false, true])"#, json!(true));
    t.ok(r#"anytrue([])"#, json!(false));
    t.err(r#"anytrue("true")"#, "`list` must be a list");

    t.ok(r#"one([])"#, json!(null));
    t.ok(r#"one(["hello"])"#, json!("hello"));
    t.err(
        r#"one(["a", "b"])"#,
        "`list` must have at most one element, found 2",
    );

    t.ok(
        r#"chunklist(["a", "b", "c", "d", "e"], 2)"#,
        json!([["a", "b"], ["c", "d"], ["e"]]),
    );
    t.ok(r#"chunklist(["a", "b"], 0)"#, json!([["a", "b"]]));
    t.ok(r#"chunklist([], 3)"#, json!([]));
    t.err(
        r#"chunklist(["a"], -1)"#,
        "`size` must not be negative, found -1",
    );

    t.ok(r#"zipmap(["a", "b"], [1, 2])"#, json!({"a": 1, "b": 2}));
    t.ok(r#"zipmap(["a", "a"], [1, 2])"#, json!({"a": 2}));
    t.err(
        r#"zipmap(["a"], [1, 2])"#,
        "`keys` has 1 element but `values` has 2 elements; they must have the same length",
    );
    t.err(
        r#"zipmap([[]], [1])"#,
        "element 0 of `keys` must be a string",
    );
    t.finish();
}

#[test]
fn numeric_functions() {
    let mut t = Table::default();
    t.ok(r#"range(3)"#, json!([0, 1, 2]));
    t.ok(r#"range(1, 4)"#, json!([1, 2, 3]));
    t.ok(r#"range(1, 8, 2)"#, json!([1, 3, 5, 7]));
    t.ok(r#"range(1, 4, 0.5)"#, json!([1, 1.5, 2, 2.5, 3, 3.5]));
    t.ok(r#"range(4, 1)"#, json!([4, 3, 2]));
    t.ok(r#"range(10, 5, -2)"#, json!([10, 8, 6]));
    t.ok(r#"range(0)"#, json!([]));
    t.ok(r#"range(-3)"#, json!([0, -1, -2]));
    t.ok(r#"length(range(1024000))"#, json!(1024000));
    t.err(
        r#"range(1024001)"#,
        "the range would have more than 1024000 elements",
    );
    t.err(
        r#"range(-9223372036854775808, 9223372036854775807)"#,
        "more than 1024000 elements",
    );
    t.err(r#"range(0, 1e300, 1e-300)"#, "more than 1024000 elements");
    t.err(r#"range(1, 4, 0)"#, "`step` must not be zero");
    t.err(
        r#"range(1, 4, -1)"#,
        "`limit` 4 is greater than `start` 1 but the step is negative",
    );
    t.err(
        r#"range(4, 1, 1)"#,
        "`limit` 1 is less than `start` 4 but the step is positive",
    );
    t.err(
        r#"range("a")"#,
        "`limit` must be a number, found string \"a\"",
    );
    t.err(r#"range()"#, "expected 1 to 3 arguments, found 0");

    t.ok(r#"min(12, 54, 3)"#, json!(3));
    t.ok(r#"min(1.5, -2)"#, json!(-2));
    t.ok(r#"min([12, 54, 3]...)"#, json!(3));
    t.err(r#"min()"#, "expected at least 1 argument, found 0");
    t.err(
        r#"min([1, 2])"#,
        "expand a list into arguments with `...`, as in `min(list...)`",
    );
    t.err(
        r#"min(1, "x")"#,
        "argument 2 (`numbers`) must be a number, found string \"x\"",
    );
    t.ok(r#"max(12, 54, 3)"#, json!(54));
    t.ok(r#"max("7", 3)"#, json!(7));
    t.err(
        r#"max([1])"#,
        "must be a number, found a list of 1 element; expand a list into arguments with `...`, as in `max(list...)`",
    );

    t.ok(r#"abs(-12.5)"#, json!(12.5));
    t.ok(
        r#"abs(-9223372036854775808)"#,
        json!(9223372036854775808u64),
    );
    t.ok(r#"abs(3)"#, json!(3));
    t.err(r#"abs("x")"#, "`number` must be a number");
    t.ok(r#"ceil(4.1)"#, json!(5));
    t.err(r#"ceil([])"#, "must be a number");
    t.ok(r#"floor(-4.1)"#, json!(-5));
    t.err(r#"floor(null)"#, "must not be null");
    t.ok(r#"sum([1, 2, 3.5])"#, json!(6.5));
    t.ok(
        r#"sum([9223372036854775807, 9223372036854775807, -9223372036854775807])"#,
        json!(9223372036854775807i64),
    );
    t.err(r#"sum([])"#, "`list` is empty; there is nothing to sum");
    t.err(r#"sum(["a"])"#, "element 0 of `list` must be a number");

    t.ok(r#"tonumber("42")"#, json!(42));
    t.ok(r#"tonumber("-1.5")"#, json!(-1.5));
    t.ok(r#"tonumber(7)"#, json!(7));
    t.ok(r#"tonumber(null)"#, json!(null));
    t.err(r#"tonumber("no")"#, "cannot convert \"no\" to a number");
    t.err(r#"tonumber("inf")"#, "cannot convert \"inf\" to a number");
    t.err(
        r#"tonumber(true)"#,
        "cannot convert bool `true` to a number",
    );
    t.finish();
}

#[test]
fn encoding_functions() {
    let mut t = Table::default();
    t.ok(
        r#"jsonencode({"hello" = "world"})"#,
        json!("{\"hello\":\"world\"}"),
    );
    t.ok(
        r#"jsonencode({b = [1, true, null], a = 1.5})"#,
        json!("{\"a\":1.5,\"b\":[1,true,null]}"),
    );
    t.ok(r#"jsonencode("x")"#, json!("\"x\""));
    t.err(r#"jsonencode()"#, "expected 1 argument, found 0");
    t.ok(
        r#"jsondecode("{\"hello\": \"world\"}")"#,
        json!({"hello": "world"}),
    );
    t.ok(r#"jsondecode("true")"#, json!(true));
    t.ok(r#"jsondecode("[1, 2.5, null]")"#, json!([1, 2.5, null]));
    t.err(r#"jsondecode("{")"#, "`string` is not valid json");
    t.err(r#"jsondecode("1e400")"#, "is not valid json");
    t.err(r#"jsondecode([])"#, "`string` must be a string");
    t.ok(r#"base64encode("Hello World")"#, json!("SGVsbG8gV29ybGQ="));
    t.ok(r#"base64encode("")"#, json!(""));
    t.ok(r#"base64encode("ab")"#, json!("YWI="));
    t.err(
        r#"base64encode({})"#,
        "`string` must be a string, found a map of 0 elements",
    );
    t.ok(r#"base64decode("SGVsbG8gV29ybGQ=")"#, json!("Hello World"));
    t.ok(r#"base64decode("YWI=")"#, json!("ab"));
    t.ok(r#"base64decode(base64encode("ü€😀"))"#, json!("ü€😀"));
    t.err(
        r#"base64decode("YWI")"#,
        "`string` is not valid base64: its length 3 is not a multiple of 4",
    );
    t.err(r#"base64decode("YW!=")"#, "invalid character at offset 2");
    t.err(
        r#"base64decode("/w==")"#,
        "decodes to bytes that are not utf-8 text",
    );
    t.ok(
        r#"sha256("hello world")"#,
        json!("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
    );
    t.err(r#"sha256([])"#, "`string` must be a string");

    t.ok(r#"tostring("hello")"#, json!("hello"));
    t.ok(r#"tostring(1.5)"#, json!("1.5"));
    t.ok(r#"tostring(true)"#, json!("true"));
    t.ok(r#"tostring(null)"#, json!(null));
    t.err(
        r#"tostring([])"#,
        "cannot convert a list of 0 elements to a string; use `jsonencode`",
    );
    t.finish();
}

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
            json!(super::encoding::sha256_hex(
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
fn string_results_are_bounded() {
    let mut t = Table::default();
    t.err(
        r#"indent(10000, join("\n", range(10000)))"#,
        "the result would be larger than 64 MiB",
    );
    t.err(
        r#"join(format("%10000s", ""), range(10000))"#,
        "the result would be larger than 64 MiB",
    );
    t.err(
        r#"replace(join("", range(20000)), "1", format("%10000s", ""))"#,
        "the result would be larger than 64 MiB",
    );
    t.err(
        r#"formatlist("%10000s", range(10000))"#,
        "the result would be larger than 64 MiB",
    );
    t.ok(r#"length(format("%10000s", ""))"#, json!(10000));
    t.finish();
}

#[test]
fn file_refuses_special_files() {
    let err = eval(r#"file("/dev/zero")"#).expect_err("reading /dev/zero must fail");
    assert!(err.contains("it is not a regular file"), "{err}");
}

#[test]
fn names_are_sorted_and_match_the_library() {
    let mut sorted = NAMES.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, NAMES, "NAMES must be sorted without duplicates");
    let mut declared: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
    declared.sort_unstable();
    assert_eq!(
        declared, NAMES,
        "NAMES must list exactly the declared functions"
    );
    for required in [
        "cidrhost",
        "cidrsubnet",
        "format",
        "join",
        "length",
        "lookup",
        "concat",
        "toset",
        "tolist",
        "file",
        "env",
        "upper",
        "lower",
        "range",
        "merge",
        "keys",
        "values",
        "contains",
        "element",
    ] {
        assert!(NAMES.contains(&required), "{required} is missing");
    }
}

#[test]
fn signatures_name_the_function() {
    assert_eq!(signature("cidrhost"), Some("cidrhost(prefix, hostnum)"));
    assert_eq!(signature("nope"), None);
    for name in NAMES {
        let sig = signature(name).unwrap_or_default();
        assert!(
            sig.starts_with(&format!("{name}(")) && sig.ends_with(')'),
            "{sig}"
        );
    }
}

#[test]
fn unknown_function_is_not_declared() {
    let err = eval(r#"cidrhots("10.0.0.0/24", 1)"#).expect_err("undeclared");
    assert!(err.contains("cidrhots"), "{err}");
}

/// Every function with every combination of up to three edge values: the
/// deterministic complement of the property test below.
#[test]
fn edge_value_grid_never_panics() {
    let pool: Vec<Value> = vec![
        Value::from(i64::MIN),
        Value::from(i64::MAX),
        Value::from(u64::MAX),
        Value::from(-1),
        Value::from(0),
        Value::from(1),
        Value::from(33),
        Value::Number(hcl::Number::from_f64(1.5).unwrap_or(hcl::Number::from(0))),
        Value::Number(hcl::Number::from_f64(-1e300).unwrap_or(hcl::Number::from(0))),
        Value::from("10.0.0.0/24"),
        Value::from("::/0"),
        Value::from("%d%s%[2]v"),
        Value::from(""),
        Value::from("x"),
        Value::Null,
        Value::Bool(true),
        Value::Array(vec![]),
        Value::Array(vec![Value::from("a"), Value::from(1)]),
        Value::Object([("a".to_string(), Value::from(1))].into_iter().collect()),
    ];
    let mut ctx = Context::new();
    declare_all(&mut ctx);
    let mut combos: Vec<Vec<Value>> = vec![vec![]];
    let mut layer: Vec<Vec<Value>> = vec![vec![]];
    for _ in 0..3 {
        layer = layer
            .iter()
            .flat_map(|prefix| {
                pool.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect();
        combos.extend(layer.iter().cloned());
    }
    ctx.declare_var(HOST_VAR, host(&std::env::temp_dir()));
    {
        for spec in SPECS {
            for args in &combos {
                let call = FuncCall {
                    name: spec.name.into(),
                    args: host_arg(spec.name)
                        .into_iter()
                        .chain(args.iter().cloned().map(Expression::from))
                        .collect(),
                    expand_final: false,
                };
                let result = Expression::from(call).evaluate(&ctx);
                if let Err(e) = result {
                    if let ErrorKind::FuncCall(_, msg) = e.kind() {
                        assert!(
                            style_problem(msg).is_none(),
                            "{}{args:?}: {msg:?}",
                            spec.name
                        );
                    }
                }
            }
        }
    }
}

/// The host argument `bind_host` gives a call of `name`, if it takes one.
fn host_arg(name: &str) -> Option<Expression> {
    HOST_FUNCTIONS
        .contains(&name)
        .then(|| Expression::Variable(hcl::Identifier::unchecked(HOST_VAR).into()))
}

mod no_panics {
    use proptest::prelude::*;

    use super::*;

    /// Numbers at the edges of every integer and float range, and the small
    /// ones prefix lengths and indexes use.
    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-300i64..300).prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| hcl::Number::from_f64(f).map(Value::Number)),
            prop::sample::select(vec![
                Value::from(i64::MIN),
                Value::from(i64::MAX),
                Value::from(u64::MAX),
                Value::from(-1),
                Value::from(0),
                Value::from(1),
                Value::from(32),
                Value::from(64),
                Value::from(128),
                Value::from(256),
                Value::from(1_024_001),
                Value::Number(hcl::Number::from_f64(1e300).unwrap_or(hcl::Number::from(0))),
                Value::Number(hcl::Number::from_f64(-0.5).unwrap_or(hcl::Number::from(0))),
            ]),
        ]
    }

    /// Strings that look like what functions parse, and random ones.
    fn string() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => prop::sample::select(vec![
                "10.0.0.0/24",
                "0.0.0.0/0",
                "::/0",
                "fd00::/8",
                "255.255.255.255/32",
                "::1/128",
                "%d %s %v %[3]q %-08.3f %#x %g %e %%",
                "%[99999]d %9999999999999999999d %.",
                "%+.3e %G %10.4g %b %o %X %t",
                "12",
                "-1.5e300",
                "nan",
                "",
                "~",
                "/dev/null",
                "{\"a\": [1, 2.5, null]}",
            ])
            .prop_map(str::to_string),
            1 => "[a-z%0-9./:\\[\\] -]{0,24}",
            1 => any::<String>(),
        ]
        .prop_map(Value::String)
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            1 => Just(Value::Null),
            1 => any::<bool>().prop_map(Value::Bool),
            4 => number(),
            4 => string(),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-c]{1,2}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Every function gets the same random arguments, so each case
        /// exercises the whole library.
        #[test]
        fn no_function_panics(args in prop::collection::vec(value(), 0..5)) {
            let mut ctx = Context::new();
            declare_all(&mut ctx);
            ctx.declare_var(HOST_VAR, host(&std::env::temp_dir()));
            for spec in SPECS {
                let mut call = FuncCall::builder(spec.name);
                if let Some(h) = host_arg(spec.name) {
                    call = call.arg(h);
                }
                for arg in &args {
                    call = call.arg(Expression::from(arg.clone()));
                }
                let expr = Expression::from(call.build());
                let result = expr.evaluate(&ctx);
                if let Err(e) = result {
                    if let ErrorKind::FuncCall(_, msg) = e.kind() {
                        prop_assert!(style_problem(msg).is_none(), "{}: {msg:?}", spec.name);
                    }
                }
            }
        }
    }
}
