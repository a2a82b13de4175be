//! Unit tests of the netns platform's pure parts (names, records, specs).
use super::*;

#[test]
fn refuses_non_root_and_non_linux() {
    assert_eq!(host_refusal(0, "linux"), None);
    let r = host_refusal(1000, "linux").unwrap();
    assert!(r.contains("needs root") && r.contains("as root"), "{r}");
    let r = host_refusal(0, "macos").unwrap();
    assert!(r.contains("needs Linux") && r.contains("`macos`"), "{r}");
}

#[test]
fn networks_get_plan_time_warnings() {
    let mut n = NetworkSpec {
        name: "lab".into(),
        cidr: "10.0.0.0/24".parse().unwrap(),
        gateway: Ipv4Addr::new(10, 0, 0, 1),
        nat: true,
        hosts: Vec::new(),
    };
    let msgs = network_warnings(&n, false, &[]);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].contains("`nat = true`") && msgs[0].contains("`lab`"));
    assert!(network_warnings(&n, true, &[]).is_empty());
    let routes = net::host::parse_proc_route(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
         eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\n\
         eth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\n",
    );
    let msgs = network_warnings(&n, true, &routes);
    assert_eq!(
        msgs.len(),
        1,
        "only the 10.0.0.0/16 route, not the default: {msgs:?}"
    );
    assert!(
        msgs[0].contains("`10.0.0.0/24` overlaps the host's route to `10.0.0.0/16` (dev `eth0`)")
            && msgs[0].contains("through nat"),
        "{}",
        msgs[0]
    );
    n.nat = false;
    n.cidr = "10.1.0.0/24".parse().unwrap();
    assert!(network_warnings(&n, false, &routes).is_empty());
    // The platform reads this host's routes itself.
    let p = NetnsPlatform::new(NetnsOptions::default());
    let _ = p.check_spec(&Spec::Network(n));
}

#[test]
fn veth_names_follow_interface_order() {
    let spec = NodeSpec {
        settings: Default::default(),
        host: None,
        hostname: "edge-0".into(),
        image: "host".into(),
        cpus: None,
        memory_mib: None,
        labels: BTreeMap::new(),
        interfaces: vec![
            crate::platform::Interface {
                impair: Default::default(),
                network: "a".into(),
                address: Ipv4Addr::new(10, 0, 0, 2),
                prefix_len: 24,
                gateway: Ipv4Addr::new(10, 0, 0, 1),
            },
            crate::platform::Interface {
                impair: Default::default(),
                network: "b".into(),
                address: Ipv4Addr::new(10, 1, 0, 2),
                prefix_len: 24,
                gateway: Ipv4Addr::new(10, 1, 0, 1),
            },
        ],
    };
    let v = node_veths("abcd0123", "5f3a09c1d2e4", &spec);
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[0],
        names::veth_name("abcd0123", "a", "5f3a09c1d2e4", "eth0")
    );
    assert_eq!(
        v[1],
        names::veth_name("abcd0123", "b", "5f3a09c1d2e4", "eth1")
    );
    // Without a recorded identity the hostname is the node's id.
    assert_eq!(node_id(&serde_json::Value::Null, &spec), "edge-0");
    let p = to_private(&NodePrivate {
        sid: "abcd0123".into(),
        id: Some("5f3a09c1d2e4".into()),
        dir: PathBuf::from("/x"),
        veths: v,
        ssh_host_key: None,
        host: None,
    });
    assert_eq!(node_id(&p, &spec), "5f3a09c1d2e4");
}
