//! Call timing as each PBX really sends it, end to end: the sample requests
//! of `examples/webhooks`, signed with each PBX's own scheme, posted over
//! HTTP to the real app with its real call storage, then read back through
//! the admin calls API.
//!
//! Every sample describes one call to +7 495 700-00-01 that rings at
//! 07:00:30Z on 2024-05-01, is answered at 07:00:40Z and ends at 07:13:20Z.
//! The number changes hands while the call goes on: one visitor holds it
//! when it rings, another when it ends. A call must go to the first, whether
//! its PBX reported every step or only the end, and in whatever order the
//! reports arrive.
//!
//! Each test runs on both backends (`name::sqlite`, `name::postgres`).

use std::sync::Arc;

use ringsource_collector::clock::ManualClock;
use serde_json::Value;

use crate::common::{self, Backend, POOL, paid};
use crate::pbx_support::*;

const ADMIN: &str = "admin_token = \"admin-token-for-tests-0123\"";
const TOKEN: &str = "admin-token-for-tests-0123";
/// Hold 60 s, cooldown 600 s: a number leased at 07:00 is free again at 07:11.
const POOL_SETTINGS: &str = "hold_secs = 60\nheartbeat_secs = 10\ncooldown_secs = 600\non_exhaustion = \"original\"";

/// The sample call's moments, in Unix ms.
const RING_MS: i64 = (NOW_SECS + 30) * 1000;
const ANSWER_MS: i64 = (NOW_SECS + 40) * 1000;
const END_MS: i64 = (NOW_SECS + 800) * 1000;

/// The collector with every adapter on, and the dialled number held by
/// `at_ring` from 07:00:00 to 07:01:00 and by `at_end` from 07:11:40.
struct Line {
    h: common::Harness,
    clock: Arc<ManualClock>,
    at_ring: String,
    at_end: String,
}

impl Line {
    /// `None` without PostgreSQL (see [`common::start_on`]).
    fn new(backend: Backend, test: &str) -> Option<Line> {
        let clock = Arc::new(ManualClock::new(NOW_MS));
        let h = common::start_with_clock_on(backend, test, ADMIN, &all_adapters(), POOL_SETTINGS, clock.clone())?;
        // Three visitors take the three pool numbers; the first gets the
        // dialled one. All expire at 07:01 and cool down until 07:11.
        let first = h.visit(None, paid());
        h.visit(None, paid());
        h.visit(None, paid());
        assert_eq!(first["number"], POOL[0]);
        clock.set_ms((NOW_SECS + 700) * 1000);
        let later = h.visit(None, paid());
        assert_eq!(later["number"], POOL[0], "the dialled number passes to the later visitor");
        // The reports reach the collector after the call, late and in any order.
        clock.set_ms(END_MS + 5_000);
        let session = |v: &Value| v["session_id"].as_str().unwrap().to_owned();
        Some(Line { at_ring: session(&first), at_end: session(&later), h, clock })
    }

    fn pbx(&self) -> Pbx<'_> {
        Pbx { client: &self.h.client, origin: self.h.url("") }
    }

    fn now_secs(&self) -> i64 {
        use ringsource_collector::clock::Clock;
        self.clock.now_ms() / 1000
    }

    fn admin(&self, path: &str) -> Value {
        let resp = self.h.client.get(self.h.url(path)).bearer_auth(TOKEN).send().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        resp.json().unwrap()
    }

    /// The stored call with this PBX id, as `GET /v1/calls/{id}` shows it.
    fn call(&self, pbx_call_id: &str) -> Value {
        let list = self.admin("/v1/calls?site=shop&limit=1000");
        let calls = list["calls"].as_array().unwrap();
        let found: Vec<&Value> = calls.iter().filter(|c| c["pbx_call_id"] == pbx_call_id).collect();
        assert_eq!(found.len(), 1, "one call {pbx_call_id} in {list}");
        self.admin(&format!("/v1/calls/{}", found[0]["id"]))
    }

    /// The call went to the visitor who held the number when it rang.
    fn assert_attributed_at_ring(&self, call: &Value) {
        assert_eq!(call["session_id"], self.at_ring.as_str(), "{call}");
        assert_ne!(call["session_id"], self.at_end.as_str());
        assert_eq!(call["confidence"], "high", "{call}");
    }
}

fn recorded(r: &Reply) {
    assert_eq!((r.status, r.body["outcome"].as_str()), (200, Some("recorded")), "{}", r.body);
}

/// (ring, answered, ended) in ms.
type Moments = (i64, Option<i64>, Option<i64>);
/// (duration, talk) in seconds.
type Lengths = (Option<i64>, Option<i64>);

/// A stored call's times, lengths and status.
fn timing(call: &Value) -> (Moments, Lengths, String) {
    (
        (call["ring_at_ms"].as_i64().unwrap(), call["answered_at_ms"].as_i64(), call["ended_at_ms"].as_i64()),
        (call["duration_secs"].as_i64(), call["talk_secs"].as_i64()),
        call["status"].as_str().unwrap().to_owned(),
    )
}

crate::on_both_backends! {
    twilio_final_callback_alone_rings_when_the_call_arrived => twilio_final_callback_alone_rings_when_the_call_arrived_on;
    twilio_progress_callbacks_in_any_order => twilio_progress_callbacks_in_any_order_on;
    zadarma_end_alone_and_with_the_rest => zadarma_end_alone_and_with_the_rest_on;
    mango_summary_alone_and_with_the_call_events => mango_summary_alone_and_with_the_call_events_on;
    freeswitch_cdr_keeps_milliseconds => freeswitch_cdr_keeps_milliseconds_on;
    kamailio_end_alone_and_with_the_rest => kamailio_end_alone_and_with_the_rest_on;
    generic_end_alone_stores_the_lengths_its_times_give => generic_end_alone_stores_the_lengths_its_times_give_on;
    partial_reports_still_make_a_call => partial_reports_still_make_a_call_on;
}

fn twilio_final_callback_alone_rings_when_the_call_arrived_on(backend: Backend) {
    let Some(line) = Line::new(backend, "twilio_final_callback_alone_rings_when_the_call_arrived") else { return };
    let pbx = line.pbx();
    // Twilio's default for a phone number: one `completed` callback, at hang-up.
    let completed = sample("twilio/completed.form");
    recorded(&pbx.twilio(&completed));
    let call = line.call("CA5f0f6d1f3a1e4b8c9d0e1f2a3b4c5d6e");
    // Timestamp 07:13:20 minus CallDuration 770 s: 07:00:30.
    assert_eq!(timing(&call), ((RING_MS, None, Some(END_MS)), (Some(770), Some(770)), "answered".to_owned()));
    line.assert_attributed_at_ring(&call);
    // Twilio retries a callback it saw fail: the same facts, once.
    assert_eq!(pbx.twilio(&completed).body["outcome"], "duplicate");
}

fn twilio_progress_callbacks_in_any_order_on(backend: Backend) {
    let Some(line) = Line::new(backend, "twilio_progress_callbacks_in_any_order") else { return };
    let pbx = line.pbx();
    for file in ["twilio/completed.form", "twilio/ringing.form", "twilio/in-progress.form"] {
        recorded(&pbx.twilio(&sample(file)));
    }
    let call = line.call("CA5f0f6d1f3a1e4b8c9d0e1f2a3b4c5d6e");
    assert_eq!(
        timing(&call),
        ((RING_MS, Some(ANSWER_MS), Some(END_MS)), (Some(770), Some(770)), "answered".to_owned())
    );
    line.assert_attributed_at_ring(&call);
}

fn zadarma_end_alone_and_with_the_rest_on(backend: Backend) {
    let Some(line) = Line::new(backend, "zadarma_end_alone_and_with_the_rest") else { return };
    let pbx = line.pbx();
    recorded(&pbx.zadarma(&sample("zadarma/notify_end.form")));
    let id = "in_2f9c3b0d6a8e4f1c7b5a9d3e1f0c2b4a6d8e0f13";
    let call = line.call(id);
    // call_start 10:00:30 at +03:00; duration counted from it.
    let alone = ((RING_MS, None, Some(END_MS)), (Some(770), None), "answered".to_owned());
    assert_eq!(timing(&call), alone);
    line.assert_attributed_at_ring(&call);
    // NOTIFY_START and NOTIFY_ANSWER say nothing new about the times.
    recorded(&pbx.zadarma(&sample("zadarma/notify_start.form")));
    recorded(&pbx.zadarma(&sample("zadarma/notify_answer.form")));
    let call = line.call(id);
    assert_eq!(timing(&call), alone);
    line.assert_attributed_at_ring(&call);
}

fn mango_summary_alone_and_with_the_call_events_on(backend: Backend) {
    let Some(line) = Line::new(backend, "mango_summary_alone_and_with_the_call_events") else { return };
    let pbx = line.pbx();
    recorded(&pbx.mango("summary", &sample("mango/summary.json")));
    let id = "MTAxNjAyMjQ6MTcxNDU0NjgzMA==";
    let full = ((RING_MS, Some(ANSWER_MS), Some(END_MS)), (Some(770), Some(760)), "answered".to_owned());
    let call = line.call(id);
    assert_eq!(timing(&call), full);
    line.assert_attributed_at_ring(&call);
    // The legs as Mango posts them: the voice menu, the operator ringing and
    // answering, the operator's leg ending (a leg's end, not the call's).
    for file in ["mango/call-appeared-ivr.json", "mango/call-appeared-abonent.json", "mango/call-connected.json"] {
        recorded(&pbx.mango("call", &sample(file)));
    }
    assert_eq!(pbx.mango("call", &sample("mango/call-disconnected.json")).body["outcome"], "ignored");
    let call = line.call(id);
    assert_eq!(timing(&call), full);
    line.assert_attributed_at_ring(&call);
}

fn freeswitch_cdr_keeps_milliseconds_on(backend: Backend) {
    let Some(line) = Line::new(backend, "freeswitch_cdr_keeps_milliseconds") else { return };
    recorded(&line.pbx().freeswitch(&sample("freeswitch/cdr.json")));
    let call = line.call("b7e4f2a0-3c1d-4e5f-8a9b-0c1d2e3f4a5b");
    // start_uepoch 1714546830250113 and so on, to the nearest millisecond;
    // duration and billsec as FreeSWITCH counted them.
    assert_eq!(
        timing(&call),
        ((RING_MS + 250, Some(ANSWER_MS + 731), Some(END_MS + 403)), (Some(770), Some(760)), "answered".to_owned())
    );
    line.assert_attributed_at_ring(&call);
}

fn kamailio_end_alone_and_with_the_rest_on(backend: Backend) {
    let Some(line) = Line::new(backend, "kamailio_end_alone_and_with_the_rest") else { return };
    let pbx = line.pbx();
    recorded(&pbx.kamailio(&sample("kamailio/end.json")));
    let id = "a84b4c76e66710@127.0.0.1";
    // $TV(Sn) times to the nearest millisecond; lengths in whole seconds,
    // rounded down (770.153 s and 759.672 s).
    let full =
        ((RING_MS + 250, Some(ANSWER_MS + 731), Some(END_MS + 403)), (Some(770), Some(759)), "answered".to_owned());
    let call = line.call(id);
    assert_eq!(timing(&call), full);
    line.assert_attributed_at_ring(&call);
    recorded(&pbx.kamailio(&sample("kamailio/start.json")));
    recorded(&pbx.kamailio(&sample("kamailio/answer.json")));
    let call = line.call(id);
    assert_eq!(timing(&call), full);
}

fn generic_end_alone_stores_the_lengths_its_times_give_on(backend: Backend) {
    let Some(line) = Line::new(backend, "generic_end_alone_stores_the_lengths_its_times_give") else { return };
    let pbx = line.pbx();
    let now = line.now_secs();
    recorded(&pbx.generic("msg_end", now, &sample("generic/end.json")));
    let call = line.call("gen-7f3e9a21");
    // No duration or talk_time sent: 770.152 s and 759.671 s, rounded down.
    let full =
        ((RING_MS + 250, Some(ANSWER_MS + 731), Some(END_MS + 402)), (Some(770), Some(759)), "answered".to_owned());
    assert_eq!(timing(&call), full);
    line.assert_attributed_at_ring(&call);
    recorded(&pbx.generic("msg_start", now, &sample("generic/start.json")));
    recorded(&pbx.generic("msg_answer", now, &sample("generic/answer.json")));
    assert_eq!(timing(&line.call("gen-7f3e9a21")), full);
}

fn partial_reports_still_make_a_call_on(backend: Backend) {
    let Some(line) = Line::new(backend, "partial_reports_still_make_a_call") else { return };
    let pbx = line.pbx();
    // A Twilio callback with no times at all, to a number the site does not
    // know: stored, unattributed, with the reason; rung when first heard.
    let bare = without_field(&without_field(&sample("twilio/completed.form"), "Timestamp"), "CallDuration");
    let bare = with_field(&with_field(&bare, "To", "+74957000077"), "CallSid", "CA00000000000000000000000000000077");
    recorded(&pbx.twilio(&bare));
    let call = line.call("CA00000000000000000000000000000077");
    assert_eq!(call["ring_at_ms"], END_MS + 5_000, "{call}");
    assert_eq!((call["session_id"].as_str(), call["confidence"].as_str()), (None, Some("none")), "{call}");
    assert!(!call["reason"].as_str().unwrap().is_empty(), "{call}");
    // A Zadarma end whose duration is missing: the ring time is still known.
    let no_duration = without_field(&sample("zadarma/notify_end.form"), "duration");
    recorded(&pbx.zadarma(&no_duration));
    let call = line.call("in_2f9c3b0d6a8e4f1c7b5a9d3e1f0c2b4a6d8e0f13");
    assert_eq!(timing(&call), ((RING_MS, None, None), (None, None), "answered".to_owned()));
    line.assert_attributed_at_ring(&call);
}
