//! Personal data: retention, erasure and export of one caller's data, and
//! the masking of caller numbers in logs.
//!
//! [`PrivacyService`] turns each site's `[sites.retention]` into cutoffs and
//! a typed-in phone number into the caller key calls are stored under; the
//! SQL is the storage layer's ([`crate::storage::privacy`], which lists every
//! personal field the schema holds and what becomes of it). Retention runs
//! on its own in `ringsource serve` ([`start`]) and on demand
//! (`ringsource retention`); erasure and export are `ringsource erase` /
//! `export` and the admin routes in [`api`].

pub use crate::mask::{Masked, mask_phone};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ringsource_core::phone::{PhoneError, PhoneNumber, Region};
use serde::Serialize;

use crate::clock::Clock;
use crate::config::Site;
use crate::storage::StorageError;
pub use crate::storage::privacy::SubjectExport;
use crate::storage::privacy::{Erased, PrivacyStore, RetentionCutoffs, RetentionReport, Subject};

const DAY_MS: i64 = 86_400_000;

/// Why a privacy request failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("no site {0:?} is configured")]
    UnknownSite(String),
    #[error("phone: {message}")]
    BadPhone { message: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What `erase` answers: the number it was given (masked) and what went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Erasure {
    pub site: String,
    /// The caller, all but its last two digits masked: the answer is not
    /// one more copy of the number.
    pub phone: String,
    pub removed: Erased,
}

/// Reads a number as a person or a CRM writes it, in the site's region
/// (`8 916 123-45-67` in RU), or international (`+7 916 …`, or its digits
/// without the `+`, as PBXs send them); the same rules the PBX adapters
/// read callers with, so it meets the stored caller key.
pub fn parse_phone(text: &str, region: Option<Region>) -> Result<PhoneNumber, PrivacyError> {
    let text = text.trim();
    let first = match region {
        Some(r) => PhoneNumber::parse_national(text, r),
        None => PhoneNumber::parse(text),
    };
    first
        .or_else(|e: PhoneError| {
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                PhoneNumber::parse(&format!("+{text}")).map_err(|_| e)
            } else {
                Err(e)
            }
        })
        .map_err(|e| PrivacyError::BadPhone {
            message: match region {
                Some(r) => format!("{} (read in region {r}, or with a leading +)", e.message()),
                None => format!("{} (this site has no region: write it with its country code)", e.message()),
            },
        })
}

/// Retention, erasure and export over every configured site.
pub struct PrivacyService {
    store: Arc<dyn PrivacyStore>,
    sites: HashMap<String, Arc<Site>>,
    /// The configuration's order, for runs and logs.
    order: Vec<String>,
    clock: Arc<dyn Clock>,
}

impl PrivacyService {
    pub fn new(store: Arc<dyn PrivacyStore>, sites: &[Site], clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            sites: sites.iter().map(|s| (s.id.clone(), Arc::new(s.clone()))).collect(),
            order: sites.iter().map(|s| s.id.clone()).collect(),
            clock,
        }
    }

    pub fn site(&self, id: &str) -> Result<&Arc<Site>, PrivacyError> {
        self.sites.get(id).ok_or_else(|| PrivacyError::UnknownSite(id.to_owned()))
    }

    pub fn site_ids(&self) -> &[String] {
        &self.order
    }

    /// The caller of `site` that `phone` names.
    pub fn subject(&self, site: &str, phone: &str) -> Result<Subject, PrivacyError> {
        let site = self.site(site)?;
        let number = parse_phone(phone, site.region)?;
        Ok(Subject { site: site.id.clone(), caller_key: number.e164() })
    }

    /// Removes everything tied to the caller on the site.
    pub fn erase(&self, site: &str, phone: &str) -> Result<Erasure, PrivacyError> {
        let subject = self.subject(site, phone)?;
        let removed = self.store.erase(&subject)?;
        Ok(Erasure { site: subject.site, phone: mask_phone(&subject.caller_key), removed })
    }

    /// Everything the site holds about the caller.
    pub fn export(&self, site: &str, phone: &str) -> Result<SubjectExport, PrivacyError> {
        let subject = self.subject(site, phone)?;
        Ok(self.store.export(&subject)?)
    }

    /// One retention pass over one site.
    pub fn apply_retention(&self, site: &str) -> Result<RetentionReport, PrivacyError> {
        let cutoffs = cutoffs(self.site(site)?, self.clock.now_ms());
        Ok(self.store.apply_retention(&cutoffs, self.clock.as_ref())?)
    }

    /// One retention pass over every site, each logged when it removed
    /// anything. A site that fails is logged and the others still run.
    pub fn retention_pass(&self) -> Vec<Result<RetentionReport, PrivacyError>> {
        self.order
            .iter()
            .map(|site| {
                let result = self.apply_retention(site);
                match &result {
                    Ok(report) if !report.is_empty() => tracing::info!(site, "{}", retention_line(report)),
                    Ok(_) => tracing::debug!(site, "retention: nothing was due"),
                    Err(e) => tracing::error!(site, error = %e, "retention pass failed"),
                }
                result
            })
            .collect()
    }
}

/// The instants before which each kind of the site's data is due, `now_ms`
/// being the time of the pass.
pub fn cutoffs(site: &Site, now_ms: i64) -> RetentionCutoffs {
    let r = &site.retention;
    let ago = |days: u32| now_ms.saturating_sub(i64::from(days) * DAY_MS);
    let session_rows_before_ms = ago(r.visits_days);
    // A session's lease runs up to a hold past its last visit, and its promo
    // code stays reserved for hold_days: it goes once those are over too,
    // so a caller reading out a code still finds its session.
    let longest_hold_ms = site.pools.iter().map(|p| i64::from(p.hold_secs) * 1000).max().unwrap_or(0);
    let promo_hold_ms = site.promo.as_ref().map_or(0, |p| i64::from(p.hold_days) * DAY_MS);
    RetentionCutoffs {
        site: site.id.clone(),
        sessions_before_ms: session_rows_before_ms.saturating_sub(longest_hold_ms.max(promo_hold_ms)),
        session_rows_before_ms,
        page_views_before_ms: ago(r.page_views_days),
        user_agents_before_ms: ago(r.user_agent_days),
        callers_before_ms: r.caller_days.map(ago),
        exports_before_ms: ago(r.exports_days),
    }
}

/// `retention: site "shop": removed 12 visits (…)`: what one pass did.
pub fn retention_line(r: &RetentionReport) -> String {
    format!(
        "retention: site {:?}: removed {} visits ({} touches, {} page views in all, {} leases, {} promo codes), {} \
         rows of pool counts, {} delivered exports; emptied {} user agents; masked {} callers",
        r.site,
        r.sessions,
        r.touches,
        r.page_views,
        r.leases,
        r.promo_codes,
        r.pool_counts,
        r.exports,
        r.user_agents_reduced,
        r.callers_masked
    )
}

/// Runs a retention pass every `every` on the current runtime (the server's), until
/// the runtime stops; each pass runs on the blocking pool. The first waits
/// one interval too: a collector that is starting has enough to do, and
/// `ringsource retention` is there for a pass now.
pub fn start(service: Arc<PrivacyService>, every: Duration) {
    tokio::task::spawn_local(async move {
        loop {
            tokio::time::sleep(every).await;
            let s = Arc::clone(&service);
            if let Err(e) = tokio::task::spawn_blocking(move || s.retention_pass()).await {
                tracing::error!(error = %e, "retention: the blocking pool failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_read_in_the_sites_region() {
        let ru = Some("RU".parse().unwrap());
        assert_eq!(parse_phone("8 (916) 123-45-67", ru).unwrap().e164(), "+79161234567");
        assert_eq!(parse_phone("79161234567", ru).unwrap().e164(), "+79161234567");
        assert_eq!(parse_phone("+1 202 555 0123", ru).unwrap().e164(), "+12025550123");
        let err = parse_phone("8 (916) 123", ru).unwrap_err().to_string();
        assert!(err.starts_with("phone: "), "{err}");
        assert!(err.contains("region RU"), "{err}");
        let err = parse_phone("8 916 123-45-67", None).unwrap_err().to_string();
        assert!(err.contains("country code"), "{err}");
        assert!(parse_phone("call me", ru).is_err());
    }
}
