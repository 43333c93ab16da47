//! The learning content filter, one per household: a statistical (Robinson-Fisher, as
//! SpamBayes and bogofilter) classifier over the tokens of a message's first octets.
//!
//! - `tokens`: what is read in a message (headers, decoded text, structure); sans-I/O.
//! - `score`: how token counts become a probability; pure arithmetic.
//! - `files`: Maildir folders and mbox files for `letterbox spam train|classify`.
//! - The counts live in the store (`store::spam`), bounded by `SPAM_TOKENS_MAX`.
//!
//! A classification reads at most `SPAM_READ_MAX` octets of the message and looks up at
//! most `SPAM_MESSAGE_TOKENS` tokens in one read transaction, whatever the message's size.
//! The SMTP filter calls [`Classifier::score`] at the end of DATA; the IMAP session calls
//! [`Classifier::learn_stored`] when a person moves a message into or out of Junk or sets
//! `$Junk` / `$NotJunk`.

mod files;
mod score;
mod tokens;

use tokio::io::{AsyncRead, AsyncReadExt};

pub use files::{ClassifiedFile, TrainSummary, classify_files, train};
pub use tokens::Tokens;

use crate::limits::{BODY_CHUNK, SPAM_READ_MAX};
use crate::store::{LearnOutcome, Lesson, LessonSource, Store, StoreError};
use score::Counts;

/// Above this a message is called spam where no threshold is configured (`spam classify`,
/// the benchmark), and the classifier alone sends a message to Junk on port 25
/// (`BAYES_999`). Fisher's combination puts most messages near 0 or 1; between them it is
/// unsure, and unsure is not spam. 0.999 rather than bogofilter's 0.99: on the SpamAssassin
/// corpus the messages between the two are a few percent of the spam but also the hard
/// ham that reads like an advertisement (bench/RESULTS.md).
pub const DEFAULT_SPAM_THRESHOLD: f64 = 0.999;

#[derive(Debug, thiserror::Error)]
pub enum SpamError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{0} is neither a Maildir folder, a directory of messages nor an mbox file")]
    NotMail(String),
}

/// The filter's opinion of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// 0 (certainly ham) to 1 (certainly spam); 0.5 when untrained or unsure.
    pub probability: f64,
    /// The strongest clues, strongest first, each as `token (probability)`, for an
    /// `X-Spam-Status`-style header and the log.
    pub reasons: Vec<String>,
}

/// The household's classifier: a handle on the store's counts (cheap to make and clone).
#[derive(Clone)]
pub struct Classifier {
    store: Store,
}

impl Classifier {
    pub fn new(store: Store) -> Classifier {
        Classifier { store }
    }

    /// Scores the message `reader` yields; reads at most `SPAM_READ_MAX` octets of it.
    pub async fn score(&self, reader: impl AsyncRead + Unpin) -> Result<Score, StoreError> {
        let message = read_prefix(reader).await.map_err(StoreError::io)?;
        self.score_message(&message).await
    }

    /// Scores a message's first octets (at most `SPAM_READ_MAX` of them are read).
    pub async fn score_message(&self, message: &[u8]) -> Result<Score, StoreError> {
        let tokens = Tokens::of_message(&message[..message.len().min(SPAM_READ_MAX)]);
        let counts = self.store.spam_counts(tokens.hashes()).await?;
        if counts.spam_messages == 0 || counts.ham_messages == 0 {
            return Ok(Score {
                probability: 0.5,
                reasons: vec!["untrained".to_string()],
            });
        }
        let probabilities: Vec<f64> = counts
            .tokens
            .iter()
            .map(|&(spam, ham)| {
                score::token_probability(
                    Counts { spam, ham },
                    counts.spam_messages,
                    counts.ham_messages,
                )
            })
            .collect();
        let (probability, strongest) = score::combine(&probabilities);
        let reasons = strongest
            .into_iter()
            .filter_map(|i| {
                let token = tokens.as_slice().get(i)?;
                Some(format!("{token} ({:.2})", probabilities[i]))
            })
            .collect();
        Ok(Score {
            probability,
            reasons,
        })
    }

    /// Learns stored messages (by blob id) as spam or ham, each once: a message learned
    /// before as the other class has that lesson undone.
    pub async fn learn_stored(
        &self,
        blobs: &[u64],
        spam: bool,
    ) -> Result<LearnOutcome, StoreError> {
        let mut total = LearnOutcome::default();
        for batch in blobs.chunks(crate::limits::SPAM_LEARN_BATCH) {
            let mut lessons = Vec::with_capacity(batch.len());
            for &blob in batch {
                let mut body = self.store.body(blob);
                let mut message = Vec::new();
                while message.len() < SPAM_READ_MAX
                    && let Some(chunk) = body.next_chunk().await?
                {
                    let room = SPAM_READ_MAX - message.len();
                    message.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                lessons.push(Lesson {
                    source: LessonSource::Stored(blob),
                    spam,
                    tokens: Tokens::of_message(&message).hashes(),
                });
            }
            let outcome = self.store.spam_learn(lessons).await?;
            total.learned += outcome.learned;
            total.relearned += outcome.relearned;
            total.unchanged += outcome.unchanged;
            total.pruned += outcome.pruned;
        }
        Ok(total)
    }
}

/// The first `SPAM_READ_MAX` octets `reader` yields, read in `BODY_CHUNK` pieces.
async fn read_prefix(reader: impl AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut message = Vec::with_capacity(BODY_CHUNK.min(SPAM_READ_MAX));
    reader
        .take(SPAM_READ_MAX as u64)
        .read_to_end(&mut message)
        .await?;
    Ok(message)
}
