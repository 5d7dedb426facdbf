//! Hold, renewal, expiry, cooldown and reuse order, on a simulated clock
//! driving the real server, on both backends.

use std::sync::Arc;

use crate::common::*;
use ringsource_collector::clock::ManualClock;
use serde_json::json;

const T0: i64 = 1_800_000_000_000;

/// Pool of 3 with hold 60 s, heartbeat 10 s, cooldown 120 s, policy original.
fn start_clocked(backend: Backend, test: &str) -> Option<(Harness, Arc<ManualClock>)> {
    let clock = Arc::new(ManualClock::new(T0));
    let h = start_with_clock_on(
        backend,
        test,
        "",
        "",
        "hold_secs = 60\nheartbeat_secs = 10\ncooldown_secs = 120\non_exhaustion = \"original\"",
        clock.clone(),
    )?;
    Some((h, clock))
}

crate::on_both_backends! {
    hold_renew_expire_cool_down_and_return => hold_renew_expire;
    reuse_prefers_the_number_whose_cooldown_ended_longest_ago => reuse_order;
}

fn at(clock: &ManualClock, secs: i64) {
    clock.set_ms(T0 + secs * 1000);
}

fn session(v: &serde_json::Value) -> String {
    v["session_id"].as_str().unwrap().to_owned()
}

fn hold_renew_expire(backend: Backend) {
    let Some((h, clock)) = start_clocked(backend, "hold_renew_expire") else { return };
    let a = h.visit(None, paid());
    let b = h.visit(None, paid());
    let c = h.visit(None, paid());
    assert_eq!(
        [&a["number"], &b["number"], &c["number"]],
        [POOL[0], POOL[1], POOL[2]],
        "configured order on a fresh pool"
    );
    assert_eq!(a["expires_at_ms"], T0 + 60_000);
    assert_eq!(a["heartbeat_secs"], 10);

    // A keeps renewing; B and C do not.
    at(&clock, 50);
    let (status, beat) = h.post("/v1/sites/shop/heartbeat", &json!({ "session_id": session(&a) }));
    assert_eq!(status, 200);
    assert_eq!(beat["expires_at_ms"], T0 + 110_000);

    // Just before expiry the pool is full: a newcomer keeps the original.
    at(&clock, 59);
    assert_eq!(h.visit(None, paid())["kind"], "original");

    // B's lease expired at 60: its heartbeat is refused.
    at(&clock, 61);
    let (status, err) = h.post("/v1/sites/shop/heartbeat", &json!({ "session_id": session(&b) }));
    assert_eq!(status, 410, "{err}");
    assert_eq!(err["error"]["code"], "lease_gone");

    // Expired numbers are cooling down (until 180): still none for a newcomer.
    assert_eq!(h.visit(None, paid())["kind"], "original");

    // But B, returning while its number cools, gets it back.
    let b_again = h.visit(Some(&session(&b)), paid());
    assert_eq!(b_again["number"], POOL[1]);
    assert_eq!(b_again["expires_at_ms"], T0 + 121_000);

    // C's number (expired at 60) is free after 60 + 120 = 180, not before.
    at(&clock, 179);
    assert_eq!(h.visit(None, paid())["kind"], "original");
    at(&clock, 180);
    let d = h.visit(None, paid());
    assert_eq!(d["number"], POOL[2]);

    // Every refusal was an exhaustion recorded with the policy.
    let events = h.scalar(
        "SELECT SUM(events) FROM pool_exhaustions
         WHERE reason = 'exhausted' AND policy = 'original' AND outcome = 'original'",
    );
    assert_eq!(events, 3);
    let expired = h.scalar("SELECT COUNT(*) FROM leases WHERE end_reason = 'expired'");
    assert!(expired >= 3, "A (at 110), B (at 60), C (at 60) expired");
    h.assert_no_number_leased_twice();
}

fn reuse_order(backend: Backend) {
    let Some((h, clock)) = start_clocked(backend, "reuse_order") else { return };
    let a = h.visit(None, paid()); // POOL[0]
    let b = h.visit(None, paid()); // POOL[1]
    let c = h.visit(None, paid()); // POOL[2]
    // Renew A and B at different times; C lapses at 60 (cooldown until 180).
    at(&clock, 30);
    let (status, _) = h.post("/v1/sites/shop/heartbeat", &json!({ "session_id": session(&b) })); // B expires 90 → free at 210
    assert_eq!(status, 200);
    at(&clock, 40);
    let (status, _) = h.post("/v1/sites/shop/heartbeat", &json!({ "session_id": session(&a) })); // A expires 100 → free at 220
    assert_eq!(status, 200);
    drop(c);
    // At 300 all three are free; they ended cooling at 180 (C), 210 (B), 220 (A).
    at(&clock, 300);
    let order: Vec<_> = (0..3).map(|_| h.visit(None, paid())["number"].as_str().unwrap().to_owned()).collect();
    assert_eq!(order, vec![POOL[2], POOL[1], POOL[0]]);
    h.assert_no_number_leased_twice();
}
