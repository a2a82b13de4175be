//! Impairments of a node's links, with the host's `tc` (iproute2).
//!
//! Each link is a veth pair whose router-side end lives in the session's
//! router namespace, which no node can enter: its egress queue (traffic
//! towards the node) gets the impairment, so a node can neither remove it
//! nor see it. Two impaired nodes each delay what they receive, so a
//! `delay` on a network adds twice the delay to a round trip between two
//! of its nodes, like a delay on both ends of a wire.
//!
//! - anything but `rate` alone: a root `netem` qdisc (with netem's own
//!   `rate` when one is asked for);
//! - `rate` alone: a root `tbf` qdisc, which needs no netem (some kernels
//!   are built without `sch_netem`);
//! - nothing: the veth's default queue (no root qdisc of tg's).
//!
//! Reading decodes `tc qdisc show` back into an [`Impairment`], so a
//! qdisc deleted or changed behind tg's back is drift the next plan
//! repairs. A node whose links should be unimpaired is read over netlink
//! first (the kind of each root qdisc, see `net::links::inspect`): only
//! a `tbf` or `netem` someone added by hand makes it run `tc`.

use std::path::Path;
use std::process::Command;

use super::net::{router_netns_path, NetError, NetResult};
use super::NetnsPlatform;
use crate::platform::{Impairment, Interface, NodeSpec, PlatformError, PlatformResult};
use crate::units::{Percent, Rate, Span};

/// How much tbf may send at once: 10 ms at the rate, at least 16 KiB.
fn tbf_burst(rate: Rate) -> u64 {
    (rate.bits_per_sec / 8 / 100).max(16 * 1024)
}

/// The `tc qdisc replace` arguments that give `dev` impairment `imp`
/// (`None`: nothing to add, the default queue is right).
pub fn qdisc_args(dev: &str, imp: &Impairment) -> Option<Vec<String>> {
    if !imp.has_effect() {
        return None;
    }
    let mut a: Vec<String> = ["qdisc", "replace", "dev", dev, "root", "handle", "1:"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let pct = |p: Option<Percent>| p.filter(|p| !p.is_zero());
    if imp.needs_netem() {
        a.extend(["netem".into(), "limit".into(), "10000".into()]);
        if let Some(d) = imp.delay.filter(|d| !d.is_zero()) {
            a.extend(["delay".into(), format!("{}us", d.micros)]);
            if let Some(j) = imp.jitter.filter(|j| !j.is_zero()) {
                a.push(format!("{}us", j.micros));
            }
        }
        for (key, p) in [
            ("loss", imp.loss),
            ("duplicate", imp.duplicate),
            ("reorder", imp.reorder),
            ("corrupt", imp.corrupt),
        ] {
            if let Some(p) = pct(p) {
                a.extend([key.to_string(), p.to_string()]);
            }
        }
        if let Some(r) = imp.rate {
            a.extend(["rate".into(), format!("{}bit", r.bits_per_sec)]);
        }
    } else if let Some(r) = imp.rate {
        a.extend([
            "tbf".into(),
            "rate".into(),
            format!("{}bit", r.bits_per_sec),
            "burst".into(),
            tbf_burst(r).to_string(),
            "latency".into(),
            "200ms".into(),
        ]);
    }
    Some(a)
}

/// Run `tc ARGS` in the session's router namespace.
fn tc(run_dir: &Path, sid: &str, args: &[String]) -> NetResult<String> {
    let ns = router_netns_path(run_dir, sid);
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .arg("--")
        .arg("tc")
        .args(args)
        .output()
        .map_err(|e| NetError::Tool {
            message: format!(
                "cannot run `tc`: {e} (impairments need `tc` from the `iproute2` package, and `nsenter`)"
            ),
            detail: String::new(),
        })?;
    if !out.status.success() {
        let detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let message = if detail.contains("qdisc kind is unknown") {
            "this kernel has no `netem` qdisc (`sch_netem`): load it (`modprobe sch_netem`) or \
             use a kernel built with CONFIG_NET_SCH_NETEM; only `rate` works without it"
                .to_string()
        } else {
            format!("`tc {}` failed", args.join(" "))
        };
        return Err(NetError::Tool { message, detail });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Give router-side veth `dev` impairment `imp`, replacing what it had.
pub fn apply(run_dir: &Path, sid: &str, dev: &str, imp: &Impairment) -> NetResult<()> {
    match qdisc_args(dev, imp) {
        Some(args) => tc(run_dir, sid, &args).map(|_| ()),
        None => {
            if has_root(run_dir, sid, dev)? {
                let args: Vec<String> = ["qdisc", "del", "dev", dev, "root"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                tc(run_dir, sid, &args)?;
            }
            Ok(())
        }
    }
}

/// Does `dev` have a root qdisc tg could have made (not its default)?
fn has_root(run_dir: &Path, sid: &str, dev: &str) -> NetResult<bool> {
    let text = show(run_dir, sid, dev)?;
    Ok(root_line(&text).is_some_and(|l| !is_default_kind(l)))
}

fn show(run_dir: &Path, sid: &str, dev: &str) -> NetResult<String> {
    let args: Vec<String> = ["qdisc", "show", "dev", dev]
        .iter()
        .map(|s| s.to_string())
        .collect();
    tc(run_dir, sid, &args)
}

/// What impairment each of `devs` has now (one `tc` run for all):
/// `Some(default)` for none, `None` when its root qdisc is not one tg
/// makes (someone else's).
pub fn read(run_dir: &Path, sid: &str, devs: &[String]) -> NetResult<Vec<Option<Impairment>>> {
    let args: Vec<String> = ["qdisc", "show"].iter().map(|s| s.to_string()).collect();
    let text = tc(run_dir, sid, &args)?;
    Ok(devs
        .iter()
        .map(|dev| {
            let mine: String = text
                .lines()
                .filter(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    w.windows(2).any(|p| p[0] == "dev" && p[1] == dev)
                })
                .map(|l| format!("{l}\n"))
                .collect();
            decode(&mine)
        })
        .collect())
}

/// Is `kind` a root qdisc tg makes for impairments (`netem`, `tbf`)? On
/// a link that should have none, one of these is drift.
pub fn is_tg_kind(kind: &str) -> bool {
    matches!(kind, "netem" | "tbf")
}

fn root_line(text: &str) -> Option<&str> {
    text.lines()
        .find(|l| l.split_whitespace().any(|w| w == "root"))
}

fn is_default_kind(line: &str) -> bool {
    matches!(
        line.split_whitespace().nth(1),
        Some("noqueue" | "pfifo_fast" | "fq_codel" | "mq" | "pfifo" | "fq")
    )
}

/// Decode `tc qdisc show dev X` (see [`read`]).
pub fn decode(text: &str) -> Option<Impairment> {
    let Some(line) = root_line(text) else {
        return Some(Impairment::default());
    };
    if is_default_kind(line) {
        return Some(Impairment::default());
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let kind = words.get(1).copied()?;
    let mut imp = Impairment::default();
    let value = |i: usize| words.get(i + 1).copied();
    match kind {
        "netem" => {
            let mut i = 0;
            while i < words.len() {
                match words[i] {
                    "delay" => {
                        imp.delay = Some(tc_span(value(i)?)?);
                        if let Some(j) = value(i + 1).and_then(tc_span) {
                            imp.jitter = Some(j);
                            i += 1;
                        }
                        i += 1;
                    }
                    key @ ("loss" | "duplicate" | "reorder" | "corrupt") => {
                        let p: Percent = value(i)?.parse().ok()?;
                        match key {
                            "loss" => imp.loss = Some(p),
                            "duplicate" => imp.duplicate = Some(p),
                            "reorder" => imp.reorder = Some(p),
                            _ => imp.corrupt = Some(p),
                        }
                        i += 1;
                    }
                    "rate" => {
                        imp.rate = Some(value(i)?.parse().ok()?);
                        i += 1;
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        "tbf" => {
            let i = words.iter().position(|w| *w == "rate")?;
            imp.rate = Some(value(i)?.parse().ok()?);
        }
        _ => return None,
    }
    Some(imp)
}

/// tc's durations: `50ms`, `1.5ms`, `1s`, `100us`.
fn tc_span(s: &str) -> Option<Span> {
    s.parse().ok()
}

/// Are two impairments the same up to tc's rounding (durations and rates
/// to 1%, percentages to a hundredth of a point)?
pub fn same(a: &Impairment, b: &Impairment) -> bool {
    fn close(x: u64, y: u64) -> bool {
        x.abs_diff(y) * 100 <= x.max(y)
    }
    fn span(x: Option<Span>, y: Option<Span>) -> bool {
        close(x.map_or(0, |s| s.micros), y.map_or(0, |s| s.micros))
    }
    fn pct(x: Option<Percent>, y: Option<Percent>) -> bool {
        x.map_or(0, |p| p.ppm).abs_diff(y.map_or(0, |p| p.ppm)) <= 100
    }
    fn rate(x: Option<Rate>, y: Option<Rate>) -> bool {
        match (x, y) {
            (Some(x), Some(y)) => close(x.bits_per_sec, y.bits_per_sec),
            (None, None) => true,
            _ => false,
        }
    }
    span(a.delay, b.delay)
        && span(a.jitter, b.jitter)
        && pct(a.loss, b.loss)
        && pct(a.duplicate, b.duplicate)
        && pct(a.reorder, b.reorder)
        && pct(a.corrupt, b.corrupt)
        && rate(a.rate, b.rate)
}

impl NetnsPlatform {
    /// Give each link of the node its impairment (`veths`: router-side
    /// ends, in interface order). With `changed = Some((before, kept))`
    /// only links that are new or whose impairment changed are touched.
    pub(super) fn impair_links(
        &self,
        sid: &str,
        spec: &NodeSpec,
        veths: &[String],
        changed: Option<(&NodeSpec, &[usize])>,
    ) -> PlatformResult<()> {
        for (i, (iface, veth)) in spec.interfaces.iter().zip(veths).enumerate() {
            let todo = match changed {
                None => iface.impair.has_effect(),
                Some((before, kept)) => {
                    !kept.contains(&i) && iface.impair.has_effect()
                        || kept.contains(&i)
                            && before.interfaces.get(i).map(|b| b.impair) != Some(iface.impair)
                }
            };
            if todo {
                apply(&self.options.run_dir, sid, veth, &iface.impair).map_err(|e| {
                    let e = PlatformError::from(e);
                    PlatformError {
                        message: format!(
                            "node `{}`, its link to network `{}`: {}",
                            spec.hostname, iface.network, e.message
                        ),
                        ..e
                    }
                })?;
            }
        }
        Ok(())
    }
}

/// An interface without its impairment: what must be equal for its link
/// to stay (an impairment changes on the link in place).
pub(super) fn without_impair(iface: Option<&Interface>) -> Option<Interface> {
    iface.map(|i| Interface {
        impair: Default::default(),
        ..i.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imp(keys: &[(&str, &str)]) -> Impairment {
        let mut i = Impairment::default();
        for (k, v) in keys {
            i.set(k, v).unwrap();
        }
        i
    }

    #[test]
    fn arguments_pick_netem_or_tbf() {
        let a = qdisc_args(
            "tgv1",
            &imp(&[
                ("delay", "50ms"),
                ("jitter", "5ms"),
                ("loss", "1%"),
                ("rate", "10mbit"),
            ]),
        )
        .unwrap()
        .join(" ");
        assert_eq!(
            a,
            "qdisc replace dev tgv1 root handle 1: netem limit 10000 delay 50000us 5000us loss 1% rate 10000000bit"
        );
        let a = qdisc_args("tgv1", &imp(&[("rate", "10mbit"), ("loss", "0%")]))
            .unwrap()
            .join(" ");
        assert_eq!(
            a,
            "qdisc replace dev tgv1 root handle 1: tbf rate 10000000bit burst 16384 latency 200ms"
        );
        assert_eq!(qdisc_args("tgv1", &imp(&[("loss", "0%")])), None);
        assert_eq!(qdisc_args("tgv1", &Impairment::default()), None);
    }

    #[test]
    fn decoding_what_tc_shows() {
        assert_eq!(
            decode("qdisc noqueue 0: root refcnt 2 \n"),
            Some(Impairment::default())
        );
        assert_eq!(decode(""), Some(Impairment::default()));
        assert_eq!(
            decode("qdisc tbf 1: root refcnt 2 rate 10Mbit burst 16Kb lat 200ms \n"),
            Some(imp(&[("rate", "10mbit")]))
        );
        let seen = decode(
            "qdisc netem 1: root refcnt 2 limit 10000 delay 50ms  5ms loss 1% duplicate 2% reorder 25% corrupt 0.5% rate 10Mbit\n",
        )
        .unwrap();
        let want = imp(&[
            ("delay", "50ms"),
            ("jitter", "5ms"),
            ("loss", "1%"),
            ("duplicate", "2%"),
            ("reorder", "25%"),
            ("corrupt", "0.5%"),
            ("rate", "10mbit"),
        ]);
        assert_eq!(seen, want);
        assert!(same(&seen, &want));
        assert!(!same(&seen, &imp(&[("delay", "50ms")])));
        assert_eq!(decode("qdisc htb 1: root refcnt 2 r2q 10\n"), None);
    }
}
