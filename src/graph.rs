//! The instance graph: every instance and what it depends on.
//!
//! Built from a testbed's `depends_on` lists (or from the dependencies state
//! recorded, when the configuration is gone), it gives a deterministic
//! topological order, reports cycles with their path, answers "what does
//! this depend on" / "what depends on this" for `-target`, and prints itself
//! as Graphviz dot or Mermaid for `tg graph`. It does not plan or apply:
//! the apply walk builds its own graph of operations from the plan.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::addrs::InstanceAddr;
use crate::config::model::Testbed;

/// Why a graph cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The instances depend on each other in a circle; `path` starts and
    /// ends with the same instance.
    #[error("dependency cycle: {}", path.iter().map(ToString::to_string).collect::<Vec<_>>().join(" -> "))]
    Cycle { path: Vec<InstanceAddr> },
}

/// Instances and their dependency edges. An edge goes from a dependency to
/// the instance that needs it, so a topological order is a creation order.
#[derive(Debug, Clone, Default)]
pub struct InstanceGraph {
    graph: DiGraph<InstanceAddr, ()>,
    index: HashMap<InstanceAddr, NodeIndex>,
    /// Edges present, for constant-time duplicate checks.
    edges: std::collections::HashSet<(NodeIndex, NodeIndex)>,
}

impl InstanceGraph {
    /// An empty graph.
    pub fn new() -> InstanceGraph {
        InstanceGraph::default()
    }

    /// The graph of a testbed's instances. Dependencies on instances the
    /// testbed does not declare are ignored (config reports those).
    pub fn from_testbed(testbed: &Testbed) -> InstanceGraph {
        InstanceGraph::from_edges(
            testbed
                .instances
                .values()
                .map(|d| (d.address.clone(), d.depends_on.clone())),
        )
    }

    /// A graph from `(instance, its dependencies)` pairs, nodes in the
    /// order given. Dependencies not listed as instances are ignored.
    pub fn from_edges(items: impl IntoIterator<Item = (InstanceAddr, Vec<InstanceAddr>)>) -> Self {
        let mut g = InstanceGraph::new();
        let items: Vec<_> = items.into_iter().collect();
        for (addr, _) in &items {
            g.add(addr.clone());
        }
        for (addr, deps) in &items {
            for d in deps {
                g.add_edge(d, addr);
            }
        }
        g
    }

    /// Add an instance (no-op when present); returns its index.
    pub fn add(&mut self, addr: InstanceAddr) -> NodeIndex {
        if let Some(&i) = self.index.get(&addr) {
            return i;
        }
        let i = self.graph.add_node(addr.clone());
        self.index.insert(addr, i);
        i
    }

    /// Record that `dependent` needs `dependency`; ignored when either is unknown.
    pub fn add_edge(&mut self, dependency: &InstanceAddr, dependent: &InstanceAddr) {
        if let (Some(&a), Some(&b)) = (self.index.get(dependency), self.index.get(dependent)) {
            if a != b && self.edges.insert((a, b)) {
                self.graph.add_edge(a, b, ());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    pub fn contains(&self, addr: &InstanceAddr) -> bool {
        self.index.contains_key(addr)
    }

    /// Instances in insertion order.
    pub fn instances(&self) -> impl Iterator<Item = &InstanceAddr> {
        self.graph.node_indices().map(|i| &self.graph[i])
    }

    /// Direct dependencies of `addr`, in insertion order.
    pub fn dependencies(&self, addr: &InstanceAddr) -> Vec<&InstanceAddr> {
        self.neighbors(addr, Direction::Incoming)
    }

    /// Direct dependents of `addr`, in insertion order.
    pub fn dependents(&self, addr: &InstanceAddr) -> Vec<&InstanceAddr> {
        self.neighbors(addr, Direction::Outgoing)
    }

    fn neighbors(&self, addr: &InstanceAddr, dir: Direction) -> Vec<&InstanceAddr> {
        let Some(&i) = self.index.get(addr) else {
            return Vec::new();
        };
        let mut n: Vec<NodeIndex> = self.graph.neighbors_directed(i, dir).collect();
        n.sort();
        n.into_iter().map(|j| &self.graph[j]).collect()
    }

    /// A topological order (dependencies first). Among instances whose
    /// dependencies are all placed, insertion order decides, so the order
    /// is the same on every run.
    pub fn topo_order(&self) -> Result<Vec<InstanceAddr>, GraphError> {
        let n = self.graph.node_count();
        let mut indegree: Vec<usize> = self
            .graph
            .node_indices()
            .map(|i| {
                self.graph
                    .neighbors_directed(i, Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: BTreeSet<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|i| indegree[i.index()] == 0)
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            order.push(self.graph[i].clone());
            for j in self.graph.neighbors_directed(i, Direction::Outgoing) {
                indegree[j.index()] -= 1;
                if indegree[j.index()] == 0 {
                    ready.insert(j);
                }
            }
        }
        if order.len() == n {
            Ok(order)
        } else {
            Err(GraphError::Cycle {
                path: self.find_cycle(&indegree),
            })
        }
    }

    /// Reverse topological order (dependents first): a destroy order.
    pub fn reverse_topo_order(&self) -> Result<Vec<InstanceAddr>, GraphError> {
        let mut o = self.topo_order()?;
        o.reverse();
        Ok(o)
    }

    /// One cycle among the nodes Kahn's algorithm could not place.
    fn find_cycle(&self, indegree: &[usize]) -> Vec<InstanceAddr> {
        let Some(start) = self.graph.node_indices().find(|i| indegree[i.index()] > 0) else {
            return Vec::new();
        };
        // Walk backwards along unplaced dependencies until a node repeats.
        let mut seen: HashMap<NodeIndex, usize> = HashMap::new();
        let mut path = vec![start];
        let mut cur = start;
        loop {
            seen.insert(cur, path.len() - 1);
            let next = self
                .graph
                .neighbors_directed(cur, Direction::Incoming)
                .filter(|j| indegree[j.index()] > 0)
                .min();
            let Some(next) = next else {
                return Vec::new();
            };
            if let Some(&pos) = seen.get(&next) {
                let mut cycle: Vec<InstanceAddr> =
                    path[pos..].iter().map(|i| self.graph[*i].clone()).collect();
                // We walked dependent -> dependency; show dependency -> dependent.
                cycle.reverse();
                let first = cycle[0].clone();
                cycle.push(first);
                return cycle;
            }
            path.push(next);
            cur = next;
        }
    }

    /// Every instance matching one of `targets` (see
    /// [`InstanceAddr::matches`]) plus everything they depend on,
    /// transitively.
    pub fn with_dependencies(&self, targets: &[InstanceAddr]) -> BTreeSet<InstanceAddr> {
        self.closure(targets, Direction::Incoming)
    }

    /// Every instance matching one of `targets` plus everything that depends
    /// on them, transitively.
    pub fn with_dependents(&self, targets: &[InstanceAddr]) -> BTreeSet<InstanceAddr> {
        self.closure(targets, Direction::Outgoing)
    }

    fn closure(&self, targets: &[InstanceAddr], dir: Direction) -> BTreeSet<InstanceAddr> {
        let mut out = BTreeSet::new();
        let mut queue: VecDeque<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|i| targets.iter().any(|t| target_matches(&self.graph[*i], t)))
            .collect();
        while let Some(i) = queue.pop_front() {
            if out.insert(self.graph[i].clone()) {
                queue.extend(self.graph.neighbors_directed(i, dir));
            }
        }
        out
    }

    /// Graphviz dot, nodes and edges in a stable order.
    pub fn to_dot(&self) -> String {
        self.to_dot_styled(&|_| None)
    }

    /// DOT with extra attributes per node (`style` returns e.g.
    /// `fillcolor="#cfc", style=filled`), for a plan's actions.
    pub fn to_dot_styled(&self, style: &dyn Fn(&InstanceAddr) -> Option<String>) -> String {
        let mut out = String::from("digraph testbed {\n  rankdir = \"LR\";\n");
        for i in self.sorted_nodes() {
            let name = dot_quote(&self.graph[i].to_string());
            match style(&self.graph[i]) {
                Some(attrs) => {
                    let _ = writeln!(out, "  {name} [{attrs}];");
                }
                None => {
                    let _ = writeln!(out, "  {name};");
                }
            }
        }
        for (a, b) in self.sorted_edges() {
            let _ = writeln!(
                out,
                "  {} -> {};",
                dot_quote(&self.graph[a].to_string()),
                dot_quote(&self.graph[b].to_string())
            );
        }
        out.push_str("}\n");
        out
    }

    /// A Mermaid flowchart, nodes and edges in a stable order.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        let ids: HashMap<NodeIndex, String> = self
            .sorted_nodes()
            .into_iter()
            .enumerate()
            .map(|(n, i)| (i, format!("n{n}")))
            .collect();
        for i in self.sorted_nodes() {
            let label = self.graph[i].to_string().replace('"', "#quot;");
            let _ = writeln!(out, "  {}[\"{label}\"]", ids[&i]);
        }
        for (a, b) in self.sorted_edges() {
            let _ = writeln!(out, "  {} --> {}", ids[&a], ids[&b]);
        }
        out
    }

    fn sorted_nodes(&self) -> Vec<NodeIndex> {
        let mut v: Vec<NodeIndex> = self.graph.node_indices().collect();
        v.sort_by(|a, b| self.graph[*a].cmp(&self.graph[*b]));
        v
    }

    fn sorted_edges(&self) -> Vec<(NodeIndex, NodeIndex)> {
        let mut v: Vec<(NodeIndex, NodeIndex)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .collect();
        v.sort_by(|a, b| {
            (&self.graph[a.0], &self.graph[a.1]).cmp(&(&self.graph[b.0], &self.graph[b.1]))
        });
        v
    }
}

/// Does `addr` fall under `target`? Like [`InstanceAddr::matches`], and a
/// package instance also falls under its node's address
/// (`package.p[node.edge[0]]` under `node.edge[0]` is not implied: only
/// resource and instance addresses of the package itself match).
pub fn target_matches(addr: &InstanceAddr, target: &InstanceAddr) -> bool {
    addr.matches(target)
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> InstanceAddr {
        s.parse().unwrap()
    }

    fn g(edges: &[(&str, &[&str])]) -> InstanceGraph {
        InstanceGraph::from_edges(
            edges
                .iter()
                .map(|(x, deps)| (a(x), deps.iter().map(|d| a(d)).collect())),
        )
    }

    #[test]
    fn topo_order_puts_dependencies_first_and_is_stable() {
        let graph = g(&[
            ("package.p[node.edge[0]]", &["node.edge[0]"]),
            ("node.edge[0]", &["network.lab"]),
            ("node.edge[1]", &["network.lab"]),
            ("network.lab", &[]),
        ]);
        let order: Vec<String> = graph
            .topo_order()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            order,
            [
                "network.lab",
                "node.edge[0]",
                "package.p[node.edge[0]]",
                "node.edge[1]"
            ]
        );
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let graph = g(&[
            ("node.a", &["node.c"]),
            ("node.b", &["node.a"]),
            ("node.c", &["node.b"]),
            ("network.x", &[]),
        ]);
        let err = graph.topo_order().unwrap_err();
        let GraphError::Cycle { path } = &err;
        assert_eq!(path.len(), 4);
        assert_eq!(path.first(), path.last());
        let msg = err.to_string();
        assert!(msg.starts_with("dependency cycle: node."), "{msg}");
        // Every step is a real edge: dependency -> dependent.
        for w in path.windows(2) {
            assert!(graph.dependents(&w[0]).contains(&&w[1]), "{msg}");
        }
    }

    #[test]
    fn closures_follow_the_right_direction() {
        let graph = g(&[
            ("network.lab", &[]),
            ("node.edge[0]", &["network.lab"]),
            ("node.edge[1]", &["network.lab"]),
            ("package.p[node.edge[0]]", &["node.edge[0]"]),
        ]);
        let deps = graph.with_dependencies(&[a("package.p")]);
        assert_eq!(
            deps.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["network.lab", "node.edge[0]", "package.p[node.edge[0]]"]
        );
        let dependents = graph.with_dependents(&[a("node.edge[0]")]);
        assert_eq!(
            dependents
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["node.edge[0]", "package.p[node.edge[0]]"]
        );
    }

    #[test]
    fn dot_and_mermaid_are_deterministic() {
        let graph = g(&[("node.b", &["network.lab"]), ("network.lab", &[])]);
        assert_eq!(
            graph.to_dot(),
            "digraph testbed {\n  rankdir = \"LR\";\n  \"network.lab\";\n  \"node.b\";\n  \"network.lab\" -> \"node.b\";\n}\n"
        );
        assert_eq!(
            graph.to_mermaid(),
            "flowchart LR\n  n0[\"network.lab\"]\n  n1[\"node.b\"]\n  n0 --> n1\n"
        );
    }
}
