//! Variables: values from defaults, `TG_VAR_*`, `-var-file` and `-var` (in that
//! precedence), type conversion and `validation` blocks.

use super::*;

impl Evaluator<'_> {
    pub(super) fn eval_variables(&mut self) {
        self.eval_variables_only(None);
    }

    /// Evaluate the variables (those in `only`, when given: the settings
    /// need a few). Precedence: default < `TG_VAR_name` < `-var-file` < `-var`.
    pub(super) fn eval_variables_only(&mut self, only: Option<&HashSet<String>>) {
        let blocks = self.blocks;
        let empty = IndexMap::new();
        let all = self.decl.of("variable").unwrap_or(&empty);
        let decls: IndexMap<String, usize> = all
            .iter()
            .filter(|(n, _)| only.is_none_or(|o| o.contains(*n)))
            .map(|(n, &bi)| (n.clone(), bi))
            .collect();
        // name -> (raw value, where it came from)
        let mut values: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (k, v) in self.opts.env.vars() {
            if let Some(name) = k.strip_prefix("TG_VAR_") {
                if decls.contains_key(name) {
                    values.insert(
                        name.to_string(),
                        (v.to_string(), format!("environment variable `{k}`")),
                    );
                }
            }
        }
        let mut file_values: BTreeMap<String, (Value, Span)> = BTreeMap::new();
        self.var_file_values(all, only, &mut file_values);
        let mut cli_values: BTreeMap<String, String> = BTreeMap::new();
        for raw in &self.opts.vars {
            let Some((name, value)) = raw.split_once('=') else {
                self.err(
                    Diagnostic::error(format!("invalid `-var {raw}`: expected NAME=VALUE"))
                        .help("write `-var edge_count=3`"),
                );
                continue;
            };
            let name = name.trim();
            if only.is_some_and(|o| !o.contains(name)) && all.contains_key(name) {
                continue;
            }
            if !decls.contains_key(name) {
                let mut d = Diagnostic::error(format!(
                    "`-var {name}=...`: no variable `{name}` is declared"
                ));
                d = match did_you_mean(name, all.keys().map(String::as_str)) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("declare it with a `variable` block"),
                };
                self.err(d);
                continue;
            }
            cli_values.insert(name.to_string(), value.to_string());
        }
        for (name, &bi) in &decls {
            self.open_value(format!("var.{name}"));
            let b = &blocks[bi];
            let ty = match b.attr("type") {
                Some(a) => types::parse_type(&a.expr).unwrap_or(VarType::Any),
                None => VarType::Any,
            };
            if self.eval_bool(b, "sensitive", &Repetition::default()) == Some(true) {
                self.sensitive_vars.insert(name.clone());
            }
            // Where a wrong value is pointed at: the value in a variable
            // file or the default; else (`-var`, `TG_VAR_`) the block.
            let mut value_span: Option<Span> = None;
            let (value, origin): (Option<Value>, String) = if let Some(raw) = cli_values.get(name) {
                self.var_raw.insert(name.clone(), raw.clone());
                (Some(raw_value(raw, &ty)), format!("`-var {name}=...`"))
            } else if let Some((v, span)) = file_values.get(name) {
                self.var_raw.insert(name.clone(), v.to_string());
                value_span = Some(span.clone());
                (Some(v.clone()), "a variable file".to_string())
            } else if let Some((raw, origin)) = values.get(name) {
                self.var_raw.insert(name.clone(), raw.clone());
                (Some(raw_value(raw, &ty)), origin.clone())
            } else if let Some(a) = b.attr("default").cloned() {
                (
                    self.eval(&a, &Repetition::default()),
                    "its default".to_string(),
                )
            } else {
                self.err(
                    Diagnostic::error(format!("variable `{name}` has no value"))
                        .at(b.span.clone())
                        .help(format!(
                            "set it with `-var {name}=...`, in a `-var-file`, with `TG_VAR_{name}`, or give it a `default`"
                        )),
                );
                continue;
            };
            let Some(value) = value else { continue };
            match types::convert(value, &ty) {
                Ok(v) => {
                    self.var_values.insert(name.clone(), v);
                }
                Err(why) => {
                    let at = value_span.clone().unwrap_or_else(|| {
                        b.attr("default")
                            .filter(|_| origin == "its default")
                            .map(|a| a.expr_span.clone())
                            .unwrap_or(b.span.clone())
                    });
                    // `why` quotes the value: never for a sensitive one.
                    let why = if self.sensitive_vars.contains(name) {
                        format!("it is not a {ty} (the value is sensitive: not shown)")
                    } else {
                        why
                    };
                    self.err(
                        Diagnostic::error(format!(
                            "invalid value for variable `{name}` (from {origin}): {why}"
                        ))
                        .at(at)
                        .help(format!("the variable's type is {ty}")),
                    );
                }
            }
        }
        self.close_value();
        // Validations see every variable (a failed one is skipped).
        for (name, &bi) in &decls {
            self.open_value(format!("var.{name}"));
            for v in blocks[bi].blocks_of("validation") {
                let (Some(cond), Some(msg)) = (v.attr("condition"), v.attr("error_message")) else {
                    continue;
                };
                let (cond, msg) = (cond.clone(), msg.clone());
                let Some(ok) = self.eval(&cond, &Repetition::default()) else {
                    continue;
                };
                match ok {
                    Value::Bool(true) => {}
                    Value::Bool(false) => {
                        let text = self
                            .eval(&msg, &Repetition::default())
                            .and_then(|m| m.as_str().map(str::to_string))
                            .unwrap_or_else(|| "the validation failed".into());
                        let shown = if self.sensitive_vars.contains(name) {
                            "(sensitive value)".to_string()
                        } else {
                            self.var_values
                                .get(name)
                                .map(|v| v.to_string())
                                .unwrap_or_default()
                        };
                        self.err(
                            Diagnostic::error(format!(
                                "invalid value for variable `{name}`: {text}"
                            ))
                            .at(cond.expr_span.clone())
                            .detail(format!("the value is {shown}"))
                            .help("change the value, or the validation's condition"),
                        );
                    }
                    other => self.err(
                        Diagnostic::error(format!(
                            "a validation `condition` must be true or false, found {}",
                            types::describe(&other)
                        ))
                        .at(cond.expr_span.clone()),
                    ),
                }
            }
        }
        self.close_value();
    }

    /// The values of the variable files, in command-line order (a later
    /// file wins): each entry checked (declared, constant) and evaluated.
    fn var_file_values(
        &mut self,
        decls: &IndexMap<String, usize>,
        only: Option<&HashSet<String>>,
        out: &mut BTreeMap<String, (Value, Span)>,
    ) {
        let parsed = self.parsed;
        for file in &parsed.var_files {
            self.diags.extend(file.problems.clone());
            for a in &file.attrs {
                let name = &a.name;
                if !decls.contains_key(name) {
                    let mut d = Diagnostic::warning(format!(
                        "`{name}` is set but no variable `{name}` is declared"
                    ))
                    .at(a.span.clone());
                    if let Some(s) = did_you_mean(name, decls.keys().map(String::as_str)) {
                        d = d.help(format!("did you mean `{s}`?"));
                    }
                    self.err(d);
                    continue;
                }
                if only.is_some_and(|o| !o.contains(name)) {
                    continue;
                }
                let found = refs::scan(a.expr_span.file, &a.expr);
                if let Some(r) = found.refs.first() {
                    self.err(
                        Diagnostic::error("variable files hold constant values")
                            .at(r.span.clone())
                            .help("write the value itself, such as `edge_count = 3`"),
                    );
                    continue;
                }
                if let Some(v) = self.eval(a, &Repetition::default()) {
                    out.insert(name.clone(), (v, a.expr_span.clone()));
                }
            }
        }
    }
}

/// A value from the command line or environment: strings stay strings for
/// `string` variables; anything else is parsed as an HCL expression.
pub(super) fn raw_value(raw: &str, ty: &VarType) -> Value {
    if matches!(ty, VarType::String) {
        return Value::from(raw);
    }
    match hcl_edit::parser::parse_expr(raw) {
        Ok(mut e) => {
            let found = refs::scan(crate::diagnostics::FileId(0), &e);
            if !found.is_static() {
                return Value::from(raw);
            }
            let mut ctx = hcl::eval::Context::new();
            if found.arith {
                checked::rewrite(&mut e);
                checked::declare(&mut ctx);
            }
            hcl::Expression::from(e)
                .evaluate(&ctx)
                .unwrap_or_else(|_| Value::from(raw))
        }
        Err(_) => Value::from(raw),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::{check, check_with, options};

    const BED: &str = "variable \"n\" {\n  type    = number\n  default = 1\n}\noutput \"n\" {\n  value = var.n\n}\n";

    #[test]
    fn precedence_from_the_callers_environment() {
        check(BED, "n = 1");
        let mut opts = options();
        opts.env = opts.env.with_var("TG_VAR_n", "2");
        check_with(&opts, BED, "n = 2");
        opts.vars = vec!["n=3".into()];
        check_with(&opts, BED, "n = 3");
        opts.vars = vec!["n=x".into()];
        check_with(&opts, BED, "1:1: error: invalid value for variable `n` (from `-var n=...`): expected a number, found string \"x\"");
        opts.vars = vec!["m=1".into()];
        check_with(
            &opts,
            BED,
            "error: `-var m=...`: no variable `m` is declared",
        );
    }

    #[test]
    fn types_validations_and_sensitive_values() {
        check("variable \"s\" {\n  type = list(string)\n  default = [1, true]\n}\noutput \"s\" {\n  value = var.s\n}\n", r#"s = ["1","true"]"#);
        check(
            "variable \"v\" {}\n",
            "1:1: error: variable `v` has no value",
        );
        check(
            "variable \"v\" {\n  default = 0\n  validation {\n    condition     = var.v > 0\n    error_message = \"v must be positive\"\n  }\n}\n",
            "4:21: error: invalid value for variable `v`: v must be positive",
        );
        check(
            "variable \"pw\" {\n  type      = number\n  default   = \"hunter2\"\n  sensitive = true\n}\n",
            "3:15: error: invalid value for variable `pw` (from its default): it is not a number (the value is sensitive: not shown)",
        );
    }
}
