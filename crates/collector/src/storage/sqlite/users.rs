//! Users, their sites and their sessions in the collector's SQLite file, on
//! a connection of their own ([`crate::storage::sqlite::side_connection`]).
//! Also the look-ups the guard needs to hold a user to their sites: the
//! site of a call and of an export.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::storage::StorageError;
use crate::storage::users::{
    FoundSession, Role, SESSION_IDLE_MS, SESSION_MAX_MS, Sites, User, UserStore, UserStoreError,
};

/// `last_seen_ms` is written at most this often per session, so reading
/// the dashboard is not a write per request.
const TOUCH_EVERY_MS: i64 = 60_000;

fn sql(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> StorageError {
    move |source: rusqlite::Error| StorageError::Sql { doing, source: Box::new(source) }
}

/// The users store on a connection of its own.
pub struct SqliteUsers {
    conn: Mutex<Connection>,
}

impl SqliteUsers {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Ok(Self { conn: Mutex::new(crate::storage::sqlite::side_connection(path)?) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write<T, E: From<StorageError>>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("beginning a users transaction"))?;
        let out = f(&tx)?;
        tx.commit().map_err(sql("committing a users transaction"))?;
        Ok(out)
    }
}

impl UserStore for SqliteUsers {
    fn add_user(
        &self,
        username: &str,
        role: Role,
        sites: &Sites,
        password_hash: &str,
        demo: bool,
        now_ms: i64,
    ) -> Result<User, UserStoreError> {
        self.write(|tx| {
            let taken: bool = tx
                .query_row("SELECT 1 FROM users WHERE username = ?1", [username], |_| Ok(()))
                .optional()
                .map_err(sql("looking up a user name"))?
                .is_some();
            if taken {
                return Err(UserStoreError::Taken(username.to_owned()));
            }
            tx.execute(
                "INSERT INTO users (username, role, all_sites, password_hash, demo, created_at_ms, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![username, role.as_str(), *sites == Sites::All, password_hash, demo, now_ms],
            )
            .map_err(sql("adding a user"))?;
            let id = tx.last_insert_rowid();
            set_sites(tx, id, sites)?;
            Ok(user(tx, id)?.ok_or_else(|| StorageError::Corrupt("a user just added is gone".into()))?)
        })
    }

    fn list_users(&self) -> Result<Vec<User>, StorageError> {
        let conn = self.conn();
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM users ORDER BY username")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(sql("listing users"))?;
        let tx = conn.unchecked_transaction().map_err(sql("beginning a read"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(user(&tx, id)?);
        }
        Ok(out)
    }

    fn user(&self, id: i64) -> Result<Option<User>, StorageError> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(sql("beginning a read"))?;
        user(&tx, id)
    }

    fn credentials(&self, username: &str) -> Result<Option<(User, String)>, StorageError> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(sql("beginning a read"))?;
        let found: Option<(i64, String)> = tx
            .query_row("SELECT id, password_hash FROM users WHERE username = ?1", [username], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(sql("reading a user's credentials"))?;
        let Some((id, hash)) = found else { return Ok(None) };
        Ok(user(&tx, id)?.map(|u| (u, hash)))
    }

    fn user_by_name(&self, username: &str) -> Result<Option<User>, StorageError> {
        Ok(self.credentials(username)?.map(|(u, _)| u))
    }

    fn update_user(
        &self,
        id: i64,
        role_and_sites: Option<(Role, Sites)>,
        password_hash: Option<&str>,
        now_ms: i64,
    ) -> Result<User, UserStoreError> {
        self.write(|tx| {
            let before = user(tx, id)?.ok_or_else(|| UserStoreError::Unknown(format!("#{id}")))?;
            if let Some((role, sites)) = &role_and_sites {
                if before.role == Role::Admin && *role != Role::Admin && admins(tx)? <= 1 {
                    return Err(UserStoreError::LastAdmin);
                }
                tx.execute(
                    "UPDATE users SET role = ?2, all_sites = ?3, updated_at_ms = ?4 WHERE id = ?1",
                    params![id, role.as_str(), *sites == Sites::All, now_ms],
                )
                .map_err(sql("changing a user's role"))?;
                set_sites(tx, id, sites)?;
            }
            if let Some(hash) = password_hash {
                tx.execute(
                    "UPDATE users SET password_hash = ?2, updated_at_ms = ?3 WHERE id = ?1",
                    params![id, hash, now_ms],
                )
                .map_err(sql("changing a password"))?;
            }
            end_sessions(tx, id)?;
            Ok(user(tx, id)?.ok_or_else(|| StorageError::Corrupt("a user just changed is gone".into()))?)
        })
    }

    fn remove_user(&self, id: i64) -> Result<User, UserStoreError> {
        self.write(|tx| {
            let before = user(tx, id)?.ok_or_else(|| UserStoreError::Unknown(format!("#{id}")))?;
            if before.role == Role::Admin && admins(tx)? <= 1 {
                return Err(UserStoreError::LastAdmin);
            }
            end_sessions(tx, id)?;
            tx.execute("DELETE FROM user_sites WHERE user_id = ?1", [id]).map_err(sql("removing a user's sites"))?;
            tx.execute("DELETE FROM users WHERE id = ?1", [id]).map_err(sql("removing a user"))?;
            Ok(before)
        })
    }

    fn start_session(&self, user_id: i64, token_hash: &str, csrf: &str, now_ms: i64) -> Result<(), StorageError> {
        self.write(|tx| {
            // Sessions that ran out go when someone signs in.
            tx.execute(
                "DELETE FROM user_sessions WHERE expires_at_ms <= ?1 OR last_seen_ms <= ?2",
                params![now_ms, now_ms - SESSION_IDLE_MS],
            )
            .map_err(sql("dropping ended sessions"))?;
            tx.execute(
                "INSERT INTO user_sessions (token_hash, user_id, csrf_token, created_at_ms, last_seen_ms, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                params![token_hash, user_id, csrf, now_ms, now_ms + SESSION_MAX_MS],
            )
            .map_err(sql("starting a session"))?;
            Ok(())
        })
    }

    fn session(&self, token_hash: &str, now_ms: i64) -> Result<Option<FoundSession>, StorageError> {
        let found: Option<(i64, String, i64, i64)> = self
            .conn()
            .query_row(
                "SELECT user_id, csrf_token, last_seen_ms, expires_at_ms FROM user_sessions WHERE token_hash = ?1",
                [token_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(sql("looking up a session"))?;
        let Some((user_id, csrf, last_seen_ms, expires_at_ms)) = found else { return Ok(None) };
        if now_ms >= expires_at_ms || now_ms - last_seen_ms >= SESSION_IDLE_MS {
            self.end_session(token_hash)?;
            return Ok(None);
        }
        if now_ms - last_seen_ms >= TOUCH_EVERY_MS {
            self.conn()
                .execute(
                    "UPDATE user_sessions SET last_seen_ms = ?2 WHERE token_hash = ?1",
                    params![token_hash, now_ms],
                )
                .map_err(sql("renewing a session"))?;
        }
        Ok(self.user(user_id)?.map(|user| FoundSession { user, csrf }))
    }

    fn end_session(&self, token_hash: &str) -> Result<(), StorageError> {
        self.conn()
            .execute("DELETE FROM user_sessions WHERE token_hash = ?1", [token_hash])
            .map(drop)
            .map_err(sql("ending a session"))
    }

    fn call_site(&self, id: i64) -> Result<Option<String>, StorageError> {
        self.conn()
            .query_row("SELECT site_id FROM calls WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(sql("reading a call's site"))
    }

    fn export_site(&self, id: i64) -> Result<Option<String>, StorageError> {
        self.conn()
            .query_row("SELECT site_id FROM outbox WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(sql("reading an export's site"))
    }
}

fn user(tx: &Transaction<'_>, id: i64) -> Result<Option<User>, StorageError> {
    let row: Option<(String, String, bool, bool, i64)> = tx
        .query_row("SELECT username, role, all_sites, demo, created_at_ms FROM users WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()
        .map_err(sql("reading a user"))?;
    let Some((username, role, all_sites, demo, created_at_ms)) = row else { return Ok(None) };
    let role = Role::from_name(&role).ok_or_else(|| StorageError::Corrupt(format!("user {id} has role {role:?}")))?;
    let sites = if all_sites {
        Sites::All
    } else {
        let list: BTreeSet<String> = tx
            .prepare_cached("SELECT site_id FROM user_sites WHERE user_id = ?1")
            .and_then(|mut st| st.query_map([id], |r| r.get(0))?.collect())
            .map_err(sql("reading a user's sites"))?;
        Sites::Only(list)
    };
    Ok(Some(User { id, username, role, sites, demo, created_at_ms }))
}

fn set_sites(tx: &Transaction<'_>, id: i64, sites: &Sites) -> Result<(), StorageError> {
    tx.execute("DELETE FROM user_sites WHERE user_id = ?1", [id]).map_err(sql("clearing a user's sites"))?;
    if let Sites::Only(list) = sites {
        for site in list {
            tx.execute("INSERT INTO user_sites (user_id, site_id) VALUES (?1, ?2)", params![id, site])
                .map_err(sql("saving a user's site"))?;
        }
    }
    Ok(())
}

fn end_sessions(tx: &Transaction<'_>, id: i64) -> Result<(), StorageError> {
    tx.execute("DELETE FROM user_sessions WHERE user_id = ?1", [id]).map(drop).map_err(sql("ending a user's sessions"))
}

fn admins(tx: &Transaction<'_>) -> Result<i64, StorageError> {
    tx.query_row("SELECT COUNT(*) FROM users WHERE role = 'admin'", [], |r| r.get(0)).map_err(sql("counting admins"))
}
