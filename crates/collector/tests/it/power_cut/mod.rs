//! Power cuts, not just crashes: the real `ringsource` binary runs on a
//! folder whose files behave like a disk with a volatile write cache
//! (`shim.c`, an LD_PRELOAD library compiled here with `cc`: only what was
//! fsynced survives, file contents and the folder's names alike). Signed PBX
//! webhooks over HTTP, visits, cost uploads and revenue posts load it; at
//! random moments the process is killed and the folder is put back to what
//! its disk held, then the collector starts again on it. Every call event,
//! cost row and revenue post that was answered 2xx must be in the database
//! after every cut, which must pass `integrity_check` with no number leased
//! twice. Acknowledged visits may be lost (they commit without a sync); how
//! many, and how old the oldest was at the cut, is printed.
//!
//! Half of the cuts also keep some of the writes no sync covered (whole
//! 4 KiB blocks, each by a coin flip), as a disk whose cache wrote some of
//! its blocks back in its own order.
//!
//! `RINGSOURCE_POWER_CUT_ROUNDS` (default 8) and `RINGSOURCE_POWER_CUT_SEED`
//! choose the run; the seed is printed, and repeats the kinds and moments of
//! the cuts (not the load's own timing).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::common::{assert_no_number_leased_twice, orphans};
use crate::pbx_support::{GENERIC_KEY, GENERIC_SECRET, generic_headers};

const TOKEN: &str = "admin-token-for-power-cuts-0123";

/// xorshift64*: the cut moments are random, and repeatable from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The folder the collector writes, and the disk the shim keeps for it.
struct Disk {
    _root: tempfile::TempDir,
    volatile: PathBuf,
    durable: PathBuf,
    shim: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

impl Disk {
    fn new() -> Disk {
        let root = tempfile::tempdir().unwrap();
        let (volatile, durable) = (root.path().join("data"), root.path().join("disk"));
        std::fs::create_dir(&volatile).unwrap();
        std::fs::create_dir(&durable).unwrap();
        let shim = root.path().join("libpowercut.so");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/power_cut/shim.c");
        let built = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&shim)
            .arg(&source)
            .arg("-ldl")
            .output()
            .expect("cc runs (the power-cut shim is C)");
        assert!(built.status.success(), "cc {}: {}", source.display(), String::from_utf8_lossy(&built.stderr));
        let config = root.path().join("ringsource.toml");
        std::fs::write(&config, config_toml(&volatile.join("ringsource.sqlite"))).unwrap();
        let log = root.path().join("collector.log");
        Disk { volatile, durable, shim, config, log, _root: root }
    }

    /// After the process is gone: the folder as the disk holds it, each name
    /// of the last directory sync with its file's content as of its last
    /// sync. A `torn` cut also keeps some of the writes no sync covered, each
    /// 4 KiB block of them by a coin flip, as a disk whose cache had written
    /// some of its blocks back, in any order.
    fn power_cut(&self, torn: Option<&mut Rng>) {
        // Each key's unsynced content: the file in the folder that has it now.
        let live = std::fs::read_to_string(self.durable.join("live")).unwrap_or_default();
        let key_of_inode: BTreeMap<u64, &str> =
            live.lines().filter_map(|l| l.split_once('\t')).map(|(ino, key)| (ino.parse().unwrap(), key)).collect();
        let mut unsynced: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        if torn.is_some() {
            for entry in std::fs::read_dir(&self.volatile).unwrap() {
                let entry = entry.unwrap();
                if let Some(key) = key_of_inode.get(&std::os::unix::fs::MetadataExt::ino(&entry.metadata().unwrap())) {
                    unsynced.insert((*key).to_owned(), std::fs::read(entry.path()).unwrap());
                }
            }
        }
        for entry in std::fs::read_dir(&self.volatile).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        std::fs::remove_file(self.durable.join("live")).ok();
        let snapshot = std::fs::read_to_string(self.durable.join("snapshot")).unwrap_or_default();
        let mut rng = torn;
        for line in snapshot.lines() {
            let (name, key) = line.split_once('\t').unwrap();
            let mut content = std::fs::read(self.durable.join("content").join(key)).unwrap();
            if let (Some(rng), Some(cache)) = (rng.as_deref_mut(), unsynced.get(key)) {
                keep_some(&mut content, cache, rng);
            }
            std::fs::write(self.volatile.join(name), content).unwrap();
        }
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.volatile.join("ringsource.sqlite")).unwrap()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// `disk` with some of the 4 KiB blocks in which `cache` differs from it
/// (each by a coin flip), and the length of either.
fn keep_some(disk: &mut Vec<u8>, cache: &[u8], rng: &mut Rng) {
    const BLOCK: usize = 4096;
    let len = if rng.below(2) == 0 { disk.len() } else { cache.len() };
    disk.resize(len.max(disk.len()), 0);
    let common = cache.len().min(len);
    for start in (0..common).step_by(BLOCK) {
        let end = (start + BLOCK).min(common);
        if disk[start..end] != cache[start..end] && rng.below(2) == 0 {
            disk[start..end].copy_from_slice(&cache[start..end]);
        }
    }
    disk.truncate(len);
}

fn config_toml(db: &Path) -> String {
    let numbers: Vec<String> = pool().iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
database = "{db}"
bundle_dir = "{dir}/pkg"
www_dir = "{dir}/www"
admin_token = "{TOKEN}"
# Smaller than the default 64 MiB: the shim copies a file whole on every sync.
wal_preallocate_mib = 1
rate_limit = {{ burst = 1000000, per_minute = 1000000 }}

[[sites]]
id = "shop"
originals = ["+74951234567"]
overflow_number = "+74957000099"
pbx_secrets = {{ generic = "{GENERIC_SECRET}" }}

# Ten numbers for many visitors: every visit takes a lease over.
[[sites.pools]]
id = "paid"
numbers = [{numbers}]
rules = [{{ channel = "Paid Search" }}]
on_exhaustion = "take-over-oldest"
"#,
        db = db.display(),
        dir = db.parent().unwrap().parent().unwrap().display(),
        numbers = numbers.join(", "),
    )
}

fn pool() -> Vec<String> {
    (1..=10).map(|i| format!("+749570000{i:02}")).collect()
}

/// The collector process; killed when dropped.
struct Collector {
    child: Child,
    origin: Option<String>,
}

impl Collector {
    fn spawn(disk: &Disk) -> Collector {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&disk.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ringsource"))
            .arg("serve")
            .arg("--config")
            .arg(&disk.config)
            .env("LD_PRELOAD", &disk.shim)
            .env("POWERCUT_VOLATILE", &disk.volatile)
            .env("POWERCUT_DURABLE", &disk.durable)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        Collector { child, origin: None }
    }

    /// Waits for `listening on http://ADDR`.
    fn listening(&mut self, disk: &Disk) -> String {
        let stdout = self.child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let origin = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the collector did not start: {line:?}\n{}", disk.log_tail()))
            .to_owned();
        self.origin = Some(origin.clone());
        origin
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the collector answered 2xx to, so far.
#[derive(Default)]
struct Acked {
    /// (PBX call id, phase)
    events: BTreeSet<(String, String)>,
    /// (day, source) → cost
    costs: BTreeMap<(String, String), f64>,
    deals: BTreeSet<String>,
    /// Visits of the running round: session id, when the answer came.
    visits: Vec<(String, Instant)>,
    /// Callers of acknowledged ends, for revenue posts.
    callers: Vec<String>,
    /// Answers that were not 2xx (status and body): a live collector
    /// refuses nothing this load sends.
    refused: Vec<String>,
}

/// The load of one round, until `stop`.
struct Load {
    origin: String,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<AtomicBool>,
    /// Names calls and webhook ids uniquely across rounds.
    next: Arc<AtomicU64>,
    /// Set when the first call event of the round is acknowledged.
    first_ack: Arc<AtomicBool>,
}

fn client() -> crate::common::http::Client {
    crate::common::http::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

fn unix_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

impl Load {
    fn ok(&self, resp: reqwest::Result<crate::common::http::Response>) -> Option<Value> {
        let resp = resp.ok()?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.text().unwrap_or_default();
            self.acked.lock().unwrap().refused.push(format!("{status} {body}"));
            return None;
        }
        resp.json().ok()
    }

    /// A signed generic delivery; `Some(outcome)` when answered 2xx.
    fn deliver(&self, client: &crate::common::http::Client, id: &str, body: &str) -> Option<String> {
        let mut req = client
            .post(format!("{}/v1/sites/shop/pbx/generic", self.origin))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in generic_headers(id, unix_secs(), body, GENERIC_KEY) {
            req = req.header(k, v);
        }
        self.ok(req.send()).map(|v| v["outcome"].as_str().unwrap_or_default().to_owned())
    }

    /// Calls of two events each (start, end); every other end is delivered
    /// twice, as a PBX retries when an answer is slow.
    fn pbx(&self) {
        let client = client();
        while !self.stop.load(Ordering::Relaxed) {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let call = format!("pc-{n}");
            let caller = format!("+7916{:07}", n % 10_000_000);
            let ring = unix_secs() - 60;
            let to = &pool()[(n % 10) as usize];
            let start = json!({ "call_id": call, "from": caller, "to": to, "phase": "start",
                "started_at": rfc3339(ring) })
            .to_string();
            let end = json!({ "call_id": call, "from": caller, "to": to, "phase": "end", "status": "answered",
                "started_at": rfc3339(ring), "answered_at": rfc3339(ring + 5), "ended_at": rfc3339(ring + 50) })
            .to_string();
            for (phase, body, times) in [("start", &start, 1), ("end", &end, 1 + n % 2)] {
                for _ in 0..times {
                    if self.deliver(&client, &format!("msg_{call}_{phase}"), body).is_some() {
                        let mut acked = self.acked.lock().unwrap();
                        acked.events.insert((call.clone(), phase.to_owned()));
                        if phase == "end" {
                            acked.callers.push(caller.clone());
                        }
                        self.first_ack.store(true, Ordering::Release);
                    }
                }
            }
        }
    }

    fn visits(&self) {
        let client = client();
        let body =
            json!({ "touch": crate::common::paid(), "page": { "url": "https://shop.example/", "title": "Shop" } });
        while !self.stop.load(Ordering::Relaxed) {
            let resp = client
                .post(format!("{}/v1/sites/shop/visits", self.origin))
                .header("content-type", "text/plain")
                .header("user-agent", crate::common::BROWSER_UA)
                .body(body.to_string())
                .send();
            if let Some(v) = self.ok(resp) {
                let session = v["session_id"].as_str().unwrap().to_owned();
                self.acked.lock().unwrap().visits.push((session, Instant::now()));
            }
            // Leaves the CPUs some room for the calls: the visits are here
            // to keep the writer busy, not to starve the PBX.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A cost row per request, each for a day and source of its own, and
    /// revenue for acknowledged calls, each a deal of its own.
    fn money(&self) {
        let client = client();
        while !self.stop.load(Ordering::Relaxed) {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let day = rfc3339(1_700_000_000 + (n as i64 % 3000) * 86_400)[..10].to_owned();
            let source = format!("source-{n}");
            let cost = (n % 1000) as f64 + 0.5;
            let row = json!([{ "site": "shop", "date": day, "source": source, "cost": cost }]);
            let resp = client.post(format!("{}/v1/costs", self.origin)).bearer_auth(TOKEN).json(&row).send();
            if self.ok(resp).is_some() {
                self.acked.lock().unwrap().costs.insert((day, source), cost);
            }
            let caller = self.acked.lock().unwrap().callers.last().cloned();
            if let Some(caller) = caller {
                let deal = format!("deal-{n}");
                let post = json!({ "site": "shop", "caller": caller, "amount": 100, "deal_id": deal });
                let resp = client.post(format!("{}/v1/revenue", self.origin)).bearer_auth(TOKEN).json(&post).send();
                if self.ok(resp).is_some() {
                    self.acked.lock().unwrap().deals.insert(deal);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// What a cut cost the visits: how many acknowledged visits are gone, and
/// how long before the cut the oldest of them was answered.
struct VisitLoss {
    acked: usize,
    lost: usize,
    oldest_ms: Option<u128>,
}

/// Everything acknowledged is in the database; the visits that are not are
/// counted and forgotten.
fn check(disk: &Disk, acked: &mut Acked, cut_at: Option<Instant>) -> VisitLoss {
    let conn = disk.db();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    assert_no_number_leased_twice(&conn);
    assert_eq!(orphans(&conn), []);

    let stored: BTreeSet<(String, String)> = conn
        .prepare(
            "SELECT c.pbx_call_id, json_extract(e.event_json, '$.phase') FROM call_events e
             JOIN calls c ON c.id = e.call_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let lost: Vec<_> = acked.events.difference(&stored).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged call events are lost: {lost:?}", lost.len(), acked.events.len());

    let costs: BTreeMap<(String, String), f64> = conn
        .prepare("SELECT day, source, cost FROM costs")
        .unwrap()
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let lost: Vec<_> = acked.costs.iter().filter(|(k, v)| costs.get(*k) != Some(*v)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged cost rows are lost: {lost:?}", lost.len(), acked.costs.len());

    let deals: BTreeSet<String> = conn
        .prepare("SELECT deal_id FROM revenue")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let lost: Vec<_> = acked.deals.difference(&deals).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged revenue posts are lost: {lost:?}", lost.len(), acked.deals.len());

    let mut st = conn.prepare("SELECT 1 FROM sessions WHERE id = ?1").unwrap();
    let visits = std::mem::take(&mut acked.visits);
    let mut loss = VisitLoss { acked: visits.len(), lost: 0, oldest_ms: None };
    for (session, at) in visits {
        if !st.exists([&session]).unwrap() {
            loss.lost += 1;
            if let Some(cut) = cut_at {
                let age = cut.saturating_duration_since(at).as_millis();
                loss.oldest_ms = Some(loss.oldest_ms.map_or(age, |o| o.max(age)));
            }
        }
    }
    loss
}

/// A cut whose cost to the visits the next start measures.
struct Cut {
    round: u64,
    when: &'static str,
    /// Some unsynced blocks were kept.
    torn: bool,
    at: Instant,
    /// How long the load ran, and the call events acknowledged meanwhile.
    load_ms: u128,
    events: usize,
}

#[test]
fn no_acknowledged_call_is_lost_to_a_power_cut() {
    let rounds: u64 = std::env::var("RINGSOURCE_POWER_CUT_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let seed: u64 = std::env::var("RINGSOURCE_POWER_CUT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    eprintln!("power cuts: {rounds} rounds, seed {seed} (RINGSOURCE_POWER_CUT_SEED repeats the cuts)");
    let mut rng = Rng(seed);
    // The blocks a torn cut keeps are drawn from their own sequence, so that
    // how many draws a cut takes does not move the later cuts.
    let mut blocks = Rng(seed.rotate_left(32) | 1);
    let disk = Disk::new();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let next = Arc::new(AtomicU64::new(0));
    let mut report: Vec<String> = Vec::new();
    let mut last_cut: Option<Cut> = None;
    let mut startup_cuts = 0;

    // Each round starts the collector on what the disk held, checks it, and
    // cuts the power; a last start checks the last cut.
    for round in 0..=rounds {
        let mut collector = Collector::spawn(&disk);
        // One cut in six comes while the collector starts.
        if round < rounds && rng.below(6) == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(150)));
            collector.kill();
            let torn = rng.below(2) == 0;
            disk.power_cut(torn.then_some(&mut blocks));
            startup_cuts += 1;
            continue;
        }
        let origin = collector.listening(&disk);
        let loss = check(&disk, &mut acked.lock().unwrap(), last_cut.as_ref().map(|c| c.at));
        if let Some(cut) = last_cut.take() {
            report.push(format!(
                "  round {:>2} (cut {} after {} ms{}, {} call events acknowledged): visits acknowledged {}, lost {}{}",
                cut.round,
                cut.when,
                cut.load_ms,
                if cut.torn { ", unsynced blocks kept at random" } else { "" },
                cut.events,
                loss.acked,
                loss.lost,
                loss.oldest_ms.map(|ms| format!(", the oldest answered {ms} ms before the cut")).unwrap_or_default()
            ));
        }
        if round == rounds {
            break;
        }

        let (load_started, events_before) = (Instant::now(), acked.lock().unwrap().events.len());
        let load = Arc::new(Load {
            origin,
            acked: Arc::clone(&acked),
            stop: Arc::new(AtomicBool::new(false)),
            next: Arc::clone(&next),
            first_ack: Arc::new(AtomicBool::new(false)),
        });
        // A round in four has visits only: no acknowledged write syncs the
        // WAL for them, so its cut shows what the visits alone can lose.
        let visits_only = rng.below(4) == 0;
        let threads: Vec<_> = (if visits_only { 4..6 } else { 0..7 })
            .map(|i| {
                let load = Arc::clone(&load);
                std::thread::spawn(move || match i {
                    0..4 => load.pbx(),
                    4 | 5 => load.visits(),
                    _ => load.money(),
                })
            })
            .collect();
        // A third of the other cuts come right after the round's first
        // acknowledged call event, before any checkpoint ran; the rest at a
        // random moment of the load.
        let when = if visits_only && rng.below(2) == 0 {
            // A reader (a long report) keeps its snapshot until the cut, so
            // checkpoints cannot copy, nor sync, what comes after it.
            let reader = disk.db();
            reader.execute_batch("BEGIN; SELECT COUNT(*) FROM sessions;").unwrap();
            std::thread::sleep(Duration::from_millis(300 + rng.below(2200)));
            drop(reader);
            "under visits only, beside a reader"
        } else if visits_only {
            std::thread::sleep(Duration::from_millis(300 + rng.below(2200)));
            "under visits only"
        } else if rng.below(3) == 0 {
            let started = Instant::now();
            while !load.first_ack.load(Ordering::Acquire) && started.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(1));
            }
            "after the first call"
        } else {
            std::thread::sleep(Duration::from_millis(300 + rng.below(2200)));
            "under load"
        };
        let at = Instant::now();
        collector.kill();
        load.stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        let torn = rng.below(2) == 0;
        disk.power_cut(torn.then_some(&mut blocks));
        let events = acked.lock().unwrap().events.len() - events_before;
        last_cut = Some(Cut { round, when, torn, at, load_ms: (at - load_started).as_millis(), events });
    }

    let acked = acked.lock().unwrap();
    eprintln!(
        "power cuts: {rounds} rounds ({startup_cuts} while starting); acknowledged and kept: {} call events of {} calls, {} cost rows, {} revenue posts",
        acked.events.len(),
        acked.events.iter().map(|(c, _)| c).collect::<BTreeSet<_>>().len(),
        acked.costs.len(),
        acked.deals.len()
    );
    for line in &report {
        eprintln!("{line}");
    }
    assert!(!acked.events.is_empty(), "no call event was acknowledged: the load did not run");
    assert!(acked.refused.is_empty(), "answers that were not 2xx: {:?}", acked.refused);
    let log = std::fs::read_to_string(&disk.log).unwrap_or_default();
    assert!(!log.contains("powercut shim:"), "the shim missed something:\n{}", disk.log_tail());
}
