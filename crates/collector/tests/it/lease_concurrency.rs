//! Hundreds of parallel visits on a pool of 3 numbers, once per exhaustion
//! policy, on both backends. The database must show that no number was ever
//! held by two live sessions, and every exhaustion must be recorded with the
//! policy applied.

use std::sync::Arc;

use crate::common::*;
use serde_json::Value;

const THREADS: usize = 8;
const PER_THREAD: usize = 40;
const TOTAL: usize = THREADS * PER_THREAD;

fn hammer(backend: Backend, policy: &str) -> Option<(Harness, Vec<Value>)> {
    let h = start_on(
        backend,
        &format!("lease_concurrency {policy}"),
        "[server.rate_limit]\nburst = 100000\nper_minute = 100000",
        "",
        &format!("on_exhaustion = \"{policy}\""),
    )?;
    let h = Arc::new(h);
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let h = Arc::clone(&h);
            std::thread::spawn(move || (0..PER_THREAD).map(|_| h.visit(None, paid())).collect::<Vec<_>>())
        })
        .collect();
    let answers: Vec<Value> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let h = Arc::try_unwrap(h).unwrap_or_else(|_| panic!("threads still hold the harness"));
    assert_eq!(answers.len(), TOTAL);
    Some((h, answers))
}

/// Every exhaustion as (policy, outcome), from the counts per minute.
fn events(h: &Harness) -> Vec<(String, String)> {
    h.rows("SELECT policy, outcome, events FROM pool_exhaustions WHERE pool_id = 'paid' AND reason = 'exhausted'")
        .into_iter()
        .flat_map(|r| {
            let n: usize = r[2].as_deref().unwrap().parse().unwrap();
            std::iter::repeat_n((r[0].clone().unwrap(), r[1].clone().unwrap()), n)
        })
        .collect()
}

fn real_leases(answers: &[Value]) -> Vec<&str> {
    answers
        .iter()
        .filter(|a| a["kind"] == "lease" && a["overflow"] == false)
        .map(|a| a["number"].as_str().unwrap())
        .collect()
}

crate::on_both_backends! {
    overflow_policy_under_load => overflow_policy;
    original_policy_under_load => original_policy;
    take_over_policy_under_load => take_over_policy;
}

fn overflow_policy(backend: Backend) {
    let Some((h, answers)) = hammer(backend, "overflow") else { return };
    let mut leased = real_leases(&answers);
    leased.sort_unstable();
    assert_eq!(leased, POOL.to_vec(), "each pool number goes to exactly one visitor");
    let overflow: Vec<_> = answers.iter().filter(|a| a["overflow"] == true).collect();
    assert_eq!(overflow.len(), TOTAL - 3);
    assert!(
        overflow.iter().all(|a| a["kind"] == "lease" && a["number"] == OVERFLOW && a.get("expires_at_ms").is_none())
    );
    let ev = events(&h);
    assert_eq!(ev.len(), TOTAL - 3, "every exhaustion is recorded");
    assert!(ev.iter().all(|(p, o)| p == "overflow" && o == "overflow"));
    h.assert_no_number_leased_twice();
}

fn original_policy(backend: Backend) {
    let Some((h, answers)) = hammer(backend, "original") else { return };
    assert_eq!(real_leases(&answers).len(), 3);
    let originals = answers.iter().filter(|a| a["kind"] == "original").count();
    assert_eq!(originals, TOTAL - 3);
    let ev = events(&h);
    assert_eq!(ev.len(), TOTAL - 3);
    assert!(ev.iter().all(|(p, o)| p == "original" && o == "original"));
    h.assert_no_number_leased_twice();
}

fn take_over_policy(backend: Backend) {
    let Some((h, answers)) = hammer(backend, "take-over-oldest") else { return };
    // Everybody gets a pool number, taking over the least recently renewed lease.
    assert_eq!(real_leases(&answers).len(), TOTAL);
    let ev = events(&h);
    assert_eq!(ev.len(), TOTAL - 3);
    assert!(ev.iter().all(|(p, o)| p == "take-over-oldest" && o == "taken-over"));
    let taken = h.scalar("SELECT COUNT(*) FROM leases WHERE end_reason = 'taken-over'");
    assert_eq!(taken as usize, TOTAL - 3);
    let open = h.scalar("SELECT COUNT(*) FROM leases WHERE ended_at_ms IS NULL");
    assert_eq!(open, 3);
    h.assert_no_number_leased_twice();
}
