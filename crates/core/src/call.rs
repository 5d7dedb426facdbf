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
