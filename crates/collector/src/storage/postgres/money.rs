//! [`MoneyStore`] and [`OutboxStore`] on PostgreSQL, and the outbox rows
//! the calls store writes when a call ends.
//!
//! The outbox is claimed with `FOR UPDATE SKIP LOCKED` in one short
//! transaction that counts the attempt and moves the row's next attempt
//! past the claim: two workers (of one instance or of several) never take
//! one row at once, no row lock is held while it is delivered, and a worker
//! that dies leaves its rows to be claimed again after the claim ran out,
//! with the same webhook id.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Blocking, HasStorageError, PostgresStorage};
use crate::clock::Clock;
use crate::config::Site;
use crate::storage::StorageError;
use crate::storage::money::{
    Claimed, CostRow, DEMO_PBX, ExportKind, ExportStatus, Finish, MoneyStore, OutboxFilter, OutboxRow, OutboxStore,
    RetryError, RevenueError, RevenuePost, RevenueRecorded, RevenueTarget, call_exports,
};

impl HasStorageError for RevenueError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            RevenueError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl HasStorageError for RetryError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            RetryError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl MoneyStore for PostgresStorage {
    fn upsert_costs(&self, rows: &[CostRow], demo: bool, clock: &dyn Clock) -> Result<usize, StorageError> {
        self.write(clock, |db, now_ms| {
            for r in rows {
                // Stored and matched as the calls' sources are (`without_nul`).
                let mut r = r.clone();
                for text in [&mut r.source, &mut r.medium, &mut r.campaign] {
                    super::without_nul(text);
                }
                super::without_nul_opt(&mut r.currency);
                db.execute(
                    "storing a cost row",
                    "INSERT INTO costs (site_id, day, source, medium, campaign, cost, currency, demo, updated_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (site_id, day, source, medium, campaign) DO UPDATE SET cost = excluded.cost,
                        currency = excluded.currency, demo = excluded.demo, updated_at_ms = excluded.updated_at_ms",
                    &[&r.site, &r.day, &r.source, &r.medium, &r.campaign, &r.cost, &r.currency, &demo, &now_ms],
                )?;
            }
            Ok(rows.len())
        })
    }

    fn record_revenue(
        &self,
        post: &RevenuePost,
        demo: bool,
        clock: &dyn Clock,
    ) -> Result<RevenueRecorded, RevenueError> {
        // A CRM's deal id with a NUL is stored and matched as
        // `super::without_nul` writes it.
        let mut post = post.clone();
        super::without_nul_opt(&mut post.deal_id);
        let post = &post;
        self.write(clock, |db, now_ms| {
            let at_ms = post.at_ms.unwrap_or(now_ms);
            let call_id: i64 = match &post.target {
                RevenueTarget::Call(id) => db
                    .query_opt(
                        "looking up a call",
                        "SELECT id FROM calls WHERE id = $1 AND site_id = $2",
                        &[id, &post.site],
                    )?
                    .ok_or(RevenueError::UnknownCall(*id))?
                    .get(0),
                RevenueTarget::Caller { key, at_ms, window_ms } => db
                    .query_opt(
                        "finding the caller's call",
                        "SELECT id FROM calls WHERE site_id = $1 AND caller_key = $2 AND ring_at_ms <= $3
                           AND ring_at_ms >= $3 - $4
                         ORDER BY ring_at_ms DESC, id DESC LIMIT 1",
                        &[&post.site, key, at_ms, window_ms],
                    )?
                    .ok_or_else(|| RevenueError::NoCallFromCaller {
                        caller: key.clone(),
                        at_ms: *at_ms,
                        window_secs: window_ms / 1000,
                    })?
                    .get(0),
            };
            // The deal's row locked: two posts of one deal take turns.
            let earlier = match &post.deal_id {
                Some(deal) => db.query_opt(
                    "looking up a deal",
                    "SELECT id, call_id, amount, currency FROM revenue WHERE site_id = $1 AND deal_id = $2 FOR UPDATE",
                    &[&post.site, deal],
                )?,
                None => None,
            };
            let (id, outcome) = match earlier {
                Some(r)
                    if r.get::<_, i64>(1) == call_id
                        && r.get::<_, f64>(2) == post.amount
                        && r.get::<_, Option<String>>(3) == post.currency =>
                {
                    (r.get(0), "unchanged")
                }
                Some(r) => {
                    // The CRM changed the deal: the latest post is the truth,
                    // never a second row.
                    let id: i64 = r.get(0);
                    db.execute(
                        "updating a deal",
                        "UPDATE revenue SET call_id = $2, amount = $3, currency = $4, at_ms = $5, received_at_ms = $6
                         WHERE id = $1",
                        &[&id, &call_id, &post.amount, &post.currency, &at_ms, &now_ms],
                    )?;
                    (id, "updated")
                }
                None => {
                    // A first post of a deal racing another instance's meets
                    // it at the unique index and runs again as an update.
                    let id: i64 = db
                        .query_one(
                            "storing revenue",
                            "INSERT INTO revenue (site_id, call_id, amount, currency, deal_id, at_ms, demo, received_at_ms)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                            &[&post.site, &call_id, &post.amount, &post.currency, &post.deal_id, &at_ms, &demo, &now_ms],
                        )?
                        .get(0);
                    (id, "recorded")
                }
            };
            Ok(RevenueRecorded {
                id,
                call_id,
                amount: post.amount,
                currency: post.currency.clone(),
                deal_id: post.deal_id.clone(),
                outcome,
            })
        })
    }

    fn has_demo_data(&self, site: &str) -> Result<bool, StorageError> {
        self.read(|db| {
            Ok(db
                .query_one(
                    "looking for demo data",
                    "SELECT EXISTS (SELECT 1 FROM calls WHERE site_id = $1 AND pbx = $2)
                         OR EXISTS (SELECT 1 FROM costs WHERE site_id = $1 AND demo)",
                    &[&site, &DEMO_PBX],
                )?
                .get(0))
        })
    }
}

/// Writes the site's exports of a call that just ended, inside the calls
/// store's transaction (as SQLite's `enqueue_call_exports`).
pub(super) fn enqueue_call_exports(
    db: &Blocking<'_, '_>,
    site: &Site,
    call_id: i64,
    now_ms: i64,
    workflow: &dyn crate::storage::calls::CallWorkflow,
) -> Result<(), StorageError> {
    if site.exports.ga4.is_none() && site.exports.crm.is_none() {
        return Ok(());
    }
    let Some(detail) = super::calls::detail(db, call_id)? else {
        return Err(StorageError::Corrupt(format!("call {call_id} vanished inside its own transaction")));
    };
    for e in call_exports(site, &detail, now_ms, workflow)? {
        db.execute(
            "writing an export to the outbox",
            "INSERT INTO outbox (site_id, kind, call_id, webhook_id, payload, next_attempt_at_ms, last_error,
                status, created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $6, $6) ON CONFLICT (call_id, kind) DO NOTHING",
            &[&site.id, &e.kind.as_str(), &call_id, &e.webhook_id, &e.payload, &now_ms, &e.error, &e.status.as_str()],
        )?;
    }
    Ok(())
}

const OUTBOX_COLUMNS: &str =
    "id, site_id, kind, call_id, webhook_id, payload, attempts, next_attempt_at_ms, last_error,
    status, created_at_ms, updated_at_ms, sent_at_ms";

fn outbox_row(r: &Row) -> Result<OutboxRow, StorageError> {
    let id: i64 = r.get(0);
    let bad = |what: &str, v: &str| StorageError::Corrupt(format!("outbox row {id} has {what} {v:?}"));
    let kind: &str = r.get(2);
    let status: &str = r.get(9);
    let payload: &str = r.get(5);
    Ok(OutboxRow {
        id,
        site: r.get(1),
        kind: ExportKind::from_name(kind).ok_or_else(|| bad("kind", kind))?,
        call_id: r.get(3),
        webhook_id: r.get(4),
        payload: serde_json::from_str(payload).map_err(|_| bad("payload", payload))?,
        attempts: u32::try_from(r.get::<_, i32>(6)).unwrap_or(0),
        next_attempt_at_ms: r.get(7),
        last_error: r.get(8),
        status: ExportStatus::from_name(status).ok_or_else(|| bad("status", status))?,
        created_at_ms: r.get(10),
        updated_at_ms: r.get(11),
        sent_at_ms: r.get(12),
    })
}

impl OutboxStore for PostgresStorage {
    fn claim_due(&self, limit: u32, claim_ms: i64, clock: &dyn Clock) -> Result<Vec<Claimed>, StorageError> {
        self.write(clock, |db, now_ms| {
            let rows = db.query(
                "claiming due exports",
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at_ms = $2, updated_at_ms = $1
                 WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at_ms <= $1
                              ORDER BY next_attempt_at_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING id, site_id, kind, webhook_id, payload, attempts, next_attempt_at_ms",
                &[&now_ms, &(now_ms + claim_ms), &i64::from(limit)],
            )?;
            let mut claimed = rows
                .iter()
                .map(|r| {
                    let id: i64 = r.get(0);
                    let kind: &str = r.get(2);
                    Ok(Claimed {
                        id,
                        site: r.get(1),
                        kind: ExportKind::from_name(kind)
                            .ok_or_else(|| StorageError::Corrupt(format!("outbox row {id} has kind {kind:?}")))?,
                        webhook_id: r.get(3),
                        body: r.get(4),
                        attempts: u32::try_from(r.get::<_, i32>(5)).unwrap_or(0),
                    })
                })
                .collect::<Result<Vec<_>, StorageError>>()?;
            // RETURNING keeps no order; the worker sends the oldest first.
            claimed.sort_by_key(|c| c.id);
            Ok(claimed)
        })
    }

    fn finish(&self, id: i64, finish: &Finish, clock: &dyn Clock) -> Result<(), StorageError> {
        self.write(clock, |db, now_ms| {
            match finish {
                Finish::Sent => db.execute(
                    "recording an export attempt",
                    "UPDATE outbox SET status = 'sent', sent_at_ms = $2, updated_at_ms = $2 WHERE id = $1",
                    &[&id, &now_ms],
                ),
                Finish::Retry { at_ms, error } => db.execute(
                    "recording an export attempt",
                    "UPDATE outbox SET next_attempt_at_ms = $2, last_error = $3, updated_at_ms = $4 WHERE id = $1",
                    &[&id, at_ms, error, &now_ms],
                ),
                Finish::Dead { error } => db.execute(
                    "recording an export attempt",
                    "UPDATE outbox SET status = 'dead', last_error = $2, updated_at_ms = $3 WHERE id = $1",
                    &[&id, error, &now_ms],
                ),
            }?;
            Ok(())
        })
    }

    fn next_due_ms(&self) -> Result<Option<i64>, StorageError> {
        self.read(|db| {
            Ok(db
                .query_one(
                    "finding the next due export",
                    "SELECT MIN(next_attempt_at_ms) FROM outbox WHERE status = 'pending'",
                    &[],
                )?
                .get(0))
        })
    }

    fn list_exports(&self, f: &OutboxFilter) -> Result<(Vec<OutboxRow>, u64), StorageError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        if let Some(s) = &f.site {
            values.push(Box::new(s.clone()));
            clauses.push(format!("site_id = ${}", values.len()));
        }
        if let Some(s) = f.status {
            values.push(Box::new(s.as_str().to_owned()));
            clauses.push(format!("status = ${}", values.len()));
        }
        if let Some(k) = f.kind {
            values.push(Box::new(k.as_str().to_owned()));
            clauses.push(format!("kind = ${}", values.len()));
        }
        let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        self.read(|db| {
            let total: i64 =
                db.query_one("counting exports", &format!("SELECT COUNT(*) FROM outbox {filter}"), &params)?.get(0);
            let query = format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox {filter} ORDER BY id DESC LIMIT {} OFFSET {}",
                f.limit, f.offset
            );
            let rows =
                db.query("listing exports", &query, &params)?.iter().map(outbox_row).collect::<Result<_, _>>()?;
            Ok((rows, u64::try_from(total).unwrap_or(0)))
        })
    }

    fn retry_export(&self, id: i64, clock: &dyn Clock) -> Result<OutboxRow, RetryError> {
        self.write(clock, |db, now_ms| {
            let status = db
                .query_opt("reading an export", "SELECT status FROM outbox WHERE id = $1 FOR UPDATE", &[&id])?
                .ok_or(RetryError::Unknown(id))?;
            let status: &str = status.get(0);
            let status = ExportStatus::from_name(status)
                .ok_or_else(|| StorageError::Corrupt(format!("outbox row {id} has status {status:?}")))?;
            if status != ExportStatus::Dead {
                return Err(RetryError::NotDead { id, status: status.as_str() });
            }
            // last_error stays: it explains why the row died until a new attempt replaces it.
            let row = db.query_one(
                "requeueing an export",
                &format!(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at_ms = $2, updated_at_ms = $2
                     WHERE id = $1 RETURNING {OUTBOX_COLUMNS}"
                ),
                &[&id, &now_ms],
            )?;
            Ok(outbox_row(&row)?)
        })
    }
}
