//! Cases of the collection functions (lists, maps, sets).

use super::*;

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
