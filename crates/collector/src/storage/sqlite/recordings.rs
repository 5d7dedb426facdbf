//! What the recording route reads of a call, on a connection of its own.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension};

use crate::storage::StorageError;
use crate::storage::recordings::{CallRecording, RecordingStore};

pub struct SqliteRecordings {
    conn: Mutex<Connection>,
}

impl SqliteRecordings {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Ok(Self { conn: Mutex::new(crate::storage::sqlite::side_connection(path)?) })
    }
}

impl RecordingStore for SqliteRecordings {
    fn call(&self, id: i64) -> Result<Option<CallRecording>, StorageError> {
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .query_row("SELECT site_id, pbx, recording_url FROM calls WHERE id = ?1", [id], |r| {
                Ok(CallRecording { site: r.get(0)?, pbx: r.get(1)?, url: r.get(2)? })
            })
            .optional()
            .map_err(|source| StorageError::Sql { doing: "reading a call's recording", source: Box::new(source) })
    }
}
