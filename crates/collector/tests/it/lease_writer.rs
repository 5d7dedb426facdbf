//! The batching writer and its in-memory book of pool numbers, through the
//! real server and database: writes by another connection are seen, and a
//! write that fails inside a batch fails alone, leaving the book right.

use std::sync::Arc;

use crate::common::*;
use serde_json::Value;

/// A lease ended by another connection (an operator with `sqlite3`, a second
/// process) frees the number for the next visitor, though the writer's book
/// had it as live.
#[test]
fn writes_by_another_connection_are_seen() {
    let h = start("", "", "on_exhaustion = \"original\"");
    let held: Vec<Value> = (0..3).map(|_| h.visit(None, paid())).collect();
    assert!(held.iter().all(|v| v["kind"] == "lease"));
    assert_eq!(h.visit(None, paid())["kind"], "original", "the pool is full");

    let conn = h.db();
    let released = conn
        .execute("UPDATE leases SET ended_at_ms = started_at_ms, end_reason = 'released' WHERE number = ?1", [POOL[1]])
        .unwrap();
    assert_eq!(released, 1);
    conn.execute("UPDATE numbers SET cooldown_until_ms = 0 WHERE number = ?1", [POOL[1]]).unwrap();

    let next = h.visit(None, paid());
    assert_eq!(next["kind"], "lease", "{next}");
    assert_eq!(next["number"], POOL[1]);
    assert_no_number_leased_twice(&h.db());
}

/// A visit fails in the database (a trigger refuses its page view) inside a
/// batch in which other visitors already took numbers. It alone gets the
/// error; the others are answered and stored, and the leases the failed batch
/// rolled back are not lost to the pool.
#[test]
fn a_failing_write_fails_alone() {
    let h = start("[server.rate_limit]\nburst = 100000\nper_minute = 100000", "", "on_exhaustion = \"overflow\"");
    let mut blocker = h.db();
    blocker
        .execute_batch(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON page_views
             WHEN NEW.url = 'https://shop.example/poison' BEGIN SELECT RAISE(ABORT, 'poisoned page'); END;",
        )
        .unwrap();
    // Holding the write lock stalls the writer, so the visits below queue
    // up and are written in a batch, the poisoned one last.
    let lock = blocker.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
    let h = Arc::new(h);
    let post = |poison: bool| {
        let h = Arc::clone(&h);
        std::thread::spawn(move || {
            let mut body = visit_body(None, paid());
            if poison {
                body["page"]["url"] = "https://shop.example/poison".into();
            }
            h.post("/v1/sites/shop/visits", &body)
        })
    };
    let pause = || std::thread::sleep(std::time::Duration::from_millis(300));
    // The writer takes the first visit alone and waits for the lock with it;
    // the next ones queue behind it and make the second batch.
    let mut threads = vec![post(false)];
    pause();
    threads.extend((0..5).map(|_| post(false)));
    pause();
    threads.push(post(true));
    pause();
    lock.commit().unwrap();
    let answers: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().unwrap()).collect();

    let (answered, poisoned) = answers.split_at(answers.len() - 1);
    assert_eq!(poisoned[0].0, 500, "{:?}", poisoned[0]);
    assert_eq!(poisoned[0].1["error"]["code"], "storage_error");
    assert!(poisoned[0].1["error"]["message"].as_str().unwrap().contains("poisoned page"), "{}", poisoned[0].1);
    assert!(answered.iter().all(|(status, _)| *status == 200), "{answered:?}");

    let conn = h.db();
    let sessions: i64 = conn.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0)).unwrap();
    assert_eq!(sessions, 6, "every answered visit is stored, the failed one is not");
    let mut leased: Vec<&str> =
        answered.iter().filter(|(_, v)| v["overflow"] == false).map(|(_, v)| v["number"].as_str().unwrap()).collect();
    leased.sort_unstable();
    assert_eq!(leased, POOL.to_vec(), "the three numbers went to three answered visitors");
    let open: i64 = conn.query_row("SELECT COUNT(*) FROM leases WHERE ended_at_ms IS NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(open, 3, "each answered lease is in the database");
    assert_no_number_leased_twice(&conn);
}
