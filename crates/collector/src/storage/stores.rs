//! Every store of the port, opened on the backend the configuration names:
//! the server and the command-line tools that write through the services
//! (`ringsource demo-data`) open them here, so a tool works on whichever
//! database the operator runs.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::storage::call_notes::NotesStore;
use crate::storage::calls::CallStore;
use crate::storage::money::{MoneyStore, OutboxStore};
use crate::storage::pools::PoolReportStore;
use crate::storage::postgres::PostgresStorage;
use crate::storage::privacy::PrivacyStore;
use crate::storage::recordings::RecordingStore;
use crate::storage::sqlite::call_notes::SqliteNotes;
use crate::storage::sqlite::privacy::SqlitePrivacy;
use crate::storage::sqlite::recordings::SqliteRecordings;
use crate::storage::sqlite::users::SqliteUsers;
use crate::storage::sqlite::{SqliteOptions, SqliteStorage};
use crate::storage::users::UserStore;
use crate::storage::{Storage, StorageError};

/// The stores the services persist through, all on one database.
pub struct Stores {
    pub storage: Arc<dyn Storage>,
    pub calls: Arc<dyn CallStore>,
    pub money: Arc<dyn MoneyStore>,
    pub outbox: Arc<dyn OutboxStore>,
    pub pools: Arc<dyn PoolReportStore>,
    pub privacy: Arc<dyn PrivacyStore>,
    pub users: Arc<dyn UserStore>,
    pub notes: Arc<dyn NotesStore>,
    pub recordings: Arc<dyn RecordingStore>,
    /// Which database they are on, for what reads it beside the port
    /// (the stored visitor facts).
    pub backend: Backend,
}

/// The database the stores are on.
pub enum Backend {
    /// The SQLite file.
    Sqlite(PathBuf),
    Postgres(Arc<PostgresStorage>),
}

impl Stores {
    /// Opens (creating and migrating as needed) the database `server.database` names.
    pub fn open(config: &Config) -> Result<Self, StorageError> {
        match &config.server.postgres {
            None => Self::sqlite(config),
            Some(settings) => {
                let storage = Arc::new(PostgresStorage::open(settings)?);
                Ok(Self {
                    storage: storage.clone(),
                    calls: storage.clone(),
                    money: storage.clone(),
                    outbox: storage.clone(),
                    pools: storage.clone(),
                    privacy: storage.clone(),
                    users: storage.clone(),
                    notes: storage.clone(),
                    recordings: storage.clone(),
                    backend: Backend::Postgres(storage),
                })
            }
        }
    }

    fn sqlite(config: &Config) -> Result<Self, StorageError> {
        let db = &config.server.database;
        let storage = Arc::new(SqliteStorage::open_with(db, SqliteOptions::of(&config.server))?);
        Ok(Self {
            storage: storage.clone(),
            calls: storage.clone(),
            money: storage.clone(),
            outbox: storage.clone(),
            pools: storage,
            // Retention and erasure read on a connection of their own, so their
            // scans do not hold the writer's lock (see storage/sqlite/privacy.rs).
            privacy: Arc::new(SqlitePrivacy::open(db)?),
            users: Arc::new(SqliteUsers::open(db)?),
            notes: Arc::new(SqliteNotes::open(db)?),
            recordings: Arc::new(SqliteRecordings::open(db)?),
            backend: Backend::Sqlite(db.clone()),
        })
    }
}
