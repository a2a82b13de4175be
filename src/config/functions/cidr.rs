//! CIDR math: `cidrhost`, `cidrsubnet`, `cidrsubnets`, `cidrnetmask`.
//!
//! IPv4 and IPv6 prefixes, computed on integers with checked arithmetic so no
//! host number or prefix extension can overflow. Host bits set in a prefix
//! (`10.0.0.5/24`) are ignored, as in Terraform. Does not allocate addresses:
//! IPAM lives in the config evaluator.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hcl::Value;
use ipnet::IpNet;

use super::args::{Args, FnResult};

/// The prefix argument at `i`, as written and parsed.
fn prefix(a: &Args<'_>, i: usize) -> Result<(String, IpNet), String> {
    let text = a.string(i)?.into_owned();
    let net = text.parse::<IpNet>().map_err(|_| {
        format!(
            "{} is not a valid cidr prefix: {}; expected an address and a prefix length like `10.0.0.0/24`",
            a.at(i),
            super::args::quote_truncated(&text, 60)
        )
    })?;
    Ok((text, net))
}

/// The network address of `net` as an integer, and the address width.
fn base(net: &IpNet) -> (u128, u8) {
    match net {
        IpNet::V4(n) => (u128::from(u32::from(n.network())), 32),
        IpNet::V6(n) => (u128::from(n.network()), 128),
    }
}

/// An integer back to an address of the family of `net`; `None` if it does
/// not fit (callers check ranges first, so this is defensive).
fn addr(net: &IpNet, value: u128) -> Option<IpAddr> {
    match net {
        IpNet::V4(_) => u32::try_from(value)
            .ok()
            .map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        IpNet::V6(_) => Some(IpAddr::V6(Ipv6Addr::from(value))),
    }
}

/// `2^bits` as a human count, exact where it fits.
fn count(bits: u32) -> String {
    match 1u128.checked_shl(bits) {
        Some(n) if bits < 128 => n.to_string(),
        _ => "2^128".to_string(),
    }
}

pub(super) fn cidrhost(a: &Args<'_>) -> FnResult {
    let (text, net) = prefix(a, 0)?;
    let hostnum = a.int(1)?;
    let (start, width) = base(&net);
    let host_bits = u32::from(width - net.prefix_len());
    // The number of addresses; `None` means 2^128 (a /0 IPv6 prefix).
    let size: Option<u128> = if host_bits >= 128 {
        None
    } else {
        Some(1u128 << host_bits)
    };
    let magnitude = u128::from(hostnum.unsigned_abs());
    let offset = if hostnum >= 0 {
        match size {
            Some(size) if magnitude >= size => None,
            _ => Some(magnitude),
        }
    } else {
        // Negative host numbers count back from the end: -1 is the last address.
        match size {
            Some(size) => size.checked_sub(magnitude),
            None => Some(u128::MAX - (magnitude - 1)),
        }
    };
    let Some(offset) = offset else {
        return Err(format!(
            "host number {hostnum} does not fit in {} ({} addresses)",
            text.trim(),
            count(host_bits)
        ));
    };
    let value = start
        .checked_add(offset)
        .ok_or_else(|| format!("host number {hostnum} overflows {}", text.trim()))?;
    let ip = addr(&net, value)
        .ok_or_else(|| format!("host number {hostnum} overflows {}", text.trim()))?;
    Ok(Value::String(ip.to_string()))
}

pub(super) fn cidrsubnet(a: &Args<'_>) -> FnResult {
    let (text, net) = prefix(a, 0)?;
    let newbits = a.int(1)?;
    let netnum = a.int(2)?;
    let (start, width) = base(&net);
    if newbits < 0 {
        return Err(format!("{} must not be negative, found {newbits}", a.at(1)));
    }
    let prefix_len = i64::from(net.prefix_len());
    if newbits > i64::from(width) - prefix_len {
        return Err(format!(
            "cannot extend the /{prefix_len} prefix {} by {newbits} bits: the result would be longer than {width} bits",
            text.trim()
        ));
    }
    if netnum < 0 {
        return Err(format!("{} must not be negative, found {netnum}", a.at(2)));
    }
    // 0 <= newbits <= width - prefix_len <= 128, so these casts are exact.
    let new_len = prefix_len + newbits;
    let newbits = newbits as u32;
    let netnum = netnum as u128;
    if newbits < 128 && netnum >> newbits != 0 {
        return Err(format!(
            "network number {netnum} does not fit in {newbits} new bits ({} subnets of {})",
            count(newbits),
            text.trim()
        ));
    }
    let shift = u32::from(width) - new_len as u32;
    let offset = if netnum == 0 {
        0
    } else {
        netnum
            .checked_shl(shift)
            .ok_or_else(|| format!("network number {netnum} overflows {}", text.trim()))?
    };
    let value = start
        .checked_add(offset)
        .ok_or_else(|| format!("network number {netnum} overflows {}", text.trim()))?;
    let ip = addr(&net, value)
        .ok_or_else(|| format!("network number {netnum} overflows {}", text.trim()))?;
    Ok(Value::String(format!("{ip}/{new_len}")))
}

pub(super) fn cidrnetmask(a: &Args<'_>) -> FnResult {
    let (text, net) = prefix(a, 0)?;
    match net {
        IpNet::V4(n) => Ok(Value::String(n.netmask().to_string())),
        IpNet::V6(_) => Err(format!(
            "{} is an ipv6 prefix ({}); only ipv4 prefixes have a netmask",
            a.at(0),
            text.trim()
        )),
    }
}

pub(super) fn cidrsubnets(a: &Args<'_>) -> FnResult {
    let (text, net) = prefix(a, 0)?;
    let (start, width) = base(&net);
    let prefix_len = u32::from(net.prefix_len());
    let width = u32::from(width);
    // The last address of the base prefix (an all-ones host part).
    let host_mask = |len: u32| -> u128 {
        match u128::MAX.checked_shr(128 - width + len) {
            Some(m) if len < width => m,
            _ => 0,
        }
    };
    let end = start | host_mask(prefix_len);
    let mut out = Vec::with_capacity(a.len().saturating_sub(1));
    // The first address not yet allocated; `None` once the space is used up.
    let mut next: Option<u128> = Some(start);
    for i in 1..a.len() {
        let newbits = a.int(i)?;
        if newbits < 1 {
            return Err(format!(
                "{} must extend the prefix by at least 1 bit, found {newbits}",
                a.at(i)
            ));
        }
        if newbits > i64::from(width - prefix_len) {
            return Err(format!(
                "{} would extend the /{prefix_len} prefix {} by {newbits} bits, longer than {width} bits",
                a.at(i),
                text.trim()
            ));
        }
        // 1 <= newbits <= width - prefix_len, so the cast is exact.
        let len = prefix_len + newbits as u32;
        let mask = host_mask(len);
        // Align the next free address up to the size of this subnet.
        let aligned = next.and_then(|n| {
            if n & mask == 0 {
                Some(n)
            } else {
                (n | mask).checked_add(1)
            }
        });
        let Some(subnet) = aligned.filter(|s| *s <= end && s | mask <= end) else {
            return Err(format!(
                "not enough address space left in {} for {} (a /{len} subnet)",
                text.trim(),
                a.at(i)
            ));
        };
        let ip =
            addr(&net, subnet).ok_or_else(|| format!("{} overflows {}", a.at(i), text.trim()))?;
        out.push(Value::String(format!("{ip}/{len}")));
        next = (subnet | mask).checked_add(1);
    }
    Ok(Value::Array(out))
}
