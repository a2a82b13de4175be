//! Outputs: values, and the rule that an output showing a sensitive value is
//! itself sensitive.

use super::*;

impl Evaluator<'_> {
    /// The first reference in `e` to something with a sensitive part, to
    /// name in a message.
    fn sensitive_reference(&self, a: &RawAttr) -> Option<Reference> {
        refs::scan(a.expr_span.file, &a.expr)
            .refs
            .into_iter()
            .find(|r| {
                r.name.as_ref().is_some_and(|n| match r.root.as_str() {
                    "var" => self.sensitive_vars.contains(n),
                    "local" => self.marks.locals.contains_key(n),
                    "node" => self.marks.nodes.contains_key(n),
                    "network" => self.marks.networks.contains_key(n),
                    "package" => self.marks.packages.contains_key(n),
                    _ => false,
                })
            })
    }

    pub(super) fn eval_outputs(&mut self) {
        let blocks = self.blocks;
        let rep = Repetition::default();
        for (name, &bi) in self.decl.of("output").cloned().unwrap_or_default().iter() {
            self.open_value(format!("output.{name}"));
            let b = &blocks[bi];
            let Some(a) = b.attr("value").cloned() else {
                continue;
            };
            let sensitive = self.eval_bool(b, "sensitive", &rep).unwrap_or(false);
            let culprit = self
                .is_sensitive(&a.expr)
                .then(|| self.sensitive_reference(&a))
                .flatten();
            if let (false, Some(r)) = (sensitive, culprit) {
                let what = match r.root.as_str() {
                    "var" => "the sensitive variable",
                    "local" => "a sensitive variable through",
                    _ => "a sensitive value through",
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
