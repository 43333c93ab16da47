//! SEARCH and UID SEARCH (RFC 9051 §6.4.4): flags, sizes, dates and UIDs from the message
//! rows; FROM/TO/CC/BCC/SUBJECT from the decoded header text stored at delivery; other
//! HEADER fields and the Date: of SENTON etc. from the stored header block; BODY/TEXT by
//! streaming the body once through `mime::MessageText` (transfer and charset decoding, HTML
//! to text; one chunk in memory) into a substring matcher per needle.

use std::collections::HashMap;

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use super::flags::flag_bit;
use crate::imap::proto::SearchKey;
use crate::imap::proto::sequence::{compact, runs};
use crate::limits::MIME_HEADER_MAX;
use crate::mime::{Finder, MessageText, Part, Source, field_values, sent_day};
use crate::net::Interrupted;
use crate::store::{Keywords, MessageInfo, ReadView};

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
    /// The Date: header's own date (days since 1970-01-01).
    sent_day: Option<i64>,
    /// (in the whole message?, needle) -> found.
    texts: &'a HashMap<(bool, String), bool>,
    keywords: &'a Keywords,
}

fn header_contains(block: &[u8], field: &str, needle: &str) -> bool {
    let needle = needle.to_lowercase();
    // Unfolded (RFC 5322 §2.2.3: the line breaks go, the white space after them stays), so
    // that words on either side of a fold are found together.
    field_values(block, field).iter().any(|v| {
        String::from_utf8_lossy(v)
            .replace(['\r', '\n'], "")
            .to_lowercase()
            .contains(&needle)
    })
}

/// Hands a piece of a message's text to the finders that search it: TEXT (`true`) reads
/// the message's header too, BODY only its body.
fn feed_finders(finders: &mut [(bool, Finder)], source: Source, piece: &str) {
    for (whole, finder) in finders.iter_mut() {
        if *whole || source == Source::Body {
            finder.feed(piece);
        }
    }
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

fn matches(key: &SearchKey, m: &Subject<'_>) -> bool {
    use SearchKey::*;
    let day = m.row.internal_date.div_euclid(86400);
    match key {
        All => true,
        And(keys) => keys.iter().all(|k| matches(k, m)),
        Or(a, b) => matches(a, m) || matches(b, m),
        Not(a) => !matches(a, m),
        Flag(name) => flag_bit(name, m.keywords).is_some_and(|bit| m.row.flags.has(bit)),
        NoFlag(name) => flag_bit(name, m.keywords).is_none_or(|bit| !m.row.flags.has(bit)),
        Recent => m.recent,
        New => m.recent && m.row.flags.bits & crate::store::schema::flags::SEEN == 0,
        Old => !m.recent,
        Before(d) => day < *d,
        On(d) => day == *d,
        Since(d) => day >= *d,
        SentBefore(d) => m.sent_day.is_some_and(|s| s < *d),
        SentOn(d) => m.sent_day == Some(*d),
        SentSince(d) => m.sent_day.is_some_and(|s| s >= *d),
        Larger(n) => m.row.size > *n,
        Smaller(n) => m.row.size < *n,
        Uid(set) | Sequence(set) if set.is_saved() => m
            .saved
            .iter()
            .any(|&(low, high)| (low..=high).contains(&m.row.uid)),
        Uid(set) => set.contains(m.row.uid, m.largest_uid),
        Sequence(set) => set.contains(m.seq, m.count),
        ModSeq(n) => m.row.modseq >= *n,
        // An empty string matches every message that has the field (RFC 9051 §6.4.4).
        Header(field, text) if text.is_empty() => !field_values(m.header, field).is_empty(),
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
            // The raw field as well: mail stored before group names were kept in the decoded
            // fields ("undisclosed-recipients") finds them there.
            decoded.is_some_and(|value| value.contains(&text.to_lowercase()))
                || header_contains(m.header, field, text)
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
            // One view per batch, as for FETCH: a message another session expunges meanwhile
            // is searched whole or not at all (never as an empty header or body).
            let rows = match store.read_view().await {
                Ok(view) => view
                    .messages_by_uid(id, batch.to_vec())
                    .await
                    .map(|rows| (view, rows)),
                Err(e) => Err(e),
            };
            let (view, rows) = match rows {
                Ok(found) => found,
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
                    view.structure(row.blob).await.ok()
                } else {
                    None
                };
                let mut header = Vec::new();
                if needs_header_block && let Some(s) = &structure {
                    let end = s.body_start.min(MIME_HEADER_MAX as u64);
                    header = read_prefix(&view, row.blob, end).await;
                }
                let texts = match &structure {
                    Some(s) if !needles.is_empty() => {
                        find_texts(&view, row.blob, s, &needles).await
                    }
                    _ => HashMap::new(),
                };
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
                    sent_day: sent_day(&header),
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
        let modseq = (key.uses_modseq() && !results.is_empty()).then_some(highest);
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
}

async fn read_prefix(view: &ReadView, blob: u64, end: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut reader = view.body(blob);
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

/// Reads a message's text once for all BODY (`false`) and TEXT (`true`) needles:
/// (whole message?, needle) -> found. Parts that are not text are skipped unread, and
/// reading stops once every needle is found.
async fn find_texts(
    view: &ReadView,
    blob: u64,
    structure: &Part,
    needles: &[(bool, String)],
) -> HashMap<(bool, String), bool> {
    let mut finders: Vec<(bool, Finder)> = needles
        .iter()
        .map(|(whole, needle)| (*whole, Finder::new(needle)))
        .collect();
    let mut text = MessageText::new(structure);
    let mut reader = view.body(blob);
    // Where the piece `reader` gives next starts.
    let mut next = 0u64;
    while let Some(wanted) = text.wanted() {
        if finders.iter().all(|(_, finder)| finder.found()) {
            break;
        }
        if wanted > next {
            reader = view.body_range(blob, wanted, u64::MAX);
        }
        let Ok(Some((start, data))) = reader.next_piece().await else {
            break;
        };
        next = start + data.len() as u64;
        text.feed(start, &data, &mut |source, piece| {
            feed_finders(&mut finders, source, piece)
        });
    }
    text.finish(&mut |source, piece| feed_finders(&mut finders, source, piece));
    needles
        .iter()
        .cloned()
        .zip(finders.iter().map(|(_, finder)| finder.found()))
        .collect()
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
    use crate::store::Flags;

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
    fn header_fields_by_name() {
        assert!(header_contains(
            b"X-Spam: yes\r\nSubject: a\r\n b\r\n\r\n",
            "x-spam",
            "YES"
        ));
        assert!(!header_contains(b"X-Spam: no\r\n\r\n", "x-spam", "yes"));
    }

    /// Whether `search` (a SEARCH key as a client sends it) matches `message`.
    fn search_matches(message: &str, search: &str) -> bool {
        let structure = crate::mime::structure_of(message.as_bytes());
        search_matches_with(message, &structure, search)
    }

    fn search_matches_with(message: &str, structure: &Part, search: &str) -> bool {
        let header = &message.as_bytes()[..structure.body_start as usize];
        let key = crate::imap::proto::search::parse_search(
            &mut crate::imap::proto::lexer::Cursor::new(search.as_bytes()),
        )
        .unwrap();
        let row = MessageInfo {
            uid: 1,
            blob: 1,
            flags: Flags::default(),
            internal_date: 0,
            size: message.len() as u64,
            modseq: 1,
        };
        let subject = Subject {
            seq: 1,
            count: 1,
            largest_uid: 1,
            row: &row,
            saved: &[],
            recent: false,
            structure: Some(structure),
            header,
            sent_day: sent_day(header),
            texts: &HashMap::new(),
            keywords: &Keywords::default(),
        };
        matches(&key, &subject)
    }

    #[test]
    fn header_semantics() {
        let late_pacific = "Date: Tue, 02 Jan 2024 23:30:00 -0800\r\n\
To: undisclosed-recipients:;\r\nSubject: hi\r\n\r\nbody\r\n";
        let early_tokyo = "Date: Tue, 02 Jan 2024 00:30:00 +0900\r\n\
To: Friends: a@home.test, c@home.test;\r\n\r\nbody\r\n";
        let no_to = "Subject: \r\nX-Empty:\r\n\r\nbody\r\n";
        let table = [
            // SENT* compare the date as written in its own zone (UTC: 3 Jan and 1 Jan).
            (late_pacific, "SENTON 2-Jan-2024", true),
            (late_pacific, "SENTBEFORE 3-Jan-2024", true),
            (late_pacific, "SENTSINCE 3-Jan-2024", false),
            (early_tokyo, "SENTON 2-Jan-2024", true),
            (early_tokyo, "SENTSINCE 2-Jan-2024", true),
            (early_tokyo, "SENTBEFORE 2-Jan-2024", false),
            (no_to, "SENTBEFORE 1-Jan-2030", false),
            // An empty string matches the messages that have the field, and only those.
            (late_pacific, "TO \"\"", true),
            (no_to, "TO \"\"", false),
            (no_to, "CC \"\"", false),
            (no_to, "SUBJECT \"\"", true),
            (early_tokyo, "SUBJECT \"\"", false),
            (no_to, "HEADER X-Empty \"\"", true),
            (late_pacific, "HEADER X-Empty \"\"", false),
            (late_pacific, "NOT HEADER X-Empty \"\"", true),
            // Group names are text of the address fields.
            (late_pacific, "TO undisclosed-recipients", true),
            (early_tokyo, "TO friends", true),
            (early_tokyo, "TO c@home.test", true),
            (early_tokyo, "TO enemies", false),
        ];
        // Mail stored before group names were kept in the decoded fields.
        let mut stored_before = crate::mime::structure_of(late_pacific.as_bytes());
        if let Some(fields) = &mut stored_before.search {
            fields.to.clear();
        }
        assert!(search_matches_with(
            late_pacific,
            &stored_before,
            "TO undisclosed-recipients"
        ));
        for (message, search, expected) in table {
            assert_eq!(
                search_matches(message, search),
                expected,
                "{search} on {:?}",
                message.lines().next()
            );
        }
    }
}
