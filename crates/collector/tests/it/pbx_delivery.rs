//! A PBX retry and its first delivery: "duplicate" is only ever answered
//! once the first delivery's event is stored. The retry race is made
//! reproducible by a sink wrapper that holds the first delivery on its way to
//! the real, storage-backed sink until the test lets it go (on, or into a
//! failure); faults inside the store come from a trigger in the database file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringsource_collector::clock::{Clock, ManualClock};
use ringsource_collector::config::Config;
use ringsource_collector::pbx::Delivery;
use ringsource_collector::server::{self, Spawned};
use ringsource_collector::services::calls::CallsService;
use ringsource_collector::services::calls::{CallSink, RecordOutcome, SinkError};
use ringsource_collector::storage::StorageError;
use ringsource_collector::storage::sqlite::SqliteStorage;
use ringsource_core::call::CallEvent;
use serde_json::json;

use crate::common::{orphans, site_toml};
use crate::pbx_support::{NOW_MS, NOW_SECS, Pbx, Reply, all_adapters};

/// What the held first delivery does once let go.
enum Release {
    /// On to the real sink.
    Store,
    /// Fails as a storage fault would, without reaching the store.
    Fail,
}

/// The first `record` waits at the gate; later ones pass straight through.
struct Gate {
    entered: Sender<()>,
    release: Receiver<Release>,
}

struct GatedSink {
    real: CallsService,
    gate: Mutex<Option<Gate>>,
}

impl CallSink for GatedSink {
    fn record(&self, site: &str, delivery: Option<&Delivery>, event: CallEvent) -> Result<RecordOutcome, SinkError> {
        let gate = self.gate.lock().unwrap().take();
        if let Some(gate) = gate {
            gate.entered.send(()).unwrap();
            if let Release::Fail = gate.release.recv().unwrap() {
                return Err(SinkError::Storage(StorageError::Corrupt("injected: the first delivery failed".into())));
            }
        }
        CallSink::record(&self.real, site, delivery, event)
    }
}

struct Collector {
    server: Spawned,
    db: PathBuf,
    client: crate::common::http::Client,
}

impl Collector {
    fn pbx(&self) -> Pbx<'_> {
        Pbx { client: &self.client, origin: self.server.url("") }
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).unwrap()
    }

    /// Events stored for the call with this PBX call id.
    fn events_of(&self, pbx_call_id: &str) -> i64 {
        self.db()
            .query_row(
                "SELECT COUNT(*) FROM call_events e JOIN calls c ON c.id = e.call_id WHERE c.pbx_call_id = ?1",
                [pbx_call_id],
                |r| r.get(0),
            )
            .unwrap()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_eq!(orphans(&self.db()), []);
        }
    }
}

fn config(db: &Path) -> Config {
    let text = site_toml(db, "", &all_adapters(), "");
    Config::from_toml_str(&text, Path::new("test.toml"), &HashMap::<String, String>::new()).unwrap()
}

/// The real server on `db`; its PBX routes go through `sink` when given.
fn serve(db: &Path, clock: &Arc<ManualClock>, sink: Option<Arc<dyn CallSink>>) -> Collector {
    let clock = Arc::clone(clock) as Arc<dyn Clock>;
    let server = server::spawn_with(config(db), "127.0.0.1:0".parse().unwrap(), clock, sink).unwrap();
    Collector { server, db: db.to_owned(), client: crate::common::http::Client::new() }
}

/// The server with its PBX routes behind a gate that holds the first
/// delivery; the real sink under the gate stores into the same file.
fn serve_gated(db: &Path, clock: &Arc<ManualClock>) -> (Collector, Receiver<()>, Sender<Release>) {
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let storage = Arc::new(SqliteStorage::open(db).unwrap());
    let real = CallsService::new(storage, &config(db).sites, Arc::clone(clock) as Arc<dyn Clock>);
    let sink = GatedSink { real, gate: Mutex::new(Some(Gate { entered: entered_tx, release: release_rx })) };
    (serve(db, clock, Some(Arc::new(sink))), entered, release)
}

fn end_event(call_id: &str) -> String {
    json!({
        "call_id": call_id, "from": "+79161234567", "to": "+74957000001",
        "started_at": "2024-05-01T06:59:00Z", "answered_at": "2024-05-01T06:59:10Z",
        "ended_at": "2024-05-01T07:00:00Z", "status": "answered", "phase": "end"
    })
    .to_string()
}

/// Posts the first delivery on a thread of its own (it is held at the gate)
/// and waits until the gate has it.
fn first_delivery_held(c: &Collector, entered: &Receiver<()>, id: &str, body: &str) -> std::thread::JoinHandle<Reply> {
    let origin = c.server.url("");
    let (id, body) = (id.to_owned(), body.to_owned());
    let first = std::thread::spawn(move || {
        let client = crate::common::http::Client::new();
        Pbx { client: &client, origin }.generic(&id, NOW_SECS, &body)
    });
    entered.recv_timeout(Duration::from_secs(30)).expect("the first delivery reaches the gate");
    first
}

/// The race the fault test found: the retry came while the first delivery
/// was still on its way to the store, was answered "duplicate", and the
/// first then failed, so the call was acknowledged and never stored.
#[test]
fn a_retry_racing_a_first_delivery_that_fails_stores_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let (c, entered, release) = serve_gated(&dir.path().join("db.sqlite"), &clock);
    let body = end_event("race-1");
    let first = first_delivery_held(&c, &entered, "msg_race_1", &body);

    let retry = c.pbx().generic("msg_race_1", NOW_SECS, &body);
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.body["outcome"], "recorded", "the retry stores the event: {}", retry.body);

    release.send(Release::Fail).unwrap();
    let first = first.join().unwrap();
    assert_eq!(first.status, 500, "{}", first.body);
    assert_eq!(c.events_of("race-1"), 1, "the acknowledged call is stored");
    // Any later retry finds it.
    assert_eq!(c.pbx().generic("msg_race_1", NOW_SECS, &body).body["outcome"], "duplicate");
}

/// The first delivery goes on after the retry stored its event: it is the
/// one answered "duplicate" now, and the event is stored once.
#[test]
fn a_first_delivery_overtaken_by_its_retry_is_the_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let (c, entered, release) = serve_gated(&dir.path().join("db.sqlite"), &clock);
    let body = end_event("race-2");
    let first = first_delivery_held(&c, &entered, "msg_race_2", &body);

    assert_eq!(c.pbx().generic("msg_race_2", NOW_SECS, &body).body["outcome"], "recorded");
    release.send(Release::Store).unwrap();
    let first = first.join().unwrap();
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["outcome"], "duplicate");
    assert_eq!(first.body["pbx_call_id"], "race-2");
    assert_eq!(c.events_of("race-2"), 1);
}

/// A fault inside the store's transaction, after the event and the delivery
/// id were written: nothing of the delivery stays, so its retry is stored
/// and not answered "duplicate".
#[test]
fn a_delivery_that_fails_in_the_store_leaves_nothing_and_its_retry_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let c = serve(&dir.path().join("db.sqlite"), &clock, None);
    c.db()
        .execute_batch(
            "CREATE TABLE fault_armed (x INTEGER);
             INSERT INTO fault_armed VALUES (1);
             CREATE TRIGGER fault AFTER INSERT ON pbx_deliveries WHEN EXISTS (SELECT 1 FROM fault_armed)
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END;",
        )
        .unwrap();
    let body = end_event("fault-1");
    let failed = c.pbx().generic("msg_fault_1", NOW_SECS, &body);
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert_eq!(c.events_of("fault-1"), 0, "the failed delivery left no event");
    let calls: i64 = c.db().query_row("SELECT COUNT(*) FROM calls", [], |r| r.get(0)).unwrap();
    assert_eq!(calls, 0, "nor a call");

    c.db().execute_batch("DELETE FROM fault_armed").unwrap();
    let retry = c.pbx().generic("msg_fault_1", NOW_SECS, &body);
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.body["outcome"], "recorded");
    assert_eq!(c.events_of("fault-1"), 1);
    c.db().execute_batch("DROP TRIGGER fault; DROP TABLE fault_armed;").unwrap();
}

/// The ids live in the database, not in one process: a second collector on
/// the same file answers a delivery id the first one stored "duplicate",
/// even with another body signed under it, and the ids outlive a restart.
#[test]
fn delivery_ids_are_shared_by_collectors_on_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let one = serve(&db, &clock, None);
    let two = serve(&db, &clock, None);
    assert_eq!(one.pbx().generic("msg_shared", NOW_SECS, &end_event("shared-1")).body["outcome"], "recorded");
    let again = two.pbx().generic("msg_shared", NOW_SECS, &end_event("shared-2"));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["outcome"], "duplicate");
    assert_eq!(two.events_of("shared-2"), 0);
    drop(two);
    drop(one);

    let restarted = serve(&db, &clock, None);
    assert_eq!(restarted.pbx().generic("msg_shared", NOW_SECS, &end_event("shared-1")).body["outcome"], "duplicate");
    // Once the signed timestamp is out of the window, the id is forgotten
    // when the next delivery is stored (a replay is refused as stale by then).
    clock.set_ms(NOW_MS + 301_000);
    let later = restarted.pbx().generic("msg_later", NOW_SECS + 301, &end_event("later-1"));
    assert_eq!(later.body["outcome"], "recorded", "{}", later.body);
    let ids: Vec<String> = restarted
        .db()
        .prepare("SELECT delivery_id FROM pbx_deliveries ORDER BY delivery_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids, ["msg_later"]);
}
