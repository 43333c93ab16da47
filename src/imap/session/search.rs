//! SEARCH and UID SEARCH (RFC 9051 §6.4.4): flags, sizes, dates and UIDs from the message
//! rows; FROM/TO/CC/BCC/SUBJECT from the decoded header text stored at delivery; other
//! HEADER fields from the stored header block; BODY/TEXT by streaming the body through a
//! substring matcher (one chunk in memory).

use std::collections::HashMap;

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use super::selected::flag_bit;
use crate::imap::mime::Part;
use crate::imap::proto::SearchKey;
use crate::imap::proto::sequence::{compact, runs};
use crate::limits::MIME_HEADER_MAX;
use crate::net::Interrupted;
use crate::store::{Keywords, MessageInfo};

/// Rows read from the store at once (about 40 octets each). Each read is a trip to the
/// blocking pool, whose thread switches cost more than checking a few hundred flags: a
/// flag search over a large mailbox takes few trips.
const SEARCH_BATCH: usize = 2048;

struct Subject<'a> {
    seq: u32,
    count: u32,
    largest_uid: u32,
    row: &'a MessageInfo,
    /// `$`: the UIDs of the last saved result, as ranges.
    saved: &'a [(u32, u32)],
    /// `\Recent` in this session.
    recent: bool,
    structure: Option<&'a Part>,
    header: &'a [u8],
    /// (in the whole message?, needle) -> found.
    texts: &'a HashMap<(bool, String), bool>,
    keywords: &'a Keywords,
}

fn header_contains(block: &[u8], field: &str, needle: &str) -> bool {
    let needle = needle.to_lowercase();
    let mut current: Option<Vec<u8>> = None;
    let mut values = Vec::new();
    for line in block.split_inclusive(|&b| b == b'\n') {
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if let Some(value) = &mut current {
                value.extend_from_slice(line);
            }
            continue;
        }
        if let Some(value) = current.take() {
            values.push(value);
        }
        if let Some(colon) = line.iter().position(|&b| b == b':')
            && line[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(field.as_bytes())
        {
            current = Some(line[colon + 1..].to_vec());
        }
    }
    values.extend(current);
    values
        .iter()
        .any(|v| String::from_utf8_lossy(v).to_lowercase().contains(&needle))
}

fn collect_texts(key: &SearchKey, out: &mut Vec<(bool, String)>) {
    match key {
        SearchKey::Body(text) => out.push((false, text.to_lowercase())),
        SearchKey::Text(text) => out.push((true, text.to_lowercase())),
        SearchKey::And(keys) => keys.iter().for_each(|k| collect_texts(k, out)),
        SearchKey::Or(a, b) => {
            collect_texts(a, out);
            collect_texts(b, out);
        }
        SearchKey::Not(a) => collect_texts(a, out),
        _ => {}
    }
}

fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq(_) => true,
        SearchKey::And(keys) => keys.iter().any(uses_modseq),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::Not(a) => uses_modseq(a),
        _ => false,
    }
}

fn matches(key: &SearchKey, m: &Subject<'_>) -> bool {
    use SearchKey::*;
    let day = m.row.internal_date.div_euclid(86400);
    let sent_day = m
        .structure
        .and_then(|s| s.search.as_ref())
        .and_then(|s| s.sent)
        .map(|t| t.div_euclid(86400));
    match key {
        All => true,
        And(keys) => keys.iter().all(|k| matches(k, m)),
        Or(a, b) => matches(a, m) || matches(b, m),
        Not(a) => !matches(a, m),
        Flag(name) => flag_bit(name, m.keywords).is_some_and(|bit| m.row.flags & bit != 0),
        NoFlag(name) => flag_bit(name, m.keywords).is_none_or(|bit| m.row.flags & bit == 0),
        Recent => m.recent,
        New => m.recent && m.row.flags & crate::store::schema::flags::SEEN == 0,
        Old => !m.recent,
        Before(d) => day < *d,
        On(d) => day == *d,
        Since(d) => day >= *d,
        SentBefore(d) => sent_day.is_some_and(|s| s < *d),
        SentOn(d) => sent_day == Some(*d),
        SentSince(d) => sent_day.is_some_and(|s| s >= *d),
        Larger(n) => m.row.size > *n,
        Smaller(n) => m.row.size < *n,
        Uid(set) | Sequence(set) if set.is_saved() => m
            .saved
            .iter()
            .any(|&(low, high)| (low..=high).contains(&m.row.uid)),
        Uid(set) => set.contains(m.row.uid, m.largest_uid),
        Sequence(set) => set.contains(m.seq, m.count),
        ModSeq(n) => m.row.modseq >= *n,
        Header(field, text) => {
            let fields = m.structure.and_then(|s| s.search.as_ref());
            let decoded = match (field.as_str(), fields) {
                ("from", Some(f)) => Some(&f.from),
                ("to", Some(f)) => Some(&f.to),
                ("cc", Some(f)) => Some(&f.cc),
                ("bcc", Some(f)) => Some(&f.bcc),
                ("subject", Some(f)) => Some(&f.subject),
                _ => None,
            };
            match decoded {
                Some(value) => value.contains(&text.to_lowercase()),
                None => header_contains(m.header, field, text),
            }
        }
        Body(text) => m
            .texts
            .get(&(false, text.to_lowercase()))
            .copied()
            .unwrap_or(false),
        Text(text) => m
            .texts
            .get(&(true, text.to_lowercase()))
            .copied()
            .unwrap_or(false),
    }
}

/// Case-insensitive (ASCII) substring search over chunks, keeping only an overlap.
struct Finder {
    needle: Vec<u8>,
    carry: Vec<u8>,
    found: bool,
}

impl Finder {
    fn new(needle: &str) -> Finder {
        Finder {
            needle: needle.as_bytes().to_ascii_lowercase(),
            carry: Vec::new(),
            found: needle.is_empty(),
        }
    }

    fn feed(&mut self, data: &[u8]) {
        if self.found {
            return;
        }
        let mut window = std::mem::take(&mut self.carry);
        window.extend(data.iter().map(u8::to_ascii_lowercase));
        if window.windows(self.needle.len()).any(|w| w == self.needle) {
            self.found = true;
            return;
        }
        let keep = self.needle.len().saturating_sub(1).min(window.len());
        self.carry = window[window.len() - keep..].to_vec();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        key: &SearchKey,
        esearch: Option<Vec<String>>,
    ) -> Result<(), Interrupted> {
        let Some(selected) = &self.selected else {
            return Ok(());
        };
        let id = selected.id;
        let uids = selected.uids.clone();
        let saved = selected.saved.clone();
        let recent = selected.recent.clone();
        let count = u32::try_from(uids.len()).unwrap_or(u32::MAX);
        let largest_uid = uids.last().copied().unwrap_or(0);
        let store = self.ctx.store.clone();
        let needs_structure = key.needs_headers();
        let mut needles = Vec::new();
        collect_texts(key, &mut needles);
        let needs_header_block = needs_structure;
        // (sequence number, UID) of each match.
        let mut found: Vec<(u32, u32)> = Vec::new();
        let mut highest = 0u64;
        for (batch_index, batch) in uids.chunks(SEARCH_BATCH).enumerate() {
            let rows = match store.messages_by_uid(id, batch.to_vec()).await {
                Ok(rows) => rows,
                Err(e) => {
                    self.store_no(tag, &e);
                    return Ok(());
                }
            };
            for row in &rows {
                let Ok(position) = batch.binary_search(&row.uid) else {
                    continue;
                };
                let seq = (batch_index * SEARCH_BATCH + position + 1) as u32;
                let structure = if needs_structure || !needles.is_empty() {
                    store.message_structure(row.blob).await.ok()
                } else {
                    None
                };
                let mut header = Vec::new();
                if needs_header_block && let Some(s) = &structure {
                    let end = s.body_start.min(MIME_HEADER_MAX as u64);
                    header = self.read_prefix(row.blob, end).await;
                }
                let mut texts = HashMap::new();
                for (whole, needle) in &needles {
                    let start = if *whole {
                        0
                    } else {
                        structure.as_ref().map_or(0, |s| s.body_start)
                    };
                    let found = self.body_contains(row.blob, start, needle).await;
                    texts.insert((*whole, needle.clone()), found);
                }
                let subject = Subject {
                    seq,
                    count,
                    largest_uid,
                    row,
                    saved: &saved,
                    recent: recent
                        .iter()
                        .any(|&(low, high)| (low..=high).contains(&row.uid)),
                    structure: structure.as_ref(),
                    header: &header,
                    texts: &texts,
                    keywords: &self.keywords,
                };
                if matches(key, &subject) {
                    found.push((seq, row.uid));
                    highest = highest.max(row.modseq);
                }
            }
        }
        let results: Vec<u32> = found
            .iter()
            .map(|&(seq, u)| if uid { u } else { seq })
            .collect();
        let modseq = (uses_modseq(key) && !results.is_empty()).then_some(highest);
        // IMAP4rev2 answers every SEARCH with ESEARCH (RFC 9051 §6.4.4).
        let esearch = esearch.or_else(|| self.enabled.rev2.then(Vec::new));
        match esearch {
            Some(options) => {
                let has = |name: &str| options.iter().any(|o| o == name);
                if has("SAVE") {
                    self.save_result(&found, has("MIN"), has("MAX"), has("ALL") || has("COUNT"));
                }
                // SAVE alone asks for no response (RFC 5182 §2.1).
                if options.len() != 1 || !has("SAVE") {
                    let line = esearch_line(tag, uid, &options, &results, modseq);
                    self.untagged(&line).await?;
                }
            }
            None => {
                let mut line = String::from("SEARCH");
                for n in &results {
                    line.push_str(&format!(" {n}"));
                }
                if let Some(modseq) = modseq {
                    line.push_str(&format!(" (MODSEQ {modseq})"));
                }
                self.untagged(&line).await?;
            }
        }
        self.ok(tag, "SEARCH completed");
        Ok(())
    }

    /// Keeps a result as `$` (RFC 5182 §2.1): only MIN and/or MAX when those are all that
    /// was asked for, else every match.
    fn save_result(&mut self, found: &[(u32, u32)], min: bool, max: bool, all: bool) {
        let mut uids: Vec<u32> = if (min || max) && !all {
            let ends = [
                found.first().filter(|_| min).map(|&(_, u)| u),
                found.last().filter(|_| max).map(|&(_, u)| u),
            ];
            ends.into_iter().flatten().collect()
        } else {
            found.iter().map(|&(_, u)| u).collect()
        };
        uids.dedup();
        if let Some(selected) = &mut self.selected {
            selected.saved = runs(&uids);
        }
    }

    async fn read_prefix(&mut self, blob: u64, end: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut reader = self.ctx.store.body(blob);
        while (out.len() as u64) < end {
            match reader.next_chunk().await {
                Ok(Some(chunk)) => {
                    let take = ((end - out.len() as u64) as usize).min(chunk.len());
                    out.extend_from_slice(&chunk[..take]);
                }
                _ => break,
            }
        }
        out
    }

    async fn body_contains(&mut self, blob: u64, start: u64, needle: &str) -> bool {
        let mut finder = Finder::new(needle);
        let mut reader = self.ctx.store.body(blob);
        let mut offset = 0u64;
        while !finder.found {
            match reader.next_chunk().await {
                Ok(Some(chunk)) => {
                    let end = offset + chunk.len() as u64;
                    if end > start {
                        let from = start.saturating_sub(offset) as usize;
                        finder.feed(&chunk[from..]);
                    }
                    offset = end;
                }
                _ => break,
            }
        }
        finder.found
    }
}

/// `* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [MODSEQ n]` (RFC 4731 §3.1);
/// no options means ALL; nothing found gives no MIN, MAX or ALL.
fn esearch_line(
    tag: &str,
    uid: bool,
    options: &[String],
    results: &[u32],
    modseq: Option<u64>,
) -> String {
    let has = |name: &str| options.iter().any(|o| o == name);
    let all = has("ALL") || options.iter().all(|o| o == "SAVE");
    let mut line = String::from("ESEARCH (TAG ");
    let mut quoted = Vec::new();
    crate::imap::proto::encode::string(&mut quoted, tag.as_bytes());
    line.push_str(&String::from_utf8_lossy(&quoted));
    line.push(')');
    if uid {
        line.push_str(" UID");
    }
    if has("MIN")
        && let Some(min) = results.first()
    {
        line.push_str(&format!(" MIN {min}"));
    }
    if has("MAX")
        && let Some(max) = results.last()
    {
        line.push_str(&format!(" MAX {max}"));
    }
    if has("COUNT") {
        line.push_str(&format!(" COUNT {}", results.len()));
    }
    if all && !results.is_empty() {
        line.push_str(&format!(" ALL {}", compact(results)));
    }
    if let Some(modseq) = modseq {
        line.push_str(&format!(" MODSEQ {modseq}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esearch_lines() {
        let options = |list: &[&str]| list.iter().map(|o| o.to_string()).collect::<Vec<_>>();
        assert_eq!(
            esearch_line("a1", true, &[], &[1, 2, 3, 7], None),
            "ESEARCH (TAG \"a1\") UID ALL 1:3,7"
        );
        assert_eq!(
            esearch_line(
                "a2",
                false,
                &options(&["MIN", "MAX", "COUNT"]),
                &[4, 9],
                Some(12)
            ),
            "ESEARCH (TAG \"a2\") MIN 4 MAX 9 COUNT 2 MODSEQ 12"
        );
        assert_eq!(
            esearch_line("a3", false, &options(&["COUNT"]), &[], None),
            "ESEARCH (TAG \"a3\") COUNT 0"
        );
        assert_eq!(
            esearch_line("a4", false, &[], &[], None),
            "ESEARCH (TAG \"a4\")"
        );
    }

    #[test]
    fn finder_across_chunks() {
        let mut finder = Finder::new("Hello");
        finder.feed(b"xxhe");
        assert!(!finder.found);
        finder.feed(b"LLo world");
        assert!(finder.found);
        assert!(header_contains(
            b"X-Spam: yes\r\nSubject: a\r\n b\r\n\r\n",
            "x-spam",
            "YES"
        ));
        assert!(!header_contains(b"X-Spam: no\r\n\r\n", "x-spam", "yes"));
    }
}
