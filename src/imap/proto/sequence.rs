//! Sequence sets (RFC 9051 §9 `sequence-set`): "1:4,7,9:*", for message numbers and UIDs,
//! and `$`, the result of the last `SEARCH RETURN (SAVE)` (RFC 5182 SEARCHRES, part of
//! IMAP4rev2).

use super::lexer::{Cursor, ParseError, Parsed};

/// One end of a range: a number or `*` (the largest number in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Number(u32),
    Star,
}

/// Ranges as the client wrote them; no ranges at all is `$` (parsing never makes an empty
/// set otherwise), which only the session can resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceSet(pub Vec<(Bound, Bound)>);

impl SequenceSet {
    /// `$`: the saved search result.
    pub const SAVED: SequenceSet = SequenceSet(Vec::new());

    pub fn is_saved(&self) -> bool {
        self.0.is_empty()
    }

    pub fn parse(cursor: &mut Cursor<'_>) -> Parsed<SequenceSet> {
        if cursor.eat(b'$') {
            return Ok(SequenceSet::SAVED);
        }
        let mut ranges = Vec::new();
        loop {
            let first = bound(cursor)?;
            let last = if cursor.eat(b':') {
                bound(cursor)?
            } else {
                first
            };
            ranges.push((first, last));
            if !cursor.eat(b',') {
                return Ok(SequenceSet(ranges));
            }
        }
    }

    /// The ranges with `*` replaced by `largest`, each ordered low..=high. With nothing in
    /// use (`largest` 0) a `*` still means 0, which matches nothing.
    /// The ranges named, with `*` as `largest`: sorted, and overlapping or adjacent ones
    /// merged, so that a set repeating `1:*` thousands of times (a 64 KiB line can) names each
    /// number once and whatever expands it stays within the mailbox's size.
    pub fn ranges(&self, largest: u32) -> impl Iterator<Item = (u32, u32)> + use<> {
        let mut ranges: Vec<(u32, u32)> = self
            .0
            .iter()
            .map(|&(a, b)| {
                let resolve = |bound| match bound {
                    Bound::Number(n) => n,
                    Bound::Star => largest,
                };
                let (a, b) = (resolve(a), resolve(b));
                (a.min(b), a.max(b))
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (low, high) in ranges {
            match merged.last_mut() {
                Some((_, last)) if low <= last.saturating_add(1) => *last = (*last).max(high),
                _ => merged.push((low, high)),
            }
        }
        merged.into_iter()
    }

    pub fn contains(&self, value: u32, largest: u32) -> bool {
        self.ranges(largest)
            .any(|(low, high)| (low..=high).contains(&value))
    }

    /// Whether the set names only numbers (no `*`) at most `limit`.
    pub fn max_number(&self) -> u32 {
        self.0
            .iter()
            .flat_map(|(a, b)| [*a, *b])
            .map(|b| match b {
                Bound::Number(n) => n,
                Bound::Star => u32::MAX,
            })
            .max()
            .unwrap_or(0)
    }
}

fn bound(cursor: &mut Cursor<'_>) -> Parsed<Bound> {
    if cursor.eat(b'*') {
        Ok(Bound::Star)
    } else {
        cursor
            .nz_number()
            .map(Bound::Number)
            .map_err(|_| ParseError("expected a sequence set"))
    }
}

/// Ascending numbers as inclusive (first, last) runs: [1, 2, 3, 7] is (1, 3), (7, 7).
pub fn runs(numbers: &[u32]) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &n in numbers {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(n) => *last = n,
            _ => runs.push((n, n)),
        }
    }
    runs
}

/// Writes a list of numbers in compact sequence-set form ("1:3,7").
pub fn compact(numbers: &[u32]) -> String {
    runs(numbers)
        .into_iter()
        .map(|(first, last)| {
            if first == last {
                first.to_string()
            } else {
                format!("{first}:{last}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_sorted_and_merged() {
        let set = |text: &str| parse(text).expect("set");
        let ranges = |text: &str, largest| set(text).ranges(largest).collect::<Vec<_>>();
        assert_eq!(ranges("5,3,4,1:2,10:8", 20), vec![(1, 5), (8, 10)]);
        assert_eq!(ranges("*:7,2", 9), vec![(2, 2), (7, 9)]);
        let repeated = vec!["1:*"; 16_000].join(",");
        assert_eq!(ranges(&repeated, 10_000), vec![(1, 10_000)]);
        assert_eq!(ranges("4294967295,1:4294967295", 3), vec![(1, u32::MAX)]);
    }

    fn parse(text: &str) -> Parsed<SequenceSet> {
        SequenceSet::parse(&mut Cursor::new(text.as_bytes()))
    }

    #[test]
    fn sets() {
        let set = parse("1:3,7,9:*").unwrap();
        assert!(set.contains(2, 20) && set.contains(7, 20) && set.contains(20, 20));
        assert!(!set.contains(5, 20) && !set.contains(21, 20));
        let reversed = parse("*:4").unwrap();
        assert!(reversed.contains(5, 10) && !reversed.contains(3, 10));
        assert!(parse("0").is_err());
        assert!(parse("a").is_err());
        assert!(parse("1:").is_err());
        assert!(parse("$").unwrap().is_saved() && !set.is_saved());
        assert_eq!(compact(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(runs(&[1, 2, 3, 7, 9, 10]), [(1, 3), (7, 7), (9, 10)]);
        assert!(runs(&[]).is_empty() && compact(&[]).is_empty());
    }
}
