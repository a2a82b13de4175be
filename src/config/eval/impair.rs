//! `impair { ... }` (in `network` and `node` blocks) and `wait_for { ... }`
//! (in `node` and `package` blocks): evaluated and checked here, with the
//! span of the value that is wrong.

use super::*;
use crate::platform::impairment::{Impairment, IMPAIR_KEYS};
use crate::platform::{Check, WaitFor};
use crate::units::Span as TimeSpan;

/// A node's `impair` block, evaluated: the network it is for (an index
/// into the evaluator's networks; `None`: every link of the node).
pub(super) struct NodeImpair {
    pub network: Option<usize>,
    pub impair: Impairment,
    pub span: Span,
}

impl Evaluator<'_> {
    /// The keys of one `impair` block (but `network`), checked.
    pub(super) fn eval_impairment(&mut self, b: &RawBlock, rep: &Repetition) -> Impairment {
        let mut out = Impairment::default();
        for key in IMPAIR_KEYS {
            let Some(a) = b.attr(key).cloned() else {
                continue;
            };
            let Some(s) = self.eval_string(b, key, rep) else {
                continue;
            };
            if let Err(why) = out.set(key, &s) {
                let help = match *key {
                    "delay" | "jitter" => "write a duration such as `\"50ms\"` (at most \"1m\")",
                    "rate" => "write a bit rate such as `\"10mbit\"` or `\"1gbit\"`",
                    _ => "write a percentage from `\"0%\"` to `\"100%\"`, such as `\"1%\"`",
                };
                self.err(
                    Diagnostic::error(format!("invalid `{key}` in `impair`: {why}"))
                        .at(a.expr_span.clone())
                        .help(help),
                );
            }
        }
        out
    }

    /// A network's `impair` block (at most one).
    pub(super) fn eval_network_impair(&mut self, b: &RawBlock, rep: &Repetition) -> Impairment {
        let blocks: Vec<&RawBlock> = b.blocks_of("impair").collect();
        if let Some(second) = blocks.get(1) {
            self.err(
                Diagnostic::error("a `network` block takes one `impair` block")
                    .at(second.span.clone())
                    .help("merge the two `impair` blocks"),
            );
        }
        let Some(ib) = blocks.first() else {
            return Impairment::default();
        };
        if let Some(a) = ib.attr("network") {
            self.err(
                Diagnostic::error("`network` in `impair` only goes in a `node` block")
                    .at(a.span.clone())
                    .help("the `impair` block of a network applies to every node on it: remove `network`"),
            );
        }
        let imp = self.eval_impairment(ib, rep);
        if let Some(why) = imp.problem() {
            self.err(Diagnostic::error(why).at(ib.span.clone()));
        }
        imp
    }

    /// A node block's `impair` blocks, each for one of the node's
    /// networks (`networks`: their indexes) or, without `network`, all.
    pub(super) fn eval_node_impairs(
        &mut self,
        b: &RawBlock,
        rep: &Repetition,
        networks: &[usize],
    ) -> Vec<NodeImpair> {
        let mut out: Vec<NodeImpair> = Vec::new();
        for ib in b.blocks_of("impair") {
            let network = match ib.attr("network").cloned() {
                None => None,
                Some(a) => {
                    let v = self.eval(&a, rep);
                    let idx = v
                        .as_ref()
                        .and_then(|v| v.as_object())
                        .and_then(|o| o.get("id"))
                        .and_then(|v| v.as_str())
                        .and_then(|id| id.parse::<InstanceAddr>().ok())
                        .and_then(|addr| self.net_by_addr.get(&addr).copied());
                    match idx {
                        Some(i) if networks.contains(&i) => Some(i),
                        Some(i) => {
                            self.err(
                                Diagnostic::error(format!(
                                    "the node is not on network `{}`",
                                    self.nets[i].addr
                                ))
                                .at(a.expr_span.clone())
                                .help("name one of the node's networks, or remove `network` to impair every link of the node"),
                            );
                            // Its values are still checked.
                            self.eval_impairment(ib, rep);
                            continue;
                        }
                        None => {
                            if v.is_some() {
                                self.err(
                                    Diagnostic::error("`network` in `impair` must name a network, such as `network.lab`")
                                        .at(a.expr_span.clone())
                                        .help("write a reference, without quotes"),
                                );
                            }
                            self.eval_impairment(ib, rep);
                            continue;
                        }
                    }
                }
            };
            if out.iter().any(|o| o.network == network) {
                self.err(
                    Diagnostic::error(match network {
                        Some(i) => {
                            format!("two `impair` blocks for network `{}`", self.nets[i].addr)
                        }
                        None => "two `impair` blocks without `network`".to_string(),
                    })
                    .at(ib.span.clone())
                    .help("merge them into one"),
                );
                continue;
            }
            let impair = self.eval_impairment(ib, rep);
            out.push(NodeImpair {
                network,
                impair,
                span: ib.span.clone(),
            });
        }
        out
    }

    /// The impairment of the node's link to network `net`: the network's,
    /// then the node's block for all links, then its block for this one.
    pub(super) fn link_impairment(&mut self, net: usize, own: &[NodeImpair]) -> Impairment {
        let mut imp = self.nets[net].impair;
        let mut span = None;
        for o in own.iter().filter(|o| o.network.is_none()) {
            imp = imp.overridden_by(&o.impair);
            span = Some(o.span.clone());
        }
        for o in own.iter().filter(|o| o.network == Some(net)) {
            imp = imp.overridden_by(&o.impair);
            span = Some(o.span.clone());
        }
        if let (Some(why), Some(span)) = (imp.problem(), span) {
            // The network's own combination was checked with it.
            self.err(
                Diagnostic::error(format!(
                    "the link to network `{}`: {why}",
                    self.nets[net].addr
                ))
                .at(span)
                .help("the node's `impair` overrides the network's key by key"),
            );
        }
        imp
    }

    /// The `wait_for` blocks of a node or package block.
    pub(super) fn eval_wait_for(&mut self, b: &RawBlock, rep: &Repetition) -> Vec<WaitFor> {
        let mut out = Vec::new();
        for wb in b.blocks_of("wait_for") {
            let check = match (wb.attr("command").cloned(), wb.attr("tcp").cloned()) {
                (Some(_), Some(t)) => {
                    self.err(
                        Diagnostic::error(
                            "`command` and `tcp` cannot both be set in one `wait_for`",
                        )
                        .at(t.span.clone())
                        .help("write one `wait_for` block per check"),
                    );
                    continue;
                }
                (None, None) => {
                    self.err(
                        Diagnostic::error("`wait_for` needs `command` or `tcp`")
                            .at(wb.span.clone())
                            .help("write `command = \"curl -fs localhost:8080\"` (run in the node) or `tcp = 8080` (connected to from the network)"),
                    );
                    continue;
                }
                (Some(_), None) => match self.eval_string(wb, "command", rep) {
                    Some(c) if !c.trim().is_empty() => Check::Command(c),
                    Some(_) => {
                        let a = wb.attr("command").map(|a| a.expr_span.clone());
                        self.err(
                            Diagnostic::error("`command` in `wait_for` is empty")
                                .at(a.unwrap_or(wb.span.clone()))
                                .help("give a shell command that exits 0 once the node is ready"),
                        );
                        continue;
                    }
                    None => continue,
                },
                (None, Some(a)) => {
                    let Some(v) = self.eval(&a, rep) else {
                        continue;
                    };
                    match v.as_u64().filter(|p| (1..=65535).contains(p)) {
                        Some(p) => Check::Tcp(p as u16),
                        None => {
                            self.err(
                                Diagnostic::error(format!(
                                    "`tcp` in `wait_for` must be a port from 1 to 65535, found {}",
                                    self.describe_in(&a, &v)
                                ))
                                .at(a.expr_span.clone())
                                .help("write `tcp = 8080`"),
                            );
                            continue;
                        }
                    }
                }
            };
            let timeout = self.eval_span(wb, "timeout", rep, WaitFor::DEFAULT_TIMEOUT);
            let interval = self.eval_span(wb, "interval", rep, WaitFor::DEFAULT_INTERVAL);
            let (Some(timeout), Some(interval)) = (timeout, interval) else {
                continue;
            };
            out.push(WaitFor {
                check,
                timeout,
                interval,
            });
        }
        out
    }

    /// A `wait_for` duration: above zero, at most a day; `default` when unset.
    fn eval_span(
        &mut self,
        b: &RawBlock,
        key: &str,
        rep: &Repetition,
        default: TimeSpan,
    ) -> Option<TimeSpan> {
        let Some(a) = b.attr(key).cloned() else {
            return Some(default);
        };
        let s = self.eval_string(b, key, rep)?;
        let why = match s.parse::<TimeSpan>() {
            Ok(d) if d.is_zero() => format!("expected a duration above zero, found \"{d}\""),
            Ok(d) if d > WaitFor::MAX_TIMEOUT => {
                format!(
                    "expected at most \"{}\", found \"{d}\"",
                    WaitFor::MAX_TIMEOUT
                )
            }
            Ok(d) => return Some(d),
            Err(why) => why,
        };
        self.err(
            Diagnostic::error(format!("invalid `{key}` in `wait_for`: {why}"))
                .at(a.expr_span.clone())
                .help(format!("write a duration such as `\"{default}\"`")),
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::{check, options};
    use crate::config::{parse::parse_texts, Prior};
    use crate::platform::Spec;

    const NETS: &str = "network \"a\" {\n  impair {\n    delay = \"50ms\"\n    loss  = \"1%\"\n  }\n}\nnetwork \"b\" {}\n";

    /// The node specs of `src` as JSON, by address.
    fn node_json(src: &str) -> Vec<(String, serde_json::Value)> {
        let parsed = parse_texts(&options(), &[("main.tg.hcl", src)]).expect("parses");
        let (tb, _) = parsed.evaluate(&Prior::default()).expect("evaluates");
        tb.instances
            .values()
            .filter_map(|d| match &d.spec {
                Spec::Node(n) => Some((d.address.to_string(), serde_json::to_value(n).unwrap())),
                Spec::Package(p) => Some((d.address.to_string(), serde_json::to_value(p).unwrap())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn network_impairment_reaches_every_link_and_nodes_override_key_by_key() {
        let src = format!(
            "{NETS}node \"plain\" {{\n  image    = \"host\"\n  networks = [network.a, network.b]\n}}\n\
             node \"own\" {{\n  image    = \"host\"\n  networks = [network.a, network.b]\n  \
             impair {{\n    loss = \"0%\"\n  }}\n  impair {{\n    network = network.b\n    rate    = \"10mbit\"\n  }}\n}}\n"
        );
        let nodes = node_json(&src);
        let impairs = |i: usize| -> Vec<serde_json::Value> {
            nodes[i].1["interfaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.get("impair").cloned().unwrap_or_default())
                .collect()
        };
        assert_eq!(
            impairs(0),
            vec![
                serde_json::json!({"delay": "50ms", "loss": "1%"}),
                serde_json::Value::Null
            ]
        );
        assert_eq!(
            impairs(1),
            vec![
                serde_json::json!({"delay": "50ms", "loss": "0%"}),
                serde_json::json!({"loss": "0%", "rate": "10mbit"})
            ]
        );
    }

    #[test]
    fn values_are_checked_where_they_are_written() {
        let node = |block: &str| {
            format!("{NETS}node \"n\" {{\n  image   = \"host\"\n  network = network.a\n  impair {{\n    {block}\n  }}\n}}\n")
        };
        check(
            &node("delay = \"50\""),
            "12:13: error: invalid `delay` in `impair`: expected a duration such as \"50ms\" or \"1s\" (units us, ms, s, m, h), found \"50\"",
        );
        check(
            &node("loss = \"101%\""),
            "12:12: error: invalid `loss` in `impair`: a percentage is at most \"100%\", found \"101%\"",
        );
        check(
            &node("rate = \"0kbit\""),
            "12:12: error: invalid `rate` in `impair`: expected a rate above zero (at least \"8bit\"), found \"0kbit\"",
        );
        check(
            &node("rate = \"10mbps\""),
            "12:12: error: invalid `rate` in `impair`: expected a bit rate such as \"10mbit\" or \"1gbit\" (units bit, kbit, mbit, gbit), found \"10mbps\" (tc reads \"mbps\" as bytes per second, so tg does not take it: write bits, such as \"10mbit\")",
        );
        check(
            &node("delay = \"2m\""),
            "12:13: error: invalid `delay` in `impair`: expected at most \"1m\", found \"2m\"",
        );
        check(
            &node("network = network.b"),
            "12:15: error: the node is not on network `network.b`",
        );
        check(
            &node("speed = \"1\""),
            "12:5: error: unknown attribute `speed` in an `impair` block",
        );
        // The network has a delay: the node's jitter is fine.
        check(&node("jitter = \"5ms\""), "ok");
        check(
            &node("delay = \"0ms\"\n    jitter = \"5ms\""),
            "11:3: error: the link to network `network.a`: `jitter` needs a `delay` (jitter varies the delay)",
        );
        check(
            "network \"a\" {\n  impair {\n    reorder = \"25%\"\n  }\n}\n",
            "2:3: error: `reorder` needs a `delay` (reordered packets are the ones sent without it)",
        );
        check(
            "network \"b\" {}\nnetwork \"a\" {\n  impair {\n    network = network.b\n  }\n}\n",
            "4:5: error: `network` in `impair` only goes in a `node` block",
        );
    }

    #[test]
    fn wait_for_checks_with_defaults_and_ranges() {
        let src = "network \"a\" {}\nnode \"n\" {\n  image = \"host\"\n  wait_for {\n    command = \"test -e /tmp/ready\"\n  }\n  wait_for {\n    tcp      = 8080\n    timeout  = \"5s\"\n    interval = \"200ms\"\n  }\n}\npackage \"pp\" {\n  on = [node.n]\n  wait_for {\n    tcp = 22\n  }\n}\n";
        let nodes = node_json(src);
        assert_eq!(
            nodes[0].1["wait_for"],
            serde_json::json!([
                {"command": "test -e /tmp/ready", "timeout": "1m", "interval": "1s"},
                {"tcp": 8080, "timeout": "5s", "interval": "200ms"}
            ])
        );
        assert_eq!(
            nodes[1].1["wait_for"],
            serde_json::json!([{"tcp": 22, "timeout": "1m", "interval": "1s"}])
        );
        let node = |block: &str| {
            format!("network \"a\" {{}}\nnode \"n\" {{\n  image = \"host\"\n  wait_for {{\n    {block}\n  }}\n}}\n")
        };
        check(
            &node("tcp = 70000"),
            "5:11: error: `tcp` in `wait_for` must be a port from 1 to 65535, found number 70000",
        );
        check(
            &node("timeout = \"5s\""),
            "4:3: error: `wait_for` needs `command` or `tcp`",
        );
        check(
            &node("tcp = 80\n    command = \"true\""),
            "5:5: error: `command` and `tcp` cannot both be set in one `wait_for`",
        );
        check(
            &node("tcp = 80\n    timeout = \"0s\""),
            "6:15: error: invalid `timeout` in `wait_for`: expected a duration above zero, found \"0s\"",
        );
        check(
            &node("tcp = 80\n    interval = \"soon\""),
            "6:16: error: invalid `interval` in `wait_for`: expected a duration such as \"50ms\" or \"1s\" (units us, ms, s, m, h), found \"soon\"",
        );
    }
}
