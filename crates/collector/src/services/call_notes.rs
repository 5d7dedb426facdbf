//! A manager's tags and notes on calls.
//!
//! Tags are short words a call is filed under: the built-in `lead`, `sale`
//! and `spam`, or the team's own (`repeat`, `wrong number`, `гарантия`).
//! They filter the call list, its CSV and the source report (`tag=`).
//! Notes are free text with their author and time; they may name the
//! caller, so only roles that see callers read them, and they go with the
//! call when it is erased.
//!
//! - this file: what a tag and a note may be (pure);
//! - [`crate::storage::call_notes`]: the port ([`NotesStore`]), its SQL in
//!   [`crate::storage::sqlite::call_notes`];
//! - [`crate::http::call_notes`]: `POST /v1/calls/{id}/tags`, `DELETE /v1/calls/{id}/tags/{tag}`,
//!   `GET|POST /v1/calls/{id}/notes`, `DELETE /v1/calls/{id}/notes/{note}`,
//!   `GET /v1/tags?site=`, and the tags added to the calls API's answers.

use crate::storage::StorageError;
pub use crate::storage::call_notes::{
    MAX_NOTE_CHARS, MAX_TAG_CHARS, MAX_TAGS_PER_CALL, Note, NoteError, NotesStore, NotesStoreError, TagCount,
};

/// The tags every site has, offered first.
pub const BUILT_IN: [&str; 3] = ["lead", "sale", "spam"];

/// A tag as stored: trimmed, inner spaces made single, in lower case (so
/// `Lead` and `lead ` are one tag).
pub fn tag(text: &str) -> Result<String, NoteError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let tag = words.join(" ").to_lowercase();
    let fits = !tag.is_empty()
        && tag.chars().count() <= MAX_TAG_CHARS
        && tag.chars().all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'));
    if fits { Ok(tag) } else { Err(NoteError::BadTag(text.to_owned())) }
}

/// A note as stored: trimmed, not empty, not too long; control characters
/// other than line breaks and tabs are refused with it.
pub fn note(text: &str) -> Result<String, NoteError> {
    let body = text.trim();
    let fits = !body.is_empty()
        && body.chars().count() <= MAX_NOTE_CHARS
        && body.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'));
    if fits { Ok(body.to_owned()) } else { Err(NoteError::BadNote) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_folded_and_checked() {
        assert_eq!(tag("  Lead ").unwrap(), "lead");
        assert_eq!(tag("Wrong   number").unwrap(), "wrong number");
        assert_eq!(tag("Гарантия").unwrap(), "гарантия");
        assert_eq!(tag("follow_up-2").unwrap(), "follow_up-2");
        for bad in ["", "   ", "a<b>", "x".repeat(33).as_str(), "sale!"] {
            assert!(tag(bad).is_err(), "{bad:?}");
        }
        assert_eq!(note("  called back, wants a quote \n").unwrap(), "called back, wants a quote");
        assert!(note(" ").is_err() && note("\u{7}").is_err() && note(&"x".repeat(2001)).is_err());
        assert!(note("line one\nline two").is_ok());
    }
}

/// Why a tag or note request was refused.
#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("no site {0:?} is configured")]
    UnknownSite(String),
    #[error(transparent)]
    Store(#[from] NotesStoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StorageError> for NotesError {
    fn from(e: StorageError) -> Self {
        NotesError::Store(NotesStoreError::Storage(e))
    }
}

impl From<NoteError> for NotesError {
    fn from(e: NoteError) -> Self {
        NotesError::Store(NotesStoreError::Note(e))
    }
}
