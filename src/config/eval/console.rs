//! `tg console`: one expression at a time against an evaluated testbed.
//!
//! [`Console`] keeps the evaluator that made the testbed, so an expression
//! sees what the testbed's own expressions see (`var`, `local`, `network`,
//! `node`, `package`, every function) plus `output.NAME`, and is
//! evaluated the same way: checked arithmetic, the fuel limit, the host
//! functions bound to the caller. A value that derives from a sensitive
//! variable (or a sensitive output) is reported as sensitive, not shown.
//! Errors are one line each; nothing here prints.

use super::*;
use crate::config::model::Testbed;

/// The roots a console expression may start from.
const ROOTS: &[&str] = &["var", "local", "network", "node", "package", "output"];

/// One expression's value.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleValue {
    pub value: serde_json::Value,
    /// It derives from a sensitive variable or output: show it hidden.
    pub sensitive: bool,
}

/// An evaluated testbed, ready for expressions.
pub struct Console<'p> {
    ev: Evaluator<'p>,
    testbed: Testbed,
}

impl<'p> Console<'p> {
    pub(crate) fn new(mut ev: Evaluator<'p>) -> Result<(Console<'p>, Diagnostics), Diagnostics> {
        let testbed = ev.run_stages()?;
        let warnings = std::mem::take(&mut ev.diags);
        Ok((Console { ev, testbed }, warnings))
    }

    /// The testbed the expressions see.
    pub fn testbed(&self) -> &Testbed {
        &self.testbed
    }

    /// Evaluate one expression (`cidrhost(network.lab.cidr, 5)`).
    pub fn eval(&mut self, line: &str) -> Result<ConsoleValue, String> {
        let expr = hcl_edit::parser::parse_expr(line).map_err(|e| {
            format!(
                "syntax error at column {}: {}",
                e.location().column(),
                e.message().trim()
            )
        })?;
        let found = refs::scan(crate::diagnostics::FileId(0), &expr);
        for r in &found.refs {
            if !ROOTS.contains(&r.root.as_str()) {
                let hint = match did_you_mean(&r.root, ROOTS.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "expected one of {}",
                        ROOTS
                            .iter()
                            .map(|r| format!("`{r}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err(format!("unknown reference `{}`: {hint}", r.root));
            }
            if let Some(name) = &r.name {
                if let Some((what, known)) = self.unknown(&r.root, name) {
                    return Err(format!(
                        "unknown {what} `{name}`: the testbed declares {}",
                        self.names(&known)
                    ));
                }
            }
        }
        for call in &found.calls {
            if !functions::NAMES.contains(&call.name.as_str()) {
                let hint = match did_you_mean(&call.name, functions::NAMES.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "see the list of functions in docs/language.md".to_string(),
                };
                return Err(format!("unknown function `{}`: {hint}", call.name));
            }
        }
        let sensitive = self.ev.is_sensitive(&expr)
            || found.refs.iter().any(|r| {
                r.root == "output"
                    && r.name
                        .as_ref()
                        .and_then(|n| self.testbed.outputs.get(n))
                        .is_some_and(|o| o.sensitive)
            });

        let (edit_expr, fueled, host, _tank) = self.ev.prepare(expr, &found);
        let mut ctx = hcl::eval::Context::new();
        for root in ROOTS {
            if !found.refs.iter().any(|r| r.root == *root) {
                continue;
            }
            let m = match *root {
                "var" => self.ev.var_values.clone(),
                "local" => self.ev.local_values.clone(),
                "network" => {
                    self.ev
                        .referenced_values(&found.refs, "network", Evaluator::network_value)
                }
                "node" => self
                    .ev
                    .referenced_values(&found.refs, "node", Evaluator::node_value),
                "package" => self.ev.package_values.clone(),
                _ => self
                    .testbed
                    .outputs
                    .iter()
                    .map(|(k, o)| (k.clone(), json_to_hcl(&o.value)))
                    .collect(),
            };
            ctx.declare_var(*root, Value::Object(m));
        }
        functions::declare_some(&mut ctx, found.calls.iter().map(|c| c.name.as_str()));
        if found.arith {
            checked::declare(&mut ctx);
        }
        if fueled {
            crate::config::fuel::declare(&mut ctx);
        }
        if host {
            ctx.declare_var(functions::HOST_VAR, self.ev.host.clone());
        }
        let hcl_expr = hcl::Expression::from(edit_expr);
        match hcl_expr.evaluate(&ctx) {
            Ok(v) => Ok(ConsoleValue {
                value: to_json(&v),
                sensitive,
            }),
            Err(e) => {
                let a = RawAttr {
                    name: "expression".into(),
                    expr: hcl_edit::expr::Expression::null(),
                    span: Span::new(crate::diagnostics::FileId(0), 0..0),
                    expr_span: Span::new(crate::diagnostics::FileId(0), 0..0),
                };
                let d = expressions::eval_error(&a, &e, sensitive);
                Err(match d.help {
                    Some(h) => format!("{}: {h}", d.summary),
                    None => d.summary,
                })
            }
        }
    }

    /// What `root.name` would be and the names there are, when there is
    /// no such thing.
    fn unknown(&self, root: &str, name: &str) -> Option<(&'static str, Vec<String>)> {
        let (what, known): (&'static str, Vec<String>) = match root {
            "var" => ("variable", self.ev.var_values.keys().cloned().collect()),
            "local" => (
                "local value",
                self.ev.local_values.keys().cloned().collect(),
            ),
            "output" => ("output", self.testbed.outputs.keys().cloned().collect()),
            "network" => ("network", self.ev.decl.names_of("network")),
            "package" => ("package", self.ev.decl.names_of("package")),
            _ => {
                let mut nodes = self.ev.decl.names_of("node");
                nodes.extend(
                    self.ev
                        .decl
                        .names_of("package")
                        .iter()
                        .map(|p| implicit_node_name(p)),
                );
                ("node", nodes)
            }
        };
        (!known.iter().any(|k| k == name)).then_some((what, known))
    }

    fn names(&self, names: &[String]) -> String {
        if names.is_empty() {
            "none".to_string()
        } else {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// A JSON value as an HCL value.
fn json_to_hcl(v: &serde_json::Value) -> Value {
    serde_json::from_value(v.clone()).unwrap_or(Value::Null)
}
