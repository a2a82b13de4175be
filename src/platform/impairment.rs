//! Network impairments (`impair { ... }`) and readiness checks
//! (`wait_for { ... }`) as resolved specs carry them.
//!
//! An [`Impairment`] belongs to one node's link (an [`Interface`]): the
//! network's `impair` block, overridden key by key by the node's. Every
//! key is optional; an impairment with none set is no impairment and is
//! left out of JSON, so records made before impairments existed read back
//! unchanged.
//!
//! [`Interface`]: super::Interface

use serde::{Deserialize, Serialize};

use crate::units::{Percent, Rate, Span};

/// The keys of an `impair` block, in the order plans show them.
pub const IMPAIR_KEYS: &[&str] = &[
    "delay",
    "jitter",
    "loss",
    "rate",
    "corrupt",
    "duplicate",
    "reorder",
];

/// What a link suffers: netem's delay, jitter, loss, corruption,
/// duplication and reordering, and a rate limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Impairment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<Percent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<Percent>,
}

/// The longest delay or jitter tg accepts.
pub const MAX_DELAY: Span = Span::from_secs(60);

impl Impairment {
    /// No key set.
    pub fn is_none(&self) -> bool {
        *self == Impairment::default()
    }

    /// `self` with every key `over` sets taken from `over`.
    pub fn overridden_by(&self, over: &Impairment) -> Impairment {
        Impairment {
            delay: over.delay.or(self.delay),
            jitter: over.jitter.or(self.jitter),
            loss: over.loss.or(self.loss),
            rate: over.rate.or(self.rate),
            corrupt: over.corrupt.or(self.corrupt),
            duplicate: over.duplicate.or(self.duplicate),
            reorder: over.reorder.or(self.reorder),
        }
    }

    /// Does anything need netem (all but `rate`, which tbf does)?
    pub fn needs_netem(&self) -> bool {
        Impairment {
            rate: None,
            ..*self
        }
        .has_effect()
    }

    /// Does any key change traffic (a key set to zero does not)?
    pub fn has_effect(&self) -> bool {
        self.delay.is_some_and(|d| !d.is_zero())
            || self.jitter.is_some_and(|d| !d.is_zero())
            || [self.loss, self.corrupt, self.duplicate, self.reorder]
                .iter()
                .any(|p| p.is_some_and(|p| !p.is_zero()))
            || self.rate.is_some()
    }

    /// Set key `key` from its text (`delay`, `"50ms"`); `Err(why)`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        fn span(v: &str) -> Result<Span, String> {
            let d: Span = v.parse()?;
            if d > MAX_DELAY {
                return Err(format!("expected at most \"{MAX_DELAY}\", found \"{d}\""));
            }
            Ok(d)
        }
        match key {
            "delay" => self.delay = Some(span(value)?),
            "jitter" => self.jitter = Some(span(value)?),
            "loss" => self.loss = Some(value.parse()?),
            "corrupt" => self.corrupt = Some(value.parse()?),
            "duplicate" => self.duplicate = Some(value.parse()?),
            "reorder" => self.reorder = Some(value.parse()?),
            "rate" => {
                let r: Rate = value.parse()?;
                if r.bits_per_sec < 8 {
                    return Err(format!(
                        "expected a rate above zero (at least \"8bit\"), found \"{}\"",
                        value.trim()
                    ));
                }
                self.rate = Some(r);
            }
            other => {
                return Err(format!(
                    "unknown impairment `{other}`: expected one of {}",
                    IMPAIR_KEYS.join(", ")
                ))
            }
        }
        Ok(())
    }

    /// What is wrong with the combination, if anything: jitter and
    /// reordering need a delay.
    pub fn problem(&self) -> Option<String> {
        let delayed = self.delay.is_some_and(|d| !d.is_zero());
        if self.jitter.is_some_and(|j| !j.is_zero()) && !delayed {
            return Some("`jitter` needs a `delay` (jitter varies the delay)".into());
        }
        if self.reorder.is_some_and(|r| !r.is_zero()) && !delayed {
            return Some(
                "`reorder` needs a `delay` (reordered packets are the ones sent without it)".into(),
            );
        }
        if let (Some(j), Some(d)) = (self.jitter, self.delay) {
            if j > d {
                return Some(format!(
                    "`jitter` (\"{j}\") is larger than `delay` (\"{d}\"): the delay would go below zero"
                ));
            }
        }
        None
    }

    /// `delay=50ms,loss=1%`: the keys set, in [`IMPAIR_KEYS`] order.
    pub fn summary(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or_default();
        IMPAIR_KEYS
            .iter()
            .filter_map(|k| {
                v.get(*k)
                    .and_then(|x| x.as_str())
                    .map(|x| format!("{k}={x}"))
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One readiness check of a node or package (`wait_for { ... }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitFor {
    #[serde(flatten)]
    pub check: Check,
    /// How long to keep trying before the instance fails.
    pub timeout: Span,
    /// The pause between two tries.
    pub interval: Span,
}

/// What a readiness check tries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// A shell command run in the node: ready when it exits 0.
    Command(String),
    /// A TCP port of the node's first address, connected to from its
    /// network: ready when the connection is accepted.
    Tcp(u16),
}

impl WaitFor {
    pub const DEFAULT_TIMEOUT: Span = Span::from_secs(60);
    pub const DEFAULT_INTERVAL: Span = Span::from_secs(1);
    /// The longest `timeout` tg accepts.
    pub const MAX_TIMEOUT: Span = Span::from_secs(24 * 3600);

    /// `command "curl -f localhost"` or `tcp 8080`, for messages.
    pub fn describe(&self) -> String {
        match &self.check {
            Check::Command(c) => format!("command `{c}`"),
            Check::Tcp(p) => format!("tcp port {p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_key_by_key_and_json() {
        let mut net = Impairment::default();
        net.set("delay", "50ms").unwrap();
        net.set("loss", "1%").unwrap();
        let mut node = Impairment::default();
        node.set("loss", "0%").unwrap();
        node.set("rate", "10mbit").unwrap();
        let m = net.overridden_by(&node);
        assert_eq!(m.summary(), "delay=50ms,loss=0%,rate=10mbit");
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(j, r#"{"delay":"50ms","loss":"0%","rate":"10mbit"}"#);
        assert_eq!(serde_json::from_str::<Impairment>(&j).unwrap(), m);
        assert!(m.needs_netem());
        assert!(!Impairment {
            rate: m.rate,
            ..Default::default()
        }
        .needs_netem());
    }

    #[test]
    fn ranges_and_combinations() {
        let mut i = Impairment::default();
        assert!(i
            .set("delay", "61s")
            .unwrap_err()
            .contains("at most \"1m\""));
        assert!(i.set("rate", "0mbit").unwrap_err().contains("above zero"));
        assert!(i.set("loss", "150%").unwrap_err().contains("at most"));
        assert!(i
            .set("speed", "1")
            .unwrap_err()
            .contains("unknown impairment"));
        i.set("jitter", "5ms").unwrap();
        assert!(i.problem().unwrap().contains("needs a `delay`"));
        i.set("delay", "2ms").unwrap();
        assert!(i.problem().unwrap().contains("larger than"));
        i.set("delay", "20ms").unwrap();
        assert_eq!(i.problem(), None);
        let r = Impairment {
            reorder: Some("25%".parse().unwrap()),
            ..Default::default()
        };
        assert!(r.problem().unwrap().contains("`reorder` needs"));
    }
}
