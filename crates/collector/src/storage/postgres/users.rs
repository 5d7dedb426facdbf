//! Dashboard users, their sites and their sessions on PostgreSQL
//! ([`UserStore`]), and the look-ups the guard needs to hold a user to their
//! sites. The last admin is checked with every admin row locked, so two
//! instances demoting two admins at once cannot leave none.

use std::collections::BTreeSet;

use super::{Blocking, HasStorageError, PostgresStorage};
use crate::clock::ManualClock;
use crate::storage::StorageError;
use crate::storage::users::{
    FoundSession, Role, SESSION_IDLE_MS, SESSION_MAX_MS, Sites, User, UserStore, UserStoreError,
};

/// A session's last use is written at most this often.
const TOUCH_EVERY_MS: i64 = 60_000;

impl HasStorageError for UserStoreError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            UserStoreError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

fn user(db: &Blocking<'_, '_>, id: i64) -> Result<Option<User>, StorageError> {
    let Some(r) = db.query_opt(
        "reading a user",
        "SELECT username, role, all_sites, demo, created_at_ms FROM users WHERE id = $1",
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let role: &str = r.get(1);
    let role = Role::from_name(role).ok_or_else(|| StorageError::Corrupt(format!("user {id} has role {role:?}")))?;
    let sites = if r.get(2) {
        Sites::All
    } else {
        let list: BTreeSet<String> = db
            .query("reading a user's sites", "SELECT site_id FROM user_sites WHERE user_id = $1", &[&id])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Sites::Only(list)
    };
    Ok(Some(User { id, username: r.get(0), role, sites, demo: r.get(3), created_at_ms: r.get(4) }))
}

fn set_sites(db: &Blocking<'_, '_>, id: i64, sites: &Sites) -> Result<(), StorageError> {
    db.execute("clearing a user's sites", "DELETE FROM user_sites WHERE user_id = $1", &[&id])?;
    if let Sites::Only(list) = sites {
        for site in list {
            db.execute(
                "saving a user's site",
                "INSERT INTO user_sites (user_id, site_id) VALUES ($1, $2)",
                &[&id, site],
            )?;
        }
    }
    Ok(())
}

fn end_sessions(db: &Blocking<'_, '_>, id: i64) -> Result<(), StorageError> {
    db.execute("ending a user's sessions", "DELETE FROM user_sessions WHERE user_id = $1", &[&id]).map(drop)
}

/// The admins, counted with their rows locked until the transaction ends.
fn admins(db: &Blocking<'_, '_>) -> Result<usize, StorageError> {
    Ok(db.query("counting admins", "SELECT id FROM users WHERE role = 'admin' FOR UPDATE", &[])?.len())
}

impl UserStore for PostgresStorage {
    fn add_user(
        &self,
        username: &str,
        role: Role,
        sites: &Sites,
        password_hash: &str,
        demo: bool,
        now_ms: i64,
    ) -> Result<User, UserStoreError> {
        // Two instances adding one name: the second meets the unique index,
        // runs again, and finds the name taken.
        self.write(&ManualClock::new(now_ms), |db, _| {
            if db
                .query_opt("looking up a user name", "SELECT 1 FROM users WHERE username = $1", &[&username])?
                .is_some()
            {
                return Err(UserStoreError::Taken(username.to_owned()));
            }
            let id: i64 = db
                .query_one(
                    "adding a user",
                    "INSERT INTO users (username, role, all_sites, password_hash, demo, created_at_ms, updated_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
                    &[&username, &role.as_str(), &(*sites == Sites::All), &password_hash, &demo, &now_ms],
                )?
                .get(0);
            set_sites(db, id, sites)?;
            Ok(user(db, id)?.ok_or_else(|| StorageError::Corrupt("a user just added is gone".into()))?)
        })
    }

    fn list_users(&self) -> Result<Vec<User>, StorageError> {
        self.read(|db| {
            let ids: Vec<i64> = db
                .query("listing users", "SELECT id FROM users ORDER BY username COLLATE \"C\"", &[])?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.extend(user(db, id)?);
            }
            Ok(out)
        })
    }

    fn user(&self, id: i64) -> Result<Option<User>, StorageError> {
        self.read(|db| user(db, id))
    }

    fn credentials(&self, username: &str) -> Result<Option<(User, String)>, StorageError> {
        self.read(|db| {
            let Some(r) = db.query_opt(
                "reading a user's credentials",
                "SELECT id, password_hash FROM users WHERE username = $1",
                &[&username],
            )?
            else {
                return Ok(None);
            };
            Ok(user(db, r.get(0))?.map(|u| (u, r.get(1))))
        })
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
        self.write(&ManualClock::new(now_ms), |db, _| {
            let admins_now = admins(db)?;
            let before = user(db, id)?.ok_or_else(|| UserStoreError::Unknown(format!("#{id}")))?;
            if let Some((role, sites)) = &role_and_sites {
                if before.role == Role::Admin && *role != Role::Admin && admins_now <= 1 {
                    return Err(UserStoreError::LastAdmin);
                }
                db.execute(
                    "changing a user's role",
                    "UPDATE users SET role = $2, all_sites = $3, updated_at_ms = $4 WHERE id = $1",
                    &[&id, &role.as_str(), &(*sites == Sites::All), &now_ms],
                )?;
                set_sites(db, id, sites)?;
            }
            if let Some(hash) = password_hash {
                db.execute(
                    "changing a password",
                    "UPDATE users SET password_hash = $2, updated_at_ms = $3 WHERE id = $1",
                    &[&id, &hash, &now_ms],
                )?;
            }
            end_sessions(db, id)?;
            Ok(user(db, id)?.ok_or_else(|| StorageError::Corrupt("a user just changed is gone".into()))?)
        })
    }

    fn remove_user(&self, id: i64) -> Result<User, UserStoreError> {
        self.write(&ManualClock::new(0), |db, _| {
            let admins_now = admins(db)?;
            let before = user(db, id)?.ok_or_else(|| UserStoreError::Unknown(format!("#{id}")))?;
            if before.role == Role::Admin && admins_now <= 1 {
                return Err(UserStoreError::LastAdmin);
            }
            end_sessions(db, id)?;
            db.execute("removing a user's sites", "DELETE FROM user_sites WHERE user_id = $1", &[&id])?;
            db.execute("removing a user", "DELETE FROM users WHERE id = $1", &[&id])?;
            Ok(before)
        })
    }

    fn start_session(&self, user_id: i64, token_hash: &str, csrf: &str, now_ms: i64) -> Result<(), StorageError> {
        self.write(&ManualClock::new(now_ms), |db, _| {
            // Sessions that ran out go when someone signs in, a few at a
            // time and none another sign-in is deleting.
            db.execute(
                "dropping ended sessions",
                "DELETE FROM user_sessions WHERE token_hash IN (SELECT token_hash FROM user_sessions
                    WHERE expires_at_ms <= $1 OR last_seen_ms <= $2 LIMIT 64 FOR UPDATE SKIP LOCKED)",
                &[&now_ms, &(now_ms - SESSION_IDLE_MS)],
            )?;
            db.execute(
                "starting a session",
                "INSERT INTO user_sessions (token_hash, user_id, csrf_token, created_at_ms, last_seen_ms, expires_at_ms)
                 VALUES ($1, $2, $3, $4, $4, $5)",
                &[&token_hash, &user_id, &csrf, &now_ms, &(now_ms + SESSION_MAX_MS)],
            )?;
            Ok(())
        })
    }

    fn session(&self, token_hash: &str, now_ms: i64) -> Result<Option<FoundSession>, StorageError> {
        let found = self.read(|db| {
            Ok(db
                .query_opt(
                    "looking up a session",
                    "SELECT user_id, csrf_token, last_seen_ms, expires_at_ms FROM user_sessions WHERE token_hash = $1",
                    &[&token_hash],
                )?
                .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1), r.get::<_, i64>(2), r.get::<_, i64>(3))))
        })?;
        let Some((user_id, csrf, last_seen_ms, expires_at_ms)) = found else { return Ok(None) };
        if now_ms >= expires_at_ms || now_ms - last_seen_ms >= SESSION_IDLE_MS {
            self.end_session(token_hash)?;
            return Ok(None);
        }
        if now_ms - last_seen_ms >= TOUCH_EVERY_MS {
            self.write(&ManualClock::new(now_ms), |db, _| {
                db.execute(
                    "renewing a session",
                    "UPDATE user_sessions SET last_seen_ms = GREATEST(last_seen_ms, $2) WHERE token_hash = $1",
                    &[&token_hash, &now_ms],
                )
            })?;
        }
        Ok(UserStore::user(self, user_id)?.map(|user| FoundSession { user, csrf }))
    }

    fn end_session(&self, token_hash: &str) -> Result<(), StorageError> {
        self.write(&ManualClock::new(0), |db, _| {
            db.execute("ending a session", "DELETE FROM user_sessions WHERE token_hash = $1", &[&token_hash]).map(drop)
        })
    }

    fn call_site(&self, id: i64) -> Result<Option<String>, StorageError> {
        crate::storage::calls::CallStore::call_site(self, id)
    }

    fn export_site(&self, id: i64) -> Result<Option<String>, StorageError> {
        self.read(|db| {
            Ok(db
                .query_opt("reading an export's site", "SELECT site_id FROM outbox WHERE id = $1", &[&id])?
                .map(|r| r.get(0)))
        })
    }
}
