//! Cases of the CIDR and address functions (`cidrhost`, `cidrsubnet`, ...).

use super::*;

#[test]
fn cidr_functions() {
    let mut t = Table::default();
    t.ok(r#"cidrhost("10.42.0.0/24", 10)"#, json!("10.42.0.10"));
    t.ok(r#"cidrhost("10.42.0.0/24", 0)"#, json!("10.42.0.0"));
    t.ok(r#"cidrhost("10.42.0.0/24", 255)"#, json!("10.42.0.255"));
    t.ok(r#"cidrhost("10.42.0.0/24", -1)"#, json!("10.42.0.255"));
    t.ok(r#"cidrhost("10.42.0.0/24", -256)"#, json!("10.42.0.0"));
    t.ok(r#"cidrhost("10.12.112.0/20", 16)"#, json!("10.12.112.16"));
    t.ok(r#"cidrhost("10.12.112.0/20", 268)"#, json!("10.12.113.12"));
    t.ok(r#"cidrhost("10.0.0.77/24", 5)"#, json!("10.0.0.5"));
    t.ok(r#"cidrhost("10.0.0.0/24", "7")"#, json!("10.0.0.7"));
    t.ok(r#"cidrhost("0.0.0.0/0", -1)"#, json!("255.255.255.255"));
    t.ok(r#"cidrhost("192.168.1.9/32", 0)"#, json!("192.168.1.9"));
    t.ok(
        r#"cidrhost("fd00:fd12:3456:7890::/56", 16)"#,
        json!("fd00:fd12:3456:7800::10"),
    );
    t.ok(
        r#"cidrhost("::/0", -1)"#,
        json!("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    );
    t.err(
        r#"cidrhost("10.0.0.0/24", 300)"#,
        "host number 300 does not fit in 10.0.0.0/24 (256 addresses)",
    );
    t.err(
        r#"cidrhost("10.0.0.0/24", -257)"#,
        "host number -257 does not fit in 10.0.0.0/24 (256 addresses)",
    );
    t.err(
        r#"cidrhost("10.0.0.0/33", 1)"#,
        "`prefix` is not a valid cidr prefix",
    );
    t.err(
        r#"cidrhost("10.0.0.0", 1)"#,
        "`prefix` is not a valid cidr prefix",
    );
    t.err(
        r#"cidrhost("10.0.0.0/24", 1.5)"#,
        "`hostnum` must be a whole number, found 1.5",
    );
    t.err(
        r#"cidrhost("10.0.0.0/24")"#,
        "expected 2 arguments, found 1; usage: `cidrhost(prefix, hostnum)`",
    );
    t.err(
        r#"cidrhost(["10.0.0.0/24"], 1)"#,
        "`prefix` must be a string, found a list of 1 element",
    );
    t.err(r#"cidrhost(null, 1)"#, "`prefix` must not be null");

    t.ok(r#"cidrsubnet("10.0.0.0/16", 8, 2)"#, json!("10.0.2.0/24"));
    t.ok(
        r#"cidrsubnet("172.16.0.0/12", 4, 2)"#,
        json!("172.18.0.0/16"),
    );
    t.ok(
        r#"cidrsubnet("10.1.2.0/24", 4, 15)"#,
        json!("10.1.2.240/28"),
    );
    t.ok(r#"cidrsubnet("10.1.2.3/24", 0, 0)"#, json!("10.1.2.0/24"));
    t.ok(
        r#"cidrsubnet("0.0.0.0/0", 32, 4294967295)"#,
        json!("255.255.255.255/32"),
    );
    t.ok(
        r#"cidrsubnet("fd00:fd12:3456:7890::/56", 16, 162)"#,
        json!("fd00:fd12:3456:7800:a200::/72"),
    );
    t.ok(r#"cidrsubnet("::/0", 0, 0)"#, json!("::/0"));
    t.err(
        r#"cidrsubnet("10.0.0.0/24", 9, 0)"#,
        "cannot extend the /24 prefix 10.0.0.0/24 by 9 bits",
    );
    t.err(
        r#"cidrsubnet("10.0.0.0/16", 8, 256)"#,
        "network number 256 does not fit in 8 new bits (256 subnets of 10.0.0.0/16)",
    );
    t.err(
        r#"cidrsubnet("10.0.0.0/16", -1, 0)"#,
        "`newbits` must not be negative",
    );
    t.err(
        r#"cidrsubnet("10.0.0.0/16", 4, -1)"#,
        "`netnum` must not be negative",
    );
    t.err(
        r#"cidrsubnet("10.0.0.0/16", 9223372036854775807, 0)"#,
        "cannot extend",
    );

    t.ok(
        r#"cidrsubnets("10.1.0.0/16", 4, 4, 8, 4)"#,
        json!([
            "10.1.0.0/20",
            "10.1.16.0/20",
            "10.1.32.0/24",
            "10.1.48.0/20"
        ]),
    );
    t.ok(
        r#"cidrsubnets("10.0.0.0/24", 1, 1)"#,
        json!(["10.0.0.0/25", "10.0.0.128/25"]),
    );
    t.ok(r#"cidrsubnets("10.0.0.0/24")"#, json!([]));
    t.ok(
        r#"cidrsubnets("fd00:fd12:3456:7890::/56", 16, 16, 16, 32)"#,
        json!([
            "fd00:fd12:3456:7800::/72",
            "fd00:fd12:3456:7800:100::/72",
            "fd00:fd12:3456:7800:200::/72",
            "fd00:fd12:3456:7800:300::/88"
        ]),
    );
    t.ok(
        r#"cidrsubnets("0.0.0.0/0", 1, 1)"#,
        json!(["0.0.0.0/1", "128.0.0.0/1"]),
    );
    t.err(
        r#"cidrsubnets("10.0.0.0/24", 1, 1, 1)"#,
        "not enough address space left in 10.0.0.0/24 for argument 4 (`newbits`) (a /25 subnet)",
    );
    t.err(
        r#"cidrsubnets("10.0.0.0/24", 0)"#,
        "must extend the prefix by at least 1 bit",
    );
    t.err(
        r#"cidrsubnets("10.0.0.0/24", 9)"#,
        "by 9 bits, longer than 32 bits",
    );

    t.ok(r#"cidrnetmask("172.16.0.0/12")"#, json!("255.240.0.0"));
    t.ok(r#"cidrnetmask("10.0.0.0/32")"#, json!("255.255.255.255"));
    t.ok(r#"cidrnetmask("0.0.0.0/0")"#, json!("0.0.0.0"));
    t.err(
        r#"cidrnetmask("fd00::/8")"#,
        "only ipv4 prefixes have a netmask",
    );
    t.err(r#"cidrnetmask("nope")"#, "not a valid cidr prefix");
    t.finish();
}
