//! A message's flags as a set of bit numbers: 0-4 the system flags, 5 and up the account's
//! keywords (`keywords`). Bits 0-31 live in the `u32` of the message's `MESSAGES` row; the
//! few messages with a keyword past bit 31 also have a `MORE_FLAGS` row with the rest, so the
//! common case costs no more than before.

use super::schema::flags::WORD_BITS;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// Bits 0-31, as stored in `MESSAGES`.
    pub bits: u32,
    /// Bits from 32 on, as stored in `MORE_FLAGS`: octet `i`, bit `j` is flag bit
    /// `32 + 8i + j`. No trailing zero octets, so equal sets compare equal and a message
    /// without such keywords holds an empty (unallocated) vector.
    more: Vec<u8>,
}

impl From<u32> for Flags {
    fn from(bits: u32) -> Self {
        Flags {
            bits,
            more: Vec::new(),
        }
    }
}

impl Flags {
    pub fn from_parts(bits: u32, more: &[u8]) -> Self {
        Flags {
            bits,
            more: more.to_vec(),
        }
        .trimmed()
    }

    /// The octets for `MORE_FLAGS` (empty: no row).
    pub fn more(&self) -> &[u8] {
        &self.more
    }

    pub fn has(&self, bit: u8) -> bool {
        match bit.checked_sub(WORD_BITS) {
            None => self.bits & (1 << bit) != 0,
            Some(rest) => self
                .more
                .get(usize::from(rest / 8))
                .is_some_and(|octet| octet & (1 << (rest % 8)) != 0),
        }
    }

    pub fn insert(&mut self, bit: u8) {
        match bit.checked_sub(WORD_BITS) {
            None => self.bits |= 1 << bit,
            Some(rest) => {
                let index = usize::from(rest / 8);
                if self.more.len() <= index {
                    self.more.resize(index + 1, 0);
                }
                self.more[index] |= 1 << (rest % 8);
            }
        }
    }

    pub fn union(&self, other: &Flags) -> Flags {
        let mut more = self.more.clone();
        if more.len() < other.more.len() {
            more.resize(other.more.len(), 0);
        }
        for (octet, add) in more.iter_mut().zip(&other.more) {
            *octet |= add;
        }
        Flags {
            bits: self.bits | other.bits,
            more,
        }
    }

    pub fn minus(&self, other: &Flags) -> Flags {
        let mut more = self.more.clone();
        for (octet, remove) in more.iter_mut().zip(&other.more) {
            *octet &= !remove;
        }
        Flags {
            bits: self.bits & !other.bits,
            more,
        }
        .trimmed()
    }

    /// Whether every bit set here is set in `other` too (no allocation: it runs per message).
    pub fn is_subset_of(&self, other: &Flags) -> bool {
        self.bits & !other.bits == 0
            && self
                .more
                .iter()
                .enumerate()
                .all(|(i, octet)| octet & !other.more.get(i).copied().unwrap_or(0) == 0)
    }

    fn trimmed(mut self) -> Self {
        while self.more.last() == Some(&0) {
            self.more.pop();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_past_the_word_go_to_more_and_compare_by_value() {
        let mut a = Flags::from(1);
        a.insert(5);
        a.insert(31);
        assert!(a.more().is_empty(), "no octets for bits below 32");
        a.insert(32);
        a.insert(254);
        assert!(a.has(0) && a.has(5) && a.has(31) && a.has(32) && a.has(254));
        assert!(!a.has(1) && !a.has(33) && !a.has(253));
        assert_eq!(a.more().len(), 28);
        let mut high = Flags::default();
        high.insert(254);
        let without = a.minus(&high);
        assert_eq!(without.more(), [1], "trailing zero octets dropped");
        assert_eq!(without.union(&high), a);
        assert_eq!(a.minus(&a), Flags::default());
        assert_eq!(Flags::from_parts(3, &[0, 0]), Flags::from(3));
    }
}
