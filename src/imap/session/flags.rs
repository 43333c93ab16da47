//! Flags by name (RFC 9051 §2.3.2): the system flags and the account's keywords as IMAP
//! names and as the bits stored with each message, the FLAGS and PERMANENTFLAGS lists, and
//! defining and learning keywords, which a selected client is told of before it meets them.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::net::Interrupted;
use crate::store::schema::flags;
use crate::store::{Flags, Keywords};

const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// Flags as IMAP names: the system flags, then the account's keywords.
pub fn flag_names(flags: &Flags, keywords: &Keywords) -> String {
    let names = [
        (flags::ANSWERED, "\\Answered"),
        (flags::FLAGGED, "\\Flagged"),
        (flags::DELETED, "\\Deleted"),
        (flags::SEEN, "\\Seen"),
        (flags::DRAFT, "\\Draft"),
    ];
    names
        .iter()
        .filter(|(bit, _)| flags.bits & bit != 0)
        .map(|(_, name)| *name)
        .chain(keywords.names(flags))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bit number (`Flags::has`) of one system flag or keyword name.
pub fn flag_bit(name: &str, keywords: &Keywords) -> Option<u8> {
    // Compared in place: SEARCH asks once per message.
    const SYSTEM: [(&str, u32); 5] = [
        ("\\seen", flags::SEEN),
        ("\\answered", flags::ANSWERED),
        ("\\flagged", flags::FLAGGED),
        ("\\deleted", flags::DELETED),
        ("\\draft", flags::DRAFT),
    ];
    match SYSTEM
        .iter()
        .find(|(system, _)| system.eq_ignore_ascii_case(name))
    {
        Some(&(_, mask)) => Some(mask.trailing_zeros() as u8),
        None => keywords.bit(name),
    }
}

/// IMAP flag names as flags; names the account has no keyword for (yet) count for nothing.
pub fn flag_bits(names: &[String], keywords: &Keywords) -> Flags {
    let mut flags = Flags::default();
    for bit in names.iter().filter_map(|name| flag_bit(name, keywords)) {
        flags.insert(bit);
    }
    flags
}

/// The FLAGS list of a selected mailbox.
pub(super) fn all_flags(keywords: &Keywords) -> String {
    std::iter::once(SYSTEM_FLAGS)
        .chain(keywords.all())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The PERMANENTFLAGS list of a read-write mailbox: `\*` (clients may make new keywords) only
/// while the account can still define one (RFC 9051 §7.1: a client learns it cannot).
pub(super) fn permanent_flags(keywords: &Keywords) -> String {
    let flags = all_flags(keywords);
    if keywords.is_full() {
        flags
    } else {
        format!("{flags} \\*")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Flag names as bits, defining the keywords among them that the account lacks; a
    /// selected session is told the new FLAGS list (RFC 9051 §7.3.5). When a keyword cannot be
    /// defined (the account has `IMAP_MAX_KEYWORDS`, or the store failed), the text of the NO
    /// the caller refuses with, rather than set the other flags and drop that one.
    pub(super) async fn resolve_flags(
        &mut self,
        names: &[String],
    ) -> Result<Result<Flags, &'static str>, Interrupted> {
        let unknown: Vec<String> = names
            .iter()
            .filter(|name| flag_bit(name, &self.keywords).is_none() && !name.starts_with('\\'))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let account = self.account().to_string();
            match self
                .ctx
                .store
                .define_keywords(&account, unknown.clone())
                .await
            {
                Ok(keywords) if keywords != self.keywords => {
                    self.keywords = keywords;
                    self.tell_flags().await?;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "cannot define IMAP keywords");
                    return Ok(Err(
                        "[UNAVAILABLE] Cannot store new keywords now, try again later",
                    ));
                }
            }
            if unknown.iter().any(|name| self.keywords.bit(name).is_none()) {
                return Ok(Err("[LIMIT] Too many keywords in this account"));
            }
        }
        Ok(Ok(flag_bits(names, &self.keywords)))
    }

    /// A selected client's FLAGS and PERMANENTFLAGS, after the keywords changed (RFC 9051
    /// §7.3.5: before any response that uses a new one).
    async fn tell_flags(&mut self) -> Result<(), Interrupted> {
        let Some(selected) = &self.selected else {
            return Ok(());
        };
        let permanent = if selected.read_only {
            String::new()
        } else {
            permanent_flags(&self.keywords)
        };
        let flags = all_flags(&self.keywords);
        self.untagged(&format!("FLAGS ({flags})")).await?;
        self.untagged(&format!(
            "OK [PERMANENTFLAGS ({permanent})] Flags permitted"
        ))
        .await
    }

    /// Before flags are shown: a keyword another session defined since this one read the
    /// list has no name here yet, so the list is read again and the client told.
    pub(super) async fn learn_keywords<'a>(
        &mut self,
        flags: impl IntoIterator<Item = &'a Flags>,
    ) -> Result<(), Interrupted> {
        if flags.into_iter().all(|f| self.keywords.covers(f)) {
            return Ok(());
        }
        let account = self.account().to_string();
        match self.ctx.store.keywords(&account).await {
            Ok(keywords) if keywords != self.keywords => {
                self.keywords = keywords;
                self.tell_flags().await
            }
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::warn!(%error, "cannot read IMAP keywords");
                Ok(())
            }
        }
    }
}
