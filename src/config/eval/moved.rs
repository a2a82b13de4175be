//! `moved` blocks: what state recorded under one address now lives at
//! another (`moved { from = node.old  to = node.new }`). Static: `from` and
//! `to` are addresses, not expressions, so they are checked here and never
//! evaluated. Owns the checks (both addresses valid and of one kind, not
//! the same, `from` no longer declared, no address moved twice, no cycle)
//! and the order moves apply in (chains: `a` → `b` before `b` → `c`).
//! Renaming what state recorded is `state::moves`' job.

use super::*;
use crate::config::model::Move;

impl Checker<'_> {
    pub(super) fn check_moves(&mut self) {
        let blocks = self.blocks;
        let mut moves: Vec<Move> = Vec::new();
        for b in blocks.iter().filter(|b| b.kind == "moved") {
            let (Some(from_a), Some(to_a)) = (b.attr("from"), b.attr("to")) else {
                // A missing attribute is a schema error already.
                continue;
            };
            let (Some(from), Some(to)) = (self.move_address(from_a), self.move_address(to_a))
            else {
                continue;
            };
            if from.kind() != to.kind() {
                self.err(
                    Diagnostic::error(format!(
                        "cannot move `{from}` to `{to}`: expected a {} address, found a {} one",
                        from.kind(),
                        to.kind()
                    ))
                    .at(to_a.expr_span.clone())
                    .help("a `moved` block renames a block of one kind: move `network` to `network`, `node` to `node`, `package` to `package`"),
                );
                continue;
            }
            if from == to {
                self.err(
                    Diagnostic::error(format!("`moved` block moves `{from}` to itself"))
                        .at(b.span.clone())
                        .help("set `to` to the block's new address, or remove the `moved` block"),
                );
                continue;
            }
            if from.resource != to.resource {
                if let Some(&bi) = self
                    .decl
                    .of(from.kind().as_str())
                    .and_then(|m| m.get(from.name()))
                {
                    let at = self.loc(&blocks[bi].span);
                    self.err(
                        Diagnostic::error(format!(
                            "`{}` is moved to `{to}` but is still declared at {at}",
                            from.resource
                        ))
                        .at(from_a.expr_span.clone())
                        .help(format!(
                            "rename that block to `{}` (a `moved` block says its objects now live there), or remove the `moved` block",
                            to.resource
                        )),
                    );
                    continue;
                }
            }
            let mut clash = None;
            for m in &moves {
                if m.from == from {
                    clash = Some((format!("`{from}` is moved twice"), m.span.clone()));
                } else if m.to == to {
                    clash = Some((
                        format!("`{}` and `{from}` are both moved to `{to}`", m.from),
                        m.span.clone(),
                    ));
                }
            }
            if let Some((summary, other)) = clash {
                let at = self.loc(&other);
                self.err(Diagnostic::error(summary).at(b.span.clone()).help(format!(
                    "the other `moved` block is at {at}: keep one of the two"
                )));
                continue;
            }
            moves.push(Move {
                from,
                to,
                span: b.span.clone(),
            });
        }
        match chain_order(&moves) {
            Ok(order) => self.decl.moves = order.into_iter().map(|i| moves[i].clone()).collect(),
            Err(cycle) => {
                let path: Vec<String> = cycle
                    .iter()
                    .map(|&i| format!("`{}`", moves[i].from))
                    .chain(std::iter::once(format!("`{}`", moves[cycle[0]].from)))
                    .collect();
                self.err(
                    Diagnostic::error(format!(
                        "the `moved` blocks form a cycle: {}",
                        path.join(" -> ")
                    ))
                    .at(moves[cycle[0]].span.clone())
                    .help("a chain of moves must end somewhere: remove the `moved` block that leads back"),
                );
            }
        }
    }

    /// The address `from` or `to` holds, or an error at it.
    fn move_address(&mut self, a: &RawAttr) -> Option<InstanceAddr> {
        let text = self.parsed.sources.get(a.expr_span.file).text[a.expr_span.range.clone()].trim();
        let quoted = text.starts_with('"');
        let parsed = text
            .parse::<InstanceAddr>()
            .map_err(|e| e.reason)
            .and_then(|addr| {
                if text.contains(char::is_whitespace) {
                    Err("spaces are not allowed in an address".into())
                } else {
                    Ok(addr)
                }
            });
        match parsed {
            Ok(addr) => Some(addr),
            Err(reason) => {
                let why = if quoted {
                    "an address is written without quotes".to_string()
                } else {
                    reason
                };
                self.err(
                    Diagnostic::error(format!(
                        "invalid `{}` of a `moved` block: expected an address such as `node.old` or `node.edge[0]`, found `{text}`",
                        a.name
                    ))
                    .at(a.expr_span.clone())
                    .help(format!("{why}; a `moved` block renames `network`, `node` and `package` blocks")),
                );
                None
            }
        }
    }
}

/// The order moves apply in: a move whose `to` is another's `from` first
/// (`a` → `b` before `b` → `c`), else declaration order. A cycle is an
/// error: the indices of the moves in it.
fn chain_order(moves: &[Move]) -> Result<Vec<usize>, Vec<usize>> {
    let mut done = vec![false; moves.len()];
    let mut order = Vec::with_capacity(moves.len());
    while order.len() < moves.len() {
        // The first move no other pending move leads into.
        let next = (0..moves.len()).find(|&i| {
            !done[i]
                && !(0..moves.len()).any(|j| !done[j] && j != i && moves[j].to == moves[i].from)
        });
        match next {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => {
                // Every pending move is led into: walk back to a cycle.
                let mut i = (0..moves.len()).find(|&i| !done[i]).unwrap_or(0);
                let mut path = Vec::new();
                while !path.contains(&i) {
                    path.push(i);
                    i = (0..moves.len())
                        .find(|&j| !done[j] && moves[j].to == moves[i].from)
                        .unwrap_or(i);
                }
                let start = path.iter().position(|&p| p == i).unwrap_or(0);
                let mut cycle: Vec<usize> = path[start..].to_vec();
                // Follow the moves forward: `a` -> `b` -> `a`.
                cycle.reverse();
                return Err(cycle);
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use crate::config::parse::parse_texts;
    use crate::config::Prior;

    fn moves(src: &str) -> Vec<String> {
        let src = format!("network \"lab\" {{\n  cidr = \"10.0.0.0/24\"\n}}\n{src}");
        let parsed =
            parse_texts(&super::super::testing::options(), &[("main.tg.hcl", &src)]).unwrap();
        let (tb, _) = parsed.evaluate(&Prior::default()).unwrap();
        assert_eq!(tb.moves.len(), parsed.moves().len());
        tb.moves
            .iter()
            .map(|m| format!("{} -> {}", m.from, m.to))
            .collect()
    }

    #[test]
    fn moves_apply_in_chain_order_whatever_the_declaration_order() {
        let src = "node \"c\" {\n  image = \"host\"\n}\n\nnode \"y\" {\n  count = 2\n  image = \"host\"\n}\n\
moved {\n  from = node.b\n  to   = node.c\n}\n\
moved {\n  from = node.x[0]\n  to   = node.y[1]\n}\n\
moved {\n  from = node.a\n  to   = node.b\n}\n";
        assert_eq!(
            moves(src),
            [
                "node.x[0] -> node.y[1]",
                "node.a -> node.b",
                "node.b -> node.c"
            ]
        );
    }

    #[test]
    fn a_testbed_without_moved_blocks_has_none_and_fmt_keeps_them() {
        assert!(moves("node \"a\" {\n  image = \"host\"\n}\n").is_empty());
        let src = "moved {\n  from = node.a\n  to   = node.b\n}\n";
        assert_eq!(crate::format::format_source(src).unwrap(), src);
    }
}
