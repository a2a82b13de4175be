//! Addresses: IPAM for node interfaces - fixed addresses, then those state
//! recorded, then the lowest free one (see `config::ipam`).

use super::*;

impl Evaluator<'_> {
    pub(super) fn assign_addresses(&mut self) {
        let mut allocs: Vec<Option<NetAlloc>> = self
            .nets
            .iter()
            .map(|n| n.cidr.map(NetAlloc::new))
            .collect();
        let mut owner: HashMap<(usize, Ipv4Addr), InstanceAddr> = HashMap::new();
        for n in &mut self.nodes {
            n.addresses = vec![Ipv4Addr::UNSPECIFIED; n.networks.len()];
        }
        // 1. fixed addresses (first network)
        for i in 0..self.nodes.len() {
            let Some((ip, span)) = self.nodes[i].fixed.clone() else {
                continue;
            };
            let net = self.nodes[i].networks[0];
            let Some(alloc) = allocs[net].as_mut() else {
                continue;
            };
            match alloc.reserve(ip) {
                Ok(()) => {
                    owner.insert((net, ip), self.nodes[i].addr.clone());
                    self.nodes[i].addresses[0] = ip;
                }
                Err(r) => {
                    let cidr = alloc.cidr;
                    let netname = self.nets[net].addr.to_string();
                    let d = match r {
                        Refused::OutOfRange => Diagnostic::error(format!(
                            "address {ip} is outside `{netname}` ({cidr})"
                        ))
                        .help(format!(
                            "pick an address in {cidr}, such as `cidrhost(network.{}.cidr, 10)`",
                            self.nets[net].addr.name()
                        )),
                        Refused::Reserved(what) => Diagnostic::error(format!(
                            "address {ip} is {what} of `{netname}` ({cidr})"
                        ))
                        .help("nodes cannot use .0, .1 or the broadcast address: pick another"),
                        Refused::Taken => Diagnostic::error(format!(
                            "address {ip} is used twice: by `{}` and `{}`",
                            owner
                                .get(&(net, ip))
                                .map(|a| a.to_string())
                                .unwrap_or_default(),
                            self.nodes[i].addr
                        ))
                        .help("give each node its own address"),
                    };
                    self.diags.push(d.at(span));
                }
            }
        }
        // 2. addresses recorded in state
        let prior: &Prior = self.prior;
        for n in &mut self.nodes {
            let Some(recorded) = prior.node_addresses.get(&n.addr) else {
                continue;
            };
            for (slot, &net) in n.networks.iter().enumerate() {
                if n.addresses[slot] != Ipv4Addr::UNSPECIFIED {
                    continue;
                }
                let Some(ip) = recorded.get(&self.nets[net].host) else {
                    continue;
                };
                if let Some(alloc) = allocs[net].as_mut() {
                    if alloc.reserve(*ip).is_ok() {
                        n.addresses[slot] = *ip;
                    }
                }
            }
        }
        // 3. the lowest free address, in declaration order
        'assign: for i in 0..self.nodes.len() {
            for slot in 0..self.nodes[i].networks.len() {
                if self.nodes[i].addresses[slot] != Ipv4Addr::UNSPECIFIED {
                    continue;
                }
                let net = self.nodes[i].networks[slot];
                let Some(alloc) = allocs[net].as_mut() else {
                    continue;
                };
                match alloc.next_free() {
                    Some(ip) => self.nodes[i].addresses[slot] = ip,
                    None => {
                        let cap = alloc.capacity();
                        let cidr = alloc.cidr;
                        let span = self.nets[net].cidr_span.clone();
                        let d = Diagnostic::error(format!(
                            "network `{}` ({cidr}) has no address left for `{}`: it holds {cap} nodes",
                            self.nets[net].addr, self.nodes[i].addr
                        ))
                        .at(span)
                        .help("use a larger CIDR (a smaller prefix length) or fewer nodes");
                        self.diags.push(d);
                        break 'assign;
                    }
                }
            }
        }
        // Nodes left without an address (a full network) are not evaluated
        // further: the capacity error says it all.
        for n in &self.nodes {
            if n.addresses.contains(&Ipv4Addr::UNSPECIFIED) {
                self.poisoned.insert(format!("node.{}", n.addr.name()));
            }
        }
        // Base objects, so nodes can refer to each other's addresses.
        for i in 0..self.nodes.len() {
            let obj = self.base_node_object(i);
            self.nodes[i].object = Value::Object(obj);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::testing::check;

    #[test]
    fn addresses() {
        let bed = |fixed: &str| {
            format!("network \"lab\" {{\n  cidr = \"10.9.0.0/29\"\n}}\nnode \"f\" {{\n  image   = \"host\"\n  address = \"{fixed}\"\n}}\nnode \"n\" {{\n  count = 2\n  image = \"host\"\n}}\noutput \"a\" {{\n  value = [node.f.address, node.n[0].address, node.n[1].address]\n}}\n")
        };
        check(
            &bed("10.9.0.3"),
            r#"a = ["10.9.0.3","10.9.0.2","10.9.0.4"]"#,
        );
        check(&bed("10.9.0.1"), "6:13: error: address 10.9.0.1 is the host side's address (.1) of `network.lab` (10.9.0.0/29)");
        check(
            &bed("10.9.0.7"),
            "6:13: error: address 10.9.0.7 is the broadcast address of `network.lab` (10.9.0.0/29)",
        );
        check(
            &bed("10.8.0.3"),
            "6:13: error: address 10.8.0.3 is outside `network.lab` (10.9.0.0/29)",
        );
        check(
            "network \"lab\" {\n  cidr = \"10.9.0.0/30\"\n}\nnode \"n\" {\n  count = 2\n  image = \"host\"\n}\n",
            "2:10: error: network `network.lab` (10.9.0.0/30) has no address left for `node.n[1]`: it holds 1 nodes",
        );
    }
}
