//! The readable text of HTML, for searching: tags are dropped, `<style>` and `<script>`
//! contents skipped, character references (`&amp;`, `&#233;`, `&#xE9;`) resolved. Fed
//! decoded text in pieces of any size; it keeps at most a tag name or a reference between
//! pieces. It is no HTML parser: a `>` inside a comment ends it early, and only the
//! references named in `named` are known (others stay as written).

/// Longest character reference kept while waiting for its `;` (`&#x10FFFF` is 9 characters).
const REFERENCE_MAX: usize = 10;
/// Longest tag name looked at: enough for "script".
const TAG_NAME_MAX: usize = 8;

#[derive(Debug, Default)]
enum State {
    #[default]
    Text,
    /// After `<`: the tag's name so far (lowercased) and whether it is a closing tag.
    TagName {
        name: heapless::String<TAG_NAME_MAX>,
        closing: bool,
    },
    /// Inside a tag after its name; `quote` while in a quoted attribute value. `raw` when the
    /// tag opened `<style>` or `<script>`, whose contents are not text.
    Tag {
        quote: Option<char>,
        raw: Option<Raw>,
    },
    /// After `&`.
    Reference(heapless::String<REFERENCE_MAX>),
    /// Inside `<style>` or `<script>`: how much of its closing tag `</name` has been seen.
    RawText { raw: Raw, matched: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Raw {
    Style,
    Script,
}

impl Raw {
    fn closing(self) -> &'static str {
        match self {
            Raw::Style => "</style",
            Raw::Script => "</script",
        }
    }
}

#[derive(Debug, Default)]
pub struct HtmlText {
    state: State,
}

impl HtmlText {
    /// Appends the text in `input` to `out`.
    pub fn feed(&mut self, input: &str, out: &mut String) {
        for c in input.chars() {
            self.char(c, out);
        }
    }

    /// Ends the input: a reference left open is text.
    pub fn finish(&mut self, out: &mut String) {
        if let State::Reference(reference) = std::mem::take(&mut self.state) {
            out.push('&');
            out.push_str(&reference);
        }
    }

    fn char(&mut self, c: char, out: &mut String) {
        match &mut self.state {
            State::Text => match c {
                '<' => {
                    self.state = State::TagName {
                        name: heapless::String::new(),
                        closing: false,
                    }
                }
                '&' => self.state = State::Reference(heapless::String::new()),
                _ => out.push(c),
            },
            State::TagName { name, closing } => {
                if c == '/' && name.is_empty() && !*closing {
                    *closing = true;
                } else if c.is_ascii_alphanumeric() || c == '!' || c == '-' {
                    // A longer name is none of the ones that matter; keep its start.
                    let _ = name.push(c.to_ascii_lowercase());
                } else if name.is_empty() && !*closing {
                    // `<` not starting a tag (`a < b`): text.
                    out.push('<');
                    self.state = State::Text;
                    self.char(c, out);
                } else {
                    let raw = match (name.as_str(), *closing) {
                        ("style", false) => Some(Raw::Style),
                        ("script", false) => Some(Raw::Script),
                        _ => None,
                    };
                    self.state = State::Tag { quote: None, raw };
                    self.char(c, out);
                }
            }
            State::Tag { quote, raw } => match (c, *quote) {
                ('>', None) => {
                    self.state = match *raw {
                        Some(raw) => State::RawText { raw, matched: 0 },
                        None => State::Text,
                    }
                }
                ('"' | '\'', None) => *quote = Some(c),
                (c, Some(q)) if c == q => *quote = None,
                _ => {}
            },
            State::Reference(reference) => {
                if c == ';' {
                    match resolve(reference) {
                        Some(resolved) => out.push(resolved),
                        None => {
                            out.push('&');
                            out.push_str(reference);
                            out.push(';');
                        }
                    }
                    self.state = State::Text;
                } else if (c.is_ascii_alphanumeric() || c == '#') && reference.len() < REFERENCE_MAX
                {
                    // There is room: the push cannot fail.
                    let _ = reference.push(c);
                } else {
                    out.push('&');
                    out.push_str(reference);
                    self.state = State::Text;
                    self.char(c, out);
                }
            }
            State::RawText { raw, matched } => {
                let closing = raw.closing().as_bytes();
                if c.to_ascii_lowercase() as u32 == u32::from(closing[*matched]) {
                    *matched += 1;
                    if *matched == closing.len() {
                        self.state = State::Tag {
                            quote: None,
                            raw: None,
                        };
                    }
                } else {
                    *matched = usize::from(c == '<');
                }
            }
        }
    }
}

/// The character a reference (without `&` and `;`) stands for.
fn resolve(reference: &str) -> Option<char> {
    if let Some(number) = reference.strip_prefix('#') {
        let value = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(value);
    }
    named(reference)
}

/// The named references common in mail: markup's own and the Latin-1 letters of European
/// languages (HTML mail from older clients writes accents this way).
fn named(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "shy" => '\u{ad}',
        "euro" => '€',
        "szlig" => 'ß',
        _ => return latin1_letter(name),
    })
}

/// `&Auml;`, `&eacute;`... : a base letter and an accent name.
fn latin1_letter(name: &str) -> Option<char> {
    const ACCENTS: [(&str, &str, &str); 6] = [
        // accent, the lowercase letters it goes on, the results (same order)
        ("grave", "aeiou", "àèìòù"),
        ("acute", "aeiouy", "áéíóúý"),
        ("circ", "aeiou", "âêîôû"),
        ("uml", "aeiouy", "äëïöüÿ"),
        ("tilde", "ano", "ãñõ"),
        ("cedil", "c", "ç"),
    ];
    let mut chars = name.chars();
    let letter = chars.next()?;
    let accent = chars.as_str();
    let (_, bases, results) = ACCENTS.iter().find(|(a, _, _)| *a == accent)?;
    let index = bases.find(letter.to_ascii_lowercase())?;
    let lower = results.chars().nth(index)?;
    if letter.is_ascii_uppercase() {
        lower.to_uppercase().next()
    } else {
        Some(lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text of `html` whole, split at every character, and one character at a time.
    fn text(html: &str) -> String {
        let run = |pieces: &[&str]| {
            let mut stripper = HtmlText::default();
            let mut out = String::new();
            for piece in pieces {
                stripper.feed(piece, &mut out);
            }
            stripper.finish(&mut out);
            out
        };
        let whole = run(&[html]);
        for (at, _) in html.char_indices() {
            let (a, b) = html.split_at(at);
            assert_eq!(run(&[a, b]), whole, "split at {at}");
        }
        let chars: Vec<String> = html.chars().map(String::from).collect();
        let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(run(&chars), whole, "char by char");
        whole
    }

    #[test]
    fn tags_dropped_text_kept() {
        let table = [
            ("<p>Hello <b>world</b></p>", "Hello world"),
            ("<a href=\"x>y\" title='>'>link</a>", "link"),
            ("a < b and c > d", "a < b and c > d"),
            ("<!-- note -->after", "after"),
            ("<br/>line<BR>", "line"),
            (
                "<style>p { color: red }</style>text<script>var a = '<b>';</script>!",
                "text!",
            ),
            ("<STYLE type=\"text/css\">x</Style >y", "y"),
            ("<styles>kept</styles>", "kept"),
        ];
        for (html, expected) in table {
            assert_eq!(text(html), expected, "{html}");
        }
    }

    #[test]
    fn references_resolved() {
        let table = [
            ("caf&eacute; &amp; cr&egrave;me", "café & crème"),
            ("Gr&Uuml;&szlig;e &Auml;", "GrÜße Ä"),
            ("&#233;&#xE9;&#XE9;", "ééé"),
            ("a&nbsp;b", "a b"),
            ("&unknown; & &amp", "&unknown; & &amp"),
            ("&#xZZ; &#1114112;", "&#xZZ; &#1114112;"),
            ("&averyverylongname;", "&averyverylongname;"),
        ];
        for (html, expected) in table {
            assert_eq!(text(html), expected, "{html}");
        }
    }
}
