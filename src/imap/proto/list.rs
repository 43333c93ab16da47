//! LIST and LSUB (RFC 9051 §6.3.9): the reference, the patterns, and the selection and return
//! options of LIST-EXTENDED (RFC 5258), SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819).

use super::command::{StatusItem, status_item};
use super::lexer::{Cursor, ParseError, Parsed};
use super::mailbox_name;

/// LIST (RFC 5258 LIST-EXTENDED, RFC 6154 SPECIAL-USE, RFC 5819 LIST-STATUS).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListCommand {
    pub reference: String,
    pub patterns: Vec<String>,
    pub select_subscribed: bool,
    pub select_special_use: bool,
    pub recursive_match: bool,
    pub return_subscribed: bool,
    pub return_children: bool,
    pub return_special_use: bool,
    pub return_status: Option<Vec<StatusItem>>,
    /// LSUB, or LIST with any selection/return option (so a `\NonExistent` reply form).
    pub lsub: bool,
    pub extended: bool,
}

fn pattern(c: &mut Cursor<'_>) -> Parsed<String> {
    let raw = c.list_mailbox()?;
    mailbox_name::from_wire(&raw, c.utf8_names())
}

pub(super) fn parse_list(c: &mut Cursor<'_>, lsub: bool) -> Parsed<ListCommand> {
    let mut list = ListCommand {
        lsub,
        ..ListCommand::default()
    };
    c.sp()?;
    if !lsub && c.peek() == Some(b'(') {
        list.extended = true;
        for option in c.list(|c| c.atom().map(<[u8]>::to_ascii_uppercase))? {
            match option.as_slice() {
                b"SUBSCRIBED" => list.select_subscribed = true,
                b"SPECIAL-USE" => list.select_special_use = true,
                b"RECURSIVEMATCH" => list.recursive_match = true,
                b"REMOTE" => {}
                _ => return Err(ParseError("unknown LIST selection option")),
            }
        }
        if list.recursive_match && !list.select_subscribed {
            return Err(ParseError("RECURSIVEMATCH needs another selection option"));
        }
        c.sp()?;
    }
    let reference = c.list_mailbox()?;
    list.reference = mailbox_name::from_wire(&reference, c.utf8_names())?;
    c.sp()?;
    if !lsub && c.peek() == Some(b'(') {
        list.extended = true;
        list.patterns = c.list(pattern)?;
    } else {
        list.patterns = vec![pattern(c)?];
    }
    if !lsub && c.eat(b' ') {
        if !c.keyword("RETURN") {
            return Err(ParseError("expected RETURN"));
        }
        list.extended = true;
        c.sp()?;
        c.list(|c| {
            if c.keyword("SUBSCRIBED") {
                list.return_subscribed = true;
            } else if c.keyword("CHILDREN") {
                list.return_children = true;
            } else if c.keyword("SPECIAL-USE") {
                list.return_special_use = true;
            } else if c.keyword("STATUS") {
                c.sp()?;
                list.return_status = Some(c.list(status_item)?);
            } else {
                return Err(ParseError("unknown LIST return option"));
            }
            Ok(())
        })?;
    }
    Ok(list)
}
