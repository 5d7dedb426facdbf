//! A PBX retry and its first delivery: "duplicate" is only ever answered
//! once the first delivery's event is stored. The retry race is made
//! reproducible by a sink wrapper that holds the first delivery on its way to
//! the real, storage-backed sink until the test lets it go (on, or into a
//! failure); faults inside the store come from a trigger in the database
//! (each backend's own). Every test runs on both backends: on PostgreSQL the
//! check for a stored delivery id is made under the call's row lock.

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
use ringsource_core::call::CallEvent;
use serde_json::json;

use crate::common::{Backend, Harness, call_store_of, site_toml, start_with_sink_on};
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

/// The test's collector on a fresh database, and its configuration, which
/// more collectors on that database are started with.
struct Collector {
    app: Harness,
    config: Config,
    clock: Arc<ManualClock>,
}

impl Collector {
    fn pbx(&self) -> Pbx<'_> {
        self.pbx_of(&self.app.server)
    }

    fn pbx_of<'a>(&'a self, server: &Spawned) -> Pbx<'a> {
        Pbx { client: &self.app.client, origin: server.url("") }
    }

    /// Events stored for the call with this PBX call id.
    fn events_of(&self, pbx_call_id: &str) -> i64 {
        self.app.scalar(&format!(
            "SELECT COUNT(*) FROM call_events e JOIN calls c ON c.id = e.call_id WHERE c.pbx_call_id = '{pbx_call_id}'"
        ))
    }

    /// Calls stored with this PBX call id.
    fn calls_of(&self, pbx_call_id: &str) -> i64 {
        self.app.scalar(&format!("SELECT COUNT(*) FROM calls WHERE pbx_call_id = '{pbx_call_id}'"))
    }

    /// Another collector on the same database, with the server's own sink.
    fn another(&self) -> Spawned {
        let clock = Arc::clone(&self.clock) as Arc<dyn Clock>;
        server::spawn_with(self.config.clone(), "127.0.0.1:0".parse().unwrap(), clock, None).unwrap()
    }
}

/// The real server on a fresh database of `backend`; with `gated`, its PBX
/// routes go through a gate that holds the first delivery, over the real
/// sink on the same database. `None` without PostgreSQL.
fn serve(backend: Backend, test: &str, gated: Option<Gate>) -> Option<Collector> {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let mut config = None;
    let app = start_with_sink_on(
        backend,
        test,
        |db| site_toml(db, "", &all_adapters(), ""),
        Arc::clone(&clock) as Arc<dyn Clock>,
        |c| {
            config = Some(c.clone());
            let gate = gated?;
            let real = CallsService::new(call_store_of(c), &c.sites, Arc::clone(&clock) as Arc<dyn Clock>);
            Some(Arc::new(GatedSink { real, gate: Mutex::new(Some(gate)) }) as Arc<dyn CallSink>)
        },
    )?;
    Some(Collector { app, config: config.expect("the harness showed the configuration"), clock })
}

/// [`serve`] behind the gate, with the gate's two ends: the first delivery
/// has entered, and what it does next.
fn serve_gated(backend: Backend, test: &str) -> Option<(Collector, Receiver<()>, Sender<Release>)> {
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let c = serve(backend, test, Some(Gate { entered: entered_tx, release: release_rx }))?;
    Some((c, entered, release))
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
    let origin = c.app.url("");
    let (id, body) = (id.to_owned(), body.to_owned());
    let first = std::thread::spawn(move || {
        let client = crate::common::http::Client::new();
        Pbx { client: &client, origin }.generic(&id, NOW_SECS, &body)
    });
    entered.recv_timeout(Duration::from_secs(30)).expect("the first delivery reaches the gate");
    first
}

crate::on_both_backends! {
    a_retry_racing_a_first_delivery_that_fails_stores_the_call => a_retry_racing_a_first_delivery_that_fails_stores_the_call_on;
    a_first_delivery_overtaken_by_its_retry_is_the_duplicate => a_first_delivery_overtaken_by_its_retry_is_the_duplicate_on;
    a_delivery_that_fails_in_the_store_leaves_nothing_and_its_retry_is_stored => a_delivery_that_fails_in_the_store_leaves_nothing_and_its_retry_is_stored_on;
    delivery_ids_are_shared_by_collectors_on_one_database => delivery_ids_are_shared_by_collectors_on_one_database_on;
}

/// The race the fault test found: the retry came while the first delivery
/// was still on its way to the store, was answered "duplicate", and the
/// first then failed, so the call was acknowledged and never stored.
fn a_retry_racing_a_first_delivery_that_fails_stores_the_call_on(backend: Backend) {
    let Some((c, entered, release)) =
        serve_gated(backend, "a_retry_racing_a_first_delivery_that_fails_stores_the_call")
    else {
        return;
    };
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
fn a_first_delivery_overtaken_by_its_retry_is_the_duplicate_on(backend: Backend) {
    let Some((c, entered, release)) = serve_gated(backend, "a_first_delivery_overtaken_by_its_retry_is_the_duplicate")
    else {
        return;
    };
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

/// A trigger that fails every insert of a delivery id while `fault_armed`
/// has a row, in each backend's dialect, and the statements that remove it.
fn fault_trigger(backend: Backend) -> (&'static str, &'static str) {
    match backend {
        Backend::Sqlite => (
            "CREATE TABLE fault_armed (x INTEGER);
             INSERT INTO fault_armed VALUES (1);
             CREATE TRIGGER fault AFTER INSERT ON pbx_deliveries WHEN EXISTS (SELECT 1 FROM fault_armed)
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END;",
            "DROP TRIGGER fault; DROP TABLE fault_armed;",
        ),
        Backend::Postgres => (
            "CREATE TABLE fault_armed (x INTEGER);
             INSERT INTO fault_armed VALUES (1);
             CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF EXISTS (SELECT 1 FROM fault_armed) THEN RAISE EXCEPTION 'injected fault'; END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER fault AFTER INSERT ON pbx_deliveries FOR EACH ROW EXECUTE FUNCTION fault();",
            "DROP TRIGGER fault ON pbx_deliveries; DROP FUNCTION fault(); DROP TABLE fault_armed;",
        ),
    }
}

/// A fault inside the store's transaction, after the event and the delivery
/// id were written: nothing of the delivery stays, so its retry is stored
/// and not answered "duplicate".
fn a_delivery_that_fails_in_the_store_leaves_nothing_and_its_retry_is_stored_on(backend: Backend) {
    let test = "a_delivery_that_fails_in_the_store_leaves_nothing_and_its_retry_is_stored";
    let Some(c) = serve(backend, test, None) else { return };
    let (arm, remove) = fault_trigger(backend);
    c.app.execute(arm);
    let body = end_event("fault-1");
    let failed = c.pbx().generic("msg_fault_1", NOW_SECS, &body);
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert_eq!(c.events_of("fault-1"), 0, "the failed delivery left no event");
    assert_eq!(c.app.scalar("SELECT COUNT(*) FROM calls"), 0, "nor a call");

    c.app.execute("DELETE FROM fault_armed");
    let retry = c.pbx().generic("msg_fault_1", NOW_SECS, &body);
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.body["outcome"], "recorded");
    assert_eq!(c.events_of("fault-1"), 1);
    c.app.execute(remove);
}

/// The ids live in the database, not in one process: a second collector on
/// the same database answers a delivery id the first one stored "duplicate",
/// even with another body signed under it (whose call is not stored), and
/// the ids outlive a restart.
fn delivery_ids_are_shared_by_collectors_on_one_database_on(backend: Backend) {
    let Some(mut c) = serve(backend, "delivery_ids_are_shared_by_collectors_on_one_database", None) else { return };
    let two = c.another();
    assert_eq!(c.pbx().generic("msg_shared", NOW_SECS, &end_event("shared-1")).body["outcome"], "recorded");
    let again = c.pbx_of(&two).generic("msg_shared", NOW_SECS, &end_event("shared-2"));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["outcome"], "duplicate");
    assert_eq!(c.events_of("shared-2"), 0);
    assert_eq!(c.calls_of("shared-2"), 0, "a duplicate delivery leaves no call of its own");
    drop(two);

    // A collector started after the id was stored; the first one stops.
    c.app.server = c.another();
    assert_eq!(c.pbx().generic("msg_shared", NOW_SECS, &end_event("shared-1")).body["outcome"], "duplicate");
    // Once the signed timestamp is out of the window, the id is forgotten
    // when the next delivery is stored (a replay is refused as stale by then).
    c.clock.set_ms(NOW_MS + 301_000);
    let later = c.pbx().generic("msg_later", NOW_SECS + 301, &end_event("later-1"));
    assert_eq!(later.body["outcome"], "recorded", "{}", later.body);
    let ids = c.app.rows("SELECT delivery_id FROM pbx_deliveries ORDER BY delivery_id");
    assert_eq!(ids, [[Some("msg_later".to_owned())]]);
}
