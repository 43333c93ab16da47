//! IMAP keywords (RFC 9051 §2.3.2: `$Junk`, `$label1`, `NonJunk`, ...). Each account names up
//! to `IMAP_MAX_KEYWORDS` of them; a keyword is a flag bit from 5 on (`flag_set::Flags`),
//! beside the five system flags, so setting one costs little per message and COPY/MOVE carry
//! it along. The first 27 share the `u32` of the message row.

use redb::{ReadableDatabase, ReadableTable};

use super::flag_set::Flags;
use super::schema::{KEYWORDS, flags};
use super::{Store, StoreError};
use crate::limits::IMAP_MAX_KEYWORDS;

/// Keywords an account can have at most.
pub const MAX_KEYWORDS: usize = IMAP_MAX_KEYWORDS;
// Each keyword needs a flag bit that a `u8` numbers.
const _: () = assert!(flags::FIRST_KEYWORD as usize + MAX_KEYWORDS <= 256);

/// An account's keywords: flag bit and spelling, in the order they were defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keywords {
    defined: Vec<(u8, String)>,
    /// The system flags' bits and the defined keywords' bits.
    known: Flags,
}

/// The bits of the system flags, which every list knows.
fn system_flags() -> Flags {
    Flags::from((1u32 << flags::FIRST_KEYWORD) - 1)
}

impl Default for Keywords {
    fn default() -> Self {
        Keywords {
            defined: Vec::new(),
            known: system_flags(),
        }
    }
}

impl Keywords {
    /// The bit of `name` (case-insensitive), if the account has that keyword.
    pub fn bit(&self, name: &str) -> Option<u8> {
        self.defined
            .iter()
            .find(|(_, known)| known.eq_ignore_ascii_case(name))
            .map(|(bit, _)| *bit)
    }

    /// The keywords set in `flags`.
    pub fn names<'a>(&'a self, flags: &'a Flags) -> impl Iterator<Item = &'a str> {
        self.defined
            .iter()
            .filter(move |(bit, _)| flags.has(*bit))
            .map(|(_, name)| name.as_str())
    }

    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.defined.iter().map(|(_, name)| name.as_str())
    }

    pub fn len(&self) -> usize {
        self.defined.len()
    }

    pub fn is_empty(&self) -> bool {
        self.defined.is_empty()
    }

    /// Whether every flag in `flags` has a name here: a keyword another session defined since
    /// this list was read does not.
    pub fn covers(&self, flags: &Flags) -> bool {
        flags.is_subset_of(&self.known)
    }

    /// A list with `names` as bits 5, 6, ... (what `define_keywords` gives a new account).
    #[cfg(test)]
    pub(crate) fn for_tests(names: &[&str]) -> Keywords {
        let mut keywords = Keywords::default();
        for (bit, name) in (flags::FIRST_KEYWORD..).zip(names) {
            keywords.defined.push((bit, name.to_string()));
            keywords.known.insert(bit);
        }
        keywords
    }

    /// True when no further keyword can be defined.
    pub fn is_full(&self) -> bool {
        self.defined.len() >= MAX_KEYWORDS
    }
}

pub(super) fn read(
    table: &impl ReadableTable<(&'static str, &'static str), (u8, &'static str)>,
    account: &str,
) -> Result<Keywords, StoreError> {
    let mut defined = Vec::new();
    for entry in table.range((account, "")..)? {
        let (key, value) = entry?;
        if key.value().0 != account {
            break;
        }
        let (bit, name) = value.value();
        defined.push((bit, name.to_string()));
    }
    defined.sort_by_key(|(bit, _)| *bit);
    let mut known = system_flags();
    for (bit, _) in &defined {
        known.insert(*bit);
    }
    Ok(Keywords { defined, known })
}

impl Store {
    pub async fn keywords(&self, account: &str) -> Result<Keywords, StoreError> {
        let account = account.to_ascii_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            read(&txn.open_table(KEYWORDS)?, &account)
        })
        .await
    }

    /// Defines the keywords among `names` the account does not have yet (while bits are
    /// free; further ones are not defined, which the caller sees in what comes back) and
    /// returns all of the account's keywords.
    pub async fn define_keywords(
        &self,
        account: &str,
        names: Vec<String>,
    ) -> Result<Keywords, StoreError> {
        let account = account.to_ascii_lowercase();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let keywords = {
                let mut table = txn.open_table(KEYWORDS)?;
                let mut known = read(&table, &account)?;
                for name in names {
                    if known.bit(&name).is_some() || known.len() >= MAX_KEYWORDS {
                        continue;
                    }
                    let Some(bit) = (flags::FIRST_KEYWORD..=u8::MAX)
                        .find(|bit| known.defined.iter().all(|(used, _)| used != bit))
                    else {
                        break;
                    };
                    let lower = name.to_ascii_lowercase();
                    table.insert((account.as_str(), lower.as_str()), (bit, name.as_str()))?;
                    known.defined.push((bit, name));
                }
                known
            };
            txn.commit()?;
            Ok(keywords)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::status::Status;

    #[tokio::test]
    async fn keywords_get_stable_bits_per_account() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(
            dir.path(),
            &Limits::default(),
            tokio::sync::watch::channel(Status::default()).0,
        )
        .expect("open");
        let first = store
            .define_keywords("a@x", vec!["$Junk".into(), "$label1".into()])
            .await
            .expect("define");
        assert_eq!(first.bit("$junk"), Some(5));
        assert_eq!(first.bit("$LABEL1"), Some(6));
        let again = store
            .define_keywords("A@x", vec!["$junk".into(), "NonJunk".into()])
            .await
            .expect("define again");
        assert_eq!(again.bit("$Junk"), Some(5), "kept, with its first spelling");
        assert_eq!(
            again.all().collect::<Vec<_>>(),
            ["$Junk", "$label1", "NonJunk"]
        );
        assert_eq!(
            again
                .names(&Flags::from((1 << 5) | (1 << 7) | flags::SEEN))
                .collect::<Vec<_>>(),
            ["$Junk", "NonJunk"]
        );
        assert!(store.keywords("b@x").await.expect("other").is_empty());
        let many: Vec<String> = (0..MAX_KEYWORDS + 10).map(|i| format!("k{i}")).collect();
        let full = store.define_keywords("a@x", many).await.expect("many");
        assert_eq!(full.len(), MAX_KEYWORDS, "no more than the limit");
        assert_eq!(full.bit("k0"), Some(8), "after the three above");
        assert_eq!(full.bit(&format!("k{}", MAX_KEYWORDS - 4)), Some(254));
        assert!(full.is_full() && full.bit(&format!("k{}", MAX_KEYWORDS - 3)).is_none());
    }
}
