//! Quantities written in testbed files and on the command line: durations
//! (`"50ms"`, `"1.5s"`), percentages (`"1%"`, `"0.5%"`) and bit rates
//! (`"10mbit"`, `"1gbit"`).
//!
//! Each is a small value type that prints back the way it was written in
//! canonical form and (de)serialises as that string, so plans and state
//! read like the file. Parsing returns `Err(why)` phrased for a diagnostic
//! ("expected a duration such as \"50ms\", found ..."); ranges are checked
//! by the caller, which knows what the value is for.
//!
//! No crate: `humantime` parses durations but prints `1s 500ms`, and no
//! kept crate reads tc's rate units; see `docs/decisions.md`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Split `"12.5ms"` into `(12.5, "ms")`; the number may have a fraction.
fn split_number(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    n.is_finite().then_some((n, unit.trim()))
}

/// A span of time with microsecond resolution (`"50ms"`, `"1s"`, `"250us"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub micros: u64,
}

impl Span {
    pub const fn from_millis(ms: u64) -> Span {
        Span { micros: ms * 1000 }
    }

    pub const fn from_secs(s: u64) -> Span {
        Span {
            micros: s * 1_000_000,
        }
    }

    pub fn as_duration(self) -> Duration {
        Duration::from_micros(self.micros)
    }

    pub fn is_zero(self) -> bool {
        self.micros == 0
    }
}

impl FromStr for Span {
    type Err = String;

    fn from_str(s: &str) -> Result<Span, String> {
        let bad = || {
            format!(
                "expected a duration such as \"50ms\" or \"1s\" (units us, ms, s, m, h), found \"{s}\""
            )
        };
        let (n, unit) = split_number(s).ok_or_else(bad)?;
        let scale = match unit {
            "us" | "µs" => 1.0,
            "ms" => 1e3,
            "s" => 1e6,
            "m" | "min" => 60e6,
            "h" => 3600e6,
            _ => return Err(bad()),
        };
        let micros = n * scale;
        if micros > 1e15 {
            return Err(format!("the duration \"{s}\" is too long"));
        }
        Ok(Span {
            micros: micros.round() as u64,
        })
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.micros;
        if us == 0 {
            return f.write_str("0s");
        }
        for (unit, scale) in [("h", 3_600_000_000u64), ("m", 60_000_000), ("s", 1_000_000)] {
            if us % scale == 0 {
                return write!(f, "{}{unit}", us / scale);
            }
        }
        if us % 1000 == 0 {
            write!(f, "{}ms", us / 1000)
        } else if us >= 1000 {
            write!(f, "{}ms", trim_fraction(us as f64 / 1000.0))
        } else {
            write!(f, "{us}us")
        }
    }
}

/// A share of packets, 0–100%: `ppm` is parts per million of the whole
/// (1% = 10,000), so four decimals of a percent are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percent {
    pub ppm: u32,
}

impl Percent {
    pub const FULL: Percent = Percent { ppm: 1_000_000 };

    pub fn is_zero(self) -> bool {
        self.ppm == 0
    }
}

impl FromStr for Percent {
    type Err = String;

    fn from_str(s: &str) -> Result<Percent, String> {
        let bad = || format!("expected a percentage such as \"1%\" or \"0.5%\", found \"{s}\"");
        let (n, unit) = split_number(s).ok_or_else(bad)?;
        if unit != "%" {
            return Err(bad());
        }
        if n > 100.0 {
            return Err(format!(
                "a percentage is at most \"100%\", found \"{}\"",
                s.trim()
            ));
        }
        Ok(Percent {
            ppm: (n * 10_000.0).round() as u32,
        })
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", trim_fraction(self.ppm as f64 / 10_000.0))
    }
}

/// A bit rate in bits per second (`"10mbit"`, `"1gbit"`, `"512kbit"`):
/// tc's units, powers of 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Rate {
    pub bits_per_sec: u64,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Rate, String> {
        let bad = || {
            format!(
                "expected a bit rate such as \"10mbit\" or \"1gbit\" (units bit, kbit, mbit, gbit), found \"{s}\""
            )
        };
        let (n, unit) = split_number(s).ok_or_else(bad)?;
        let scale = match unit.to_ascii_lowercase().as_str() {
            "bit" => 1.0,
            "kbit" => 1e3,
            "mbit" => 1e6,
            "gbit" => 1e9,
            "tbit" => 1e12,
            "kbps" | "mbps" | "gbps" | "bps" => {
                return Err(format!(
                    "{} (tc reads \"{unit}\" as bytes per second, so tg does not take it: write bits, such as \"10mbit\")",
                    bad()
                ))
            }
            _ => return Err(bad()),
        };
        let bits = n * scale;
        // tbf's burst (rate/800 bytes) is a 32-bit field in tc.
        if bits > 1e12 {
            return Err(format!(
                "the rate \"{}\" is too high: at most \"1tbit\"",
                s.trim()
            ));
        }
        Ok(Rate {
            bits_per_sec: bits.round() as u64,
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bits_per_sec;
        for (unit, scale) in [
            ("gbit", 1_000_000_000u64),
            ("mbit", 1_000_000),
            ("kbit", 1000),
        ] {
            if b >= scale && b % scale == 0 {
                return write!(f, "{}{unit}", b / scale);
            }
        }
        write!(f, "{b}bit")
    }
}

/// `1.50` → `1.5`, `2.0` → `2`, to six decimals.
fn trim_fraction(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(Span);
string_serde!(Percent);
string_serde!(Rate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (s, us, back) in [
            ("50ms", 50_000, "50ms"),
            ("1s", 1_000_000, "1s"),
            ("1.5s", 1_500_000, "1500ms"),
            ("0.25ms", 250, "250us"),
            ("2.5ms", 2_500, "2.5ms"),
            ("0ms", 0, "0s"),
            ("2m", 120_000_000, "2m"),
            (" 10 ms ", 10_000, "10ms"),
        ] {
            let d: Span = s.parse().unwrap();
            assert_eq!(d.micros, us, "{s}");
            assert_eq!(d.to_string(), back, "{s}");
            assert_eq!(back.parse::<Span>().unwrap(), d, "{back}");
        }
        for s in ["", "50", "ms", "5x", "-5ms", "1.ms", ".5s", "1e3ms"] {
            let e = s.parse::<Span>().unwrap_err();
            assert!(e.starts_with("expected a duration"), "{s}: {e}");
        }
    }

    #[test]
    fn percentages() {
        for (s, ppm, back) in [
            ("1%", 10_000, "1%"),
            ("0.5%", 5_000, "0.5%"),
            ("100%", 1_000_000, "100%"),
            ("0%", 0, "0%"),
            ("0.0001%", 1, "0.0001%"),
        ] {
            let p: Percent = s.parse().unwrap();
            assert_eq!(p.ppm, ppm, "{s}");
            assert_eq!(p.to_string(), back);
        }
        assert!("101%".parse::<Percent>().unwrap_err().contains("at most"));
        assert!("5".parse::<Percent>().unwrap_err().starts_with("expected"));
        assert!("-1%".parse::<Percent>().is_err());
    }

    #[test]
    fn rates() {
        for (s, bits, back) in [
            ("10mbit", 10_000_000, "10mbit"),
            ("1gbit", 1_000_000_000, "1gbit"),
            ("1.5mbit", 1_500_000, "1500kbit"),
            ("512kbit", 512_000, "512kbit"),
            ("100bit", 100, "100bit"),
            ("10Mbit", 10_000_000, "10mbit"),
        ] {
            let r: Rate = s.parse().unwrap();
            assert_eq!(r.bits_per_sec, bits, "{s}");
            assert_eq!(r.to_string(), back);
        }
        assert!("10mbps"
            .parse::<Rate>()
            .unwrap_err()
            .contains("bytes per second"));
        assert!("10".parse::<Rate>().is_err());
    }

    #[test]
    fn serde_as_strings() {
        let j = serde_json::to_string(&(Span::from_millis(50), Percent::FULL)).unwrap();
        assert_eq!(j, r#"["50ms","100%"]"#);
        let back: (Span, Percent) = serde_json::from_str(&j).unwrap();
        assert_eq!(back, (Span::from_millis(50), Percent::FULL));
    }
}
