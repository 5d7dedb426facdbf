//! Call tags and notes in the collector's SQLite file, on a connection of
//! their own ([`crate::storage::sqlite::side_connection`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use crate::storage::StorageError;
use crate::storage::call_notes::{MAX_TAGS_PER_CALL, Note, NoteError, NotesStore, NotesStoreError, TagCount};

fn sql(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> StorageError {
    move |source: rusqlite::Error| StorageError::Sql { doing, source: Box::new(source) }
}

pub struct SqliteNotes {
    conn: Mutex<Connection>,
}

impl SqliteNotes {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Ok(Self { conn: Mutex::new(crate::storage::sqlite::side_connection(path)?) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn call_exists(conn: &Connection, call_id: i64) -> Result<bool, StorageError> {
        conn.query_row("SELECT 1 FROM calls WHERE id = ?1", [call_id], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(sql("looking up a call"))
    }
}

impl NotesStore for SqliteNotes {
    fn add_tag(&self, call_id: i64, tag: &str, by: &str, now_ms: i64) -> Result<Vec<String>, NotesStoreError> {
        let conn = self.conn();
        if !Self::call_exists(&conn, call_id)? {
            return Err(NotesStoreError::UnknownCall(call_id));
        }
        let tags = tags_of(&conn, call_id)?;
        if !tags.iter().any(|t| t == tag) {
            if tags.len() >= MAX_TAGS_PER_CALL {
                return Err(NoteError::TooManyTags.into());
            }
            conn.execute(
                "INSERT OR IGNORE INTO call_tags (call_id, tag, tagged_by, at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![call_id, tag, by, now_ms],
            )
            .map_err(sql("tagging a call"))?;
        }
        Ok(tags_of(&conn, call_id)?)
    }

    fn remove_tag(&self, call_id: i64, tag: &str) -> Result<Vec<String>, NotesStoreError> {
        let conn = self.conn();
        if !Self::call_exists(&conn, call_id)? {
            return Err(NotesStoreError::UnknownCall(call_id));
        }
        conn.execute("DELETE FROM call_tags WHERE call_id = ?1 AND tag = ?2", params![call_id, tag])
            .map_err(sql("untagging a call"))?;
        Ok(tags_of(&conn, call_id)?)
    }

    fn tags_of_calls(&self, call_ids: &[i64]) -> Result<HashMap<i64, Vec<String>>, StorageError> {
        let conn = self.conn();
        let ids = serde_json::Value::from(call_ids).to_string();
        let mut out: HashMap<i64, Vec<String>> = HashMap::new();
        let mut st = conn
            .prepare_cached(
                "SELECT call_id, tag FROM call_tags WHERE call_id IN (SELECT value FROM json_each(?1))
                 ORDER BY call_id, tag",
            )
            .map_err(sql("reading calls' tags"))?;
        let rows = st
            .query_map([ids], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(sql("reading calls' tags"))?;
        for row in rows {
            let (id, tag) = row.map_err(sql("reading calls' tags"))?;
            out.entry(id).or_default().push(tag);
        }
        Ok(out)
    }

    fn tags_in_use(&self, site: &str) -> Result<Vec<TagCount>, StorageError> {
        self.conn()
            .prepare_cached(
                "SELECT t.tag, COUNT(*) FROM call_tags t JOIN calls c ON c.id = t.call_id WHERE c.site_id = ?1
                 GROUP BY t.tag ORDER BY COUNT(*) DESC, t.tag",
            )
            .and_then(|mut st| st.query_map([site], |r| Ok(TagCount { tag: r.get(0)?, calls: r.get(1)? }))?.collect())
            .map_err(sql("counting a site's tags"))
    }

    fn notes(&self, call_id: i64) -> Result<Vec<Note>, NotesStoreError> {
        let conn = self.conn();
        if !Self::call_exists(&conn, call_id)? {
            return Err(NotesStoreError::UnknownCall(call_id));
        }
        Ok(notes_of(&conn, call_id)?)
    }

    fn add_note(&self, call_id: i64, author: &str, body: &str, now_ms: i64) -> Result<Note, NotesStoreError> {
        let conn = self.conn();
        if !Self::call_exists(&conn, call_id)? {
            return Err(NotesStoreError::UnknownCall(call_id));
        }
        conn.execute(
            "INSERT INTO call_notes (call_id, author, body, at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![call_id, author, body, now_ms],
        )
        .map_err(sql("adding a note"))?;
        Ok(Note {
            id: conn.last_insert_rowid(),
            call_id,
            author: author.to_owned(),
            body: body.to_owned(),
            at_ms: now_ms,
        })
    }

    fn remove_note(&self, call_id: i64, note_id: i64, who: &str, any_author: bool) -> Result<(), NotesStoreError> {
        let conn = self.conn();
        let author: Option<String> = conn
            .query_row("SELECT author FROM call_notes WHERE id = ?1 AND call_id = ?2", params![note_id, call_id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql("reading a note"))?;
        match author {
            None => Err(NotesStoreError::UnknownNote { call_id, note_id }),
            Some(a) if a != who && !any_author => Err(NotesStoreError::NotAuthor { who: who.to_owned(), note_id }),
            Some(_) => {
                conn.execute("DELETE FROM call_notes WHERE id = ?1", [note_id]).map_err(sql("removing a note"))?;
                Ok(())
            }
        }
    }
}

fn tags_of(conn: &Connection, call_id: i64) -> Result<Vec<String>, StorageError> {
    conn.prepare_cached("SELECT tag FROM call_tags WHERE call_id = ?1 ORDER BY tag")
        .and_then(|mut st| st.query_map([call_id], |r| r.get(0))?.collect())
        .map_err(sql("reading a call's tags"))
}

fn notes_of(conn: &Connection, call_id: i64) -> Result<Vec<Note>, StorageError> {
    conn.prepare_cached("SELECT id, author, body, at_ms FROM call_notes WHERE call_id = ?1 ORDER BY id")
        .and_then(|mut st| {
            st.query_map([call_id], |r| {
                Ok(Note { id: r.get(0)?, call_id, author: r.get(1)?, body: r.get(2)?, at_ms: r.get(3)? })
            })?
            .collect()
        })
        .map_err(sql("reading a call's notes"))
}
