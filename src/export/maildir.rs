//! Maildir++ naming as Dovecot, mutt and mbsync read it — pure functions, no files.
//!
//! - One tree per account: INBOX is the root (`cur/new/tmp`), every other folder a directory
//!   `.Name` beside them, the hierarchy joined with `.` (`Work/2024` -> `.Work.2024`), names
//!   outside ASCII in modified UTF-7 (Dovecot's default on-disk names).
//! - A message file is `<internal date>.L<uid>.letterbox,S=<size>:2,<flags>`: system flags as
//!   the letters of the Maildir spec (D F P R S T, in ASCII order), then keywords as letters
//!   `a`-`z`, each the line of that number in the folder's `dovecot-keywords` file.
//! - The file's mtime is the internal date too: Dovecot takes the received date from it.

use crate::imap::proto::mutf7;
use crate::store::schema::flags;
use crate::store::{Flags, INBOX, Keywords};

/// Keyword letters `a` to `z`: what Dovecot's `dovecot-keywords` can number.
pub const MAX_FOLDER_KEYWORDS: usize = 26;

/// The directory of a folder inside an account's tree ("" for INBOX).
pub fn folder_dir(name: &str) -> String {
    if name.eq_ignore_ascii_case(INBOX) {
        return String::new();
    }
    format!(".{}", mutf7::encode(name).replace('/', "."))
}

/// The folder name of a Maildir++ directory (`.Work.2024` -> `Work/2024`); `None` for a
/// directory that is not a folder.
pub fn folder_name(dir: &str) -> Option<String> {
    let encoded = dir.strip_prefix('.')?;
    if encoded.is_empty() || encoded == "." {
        return None;
    }
    let name = mutf7::decode(encoded).unwrap_or_else(|| encoded.to_string());
    let name = name.replace('.', "/");
    if name.eq_ignore_ascii_case(INBOX) {
        return Some(INBOX.to_string());
    }
    Some(name)
}

/// The keywords of one folder, numbered as its `dovecot-keywords` file numbers them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderKeywords {
    names: Vec<String>,
}

impl FolderKeywords {
    /// The keywords used in a folder (`used`: each message's flags), in the account's order,
    /// the first 26 of them; the count of those left out comes back too.
    pub fn for_folder<'a>(
        account: &Keywords,
        used: impl Iterator<Item = &'a Flags>,
    ) -> (FolderKeywords, usize) {
        let mut set = Flags::default();
        for message_flags in used {
            set = set.union(message_flags);
        }
        let all: Vec<String> = account.names(&set).map(str::to_string).collect();
        let dropped = all.len().saturating_sub(MAX_FOLDER_KEYWORDS);
        let names = all.into_iter().take(MAX_FOLDER_KEYWORDS).collect();
        (FolderKeywords { names }, dropped)
    }

    /// Reads a `dovecot-keywords` file: `<number> <keyword>` lines; others are skipped.
    pub fn parse(text: &str) -> FolderKeywords {
        let mut names = vec![String::new(); MAX_FOLDER_KEYWORDS];
        for line in text.lines() {
            if let Some((number, name)) = line.split_once(' ')
                && let Ok(number) = number.parse::<usize>()
                && number < MAX_FOLDER_KEYWORDS
                && !name.trim().is_empty()
            {
                names[number] = name.trim().to_string();
            }
        }
        while names.last().is_some_and(String::is_empty) {
            names.pop();
        }
        FolderKeywords { names }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The `dovecot-keywords` file.
    pub fn file(&self) -> String {
        self.names
            .iter()
            .enumerate()
            .map(|(number, name)| format!("{number} {name}\n"))
            .collect()
    }

    /// The keyword a letter stands for.
    pub fn keyword(&self, letter: u8) -> Option<&str> {
        let index = usize::from(letter.checked_sub(b'a')?);
        self.names
            .get(index)
            .map(String::as_str)
            .filter(|name| !name.is_empty())
    }

    fn letter(&self, keyword: &str) -> Option<char> {
        let index = self
            .names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(keyword))?;
        Some(char::from(b'a' + u8::try_from(index).ok()?))
    }
}

/// The `:2,` letters of a message (system flags, then keywords).
pub fn info_letters(message_flags: &Flags, account: &Keywords, folder: &FolderKeywords) -> String {
    let mut letters = String::new();
    // The spec wants them in ASCII order: D F (P) R S T.
    for (bit, letter) in [
        (flags::DRAFT, 'D'),
        (flags::FLAGGED, 'F'),
        (flags::ANSWERED, 'R'),
        (flags::SEEN, 'S'),
        (flags::DELETED, 'T'),
    ] {
        if message_flags.bits & bit != 0 {
            letters.push(letter);
        }
    }
    let mut keyword_letters: Vec<char> = account
        .names(message_flags)
        .filter_map(|name| folder.letter(name))
        .collect();
    keyword_letters.sort_unstable();
    letters.extend(keyword_letters);
    letters
}

/// The file name of a message (without a directory).
pub fn file_name(internal_date: i64, uid: u32, size: u64, letters: &str) -> String {
    format!(
        "{}.L{uid}.letterbox,S={size}:2,{letters}",
        internal_date.max(0)
    )
}

/// What a message's file name says: its system flags, its keywords (by the folder's
/// numbering), and the time at its start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameInfo {
    pub system: u32,
    pub keywords: Vec<String>,
    pub time: Option<i64>,
}

pub fn parse_name(name: &str, folder: &FolderKeywords) -> NameInfo {
    let mut info = NameInfo {
        time: name
            .split('.')
            .next()
            .and_then(|t| t.parse::<i64>().ok())
            .filter(|t| *t >= 0),
        ..NameInfo::default()
    };
    // Dovecot and mbsync write `:2,`; on file systems without `:` some tools write `;2,` or
    // `!2,`.
    let letters = [":2,", ";2,", "!2,"]
        .iter()
        .find_map(|mark| name.rsplit_once(mark).map(|(_, letters)| letters))
        .unwrap_or("");
    for letter in letters.bytes() {
        match letter {
            b'D' => info.system |= flags::DRAFT,
            b'F' => info.system |= flags::FLAGGED,
            b'R' => info.system |= flags::ANSWERED,
            b'S' => info.system |= flags::SEEN,
            b'T' => info.system |= flags::DELETED,
            b'a'..=b'z' => {
                if let Some(keyword) = folder.keyword(letter) {
                    info.keywords.push(keyword.to_string());
                }
            }
            // P (passed) has no IMAP flag; anything else is unknown.
            _ => {}
        }
    }
    info
}

/// `dovecot-uidlist` (version 3): UIDVALIDITY and the next UID, then each message's UID and
/// the base of its file name, so Dovecot keeps the UIDs a client has cached.
pub fn uidlist_header(uidvalidity: u32, uidnext: u32) -> String {
    format!("3 V{uidvalidity} N{uidnext}\n")
}

pub fn uidlist_line(uid: u32, file_name: &str) -> String {
    let base = file_name.split(":2,").next().unwrap_or(file_name);
    format!("{uid} :{base}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords(names: &[&str]) -> Keywords {
        Keywords::for_tests(names)
    }

    #[test]
    fn folders_map_both_ways() {
        let cases = [
            ("INBOX", ""),
            ("Sent", ".Sent"),
            ("Work/2024", ".Work.2024"),
            ("Entwürfe", ".Entw&APw-rfe"),
        ];
        for (name, dir) in cases {
            assert_eq!(folder_dir(name), dir, "{name}");
            if !dir.is_empty() {
                assert_eq!(folder_name(dir).as_deref(), Some(name), "{dir}");
            }
        }
        for not_a_folder in ["cur", "", ".", "..", "tmp"] {
            assert_eq!(folder_name(not_a_folder), None, "{not_a_folder:?}");
        }
        assert_eq!(folder_name(".INBOX").as_deref(), Some("INBOX"));
    }

    #[test]
    fn flags_and_keywords_round_trip_through_a_file_name() {
        let account = keywords(&["$Junk", "NonJunk", "$label1"]);
        let mut flagged = Flags::from(flags::SEEN | flags::FLAGGED | flags::DELETED);
        flagged.insert(flags::FIRST_KEYWORD + 2); // $label1
        flagged.insert(flags::FIRST_KEYWORD); // $Junk
        let plain = Flags::from(flags::DRAFT);
        let (folder, dropped) =
            FolderKeywords::for_folder(&account, [&flagged, &plain].into_iter());
        assert_eq!(dropped, 0);
        assert_eq!(
            folder.file(),
            "0 $Junk\n1 $label1\n",
            "only the keywords in use"
        );
        let letters = info_letters(&flagged, &account, &folder);
        assert_eq!(letters, "FSTab");
        let name = file_name(1_700_000_000, 7, 1234, &letters);
        assert_eq!(name, "1700000000.L7.letterbox,S=1234:2,FSTab");
        let read = FolderKeywords::parse(&folder.file());
        let info = parse_name(&name, &read);
        assert_eq!(info.system, flags::SEEN | flags::FLAGGED | flags::DELETED);
        assert_eq!(info.keywords, ["$Junk", "$label1"]);
        assert_eq!(info.time, Some(1_700_000_000));
        assert_eq!(
            uidlist_line(7, &name),
            "7 :1700000000.L7.letterbox,S=1234\n"
        );
    }

    #[test]
    fn names_other_tools_write_are_read() {
        let folder = FolderKeywords::parse("0 $Forwarded\n2 Work\nnot a line\n30 too far\n");
        assert_eq!(folder.keyword(b'a'), Some("$Forwarded"));
        assert_eq!(folder.keyword(b'b'), None, "a gap in the numbering");
        assert_eq!(folder.keyword(b'c'), Some("Work"));
        let cases: [(&str, u32, &[&str]); 5] = [
            (
                "1600000000.M1P2.host,S=10,W=11:2,RS",
                flags::ANSWERED | flags::SEEN,
                &[],
            ),
            ("1600000000.M1P2.host:2,Pac", 0, &["$Forwarded", "Work"]),
            ("1600000000.M1P2.host!2,D", flags::DRAFT, &[]),
            ("1600000000.M1P2.host", 0, &[]),
            ("1600000000.M1P2.host:2,Sz", flags::SEEN, &[]),
        ];
        for (name, system, keywords) in cases {
            let info = parse_name(name, &folder);
            assert_eq!(info.system, system, "{name}");
            assert_eq!(info.keywords, keywords, "{name}");
            assert_eq!(info.time, Some(1_600_000_000), "{name}");
        }
        assert_eq!(parse_name("garbage", &folder).time, None);
    }

    #[test]
    fn a_folder_numbers_at_most_26_keywords() {
        let names: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let account = keywords(&refs);
        let mut all = Flags::default();
        for bit in 0..30 {
            all.insert(flags::FIRST_KEYWORD + bit);
        }
        let (folder, dropped) = FolderKeywords::for_folder(&account, std::iter::once(&all));
        assert_eq!(dropped, 4);
        assert_eq!(folder.keyword(b'z'), Some("k25"));
        assert_eq!(info_letters(&all, &account, &folder).len(), 26);
    }
}
