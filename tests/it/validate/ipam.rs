//! Addresses and CIDRs IPAM hands out: fixed addresses and the host side
//! skipped, deterministic, recorded ones kept when something is added
//! before them.

use super::*;

#[test]
fn ipam_skips_fixed_addresses_and_the_host_side() {
    let (_d, opts) = inline(IPAM_BED);
    let tb = load_with(opts);
    let got = addresses(&tb);
    assert_eq!(got["node.fixed"], "10.42.0.3");
    // Lowest free, skipping .0, .1 (host side) and the fixed .3.
    assert_eq!(got["node.edge[0]"], "10.42.0.2");
    assert_eq!(got["node.edge[1]"], "10.42.0.4");
    assert_eq!(got["node.edge[2]"], "10.42.0.5");
    assert_eq!(attr(&tb, "network.lab", "gateway"), json!("10.42.0.1"));
    assert!(!got.values().any(|a| a == "10.42.0.1"));
}

#[test]
fn ipam_is_deterministic() {
    let (_d, opts) = inline(IPAM_BED);
    let a = addresses(&load_with(opts.clone()));
    let b = addresses(&load_with(opts));
    assert_eq!(a, b);
}

#[test]
fn ipam_fills_a_small_network_without_the_host_side() {
    // A /29 has 8 addresses: .0, .1 (host side) and .7 (broadcast) are never
    // given, so it holds exactly five nodes.
    let (_d, opts) = inline(
        r#"
network "lab" {
  cidr = "10.9.0.0/29"
}
node "n" {
  count = 5
  image = "host"
}
"#,
    );
    let got: Vec<String> = addresses(&load_with(opts)).into_values().collect();
    assert_eq!(
        got,
        ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
    );
}

#[test]
fn ipam_keeps_recorded_addresses_when_a_node_is_added_before() {
    // State recorded `node.b` at .2; a new node `a` declared before it must
    // not take .2 away: `b` keeps its address and `a` gets the next free one.
    let (_d, mut opts) = inline(
        r#"
network "lab" {
  cidr = "10.42.0.0/24"
}
node "a" {
  image = "host"
}
node "b" {
  image = "host"
}
"#,
    );
    let mut recorded = BTreeMap::new();
    recorded.insert("lab".to_string(), "10.42.0.2".parse::<Ipv4Addr>().unwrap());
    opts.prior = Prior {
        node_addresses: BTreeMap::from([("node.b".parse().unwrap(), recorded)]),
        network_cidrs: BTreeMap::new(),
    };
    let got = addresses(&load_with(opts));
    assert_eq!(got["node.b"], "10.42.0.2");
    assert_eq!(got["node.a"], "10.42.0.3");
}

#[test]
fn ipam_gives_pool_cidrs_to_networks_without_cidr_and_keeps_them() {
    let text = r#"
network "fixed" {
  cidr = "10.200.0.0/24"
}
network "a" {}
network "b" {}
node "x" {
  image   = "host"
  network = network.b
}
"#;
    let (_d, mut opts) = inline(text);
    let tb = load_with(opts.clone());
    // The first free /24s of 10.200.0.0/16, skipping the one in use.
    assert_eq!(attr(&tb, "network.a", "cidr"), json!("10.200.1.0/24"));
    assert_eq!(attr(&tb, "network.b", "cidr"), json!("10.200.2.0/24"));
    assert_eq!(attr(&tb, "node.x", "address"), json!("10.200.2.2"));
    // Recorded CIDRs stay, even when the order of first-free would differ.
    opts.prior.network_cidrs = BTreeMap::from([(
        "network.b".parse().unwrap(),
        "10.200.7.0/24".parse().unwrap(),
    )]);
    let tb = load_with(opts);
    assert_eq!(attr(&tb, "network.a", "cidr"), json!("10.200.1.0/24"));
    assert_eq!(attr(&tb, "network.b", "cidr"), json!("10.200.7.0/24"));
    assert_eq!(attr(&tb, "node.x", "address"), json!("10.200.7.2"));
}

/// Regression: a new network without `cidr`, declared before an existing
/// one, took the existing network's recorded /24 (pool CIDRs were handed
/// out in declaration order, each looking at its own record only).
#[test]
fn ipam_pool_keeps_recorded_cidrs_when_a_network_is_added_before() {
    let (_d, mut opts) = inline(
        r#"
network "new" {}
network "old" {}
node "x" {
  image   = "host"
  network = network.old
}
"#,
    );
    opts.prior = Prior {
        network_cidrs: BTreeMap::from([(
            "network.old".parse().unwrap(),
            "10.200.0.0/24".parse().unwrap(),
        )]),
        node_addresses: BTreeMap::from([(
            "node.x".parse().unwrap(),
            BTreeMap::from([("old".to_string(), "10.200.0.2".parse().unwrap())]),
        )]),
    };
    let tb = load_with(opts);
    assert_eq!(attr(&tb, "network.old", "cidr"), json!("10.200.0.0/24"));
    assert_eq!(attr(&tb, "network.new", "cidr"), json!("10.200.1.0/24"));
    assert_eq!(attr(&tb, "node.x", "address"), json!("10.200.0.2"));
}
