//! Learning from the mail client: what a person does with spam in Thunderbird, Apple Mail or
//! K-9 teaches the content filter (`spam`). Moving or copying a message into the `\Junk`
//! mailbox, or setting `$Junk`, teaches "spam"; moving it out of Junk (anywhere but Trash),
//! or setting `$NotJunk` (Thunderbird's older `NonJunk` too), teaches "ham". The filter
//! learns each message once and undoes the first lesson when told the opposite.
//!
//! A lesson never fails the command that gave it: the message has moved whatever the filter
//! makes of it, so an error is logged and the command answers as it would have.

use crate::spam::Classifier;
use crate::store::{DEFAULT_MAILBOXES, FlagOp, Store};

/// The mailbox with RFC 6154's `\Junk` (or `\Trash`) attribute.
fn special_use(attribute: &str) -> &'static str {
    DEFAULT_MAILBOXES
        .iter()
        .find(|(_, used_as)| *used_as == attribute)
        .map_or("", |(name, _)| name)
}

/// What a COPY or MOVE from `from` to `to` teaches: `Some(true)` spam, `Some(false)` ham.
pub(super) fn lesson_of_copy(from: &str, to: &str) -> Option<bool> {
    let junk = special_use("\\Junk");
    if to == junk && from != junk {
        Some(true)
    } else if from == junk && to != junk && to != special_use("\\Trash") {
        Some(false)
    } else {
        None
    }
}

/// What a STORE of the keywords `names` teaches. Removing a keyword teaches nothing: the
/// client sets the opposite one when a person changes their mind.
pub(super) fn lesson_of_store(op: FlagOp, names: &[String]) -> Option<bool> {
    if op == FlagOp::Remove {
        return None;
    }
    let has = |keyword: &str| names.iter().any(|n| n.eq_ignore_ascii_case(keyword));
    match (has("$Junk"), has("$NotJunk") || has("NonJunk")) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// Teaches the filter the messages `uids` of mailbox `mailbox` (an id) as spam or ham.
pub(super) async fn learn(store: &Store, mailbox: u64, uids: Vec<u32>, spam: bool) {
    let rows = match store.messages_by_uid(mailbox, uids).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(%error, "the spam filter could not read the messages to learn");
            return;
        }
    };
    let blobs: Vec<u64> = rows.iter().map(|row| row.blob).collect();
    match Classifier::new(store.clone())
        .learn_stored(&blobs, spam)
        .await
    {
        Ok(outcome) => tracing::info!(
            spam,
            learned = outcome.learned,
            relearned = outcome.relearned,
            "the spam filter learned from the mail client"
        ),
        Err(error) => tracing::warn!(%error, "the spam filter could not learn"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_into_and_out_of_junk_teaches_and_other_moves_do_not() {
        assert_eq!(lesson_of_copy("INBOX", "Junk"), Some(true));
        assert_eq!(lesson_of_copy("Junk", "INBOX"), Some(false));
        assert_eq!(lesson_of_copy("Junk", "Archive/2026"), Some(false));
        assert_eq!(
            lesson_of_copy("Junk", "Trash"),
            None,
            "deleting spam is not ham"
        );
        assert_eq!(lesson_of_copy("Junk", "Junk"), None);
        assert_eq!(lesson_of_copy("INBOX", "Archive"), None);
    }

    #[test]
    fn junk_keywords_teach_when_set() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(lesson_of_store(FlagOp::Add, &names(&["$junk"])), Some(true));
        assert_eq!(
            lesson_of_store(FlagOp::Replace, &names(&["\\Seen", "$NotJunk"])),
            Some(false)
        );
        assert_eq!(
            lesson_of_store(FlagOp::Add, &names(&["NonJunk"])),
            Some(false)
        );
        assert_eq!(lesson_of_store(FlagOp::Remove, &names(&["$Junk"])), None);
        assert_eq!(
            lesson_of_store(FlagOp::Add, &names(&["$Junk", "$NotJunk"])),
            None
        );
        assert_eq!(lesson_of_store(FlagOp::Add, &names(&["\\Flagged"])), None);
    }
}
