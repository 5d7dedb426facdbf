//! Calls: the service between the PBX adapters / admin API and storage.
//!
//! The PBX adapters hand every verified [`CallEvent`] to [`CallsService`]
//! (through [`crate::pbx::CallSink`]); storage stores it once, refolds the
//! call and attributes it in one transaction. The admin API lists, exports,
//! reports on and corrects (promo codes) the stored calls. Every method is
//! blocking: the HTTP layer runs them through `web::block`.

pub mod attribution;
mod sink;

use serde::Serialize;

use std::collections::HashMap;
use std::sync::Arc;

use ringsource_core::call::CallEvent;
use ringsource_core::promo::PromoCode;

use crate::clock::Clock;
use crate::config::Site;
use crate::pbx::Delivery;
use crate::storage::StorageError;
use crate::storage::calls::CallStore;
pub use crate::storage::calls::{
    CallDetail, CallFilter, CallSummary, GroupBy, PromoLookup, RecordError, Recorded, ReportQuery, ReportRow,
    StatusFilter,
};

/// Why a calls operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CallsError {
    #[error("no site {0:?} is configured")]
    UnknownSite(String),
    #[error("no call {0}")]
    UnknownCall(i64),
    #[error("promo code {code} was never issued on site {site:?}")]
    UnknownPromoCode { code: String, site: String },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The calls of every configured site.
pub struct CallsService {
    store: Arc<dyn CallStore>,
    /// Only for the demo-data flag of reports.
    money: Option<Arc<dyn crate::storage::money::MoneyStore>>,
    sites: HashMap<String, Arc<Site>>,
    clock: Arc<dyn Clock>,
}

impl CallsService {
    pub fn new(store: Arc<dyn CallStore>, sites: &[Site], clock: Arc<dyn Clock>) -> Self {
        let sites = sites.iter().map(|s| (s.id.clone(), Arc::new(s.clone()))).collect();
        Self { store, money: None, sites, clock }
    }

    /// Lets reports tell whether the site holds demo data.
    pub fn with_money(mut self, money: Arc<dyn crate::storage::money::MoneyStore>) -> Self {
        self.money = Some(money);
        self
    }

    /// Whether the site holds rows written by `ringsource demo-data`
    /// (`false` when no money store is attached).
    pub fn has_demo_data(&self, site: &str) -> Result<bool, CallsError> {
        match &self.money {
            Some(m) => Ok(m.has_demo_data(site)?),
            None => Ok(false),
        }
    }

    pub fn site(&self, id: &str) -> Result<&Arc<Site>, CallsError> {
        self.sites.get(id).ok_or_else(|| CallsError::UnknownSite(id.to_owned()))
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Stores one PBX event of `site`'s and re-attributes its call.
    pub fn record(&self, site: &str, event: &CallEvent) -> Result<Recorded, CallsError> {
        self.record_delivery(site, None, event)
    }

    /// [`Self::record`] for a report the PBX named with a delivery id, which
    /// is stored with the event (see [`CallStore::record_call_event`]).
    pub fn record_delivery(
        &self,
        site: &str,
        delivery: Option<&Delivery>,
        event: &CallEvent,
    ) -> Result<Recorded, CallsError> {
        let site = self.site(site)?;
        Ok(self.store.record_call_event(site, delivery, event, self.clock.as_ref(), &attribution::Workflow)?)
    }

    pub fn list(&self, filter: &CallFilter) -> Result<(Vec<CallSummary>, u64), CallsError> {
        if let Some(site) = &filter.site {
            self.site(site)?;
        }
        Ok(self.store.list_calls(filter)?)
    }

    pub fn get(&self, id: i64) -> Result<CallDetail, CallsError> {
        self.store.call(id)?.ok_or(CallsError::UnknownCall(id))
    }

    pub fn report(&self, query: &ReportQuery) -> Result<Vec<ReportRow>, CallsError> {
        self.site(&query.site.id)?;
        Ok(self.store.report(query)?)
    }

    pub fn promo_lookup(&self, site: &str, code: &PromoCode) -> Result<PromoLookup, CallsError> {
        self.site(site)?;
        self.store
            .promo_lookup(site, code)?
            .ok_or_else(|| CallsError::UnknownPromoCode { code: code.to_string(), site: site.to_owned() })
    }

    /// The manager named `code` on call `id`: the call goes to the code's
    /// session with high confidence, and stays there through later events.
    pub fn attach_promo(&self, id: i64, code: &PromoCode) -> Result<CallDetail, CallsError> {
        let site_id = self.store.call_site(id)?.ok_or(CallsError::UnknownCall(id))?;
        // A call of a site no longer configured cannot be re-attributed:
        // its grace window and model are gone with the site.
        let site = self.site(&site_id)?;
        match self.store.attach_promo(site, id, code, self.clock.as_ref(), &attribution::Workflow)? {
            Some(()) => self.get(id),
            None => Err(CallsError::UnknownPromoCode { code: code.to_string(), site: site_id }),
        }
    }
}

// ------------------------------------------------------- the PBXs' sink

/// Whether the sink had seen the event before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordOutcome {
    /// The event added something to the call (or started it).
    New,
    /// The same event, or a delivery with the same id, is stored (a PBX
    /// retry); nothing changed.
    Duplicate,
}

/// Why the sink could not take an event.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The collector's own fault: answered 500 so the PBX retries.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The event contradicts what is stored for the same PBX call id (for
    /// example another dialled number): answered 409, a retry cannot help.
    #[error("{0}")]
    Conflict(String),
}

/// Where verified call events go: storage plus attribution. Blocking; the
/// route calls it inside `web::block`. Registered as app data of type
/// `web::Data<Arc<dyn CallSink>>`.
///
/// The PBX is answered with what `record` returns, so an `Ok` must mean the
/// event is stored (and on disk: a PBX does not send it again), and
/// [`RecordOutcome::Duplicate`] must only follow an event that is stored.
/// Delivery ids are remembered where the events are, in the same
/// transaction, never before: a retry racing the first delivery of an event
/// waits for it there, and stores the event itself if the first failed.
pub trait CallSink: Send + Sync + 'static {
    /// Stores the event for `site`, idempotently per `(event.pbx,
    /// event.pbx_call_id)` and the event, and per delivery id when the PBX
    /// names its deliveries.
    fn record(&self, site: &str, delivery: Option<&Delivery>, event: CallEvent) -> Result<RecordOutcome, SinkError>;
}
