//! Cycles and ordering: the block-level reference graph of locals, networks,
//! nodes and packages, the cycles in it (reported with their path), and the
//! deterministic topological order the evaluation stages use.

use super::*;

impl Checker<'_> {
    /// The block-level reference graph: `local.x`, `network.x`, `node.x`,
    /// `package.x` and what each refers to.
    /// Also returns, for each edge, where its first reference is written.
    #[allow(clippy::type_complexity)]
    pub(super) fn block_graph(
        &self,
    ) -> (
        Vec<(String, Span)>,
        Vec<Vec<usize>>,
        HashMap<(usize, usize), Span>,
    ) {
        let mut ids: IndexMap<String, Span> = IndexMap::new();
        for (name, (bi, an)) in &self.decl.locals {
            ids.insert(
                format!("local.{name}"),
                self.blocks[*bi].attrs[an].span.clone(),
            );
        }
        for kind in ["network", "node", "package"] {
            if let Some(m) = self.decl.of(kind) {
                for (name, &bi) in m {
                    ids.insert(format!("{kind}.{name}"), self.blocks[bi].span.clone());
                }
            }
        }
        let mut edges = vec![Vec::new(); ids.len()];
        let mut spans: HashMap<(usize, usize), Span> = HashMap::new();
        let add = |from: &str,
                   r: &Reference,
                   edges: &mut Vec<Vec<usize>>,
                   spans: &mut HashMap<(usize, usize), Span>| {
            let Some(name) = &r.name else { return };
            let to = format!("{}.{name}", r.root);
            let to = if r.root == "node" && !ids.contains_key(&to) {
                // An implicit node is its package.
                self.decl
                    .names_of("package")
                    .into_iter()
                    .find(|p| implicit_node_name(p) == *name)
                    .map(|p| format!("package.{p}"))
                    .unwrap_or(to)
            } else {
                to
            };
            if let (Some(f), Some(t)) = (ids.get_index_of(from), ids.get_index_of(&to)) {
                if !edges[f].contains(&t) {
                    edges[f].push(t);
                    spans.insert((f, t), r.span.clone());
                }
            }
        };
        for (name, (bi, an)) in &self.decl.locals {
            let a = &self.blocks[*bi].attrs[an];
            for r in refs::scan(a.expr_span.file, &a.expr).refs {
                add(&format!("local.{name}"), &r, &mut edges, &mut spans);
            }
        }
        for kind in ["network", "node", "package"] {
            let Some(m) = self.decl.of(kind) else {
                continue;
            };
            for (name, &bi) in m {
                let from = format!("{kind}.{name}");
                let b = &self.blocks[bi];
                let attrs = b
                    .attrs
                    .values()
                    .chain(b.blocks.iter().flat_map(|nb| nb.attrs.values()));
                for a in attrs {
                    if a.name == "depends_on" {
                        if let Ok(list) = refs::static_list(a.expr_span.file, &a.expr) {
                            for (r, _) in list {
                                add(&from, &r, &mut edges, &mut spans);
                            }
                        }
                    } else {
                        for r in refs::scan(a.expr_span.file, &a.expr).refs {
                            add(&from, &r, &mut edges, &mut spans);
                        }
                    }
                }
            }
        }
        (ids.into_iter().collect(), edges, spans)
    }

    pub(super) fn check_cycles(&mut self) {
        let (ids, edges, spans) = self.block_graph();
        for cycle in find_cycles(&edges) {
            let path: Vec<&str> = cycle.iter().map(|&i| ids[i].0.as_str()).collect();
            let first = cycle[0];
            let mut shown = path.join(" -> ");
            shown.push_str(" -> ");
            shown.push_str(path[0]);
            // Point at the reference that starts the cycle.
            let next = cycle.get(1).copied().unwrap_or(first);
            let at = spans
                .get(&(first, next))
                .cloned()
                .unwrap_or_else(|| ids[first].1.clone());
            let d = if cycle.len() == 1 {
                Diagnostic::error(format!("`{}` refers to itself", path[0]))
                    .at(at)
                    .help("remove the reference to itself")
            } else {
                Diagnostic::error(format!("dependency cycle: {shown}"))
                    .at(at)
                    .detail(
                        cycle
                            .iter()
                            .map(|&i| format!("{} at {}", ids[i].0, self.loc(&ids[i].1)))
                            .collect::<Vec<_>>()
                            .join("\n"),
                    )
                    .help("break the cycle: remove a reference or a `depends_on`")
            };
            self.err(d);
        }
    }
}

/// Adjacency lists `i -> the items i refers to` over `names`, from each
/// item's referenced names (names that are not items are ignored).
pub(super) fn edges_by_name(
    names: &[String],
    mut refers_to: impl FnMut(usize) -> Vec<String>,
) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    (0..names.len())
        .map(|i| {
            refers_to(i)
                .iter()
                .filter_map(|n| index.get(n.as_str()).copied())
                .collect()
        })
        .collect()
}

/// The names an attribute refers to under `root` (`network.lab` -> `lab`).
pub(super) fn referenced_names(a: &RawAttr, root: &str) -> Vec<String> {
    refs::scan(a.expr_span.file, &a.expr)
        .refs
        .into_iter()
        .filter(|r| r.root == root)
        .filter_map(|r| r.name)
        .collect()
}

/// Deterministic topological order (dependencies first) of a graph given
/// as adjacency lists `i -> what i depends on`. Cycles must have been ruled
/// out; any left are broken arbitrarily. Iterative: deep chains are fine.
pub fn topo_order(edges: &[Vec<usize>]) -> Vec<usize> {
    let n = edges.len();
    let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    let mut out = Vec::with_capacity(n);
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some((v, i)) = stack.last_mut() {
            let v = *v;
            if let Some(&w) = edges[v].get(*i) {
                *i += 1;
                if state[w] == 0 {
                    state[w] = 1;
                    stack.push((w, 0));
                }
            } else {
                state[v] = 2;
                out.push(v);
                stack.pop();
            }
        }
    }
    out
}

/// Every elementary cycle found by a DFS (one per back edge), each as the
/// list of vertices in order. Iterative.
pub fn find_cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut state = vec![0u8; n];
    let mut cycles = Vec::new();
    let mut reported: HashSet<Vec<usize>> = HashSet::new();
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (v, ref mut i)) = stack.last_mut() {
            if let Some(&w) = edges[v].get(*i) {
                *i += 1;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => {
                        let pos = stack.iter().position(|(x, _)| *x == w).unwrap_or(0);
                        let cycle: Vec<usize> = stack[pos..].iter().map(|(x, _)| *x).collect();
                        let mut key = cycle.clone();
                        key.sort_unstable();
                        if reported.insert(key) {
                            cycles.push(cycle);
                        }
                    }
                    _ => {}
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topo_and_cycles() {
        let edges = vec![vec![1], vec![2], vec![]];
        assert_eq!(topo_order(&edges), vec![2, 1, 0]);
        let cyc = vec![vec![1], vec![0], vec![2]];
        let c = find_cycles(&cyc);
        assert_eq!(c.len(), 2);
    }
}

#[cfg(test)]
mod stage_tests {
    use crate::config::eval::testing::check;

    #[test]
    fn cycles() {
        check(
            "locals {\n  a = local.a\n}\n",
            "2:7: error: `local.a` refers to itself",
        );
        check(
            "locals {\n  a = local.b\n  b = local.a\n}\n",
            "2:7: error: dependency cycle: local.a -> local.b -> local.a",
        );
        check(
            "network \"lab\" {}\nnode \"a\" {\n  image      = \"host\"\n  depends_on = [node.b]\n}\nnode \"b\" {\n  image  = \"host\"\n  labels = { x = node.a.hostname }\n}\n",
            "4:17: error: dependency cycle: node.a -> node.b -> node.a",
        );
        // Not a cycle: a chain.
        check("locals {\n  a = 1\n  b = local.a + 1\n  c = local.b * 2\n}\noutput \"c\" {\n  value = local.c\n}\n", "c = 4");
    }
}
