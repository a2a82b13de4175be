//! Cases of the encoding functions.

use super::*;

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
