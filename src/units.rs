//! Config value types with human spellings: sizes ("25MiB") and durations ("5m").

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A size in bytes, written as an integer or as "512KiB", "25MiB", "1GiB", "10MB", "4096B".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ByteSize(pub u64);

/// A duration in whole seconds, written as an integer or as "30s", "5m", "2h", "1d".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Seconds(pub u64);

impl Seconds {
    pub fn duration(self) -> Duration {
        Duration::from_secs(self.0)
    }
}

fn split_number(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let number = text.get(..digits)?.parse().ok()?;
    Some((number, text.get(digits..)?.trim()))
}

/// A size: a whole or decimal number ("1.5GiB", what a person types on the admin page) and
/// a unit; a fraction of an octet is refused.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let not_a_size = || format!("{text:?} is not a size");
    let (whole, rest) = split_number(text).ok_or_else(not_a_size)?;
    let (fraction, unit) = match rest.strip_prefix('.') {
        Some(after) => {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return Err(not_a_size());
            }
            (&after[..digits], after[digits..].trim())
        }
        None => ("", rest),
    };
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1024,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1024 * 1024,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "{text:?}: unknown size unit (use B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    let too_large = || format!("{text:?} is too large");
    let mut size = whole.checked_mul(factor).ok_or_else(too_large)?;
    if !fraction.is_empty() {
        let scale = 10u64.pow(fraction.len() as u32);
        let numerator: u64 = fraction.parse().map_err(|_| not_a_size())?;
        let part = u128::from(numerator) * u128::from(factor);
        if part % u128::from(scale) != 0 && factor == 1 {
            return Err(format!("{text:?} is a fraction of an octet"));
        }
        let part = u64::try_from(part / u128::from(scale)).map_err(|_| too_large())?;
        size = size.checked_add(part).ok_or_else(too_large)?;
    }
    Ok(size)
}

pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text).ok_or_else(|| format!("{text:?} is not a duration"))?;
    let factor: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{text:?}: unknown duration unit (use s, m, h, d)")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

struct NumberOrText<F>(&'static str, F);

impl<F: Fn(&str) -> Result<u64, String>> Visitor<'_> for NumberOrText<F> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom("must not be negative"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        (self.1)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberOrText("a size such as \"25MiB\"", parse_size))
            .map(ByteSize)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberOrText("a duration such as \"5m\"", parse_seconds))
            .map(Seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases = [
            ("25MiB", Ok(25 * 1024 * 1024)),
            ("512 KiB", Ok(512 * 1024)),
            ("10MB", Ok(10_000_000)),
            ("4096", Ok(4096)),
            ("1gib", Ok(1 << 30)),
            ("MiB", Err(())),
            ("12 parsecs", Err(())),
            ("-1", Err(())),
            ("99999999999999999999GiB", Err(())),
            ("1.5GiB", Ok(3 << 29)),
            ("0.25 MiB", Ok(256 * 1024)),
            ("2.5 GB", Ok(2_500_000_000)),
            ("1.5", Err(())),
            ("1.", Err(())),
            (".5GiB", Err(())),
            ("1.2.3 GiB", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text).map_err(|_| ()), want, "{text}");
        }
    }

    #[test]
    fn durations() {
        let cases = [
            ("30s", Ok(30)),
            ("5m", Ok(300)),
            ("2h", Ok(7200)),
            ("1d", Ok(86400)),
            ("45", Ok(45)),
            ("5 min", Err(())),
            ("s", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(parse_seconds(text).map_err(|_| ()), want, "{text}");
        }
    }
}
