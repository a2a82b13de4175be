//! Generator of large testbeds for benchmarks: `nodes` node blocks, one per
//! node, with labels and `depends_on` chains, on one /16 network.
//! Included by benchmark binaries with `#[path]`.
#![allow(dead_code)]

use std::fmt::Write as _;

/// A testbed of `nodes` nodes written one block per node (about 130 bytes each).
pub fn large_testbed(nodes: usize) -> String {
    let mut s = String::with_capacity(nodes * 140 + 512);
    s.push_str("testbed {\n  name = \"bench\"\n}\n\n");
    s.push_str("network \"lab\" {\n  cidr = \"10.64.0.0/16\"\n}\n\n");
    s.push_str("profile \"small\" {\n  image  = \"host\"\n  memory = \"256MiB\"\n}\n\n");
    for i in 0..nodes {
        let _ = write!(
            s,
            "node \"n{i}\" {{\n  profile = \"small\"\n  network = network.lab\n  labels  = {{ role = \"r{}\", rack = \"k{}\" }}\n",
            i % 7,
            i % 40
        );
        // Chains of 10: every node depends on the one before it in its chain.
        if i % 10 != 0 {
            let _ = writeln!(s, "  depends_on = [node.n{}]", i - 1);
        }
        s.push_str("}\n\n");
    }
    s
}
