//! Password strength: the check the setup wizard and `letterbox user add`/`passwd` run before a
//! password is hashed. It refuses what an attacker tries first — short passwords, the most
//! common ones (with the usual capitals, leetspeak and trailing digits folded away), runs like
//! `12345678`, and the account's own name or domain — and says why in one sentence a person
//! can act on. It does not estimate entropy: a long password that passes is left alone.

/// Passwords shorter than this (in characters, not bytes) are refused. NIST SP 800-63B §3.1.1.2
/// asks for at least 8 when the password is the only factor; 10 leaves room for a family that
/// picks a word and two digits.
pub const MIN_CHARS: usize = 10;

/// A run is at least this many characters that repeat (`aaa`) or step by one (`abc`, `321`).
const MIN_RUN: usize = 3;

/// Context words shorter than this are not looked for (`me`, `uk` would refuse too much).
const MIN_CONTEXT_CHARS: usize = 3;

/// The 5,000 most frequent passwords of zxcvbn-ts' common list (`@zxcvbn-ts/language-common`
/// 4.1.3, MIT, ranked by frequency in leaked password sets), lowercased, keeping only entries
/// a password of `MIN_CHARS` or more can still fold to: those of 10+ characters, and shorter
/// ones that do not end in a digit or symbol (the folding strips those). One per line, most
/// frequent first. 37,256 bytes, stored once and uncompressed: the stripped x86_64 release
/// binary is 36,864 bytes larger with it than with an empty file (measured 2026-12-06).
const COMMON: &str = include_str!("common-passwords.txt");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Weakness {
    #[error("Use at least {MIN_CHARS} characters (this one has {0}).")]
    TooShort(usize),
    #[error("This password is one of the most common ones; attackers try those first.")]
    Common,
    #[error("Do not use the account's name or the domain in the password.")]
    Context,
    #[error("Avoid runs like 12345678 or aaaaaaa.")]
    Runs,
}

/// Checks `password` for an account; `context` holds words it must not contain: the address,
/// its local part, the domain (each is split at `@` and `.`; a domain's last label is left out).
pub fn check(password: &str, context: &[&str]) -> Result<(), Weakness> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(Weakness::TooShort(chars));
    }
    let lower = password.to_lowercase();
    if is_common(&lower) {
        return Err(Weakness::Common);
    }
    if contains_context(&lower, context) {
        return Err(Weakness::Context);
    }
    if without_runs(&lower) < MIN_CHARS {
        return Err(Weakness::Runs);
    }
    Ok(())
}

/// The password as typed, without what people add to a common word to pass a rule
/// (`Password123!`), and with leetspeak undone (`P@ssw0rd`): any of them on the list counts.
fn is_common(lower: &str) -> bool {
    let stripped = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    let candidates = [lower, stripped, &unleet(stripped), &unleet(lower)];
    candidates
        .iter()
        .any(|candidate| !candidate.is_empty() && COMMON.lines().any(|line| line == *candidate))
}

fn unleet(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '0' => 'o',
            '1' | '!' => 'i',
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' => 't',
            other => other,
        })
        .collect()
}

fn contains_context(lower: &str, context: &[&str]) -> bool {
    let folded = unleet(lower);
    context
        .iter()
        .flat_map(|item| {
            let item = item.to_lowercase();
            let (local, domain) = match item.split_once('@') {
                Some((local, domain)) => (Some(local.to_string()), domain.to_string()),
                None => (None, item),
            };
            let mut labels: Vec<String> = domain.split('.').map(str::to_string).collect();
            if labels.len() > 1 {
                labels.pop();
            }
            local.into_iter().chain(labels)
        })
        .filter(|word| word.chars().count() >= MIN_CONTEXT_CHARS)
        .any(|word| lower.contains(&word) || folded.contains(&word))
}

/// How many characters are left once every run of `MIN_RUN` or more is counted as one.
fn without_runs(lower: &str) -> usize {
    let chars: Vec<char> = lower.chars().collect();
    let mut left = 0;
    let mut start = 0;
    while start < chars.len() {
        let mut end = start + 1;
        if let Some(&next) = chars.get(end) {
            let step = i64::from(u32::from(next)) - i64::from(u32::from(chars[start]));
            if (-1..=1).contains(&step) {
                while let Some(&c) = chars.get(end) {
                    let previous = chars[end - 1];
                    if i64::from(u32::from(c)) - i64::from(u32::from(previous)) != step {
                        break;
                    }
                    end += 1;
                }
            }
        }
        let run = end - start;
        if run >= MIN_RUN {
            left += 1;
            start = end;
        } else {
            left += 1;
            start += 1;
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_their_reasons() {
        let context = ["alice@smith.example"];
        let cases: &[(&str, Result<(), Weakness>)] = &[
            ("hunter2", Err(Weakness::TooShort(7))),
            ("ünïcödé!!", Err(Weakness::TooShort(9))),
            ("ünïcödé!!x", Ok(())),
            ("Password123!", Err(Weakness::Common)),
            ("P@ssw0rd2024", Err(Weakness::Common)),
            ("qwertyuiop", Err(Weakness::Common)),
            ("1234567890", Err(Weakness::Common)),
            ("Baseball1987", Err(Weakness::Common)),
            ("iloveyou!!!!", Err(Weakness::Common)),
            ("alice-rocks-42", Err(Weakness::Context)),
            ("@L1ce and the cat", Err(Weakness::Context)),
            ("the Smith family!", Err(Weakness::Context)),
            ("dog 12345678", Err(Weakness::Runs)),
            ("aaaaaaaaaaaaaaaa", Err(Weakness::Runs)),
            ("zyxwvutsrqponm", Err(Weakness::Runs)),
            ("correct horse battery", Ok(())),
            ("a new secret", Ok(())),
            ("another password", Ok(())),
            ("Tr0ub4dor&3xyz", Ok(())),
            ("examples of tea", Ok(())),
        ];
        for (password, want) in cases {
            assert_eq!(&check(password, &context), want, "{password:?}");
        }
    }

    #[test]
    fn each_reason_is_one_sentence() {
        assert_eq!(
            Weakness::TooShort(7).to_string(),
            "Use at least 10 characters (this one has 7)."
        );
        for weakness in [Weakness::Common, Weakness::Context, Weakness::Runs] {
            let text = weakness.to_string();
            assert!(
                text.ends_with('.') && text.matches(". ").count() == 0,
                "{text}"
            );
        }
    }

    #[test]
    fn the_list_is_lowercase_unique_and_reachable() {
        let lines: Vec<&str> = COMMON.lines().collect();
        assert_eq!(lines.len(), 5000);
        let unique: std::collections::HashSet<&str> = lines.iter().copied().collect();
        assert_eq!(unique.len(), lines.len());
        for line in lines {
            assert_eq!(line, line.to_lowercase(), "{line}");
            let ends_folded =
                line.ends_with(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
            assert!(line.chars().count() >= MIN_CHARS || !ends_folded, "{line}");
        }
    }
}
