//! `tolk serve`: a real server on 127.0.0.1:0 with the real model, channels from real
//! recordings, real WebSocket clients (tungstenite), the archive in a real SQLite file.
//!
//! The tests by subject, one file each; here, what they share (a server, its clients, what
//! a client has seen, checks of exported files).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, stream::MaybeTlsStream, Message, WebSocket};

use crate::util::*;

mod access;
mod archive;
mod captions;
mod cluster;
mod ingest;
mod meeting;
mod pages;
mod topic;

const TOKEN: &str = "organizer-secret-for-tests";

/// A `tolk serve` process; killed when dropped.
struct Server {
    child: Child,
    addr: String,
    /// With `--tls`: the certificate's fingerprint as printed.
    fingerprint: Option<String>,
}

impl Server {
    /// Stops the server as Ctrl-C does (SIGINT: the graceful shutdown) and waits for it
    /// to exit, at most `limit`; whether it did.
    fn interrupt(&mut self, limit: std::time::Duration) -> bool {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .is_ok_and(|s| s.success());
        let t = std::time::Instant::now();
        while sent && t.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tolk serve --config meeting.toml` in `dir` on a free port and waits for its URL.
fn serve(dir: &Path) -> Server {
    serve_with(dir, &[])
}

/// [`serve`] with more arguments.
fn serve_with(dir: &Path, args: &[&str]) -> Server {
    let mut cmd = tolk(dir);
    cmd.stderr(Stdio::inherit());
    serve_command(cmd, args)
}

/// [`serve_with`] from a command set up by the caller (its environment, its stderr).
fn serve_command(mut cmd: std::process::Command, args: &[&str]) -> Server {
    let mut child = cmd
        .args([
            "serve",
            "--config",
            "meeting.toml",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--organizer-token", TOKEN])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The address, then the fingerprint (with --tls), then the WebSocket address.
        let (mut url, mut fingerprint) = (None, None);
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(f) = line.strip_prefix("TLS certificate SHA-256: ") {
                fingerprint = Some(f.to_string());
            }
            if let Some(u) = line
                .strip_prefix("listening on http://")
                .or_else(|| line.strip_prefix("listening on https://"))
            {
                url = Some(u.to_string());
            }
            if line.starts_with("captions (WebSocket)") {
                if let Some(u) = url.take() {
                    let _ = tx.send((u, fingerprint.clone()));
                }
            }
        }
    });
    let (addr, fingerprint) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server printed its address");
    Server {
        child,
        addr,
        fingerprint,
    }
}

/// A meeting with an English floor (jfk.wav) and a Spanish channel (12 s of a Spanish
/// recording), both played once at real-time pace. The record is not revised: these tests
/// compare what clients saw at different moments, and a revision in between would differ
/// by design (`revise = true` is tested on its own, `captions::the_record_is_revised…`).
fn write_meeting(dir: &Path, off_record: bool) {
    trimmed("es-demo-instruct.wav", dir, "es-12s.wav", 12);
    let text = format!(
        r#"[meeting]
id = "test"
title = "Raid and rescue: a test meeting"
off_record = {off_record}
archive = "archive.sqlite"
model = "base"
glossary = "{glossary}"
revise = false

[[channel]]
id = "floor"
language = "en"
label = "Floor"
floor = true
source = {{ kind = "file", path = "{jfk}" }}

[[channel]]
id = "es"
language = "es"
label = "Español"
source = {{ kind = "file", path = "es-12s.wav" }}
"#,
        glossary = root().join("glossaries/sex-work-rights.toml").display(),
        jfk = testdata("jfk.wav").display(),
    );
    std::fs::write(dir.join("meeting.toml"), text).unwrap();
}

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(addr: &str) -> Ws {
    let (ws, _) = tungstenite::connect(format!("ws://{addr}/ws")).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    ws
}

fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

/// The next JSON message, or `None` if none came within the read timeout.
fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(_) => {
                // Closed (the server was killed, or failed): nothing more will come.
                std::thread::sleep(Duration::from_millis(50));
                return None;
            }
        }
    }
}

/// What a client has seen.
#[derive(Default)]
struct Seen {
    finals: BTreeMap<String, Vec<Value>>,
    ended: BTreeMap<String, bool>,
    statuses: Vec<Value>,
    errors: Vec<Value>,
    /// `revised` messages (also applied to `finals`, as the pages do).
    revised: Vec<Value>,
    /// The finals a `revised` replaced, as they were before it.
    superseded: Vec<Value>,
    other: Vec<Value>,
}

impl Seen {
    fn take(&mut self, m: Value) {
        match m["type"].as_str().unwrap() {
            "final" => self
                .finals
                .entry(m["channel"].as_str().unwrap().to_string())
                .or_default()
                .push(m),
            "snapshot" => {
                let ch = m["channel"].as_str().unwrap().to_string();
                let list = self.finals.entry(ch).or_default();
                for f in m["finals"].as_array().unwrap() {
                    if !list.iter().any(|x| x["seq"] == f["seq"]) {
                        list.push(f.clone());
                    }
                }
            }
            "status" => {
                let ended = m["state"] == "ended";
                self.ended
                    .insert(m["channel"].as_str().unwrap().to_string(), ended);
                self.statuses.push(m);
            }
            "error" => self.errors.push(m),
            "revised" => {
                let ch = m["channel"].as_str().unwrap().to_string();
                if let Some(f) = self
                    .finals
                    .get_mut(&ch)
                    .and_then(|l| l.iter_mut().find(|f| f["seq"] == m["seq"]))
                {
                    self.superseded.push(f.clone());
                    *f = m.clone();
                    f["type"] = "final".into();
                }
                self.revised.push(m);
            }
            _ => self.other.push(m),
        }
    }

    fn all_ended(&self) -> bool {
        ["floor", "es"]
            .iter()
            .all(|c| self.ended.get(*c).copied().unwrap_or(false))
    }

    fn seqs(&self, ch: &str) -> Vec<u64> {
        self.finals
            .get(ch)
            .map(|l| l.iter().map(|f| f["seq"].as_u64().unwrap()).collect())
            .unwrap_or_default()
    }

    fn text(&self, ch: &str) -> String {
        self.finals
            .get(ch)
            .map(|l| {
                l.iter()
                    .map(|f| f["text"].as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    }
}

/// Reads until `until` holds or `secs` pass.
fn follow(ws: &mut Ws, seen: &mut Seen, secs: u64, until: impl Fn(&Seen) -> bool) {
    let t = Instant::now();
    while !until(seen) && t.elapsed() < Duration::from_secs(secs) {
        if let Some(m) = next(ws) {
            seen.take(m);
        }
    }
}

/// A plain HTTP GET; returns status and body.
fn get(addr: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    request(addr, "GET", path, auth)
}

/// A plain HTTP request with no body; returns status and body.
fn request(addr: &str, method: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    request_with(addr, method, path, auth, "")
}

/// A plain HTTP request with a JSON body; returns status and body.
fn post_json(addr: &str, path: &str, auth: Option<&str>, body: &Value) -> (u16, String) {
    request_with(addr, "POST", path, auth, &body.to_string())
}

fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let length = body.len();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{body}"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

/// WebVTT as a player reads it: the header, then cues of an optional id, a timing line
/// `hh:mm:ss.mmm --> hh:mm:ss.mmm` with start < end, starts in order, and text.
/// Returns how many cues.
fn check_vtt(vtt: &str) -> usize {
    let mut blocks = vtt.split("\n\n");
    assert_eq!(blocks.next().unwrap().trim(), "WEBVTT");
    let mut n = 0;
    let mut previous = 0;
    for b in blocks.filter(|b| !b.trim().is_empty()) {
        let lines: Vec<&str> = b.lines().collect();
        let timing = lines.iter().position(|l| l.contains("-->")).unwrap();
        let (s, e) = lines[timing].split_once(" --> ").unwrap();
        assert!(stamp(s, '.') < stamp(e, '.'), "{b}");
        assert!(stamp(s, '.') >= previous, "out of order: {vtt}");
        previous = stamp(s, '.');
        assert!(lines.len() > timing + 1, "cue text: {b}");
        n += 1;
    }
    n
}

/// SRT: numbered cues from 1, `hh:mm:ss,mmm --> hh:mm:ss,mmm`, text, a blank line.
fn check_srt(srt: &str, cues: usize) {
    let blocks: Vec<&str> = srt.split("\n\n").filter(|b| !b.trim().is_empty()).collect();
    assert_eq!(blocks.len(), cues);
    for (i, b) in blocks.iter().enumerate() {
        let lines: Vec<&str> = b.lines().collect();
        assert_eq!(lines[0], (i + 1).to_string());
        let (s, e) = lines[1].split_once(" --> ").unwrap();
        assert!(stamp(s, ',') < stamp(e, ','), "{b}");
        assert!(!lines[2].is_empty());
    }
}

/// Milliseconds of a `hh:mm:ss.mmm` stamp.
fn stamp(s: &str, sep: char) -> u64 {
    let (hms, ms) = s.split_once(sep).unwrap();
    let p: Vec<u64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    assert_eq!(p.len(), 3, "{s}");
    assert_eq!(ms.len(), 3, "{s}");
    ((p[0] * 60 + p[1]) * 60 + p[2]) * 1000 + ms.parse::<u64>().unwrap()
}

/// Runs the page test `web/tests/SCRIPT` (node, headless chromium) against the server at
/// `url`, with `env`; its report is shown, and it must pass. Artifacts go to
/// `target/browser/`.
fn page_test(script: &str, url: &str, env: &[(&str, &std::ffi::OsStr)]) {
    let out = std::process::Command::new("node")
        .arg(root().join("web/tests").join(script))
        .env("TOLK_URL", url)
        .env("TOLK_ARTIFACTS", root().join("target/browser"))
        .envs(env.iter().copied())
        .current_dir(root())
        .output()
        .expect("node runs (make test installs it)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{script}:\n{report}");
    assert!(out.status.success(), "{script} failed:\n{report}");
}

/// A listener whose receive buffer is as small as the kernel allows: when it stops reading,
/// the server's socket to it is full after a few kilobytes instead of megabytes.
fn connect_small(addr: &str) -> Ws {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let tcp = rt
        .block_on(async {
            let s = tokio::net::TcpSocket::new_v4()?;
            s.set_recv_buffer_size(2048)?;
            s.connect(addr.parse().unwrap()).await
        })
        .unwrap()
        .into_std()
        .unwrap();
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (ws, _) =
        tungstenite::client(format!("ws://{addr}/ws"), MaybeTlsStream::Plain(tcp)).unwrap();
    ws
}

/// One number from `/metrics`.
fn metric(addr: &str, name: &str) -> f64 {
    let (_, metrics) = get(addr, "/metrics", None);
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
        .parse()
        .unwrap()
}

/// Finals by seq, each once, in order; asserts that the seqs run without a gap.
fn gapless(seen: &Seen, ch: &str) -> Vec<(u64, String)> {
    let mut all: Vec<(u64, String)> = seen
        .finals
        .get(ch)
        .map(|l| {
            l.iter()
                .map(|f| (f["seq"].as_u64().unwrap(), f["text"].to_string()))
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    all.dedup();
    for w in all.windows(2) {
        assert_eq!(w[1].0, w[0].0 + 1, "a gap or a repeat: {all:?}");
    }
    all
}
