//! Managers' tags and notes on calls ([`NotesStore`]), a call's recording
//! URL ([`RecordingStore`]) and the stored visitor facts, on PostgreSQL.

use std::collections::HashMap;

use crate::clock::ManualClock;
use crate::storage::call_notes::{MAX_TAGS_PER_CALL, Note, NoteError, NotesStore, NotesStoreError, TagCount};
use crate::storage::recordings::{CallRecording, RecordingStore};
use crate::storage::{Facts, StorageError};

use super::{Blocking, HasStorageError, PostgresStorage};

impl HasStorageError for NotesStoreError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            NotesStoreError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

/// Locks the call's row (its tags and notes change one writer at a time),
/// or says there is no such call.
fn lock_call(db: &Blocking<'_, '_>, call_id: i64) -> Result<(), NotesStoreError> {
    match db.query_opt("looking up a call", "SELECT 1 FROM calls WHERE id = $1 FOR NO KEY UPDATE", &[&call_id])? {
        Some(_) => Ok(()),
        None => Err(NotesStoreError::UnknownCall(call_id)),
    }
}

fn tags_of(db: &Blocking<'_, '_>, call_id: i64) -> Result<Vec<String>, StorageError> {
    Ok(db
        .query(
            "reading a call's tags",
            "SELECT tag FROM call_tags WHERE call_id = $1 ORDER BY tag COLLATE \"C\"",
            &[&call_id],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

impl NotesStore for PostgresStorage {
    fn add_tag(&self, call_id: i64, tag: &str, by: &str, now_ms: i64) -> Result<Vec<String>, NotesStoreError> {
        self.write(&ManualClock::new(now_ms), |db, _| {
            lock_call(db, call_id)?;
            let tags = tags_of(db, call_id)?;
            if !tags.iter().any(|t| t == tag) {
                if tags.len() >= MAX_TAGS_PER_CALL {
                    return Err(NoteError::TooManyTags.into());
                }
                db.execute(
                    "tagging a call",
                    "INSERT INTO call_tags (call_id, tag, tagged_by, at_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                    &[&call_id, &tag, &by, &now_ms],
                )?;
            }
            Ok(tags_of(db, call_id)?)
        })
    }

    fn remove_tag(&self, call_id: i64, tag: &str) -> Result<Vec<String>, NotesStoreError> {
        self.write(&ManualClock::new(0), |db, _| {
            lock_call(db, call_id)?;
            db.execute("untagging a call", "DELETE FROM call_tags WHERE call_id = $1 AND tag = $2", &[&call_id, &tag])?;
            Ok(tags_of(db, call_id)?)
        })
    }

    fn tags_of_calls(&self, call_ids: &[i64]) -> Result<HashMap<i64, Vec<String>>, StorageError> {
        self.read(|db| {
            let mut out: HashMap<i64, Vec<String>> = HashMap::new();
            for r in db.query(
                "reading calls' tags",
                "SELECT call_id, tag FROM call_tags WHERE call_id = ANY($1) ORDER BY call_id, tag COLLATE \"C\"",
                &[&call_ids],
            )? {
                out.entry(r.get(0)).or_default().push(r.get(1));
            }
            Ok(out)
        })
    }

    fn tags_in_use(&self, site: &str) -> Result<Vec<TagCount>, StorageError> {
        self.read(|db| {
            Ok(db
                .query(
                    "counting a site's tags",
                    "SELECT t.tag, COUNT(*) FROM call_tags t JOIN calls c ON c.id = t.call_id WHERE c.site_id = $1
                     GROUP BY t.tag ORDER BY COUNT(*) DESC, t.tag COLLATE \"C\"",
                    &[&site],
                )?
                .iter()
                .map(|r| TagCount { tag: r.get(0), calls: r.get(1) })
                .collect())
        })
    }

    fn notes(&self, call_id: i64) -> Result<Vec<Note>, NotesStoreError> {
        let notes = self.read(|db| {
            if db.query_opt("looking up a call", "SELECT 1 FROM calls WHERE id = $1", &[&call_id])?.is_none() {
                return Ok(None);
            }
            let rows = db.query(
                "reading a call's notes",
                "SELECT id, author, body, at_ms FROM call_notes WHERE call_id = $1 ORDER BY id",
                &[&call_id],
            )?;
            Ok(Some(
                rows.iter()
                    .map(|r| Note { id: r.get(0), call_id, author: r.get(1), body: r.get(2), at_ms: r.get(3) })
                    .collect(),
            ))
        })?;
        notes.ok_or(NotesStoreError::UnknownCall(call_id))
    }

    fn add_note(&self, call_id: i64, author: &str, body: &str, now_ms: i64) -> Result<Note, NotesStoreError> {
        self.write(&ManualClock::new(now_ms), |db, _| {
            lock_call(db, call_id)?;
            let id: i64 = db
                .query_one(
                    "adding a note",
                    "INSERT INTO call_notes (call_id, author, body, at_ms) VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&call_id, &author, &body, &now_ms],
                )?
                .get(0);
            Ok(Note { id, call_id, author: author.to_owned(), body: body.to_owned(), at_ms: now_ms })
        })
    }

    fn remove_note(&self, call_id: i64, note_id: i64, who: &str, any_author: bool) -> Result<(), NotesStoreError> {
        self.write(&ManualClock::new(0), |db, _| {
            let author = db.query_opt(
                "reading a note",
                "SELECT author FROM call_notes WHERE id = $1 AND call_id = $2 FOR UPDATE",
                &[&note_id, &call_id],
            )?;
            match author.map(|r| r.get::<_, String>(0)) {
                None => Err(NotesStoreError::UnknownNote { call_id, note_id }),
                Some(a) if a != who && !any_author => Err(NotesStoreError::NotAuthor { who: who.to_owned(), note_id }),
                Some(_) => {
                    db.execute("removing a note", "DELETE FROM call_notes WHERE id = $1", &[&note_id])?;
                    Ok(())
                }
            }
        })
    }
}

impl RecordingStore for PostgresStorage {
    fn call(&self, id: i64) -> Result<Option<CallRecording>, StorageError> {
        self.read(|db| {
            Ok(db
                .query_opt(
                    "reading a call's recording",
                    "SELECT site_id, pbx, recording_url FROM calls WHERE id = $1",
                    &[&id],
                )?
                .map(|r| CallRecording { site: r.get(0), pbx: r.get(1), url: r.get(2) }))
        })
    }
}

impl PostgresStorage {
    /// The stored facts of each of `sessions` that has any.
    pub fn visitor_facts(&self, sessions: &[String]) -> Result<HashMap<String, Facts>, StorageError> {
        self.read(|db| {
            Ok(db
                .query(
                    "reading visitor facts",
                    "SELECT id, country, region, city, device_type, device, browser, os FROM sessions
                     WHERE id = ANY($1)",
                    &[&sessions],
                )?
                .iter()
                .map(|r| {
                    let facts = Facts {
                        country: r.get(1),
                        region: r.get(2),
                        city: r.get(3),
                        device_type: r.get(4),
                        device: r.get(5),
                        browser: r.get(6),
                        os: r.get(7),
                    };
                    (r.get(0), facts)
                })
                .collect())
        })
    }
}
