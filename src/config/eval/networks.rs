//! Networks: instances, CIDRs (checked, overlaps, pool /24s with state's
//! recorded ones kept) and the values `network.NAME` gives.

use super::*;

impl Evaluator<'_> {
    pub(super) fn eval_networks(&mut self) {
        let blocks = self.blocks;
        let decls = self.decl.of("network").cloned().unwrap_or_default();
        // Order networks by their references to each other.
        let names: Vec<String> = decls.keys().cloned().collect();
        let edges = edges_by_name(&names, |i| {
            blocks[decls[&names[i]]]
                .attrs
                .values()
                .flat_map(|a| referenced_names(a, "network"))
                .collect()
        });
        let order = topo_order(&edges);
        let mut pending: Vec<usize> = Vec::new();
        for i in order {
            let name = names[i].clone();
            self.open_value(format!("network.{name}"));
            let bi = decls[&name];
            let b = &blocks[bi];
            let Some(exp) = self.expand(b) else { continue };
            self.expansions
                .insert((ResourceKind::Network, name.clone()), exp.clone());
            let prevent = self.prevent_destroy(b);
            let mark = self.attr_marks(b, &["cidr", "nat"]);
            let sensitive = mark
                .as_ref()
                .map(sensitivity::network_paths)
                .unwrap_or_default();
            if let Some(m) = mark {
                self.marks.networks.insert(name.clone(), m);
            }
            for (key, rep) in exp.instances() {
                let addr = InstanceAddr::new(ResourceKind::Network, name.clone(), key);
                let host = addr.host_name();
                let cidr_span = b
                    .attr("cidr")
                    .map(|a| a.expr_span.clone())
                    .unwrap_or(b.span.clone());
                let cidr = match b.attr("cidr").cloned() {
                    Some(a) => {
                        match self.eval(&a, &rep) {
                            Some(Value::String(s)) => match parse_cidr(&s) {
                                Ok(c) => Some(c),
                                Err((why, help)) => {
                                    self.err(
                                        Diagnostic::error(format!(
                                            "invalid CIDR `{}`: {why}",
                                            self.shown(&a.expr, &s)
                                        ))
                                        .at(a.expr_span.clone())
                                        .help(help),
                                    );
                                    continue;
                                }
                            },
                            Some(Value::Null) => None,
                            Some(other) => {
                                self.err(Diagnostic::error(format!("`cidr` must be a string such as \"10.42.0.0/24\", found {}", self.describe_in(&a, &other))).at(a.expr_span.clone()));
                                continue;
                            }
                            None => continue,
                        }
                    }
                    None => None,
                };
                let nat = self.eval_bool(b, "nat", &rep).unwrap_or(false);
                let impair = self.eval_network_impair(b, &rep);
                let depends_on = self.static_depends_on(b);
                let n = NetInst {
                    addr: addr.clone(),
                    block: bi,
                    host,
                    cidr,
                    cidr_span,
                    nat,
                    impair,
                    prevent_destroy: prevent,
                    depends_on,
                    sensitive: sensitive.clone(),
                };
                if n.cidr.is_none() {
                    pending.push(self.nets.len());
                }
                self.net_by_addr.insert(addr, self.nets.len());
                self.nets.push(n);
            }
        }
        // Network instance names name host objects (and key nodes'
        // `addresses`): like host names, short enough and unique.
        let mut seen: HashMap<String, InstanceAddr> = HashMap::new();
        for n in &self.nets {
            let span = self.blocks[n.block].span.clone();
            if let Err(why) = names::check_hostname(&n.host) {
                let why = why.replacen("host name", "network name", 1);
                self.diags.push(
                    Diagnostic::error(why)
                        .at(span.clone())
                        .help("use a shorter network name or key"),
                );
            }
            if let Some(other) = seen.insert(n.host.clone(), n.addr.clone()) {
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{}` and `{other}` would both be named `{}`",
                        n.addr, n.host
                    ))
                    .at(span)
                    .help("rename one of the networks"),
                );
            }
        }
        self.close_value();
        // Overlaps among fixed CIDRs.
        let fixed: Vec<usize> = (0..self.nets.len())
            .filter(|&i| self.nets[i].cidr.is_some())
            .collect();
        for (x, &i) in fixed.iter().enumerate() {
            for &j in &fixed[..x] {
                let (a, b) = (
                    self.nets[j].cidr.unwrap_or_default(),
                    self.nets[i].cidr.unwrap_or_default(),
                );
                if ipam::overlaps(&a, &b) {
                    let d = Diagnostic::error(format!(
                        "network `{}` ({b}) overlaps network `{}` ({a})",
                        self.nets[i].addr, self.nets[j].addr
                    ))
                    .at(self.nets[i].cidr_span.clone())
                    .help("networks of one testbed need disjoint CIDRs: pick another range");
                    self.err(d);
                }
            }
        }
        // Pool CIDRs for the rest: first every network keeps the /24 state
        // recorded for it (when still free), so a network added before an
        // existing one cannot take its range; then the others get the
        // first free /24, in declaration order.
        pending.sort_by_key(|&i| (self.nets[i].block, i));
        let mut taken: Vec<Ipv4Net> = self.nets.iter().filter_map(|n| n.cidr).collect();
        let mut rest = Vec::new();
        for i in pending {
            // The prior this evaluation was given (not the options'
            // default): what the session's state recorded.
            let prior = self.prior.network_cidrs.get(&self.nets[i].addr).copied();
            match prior.filter(|p| !taken.iter().any(|t| ipam::overlaps(t, p))) {
                Some(c) => {
                    taken.push(c);
                    self.nets[i].cidr = Some(c);
                }
                None => rest.push(i),
            }
        }
        for i in rest {
            match ipam::pick_pool_cidr(&taken, None) {
                Some(c) => {
                    taken.push(c);
                    self.nets[i].cidr = Some(c);
                }
                None => {
                    let d = Diagnostic::error(format!(
                        "no free /24 left in the pool {} for network `{}`",
                        ipam::POOL,
                        self.nets[i].addr
                    ))
                    .at(self.nets[i].cidr_span.clone())
                    .help("give the network a `cidr`");
                    self.err(d);
                }
            }
        }
    }
}

pub(super) fn network_object(n: &NetInst) -> hcl::Map<String, Value> {
    let mut o = hcl::Map::new();
    o.insert("id".into(), Value::from(n.addr.to_string()));
    o.insert("name".into(), Value::from(n.host.as_str()));
    match n.cidr {
        Some(c) => {
            o.insert("cidr".into(), Value::from(c.to_string()));
            o.insert("gateway".into(), Value::from(ipam::gateway(c).to_string()));
        }
        None => {
            o.insert("cidr".into(), Value::Null);
            o.insert("gateway".into(), Value::Null);
        }
    }
    o.insert("nat".into(), Value::from(n.nat));
    o
}

pub(super) fn parse_cidr(s: &str) -> Result<Ipv4Net, (String, String)> {
    let net: Ipv4Net = s.parse().map_err(|_| {
        (
            "expected an IPv4 network such as 10.42.0.0/24".to_string(),
            "write the network address and prefix length, such as `10.42.0.0/24`".to_string(),
        )
    })?;
    if net.network() != net.addr() {
        return Err((
            "it has host bits set".to_string(),
            format!("did you mean `{}`?", net.trunc()),
        ));
    }
    if net.prefix_len() > 30 {
        return Err((
            "it is too small: a network needs at least a /30 (the host side and one node)"
                .to_string(),
            format!(
                "use a /30 or larger, such as `{}`",
                Ipv4Net::new(net.network(), 24)
                    .map(|n| n.trunc())
                    .unwrap_or(net)
            ),
        ));
    }
    if net.prefix_len() < 8 {
        return Err((
            "it is too large".to_string(),
            "use a prefix of /8 or longer, such as `10.42.0.0/24`".to_string(),
        ));
    }
    if let Some((range, what)) = ipam::unusable(&net) {
        let how = if range == net {
            format!("it is {what}")
        } else if range.contains(&net) {
            format!("it lies in {what} {range}")
        } else {
            format!("it overlaps {what} {range}")
        };
        return Err((
            format!("{how}, where packets never reach a node"),
            "use a private range: 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, such as `10.42.0.0/24`".to_string(),
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::check;

    fn net(cidr: &str) -> String {
        format!("network \"lab\" {{\n  cidr = \"{cidr}\"\n}}\noutput \"c\" {{\n  value = network.lab.cidr\n}}\n")
    }

    #[test]
    fn cidrs() {
        check(&net("10.42.0.0/24"), r#"c = "10.42.0.0/24""#);
        check(&net("10.0.0.0/8"), r#"c = "10.0.0.0/8""#);
        check(&net("192.168.7.0/30"), r#"c = "192.168.7.0/30""#);
        check(
            &net("10.42.0.1/24"),
            "2:10: error: invalid CIDR `10.42.0.1/24`: it has host bits set",
        );
        check(&net("10.42.0.0/31"), "2:10: error: invalid CIDR `10.42.0.0/31`: it is too small: a network needs at least a /30 (the host side and one node)");
        check(
            &net("10.0.0.0/7"),
            "2:10: error: invalid CIDR `10.0.0.0/7`: it is too large",
        );
        check(
            &net("lab"),
            "2:10: error: invalid CIDR `lab`: expected an IPv4 network such as 10.42.0.0/24",
        );
    }

    #[test]
    fn cidrs_that_cannot_carry_traffic() {
        check(&net("127.0.0.0/8"), "2:10: error: invalid CIDR `127.0.0.0/8`: it is the loopback range, where packets never reach a node");
        check(&net("127.5.0.0/16"), "2:10: error: invalid CIDR `127.5.0.0/16`: it lies in the loopback range 127.0.0.0/8, where packets never reach a node");
        check(&net("0.0.0.0/8"), "2:10: error: invalid CIDR `0.0.0.0/8`: it is the \"this network\" range, where packets never reach a node");
        check(&net("169.254.1.0/24"), "2:10: error: invalid CIDR `169.254.1.0/24`: it lies in the link-local range 169.254.0.0/16, where packets never reach a node");
        check(&net("169.0.0.0/8"), "2:10: error: invalid CIDR `169.0.0.0/8`: it overlaps the link-local range 169.254.0.0/16, where packets never reach a node");
        check(&net("224.0.0.0/24"), "2:10: error: invalid CIDR `224.0.0.0/24`: it lies in the multicast range 224.0.0.0/4, where packets never reach a node");
        check(&net("255.255.255.0/24"), "2:10: error: invalid CIDR `255.255.255.0/24`: it lies in the reserved range (with the broadcast address 255.255.255.255) 240.0.0.0/4, where packets never reach a node");
        check(&net("240.0.0.0/8"), "2:10: error: invalid CIDR `240.0.0.0/8`: it lies in the reserved range (with the broadcast address 255.255.255.255) 240.0.0.0/4, where packets never reach a node");
    }

    #[test]
    fn overlaps_and_the_pool() {
        check(
            "network \"a\" {\n  cidr = \"10.1.0.0/16\"\n}\nnetwork \"b\" {\n  cidr = \"10.1.2.0/24\"\n}\n",
            "5:10: error: network `network.b` (10.1.2.0/24) overlaps network `network.a` (10.1.0.0/16)",
        );
        check(
            "network \"fixed\" {\n  cidr = \"10.200.0.0/24\"\n}\nnetwork \"p\" {}\noutput \"c\" {\n  value = network.p.cidr\n}\n",
            r#"c = "10.200.1.0/24""#,
        );
        check(
            "network \"n\" {\n  count = 2\n}\noutput \"c\" {\n  value = network.n[*].cidr\n}\n",
            r#"c = ["10.200.0.0/24","10.200.1.0/24"]"#,
        );
        check(
            "network \"n\" {\n  for_each = toset([\"eu\", \"us\"])\n  nat = each.key == \"eu\"\n}\noutput \"c\" {\n  value = { for k, n in network.n : k => [n.name, n.gateway, n.nat] }\n}\n",
            r#"c = {"eu":["n-eu","10.200.0.1",true],"us":["n-us","10.200.1.1",false]}"#,
        );
    }
}
