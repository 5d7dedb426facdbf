//! [`MoneyStore`] and [`OutboxStore`] on the SQLite file, and the outbox
//! rows the calls store writes when a call ends.

use rusqlite::types::ToSql;
use rusqlite::{OptionalExtension, Row, Transaction, params, params_from_iter};

use super::{SqliteStorage, immediate, sql};
use crate::clock::Clock;
use crate::config::Site;
use crate::storage::StorageError;
use crate::storage::money::{
    Claimed, CostRow, ExportKind, ExportStatus, Finish, MoneyStore, OutboxFilter, OutboxRow, OutboxStore, RetryError,
    RevenueError, RevenuePost, RevenueRecorded, RevenueTarget, call_exports,
};

pub use crate::storage::money::DEMO_PBX;

impl MoneyStore for SqliteStorage {
    fn upsert_costs(&self, rows: &[CostRow], demo: bool, clock: &dyn Clock) -> Result<usize, StorageError> {
        self.acknowledged(clock, |conn, now_ms| {
            let tx = immediate(conn)?;
            for r in rows {
                tx.execute(
                    "INSERT INTO costs (site_id, day, source, medium, campaign, cost, currency, demo, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (site_id, day, source, medium, campaign) DO UPDATE SET cost = excluded.cost,
                    currency = excluded.currency, demo = excluded.demo, updated_at_ms = excluded.updated_at_ms",
                    params![r.site, r.day, r.source, r.medium, r.campaign, r.cost, r.currency, demo, now_ms],
                )
                .map_err(sql("storing a cost row"))?;
            }
            tx.commit().map_err(sql("committing costs"))?;
            Ok(rows.len())
        })
    }

    fn record_revenue(
        &self,
        post: &RevenuePost,
        demo: bool,
        clock: &dyn Clock,
    ) -> Result<RevenueRecorded, RevenueError> {
        self.acknowledged(clock, |conn, now_ms| {
            let tx = immediate(conn)?;
            let at_ms = post.at_ms.unwrap_or(now_ms);
            let call_id: i64 = match &post.target {
                RevenueTarget::Call(id) => tx
                    .query_row("SELECT id FROM calls WHERE id = ?1 AND site_id = ?2", params![id, post.site], |r| {
                        r.get(0)
                    })
                    .optional()
                    .map_err(sql("looking up a call"))?
                    .ok_or(RevenueError::UnknownCall(*id))?,
                RevenueTarget::Caller { key, at_ms, window_ms } => tx
                    .query_row(
                        "SELECT id FROM calls WHERE site_id = ?1 AND caller_key = ?2 AND ring_at_ms <= ?3
                       AND ring_at_ms >= ?3 - ?4
                     ORDER BY ring_at_ms DESC, id DESC LIMIT 1",
                        params![post.site, key, at_ms, window_ms],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql("finding the caller's call"))?
                    .ok_or_else(|| RevenueError::NoCallFromCaller {
                        caller: key.clone(),
                        at_ms: *at_ms,
                        window_secs: window_ms / 1000,
                    })?,
            };
            let earlier: Option<(i64, i64, f64, Option<String>)> = match &post.deal_id {
                Some(deal) => tx
                    .query_row(
                        "SELECT id, call_id, amount, currency FROM revenue WHERE site_id = ?1 AND deal_id = ?2",
                        params![post.site, deal],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()
                    .map_err(sql("looking up a deal"))?,
                None => None,
            };
            let (id, outcome) = match earlier {
                Some((id, c, a, cur)) if c == call_id && a == post.amount && cur == post.currency => (id, "unchanged"),
                Some((id, ..)) => {
                    // The CRM changed the deal (value, or the call it belongs
                    // to): the latest post is the truth, never a second row.
                    tx.execute(
                        "UPDATE revenue SET call_id = ?2, amount = ?3, currency = ?4, at_ms = ?5, received_at_ms = ?6
                     WHERE id = ?1",
                        params![id, call_id, post.amount, post.currency, at_ms, now_ms],
                    )
                    .map_err(sql("updating a deal"))?;
                    (id, "updated")
                }
                None => {
                    tx.execute(
                        "INSERT INTO revenue (site_id, call_id, amount, currency, deal_id, at_ms, demo, received_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![post.site, call_id, post.amount, post.currency, post.deal_id, at_ms, demo, now_ms],
                    )
                    .map_err(sql("storing revenue"))?;
                    (tx.last_insert_rowid(), "recorded")
                }
            };
            tx.commit().map_err(sql("committing revenue"))?;
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
        self.read(|tx| {
            tx.query_row(HAS_DEMO_DATA, params![site, DEMO_PBX], |r| r.get(0)).map_err(sql("looking for demo data"))
        })
    }
}

/// Whether site `?1` has calls of PBX `?2` (the demo's) or demo cost rows.
/// `+site_id`: the calls are found through the (pbx, pbx_call_id) key,
/// where the demo's calls are together. By the site's calls index, SQLite
/// read every call of a site that had none; every calls list and report
/// with `site=` asks this (`docs/reports-at-scale.md` has the figures).
pub(super) const HAS_DEMO_DATA: &str = "SELECT EXISTS (SELECT 1 FROM calls WHERE +site_id = ?1 AND pbx = ?2)
     OR EXISTS (SELECT 1 FROM costs WHERE site_id = ?1 AND demo = 1)";

// ------------------------------------------------------------ outbox

/// Writes the site's exports of a call that just ended, inside the calls
/// store's transaction. A GA4 export the call cannot make (no client id) is
/// written as `skipped` with the reason, so the gap is visible.
pub(super) fn enqueue_call_exports(
    tx: &Transaction<'_>,
    site: &Site,
    call_id: i64,
    now_ms: i64,
    workflow: &dyn crate::storage::calls::CallWorkflow,
) -> Result<(), StorageError> {
    if site.exports.ga4.is_none() && site.exports.crm.is_none() {
        return Ok(());
    }
    let Some(detail) = super::calls::detail(tx, call_id)? else {
        return Err(StorageError::Corrupt(format!("call {call_id} vanished inside its own transaction")));
    };
    for e in call_exports(site, &detail, now_ms, workflow)? {
        tx.execute(
            "INSERT OR IGNORE INTO outbox (site_id, kind, call_id, webhook_id, payload, next_attempt_at_ms, last_error,
                status, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?6, ?6)",
            params![site.id, e.kind.as_str(), call_id, e.webhook_id, e.payload, now_ms, e.error, e.status.as_str()],
        )
        .map_err(sql("writing an export to the outbox"))?;
    }
    Ok(())
}

const OUTBOX_COLUMNS: &str =
    "id, site_id, kind, call_id, webhook_id, payload, attempts, next_attempt_at_ms, last_error,
    status, created_at_ms, updated_at_ms, sent_at_ms";

fn outbox_row(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    let kind: String = r.get(2)?;
    let status: String = r.get(9)?;
    let payload: String = r.get(5)?;
    let bad = |what: &str, v: &str| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("{what} {v:?}").into())
    };
    Ok(OutboxRow {
        id: r.get(0)?,
        site: r.get(1)?,
        kind: ExportKind::from_name(&kind).ok_or_else(|| bad("export kind", &kind))?,
        call_id: r.get(3)?,
        webhook_id: r.get(4)?,
        payload: serde_json::from_str(&payload).map_err(|_| bad("export payload", &payload))?,
        attempts: r.get(6)?,
        next_attempt_at_ms: r.get(7)?,
        last_error: r.get(8)?,
        status: ExportStatus::from_name(&status).ok_or_else(|| bad("export status", &status))?,
        created_at_ms: r.get(10)?,
        updated_at_ms: r.get(11)?,
        sent_at_ms: r.get(12)?,
    })
}

impl OutboxStore for SqliteStorage {
    fn claim_due(&self, limit: u32, claim_ms: i64, clock: &dyn Clock) -> Result<Vec<Claimed>, StorageError> {
        let (mut inner, now_ms) = self.lock(clock);
        let tx = immediate(&mut inner.conn)?;
        let rows: Vec<(i64, String, String, String, String, u32)> = tx
            .prepare_cached(
                "SELECT id, site_id, kind, webhook_id, payload, attempts FROM outbox
                 WHERE status = 'pending' AND next_attempt_at_ms <= ?1 ORDER BY next_attempt_at_ms, id LIMIT ?2",
            )
            .and_then(|mut st| {
                st.query_map(params![now_ms, limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })?
                .collect()
            })
            .map_err(sql("finding due exports"))?;
        let mut claimed = Vec::with_capacity(rows.len());
        for (id, site, kind, webhook_id, body, attempts) in rows {
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at_ms = ?2, updated_at_ms = ?3 WHERE id = ?1",
                params![id, now_ms + claim_ms, now_ms],
            )
            .map_err(sql("claiming an export"))?;
            let kind = ExportKind::from_name(&kind)
                .ok_or_else(|| StorageError::Corrupt(format!("outbox row {id} has kind {kind:?}")))?;
            claimed.push(Claimed { id, site, kind, webhook_id, body, attempts: attempts + 1 });
        }
        tx.commit().map_err(sql("committing export claims"))?;
        Ok(claimed)
    }

    fn finish(&self, id: i64, finish: &Finish, clock: &dyn Clock) -> Result<(), StorageError> {
        let (mut inner, now_ms) = self.lock(clock);
        let tx = immediate(&mut inner.conn)?;
        match finish {
            Finish::Sent => tx.execute(
                "UPDATE outbox SET status = 'sent', sent_at_ms = ?2, updated_at_ms = ?2 WHERE id = ?1",
                params![id, now_ms],
            ),
            Finish::Retry { at_ms, error } => tx.execute(
                "UPDATE outbox SET next_attempt_at_ms = ?2, last_error = ?3, updated_at_ms = ?4 WHERE id = ?1",
                params![id, at_ms, error, now_ms],
            ),
            Finish::Dead { error } => tx.execute(
                "UPDATE outbox SET status = 'dead', last_error = ?2, updated_at_ms = ?3 WHERE id = ?1",
                params![id, error, now_ms],
            ),
        }
        .map_err(sql("recording an export attempt"))?;
        tx.commit().map_err(sql("committing an export attempt"))
    }

    fn next_due_ms(&self) -> Result<Option<i64>, StorageError> {
        self.read(|tx| {
            tx.query_row("SELECT MIN(next_attempt_at_ms) FROM outbox WHERE status = 'pending'", [], |r| r.get(0))
                .map_err(sql("finding the next due export"))
        })
    }

    fn list_exports(&self, f: &OutboxFilter) -> Result<(Vec<OutboxRow>, u64), StorageError> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<Box<dyn ToSql>> = Vec::new();
        if let Some(s) = &f.site {
            clauses.push("site_id = ?");
            values.push(Box::new(s.clone()));
        }
        if let Some(s) = f.status {
            clauses.push("status = ?");
            values.push(Box::new(s.as_str()));
        }
        if let Some(k) = f.kind {
            clauses.push("kind = ?");
            values.push(Box::new(k.as_str()));
        }
        let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        self.read(|tx| {
            let total: i64 = tx
                .query_row(
                    &format!("SELECT COUNT(*) FROM outbox {filter}"),
                    params_from_iter(values.iter().map(|v| v.as_ref())),
                    |r| r.get(0),
                )
                .map_err(sql("counting exports"))?;
            let query = format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox {filter} ORDER BY id DESC LIMIT {} OFFSET {}",
                f.limit, f.offset
            );
            let rows = tx
                .prepare(&query)
                .and_then(|mut st| {
                    st.query_map(params_from_iter(values.iter().map(|v| v.as_ref())), outbox_row)?.collect()
                })
                .map_err(sql("listing exports"))?;
            Ok((rows, u64::try_from(total).unwrap_or(0)))
        })
    }

    fn retry_export(&self, id: i64, clock: &dyn Clock) -> Result<OutboxRow, RetryError> {
        let (mut inner, now_ms) = self.lock(clock);
        let tx = immediate(&mut inner.conn)?;
        let status: Option<String> = tx
            .query_row("SELECT status FROM outbox WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(sql("reading an export"))?;
        let status = status.ok_or(RetryError::Unknown(id))?;
        let status = ExportStatus::from_name(&status)
            .ok_or_else(|| StorageError::Corrupt(format!("outbox row {id} has status {status:?}")))?;
        if status != ExportStatus::Dead {
            return Err(RetryError::NotDead { id, status: status.as_str() });
        }
        // last_error stays: it explains why the row died until a new attempt replaces it.
        tx.execute(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at_ms = ?2, updated_at_ms = ?2
             WHERE id = ?1",
            params![id, now_ms],
        )
        .map_err(sql("requeueing an export"))?;
        let row = tx
            .query_row(&format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?1"), [id], outbox_row)
            .map_err(sql("reading an export"))?;
        tx.commit().map_err(sql("committing a requeue"))?;
        Ok(row)
    }
}
