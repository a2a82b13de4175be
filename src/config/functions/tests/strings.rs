//! Cases of the string functions, `format` among them, and the bound on
//! the strings they return.

use super::*;

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
