//! The visit flow between the HTTP layer and storage: route the touch to a
//! static number, a pool or the original, keeping crawlers and unrevealed
//! show-number pages off the pool, and giving promo codes to the visits the
//! site's promo rules pick. Runs on a blocking thread.

use ringsource_core::bots;
use ringsource_core::routing::Route;
use ringsource_core::wire::{VisitRequest, VisitResponse};

use crate::clock::Clock;
use crate::config::Site;
use crate::storage::{Storage, StorageError, VisitCommand, Want};

/// What a visit asks of storage, by the routing rules.
pub fn want<'a>(site: &'a Site, visit: &VisitRequest, is_bot: bool) -> Want<'a> {
    match site.routing.route(&visit.touch) {
        Route::Static(i) => Want::Static(&site.static_numbers[i].number),
        // A crawler would hold a number nobody dials and drain the pool.
        Route::Pool(_) if is_bot => Want::Original,
        // Behind the show-number button a lease is taken only on the click.
        Route::Pool(_) if site.show_number.is_some() && !visit.reveal => Want::Original,
        Route::Pool(i) => Want::Pool(&site.pools[i]),
        // A visit that earns no number may get a promo code; a crawler never
        // does, it would only use up codes.
        Route::Original => match &site.promo {
            Some(promo) if !is_bot && promo.routing.applies(&visit.touch) => Want::Promo(promo),
            _ => Want::Original,
        },
    }
}

/// Starts or continues the visit and answers with the number to show.
pub fn visit(
    storage: &dyn Storage,
    site: &Site,
    visit: &VisitRequest,
    user_agent: &str,
    new_session_id: String,
    clock: &dyn Clock,
) -> Result<VisitResponse, StorageError> {
    let is_bot = bots::is_bot(user_agent);
    let want = want(site, visit, is_bot);
    let heartbeat_secs = match want {
        Want::Pool(p) => p.heartbeat_secs,
        _ => site.heartbeat_secs(),
    };
    let cmd = VisitCommand {
        site,
        session_id: visit.session_id.as_deref(),
        new_session_id,
        client_id: visit.client_id.as_deref(),
        ym_uid: visit.ym_uid.as_deref(),
        touch: &visit.touch,
        first_touch: visit.first_touch.as_ref(),
        page_url: &visit.page.url,
        page_title: visit.page.title.as_deref(),
        user_agent,
        is_bot,
        want,
    };
    let out = storage.visit(&cmd, clock)?;
    Ok(VisitResponse {
        session_id: out.session_id,
        kind: out.kind,
        number: out.number,
        expires_at_ms: out.expires_at_ms,
        heartbeat_secs,
        overflow: out.overflow,
        promo_code: out.promo_code,
    })
}
