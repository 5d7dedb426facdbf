//! What durable acknowledgements cost: call events recorded with the WAL
//! synced before the answer ([`AckSync::AfterCommit`], the collector's
//! setting, and [`AckSync::Commit`], `synchronous = FULL` for the call's
//! transaction), against the same writes unsynced ([`AckSync::Off`], how the
//! collector answered before), measured in the same run and printed as ratios.
//!
//! Two loads per setting, each on a fresh database: call events alone, one
//! after the other, as fast as they are answered; and visits from several
//! threads, as fast as they are answered, while call events come at a steady
//! rate (a call per some hundred visits is a busy site's mix). Rounds
//! alternate the settings so that noise on this shared machine falls on all
//! of them alike; medians are reported.
//!
//! `cargo bench -p ringsource-collector --bench durable_acks [-- SECONDS ROUNDS CALLS_PER_SEC]`

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ringsource_collector::clock::{Clock, SystemClock};
use ringsource_collector::config::{Config, Site};
use ringsource_collector::services::calls::CallsService;
use ringsource_collector::storage::sqlite::{AckSync, SqliteOptions, SqliteStorage};
use ringsource_collector::storage::{Storage, VisitCommand, Want};
use ringsource_core::call::{CallEvent, CallPhase, CallStatus};
use ringsource_core::channel::Channel;
use ringsource_core::phone::PhoneNumber;
use ringsource_core::touch::Touch;

const VISIT_THREADS: usize = 8;
const SETTINGS: [(AckSync, &str); 3] = [
    (AckSync::Off, "unsynced (before)"),
    (AckSync::AfterCommit, "sync after commit"),
    (AckSync::Commit, "FULL commit"),
];

fn config(db: &Path) -> Config {
    let numbers: Vec<String> = (0..50).map(|i| format!("\"+7495700{:04}\"", 1000 + i)).collect();
    let text = format!(
        r#"
[server]
database = "{db}"

[[sites]]
id = "shop"
originals = ["+74951234567"]
overflow_number = "+74957009999"

[[sites.pools]]
id = "paid"
numbers = [{numbers}]
rules = [{{ channel = "Paid Search" }}]
"#,
        db = db.display(),
        numbers = numbers.join(", ")
    );
    Config::from_toml_str(&text, Path::new("bench.toml"), &HashMap::<String, String>::new())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn visit(site: &Arc<Site>, n: u64, now_ms: i64) -> VisitCommand {
    VisitCommand {
        facts: Default::default(),
        site: Arc::clone(site),
        session_id: None,
        new_session_id: ringsource_collector::session_id::new(now_ms).expect("randomness"),
        client_id: Some(format!("GA1.1.{n}.1700000000")),
        ym_uid: None,
        touch: Touch {
            channel: Channel::PaidSearch,
            source: "google".into(),
            medium: "cpc".into(),
            campaign: Some("spring".into()),
            term: None,
            content: None,
            utm_id: None,
            click_id: None,
            landing_path: "/".into(),
            referrer_host: None,
            at_ms: u64::try_from(now_ms).unwrap_or(0),
        },
        first_touch: None,
        page_url: "https://shop.example/".into(),
        page_title: Some("Shop".into()),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) bench".into(),
        is_bot: false,
        // Handed to the storage directly, as the demo month's are: no
        // address, so the pools' fair shares leave the bench's visits alone
        // and the figures stay comparable with the ones measured before them.
        client: None,
        want: Want::Pool(0),
    }
}

fn call_event(n: u64, now_ms: i64) -> CallEvent {
    let ring = u64::try_from(now_ms).unwrap_or(0);
    CallEvent {
        pbx: "generic".into(),
        pbx_call_id: format!("bench-{n}"),
        phase: CallPhase::End,
        from: Some(format!("+7916{:07}", n % 10_000_000)),
        to: PhoneNumber::parse(&format!("+7495700{:04}", 1000 + n % 50)).unwrap(),
        started_at_ms: Some(ring),
        answered_at_ms: Some(ring + 5_000),
        ended_at_ms: Some(ring + 65_000),
        duration_secs: Some(65),
        talk_secs: Some(60),
        status: CallStatus::Answered,
        recording_url: None,
    }
}

/// Latencies in µs, sorted; the count over the run's seconds.
struct Run {
    latencies_us: Vec<u64>,
    secs: f64,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.latencies_us.len() as f64 / self.secs
    }
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// Runs `op` until `stop`, at most once per `every` (none: back to back).
fn timed(stop: &AtomicBool, every: Option<Duration>, mut op: impl FnMut(u64)) -> Vec<u64> {
    let mut out = Vec::new();
    let mut n = 0;
    let first = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(every) = every {
            let due = first + every * u32::try_from(n).unwrap_or(u32::MAX);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let started = Instant::now();
        op(n);
        out.push(started.elapsed().as_micros() as u64);
        n += 1;
    }
    out
}

struct Measured {
    calls_alone: Run,
    visits_with_calls: Run,
    calls_with_visits: Run,
}

/// The database's folder is handed back to be removed at the end: the
/// storage's checkpoint thread stops on its own time, and would find it gone.
fn measure(ack_sync: AckSync, secs: f64, calls_per_sec: f64) -> (Measured, tempfile::TempDir) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = dir.path().join("bench.sqlite");
    let config = config(&db);
    let options = SqliteOptions { ack_sync, ..SqliteOptions::default() };
    let storage = Arc::new(SqliteStorage::open_with(&db, options).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    storage.sync_sites(&config.sites, clock.as_ref()).unwrap();
    let calls = Arc::new(CallsService::new(storage.clone(), &config.sites, Arc::clone(&clock)));
    let site = Arc::new(config.sites[0].clone());
    let duration = Duration::from_secs_f64(secs);

    let record = |offset: u64| {
        let calls = Arc::clone(&calls);
        let clock = Arc::clone(&clock);
        move |n: u64| {
            calls.record("shop", &call_event(offset + n, clock.now_ms())).unwrap();
        }
    };

    // Call events alone.
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let calls_alone = std::thread::scope(|s| {
        let t = s.spawn(|| timed(&stop, None, record(0)));
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap()
    });
    let calls_alone = Run { latencies_us: calls_alone, secs: started.elapsed().as_secs_f64() };

    // Visits from several threads while call events come steadily.
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (visits, calls_during) = std::thread::scope(|s| {
        let visitors: Vec<_> = (0..VISIT_THREADS as u64)
            .map(|t| {
                let (storage, clock, site, stop) = (storage.clone(), Arc::clone(&clock), Arc::clone(&site), &stop);
                s.spawn(move || {
                    timed(stop, None, |n| {
                        let cmd = visit(&site, t << 32 | n, clock.now_ms());
                        storage.visit(cmd, Arc::clone(&clock)).wait().unwrap();
                    })
                })
            })
            .collect();
        let every = Duration::from_secs_f64(1.0 / calls_per_sec);
        let stop_calls = &stop;
        let caller = s.spawn(move || timed(stop_calls, Some(every), record(1 << 40)));
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        let visits: Vec<u64> = visitors.into_iter().flat_map(|v| v.join().unwrap()).collect();
        (visits, caller.join().unwrap())
    });
    let secs_taken = started.elapsed().as_secs_f64();
    let mut m = Measured {
        calls_alone,
        visits_with_calls: Run { latencies_us: visits, secs: secs_taken },
        calls_with_visits: Run { latencies_us: calls_during, secs: secs_taken },
    };
    for run in [&mut m.calls_alone, &mut m.visits_with_calls, &mut m.calls_with_visits] {
        run.latencies_us.sort_unstable();
    }
    (m, dir)
}

/// A figure read off one measurement.
type Metric = (&'static str, fn(&Measured) -> f64);

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; the numbers are ours.
    let args: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let secs = args.first().copied().unwrap_or(5.0);
    let rounds = args.get(1).copied().unwrap_or(3.0) as usize;
    let calls_per_sec = args.get(2).copied().unwrap_or(20.0);
    println!(
        "durable acks: {rounds} rounds of {secs} s per setting and load; {VISIT_THREADS} visit threads with {calls_per_sec} call events/s"
    );

    let mut results: Vec<Vec<Measured>> = SETTINGS.iter().map(|_| Vec::new()).collect();
    let mut dirs = Vec::new();
    for round in 0..rounds {
        for (i, (ack_sync, name)) in SETTINGS.iter().enumerate() {
            let (m, dir) = measure(*ack_sync, secs, calls_per_sec);
            dirs.push(dir);
            println!(
                "  round {}: {name:<18} calls alone {:>6.0}/s p50 {:>6.2} ms p99 {:>6.2} ms | visits {:>6.0}/s p99 {:>6.2} ms, calls beside them p50 {:>6.2} ms p99 {:>6.2} ms",
                round + 1,
                m.calls_alone.per_sec(),
                m.calls_alone.pct(0.5),
                m.calls_alone.pct(0.99),
                m.visits_with_calls.per_sec(),
                m.visits_with_calls.pct(0.99),
                m.calls_with_visits.pct(0.5),
                m.calls_with_visits.pct(0.99),
            );
            results[i].push(m);
        }
    }

    let med = |i: usize, f: fn(&Measured) -> f64| median(results[i].iter().map(f).collect());
    let metrics: [Metric; 7] = [
        ("call events alone, per s", |m| m.calls_alone.per_sec()),
        ("call event alone, p50 ms", |m| m.calls_alone.pct(0.5)),
        ("call event alone, p99 ms", |m| m.calls_alone.pct(0.99)),
        ("visits beside calls, per s", |m| m.visits_with_calls.per_sec()),
        ("visit beside calls, p99 ms", |m| m.visits_with_calls.pct(0.99)),
        ("call event beside visits, p50 ms", |m| m.calls_with_visits.pct(0.5)),
        ("call event beside visits, p99 ms", |m| m.calls_with_visits.pct(0.99)),
    ];
    println!("\nmedians, and the ratio to {} in the same run:", SETTINGS[0].1);
    print!("  {:<34}", "");
    for (_, name) in SETTINGS {
        print!(" {name:>26}");
    }
    println!();
    for (label, f) in metrics {
        print!("  {label:<34}");
        let base = med(0, f);
        for i in 0..SETTINGS.len() {
            let v = med(i, f);
            print!(" {:>16.2} ({:>5.2}x)", v, v / base);
        }
        println!();
    }
}
