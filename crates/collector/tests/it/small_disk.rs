//! The collector on a small disk: the write-ahead log is fitted to the free
//! space instead of the server refusing to start, and a disk that fills up
//! is a storage outage that the log reports as one line and a summary, not
//! a line per request. Each test mounts a tmpfs of its own (root only; the
//! test says so and passes over it without root).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{paid, site_toml, visit_body};
use ringsource_collector::outage::SUMMARY_INTERVAL;
use serde_json::Value;

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("small_disk: cannot mount a tmpfs here (needs root); not run");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes zeros into a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        while file.write_all(&chunk[..512]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// `ringsource serve` with its database on `disk`, the WAL asked for as
/// `wal_mib`; stderr goes to a file beside the test's temp folder.
struct Collector {
    child: Child,
    base: String,
    stderr: PathBuf,
    _logs: tempfile::TempDir,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(disk: &SmallDisk, wal_mib: u32) -> Collector {
    let logs = tempfile::tempdir().unwrap();
    let db = disk.path().join("ringsource.sqlite");
    let config = logs.path().join("ringsource.toml");
    // Dozens of visits from one address: no rate limit in the way.
    let limit = "[server.rate_limit]\nburst = 10000\nper_minute = 10000";
    let text =
        site_toml(&db, limit, "", "").replace("wal_preallocate_mib = 1", &format!("wal_preallocate_mib = {wal_mib}"));
    std::fs::write(&config, text).unwrap();
    let stderr = logs.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringsource"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("did not start: {line:?} {log}"));
    Collector { base: base.to_owned(), child, stderr, _logs: logs }
}

impl Collector {
    fn visit(&self) -> (u16, Value) {
        let resp = crate::common::http::Client::new()
            .post(format!("{}/v1/sites/shop/visits", self.base))
            .header("content-type", "text/plain")
            .body(visit_body(None, paid()).to_string())
            .timeout(Duration::from_secs(30))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }
}

#[test]
fn the_wal_is_fitted_to_a_small_disk() {
    let Some(disk) = SmallDisk::mount("8m") else { return };
    // The default 64 MiB does not fit in 8 MiB: a quarter of what is free does.
    let server = serve(&disk, 64);
    let wal = std::fs::metadata(disk.path().join("ringsource.sqlite-wal")).unwrap().len();
    assert!((1 << 20..=2 << 20).contains(&wal), "a WAL of {wal} bytes");
    assert_eq!(wal % (1 << 20), 0, "whole MiB");
    assert!(server.log().contains("64 MiB of write-ahead log asked"), "{}", server.log());
    for _ in 0..20 {
        assert_eq!(server.visit().0, 200);
    }
    drop(server);

    // Too small for even a MiB of WAL: it grows as SQLite writes it.
    let Some(tiny) = SmallDisk::mount("2m") else { return };
    let server = serve(&tiny, 64);
    assert!(server.log().contains("the WAL grows as it is written"), "{}", server.log());
    assert_eq!(server.visit().0, 200);
}

#[test]
fn a_full_disk_is_logged_once_and_summarised_not_per_request() {
    let Some(disk) = SmallDisk::mount("4m") else { return };
    let server = serve(&disk, 0);
    let filler = disk.fill();
    // Commits go on into the WAL's free frames for a while; once it must
    // grow, and the checkpoint cannot grow the database, every write fails.
    // At that edge a checkpoint can still free a frame or two for a commit
    // (seen on a loaded machine), so the outage starts at three refusals in
    // a row.
    let (mut tries, mut refused_in_a_row) = (0, 0);
    while refused_in_a_row < 3 {
        refused_in_a_row = if server.visit().0 == 200 { 0 } else { refused_in_a_row + 1 };
        tries += 1;
        assert!(tries < 500, "{tries} visits and the disk is not full yet");
    }
    let before = server.log();
    let refusing = std::time::Instant::now();
    let failed = 30;
    // A checkpoint that copies WAL frames onto pages the file already has
    // can free a frame for one more commit now and then, on a quiet machine
    // too (seen in two full runs this session): those answers are 200 and logged at
    // debug, so they add no line below. Every other answer is the server's
    // fault, said as such.
    let (mut refused, mut stored) = (0, 0);
    while refused < failed {
        let (status, body) = server.visit();
        if status == 200 {
            stored += 1;
            assert!(stored <= 3, "{stored} visits stored on a full disk");
            continue;
        }
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["error"]["code"], "storage_error", "{body}");
        refused += 1;
    }
    std::thread::sleep(SUMMARY_INTERVAL + Duration::from_secs(2));
    // What the outage added to the log meanwhile: a line per refused visit
    // with its code (ringsource_collector::requests), and of the errors
    // themselves only summaries, each counting the refused visits (and the
    // checkpoint's retries), not the error apiece.
    let added = server.log()[before.len()..].to_owned();
    let (requests, log): (Vec<&str>, Vec<&str>) =
        added.lines().partition(|l| l.contains(ringsource_collector::http::requests::TARGET));
    assert_eq!(requests.len(), failed as usize, "{added}");
    assert!(requests.iter().all(|l| l.contains(" ERROR ") && l.contains("code=storage_error")), "{added}");
    let counted: u64 = log
        .iter()
        .map(|l| {
            let summary =
                l.split_once("ringsource_collector::outage: ").and_then(|(_, l)| l.split_once(" more server error"));
            summary.unwrap_or_else(|| panic!("not a summary: {l:?} in {added}")).0.parse::<u64>().unwrap()
        })
        .sum();
    let log = log.join("\n");
    // A summary per interval, however long the refusals took (seconds on a
    // loaded machine): never a line per error.
    let intervals = refusing.elapsed().as_secs() / SUMMARY_INTERVAL.as_secs() + 1;
    assert!((1..=intervals as usize).contains(&log.lines().count()), "{} s: {log}", refusing.elapsed().as_secs());
    assert!(counted >= failed, "{counted} errors counted: {log}");
    eprintln!("small_disk: {tries} visits until three in a row were refused; then {failed} refused, logged as:\n{log}");

    // Room again: the collector recovers by itself.
    std::fs::remove_file(filler).unwrap();
    assert_eq!(server.visit().0, 200);
}
