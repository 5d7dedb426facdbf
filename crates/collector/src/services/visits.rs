//! The visit flow between the HTTP layer and storage: route the touch to a
//! static number, a pool or the original, keeping crawlers and unrevealed
//! show-number pages off the pool, and giving promo codes to the visits the
//! site's promo rules pick. The writes themselves queue for storage's writer;
//! the caller awaits the answer.
//!
//! A visit that sends its raw referrer is classified again here, from the
//! landing URL and the referrer, with core's full source table (the browser
//! bundle carries a compact one): that touch is routed, stored and answered.

use std::sync::Arc;

use ringsource_core::bots;
use ringsource_core::lease::Groups;
use ringsource_core::routing::Route;
use ringsource_core::touch::{self, Touch, TouchHistory};
use ringsource_core::visit::{UrlParts, Visit};
use ringsource_core::wire::{NumberKind, SiteConfigPublic, VisitRequest, VisitResponse};

use crate::clock::Clock;
use crate::config::Site;
pub use crate::storage::{PageViewCommand, Pending, Renewal};
use crate::storage::{Storage, StorageError, VisitCommand, VisitOutcome, Want};

/// What a visit asks of storage, by the routing rules.
pub fn want(site: &Site, visit: &VisitRequest, is_bot: bool) -> Want {
    match site.routing.route(&visit.touch) {
        Route::Static(i) => Want::Static(i),
        // A crawler, headless browser or script would hold a number nobody
        // dials and drain the pool.
        Route::Pool(_) if is_bot => Want::Original,
        // Behind the show-number button a lease is taken only on the click.
        Route::Pool(_) if site.show_number.is_some() && !visit.reveal => Want::Original,
        Route::Pool(i) => Want::Pool(i),
        // A visit that earns no number may get a promo code; a crawler never
        // does, it would only use up codes.
        Route::Original => match &site.promo {
            Some(promo) if !is_bot && promo.routing.applies(&visit.touch) => Want::Promo,
            _ => Want::Original,
        },
    }
}

/// What a page needs to know of its site before it can swap (`GET /config`,
/// and every visit's answer).
pub fn public_config(site: &Site) -> SiteConfigPublic {
    SiteConfigPublic {
        site: site.id.clone(),
        originals: site.originals.clone(),
        consent_required: site.consent_required,
        show_number: site.show_number.clone(),
        heartbeat_secs: site.heartbeat_secs(),
        hold_secs: site.hold_secs(),
    }
}

/// A visit the collector may not keep: the site requires consent and the page
/// has none yet. Nothing is stored; the page learns the site's config, keeps
/// its own number and asks again once consent is given.
pub fn without_consent(site: &Site) -> VisitResponse {
    VisitResponse {
        session_id: None,
        kind: NumberKind::Original,
        number: None,
        expires_at_ms: None,
        heartbeat_secs: site.heartbeat_secs(),
        overflow: false,
        promo_code: None,
        touch: None,
        site: public_config(site),
    }
}

/// A visit that asked to be classified here has a page URL that is not one.
#[derive(Debug, thiserror::Error)]
#[error("page.url {url:?} is not a URL ({reason}); a visit that sends its referrer is classified from its page URL")]
pub struct PageUrlError {
    url: String,
    reason: url::ParseError,
}

/// The touch the collector decides for a visit that sent its raw referrer
/// (`None` when it did not): this page view classified from `page.url` and
/// the referrer at `now_ms`, except that a direct page view keeps the
/// campaign the browser remembered, by the same last-non-direct rule the
/// browser's touch history follows. A referrer that is not a URL counts as
/// none, as in the browser.
pub fn reclassify(visit: &VisitRequest, now_ms: u64) -> Result<Option<Touch>, PageUrlError> {
    let Some(referrer) = &visit.referrer else {
        return Ok(None);
    };
    let page =
        url::Url::parse(&visit.page.url).map_err(|reason| PageUrlError { url: visit.page.url.clone(), reason })?;
    let page = Split::of(&page);
    let referrer = url::Url::parse(referrer.trim()).ok().map(|url| Split::of(&url));
    let seen = touch::classify(&Visit::new(page.parts(), referrer.as_ref().map(Split::parts), ""), now_ms);
    let mut history = TouchHistory { first: None, last: Some(visit.touch.clone()) };
    history.record(seen);
    Ok(history.last)
}

/// The parts of a URL that visit parsing reads, owned.
struct Split {
    host: String,
    path: String,
    query: String,
}

impl Split {
    fn of(url: &url::Url) -> Split {
        Split {
            host: url.host_str().unwrap_or_default().to_owned(),
            path: url.path().to_owned(),
            query: url.query().unwrap_or_default().to_owned(),
        }
    }

    fn parts(&self) -> UrlParts<'_> {
        UrlParts { host: &self.host, path: &self.path, query: &self.query }
    }
}

/// Who sent a visit.
pub struct Sender {
    pub user_agent: String,
    /// The address groups it came from; `None` when it did not come over the
    /// network (demo data).
    pub client: Option<Groups>,
    /// Where it was and what it came on, read from its address (which goes
    /// no further) and its User-Agent.
    pub facts: crate::services::visitor_facts::Facts,
}

/// Starts or continues the visit; storage answers with the number to show.
/// `decided` is [`reclassify`]'s touch, which replaces the browser's.
pub fn visit(
    storage: &dyn Storage,
    site: Arc<Site>,
    mut visit: VisitRequest,
    decided: Option<Touch>,
    sender: Sender,
    new_session_id: String,
    clock: Arc<dyn Clock>,
) -> Visiting {
    if let Some(touch) = &decided {
        visit.touch = touch.clone();
    }
    let Sender { user_agent, client, facts } = sender;
    let is_bot = bots::is_bot(&user_agent);
    let want = want(&site, &visit, is_bot);
    let heartbeat_secs = match want {
        Want::Pool(i) => site.pools[i].heartbeat_secs,
        _ => site.heartbeat_secs(),
    };
    let config = public_config(&site);
    let cmd = VisitCommand {
        site,
        session_id: visit.session_id,
        new_session_id,
        client_id: visit.client_id,
        ym_uid: visit.ym_uid,
        touch: visit.touch,
        first_touch: visit.first_touch,
        page_url: visit.page.url,
        page_title: visit.page.title,
        user_agent,
        is_bot,
        client,
        want,
        facts,
    };
    Visiting { outcome: storage.visit(cmd, clock), heartbeat_secs, config, decided }
}

/// A visit storage is working on.
pub struct Visiting {
    outcome: Pending<VisitOutcome>,
    heartbeat_secs: u32,
    config: SiteConfigPublic,
    decided: Option<Touch>,
}

impl Visiting {
    pub async fn response(self) -> Result<VisitResponse, StorageError> {
        let out = self.outcome.await?;
        Ok(respond(out, self.heartbeat_secs, self.config, self.decided))
    }

    /// [`Visiting::response`] for a plain thread.
    pub fn wait(self) -> Result<VisitResponse, StorageError> {
        Ok(respond(self.outcome.wait()?, self.heartbeat_secs, self.config, self.decided))
    }
}

fn respond(out: VisitOutcome, heartbeat_secs: u32, site: SiteConfigPublic, touch: Option<Touch>) -> VisitResponse {
    VisitResponse {
        session_id: Some(out.session_id),
        kind: out.kind,
        number: out.number,
        expires_at_ms: out.expires_at_ms,
        heartbeat_secs,
        overflow: out.overflow,
        promo_code: out.promo_code,
        site,
        touch,
    }
}

/// The browser's writes: visits, heartbeats and page views, over storage.
pub struct VisitsService {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
}

impl VisitsService {
    pub fn new(storage: Arc<dyn Storage>, clock: Arc<dyn Clock>) -> Self {
        Self { storage, clock }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// [`visit`] on this service's storage and clock.
    pub fn visit(
        &self,
        site: Arc<Site>,
        request: VisitRequest,
        decided: Option<Touch>,
        sender: Sender,
        new_session_id: String,
    ) -> Visiting {
        visit(self.storage.as_ref(), site, request, decided, sender, new_session_id, Arc::clone(&self.clock))
    }

    /// Renews the session's live lease; `client` is where the heartbeat came from.
    pub fn heartbeat(&self, site: Arc<Site>, session_id: String, client: Option<Groups>) -> Pending<Renewal> {
        self.storage.heartbeat(site, session_id, client, Arc::clone(&self.clock))
    }

    /// Records a page view; `false` when the session is unknown.
    pub fn page_view(&self, view: PageViewCommand) -> Pending<bool> {
        self.storage.page_view(view, Arc::clone(&self.clock))
    }
}
