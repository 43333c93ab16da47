//! The learning content filter (`crate::spam`) as the last end-of-data step: its probability
//! becomes points beside the other steps', so the thresholds of `[spam]` decide between the
//! inbox, Junk and a 550. The classifier alone can send a message to Junk but not refuse it:
//! a refusal needs a second sign (a blocklist, a forged HELO, a failed DMARC), since its
//! rare mistakes on hard ham (bench/RESULTS.md) would otherwise bounce real mail.

use std::sync::Arc;

use super::{Check, Facts, Phase, Score, Step, Verdict};
use crate::spam::Classifier;

/// Points for a probability of spam; the bands follow SpamAssassin's BAYES_* rules. Junk
/// (5 points by default) needs the classifier's spam verdict
/// ([`crate::spam::DEFAULT_SPAM_THRESHOLD`]) or a second sign.
pub fn points(probability: f64) -> (&'static str, f64) {
    match probability {
        p if p >= 0.9999 => ("BAYES_9999", 10.0),
        p if p >= crate::spam::DEFAULT_SPAM_THRESHOLD => ("BAYES_999", 6.0),
        p if p >= 0.99 => ("BAYES_99", 3.5),
        p if p >= 0.9 => ("BAYES_90", 2.5),
        p if p <= 0.01 => ("BAYES_00", -2.0),
        p if p <= 0.1 => ("BAYES_10", -1.0),
        _ => ("BAYES_50", 0.0),
    }
}

/// Clues shown in the `X-Spam-Clues` field: the strongest few.
const CLUES_SHOWN: usize = 5;

pub struct ContentStep {
    classifier: Arc<Classifier>,
}

impl ContentStep {
    pub fn new(classifier: Classifier) -> Self {
        ContentStep {
            classifier: Arc::new(classifier),
        }
    }
}

impl Step for ContentStep {
    fn name(&self) -> &'static str {
        "content"
    }

    fn check(&self, phase: &Phase, _facts: &Facts) -> Option<Check> {
        let Phase::Data(view) = phase else {
            return None;
        };
        let (classifier, view) = (self.classifier.clone(), view.clone());
        Some(Box::pin(async move {
            let score = match classifier.score_message(&view.head).await {
                Ok(score) => score,
                Err(error) => {
                    tracing::warn!(%error, "content filter: no score");
                    return Verdict::Accept;
                }
            };
            let (reason, points) = points(score.probability);
            if points == 0.0 {
                return Verdict::Accept;
            }
            let clues: Vec<String> = score
                .reasons
                .iter()
                .take(CLUES_SHOWN)
                .map(|clue| printable(clue))
                .collect();
            Verdict::Score(Score {
                points,
                reason: reason.to_string(),
                header: Some(format!(
                    "X-Spam-Clues: p={:.4} {}\r\n",
                    score.probability,
                    clues.join(", ")
                )),
            })
        }))
    }
}

/// A clue as header text: tokens come from the message, so anything that could end or fold
/// the field is replaced, and a long one is cut.
fn printable(clue: &str) -> String {
    clue.chars()
        .take(60)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_map_to_bands_and_only_certainty_reaches_junk_alone() {
        assert_eq!(points(0.99995).1, 10.0);
        assert_eq!(points(0.9995).1, 6.0);
        assert_eq!(points(0.995).1, 3.5);
        assert_eq!(points(0.95).1, 2.5);
        assert_eq!(points(0.5).1, 0.0);
        assert_eq!(points(0.05).1, -1.0);
        assert_eq!(points(0.0).1, -2.0);
        // The default thresholds (junk 5, reject 15): the filter alone never refuses.
        assert!(points(1.0).1 < 15.0);
    }

    #[test]
    fn clues_cannot_break_the_header() {
        assert_eq!(printable("a\r\nb\tc"), "a??b?c");
        assert_eq!(printable(&"x".repeat(100)).len(), 60);
    }
}
