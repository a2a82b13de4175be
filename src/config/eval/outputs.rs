//! Outputs: values, and the rule that an output showing a sensitive value is
//! itself sensitive.

#[allow(unused_imports)]
use super::*;

impl Evaluator<'_> {
    pub(super) fn eval_outputs(&mut self) {
        let blocks = self.blocks;
        let rep = Repetition::default();
        let sensitive_locals = self.sensitive_locals();
        for (name, &bi) in self.decl.of("output").cloned().unwrap_or_default().iter() {
            self.open_value(format!("output.{name}"));
            let b = &blocks[bi];
            let Some(a) = b.attr("value").cloned() else {
                continue;
            };
            let sensitive = self.eval_bool(b, "sensitive", &rep).unwrap_or(false);
            let uses_sensitive = refs::scan(a.expr_span.file, &a.expr)
                .refs
                .into_iter()
                .find(|r| {
                    r.name.as_ref().is_some_and(|n| match r.root.as_str() {
                        "var" => self.sensitive_vars.contains(n),
                        "local" => sensitive_locals.contains(n),
                        _ => false,
                    })
                });
            if let (false, Some(r)) = (sensitive, uses_sensitive) {
                let what = match r.root.as_str() {
                    "var" => "the sensitive variable",
                    _ => "a sensitive variable through",
                };
                self.err(
                    Diagnostic::error(format!(
                        "output `{name}` shows {what} `{}.{}`",
                        r.root,
                        r.name.unwrap_or_default()
                    ))
                    .at(r.span)
                    .help("add `sensitive = true` to the output"),
                );
                continue;
            }
            let description = self.eval_string(b, "description", &rep);
            let Some(v) = self.eval(&a, &rep) else {
                continue;
            };
            self.outputs.insert(
                name.clone(),
                OutputValue {
                    value: to_json(&v),
                    sensitive,
                    description,
                },
            );
        }
    }

    /// Locals that use a sensitive variable, directly or through other
    /// locals: an output showing them must be sensitive too.
    pub(super) fn sensitive_locals(&self) -> HashSet<String> {
        let mut out: HashSet<String> = HashSet::new();
        if self.sensitive_vars.is_empty() {
            return out;
        }
        loop {
            let before = out.len();
            for (name, (bi, an)) in &self.decl.locals {
                if out.contains(name) {
                    continue;
                }
                let a = &self.blocks[*bi].attrs[an];
                let uses = refs::scan(a.expr_span.file, &a.expr).refs.iter().any(|r| {
                    r.name.as_ref().is_some_and(|n| match r.root.as_str() {
                        "var" => self.sensitive_vars.contains(n),
                        "local" => out.contains(n),
                        _ => false,
                    })
                });
                if uses {
                    out.insert(name.clone());
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::check;

    #[test]
    fn outputs_that_show_sensitive_values_are_sensitive() {
        let var = "variable \"pw\" {\n  default   = \"s3cr3t\"\n  sensitive = true\n}\n";
        check(
            &format!("{var}output \"o\" {{\n  value = \"pw=${{var.pw}}\"\n}}\n"),
            "6:17: error: output `o` shows the sensitive variable `var.pw`",
        );
        check(
            &format!(
                "{var}locals {{\n  h = upper(var.pw)\n}}\noutput \"o\" {{\n  value = local.h\n}}\n"
            ),
            "9:11: error: output `o` shows a sensitive variable through `local.h`",
        );
        check(
            &format!("{var}output \"o\" {{\n  value     = var.pw\n  sensitive = true\n}}\n"),
            r#"o = "s3cr3t""#,
        );
        check(
            "output \"o\" {\n  value       = 1\n  description = 2\n}\n",
            "o = 1",
        );
    }
}
