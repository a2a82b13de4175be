//! Locals: evaluated once each, in reference order; a failed local only
//! silences those that use it.

#[allow(unused_imports)]
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
            if edges[i].iter().any(|&j| failed[j]) {
                failed[i] = true;
                continue;
            }
            let (bi, an) = &self.decl.locals[&names[i]];
            let a = &blocks[*bi].attrs[an];
            match self.eval(a, &Repetition::default()) {
                Some(v) => {
                    self.local_values.insert(names[i].clone(), v);
                }
                None => failed[i] = true,
            }
        }
    }
}
