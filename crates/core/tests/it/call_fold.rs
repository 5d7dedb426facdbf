//! Folding a call's PBX reports: any order, duplicates, missing reports.

use proptest::prelude::*;
use ringsource_core::call::{Call, CallEvent, CallPhase, CallStatus, FoldError};
use ringsource_core::phone::PhoneNumber;

const T: u64 = 1_800_000_000_000;

fn ev(phase: CallPhase, status: CallStatus) -> CallEvent {
    CallEvent {
        pbx: "generic".into(),
        pbx_call_id: "c1".into(),
        phase,
        from: Some("+79161234567".into()),
        to: PhoneNumber::parse("+74957000001").unwrap(),
        started_at_ms: None,
        answered_at_ms: None,
        ended_at_ms: None,
        duration_secs: None,
        talk_secs: None,
        status,
        recording_url: None,
    }
}

fn full_call() -> Vec<CallEvent> {
    let start = CallEvent { started_at_ms: Some(T), ..ev(CallPhase::Start, CallStatus::InProgress) };
    let answer = CallEvent {
        started_at_ms: Some(T),
        answered_at_ms: Some(T + 5_000),
        ..ev(CallPhase::Answer, CallStatus::InProgress)
    };
    let end = CallEvent {
        started_at_ms: Some(T),
        answered_at_ms: Some(T + 5_000),
        ended_at_ms: Some(T + 65_000),
        duration_secs: Some(65),
        talk_secs: Some(60),
        recording_url: Some("https://pbx.example/r/c1.mp3".into()),
        ..ev(CallPhase::End, CallStatus::Answered)
    };
    vec![start, answer, end]
}

#[test]
fn a_full_call_folds_to_its_final_state() {
    let call = Call::fold(&full_call()).unwrap();
    assert_eq!(call.status, CallStatus::Answered);
    assert_eq!(
        (call.started_at_ms, call.answered_at_ms, call.ended_at_ms),
        (Some(T), Some(T + 5_000), Some(T + 65_000))
    );
    assert_eq!((call.duration_secs, call.talk_secs), (Some(65), Some(60)));
    assert_eq!(call.recording_url.as_deref(), Some("https://pbx.example/r/c1.mp3"));
    assert_eq!(call.ring_at_ms(), Some(T));
    assert!(call.is_target(30));
    assert!(call.is_target(60));
    assert!(!call.is_target(61));
    assert!(!call.is_missed());
}

#[test]
fn end_before_start_makes_the_same_call() {
    let mut events = full_call();
    events.reverse();
    assert_eq!(Call::fold(&events).unwrap(), Call::fold(&full_call()).unwrap());
}

#[test]
fn duplicates_change_nothing() {
    let mut events = full_call();
    events.extend(full_call());
    assert_eq!(Call::fold(&events).unwrap(), Call::fold(&full_call()).unwrap());
}

#[test]
fn missed_calls_keep_the_pbx_status() {
    let start = CallEvent { started_at_ms: Some(T), ..ev(CallPhase::Start, CallStatus::InProgress) };
    let end =
        CallEvent { ended_at_ms: Some(T + 20_000), duration_secs: Some(20), ..ev(CallPhase::End, CallStatus::Busy) };
    let call = Call::fold(&[end, start]).unwrap();
    assert_eq!(call.status, CallStatus::Busy);
    assert!(call.is_missed());
    assert!(!call.is_target(1));
}

#[test]
fn without_an_end_report_the_call_is_in_progress() {
    let events = &full_call()[..2];
    let call = Call::fold(events).unwrap();
    assert_eq!(call.status, CallStatus::InProgress);
    assert!(!call.is_target(1), "talk time is not known yet");
}

#[test]
fn talk_time_follows_from_answer_and_end_when_not_reported() {
    let end = CallEvent {
        started_at_ms: Some(T),
        answered_at_ms: Some(T + 3_000),
        ended_at_ms: Some(T + 48_500),
        ..ev(CallPhase::End, CallStatus::InProgress)
    };
    // An end report whose status is not final: answered because an answer was seen.
    let call = Call::fold(&[end]).unwrap();
    assert_eq!(call.status, CallStatus::Answered);
    assert_eq!(call.talk_secs, Some(45));
    assert!(call.is_target(45));
}

#[test]
fn an_end_without_answer_is_a_no_answer_and_ring_time_falls_back() {
    let end = CallEvent {
        ended_at_ms: Some(T + 30_000),
        duration_secs: Some(30),
        ..ev(CallPhase::End, CallStatus::InProgress)
    };
    let call = Call::fold(&[end]).unwrap();
    assert_eq!(call.status, CallStatus::NoAnswer);
    assert_eq!(call.ring_at_ms(), Some(T), "end minus the whole duration");
    let bare = ev(CallPhase::Start, CallStatus::InProgress);
    assert_eq!(Call::fold(&[bare]).unwrap().ring_at_ms(), None);
}

#[test]
fn a_call_reported_only_at_its_end_rings_at_its_start() {
    // The end report alone, with the length of the whole call: the ring is
    // that long before the end, not at the end.
    let end = CallEvent {
        ended_at_ms: Some(T + 600_000),
        duration_secs: Some(590),
        talk_secs: Some(580),
        ..ev(CallPhase::End, CallStatus::Answered)
    };
    assert_eq!(Call::fold(std::slice::from_ref(&end)).unwrap().ring_at_ms(), Some(T + 10_000));
    // Only the talk time: the answer is the nearest moment known.
    let talk_only = CallEvent { duration_secs: None, ..end.clone() };
    assert_eq!(Call::fold(&[talk_only]).unwrap().ring_at_ms(), Some(T + 20_000));
    // An answer time earlier than what the lengths imply wins.
    let answered = CallEvent { answered_at_ms: Some(T + 5_000), ..end };
    assert_eq!(Call::fold(&[answered]).unwrap().ring_at_ms(), Some(T + 5_000));
}

#[test]
fn lengths_follow_from_the_folded_times_of_several_reports() {
    let start = CallEvent { started_at_ms: Some(T), ..ev(CallPhase::Start, CallStatus::InProgress) };
    let answer = CallEvent { answered_at_ms: Some(T + 7_250), ..ev(CallPhase::Answer, CallStatus::InProgress) };
    let end = CallEvent { ended_at_ms: Some(T + 67_900), ..ev(CallPhase::End, CallStatus::Answered) };
    let call = Call::fold(&[end.clone(), answer, start.clone()]).unwrap();
    // Whole seconds, rounded down: 67.9 s of call, 60.65 s of talk.
    assert_eq!((call.duration_secs, call.talk_secs), (Some(67), Some(60)));
    // A missed call has a duration and no talk time.
    let missed = CallEvent { status: CallStatus::NoAnswer, ..end };
    let call = Call::fold(&[start, missed]).unwrap();
    assert_eq!((call.duration_secs, call.talk_secs), (Some(67), None));
    // Reported lengths are kept as reported.
    let reported = CallEvent {
        started_at_ms: Some(T),
        ended_at_ms: Some(T + 67_900),
        duration_secs: Some(70),
        ..ev(CallPhase::End, CallStatus::Busy)
    };
    assert_eq!(Call::fold(&[reported]).unwrap().duration_secs, Some(70));
}

#[test]
fn the_latest_final_end_wins() {
    let early = CallEvent { ended_at_ms: Some(T + 10_000), ..ev(CallPhase::End, CallStatus::NoAnswer) };
    let late =
        CallEvent { ended_at_ms: Some(T + 90_000), talk_secs: Some(70), ..ev(CallPhase::End, CallStatus::Answered) };
    assert_eq!(Call::fold(&[late.clone(), early.clone()]).unwrap().status, CallStatus::Answered);
    assert_eq!(Call::fold(&[early, late]).unwrap().status, CallStatus::Answered);
}

#[test]
fn folding_refuses_empty_and_mixed_input() {
    assert_eq!(Call::fold(&[]), Err(FoldError::Empty));
    let mut other = ev(CallPhase::End, CallStatus::Answered);
    other.pbx_call_id = "c2".into();
    assert!(matches!(
        Call::fold(&[ev(CallPhase::Start, CallStatus::InProgress), other]),
        Err(FoldError::MixedCalls { .. })
    ));
}

fn arb_event() -> impl Strategy<Value = CallEvent> {
    let phase = prop_oneof![Just(CallPhase::Start), Just(CallPhase::Answer), Just(CallPhase::End)];
    let status = proptest::sample::select(CallStatus::ALL.to_vec());
    let t = proptest::option::of(0u64..100_000);
    let secs = proptest::option::of(0u32..500);
    let from = proptest::option::of(prop_oneof![Just("+79161234567".to_owned()), Just("anonymous".to_owned())]);
    let url = proptest::option::of(prop_oneof![Just("a".to_owned()), Just("b".to_owned())]);
    (phase, status, (t.clone(), t.clone(), t), (secs.clone(), secs), from, url).prop_map(
        |(phase, status, (s, a, e), (d, talk), from, url)| CallEvent {
            phase,
            status,
            started_at_ms: s.map(|x| T + x),
            answered_at_ms: a.map(|x| T + x),
            ended_at_ms: e.map(|x| T + x),
            duration_secs: d,
            talk_secs: talk,
            from,
            recording_url: url,
            ..ev(CallPhase::Start, CallStatus::InProgress)
        },
    )
}

proptest! {
    /// Any order and any duplication of the same reports fold to the same call.
    #[test]
    fn fold_ignores_order_and_duplicates(events in proptest::collection::vec(arb_event(), 1..8), seed in any::<u64>()) {
        let base = Call::fold(&events).unwrap();
        let mut shuffled = events.clone();
        // A deterministic shuffle from the seed.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        shuffled.push(events[(seed as usize) % events.len()].clone());
        prop_assert_eq!(Call::fold(&shuffled).unwrap(), base);
    }
}
