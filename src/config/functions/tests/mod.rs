//! Data-driven tests: one line per case, an expression in the testbed
//! language and the JSON it must evaluate to (or a fragment of the error it
//! must fail with), plus a property test that no argument makes any
//! function panic.

mod cidr;
mod collections;
mod encoding;
mod numeric;
mod strings;
mod system;

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
