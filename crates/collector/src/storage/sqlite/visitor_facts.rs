//! The visitor facts stored with sessions, read for the calls API on a
//! connection of their own ([`super::side_connection`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rusqlite::Connection;
use serde_json::Value;

use crate::storage::{Facts, StorageError};

pub struct SqliteVisitorFacts {
    store: Mutex<Connection>,
}

impl SqliteVisitorFacts {
    pub fn open(database: &Path) -> Result<Self, StorageError> {
        Ok(Self { store: Mutex::new(super::side_connection(database)?) })
    }

    /// The stored facts of each of `sessions` that has any.
    pub fn of_sessions(&self, sessions: &[String]) -> Result<HashMap<String, Facts>, StorageError> {
        let conn = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let sql =
            |source: rusqlite::Error| StorageError::Sql { doing: "reading visitor facts", source: Box::new(source) };
        let mut st = conn
            .prepare_cached(
                "SELECT id, country, region, city, device_type, device, browser, os FROM sessions
                 WHERE id IN (SELECT value FROM json_each(?1))",
            )
            .map_err(sql)?;
        let rows = st
            .query_map([Value::from(sessions).to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Facts {
                        country: r.get(1)?,
                        region: r.get(2)?,
                        city: r.get(3)?,
                        device_type: r.get(4)?,
                        device: r.get(5)?,
                        browser: r.get(6)?,
                        os: r.get(7)?,
                    },
                ))
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }
}
