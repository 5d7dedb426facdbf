//! A real PBX on loopback: Kamailio running the shipped
//! `examples/kamailio/kamailio.cfg`, and sipp running the shipped
//! `uas.xml` (the answering side) and `uac.xml` (the caller), each on a
//! free UDP port with its own temp dir.
//!
//! Every process is stopped when its handle drops, on success or panic.
//! `tail()` gives the end of a process's output for failure messages.

use std::fs::File;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn tool(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_owned())
}

/// `examples/kamailio` in the workspace.
pub fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").join("examples/kamailio")
}

/// A UDP port nobody holds right now on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("a free UDP port")
}

/// A child process whose stdout and stderr go to one log file.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Process {
    fn spawn(name: &str, mut cmd: Command, dir: tempfile::TempDir) -> Process {
        let log = dir.path().join(format!("{name}.log"));
        let out = File::create(&log).expect("a log file");
        let err = out.try_clone().expect("a log file handle");
        cmd.current_dir(dir.path()).stdin(Stdio::null()).stdout(out).stderr(err);
        // Its own process group, so that stopping it also stops its children.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Process { name: name.to_owned(), child, log, dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last `lines` lines of the output (sipp's screen redraws are
    /// control characters; they are dropped).
    pub fn tail(&self, lines: usize) -> String {
        let text = std::fs::read(&self.log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let clean: String = text.chars().filter(|c| !c.is_control() || *c == '\n').collect();
        let all: Vec<&str> = clean.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = all.len().saturating_sub(lines);
        format!("---- {} ({}) ----\n{}", self.name, self.log.display(), all[start..].join("\n"))
    }

    /// `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM to the process group (Kamailio's main process then stops its
    /// workers), SIGKILL if it is still there a few seconds later.
    pub fn stop(&mut self) {
        if self.exited().is_some() {
            self.kill_group("-KILL");
            return;
        }
        self.kill_group("-TERM");
        if self.wait(Duration::from_secs(3)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.kill_group("-KILL");
    }

    fn kill_group(&self, signal: &str) {
        // The group is this child's own (process_group(0) above).
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kamailio in the foreground (`-DD -E`) on `127.0.0.1:<sip_port>`.
pub struct Kamailio {
    pub process: Process,
    pub sip_port: u16,
}

impl Kamailio {
    /// Runs the shipped `kamailio.cfg` with its listen address and UAS
    /// overridden by `-A` defines, posting dialog events to `pbx_url` with
    /// `token`; returns once it answers SIP on its port.
    pub fn start(pbx_url: &str, token: &str, uas_port: u16) -> Kamailio {
        let kamailio = tool("KAMAILIO", "kamailio");
        let dir = tempfile::tempdir().expect("a temp dir for Kamailio");
        let runtime = dir.path().join("run");
        std::fs::create_dir_all(&runtime).expect("Kamailio's runtime dir");
        let sip_port = free_udp_port();
        let mut cmd = Command::new(&kamailio);
        cmd.arg("-f")
            .arg(example_dir().join("kamailio.cfg"))
            .args(["-DD", "-E"])
            .arg("-A")
            .arg(format!("LISTEN=udp:127.0.0.1:{sip_port}"))
            .arg("-A")
            .arg(format!("UAS=\"sip:127.0.0.1:{uas_port}\""))
            .arg("-Y")
            .arg(&runtime)
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-w")
            .arg(dir.path())
            // Small shared and private memory: several may run at once.
            .args(["-m", "32", "-M", "8"])
            .env("RINGSOURCE_PBX_URL", pbx_url)
            .env("RINGSOURCE_PBX_TOKEN", token);
        let mut k = Kamailio { process: Process::spawn("kamailio", cmd, dir), sip_port };
        k.wait_ready(Duration::from_secs(20));
        k
    }

    /// Sends SIP OPTIONS until Kamailio answers (the example answers 405).
    fn wait_ready(&mut self, timeout: Duration) {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("a probe socket");
        probe.set_read_timeout(Some(Duration::from_millis(250))).expect("read timeout");
        let local = probe.local_addr().expect("probe address");
        let deadline = Instant::now() + timeout;
        let mut n = 0;
        loop {
            if let Some(status) = self.process.exited() {
                panic!("Kamailio exited before answering SIP ({status})\n{}", self.process.tail(60));
            }
            n += 1;
            let msg = format!(
                "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch=z9hG4bK-ringsource-probe-{n}\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:probe@{local}>;tag=probe{n}\r\n\
                 To: <sip:127.0.0.1:{port}>\r\n\
                 Call-ID: ringsource-probe-{n}@127.0.0.1\r\n\
                 CSeq: {n} OPTIONS\r\n\
                 Content-Length: 0\r\n\r\n",
                port = self.sip_port
            );
            let _ = probe.send_to(msg.as_bytes(), ("127.0.0.1", self.sip_port));
            let mut buf = [0u8; 2048];
            if let Ok((len, _)) = probe.recv_from(&mut buf)
                && buf[..len].starts_with(b"SIP/2.0 ")
            {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "Kamailio did not answer SIP on 127.0.0.1:{} within {timeout:?}\n{}",
                    self.sip_port,
                    self.process.tail(60)
                );
            }
        }
    }
}

/// One sipp run of a shipped scenario.
pub struct Sipp {
    pub process: Process,
    pub port: u16,
}

impl Sipp {
    fn start(name: &str, scenario: &str, port: u16, extra: &[String]) -> Sipp {
        let sipp = tool("SIPP", "sipp");
        let dir = tempfile::tempdir().expect("a temp dir for sipp");
        let mut cmd = Command::new(&sipp);
        cmd.arg("-sf")
            .arg(example_dir().join(scenario))
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1", "-nostdin"])
            // Its own errors and the messages it saw, for failure reports.
            .args(["-trace_err", "-error_file"])
            .arg(dir.path().join("errors.log"))
            .args(["-trace_msg", "-message_file"])
            .arg(dir.path().join("messages.log"))
            // The answering side waits while the browser part runs.
            .args(["-timeout", "120s"])
            .args(extra);
        Sipp { process: Process::spawn(name, cmd, dir), port }
    }

    /// The answering side (`uas.xml`) on a free port: rings, answers, waits
    /// for BYE, then exits.
    pub fn uas() -> Sipp {
        Sipp::start("sipp-uas", "uas.xml", free_udp_port(), &[])
    }

    /// The caller (`uac.xml`): dials `number` (digits) through the proxy on
    /// `127.0.0.1:<proxy_port>`, talks, hangs up, then exits.
    pub fn call(number: &str, proxy_port: u16) -> Sipp {
        let args = ["-s".to_owned(), number.to_owned(), format!("127.0.0.1:{proxy_port}")];
        Sipp::start("sipp-uac", "uac.xml", free_udp_port(), &args)
    }

    /// The output tail plus sipp's error and message traces.
    pub fn report(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.process.dir().join(f)).unwrap_or_default();
        let messages = read("messages.log");
        let start = messages.len().saturating_sub(6000);
        let start = (start..=messages.len()).find(|i| messages.is_char_boundary(*i)).unwrap_or(0);
        format!(
            "{}\n-- errors --\n{}\n-- messages (end) --\n{}",
            self.process.tail(25),
            read("errors.log"),
            &messages[start..]
        )
    }
}
