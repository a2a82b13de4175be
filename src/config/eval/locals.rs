//! Locals: evaluated once each, in reference order; a failed local only
//! silences those that use it.

use super::*;

impl Evaluator<'_> {
    pub(super) fn eval_locals(&mut self) {
        self.eval_locals_only(None);
    }

    /// Evaluate the locals (those in `only`, when given: the settings need
    /// a few).
    pub(super) fn eval_locals_only(&mut self, only: Option<&HashSet<String>>) {
        let blocks = self.blocks;
        let names: Vec<String> = self
            .decl
            .locals
            .keys()
            .filter(|n| only.is_none_or(|o| o.contains(*n)))
            .cloned()
            .collect();
        // Order by references among locals (cycles were ruled out).
        let edges = edges_by_name(&names, |i| {
            let (bi, an) = &self.decl.locals[&names[i]];
            referenced_names(&self.blocks[*bi].attrs[an], "local")
        });
        // A local that fails does not stop the others, only those that
        // use it (they would fail for the same reason).
        let mut failed = vec![false; names.len()];
        for i in topo_order(&edges) {
            self.open_value(format!("local.{}", names[i]));
            {
                let (bi, an) = &self.decl.locals[&names[i]];
                if let Some(m) = self.mark_of(&blocks[*bi].attrs[an].expr) {
                    self.marks.locals.insert(names[i].clone(), m);
                }
            }
            if edges[i].iter().any(|&j| failed[j]) {
                failed[i] = true;
                // Skipped, not failed: what uses it is silenced too.
                self.silenced = true;
                continue;
            }
            let (bi, an) = &self.decl.locals[&names[i]];
            let a = &blocks[*bi].attrs[an];
            match self.eval_sized(a, &Repetition::default()) {
                Some((v, size)) => {
                    self.local_values.insert(names[i].clone(), v);
                    self.local_sizes.insert(names[i].clone(), size);
                }
                None => failed[i] = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::check;

    #[test]
    fn locals() {
        check("locals {\n  a = \"x\"\n  b = \"${local.a}y\"\n}\noutput \"b\" {\n  value = local.b\n}\n", r#"b = "xy""#);
        // A local used twice, then by an output: every use sees the value.
        check(
            "locals {\n  a = { k = [1, 2] }\n  b = [local.a, local.a.k]\n  c = { x = local.a, y = local.b }\n}\noutput \"c\" {\n  value = local.c\n}\noutput \"a\" {\n  value = local.a.k[1]\n}\n",
            r#"c = {"x":{"k":[1,2]},"y":[{"k":[1,2]},[1,2]]}
a = 2"#,
        );
    }

    #[test]
    fn a_failed_local_silences_what_uses_it() {
        check(
            "locals {\n  a = 1 / 0\n  b = local.a + 1\n  c = local.b\n}\noutput \"c\" {\n  value = local.c\n}\n",
            "2:7: error: division by zero",
        );
    }

    #[test]
    fn a_chain_of_nested_locals_keeps_every_level() {
        let n = 1000;
        let mut src = String::from("locals {\n  l0 = \"x\"\n");
        for i in 1..=n {
            src.push_str(&format!(
                "  l{i} = {{ prev = local.l{}, n = {i} }}\n",
                i - 1
            ));
        }
        src.push_str(&format!("}}\noutput \"n\" {{\n  value = [local.l{n}.n, local.l{n}.prev.n, local.l{n}.prev.prev.n]\n}}\n"));
        // Deep values are walked by hcl-rs: give it the stack a main thread has.
        let got = std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(move || {
                crate::config::eval::testing::render_with(
                    &crate::config::eval::testing::options(),
                    &src,
                )
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(got.trim(), "n = [1000,999,998]");
    }

    #[test]
    fn values_nested_too_deep_are_refused() {
        let n = 1100;
        let mut src = String::from("locals {\n  l0 = \"x\"\n");
        for i in 1..=n {
            src.push_str(&format!("  l{i} = [local.l{}]\n", i - 1));
        }
        src.push_str("}\n");
        let got = std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(move || {
                crate::config::eval::testing::render_with(
                    &crate::config::eval::testing::options(),
                    &src,
                )
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(got.trim(), "1027:11: error: the value of `l1025` is too large: it holds lists and maps nested more than 1024 levels deep");
    }
}
