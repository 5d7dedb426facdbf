//! Attribution: which session made the phone ring, how sure we are, and how
//! the call's credit is split across the visitor's touches.
//!
//! Three steps, each a pure function the collector feeds from its tables:
//! 1. [`match_call`]: given the dialled number's role and its leases, the
//!    ring time, a grace window and what the manager or the caller's history
//!    says, choose the session (or the static source), list every candidate,
//!    and give a [`Confidence`] with a reason in words. A call that matches
//!    nothing is still a result ([`Chosen::Nobody`]), never an error: a call
//!    is never rejected.
//! 2. [`caller_kind`]: first-time or repeat caller within the site's
//!    uniqueness window.
//! 3. [`credit`]: the visitor's touch path split by the site's [`Model`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::touch::Touch;

/// How a call's credit is split across the visitor's touches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Model {
    /// All credit to the visitor's first touch.
    FirstTouch,
    /// All credit to the last non-direct touch (a direct return visit does
    /// not take the credit from the campaign that brought the visitor).
    #[default]
    LastTouch,
    /// Credit split evenly across all distinct touches.
    Linear,
}

impl Model {
    pub const ALL: [Model; 3] = [Model::FirstTouch, Model::LastTouch, Model::Linear];

    pub const fn as_str(self) -> &'static str {
        match self {
            Model::FirstTouch => "first-touch",
            Model::LastTouch => "last-touch",
            Model::Linear => "linear",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown attribution model {0:?} (expected \"first-touch\", \"last-touch\" or \"linear\")")]
pub struct UnknownModel(pub String);

impl FromStr for Model {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Model::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| UnknownModel(s.to_owned()))
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How sure the attribution is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Confidence {
    /// Nothing matched: the call is unattributed.
    None,
    /// A heuristic: the same caller's earlier call.
    Low,
    /// The lease had ended, but within the grace window.
    Medium,
    /// A live lease at ring time, a static number, or a promo code the
    /// manager named.
    High,
}

impl Confidence {
    pub const fn as_str(self) -> &'static str {
        match self {
            Confidence::None => "none",
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }

    pub fn from_name(name: &str) -> Option<Confidence> {
        [Confidence::None, Confidence::Low, Confidence::Medium, Confidence::High]
            .into_iter()
            .find(|c| c.as_str() == name)
    }
}

/// One lease on the dialled number: who held it and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenure {
    pub session_id: String,
    pub started_at_ms: i64,
    /// When the session stopped holding the number: the lease's end if it
    /// ended early (released, taken over, handed over), else its expiry.
    pub held_until_ms: i64,
}

/// What the dialled number is to the site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialled<'a> {
    /// A pool number, with its leases (any order).
    Pool { pool_id: &'a str, tenures: &'a [Tenure] },
    /// A static number: the number itself names the source.
    Static { label: &'a str },
    /// The overflow number shown when a pool was exhausted.
    Overflow,
    /// One of the site's own numbers.
    Original,
    /// Not a number of this site at all.
    Unknown,
}

impl Dialled<'_> {
    pub const fn kind(&self) -> DialledKind {
        match self {
            Dialled::Pool { .. } => DialledKind::Pool,
            Dialled::Static { .. } => DialledKind::Static,
            Dialled::Overflow => DialledKind::Overflow,
            Dialled::Original => DialledKind::Original,
            Dialled::Unknown => DialledKind::Unknown,
        }
    }
}

/// What kind of number a call dialled, without the number's details: what
/// a stored call keeps of [`Dialled`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DialledKind {
    Pool,
    Static,
    Overflow,
    Original,
    Unknown,
}

impl DialledKind {
    pub const ALL: [DialledKind; 5] =
        [DialledKind::Pool, DialledKind::Static, DialledKind::Overflow, DialledKind::Original, DialledKind::Unknown];

    pub const fn as_str(self) -> &'static str {
        match self {
            DialledKind::Pool => "pool",
            DialledKind::Static => "static",
            DialledKind::Overflow => "overflow",
            DialledKind::Original => "original",
            DialledKind::Unknown => "unknown",
        }
    }

    pub fn from_name(name: &str) -> Option<DialledKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Everything [`match_call`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub ring_at_ms: i64,
    pub dialled: Dialled<'a>,
    /// A caller who dials within this long after the lease ended still counts.
    pub grace_ms: i64,
    /// A promo code the manager named, and the session it was issued to.
    pub promo: Option<(&'a str, &'a str)>,
    /// The session this caller's latest earlier call was attributed to (with
    /// high or medium confidence) within the uniqueness window, if any.
    pub caller_prior: Option<&'a str>,
}

/// Why a session is a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Relation {
    /// It held the number at ring time.
    Live,
    /// Its lease ended within the grace window before ring time.
    Grace,
    /// Its lease ended before the grace window: the number's last holder.
    Expired,
    /// The manager named its promo code.
    Promo,
    /// The same caller's earlier call went to it.
    CallerHistory,
}

impl Relation {
    pub const ALL: [Relation; 5] =
        [Relation::Live, Relation::Grace, Relation::Expired, Relation::Promo, Relation::CallerHistory];

    pub const fn as_str(self) -> &'static str {
        match self {
            Relation::Live => "live",
            Relation::Grace => "grace",
            Relation::Expired => "expired",
            Relation::Promo => "promo",
            Relation::CallerHistory => "caller-history",
        }
    }

    pub fn from_name(name: &str) -> Option<Relation> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// A session that might have made the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub session_id: String,
    pub relation: Relation,
    /// The lease's span, for lease candidates.
    pub held_from_ms: Option<i64>,
    pub held_until_ms: Option<i64>,
}

/// Who the call is attributed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chosen {
    Session(String),
    /// A static number's source (its label).
    Static(String),
    /// Unattributed.
    Nobody,
}

/// The outcome of [`match_call`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    pub candidates: Vec<Candidate>,
    pub chosen: Chosen,
    pub confidence: Confidence,
    pub reason: String,
}

impl Match {
    pub fn session_id(&self) -> Option<&str> {
        match &self.chosen {
            Chosen::Session(s) => Some(s),
            _ => None,
        }
    }
}

/// The reason stored when the manager names a promo code.
pub const PROMO_REASON: &str = "promo code named by the manager";

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// Finds who made the call. Order of precedence:
/// 1. a promo code the manager named (high): a person asked the caller;
/// 2. a static number (high): the number is the source;
/// 3. a pool lease live at ring time (high);
/// 4. a pool lease that ended within the grace window (medium; the latest
///    ended wins): the visitor read the number and dialled a little later;
/// 5. the caller's earlier attributed call (low);
/// 6. nobody (none), with the reason.
///
/// A lease is live from its start (inclusive) to `held_until_ms`
/// (exclusive), the same rule as [`crate::lease::is_live`]. Leases that
/// start after ring time are never candidates. When two leases are live at
/// once (which the collector's invariant forbids) the latest started wins.
pub fn match_call(f: &Facts<'_>) -> Match {
    let mut candidates = Vec::new();
    let mut live: Option<&Tenure> = None;
    let mut grace: Option<&Tenure> = None;
    let mut expired: Option<&Tenure> = None;
    if let Dialled::Pool { tenures, .. } = f.dialled {
        for t in tenures.iter().filter(|t| t.started_at_ms <= f.ring_at_ms) {
            if f.ring_at_ms < t.held_until_ms {
                if live.is_none_or(|l| t.started_at_ms > l.started_at_ms) {
                    live = Some(t);
                }
            } else if f.ring_at_ms - t.held_until_ms < f.grace_ms {
                if grace.is_none_or(|g| t.held_until_ms > g.held_until_ms) {
                    grace = Some(t);
                }
            } else if expired.is_none_or(|e| t.held_until_ms > e.held_until_ms) {
                expired = Some(t);
            }
        }
        let mut lease_candidates: Vec<(&Tenure, Relation)> = tenures
            .iter()
            .filter(|t| t.started_at_ms <= f.ring_at_ms)
            .filter_map(|t| {
                if f.ring_at_ms < t.held_until_ms {
                    Some((t, Relation::Live))
                } else if f.ring_at_ms - t.held_until_ms < f.grace_ms {
                    Some((t, Relation::Grace))
                } else {
                    None
                }
            })
            .collect();
        // The number's last holder before the grace window is listed only
        // when nobody is closer: it explains an unattributed call.
        if lease_candidates.is_empty()
            && let Some(e) = expired
        {
            lease_candidates.push((e, Relation::Expired));
        }
        lease_candidates.sort_by_key(|(t, _)| (std::cmp::Reverse(t.held_until_ms), t.session_id.clone()));
        candidates.extend(lease_candidates.into_iter().map(|(t, relation)| Candidate {
            session_id: t.session_id.clone(),
            relation,
            held_from_ms: Some(t.started_at_ms),
            held_until_ms: Some(t.held_until_ms),
        }));
    }
    if let Some(prior) = f.caller_prior
        && !candidates.iter().any(|c| c.session_id == prior)
    {
        candidates.push(Candidate {
            session_id: prior.to_owned(),
            relation: Relation::CallerHistory,
            held_from_ms: None,
            held_until_ms: None,
        });
    }
    if let Some((code, session)) = f.promo {
        candidates.insert(
            0,
            Candidate {
                session_id: session.to_owned(),
                relation: Relation::Promo,
                held_from_ms: None,
                held_until_ms: None,
            },
        );
        return Match {
            candidates,
            chosen: Chosen::Session(session.to_owned()),
            confidence: Confidence::High,
            reason: format!("{PROMO_REASON} ({code})"),
        };
    }

    let session = |s: &str, confidence, reason: String, candidates| Match {
        candidates,
        chosen: Chosen::Session(s.to_owned()),
        confidence,
        reason,
    };
    let by_history = |candidates: Vec<Candidate>, why: &str| match f.caller_prior {
        Some(prior) => session(
            prior,
            Confidence::Low,
            format!("{why}; the same caller's earlier call was attributed to this session"),
            candidates,
        ),
        None => Match { candidates, chosen: Chosen::Nobody, confidence: Confidence::None, reason: why.to_owned() },
    };
    match f.dialled {
        Dialled::Static { label } => Match {
            candidates,
            chosen: Chosen::Static(label.to_owned()),
            confidence: Confidence::High,
            reason: format!("static number of {label}"),
        },
        Dialled::Pool { pool_id, .. } => {
            if let Some(t) = live {
                let why = format!(
                    "held number of pool {pool_id} at ring time (lease from {} s before the call)",
                    secs(f.ring_at_ms - t.started_at_ms)
                );
                session(&t.session_id, Confidence::High, why, candidates)
            } else if let Some(t) = grace {
                let why = format!(
                    "lease on the pool {pool_id} number ended {} s before the call, within the {} s grace window",
                    secs(f.ring_at_ms - t.held_until_ms),
                    secs(f.grace_ms)
                );
                session(&t.session_id, Confidence::Medium, why, candidates)
            } else if let Some(t) = expired {
                let why = format!(
                    "no session held the pool {pool_id} number at ring time; its last lease ended {} s before the call, beyond the {} s grace window",
                    secs(f.ring_at_ms - t.held_until_ms),
                    secs(f.grace_ms)
                );
                by_history(candidates, &why)
            } else {
                by_history(candidates, &format!("the pool {pool_id} number had never been leased before the call"))
            }
        }
        Dialled::Overflow => by_history(
            candidates,
            "the overflow number was dialled: a visitor of an exhausted pool, not told apart from the others",
        ),
        Dialled::Original => {
            by_history(candidates, "one of the site's own numbers was dialled: no tracking number was involved")
        }
        Dialled::Unknown => by_history(candidates, "the dialled number is not one of the site's numbers"),
    }
}

/// Whether the caller called before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CallerKind {
    /// No call from this number within the uniqueness window before this one.
    FirstTime,
    /// This number called within the window before.
    Repeat,
    /// The PBX gave no usable caller number, so it cannot be told.
    Anonymous,
}

impl CallerKind {
    pub const ALL: [CallerKind; 3] = [CallerKind::FirstTime, CallerKind::Repeat, CallerKind::Anonymous];

    pub const fn as_str(self) -> &'static str {
        match self {
            CallerKind::FirstTime => "first-time",
            CallerKind::Repeat => "repeat",
            CallerKind::Anonymous => "anonymous",
        }
    }

    pub fn from_name(name: &str) -> Option<CallerKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// First-time or repeat: a repeat caller called at most `window_days` before
/// `ring_at_ms`. `earlier` holds the ring times of the same caller's calls
/// that come before this one (the collector orders calls by ring time, then
/// by id, so two calls ringing in the same millisecond are still ordered).
pub fn caller_kind(
    known_caller: bool,
    ring_at_ms: i64,
    earlier: impl IntoIterator<Item = i64>,
    window_days: u32,
) -> CallerKind {
    if !known_caller {
        return CallerKind::Anonymous;
    }
    let window_ms = i64::from(window_days) * 86_400_000;
    if earlier.into_iter().any(|t| t <= ring_at_ms && ring_at_ms - t <= window_ms) {
        CallerKind::Repeat
    } else {
        CallerKind::FirstTime
    }
}

/// A share of one call's credit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Credit {
    /// Index into the path given to [`credit`].
    pub touch: usize,
    /// 0 < share <= 1; the shares of one call sum to 1.
    pub share: f64,
}

/// Two records of one visit: the collector stores a session's touch again
/// on every page load, and the browser's first touch may repeat a last one.
fn same_visit(a: &Touch, b: &Touch) -> bool {
    a.at_ms == b.at_ms
        && a.channel == b.channel
        && a.source == b.source
        && a.medium == b.medium
        && a.campaign == b.campaign
        && a.term == b.term
        && a.content == b.content
        && a.landing_path == b.landing_path
}

/// The visitor's touch path: oldest first, each visit once.
pub fn path(mut touches: Vec<Touch>) -> Vec<Touch> {
    touches.sort_by_key(|t| t.at_ms);
    let mut out: Vec<Touch> = Vec::with_capacity(touches.len());
    for t in touches {
        if !out.iter().rev().take_while(|o| o.at_ms == t.at_ms).any(|o| same_visit(o, &t)) {
            out.push(t);
        }
    }
    out
}

/// Splits one call's credit over `path` (oldest first, as [`path`] returns
/// it). An empty path gets no credit; the caller books the call as
/// unattributed (or to its static source) instead.
pub fn credit(model: Model, path: &[Touch]) -> Vec<Credit> {
    if path.is_empty() {
        return Vec::new();
    }
    match model {
        Model::FirstTouch => vec![Credit { touch: 0, share: 1.0 }],
        Model::LastTouch => {
            let i = path.iter().rposition(|t| !t.is_direct()).unwrap_or(path.len() - 1);
            vec![Credit { touch: i, share: 1.0 }]
        }
        Model::Linear => {
            let n = path.len();
            let each = 1.0 / n as f64;
            // The last share takes the rounding remainder, so the shares of
            // one call add up to exactly one call in the reports.
            let rest = 1.0 - each * (n - 1) as f64;
            (0..n).map(|i| Credit { touch: i, share: if i + 1 == n { rest } else { each } }).collect()
        }
    }
}
