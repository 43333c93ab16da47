//! How token counts become a probability: Gary Robinson's per-token estimate and Fisher's
//! chi-square combination, as SpamBayes and bogofilter do it. Pure arithmetic.
//!
//! A token's spam probability is the share of spam among the messages that held it, each
//! class counted relative to its size (a household learns far more ham than spam), pulled
//! towards "unknown" (`UNKNOWN`) while the token has been seen only a few times (`STRENGTH`).
//! Only tokens that lean clearly one way count (`MIN_DEVIATION`), the strongest
//! `MAX_CLUES` of them. Fisher's method then asks two questions, "how unlikely are these
//! probabilities if the message were not spam" and the same for ham, and the answer is the
//! balance of the two: near 1 spam, near 0 ham, near 0.5 when the evidence is weak or
//! points both ways.

/// The probability of a token seen in no message (Robinson's x).
const UNKNOWN: f64 = 0.5;
/// How many messages' worth of weight the unknown value carries (Robinson's s). Between
/// SpamBayes's 0.45 and Robinson's 1: a word met in one or two messages leans less, so a
/// long message of mildly spammy words (a shop's newsletter) adds up to less certainty.
/// On the SpamAssassin corpus, with spam called above 0.999, 0.45 still marked one hard
/// ham message and 1 caught less spam than bogofilter (bench/RESULTS.md).
const STRENGTH: f64 = 0.8;
/// Tokens whose probability lies closer to 0.5 than this are left out.
const MIN_DEVIATION: f64 = 0.1;
/// At most this many tokens, the strongest, decide.
const MAX_CLUES: usize = 150;
/// The reasons given with a score: this many of the strongest clues.
pub const REASONS: usize = 5;

/// One token's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub spam: u32,
    pub ham: u32,
}

/// The spam probability of one token given the totals of learned messages.
pub fn token_probability(counts: Counts, spam_messages: u32, ham_messages: u32) -> f64 {
    let seen = f64::from(counts.spam) + f64::from(counts.ham);
    if seen == 0.0 {
        return UNKNOWN;
    }
    let spam_ratio = f64::from(counts.spam) / f64::from(spam_messages.max(1));
    let ham_ratio = f64::from(counts.ham) / f64::from(ham_messages.max(1));
    let ratio = spam_ratio / (spam_ratio + ham_ratio);
    (STRENGTH * UNKNOWN + seen * ratio) / (STRENGTH + seen)
}

/// The combined probability of the clues, and the indices of the strongest (at most
/// `REASONS`), strongest first. `probabilities` holds each token's probability.
pub fn combine(probabilities: &[f64]) -> (f64, Vec<usize>) {
    let mut clues: Vec<(usize, f64)> = probabilities
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, p)| (p - 0.5).abs() >= MIN_DEVIATION)
        .collect();
    clues.sort_by(|a, b| (b.1 - 0.5).abs().total_cmp(&(a.1 - 0.5).abs()));
    clues.truncate(MAX_CLUES);
    if clues.is_empty() {
        return (UNKNOWN, Vec::new());
    }
    let (mut ln_ham, mut ln_spam) = (0.0f64, 0.0f64);
    for &(_, p) in &clues {
        // Clamped so that a token seen only in spam (p near 1) cannot make ln(1 - p)
        // infinite and decide alone.
        let p = p.clamp(1e-6, 1.0 - 1e-6);
        ln_ham += p.ln();
        ln_spam += (1.0 - p).ln();
    }
    let degrees = 2 * clues.len();
    let spam = 1.0 - chi2_survival(-2.0 * ln_spam, degrees);
    let ham = 1.0 - chi2_survival(-2.0 * ln_ham, degrees);
    let probability = (spam - ham + 1.0) / 2.0;
    let reasons = clues.iter().take(REASONS).map(|&(i, _)| i).collect();
    (probability, reasons)
}

/// P(X ≥ x²) for a chi-square variable with an even number of degrees of freedom (the
/// series form; exact for even degrees).
fn chi2_survival(x2: f64, degrees: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..degrees / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_leans_by_the_share_of_each_class_and_by_how_often_it_was_seen() {
        let spammy = token_probability(Counts { spam: 10, ham: 0 }, 100, 1000);
        let once = token_probability(Counts { spam: 1, ham: 0 }, 100, 1000);
        assert!(
            spammy > 0.95 && once < spammy && once > 0.6,
            "{spammy} {once}"
        );
        // Seen in 10 % of spam and 10 % of ham: no evidence, whatever the raw counts.
        let even = token_probability(Counts { spam: 10, ham: 100 }, 100, 1000);
        assert!((even - 0.5).abs() < 1e-9, "{even}");
        assert_eq!(token_probability(Counts { spam: 0, ham: 0 }, 1, 1), UNKNOWN);
    }

    #[test]
    fn clues_combine_into_a_verdict_and_weak_ones_are_left_out() {
        let (spam, reasons) = combine(&[0.99, 0.98, 0.5, 0.55, 0.97]);
        assert!(spam > 0.99, "{spam}");
        assert_eq!(reasons, [0, 1, 4]);
        let (ham, _) = combine(&[0.01, 0.02, 0.03]);
        assert!(ham < 0.01, "{ham}");
        let (mixed, _) = combine(&[0.99, 0.01]);
        assert!((mixed - 0.5).abs() < 0.01, "{mixed}");
        assert_eq!(combine(&[0.5, 0.52]).0, UNKNOWN);
    }

    #[test]
    fn the_chi_square_tail_matches_known_values() {
        // P(X ≥ 2) for 2 degrees of freedom is e^-1; for 4 degrees, P(X ≥ 4) is 3e^-2.
        assert!((chi2_survival(2.0, 2) - (-1.0f64).exp()).abs() < 1e-12);
        assert!((chi2_survival(4.0, 4) - 3.0 * (-2.0f64).exp()).abs() < 1e-12);
        assert_eq!(chi2_survival(0.0, 10), 1.0);
    }
}
