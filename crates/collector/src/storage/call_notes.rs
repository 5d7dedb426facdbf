//! A manager's tags and notes on calls: the port's types and
//! [`NotesStore`]. What a tag and a note may be is
//! [`crate::services::call_notes`]; the SQL is
//! [`crate::storage::sqlite::call_notes`].

use std::collections::HashMap;

use serde::Serialize;

use crate::storage::StorageError;

/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 32;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;
/// Most tags on one call.
pub const MAX_TAGS_PER_CALL: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("a tag is 1 to {MAX_TAG_CHARS} letters, digits, spaces, '-' or '_'; {0:?} is not")]
    BadTag(String),
    #[error("a note is 1 to {MAX_NOTE_CHARS} characters")]
    BadNote,
    #[error("a call carries at most {MAX_TAGS_PER_CALL} tags")]
    TooManyTags,
}

/// A note as the API writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Note {
    pub id: i64,
    pub call_id: i64,
    pub author: String,
    pub body: String,
    pub at_ms: i64,
}

/// A tag in use on a site, and on how many calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TagCount {
    pub tag: String,
    pub calls: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum NotesStoreError {
    #[error("no call {0}")]
    UnknownCall(i64),
    #[error("call {call_id} has no note {note_id}")]
    UnknownNote { call_id: i64, note_id: i64 },
    #[error("{who} did not write note {note_id}: only its author or an admin removes it")]
    NotAuthor { who: String, note_id: i64 },
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Tags and notes on calls.
pub trait NotesStore: Send + Sync {
    /// Tags `call_id` (again: nothing changes); the call's tags after.
    fn add_tag(&self, call_id: i64, tag: &str, by: &str, now_ms: i64) -> Result<Vec<String>, NotesStoreError>;

    fn remove_tag(&self, call_id: i64, tag: &str) -> Result<Vec<String>, NotesStoreError>;

    /// The tags of each of `call_ids` that has any.
    fn tags_of_calls(&self, call_ids: &[i64]) -> Result<HashMap<i64, Vec<String>>, StorageError>;

    /// The site's tags with how many of its calls carry each, most used first.
    fn tags_in_use(&self, site: &str) -> Result<Vec<TagCount>, StorageError>;

    fn notes(&self, call_id: i64) -> Result<Vec<Note>, NotesStoreError>;

    fn add_note(&self, call_id: i64, author: &str, body: &str, now_ms: i64) -> Result<Note, NotesStoreError>;

    /// Removes a note written by `who` (any note when `any_author`).
    fn remove_note(&self, call_id: i64, note_id: i64, who: &str, any_author: bool) -> Result<(), NotesStoreError>;
}
