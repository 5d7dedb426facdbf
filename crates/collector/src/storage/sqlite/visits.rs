//! The writes of a browsing session: the visit (session, touches, landing
//! page, and the number it is shown), heartbeats and page views. Each runs
//! inside a transaction the writer holds for its whole batch.

use ringsource_core::lease::{Groups, Visitor};
use ringsource_core::touch::Touch;
use ringsource_core::wire::NumberKind;
use rusqlite::{OptionalExtension, Transaction, params};

use super::leases::LeaseBook;
use super::{calls, sql};
use crate::config::Site;
use crate::storage::{PageViewCommand, Renewal, StorageError, VisitCommand, VisitOutcome, Want};

pub(super) fn visit(
    tx: &Transaction<'_>,
    book: &mut LeaseBook,
    cmd: &VisitCommand,
    now_ms: i64,
) -> Result<VisitOutcome, StorageError> {
    let site = cmd.site.as_ref();
    let session = upsert_session(tx, cmd, now_ms)?;
    if let (false, Some(client_id)) = (session.is_new, cmd.client_id.as_deref()) {
        book.client_id_changed(site, &session.id, client_id);
    }
    record_touches(tx, &session, &cmd.touch, cmd.first_touch.as_ref(), now_ms)?;
    insert_page_view(tx, &session.id, now_ms, &cmd.page_url, cmd.page_title.as_deref())?;
    let session_id = session.id;
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
            if session.first_ask {
                book.tally.first_ask(&site.id, &site.pools[i].id, now_ms);
            }
            let visitor = Visitor { session_id: &session_id, client_id: session.client_id.as_deref() };
            book.lease(tx, site, i, &visitor, cmd.client, now_ms)?
        }
        Want::Promo => match &site.promo {
            Some(promo) => match calls::promo_code_for(tx, site, promo, &session_id, now_ms)? {
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

pub(super) fn heartbeat(
    tx: &Transaction<'_>,
    book: &mut LeaseBook,
    site: &Site,
    session_id: &str,
    client: Option<Groups>,
    now_ms: i64,
) -> Result<Renewal, StorageError> {
    Ok(match book.renew(tx, site, session_id, client, now_ms)? {
        Some(renewed) => {
            if renewed.written {
                touch_session(tx, session_id, now_ms)?;
            }
            Renewal::Renewed { number: renewed.number, expires_at_ms: renewed.expires_at_ms }
        }
        None if session_exists(tx, &site.id, session_id)? => Renewal::Gone,
        None => Renewal::UnknownSession,
    })
}

/// Records a page view; `false` when the session is unknown.
pub(super) fn page_view(
    tx: &Transaction<'_>,
    book: &mut LeaseBook,
    view: &PageViewCommand,
    now_ms: i64,
) -> Result<bool, StorageError> {
    if !session_exists(tx, &view.site.id, &view.session_id)? {
        return Ok(false);
    }
    insert_page_view(tx, &view.session_id, now_ms, &view.url, view.title.as_deref())?;
    touch_session(tx, &view.session_id, now_ms)?;
    book.viewed(&view.site, &view.session_id, now_ms);
    Ok(true)
}

fn insert_page_view(
    tx: &Transaction<'_>,
    session_id: &str,
    now_ms: i64,
    url: &str,
    title: Option<&str>,
) -> Result<(), StorageError> {
    tx.prepare_cached("INSERT INTO page_views (session_id, at_ms, url, title) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut st| st.execute(params![session_id, now_ms, url, title]))
        .map(drop)
        .map_err(sql("recording a page view"))
}

fn touch_session(tx: &Transaction<'_>, session_id: &str, now_ms: i64) -> Result<(), StorageError> {
    tx.prepare_cached("UPDATE sessions SET last_seen_ms = ?1 WHERE id = ?2")
        .and_then(|mut st| st.execute(params![now_ms, session_id]))
        .map(drop)
        .map_err(sql("touching the session"))
}

fn session_exists(tx: &Transaction<'_>, site_id: &str, session_id: &str) -> Result<bool, StorageError> {
    tx.prepare_cached("SELECT 1 FROM sessions WHERE id = ?1 AND site_id = ?2")
        .and_then(|mut st| st.query_row(params![session_id, site_id], |_| Ok(())).optional())
        .map(|r| r.is_some())
        .map_err(sql("looking up a session"))
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
/// one (keeping the browser's id when nobody uses it yet, so a browser that
/// outlived a database reset keeps its id).
fn upsert_session(tx: &Transaction<'_>, cmd: &VisitCommand, now_ms: i64) -> Result<Session, StorageError> {
    let stored: Option<(String, Option<String>, Option<String>)> = match cmd.session_id.as_deref() {
        Some(id) => tx
            .prepare_cached("SELECT site_id, client_id, asked_pools FROM sessions WHERE id = ?1")
            .and_then(|mut st| st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
            .map_err(sql("looking up a session"))?,
        None => None,
    };
    let wanted_pool = match cmd.want {
        Want::Pool(i) => Some(cmd.site.pools[i].id.as_str()),
        _ => None,
    };
    let id = match (cmd.session_id.as_deref(), stored) {
        (Some(id), Some((site, stored_client_id, asked))) if site == cmd.site.id => {
            let asked_now = wanted_pool.and_then(|pool| crate::storage::asked_with(asked.as_deref(), pool));
            tx.prepare_cached(
                "UPDATE sessions SET last_seen_ms = ?2, client_id = COALESCE(?3, client_id),
                    ym_uid = COALESCE(?4, ym_uid), asked_pools = COALESCE(?5, asked_pools) WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![id, now_ms, cmd.client_id, cmd.ym_uid, asked_now]))
            .map_err(sql("updating a session"))?;
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
    tx.prepare_cached(
        "INSERT INTO sessions (id, site_id, client_id, ym_uid, user_agent, is_bot, created_at_ms, last_seen_ms,
                               asked_pools, country, region, city, device_type, device, browser, os)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )
    .and_then(|mut st| {
        let f = &cmd.facts;
        st.execute(params![
            id,
            cmd.site.id,
            cmd.client_id,
            cmd.ym_uid,
            cmd.user_agent,
            cmd.is_bot,
            now_ms,
            wanted_pool,
            f.country,
            f.region,
            f.city,
            f.device_type,
            f.device,
            f.browser,
            f.os
        ])
    })
    .map_err(sql("creating a session"))?;
    Ok(Session { id, client_id: cmd.client_id.clone(), is_new: true, first_ask: wanted_pool.is_some() })
}

fn record_touches(
    tx: &Transaction<'_>,
    session: &Session,
    last: &Touch,
    first: Option<&Touch>,
    now_ms: i64,
) -> Result<(), StorageError> {
    // A session created just now has no first touch yet.
    let has_first = !session.is_new
        && tx
            .prepare_cached("SELECT 1 FROM touches WHERE session_id = ?1 AND role = 'first'")
            .and_then(|mut st| st.query_row([&session.id], |_| Ok(())).optional())
            .map_err(sql("looking up the first touch"))?
            .is_some();
    let insert = |role: &str, t: &Touch| -> Result<(), StorageError> {
        tx.prepare_cached(
            "INSERT INTO touches (session_id, role, at_ms, recorded_at_ms, channel, source, medium, campaign, term,
                content, utm_id, click_id_kind, click_id, landing_path, referrer_host)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .and_then(|mut st| {
            st.execute(params![
                session.id,
                role,
                i64::try_from(t.at_ms).unwrap_or(i64::MAX),
                now_ms,
                t.channel.as_str(),
                t.source,
                t.medium,
                t.campaign,
                t.term,
                t.content,
                t.utm_id,
                t.click_id.as_ref().map(|c| c.kind.param()),
                t.click_id.as_ref().map(|c| c.value.as_str()),
                t.landing_path,
                t.referrer_host,
            ])
        })
        .map(drop)
        .map_err(sql("recording a touch"))
    };
    match (has_first, first) {
        (true, _) => insert("last", last),
        // A landing touch is both the first and this visit's last; one row
        // says so (readers take a session's touches whatever their role,
        // and attribution counts a touch once).
        (false, None) => insert("first", last),
        (false, Some(first)) if first == last => insert("first", last),
        (false, Some(first)) => {
            insert("first", first)?;
            insert("last", last)
        }
    }
}
