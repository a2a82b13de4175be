//! Variables: values from defaults, `TG_VAR_*`, `-var-file` and `-var` (in that
//! precedence), type conversion and `validation` blocks.

#[allow(unused_imports)]
use super::*;

impl Evaluator<'_> {
    pub(super) fn eval_variables(&mut self) {
        let blocks = self.blocks.clone();
        let decls = self.declared("variable").cloned().unwrap_or_default();
        let mut values: BTreeMap<String, (String, String)> = BTreeMap::new(); // name -> (raw, source)
                                                                              // TG_VAR_name < -var-file < -var
        for (k, v) in std::env::vars() {
            if let Some(name) = k.strip_prefix("TG_VAR_") {
                if decls.contains_key(name) {
                    values.insert(name.to_string(), (v, format!("environment variable `{k}`")));
                }
            }
        }
        let mut file_values: BTreeMap<String, (Value, Span)> = BTreeMap::new();
        for path in self.opts.var_files.clone() {
            self.read_var_file(&path, &decls, &mut file_values);
        }
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
            if !decls.contains_key(name) {
                let mut d = Diagnostic::error(format!(
                    "`-var {name}=...`: no variable `{name}` is declared"
                ));
                d = match did_you_mean(name, decls.keys().map(String::as_str)) {
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

    pub(super) fn read_var_file(
        &mut self,
        path: &PathBuf,
        decls: &IndexMap<String, usize>,
        out: &mut BTreeMap<String, (Value, Span)>,
    ) {
        let full = if path.is_absolute() {
            path.clone()
        } else {
            self.opts.cwd_or_dir().join(path)
        };
        let shown = path.clone();
        let mut diags = Diagnostics::default();
        let Some(id) =
            crate::config::source::read_source(&full, shown, &mut self.sources, &mut diags)
        else {
            self.diags.extend(diags);
            return;
        };
        let text = self.sources.get(id).text.clone();
        let body = match hcl_edit::parser::parse_body(&text) {
            Ok(b) => b,
            Err(e) => {
                self.err(crate::config::syntax_error(id, &text, &e));
                return;
            }
        };
        for st in body.iter() {
            match st {
                hcl_edit::structure::Structure::Attribute(a) => {
                    let name = a.key.as_str().to_string();
                    let span = crate::config::decode::span_of(id, &a.key);
                    if !decls.contains_key(&name) {
                        let mut d = Diagnostic::warning(format!(
                            "`{name}` is set but no variable `{name}` is declared"
                        ))
                        .at(span);
                        if let Some(s) = did_you_mean(&name, decls.keys().map(String::as_str)) {
                            d = d.help(format!("did you mean `{s}`?"));
                        }
                        self.err(d);
                        continue;
                    }
                    let raw = RawAttr {
                        name: name.clone(),
                        expr: a.value.clone(),
                        span: span.clone(),
                        expr_span: crate::config::decode::span_of(id, &a.value),
                    };
                    let found = refs::scan(id, &a.value);
                    if let Some(r) = found.refs.first() {
                        self.err(
                            Diagnostic::error("variable files hold constant values")
                                .at(r.span.clone())
                                .help("write the value itself, such as `edge_count = 3`"),
                        );
                        continue;
                    }
                    if let Some(v) = self.eval(&raw, &Repetition::default()) {
                        out.insert(name, (v, raw.expr_span.clone()));
                    }
                }
                hcl_edit::structure::Structure::Block(b) => {
                    self.err(
                        Diagnostic::error("variable files hold `name = value` lines, not blocks")
                            .at(crate::config::decode::span_of(id, &b.ident)),
                    );
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
