//! FETCH (RFC 9051 §6.4.5): message data from the store. Bodies and body parts are sent as
//! literals streamed chunk by chunk from the stored byte range; ENVELOPE and BODYSTRUCTURE
//! come from the structure stored with the body, so no message is parsed here. BINARY
//! decodes as it streams (`binary`).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::Session;
use super::binary::check_binary;
use super::read_ahead::needs_structure;
use super::section::{filter_header, section_name, without_nul};
use crate::imap::proto::sequence::SequenceSet;
use crate::imap::proto::{FetchAttr, Section, SectionText};
use crate::imap::proto::{encode, structure};
use crate::limits::{IMAP_READ_VIEW_MAX_AGE, MIME_HEADER_MAX};
use crate::mime::Part;
use crate::net::Interrupted;
use crate::store::schema::flags;
use crate::store::{FlagOp, MessageInfo, ReadView, StoreError};

/// Messages read from the store at once.
const FETCH_BATCH: usize = 256;

/// How one message's FETCH response went.
enum Answered {
    Sent,
    /// Nothing sent: a BINARY item names a part whose encoding cannot be decoded.
    UnknownCte,
    /// Nothing sent: its stored structure could not be read.
    Unreadable,
}

/// What a body section is: a byte range of the stored message, or bytes computed here.
enum Content {
    Range(u64, u64),
    Bytes(Vec<u8>),
}

/// Reads a (bounded) byte range of a body into memory; nothing for a range that ends before it
/// starts (a structure stored by a scanner before it kept parts in order).
async fn collect_range(view: &ReadView, blob: u64, start: u64, end: u64) -> Vec<u8> {
    if end <= start {
        return Vec::new();
    }
    let mut out = Vec::with_capacity((end - start) as usize);
    let mut reader = view.body_range(blob, start, end);
    while let Ok(Some((chunk_start, data))) = reader.next_piece().await {
        let chunk_end = chunk_start + data.len() as u64;
        let from = start.max(chunk_start) - chunk_start;
        let to = end.min(chunk_end).saturating_sub(chunk_start);
        if to > from {
            out.extend_from_slice(&data[from as usize..to as usize]);
        }
        if chunk_end >= end {
            break;
        }
    }
    out
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn fetch(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SequenceSet,
        attrs: &[FetchAttr],
        changed_since: Option<u64>,
    ) -> Result<(), Interrupted> {
        let Some(selected) = &self.selected else {
            return Ok(());
        };
        let pairs = selected.resolve(set, uid);
        let (id, name, read_only) = (selected.id, selected.name.clone(), selected.read_only);
        let sets_seen = !read_only && attrs.iter().any(FetchAttr::sets_seen);
        let store = self.ctx.store.clone();
        let account = self.account().to_string();
        // Messages another session expunged since this one was told: they are left out (their
        // data is gone; nothing is made up), and the reply says so (RFC 5530 EXPUNGEISSUED).
        let mut gone = false;
        let mut unreadable = false;
        for batch in pairs.chunks(FETCH_BATCH) {
            let uids: Vec<u32> = batch.iter().map(|&(_, u)| u).collect();
            // One view per batch: a row found in it has its structure and body in it too.
            let rows = match store.read_view().await {
                Ok(view) => view
                    .messages_by_uid(id, uids)
                    .await
                    .map(|rows| (view, rows)),
                Err(e) => Err(e),
            };
            let (mut view, mut rows) = match rows {
                Ok(found) => found,
                Err(e) => {
                    self.store_no(tag, &e);
                    return Ok(());
                }
            };
            let mut view_taken = Instant::now();
            gone |= rows.len() < batch.len();
            // What was read ahead came from the previous batch's view.
            self.read_ahead.clear();
            self.learn_keywords(rows.iter().map(|r| &r.flags)).await?;
            // A BINARY item that will be refused must not mark anything \Seen first.
            if sets_seen && !self.binary_decodable(&view, &rows, attrs).await {
                self.no(
                    tag,
                    "[UNKNOWN-CTE] Cannot decode the part's transfer encoding",
                );
                return Ok(());
            }
            let mut newly_seen = Vec::new();
            if sets_seen {
                let unseen: Vec<u32> = rows
                    .iter()
                    .filter(|r| r.flags.bits & flags::SEEN == 0)
                    .map(|r| r.uid)
                    .collect();
                if !unseen.is_empty()
                    && let Ok(outcome) = store
                        .store_flags(&account, &name, unseen, FlagOp::Add, flags::SEEN, None)
                        .await
                {
                    self.saw_own_change(outcome.before, outcome.after);
                    // Rows come in the order asked, by UID: found by binary search.
                    for change in outcome.changed {
                        if let Ok(index) = rows.binary_search_by_key(&change.uid, |r| r.uid) {
                            rows[index].flags = change.flags;
                            rows[index].modseq = change.modseq;
                            newly_seen.push(change.uid);
                        }
                    }
                    newly_seen.sort_unstable();
                }
            }
            let mut index = 0;
            while index < rows.len() {
                // A view keeps redb from reusing the pages it sees; a slow client must not
                // hold one for long. Between messages, the rest of the batch moves to a new
                // view (messages expunged meanwhile drop out, as from any batch).
                if view_taken.elapsed() > IMAP_READ_VIEW_MAX_AGE {
                    let rest: Vec<u32> = rows[index..].iter().map(|r| r.uid).collect();
                    let fresh = match store.read_view().await {
                        Ok(fresh) => fresh,
                        Err(e) => {
                            self.store_no(tag, &e);
                            return Ok(());
                        }
                    };
                    let mut still = match fresh.messages_by_uid(id, rest.clone()).await {
                        Ok(still) => still,
                        Err(e) => {
                            self.store_no(tag, &e);
                            return Ok(());
                        }
                    };
                    gone |= still.len() < rest.len();
                    // Flags as this command already told or set them.
                    for row in &mut still {
                        if let Ok(at) = rows[index..].binary_search_by_key(&row.uid, |r| r.uid) {
                            row.flags = rows[index + at].flags.clone();
                            row.modseq = rows[index + at].modseq;
                        }
                    }
                    (view, rows, index) = (fresh, still, 0);
                    view_taken = Instant::now();
                    self.read_ahead.clear();
                    continue;
                }
                let row = &rows[index];
                index += 1;
                if changed_since.is_some_and(|since| row.modseq <= since) {
                    continue;
                }
                if !self.read_ahead.covers(row.uid) {
                    self.read_ahead.load(&view, &rows[index - 1..], attrs).await;
                }
                let Ok(position) = batch.binary_search_by_key(&row.uid, |&(_, u)| u) else {
                    continue;
                };
                let seq = batch[position].0;
                let seen_now = newly_seen.binary_search(&row.uid).is_ok();
                let answered = self
                    .fetch_one(
                        &view,
                        seq,
                        row,
                        attrs,
                        uid,
                        seen_now,
                        changed_since.is_some(),
                    )
                    .await?;
                match answered {
                    Answered::Sent => {}
                    Answered::Unreadable => unreadable = true,
                    Answered::UnknownCte => {
                        self.read_ahead.clear();
                        self.no(
                            tag,
                            "[UNKNOWN-CTE] Cannot decode the part's transfer encoding",
                        );
                        return Ok(());
                    }
                }
            }
        }
        self.read_ahead.clear();
        let command = if uid { "UID FETCH" } else { "FETCH" };
        if unreadable {
            self.no(tag, "[UNAVAILABLE] Some messages could not be read");
        } else if gone && !uid {
            // A UID FETCH of UIDs that no longer exist is simply answered without them
            // (RFC 9051 §6.4.9); numbers the client still holds deserve the warning.
            self.no(
                tag,
                "[EXPUNGEISSUED] Some of the requested messages no longer exist",
            );
        } else {
            self.ok(tag, &format!("{command} completed"));
        }
        Ok(())
    }

    /// Whether every BINARY item of `attrs` can be decoded for every row.
    async fn binary_decodable(
        &self,
        view: &ReadView,
        rows: &[MessageInfo],
        attrs: &[FetchAttr],
    ) -> bool {
        let binary =
            |a: &FetchAttr| matches!(a, FetchAttr::Binary { .. } | FetchAttr::BinarySize { .. });
        if !attrs.iter().any(binary) {
            return true;
        }
        for row in rows {
            // An unreadable structure is answered by fetch_one; it is not an encoding problem.
            let Ok(structure) = self.structure_for(view, row, attrs).await else {
                continue;
            };
            if check_binary(row, structure.as_deref(), attrs).is_err() {
                return false;
            }
        }
        true
    }

    /// The message's stored structure, if any item of `attrs` needs it: read ahead, or from
    /// the view.
    async fn structure_for(
        &self,
        view: &ReadView,
        row: &MessageInfo,
        attrs: &[FetchAttr],
    ) -> Result<Option<Arc<Part>>, StoreError> {
        if !needs_structure(attrs) {
            return Ok(None);
        }
        if let Some(part) = self.read_ahead.structure(row.blob) {
            return Ok(Some(part));
        }
        match view.structure(row.blob).await {
            Ok(part) => Ok(Some(Arc::new(part))),
            Err(error) => {
                tracing::warn!(blob = row.blob, %error, "imap: no structure for a message");
                Err(error)
            }
        }
    }

    /// Writes one message's FETCH response, unless a BINARY item names a part whose transfer
    /// encoding cannot be decoded or the structure cannot be read (then nothing is written).
    #[allow(clippy::too_many_arguments)]
    async fn fetch_one(
        &mut self,
        view: &ReadView,
        seq: u32,
        row: &MessageInfo,
        attrs: &[FetchAttr],
        uid: bool,
        seen_now: bool,
        with_modseq: bool,
    ) -> Result<Answered, Interrupted> {
        let Ok(structure) = self.structure_for(view, row, attrs).await else {
            return Ok(Answered::Unreadable);
        };
        if check_binary(row, structure.as_deref(), attrs).is_err() {
            return Ok(Answered::UnknownCte);
        }
        let mut items: Vec<String> = Vec::new();
        let mut flags_sent = false;
        // A \Seen set by this FETCH is a flag change: after CONDSTORE it names its UID too.
        let with_uid = uid || (self.enabled.condstore && seen_now);
        if with_uid && !attrs.contains(&FetchAttr::Uid) {
            items.push(format!("UID {}", row.uid));
        }
        self.conn
            .output()
            .extend_from_slice(format!("* {seq} FETCH (").as_bytes());
        let mut first = true;
        let mut separator = |out: &mut Vec<u8>| {
            if !first {
                out.push(b' ');
            }
            first = false;
        };
        for item in items.drain(..) {
            separator(self.conn.output());
            self.conn.output().extend_from_slice(item.as_bytes());
        }
        let mut modseq_sent = false;
        for attr in attrs {
            separator(self.conn.output());
            let out = self.conn.output();
            match attr {
                FetchAttr::Flags => {
                    flags_sent = true;
                    let flags = self.message_flags(row.uid, &row.flags);
                    self.conn
                        .output()
                        .extend_from_slice(format!("FLAGS ({flags})").as_bytes());
                }
                FetchAttr::Uid => out.extend_from_slice(format!("UID {}", row.uid).as_bytes()),
                FetchAttr::InternalDate => out.extend_from_slice(
                    format!("INTERNALDATE {}", encode::date_time(row.internal_date)).as_bytes(),
                ),
                FetchAttr::Rfc822Size => {
                    out.extend_from_slice(format!("RFC822.SIZE {}", row.size).as_bytes())
                }
                FetchAttr::ModSeq => {
                    modseq_sent = true;
                    out.extend_from_slice(format!("MODSEQ ({})", row.modseq).as_bytes());
                }
                FetchAttr::Envelope => {
                    out.extend_from_slice(b"ENVELOPE ");
                    match structure.as_deref().and_then(|s| s.envelope.as_ref()) {
                        // A header with NUL in it is sent in literals: the NUL goes as 0x80.
                        Some(envelope) => out.extend_from_slice(&without_nul(envelope)),
                        None => out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
                    }
                }
                FetchAttr::Body | FetchAttr::BodyStructure => {
                    let extended = matches!(attr, FetchAttr::BodyStructure);
                    out.extend_from_slice(if extended {
                        b"BODYSTRUCTURE "
                    } else {
                        b"BODY "
                    });
                    match &structure {
                        Some(part) => {
                            let from = out.len();
                            structure::write(out, part, extended);
                            // Parameters with NUL are sent in literals: the NUL goes as 0x80.
                            out[from..]
                                .iter_mut()
                                .filter(|b| **b == 0)
                                .for_each(|b| *b = 0x80);
                        }
                        None => out.extend_from_slice(
                            format!("(\"text\" \"plain\" NIL NIL NIL \"7bit\" {} 0)", row.size)
                                .as_bytes(),
                        ),
                    }
                }
                FetchAttr::Rfc822 => {
                    self.send_section(
                        view,
                        row,
                        structure.as_deref(),
                        &Section::default(),
                        None,
                        "RFC822",
                    )
                    .await?;
                }
                FetchAttr::Rfc822Header | FetchAttr::Rfc822Text => {
                    let (text, name) = if matches!(attr, FetchAttr::Rfc822Header) {
                        (SectionText::Header, "RFC822.HEADER")
                    } else {
                        (SectionText::Text, "RFC822.TEXT")
                    };
                    let section = Section {
                        part: Vec::new(),
                        text: Some(text),
                    };
                    self.send_section(view, row, structure.as_deref(), &section, None, name)
                        .await?;
                }
                FetchAttr::Section {
                    section, partial, ..
                } => {
                    let mut name = format!("BODY[{}]", section_name(section));
                    if let Some((start, _)) = partial {
                        name.push_str(&format!("<{start}>"));
                    }
                    self.send_section(view, row, structure.as_deref(), section, *partial, &name)
                        .await?;
                }
                FetchAttr::Binary { part, partial, .. } => {
                    self.send_binary(view, row, structure.as_deref(), part, *partial)
                        .await?;
                }
                FetchAttr::BinarySize { part } => {
                    self.send_binary_size(view, row, structure.as_deref(), part)
                        .await?;
                }
            }
        }
        if seen_now && !flags_sent {
            separator(self.conn.output());
            let flags = self.message_flags(row.uid, &row.flags);
            self.conn
                .output()
                .extend_from_slice(format!("FLAGS ({flags})").as_bytes());
        }
        if (with_modseq || self.enabled.condstore && seen_now) && !modseq_sent {
            separator(self.conn.output());
            self.conn
                .output()
                .extend_from_slice(format!("MODSEQ ({})", row.modseq).as_bytes());
        }
        self.conn.output().extend_from_slice(b")\r\n");
        self.conn.write(&[]).await?;
        Ok(Answered::Sent)
    }

    /// Writes `name {length}` and the section's bytes, streamed from the store.
    async fn send_section(
        &mut self,
        view: &ReadView,
        row: &MessageInfo,
        structure: Option<&Part>,
        section: &Section,
        partial: Option<(u32, u32)>,
        name: &str,
    ) -> Result<(), Interrupted> {
        let content = match self.section_content(view, row, structure, section).await {
            Ok(content) => content,
            Err(e) => return Err(e),
        };
        let clip = |length: u64| -> (u64, u64) {
            match partial {
                Some((start, count)) => {
                    let start = u64::from(start).min(length);
                    (start, (length - start).min(u64::from(count)))
                }
                None => (0, length),
            }
        };
        match content {
            Content::Bytes(bytes) => {
                let (start, length) = clip(bytes.len() as u64);
                let out = self.conn.output();
                out.extend_from_slice(format!("{name} {{{length}}}\r\n").as_bytes());
                out.extend_from_slice(&without_nul(
                    &bytes[start as usize..(start + length) as usize],
                ));
            }
            Content::Range(begin, end) => {
                let (start, length) = clip(end.saturating_sub(begin));
                self.conn
                    .output()
                    .extend_from_slice(format!("{name} {{{length}}}\r\n").as_bytes());
                self.stream_range(view, row.blob, begin + start, begin + start + length)
                    .await?;
            }
        }
        Ok(())
    }

    async fn section_content(
        &mut self,
        view: &ReadView,
        row: &MessageInfo,
        structure: Option<&Part>,
        section: &Section,
    ) -> Result<Content, Interrupted> {
        let whole = Content::Range(0, row.size);
        let Some(root) = structure else {
            return Ok(if section.part.is_empty() && section.text.is_none() {
                whole
            } else {
                Content::Bytes(Vec::new())
            });
        };
        let Some(resolved) = root.resolve(&section.part) else {
            return Ok(Content::Bytes(Vec::new()));
        };
        let message = resolved.as_message();
        let empty = Content::Bytes(Vec::new());
        Ok(match &section.text {
            None if section.part.is_empty() => whole,
            None => Content::Range(resolved.part.body_start, resolved.part.end),
            Some(SectionText::Mime) => {
                Content::Range(resolved.part.header_start, resolved.part.body_start)
            }
            Some(SectionText::Header) => match message {
                Some(m) => Content::Range(m.header_start, m.body_start),
                None => empty,
            },
            Some(SectionText::Text) => match message {
                Some(m) => Content::Range(m.body_start, m.end),
                None => empty,
            },
            Some(SectionText::HeaderFields { not, fields }) => match message {
                Some(m) => {
                    let end = m.body_start.min(m.header_start + MIME_HEADER_MAX as u64);
                    if let Some(block) = self.read_ahead.bytes(row.blob, m.header_start, end) {
                        return Ok(Content::Bytes(filter_header(block, fields, *not)));
                    }
                    let block = collect_range(view, row.blob, m.header_start, end).await;
                    Content::Bytes(filter_header(&block, fields, *not))
                }
                None => empty,
            },
        })
    }

    /// Sends a byte range of a body, one stored chunk at a time, NUL octets replaced (see
    /// `without_nul`). The literal's length is already promised: if the body cannot be read
    /// (an I/O error; the view keeps expunged bodies), the connection ends rather than send
    /// made-up octets.
    async fn stream_range(
        &mut self,
        view: &ReadView,
        blob: u64,
        start: u64,
        end: u64,
    ) -> Result<(), Interrupted> {
        if let Some(bytes) = self.read_ahead.bytes(blob, start, end) {
            return self.conn.write(&without_nul(bytes)).await;
        }
        let mut reader = view.body_range(blob, start, end);
        let mut sent = start;
        while sent < end {
            let (chunk_start, data) = match reader.next_piece().await {
                Ok(Some(piece)) => piece,
                Ok(None) | Err(_) => {
                    tracing::error!(blob, "imap: body shorter than its size; ending the session");
                    return Err(Interrupted::Closed);
                }
            };
            let chunk_end = chunk_start + data.len() as u64;
            let from = sent.max(chunk_start) - chunk_start;
            let to = end.min(chunk_end).saturating_sub(chunk_start);
            if to > from {
                self.conn
                    .write(&without_nul(&data[from as usize..to as usize]))
                    .await?;
                sent = chunk_start + to;
            }
        }
        Ok(())
    }
}
