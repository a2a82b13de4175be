//! Cases of the numeric functions.

use super::*;

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
