//! Pure lease rules: pick order, returning visitors, phases, exhaustion policy
//! and pool sizing.

use ringsource_core::lease::*;

fn holder(session: &str, client: Option<&str>) -> Holder {
    Holder { session_id: session.into(), client_id: client.map(Into::into) }
}

fn free(cooldown_until_ms: i64) -> NumberState {
    NumberState { live: None, last_holder: None, cooldown_until_ms }
}

fn live(session: &str, client: Option<&str>, started: i64, expires: i64) -> NumberState {
    NumberState {
        live: Some(LiveLease { holder: holder(session, client), started_at_ms: started, expires_at_ms: expires }),
        last_holder: None,
        cooldown_until_ms: 0,
    }
}

const NOW: i64 = 1_000_000;

fn me() -> Visitor<'static> {
    Visitor { session_id: "s-me", client_id: Some("ga-me") }
}

#[test]
fn fresh_pick_is_the_number_whose_cooldown_ended_longest_ago() {
    let numbers = [free(NOW - 10), free(NOW - 500), free(NOW - 20), free(NOW + 1)];
    assert_eq!(pick(&numbers, &me(), NOW), Pick::Fresh(1));
}

#[test]
fn ties_are_broken_by_configured_order() {
    let numbers = [live("a", None, 0, NOW + 5), free(0), free(0)];
    assert_eq!(pick(&numbers, &me(), NOW), Pick::Fresh(1));
}

#[test]
fn a_number_still_cooling_down_is_not_given_to_someone_new() {
    let numbers = [free(NOW + 1), live("a", None, 0, NOW + 1)];
    assert_eq!(pick(&numbers, &me(), NOW), Pick::Exhausted);
    // One millisecond later the cooldown of number 0 has ended.
    let numbers = [free(NOW + 1), live("a", None, 0, NOW + 5)];
    assert_eq!(pick(&numbers, &me(), NOW + 1), Pick::Fresh(0));
}

#[test]
fn the_holder_renews_its_own_number_by_session_or_client_id() {
    let numbers = [free(0), live("s-me", None, 0, NOW + 5)];
    assert_eq!(pick(&numbers, &me(), NOW), Pick::Renew(1));
    let numbers = [free(0), live("old-session", Some("ga-me"), 0, NOW + 5)];
    assert_eq!(pick(&numbers, &me(), NOW), Pick::Renew(1));
    // The exact session wins over a client-id match.
    let numbers = [live("other", Some("ga-me"), 0, NOW + 5), live("s-me", None, 0, NOW + 5)];
    assert_eq!(pick(&numbers, &me(), NOW), Pick::Renew(1));
}

#[test]
fn an_expired_lease_is_not_renewed() {
    let numbers = [live("s-me", None, 0, NOW)];
    // Expired exactly now: not live, and the number is not cooling for anyone.
    assert_eq!(numbers[0].phase(NOW), Phase::Free);
    assert_eq!(pick(&numbers, &me(), NOW), Pick::Fresh(0));
}

#[test]
fn a_returning_visitor_gets_their_cooling_number_back() {
    let mut cooling = free(NOW + 60_000);
    cooling.last_holder = Some(holder("old", Some("ga-me")));
    let numbers = [free(0), cooling];
    assert_eq!(pick(&numbers, &me(), NOW), Pick::Return(1));
    // Someone else does not get it while it cools down.
    let stranger = Visitor { session_id: "x", client_id: Some("ga-x") };
    assert_eq!(pick(&numbers, &stranger, NOW), Pick::Fresh(0));
}

#[test]
fn a_visitor_without_client_id_never_matches_another_without_one() {
    let mut cooling = free(NOW + 60_000);
    cooling.last_holder = Some(holder("old", None));
    let anon = Visitor { session_id: "new", client_id: None };
    assert_eq!(pick(&[cooling], &anon, NOW), Pick::Exhausted);
}

#[test]
fn phases_follow_expiry_and_cooldown() {
    let hold = 900;
    let cooldown = 600;
    let expires = expiry(NOW, hold);
    assert_eq!(expires, NOW + 900_000);
    let mut n = live("a", None, NOW, expires);
    assert_eq!(n.phase(expires - 1), Phase::Live);
    n.cooldown_until_ms = cooldown_end(expires, cooldown);
    assert_eq!(n.phase(expires), Phase::CoolingDown);
    assert_eq!(n.phase(expires + 599_999), Phase::CoolingDown);
    assert_eq!(n.phase(expires + 600_000), Phase::Free);
}

#[test]
fn exhaustion_policies() {
    let numbers = [live("a", None, 10, NOW + 300), live("b", None, 5, NOW + 100), live("c", None, 1, NOW + 100)];
    assert_eq!(on_exhaustion(ExhaustionPolicy::Overflow, &numbers, NOW), Exhaustion::Overflow);
    assert_eq!(on_exhaustion(ExhaustionPolicy::Original, &numbers, NOW), Exhaustion::Original);
    // Least recently renewed (earliest expiry), then earliest start.
    assert_eq!(on_exhaustion(ExhaustionPolicy::TakeOverOldest, &numbers, NOW), Exhaustion::TakeOver(2));
    // Everything cooling: nothing to take over.
    assert_eq!(on_exhaustion(ExhaustionPolicy::TakeOverOldest, &[free(NOW + 5)], NOW), Exhaustion::Original);
}

#[test]
fn exhaustion_policy_names_round_trip() {
    for p in [ExhaustionPolicy::Overflow, ExhaustionPolicy::Original, ExhaustionPolicy::TakeOverOldest] {
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, format!("\"{}\"", p.as_str()));
        assert_eq!(serde_json::from_str::<ExhaustionPolicy>(&json).unwrap(), p);
    }
}

fn inputs(peak: u32, hold_secs: u32, cooldown_secs: u32, renewed_secs: f64, share: f64) -> SizingInputs {
    SizingInputs {
        peak_new_sessions_per_hour: peak,
        hold_secs,
        cooldown_secs,
        mean_renewed_secs: renewed_secs,
        reveal_share: share,
    }
}

#[test]
fn pool_sizing_formula() {
    // DESIGN.md's rule when nothing but the hold keeps a number:
    // 100 new sessions/hour × 15 min / 60 × 1.3 = 32.5 → 33.
    assert_eq!(pool_sizing(&inputs(100, 900, 0, 0.0, 1.0)).recommended, 33);
    // 40 × 15/60 × 1.3 = 13 exactly.
    assert_eq!(pool_sizing(&inputs(40, 900, 0, 0.0, 1.0)).recommended, 13);
    // The show-number button: a 25 % click rate needs a quarter of it.
    assert_eq!(pool_sizing(&inputs(100, 900, 0, 0.0, 0.25)).recommended, 9);
    assert_eq!(pool_sizing(&inputs(0, 900, 600, 120.0, 1.0)).recommended, 0);
    // Cooldown and renewals keep the number too: 6 per hour × (4 + 15 + 10)
    // min / 60 = 2.9 numbers busy at the peak, × 1.3 = 3.77 → 4, where the
    // hold alone said 6 × 15/60 × 1.3 = 1.95 → 2.
    let sized = pool_sizing(&inputs(6, 900, 600, 240.0, 1.0));
    assert_eq!(sized.occupancy_secs, 1740.0);
    assert!((sized.busy_at_peak - 2.9).abs() < 1e-12, "{sized:?}");
    assert_eq!(sized.recommended, 4);
    assert_eq!(pool_sizing(&inputs(6, 900, 0, 0.0, 1.0)).recommended, 2);
    // Nonsense in the measured mean does not make nonsense out.
    assert_eq!(pool_sizing(&inputs(6, 900, 600, f64::NAN, 1.0)).occupancy_secs, 1500.0);
    assert_eq!(pool_sizing(&inputs(6, 900, 600, -5.0, 1.0)).occupancy_secs, 1500.0);
    assert!((utilisation(3, 4) - 0.75).abs() < 1e-12);
    assert!(utilisation(3, 4) >= UTILISATION_WARNING);
    assert_eq!(utilisation(0, 0), 0.0);
}
