//! The writes of a browsing session on PostgreSQL: the visit (session,
//! touches, landing page, and the number it is shown), heartbeats and page
//! views, one transaction each, writing what the SQLite adapter writes.
//!
//! Lock order, which keeps these transactions from deadlocking one another:
//! the session's row first (every write of a session updates it), then
//! numbers (only ever with `SKIP LOCKED`, so nobody waits on them), then
//! lease rows, then the per-minute counts, in one order.

use ringsource_core::lease::{Groups, Visitor};
use ringsource_core::promo::PromoCode;
use ringsource_core::touch::Touch;
use ringsource_core::wire::NumberKind;

use super::leases::{self, Effects, Refusal};
use super::{Shared, pg, transact};

use crate::clock::Clock;
use crate::config::{PromoConfig, Site};
use crate::storage::{PageViewCommand, Renewal, StorageError, VisitCommand, VisitOutcome, Want};

type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// How many fresh codes are drawn before a visit is told there is none free
/// (as the SQLite adapter).
const PROMO_ATTEMPTS: usize = 16;
const DAY_MS: i64 = 86_400_000;

/// The start of the minute holding `at_ms`.
fn minute_of(at_ms: i64) -> i64 {
    at_ms - at_ms.rem_euclid(60_000)
}

pub(super) async fn visit(
    shared: &Shared,
    cmd: &VisitCommand,
    clock: &dyn Clock,
) -> Result<VisitOutcome, StorageError> {
    let (outcome, effects) = transact!(shared, clock, |tx, now_ms| async {
        let mut effects = Effects::default();
        let outcome = visit_in(&tx, shared, cmd, now_ms, &mut effects).await?;
        Ok::<_, StorageError>((outcome, effects))
    })?;
    effects.apply(&mut shared.fair());
    Ok(outcome)
}

async fn visit_in(
    tx: &Tx<'_>,
    shared: &Shared,
    cmd: &VisitCommand,
    now_ms: i64,
    effects: &mut Effects,
) -> Result<VisitOutcome, StorageError> {
    let site = cmd.site.as_ref();
    let session = upsert_session(tx, cmd, now_ms).await?;
    record_touches(tx, &session, &cmd.touch, cmd.first_touch.as_ref(), now_ms).await?;
    insert_page_view(tx, &session.id, now_ms, &cmd.page_url, cmd.page_title.as_deref()).await?;
    let session_id = session.id.clone();
    Ok(match cmd.want {
        Want::Original => VisitOutcome::original(session_id),
        Want::Static(i) => VisitOutcome {
            session_id,
            kind: NumberKind::Static,
            number: Some(site.static_numbers[i].number.clone()),
            expires_at_ms: None,
            overflow: false,
            promo_code: None,
        },
        Want::Pool(i) => {
            let visitor = Visitor { session_id: &session_id, client_id: session.client_id.as_deref() };
            let mut refusals = Vec::new();
            let outcome =
                leases::lease(tx, &shared.fair, site, i, &visitor, cmd.client, now_ms, effects, &mut refusals).await?;
            let pool = &site.pools[i].id;
            // The counts last: their rows are shared by every visit of the
            // pool in the minute, and are held from here to the commit only.
            if session.first_ask {
                let st = tx
                    .prepare_cached(
                        "INSERT INTO pool_first_asks (site_id, pool_id, minute_ms, sessions) VALUES ($1, $2, $3, 1)
                         ON CONFLICT (site_id, pool_id, minute_ms)
                         DO UPDATE SET sessions = pool_first_asks.sessions + 1",
                    )
                    .await
                    .map_err(pg("preparing a first-ask count"))?;
                tx.execute(&st, &[&site.id, pool, &minute_of(now_ms)])
                    .await
                    .map_err(pg("counting first asks of a pool"))?;
            }
            for refusal in refusals {
                count_refusal(tx, site, pool, &refusal, now_ms).await?;
            }
            outcome
        }
        Want::Promo => match &site.promo {
            Some(promo) => match promo_code_for(tx, site, promo, &session_id, now_ms).await? {
                Some(code) => VisitOutcome {
                    session_id,
                    kind: NumberKind::Promo,
                    number: None,
                    expires_at_ms: None,
                    overflow: false,
                    promo_code: Some(code),
                },
                // No free code: the original number, as for any visit that
                // gets nothing to track.
                None => VisitOutcome::original(session_id),
            },
            None => VisitOutcome::original(session_id),
        },
    })
}

async fn count_refusal(tx: &Tx<'_>, site: &Site, pool: &str, r: &Refusal, now_ms: i64) -> Result<(), StorageError> {
    let st = tx
        .prepare_cached(
            "INSERT INTO pool_exhaustions (site_id, pool_id, minute_ms, reason, policy, outcome, number, events,
                 first_at_ms, last_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)
             ON CONFLICT (site_id, pool_id, minute_ms, reason, policy, outcome, number) DO UPDATE
             SET events = pool_exhaustions.events + 1,
                 first_at_ms = LEAST(pool_exhaustions.first_at_ms, excluded.first_at_ms),
                 last_at_ms = GREATEST(pool_exhaustions.last_at_ms, excluded.last_at_ms)",
        )
        .await
        .map_err(pg("preparing a pool exhaustion count"))?;
    tx.execute(&st, &[&site.id, &pool, &minute_of(now_ms), &r.reason, &r.policy, &r.outcome, &r.number, &now_ms])
        .await
        .map(drop)
        .map_err(pg("counting pool exhaustions"))
}

pub(super) async fn heartbeat(
    shared: &Shared,
    site: &Site,
    session_id: &str,
    client: Option<Groups>,
    clock: &dyn Clock,
) -> Result<Renewal, StorageError> {
    let (renewal, effects) = transact!(shared, clock, |tx, now_ms| async {
        let mut effects = Effects::default();
        // The session's row first (see the lock order above); it also says
        // whether the session exists.
        let st = tx
            .prepare_cached("SELECT 1 FROM sessions WHERE id = $1 AND site_id = $2 FOR NO KEY UPDATE")
            .await
            .map_err(pg("preparing a session look-up"))?;
        if tx.query_opt(&st, &[&session_id, &site.id]).await.map_err(pg("looking up a session"))?.is_none() {
            return Ok((Renewal::UnknownSession, effects));
        }
        let renewal = match leases::renew(&tx, site, session_id, client, now_ms, &mut effects).await? {
            Some(renewed) => {
                if renewed.written {
                    touch_session(&tx, session_id, now_ms).await?;
                }
                Renewal::Renewed { number: renewed.number, expires_at_ms: renewed.expires_at_ms }
            }
            None => Renewal::Gone,
        };
        Ok::<_, StorageError>((renewal, effects))
    })?;
    effects.apply(&mut shared.fair());
    Ok(renewal)
}

pub(super) async fn page_view(
    shared: &Shared,
    view: &PageViewCommand,
    clock: &dyn Clock,
) -> Result<bool, StorageError> {
    transact!(shared, clock, |tx, now_ms| async {
        let st = tx
            .prepare_cached("UPDATE sessions SET last_seen_ms = $3 WHERE id = $1 AND site_id = $2")
            .await
            .map_err(pg("preparing a session update"))?;
        if tx.execute(&st, &[&view.session_id, &view.site.id, &now_ms]).await.map_err(pg("touching the session"))? == 0
        {
            return Ok(false);
        }
        insert_page_view(&tx, &view.session_id, now_ms, &view.url, view.title.as_deref()).await?;
        Ok::<_, StorageError>(true)
    })
}

async fn insert_page_view(
    tx: &Tx<'_>,
    session_id: &str,
    now_ms: i64,
    url: &str,
    title: Option<&str>,
) -> Result<(), StorageError> {
    let st = tx
        .prepare_cached("INSERT INTO page_views (session_id, at_ms, url, title) VALUES ($1, $2, $3, $4)")
        .await
        .map_err(pg("preparing a page view"))?;
    tx.execute(&st, &[&session_id, &now_ms, &url, &title]).await.map(drop).map_err(pg("recording a page view"))
}

async fn touch_session(tx: &Tx<'_>, session_id: &str, now_ms: i64) -> Result<(), StorageError> {
    let st = tx
        .prepare_cached("UPDATE sessions SET last_seen_ms = $1 WHERE id = $2")
        .await
        .map_err(pg("preparing a session update"))?;
    tx.execute(&st, &[&now_ms, &session_id]).await.map(drop).map_err(pg("touching the session"))
}

/// The session a visit continues or starts.
struct Session {
    id: String,
    /// As stored after this visit.
    client_id: Option<String>,
    is_new: bool,
    /// The visit asks a pool for a number, and the session never asked
    /// that pool before.
    first_ask: bool,
}

/// Continues the browser's session when it belongs to this site, else starts
/// one (keeping the browser's id when nobody uses it yet). The row is locked
/// for the rest of the visit: two visits of one session take turns.
async fn upsert_session(tx: &Tx<'_>, cmd: &VisitCommand, now_ms: i64) -> Result<Session, StorageError> {
    let stored = match cmd.session_id.as_deref() {
        Some(id) => {
            let st = tx
                .prepare_cached("SELECT site_id, client_id, asked_pools FROM sessions WHERE id = $1 FOR NO KEY UPDATE")
                .await
                .map_err(pg("preparing a session look-up"))?;
            tx.query_opt(&st, &[&id])
                .await
                .map_err(pg("looking up a session"))?
                .map(|r| (r.get::<_, String>(0), r.get::<_, Option<String>>(1), r.get::<_, Option<String>>(2)))
        }
        None => None,
    };
    let wanted_pool = match cmd.want {
        Want::Pool(i) => Some(cmd.site.pools[i].id.as_str()),
        _ => None,
    };
    let id = match (cmd.session_id.as_deref(), stored) {
        (Some(id), Some((site, stored_client_id, asked))) if site == cmd.site.id => {
            let asked_now = wanted_pool.and_then(|pool| crate::storage::asked_with(asked.as_deref(), pool));
            let st = tx
                .prepare_cached(
                    "UPDATE sessions SET last_seen_ms = $2, client_id = COALESCE($3, client_id),
                        ym_uid = COALESCE($4, ym_uid), asked_pools = COALESCE($5, asked_pools) WHERE id = $1",
                )
                .await
                .map_err(pg("preparing a session update"))?;
            tx.execute(&st, &[&id, &now_ms, &cmd.client_id, &cmd.ym_uid, &asked_now])
                .await
                .map_err(pg("updating a session"))?;
            return Ok(Session {
                id: id.to_owned(),
                client_id: cmd.client_id.clone().or(stored_client_id),
                is_new: false,
                first_ask: asked_now.is_some(),
            });
        }
        (Some(id), None) => id.to_owned(),
        _ => cmd.new_session_id.clone(),
    };
    let st = tx
        .prepare_cached(
            "INSERT INTO sessions (id, site_id, client_id, ym_uid, user_agent, is_bot, created_at_ms, last_seen_ms,
                                   asked_pools, country, region, city, device_type, device, browser, os)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .await
        .map_err(pg("preparing a session"))?;
    let f = &cmd.facts;
    // Two visits creating one id at once: the loser's unique violation runs
    // its transaction again, which then continues the session.
    tx.execute(
        &st,
        &[
            &id,
            &cmd.site.id,
            &cmd.client_id,
            &cmd.ym_uid,
            &cmd.user_agent,
            &cmd.is_bot,
            &now_ms,
            &wanted_pool,
            &f.country,
            &f.region,
            &f.city,
            &f.device_type,
            &f.device,
            &f.browser,
            &f.os,
        ],
    )
    .await
    .map_err(pg("creating a session"))?;
    Ok(Session { id, client_id: cmd.client_id.clone(), is_new: true, first_ask: wanted_pool.is_some() })
}

async fn record_touches(
    tx: &Tx<'_>,
    session: &Session,
    last: &Touch,
    first: Option<&Touch>,
    now_ms: i64,
) -> Result<(), StorageError> {
    // A session created just now has no first touch yet.
    let has_first = if session.is_new {
        false
    } else {
        let st = tx
            .prepare_cached("SELECT 1 FROM touches WHERE session_id = $1 AND role = 'first' LIMIT 1")
            .await
            .map_err(pg("preparing the first touch look-up"))?;
        tx.query_opt(&st, &[&session.id]).await.map_err(pg("looking up the first touch"))?.is_some()
    };
    let st = tx
        .prepare_cached(
            "INSERT INTO touches (session_id, role, at_ms, recorded_at_ms, channel, source, medium, campaign, term,
                content, utm_id, click_id_kind, click_id, landing_path, referrer_host)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .await
        .map_err(pg("preparing a touch"))?;
    match (has_first, first) {
        (true, _) => insert_touch(tx, &st, session, "last", last, now_ms).await,
        // A landing touch is both the first and this visit's last; one row
        // says so (readers take a session's touches whatever their role,
        // and attribution counts a touch once).
        (false, None) => insert_touch(tx, &st, session, "first", last, now_ms).await,
        (false, Some(first)) if first == last => insert_touch(tx, &st, session, "first", last, now_ms).await,
        (false, Some(first)) => {
            insert_touch(tx, &st, session, "first", first, now_ms).await?;
            insert_touch(tx, &st, session, "last", last, now_ms).await
        }
    }
}

async fn insert_touch(
    tx: &Tx<'_>,
    st: &tokio_postgres::Statement,
    session: &Session,
    role: &str,
    t: &Touch,
    now_ms: i64,
) -> Result<(), StorageError> {
    tx.execute(
        st,
        &[
            &session.id,
            &role,
            &i64::try_from(t.at_ms).unwrap_or(i64::MAX),
            &now_ms,
            &t.channel.as_str(),
            &t.source,
            &t.medium,
            &t.campaign,
            &t.term,
            &t.content,
            &t.utm_id,
            &t.click_id.as_ref().map(|c| c.kind.param()),
            &t.click_id.as_ref().map(|c| c.value.as_str()),
            &t.landing_path,
            &t.referrer_host,
        ],
    )
    .await
    .map(drop)
    .map_err(pg("recording a touch"))
}

/// The session's promo code: the one it holds, renewed, or a fresh one that
/// no live code of the site has. Two instances drawing the same code meet at
/// the unique index on live codes: the second draws again. A live code whose
/// reservation lapsed is retired when a draw meets it, which frees it.
async fn promo_code_for(
    tx: &Tx<'_>,
    site: &Site,
    promo: &PromoConfig,
    session_id: &str,
    now_ms: i64,
) -> Result<Option<String>, StorageError> {
    let reserved_until = now_ms + i64::from(promo.hold_days) * DAY_MS;
    let held = tx
        .query_opt(
            "SELECT id, code FROM promo_codes
             WHERE site_id = $1 AND session_id = $2 AND NOT retired AND reserved_until_ms > $3
             ORDER BY id DESC LIMIT 1",
            &[&site.id, &session_id, &now_ms],
        )
        .await
        .map_err(pg("finding the session's promo code"))?;
    if let Some(row) = held {
        let (id, code): (i64, String) = (row.get(0), row.get(1));
        tx.execute("UPDATE promo_codes SET reserved_until_ms = $2 WHERE id = $1", &[&id, &reserved_until])
            .await
            .map_err(pg("renewing a promo code"))?;
        return Ok(Some(code));
    }
    // The session's own lapsed codes go first: they are no one's now.
    tx.execute(
        "UPDATE promo_codes SET retired = true WHERE session_id = $1 AND NOT retired AND reserved_until_ms <= $2",
        &[&session_id, &now_ms],
    )
    .await
    .map_err(pg("retiring lapsed promo codes"))?;
    for _ in 0..PROMO_ATTEMPTS {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| StorageError::NoRandomness(e.to_string()))?;
        let code = PromoCode::generate(u64::from_le_bytes(bytes), promo.length)
            .map_err(|e| StorageError::Corrupt(format!("promo length passed validation but: {e}")))?;
        // A lapsed reservation of this code frees it for reuse (the row
        // stays, so a call that names an old code can still be explained).
        tx.execute(
            "UPDATE promo_codes SET retired = true
             WHERE site_id = $1 AND code = $2 AND NOT retired AND reserved_until_ms <= $3",
            &[&site.id, &code.as_str(), &now_ms],
        )
        .await
        .map_err(pg("retiring a lapsed promo code"))?;
        let inserted = tx
            .execute(
                "INSERT INTO promo_codes (site_id, code, session_id, issued_at_ms, reserved_until_ms)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (site_id, code) WHERE NOT retired DO NOTHING",
                &[&site.id, &code.as_str(), &session_id, &now_ms, &reserved_until],
            )
            .await
            .map_err(pg("issuing a promo code"))?;
        if inserted == 1 {
            return Ok(Some(code.into()));
        }
    }
    tracing::warn!(
        site = site.id.as_str(),
        length = promo.length,
        attempts = PROMO_ATTEMPTS,
        "no free promo code found; raise the site's promo.length"
    );
    Ok(None)
}
