//! The content filter's memory (`crate::spam` decides what to learn and how to score): how
//! many spam and ham messages held each token, and which messages were learned as which.
//! Lessons are applied in one write transaction per batch, and the token table is pruned in
//! the same transaction when it grows past its bound, so its size on disk and the pages a
//! classification reads stay bounded however much is learned.

use std::collections::HashMap;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::schema::*;
use super::{Store, StoreError};
use crate::limits::{SPAM_LEARNED_MAX, SPAM_PRUNE_SLACK, SPAM_TOKENS_MAX};

const SPAM_MESSAGES: &str = "spam_messages";
const HAM_MESSAGES: &str = "ham_messages";

/// What the filter knows about the tokens of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpamCounts {
    /// Messages learned as spam, and as ham.
    pub spam_messages: u32,
    pub ham_messages: u32,
    /// (spam, ham) messages that held each token asked for, in the order asked.
    pub tokens: Vec<(u32, u32)>,
}

/// Which message a lesson is about, so that it is learned once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LessonSource {
    /// A body in the store, by blob id (a MOVE keeps it, so the moved message is the same).
    Stored(u64),
    /// A file given to `spam train`, by a hash of its content.
    File(u64),
}

impl LessonSource {
    fn key(self) -> (u8, u64) {
        match self {
            LessonSource::Stored(blob) => (0, blob),
            LessonSource::File(hash) => (1, hash),
        }
    }
}

/// Learn one message as spam or ham, from its token hashes (each once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lesson {
    pub source: LessonSource,
    pub spam: bool,
    pub tokens: Vec<u64>,
}

/// What a batch of lessons did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LearnOutcome {
    /// Messages learned for the first time.
    pub learned: u32,
    /// Messages learned before as the other class: that lesson was undone.
    pub relearned: u32,
    /// Messages already learned as the same class: nothing changed.
    pub unchanged: u32,
    /// Tokens dropped by pruning.
    pub pruned: u64,
}

impl Store {
    /// The counts of `tokens` (hashes) and the message totals, from one read transaction.
    pub async fn spam_counts(&self, tokens: Vec<u64>) -> Result<SpamCounts, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            let total = |key: &str| -> Result<u32, StoreError> {
                let value = meta.get(key)?.map(|v| v.value()).unwrap_or(0);
                Ok(u32::try_from(value).unwrap_or(u32::MAX))
            };
            let table = txn.open_table(SPAM_TOKENS)?;
            let mut counts = Vec::with_capacity(tokens.len());
            for token in tokens {
                counts.push(table.get(token)?.map(|v| v.value()).unwrap_or((0, 0)));
            }
            Ok(SpamCounts {
                spam_messages: total(SPAM_MESSAGES)?,
                ham_messages: total(HAM_MESSAGES)?,
                tokens: counts,
            })
        })
        .await
    }

    /// The number of tokens the filter keeps counts for.
    pub async fn spam_token_count(&self) -> Result<u64, StoreError> {
        self.blocking(|db| Ok(db.begin_read()?.open_table(SPAM_TOKENS)?.len()?))
            .await
    }

    /// Applies `lessons` in one durable commit: each message is learned once; a message
    /// learned before as the other class has that lesson undone first.
    pub async fn spam_learn(&self, lessons: Vec<Lesson>) -> Result<LearnOutcome, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let outcome = apply_lessons(&txn, &lessons)?;
            txn.commit()?;
            Ok(outcome)
        })
        .await
    }
}

fn apply_lessons(txn: &WriteTransaction, lessons: &[Lesson]) -> Result<LearnOutcome, StoreError> {
    let mut outcome = LearnOutcome::default();
    // Per token: change of (spam, ham) counts over the whole batch, applied once.
    let mut deltas: HashMap<u64, (i64, i64)> = HashMap::new();
    let (mut spam_delta, mut ham_delta) = (0i64, 0i64);
    {
        let mut learned = txn.open_table(SPAM_LEARNED)?;
        for lesson in lessons {
            let key = lesson.source.key();
            let before = learned.get(key)?.map(|v| v.value());
            let sign_for = |spam: bool, step: i64| if spam { (step, 0) } else { (0, step) };
            let mut changes = vec![sign_for(lesson.spam, 1)];
            match before {
                Some(was) if was == lesson.spam => {
                    outcome.unchanged += 1;
                    continue;
                }
                Some(was) => {
                    changes.push(sign_for(was, -1));
                    outcome.relearned += 1;
                }
                None => outcome.learned += 1,
            }
            for (spam, ham) in changes {
                spam_delta += spam;
                ham_delta += ham;
                for &token in &lesson.tokens {
                    let delta = deltas.entry(token).or_default();
                    delta.0 += spam;
                    delta.1 += ham;
                }
            }
            learned.insert(key, lesson.spam)?;
        }
        let excess = learned.len()?.saturating_sub(SPAM_LEARNED_MAX);
        if excess > 0 {
            let mut dropped = 0;
            learned.retain(|_, _| {
                dropped += 1;
                dropped > excess
            })?;
        }
    }
    {
        let mut meta = txn.open_table(META)?;
        for (key, delta) in [(SPAM_MESSAGES, spam_delta), (HAM_MESSAGES, ham_delta)] {
            let now = meta.get(key)?.map(|v| v.value()).unwrap_or(0);
            meta.insert(key, now.saturating_add_signed(delta))?;
        }
    }
    let mut table = txn.open_table(SPAM_TOKENS)?;
    for (token, (spam, ham)) in deltas {
        let (was_spam, was_ham) = table.get(token)?.map(|v| v.value()).unwrap_or((0, 0));
        let spam = adjust(was_spam, spam);
        let ham = adjust(was_ham, ham);
        if spam == 0 && ham == 0 {
            table.remove(token)?;
        } else {
            table.insert(token, (spam, ham))?;
        }
    }
    if table.len()? > SPAM_TOKENS_MAX + SPAM_PRUNE_SLACK {
        outcome.pruned = prune(&mut table, SPAM_TOKENS_MAX)?;
    }
    Ok(outcome)
}

fn adjust(count: u32, delta: i64) -> u32 {
    u32::try_from((i64::from(count) + delta).max(0)).unwrap_or(u32::MAX)
}

/// Drops tokens down to `keep`, the least useful first: those seen in the fewest
/// messages (most are words met once, which can never weigh much). Two passes, with a
/// histogram of counts between them, so pruning holds no list of tokens in memory.
fn prune(table: &mut redb::Table<u64, (u32, u32)>, keep: u64) -> Result<u64, StoreError> {
    let excess = table.len()?.saturating_sub(keep);
    let usefulness = |(spam, ham): (u32, u32)| spam.saturating_add(ham).min(255) as usize;
    let mut histogram = [0u64; 256];
    for entry in table.iter()? {
        histogram[usefulness(entry?.1.value())] += 1;
    }
    // Every token below `cutoff` goes, and of those at `cutoff` as many as still must.
    let mut below = 0u64;
    let mut cutoff = 0;
    while cutoff < 255 && below + histogram[cutoff] <= excess {
        below += histogram[cutoff];
        cutoff += 1;
    }
    let mut at_cutoff = excess - below;
    let mut dropped = 0;
    table.retain(|_, counts| {
        let rank = usefulness(counts);
        let drop = rank < cutoff || (rank == cutoff && at_cutoff > 0);
        if rank == cutoff && drop {
            at_cutoff -= 1;
        }
        dropped += u64::from(drop);
        !drop
    })?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tokio::sync::watch;

    use super::*;
    use crate::limits::Limits;
    use crate::status::Status;

    fn open(dir: &Path) -> Store {
        Store::open(dir, &Limits::default(), watch::channel(Status::default()).0).expect("open")
    }

    fn lesson(source: LessonSource, spam: bool, tokens: &[u64]) -> Lesson {
        Lesson {
            source,
            spam,
            tokens: tokens.to_vec(),
        }
    }

    #[tokio::test]
    async fn a_message_is_learned_once_and_a_changed_mind_undoes_the_first_lesson() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let blob = LessonSource::Stored(5);
        let file = LessonSource::File(5);
        let first = store
            .spam_learn(vec![
                lesson(blob, true, &[1, 2]),
                lesson(file, false, &[2, 3]),
            ])
            .await
            .expect("learn");
        assert_eq!((first.learned, first.relearned), (2, 0));
        let again = store
            .spam_learn(vec![lesson(blob, true, &[1, 2])])
            .await
            .expect("again");
        assert_eq!(again.unchanged, 1);
        let counts = store.spam_counts(vec![1, 2, 3]).await.expect("counts");
        assert_eq!((counts.spam_messages, counts.ham_messages), (1, 1));
        assert_eq!(counts.tokens, [(1, 0), (1, 1), (0, 1)]);

        let moved_back = store
            .spam_learn(vec![lesson(blob, false, &[1, 2])])
            .await
            .expect("relearn");
        assert_eq!(moved_back.relearned, 1);
        let counts = store.spam_counts(vec![1, 2, 3]).await.expect("counts");
        assert_eq!((counts.spam_messages, counts.ham_messages), (0, 2));
        assert_eq!(counts.tokens, [(0, 1), (0, 2), (0, 1)]);
    }

    #[test]
    fn pruning_keeps_the_bound_and_drops_the_least_seen_tokens_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = redb::Database::create(dir.path().join("t.redb")).expect("db");
        let txn = db.begin_write().expect("write");
        {
            let mut table = txn.open_table(SPAM_TOKENS).expect("table");
            // 1000 tokens seen once, 300 seen twice, 100 seen often.
            for token in 0..1400u64 {
                let counts = match token {
                    0..1000 => (1, 0),
                    1000..1300 => (1, 1),
                    _ => (40, 3),
                };
                table.insert(token, counts).expect("insert");
            }
            assert_eq!(prune(&mut table, 1200).expect("prune"), 200);
            assert_eq!(table.len().expect("len"), 1200);
            for token in 1000..1400u64 {
                assert!(table.get(token).expect("get").is_some(), "{token} kept");
            }
            assert_eq!(prune(&mut table, 150).expect("prune"), 1050);
            let kept: Vec<u64> = table
                .iter()
                .expect("iter")
                .map(|e| e.expect("row").0.value())
                .collect();
            assert_eq!(kept.len(), 150);
            assert!(
                kept.iter().filter(|&&t| t >= 1300).count() == 100,
                "the often seen stay"
            );
        }
        txn.commit().expect("commit");
    }
}
