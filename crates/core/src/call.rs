//! A call as the PBX reports it, normalised across PBXs.
//!
//! Every PBX adapter turns its own payload into one [`CallEvent`]. A PBX
//! usually reports one call several times (ringing, answered, ended), and
//! not always in order, so an event carries only what that report knew; the
//! collector folds all events with the same `pbx_call_id` into one call.

use serde::{Deserialize, Serialize};

use crate::phone::PhoneNumber;

/// Where in its life the call was when the PBX reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CallPhase {
    /// The call arrived and is ringing.
    Start,
    /// Someone picked up.
    Answer,
    /// The call is over; the final status is known.
    End,
}

/// The outcome the PBX reported. Missed calls keep the PBX's reason, because
/// managers are measured on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CallStatus {
    /// Still ringing or in progress (a start or answer report).
    InProgress,
    /// Answered and finished normally.
    Answered,
    /// Rang out with nobody picking up.
    NoAnswer,
    Busy,
    /// The caller hung up before anyone answered.
    Canceled,
    /// The PBX could not connect the call.
    Failed,
}

impl CallStatus {
    pub const ALL: [CallStatus; 6] = [
        CallStatus::InProgress,
        CallStatus::Answered,
        CallStatus::NoAnswer,
        CallStatus::Busy,
        CallStatus::Canceled,
        CallStatus::Failed,
    ];

    /// The status named as [`CallStatus::as_str`] writes it.
    pub fn from_name(name: &str) -> Option<CallStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            CallStatus::InProgress => "in-progress",
            CallStatus::Answered => "answered",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Busy => "busy",
            CallStatus::Canceled => "canceled",
            CallStatus::Failed => "failed",
        }
    }

    /// A missed call: over, and nobody talked.
    pub const fn is_missed(self) -> bool {
        matches!(self, CallStatus::NoAnswer | CallStatus::Busy | CallStatus::Canceled | CallStatus::Failed)
    }
}

/// One PBX report about one call. Times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallEvent {
    /// The adapter that received it ("generic", "twilio", "zadarma", …).
    pub pbx: String,
    /// The PBX's own id of the call; events are idempotent per (pbx, id).
    pub pbx_call_id: String,
    pub phase: CallPhase,
    /// The caller as the PBX wrote it; may be anonymous or not a valid number.
    pub from: Option<String>,
    /// The dialled number: the tracking number the visitor saw.
    pub to: PhoneNumber,
    pub started_at_ms: Option<u64>,
    pub answered_at_ms: Option<u64>,
    pub ended_at_ms: Option<u64>,
    /// Whole call length, ringing included.
    pub duration_secs: Option<u32>,
    /// Conversation length, from answer to hang-up.
    pub talk_secs: Option<u32>,
    pub status: CallStatus,
    pub recording_url: Option<String>,
}

/// Why events cannot be folded into one call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    #[error("no events to fold")]
    Empty,
    #[error("events of different calls cannot be folded together ({first} and {other})")]
    MixedCalls { first: String, other: String },
}

/// One call as the collector stores it: every [`CallEvent`] with its
/// `(pbx, pbx_call_id)` folded together. Folding depends only on the set of
/// events, never on their order, because PBXs deliver reports out of order
/// and retry them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub pbx: String,
    pub pbx_call_id: String,
    pub from: Option<String>,
    pub to: PhoneNumber,
    /// The earliest start any report gave.
    pub started_at_ms: Option<u64>,
    /// The earliest answer any report gave.
    pub answered_at_ms: Option<u64>,
    /// The latest end any report gave.
    pub ended_at_ms: Option<u64>,
    pub duration_secs: Option<u32>,
    pub talk_secs: Option<u32>,
    pub status: CallStatus,
    pub recording_url: Option<String>,
}

/// Order of preference between final statuses that two end reports with the
/// same end time disagree on: the one showing more of the call wins, so a
/// retried "answered" is not undone by an early "no-answer".
fn status_rank(s: CallStatus) -> u8 {
    match s {
        CallStatus::Answered => 5,
        CallStatus::Busy => 4,
        CallStatus::NoAnswer => 3,
        CallStatus::Canceled => 2,
        CallStatus::Failed => 1,
        CallStatus::InProgress => 0,
    }
}

/// The smallest of the present values (an order-independent pick).
fn min_some<T: Ord + Clone>(values: impl Iterator<Item = Option<T>>) -> Option<T> {
    values.flatten().min()
}

/// Whole seconds from `from_ms` to `to_ms`, when both are known and in order.
pub fn whole_secs_between(from_ms: Option<u64>, to_ms: Option<u64>) -> Option<u32> {
    let (a, b) = (from_ms?, to_ms?);
    b.checked_sub(a).and_then(|d| u32::try_from(d / 1000).ok())
}

impl Call {
    /// Folds all events of one call, in any order, into the call:
    /// - times: the earliest start and answer, the latest end;
    /// - durations and recording: from end reports first (they are final),
    ///   else from any report; the largest value when reports disagree;
    ///   a length no report gave follows from the folded times (duration
    ///   from start to end; talk time from answer to end, for an answered
    ///   call);
    /// - status: an end report's final status wins (latest end first);
    ///   otherwise a failure any report gave; otherwise answered when an
    ///   answer was seen and the call ended; no-answer when it ended without
    ///   one; in progress while no end report has arrived;
    /// - caller and dialled number: from start reports first.
    ///
    /// Duplicate events change nothing, since every rule is a min, a max or
    /// a preference over the set.
    pub fn fold(events: &[CallEvent]) -> Result<Call, FoldError> {
        let first = events.first().ok_or(FoldError::Empty)?;
        if let Some(other) = events.iter().find(|e| e.pbx != first.pbx || e.pbx_call_id != first.pbx_call_id) {
            return Err(FoldError::MixedCalls {
                first: format!("{}/{}", first.pbx, first.pbx_call_id),
                other: format!("{}/{}", other.pbx, other.pbx_call_id),
            });
        }
        // Reports of the earliest phase describe the caller and the dialled
        // number as they arrived; later reports may be rewritten by transfers.
        let earliest_phase = events.iter().map(|e| e.phase).min().expect("not empty");
        let early = || events.iter().filter(move |e| e.phase == earliest_phase);
        let from =
            min_some(early().map(|e| e.from.clone())).or_else(|| min_some(events.iter().map(|e| e.from.clone())));
        let to = early().map(|e| e.to.clone()).min().expect("not empty");

        let started_at_ms = min_some(events.iter().map(|e| e.started_at_ms));
        let answered_at_ms = min_some(events.iter().map(|e| e.answered_at_ms));
        let ended_at_ms = events.iter().filter_map(|e| e.ended_at_ms).max();

        let ends: Vec<&CallEvent> = events.iter().filter(|e| e.phase == CallPhase::End).collect();
        let final_or_any = |f: &dyn Fn(&CallEvent) -> Option<u32>| {
            ends.iter().filter_map(|e| f(e)).max().or_else(|| events.iter().filter_map(f).max())
        };
        let duration_secs = final_or_any(&|e| e.duration_secs);
        let reported_talk = final_or_any(&|e| e.talk_secs);
        let answered_seen = answered_at_ms.is_some()
            || events.iter().any(|e| e.phase == CallPhase::Answer || e.status == CallStatus::Answered);

        let final_end = ends
            .iter()
            .filter(|e| e.status != CallStatus::InProgress)
            .max_by_key(|e| (e.ended_at_ms, status_rank(e.status)));
        let failure = events.iter().map(|e| e.status).filter(|s| s.is_missed()).max_by_key(|s| status_rank(*s));
        let status = match (final_end, failure) {
            (Some(e), _) => e.status,
            (None, Some(s)) => s,
            (None, None) if ends.is_empty() && ended_at_ms.is_none() => CallStatus::InProgress,
            (None, None) if answered_seen => CallStatus::Answered,
            (None, None) => CallStatus::NoAnswer,
        };
        // Lengths the PBX did not report follow from the times when both ends
        // are known (whole seconds, rounded down, as PBXs count them): the
        // whole call from its start, the conversation from its answer.
        let duration_secs = duration_secs.or_else(|| whole_secs_between(started_at_ms, ended_at_ms));
        let talk_secs = reported_talk.or_else(|| match status {
            CallStatus::Answered => whole_secs_between(answered_at_ms, ended_at_ms),
            _ => None,
        });
        let recording_url = min_some(ends.iter().map(|e| e.recording_url.clone()))
            .or_else(|| min_some(events.iter().map(|e| e.recording_url.clone())));

        Ok(Call {
            pbx: first.pbx.clone(),
            pbx_call_id: first.pbx_call_id.clone(),
            from,
            to,
            started_at_ms,
            answered_at_ms,
            ended_at_ms,
            duration_secs,
            talk_secs,
            status,
            recording_url,
        })
    }

    /// When the phone rang: the start, else the earliest moment the other
    /// times imply: the answer, or the end minus the whole duration (minus
    /// the talk time when only that is known, which gives the answer; the
    /// end itself when neither is). `None` when no report carried a time;
    /// the collector then uses the time it received the first report.
    ///
    /// Attribution looks up who held the number at this moment, so a call
    /// reported only at its end must not be placed at its end: a pool number
    /// may have passed to another visitor while the call went on.
    pub fn ring_at_ms(&self) -> Option<u64> {
        self.started_at_ms.or_else(|| {
            let from_end = self.ended_at_ms.map(|end| {
                let back_secs = self.duration_secs.or(self.talk_secs).unwrap_or(0);
                end.saturating_sub(u64::from(back_secs) * 1000)
            });
            [self.answered_at_ms, from_end].into_iter().flatten().min()
        })
    }

    /// A target call: answered and talked at least `target_secs`. A call
    /// without a known talk time is not a target call: it cannot be shown to be.
    pub fn is_target(&self, target_secs: u32) -> bool {
        self.status == CallStatus::Answered && self.talk_secs.is_some_and(|t| t >= target_secs)
    }

    /// A missed call keeps the PBX's status; this says whether it is one.
    pub fn is_missed(&self) -> bool {
        self.status.is_missed()
    }
}
