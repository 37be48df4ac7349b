//! `tolk serve`: a real server on 127.0.0.1:0 with the real model, channels from real
//! recordings, real WebSocket clients (tungstenite), the archive in a real SQLite file.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, stream::MaybeTlsStream, Message, WebSocket};

use crate::util::*;

const TOKEN: &str = "organizer-secret-for-tests";

/// A `tolk serve` process; killed when dropped.
struct Server {
    child: Child,
    addr: String,
    /// With `--tls`: the certificate's fingerprint as printed.
    fingerprint: Option<String>,
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
/// recording), both played once at real-time pace.
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
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

/// Two channels, several listeners: each gets the same ordered finals; a late joiner gets a
/// snapshot; a reconnect with `since` gets exactly what it missed; a listener that never
/// reads delays no one; malformed messages get errors and the connection lives on.
#[test]
fn listeners_get_every_final_in_order_and_resume_without_gap() {
    let dir = tempfile::tempdir().unwrap();
    write_meeting(dir.path(), false);
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let addr = server.addr.clone();

    let both = json!({"type": "subscribe", "channels": ["floor", "es"]});
    let mut a = connect(&addr);
    let mut b = connect(&addr);
    let mut stalled = connect(&addr);
    for ws in [&mut a, &mut b, &mut stalled] {
        let hello = next(ws).expect("a meeting message first");
        assert_eq!(hello["type"], "meeting");
        assert_eq!(hello["protocol"], 1);
        assert_eq!(hello["channels"][1]["id"], "es");
        send_json(ws, both.clone());
    }
    // Bad input on `b`: errors, and the connection goes on.
    for bad in ["not json", r#"{"type":"shout"}"#, r#"{"type":"subscribe"}"#] {
        b.send(Message::text(bad)).unwrap();
    }
    send_json(
        &mut b,
        json!({"type": "subscribe", "channels": ["klingon"]}),
    );
    // A binary frame, and a message over the 64 KiB limit (docs/protocol.md): answered.
    b.send(Message::binary(vec![0u8; 16])).unwrap();
    let big = format!(
        r#"{{"type":"ping","id":1,"pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    b.send(Message::text(big)).unwrap();
    send_json(&mut b, json!({"type": "ping", "id": 7}));

    let (mut sa, mut sb) = (Seen::default(), Seen::default());
    // `a` drops out after the floor's second final and comes back later with `since`.
    follow(&mut a, &mut sa, 90, |s| s.seqs("floor").len() >= 2);
    let had = *sa.seqs("floor").last().expect("floor finals");
    drop(a);
    follow(&mut b, &mut sb, 120, Seen::all_ended);
    assert!(sb.all_ended(), "both channels ended: {:?}", sb.ended);

    let codes: Vec<&str> = sb
        .errors
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "bad_message",
            "bad_message",
            "bad_message",
            "unknown_channel",
            "unsupported",
            "unsupported"
        ]
    );
    assert!(
        sb.errors[5]["message"]
            .as_str()
            .unwrap()
            .contains("over the limit of 65536 bytes"),
        "{:?}",
        sb.errors[5]
    );
    assert!(sb.other.iter().any(|m| m["type"] == "pong" && m["id"] == 7));

    // Finals are numbered 1, 2, 3… per channel with no gap, and say what was said.
    for ch in ["floor", "es"] {
        let seqs = sb.seqs(ch);
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{ch}");
    }
    let w = tolk::eval::wer(&reference("jfk.txt"), &sb.text("floor"), "en");
    assert!(
        w.rate() <= 0.25,
        "floor WER {:.2}: {}",
        w.rate(),
        sb.text("floor")
    );
    assert!(
        sb.text("es").to_lowercase().contains("asterisk"),
        "{}",
        sb.text("es")
    );

    // The reconnect with `since` gets exactly the finals it missed.
    let mut a2 = connect(&addr);
    next(&mut a2);
    send_json(
        &mut a2,
        json!({"type": "subscribe", "channels": ["floor"], "since": {"floor": had}}),
    );
    let mut sa2 = Seen::default();
    follow(&mut a2, &mut sa2, 5, |_| false);
    let mut resumed = sa.seqs("floor");
    resumed.truncate(resumed.iter().position(|s| *s == had).unwrap() + 1);
    resumed.extend(sa2.seqs("floor"));
    assert_eq!(resumed, sb.seqs("floor"), "resume: no gap, no duplicate");
    for (x, y) in sa2.finals["floor"]
        .iter()
        .zip(sb.finals["floor"].iter().skip(had as usize))
    {
        assert_eq!(x["text"], y["text"]);
    }

    // A late joiner gets the recent finals as a snapshot.
    let mut late = connect(&addr);
    next(&mut late);
    send_json(&mut late, json!({"type": "subscribe", "channels": ["es"]}));
    let snap = next(&mut late).expect("a snapshot");
    assert_eq!(snap["type"], "snapshot");
    let key = |f: &Value| (f["seq"].as_u64().unwrap(), f["text"].to_string());
    let got: Vec<_> = snap["finals"].as_array().unwrap().iter().map(key).collect();
    let want: Vec<_> = sb.finals["es"]
        .iter()
        .rev()
        .take(20)
        .rev()
        .map(key)
        .collect();
    assert_eq!(got, want);

    // The listener that never read a byte is still connected and delayed no one (`b` got
    // every final above); it now gets its whole backlog in order.
    let mut ss = Seen::default();
    follow(&mut stalled, &mut ss, 10, Seen::all_ended);
    assert_eq!(ss.seqs("floor"), sb.seqs("floor"));

    // Metrics and health.
    let (code, metrics) = get(&addr, "/metrics", None);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("tolk_listeners{channel=\"es\"}"),
        "{metrics}"
    );
    let finals_total: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tolk_finals_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        finals_total as usize,
        sb.seqs("floor").len() + sb.seqs("es").len()
    );
    let (code, health) = get(&addr, "/healthz", None);
    assert_eq!(code, 200, "{health}");

    // Everything the server answers is in docs/protocol.md: every metric, every field of
    // the organizer's status and of the health answer.
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md")).unwrap();
    let names: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.len() >= 15, "{metrics}");
    let (_, organizer) = get(&addr, "/api/organizer", Some(TOKEN));
    let mut fields = std::collections::BTreeSet::new();
    for body in [&organizer, &health] {
        let v: Value = serde_json::from_str(body).unwrap();
        let channel = &v["channels"][0];
        for obj in [&v, channel] {
            fields.extend(obj.as_object().unwrap().keys().cloned());
        }
    }
    let missing: Vec<String> = names
        .iter()
        .map(|n| n.to_string())
        .chain(fields)
        .filter(|n| !doc.contains(&format!("`{n}`")) && !doc.contains(&format!("\"{n}\"")))
        .collect();
    assert!(missing.is_empty(), "not in docs/protocol.md: {missing:?}");
}

/// A final a listener has seen is on disk: the server killed with SIGKILL mid-meeting, the
/// archive has every final the listener received, exports parse, a restart continues the
/// numbering. The organizer's exports need the token.
#[test]
fn the_archive_survives_kill_9_and_exports_what_listeners_saw() {
    let dir = tempfile::tempdir().unwrap();
    write_meeting(dir.path(), false);
    let _guard = whisper_lock();
    let mut server = serve(dir.path());
    let addr = server.addr.clone();
    let mut ws = connect(&addr);
    next(&mut ws);
    send_json(
        &mut ws,
        json!({"type": "subscribe", "channels": ["floor", "es"]}),
    );
    let mut seen = Seen::default();
    follow(&mut ws, &mut seen, 90, |s| s.seqs("floor").len() >= 3);
    assert!(seen.seqs("floor").len() >= 3, "floor finals came");

    // Exports need the organizer's token.
    assert_eq!(get(&addr, "/api/export/floor?format=vtt", None).0, 401);
    assert_eq!(
        get(&addr, "/api/export/floor?format=vtt", Some("wrong")).0,
        401
    );
    let (code, vtt) = get(&addr, "/api/export/floor?format=vtt", Some(TOKEN));
    assert_eq!(code, 200, "{vtt}");
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    // A page of another site cannot open the caption stream through a visitor's browser;
    // this server's own pages can. Every answer says: not cached, no referrer.
    let upgrade = |origin: &str| {
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        String::from_utf8_lossy(&head[9..12]).to_string()
    };
    assert_eq!(upgrade("http://evil.example"), "403");
    assert_eq!(upgrade(&format!("http://{addr}")), "101");
    let mut s = TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /api/meeting HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let raw = raw.to_lowercase();
    assert!(
        raw.contains("cache-control: no-store") && raw.contains("referrer-policy: no-referrer"),
        "{raw}"
    );

    // Attendees download transcripts only where the meeting allows it (this one does not).
    let (code, why) = get(&addr, "/transcript/floor", None);
    assert_eq!(code, 403, "{why}");
    assert!(why.contains("downloads = true"), "{why}");

    // kill -9, mid-meeting: everything received so far must be archived.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    while let Some(m) = next(&mut ws) {
        seen.take(m);
    }
    let export = |fmt: &str| {
        let out = tolk(dir.path())
            .args(["export", "floor", "--format", fmt])
            .output()
            .unwrap();
        success(out)
    };
    let archived: Vec<Value> = serde_json::from_str(&export("json")).unwrap();
    let received = &seen.finals["floor"];
    assert!(archived.len() >= received.len());
    for r in received {
        let a = archived
            .iter()
            .find(|a| a["seq"] == r["seq"])
            .unwrap_or_else(|| panic!("final {} was sent but not archived", r["seq"]));
        assert_eq!(a["text"], r["text"]);
        assert_eq!(a["raw_text"], r["raw_text"]);
    }
    assert_eq!(check_vtt(&export("vtt")), archived.len());
    check_srt(&export("srt"), archived.len());
    let side = success(
        tolk(dir.path())
            .args(["export", "floor", "--with", "es"])
            .output()
            .unwrap(),
    );
    assert!(side.starts_with("| time | floor | es |"), "{side}");

    // A restart continues the numbering after the archive's last final, and a client
    // resumes where it was (as the pages do: `since` its last final).
    let last = archived.last().unwrap()["seq"].as_u64().unwrap();
    let seen_last = *seen.seqs("floor").iter().max().unwrap();
    let server = serve(dir.path());
    let mut ws = connect(&server.addr);
    next(&mut ws);
    send_json(
        &mut ws,
        json!({"type": "subscribe", "channels": ["floor"], "since": {"floor": seen_last}}),
    );
    let mut again = Seen::default();
    follow(&mut ws, &mut again, 90, |s| {
        s.seqs("floor").iter().any(|&q| q > last)
    });
    // What it missed (archived before the kill, never received), then the new ones: no gap,
    // nothing twice, numbered on from the archive's last.
    let got = again.seqs("floor");
    let want: Vec<u64> = (seen_last + 1..=*got.last().unwrap()).collect();
    assert_eq!(got, want);
    assert!(got.contains(&(last + 1)), "{got:?}");
    // Its times go on too: the meeting's transcript, before and after, is in order.
    let first = again.finals["floor"]
        .iter()
        .find(|f| f["seq"] == last + 1)
        .unwrap();
    let last_end = archived.last().unwrap()["end"].as_f64().unwrap();
    assert!(
        first["start"].as_f64().unwrap() >= last_end,
        "{first} after {last_end}"
    );
    let (code, vtt) = get(&server.addr, "/api/export/floor?format=vtt", Some(TOKEN));
    assert_eq!(code, 200, "{vtt}");
    assert!(check_vtt(&vtt) >= archived.len() + again.seqs("floor").len());
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

/// Off the record, captions flow and nothing is written.
#[test]
fn off_the_record_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    write_meeting(dir.path(), true);
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let mut ws = connect(&server.addr);
    let hello = next(&mut ws).unwrap();
    assert_eq!(hello["off_record"], true);
    send_json(&mut ws, json!({"type": "subscribe", "channels": ["floor"]}));
    let mut seen = Seen::default();
    follow(&mut ws, &mut seen, 90, |s| !s.seqs("floor").is_empty());
    assert!(!seen.seqs("floor").is_empty(), "captions flow");
    let (code, _) = get(&server.addr, "/api/export/floor", Some(TOKEN));
    assert_eq!(code, 404);
    drop(server);
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !files.iter().any(|f| f.contains("sqlite")),
        "nothing written: {files:?}"
    );
}

/// The organizer goes off the record in the middle of a meeting and back on: captions flow
/// throughout, every listener is told in order with the finals, and the archive holds
/// exactly the finals published on the record.
#[test]
fn the_organizer_goes_off_the_record_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[meeting]
id = "switch"
title = "On and off the record"
archive = "archive.sqlite"
model = "base"

[[channel]]
id = "floor"
language = "en"
floor = true
source = {{ kind = "file", path = "{wav}" }}
"#,
        wav = testdata("en-demo-congrats.wav").display(),
    );
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let addr = server.addr.clone();
    let (code, _) = request(&addr, "POST", "/api/off-record?off=true", None);
    assert_eq!(code, 401, "no token, no switch");
    let (code, _) = request(&addr, "POST", "/api/off-record?off=maybe", Some(TOKEN));
    assert_eq!(code, 400);

    let mut ws = connect(&addr);
    assert_eq!(next(&mut ws).unwrap()["off_record"], false);
    send_json(&mut ws, json!({"type": "subscribe", "channels": ["floor"]}));
    // (seq, off the record when it came) for every final, in order.
    let mut finals: Vec<(u64, bool)> = Vec::new();
    let mut off = false;
    let mut switched = Vec::new();
    let t = Instant::now();
    let mut ended = false;
    while !ended && t.elapsed() < Duration::from_secs(120) {
        let Some(m) = next(&mut ws) else { continue };
        match m["type"].as_str().unwrap() {
            "final" => finals.push((m["seq"].as_u64().unwrap(), off)),
            "meeting" => {
                off = m["off_record"].as_bool().unwrap();
                switched.push(off);
            }
            "status" => ended = m["state"] == "ended",
            _ => {}
        }
        let said = |o: bool| finals.iter().filter(|(_, x)| *x == o).count();
        // Off after the first final, back on after two more.
        if switched.is_empty() && said(false) == 1 && !off {
            let (code, body) = request(&addr, "POST", "/api/off-record?off=true", Some(TOKEN));
            assert_eq!((code, body.as_str()), (200, r#"{"off_record":true}"#));
            switched.push(true);
        } else if switched == [true, true] && said(true) == 2 {
            let (code, _) = request(&addr, "POST", "/api/off-record?off=false", Some(TOKEN));
            assert_eq!(code, 200);
            switched.push(false);
        }
    }
    assert!(ended, "the floor ended: {finals:?}");
    // (each switch is noted twice: when asked, and when the event came)
    assert_eq!(switched, [true, true, false, false], "{finals:?}");
    let on: Vec<u64> = finals.iter().filter(|f| !f.1).map(|f| f.0).collect();
    let off_seqs: Vec<u64> = finals.iter().filter(|f| f.1).map(|f| f.0).collect();
    assert!(off_seqs.len() >= 2, "{finals:?}");
    assert!(
        on.len() >= 2,
        "finals on the record after coming back: {finals:?}"
    );

    let (code, body) = get(&addr, "/api/export/floor?format=json", Some(TOKEN));
    assert_eq!(code, 200);
    let archived: Vec<u64> = serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        archived, on,
        "the archive holds the finals on the record, no others"
    );
}

/// The organizer stops a channel: from then on nothing said on it is transcribed (the
/// finals that still come are of speech before the stop), listeners see `stopped`, the other
/// channel goes on; started again, it transcribes again.
#[test]
fn the_organizer_stops_a_channel_and_starts_it_again() {
    let dir = tempfile::tempdir().unwrap();
    trimmed("es-demo-instruct.wav", dir.path(), "es-12s.wav", 12);
    let text = format!(
        r#"[meeting]
title = "Stop and start"
off_record = true
model = "base"

[[channel]]
id = "floor"
language = "en"
floor = true
source = {{ kind = "file", path = "{wav}", loop = true }}

[[channel]]
id = "es"
language = "es"
source = {{ kind = "file", path = "es-12s.wav", loop = true }}
"#,
        wav = testdata("en-demo-congrats.wav").display(),
    );
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let addr = server.addr.clone();
    let stop = |on: bool| {
        request(
            &addr,
            "POST",
            &format!("/api/channel/es?stopped={on}"),
            Some(TOKEN),
        )
    };
    assert_eq!(
        request(&addr, "POST", "/api/channel/es?stopped=true", None).0,
        401
    );
    assert_eq!(
        request(&addr, "POST", "/api/channel/nope?stopped=true", Some(TOKEN)).0,
        404
    );
    // Seconds of audio the es channel has had (media time, silence included).
    let media = || {
        let (_, body) = get(&addr, "/api/organizer", Some(TOKEN));
        let v: Value = serde_json::from_str(&body).unwrap();
        v["channels"][1]["audio_secs"].as_f64().unwrap()
    };

    let mut ws = connect(&addr);
    next(&mut ws);
    send_json(
        &mut ws,
        json!({"type": "subscribe", "channels": ["floor", "es"]}),
    );
    let mut seen = Seen::default();
    follow(&mut ws, &mut seen, 90, |s| !s.seqs("es").is_empty());
    assert!(!seen.seqs("es").is_empty(), "es finals came");

    let (code, body) = stop(true);
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"channel":"es","stopped":true}"#)
    );
    let stopped_at = media();
    let (floor_before, es_before) = (seen.seqs("floor").len(), seen.seqs("es").len());
    let mut said_stopped = false;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(25) {
        let Some(m) = next(&mut ws) else { continue };
        if m["type"] == "status" && m["channel"] == "es" {
            said_stopped |= m["state"] == "stopped";
        }
        seen.take(m);
    }
    assert!(said_stopped, "listeners were told the channel stopped");
    for f in &seen.finals["es"][es_before..] {
        let start = f["start"].as_f64().unwrap();
        assert!(
            start < stopped_at + 1.5,
            "a final of audio after the stop (at {stopped_at} s): {f}"
        );
    }
    assert!(
        seen.seqs("floor").len() > floor_before,
        "the floor went on while es was stopped"
    );

    let (code, _) = stop(false);
    assert_eq!(code, 200);
    let started_at = media();
    follow(&mut ws, &mut seen, 60, |s| {
        s.finals["es"]
            .iter()
            .any(|f| f["start"].as_f64().unwrap() >= started_at - 1.5)
    });
    assert!(
        seen.finals["es"]
            .iter()
            .any(|f| f["start"].as_f64().unwrap() >= started_at - 1.5),
        "es transcribes again after the start (at {started_at} s): {}",
        seen.text("es")
    );
}

/// The pages in a real browser: `web/tests/*.mjs` drive Debian's headless chromium
/// (playwright-core) against a real server transcribing speech. The attendee page: finals in
/// order, a dropped connection resumed with no gap, nothing fetched from elsewhere, nothing
/// kept on the phone. The interpreter's desk: term cards in the booth language for the
/// glossary terms said on the floor, their own channel beside. The organizer's page: token,
/// channels, levels, QR code, off the record and back, a WebVTT export that parses. The
/// floor's first word is a protected name: the attendee page never shows it; the
/// interpreter's desk takes the key from its link out of the address bar.
/// Screenshots and the export in `target/browser/`. The floor is synthesised (espeak-ng, looped): no recording we can
/// fetch says the glossary's words.
#[test]
fn the_pages_work_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    say(
        &dir.path().join("floor.wav"),
        "Today, sex workers were arrested in a police raid. They want rights, not rescue. \
         The network NSWP says that decriminalisation of sex work protects their health.",
    );
    trimmed("es-demo-instruct.wav", dir.path(), "es-12s.wav", 12);
    // The floor's first word is the meeting's protected name: withheld from attendees, read
    // by the interpreter through the key in the link.
    let interpreter_key = "interpreter-key-for-the-pages-test";
    let text = format!(
        r#"[meeting]
title = "Raid and rescue: the pages"
archive = "archive.sqlite"
downloads = true
model = "base"
glossary = "{glossary}"
protected_names = ["Today"]
interpreter_token = "{interpreter_key}"

[[channel]]
id = "floor"
language = "en"
label = "Floor"
floor = true
source = {{ kind = "file", path = "floor.wav", loop = true }}

[[channel]]
id = "es"
language = "es"
label = "Español"
source = {{ kind = "file", path = "es-12s.wav", loop = true }}
"#,
        glossary = root().join("glossaries/sex-work-rights.toml").display(),
    );
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let artifacts = root().join("target/browser");
    for (script, shot) in [
        ("attendee.mjs", "attendee-phone.png"),
        ("interpreter.mjs", "interpreter-desk.png"),
        ("organizer.mjs", "floor.vtt"),
    ] {
        let _ = std::fs::remove_file(artifacts.join(shot));
        page_test(
            script,
            &format!("http://{}", server.addr),
            &[
                ("TOLK_TOKEN", TOKEN.as_ref()),
                ("TOLK_PROTECTED", "Today".as_ref()),
                ("TOLK_INTERPRETER_KEY", interpreter_key.as_ref()),
            ],
        );
        assert!(artifacts.join(shot).exists(), "{shot}");
    }
}

/// The remote booth page (`/booth`) in a real browser: chromium's fake microphone plays a
/// Spanish recording, the page sends it as Opus (WebCodecs) to the channel's ingest
/// endpoint, and an attendee page reads it back as Spanish captions (`web/tests/booth.mjs`).
#[test]
fn the_booth_page_sends_the_microphone_to_its_channel() {
    let dir = tempfile::tempdir().unwrap();
    let es = trimmed("es-demo-instruct.wav", dir.path(), "es-12s.wav", 12);
    // Chromium's fake capture device plays a 48 kHz file most faithfully.
    let mic = dir.path().join("mic.wav");
    sox(&[es.to_str().unwrap(), "-r", "48000", mic.to_str().unwrap()]);
    let booth_token = "booth-secret-for-the-pages-test";
    let text = format!(
        r#"[meeting]
title = "A remote booth"
off_record = true
model = "base"

[[channel]]
id = "booth"
language = "es"
floor = true
source = {{ kind = "network", token = "{booth_token}" }}
"#
    );
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let _guard = whisper_lock();
    let server = serve(dir.path());
    page_test(
        "booth.mjs",
        &format!("http://{}", server.addr),
        &[
            ("TOLK_BOOTH_WAV", mic.as_os_str()),
            ("TOLK_BOOTH_TOKEN", booth_token.as_ref()),
        ],
    );
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

/// Nothing leaves the room: through a whole meeting — model and glossary loaded, two
/// channels transcribed and archived, a remote booth sending over the network, listeners,
/// the pages, an export — every socket of the server and of the booth's sender is on
/// loopback (their sockets are read from /proc every 100 ms). A connection out (a model hub,
/// a DNS lookup, telemetry) would show as a socket to another address.
#[test]
fn nothing_leaves_the_room() {
    let dir = tempfile::tempdir().unwrap();
    write_meeting(dir.path(), false);
    let text = std::fs::read_to_string(dir.path().join("meeting.toml")).unwrap()
        + r#"
[[channel]]
id = "booth"
language = "es"
source = { kind = "network", token = "booth-token-for-the-privacy-test" }
"#;
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let addr = server.addr.clone();
    let mut watched = vec![server.child.id()];
    let mut seen: Vec<(String, bool)> = Vec::new();
    let mut look = |pids: &[u32]| {
        for pid in pids {
            for s in sockets(*pid) {
                if !seen.contains(&s) {
                    seen.push(s);
                }
            }
        }
    };
    look(&watched);
    let mut sender = tolk(dir.path())
        .args([
            "send",
            "--server",
            &format!("ws://{addr}"),
            "--channel",
            "booth",
        ])
        .args(["--token", "booth-token-for-the-privacy-test", "--file"])
        .arg(trimmed("es-demo-instruct.wav", dir.path(), "booth.wav", 12))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    watched.push(sender.id());
    let mut ws = connect(&addr);
    next(&mut ws);
    send_json(
        &mut ws,
        json!({"type": "subscribe", "channels": ["floor", "es", "booth"]}),
    );
    let mut heard = Seen::default();
    let t = Instant::now();
    let done = |h: &Seen| h.all_ended() && !h.seqs("booth").is_empty();
    while t.elapsed() < Duration::from_secs(40) && !done(&heard) {
        look(&watched);
        if let Some(m) = next(&mut ws) {
            heard.take(m);
        }
        if t.elapsed().as_millis() % 5000 < 100 {
            assert_eq!(get(&addr, "/", None).0, 200);
            assert_eq!(
                get(&addr, "/api/export/floor?format=txt", Some(TOKEN)).0,
                200
            );
        }
    }
    let _ = sender.kill();
    let _ = sender.wait();
    assert!(
        !heard.seqs("booth").is_empty(),
        "the booth's audio was transcribed"
    );
    let leaving: Vec<&String> = seen.iter().filter(|s| s.1).map(|s| &s.0).collect();
    assert!(leaving.is_empty(), "sockets beyond loopback: {leaving:?}");
    // The watch itself works: it saw the server's listener and its connections.
    assert!(
        seen.iter().filter(|s| s.0.contains("state 01")).count() >= 2,
        "established loopback connections seen: {seen:?}"
    );
}

/// The socket watch of [`nothing_leaves_the_room`] sees a socket to another machine: a
/// process that "connects" a UDP socket to a LAN address (no packet needs to leave for the
/// socket to show) is caught; its loopback one is not.
#[test]
fn the_socket_watch_sees_a_socket_out() {
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import socket, time\n\
             a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.connect(('10.255.255.255', 9))\n\
             b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.connect(('127.0.0.1', 9))\n\
             print('ready', flush=True); time.sleep(20)",
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let found = sockets(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let out: Vec<_> = found.iter().filter(|s| s.1).collect();
    assert_eq!(out.len(), 1, "{found:?}");
    assert!(out[0].0.contains("FFFFFF0A:0009"), "{found:?}");
    assert_eq!(found.len(), 2, "{found:?}");
}

/// `--tls self-signed` and a meeting PIN: the attendee page over HTTPS asks for the PIN and
/// then gets captions over WSS in a real browser (which accepts the self-signed certificate
/// as a person would after checking it); the certificate the server presents is the one
/// whose fingerprint it printed; a plain-HTTP client is refused without harm to the others;
/// without the PIN nothing is served, and wrong PINs are limited per address.
#[test]
fn https_and_a_meeting_pin() {
    let dir = tempfile::tempdir().unwrap();
    write_meeting(dir.path(), true);
    let meeting = dir.path().join("meeting.toml");
    let text = std::fs::read_to_string(&meeting).unwrap();
    std::fs::write(
        &meeting,
        text.replacen("[meeting]\n", "[meeting]\npin = \"2468\"\n", 1),
    )
    .unwrap();
    let _guard = whisper_lock();
    let server = serve_with(dir.path(), &["--tls", "self-signed"]);
    let printed = server
        .fingerprint
        .clone()
        .expect("the fingerprint is printed");

    // What a client is shown: openssl's view of the certificate.
    let shown = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
            server.addr
        ))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.trim().ends_with(&printed),
        "openssl: {shown} printed: {printed}"
    );

    // Plain HTTP on the TLS port: refused, and the server goes on.
    let mut plain = TcpStream::connect(&server.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    write!(
        plain,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "plain HTTP is not served on the TLS port"
    );

    page_test("tls.mjs", &format!("https://{}", server.addr), &[]);

    // Without the PIN nothing; five wrong PINs in a minute (the page's was the first), then
    // even the right one waits.
    let status = |path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("https://{}{path}", server.addr))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(status("/api/meeting"), "401");
    assert_eq!(status("/api/meeting?pin=2468"), "200");
    for _ in 0..4 {
        assert_eq!(status("/api/meeting?pin=1111"), "401");
    }
    assert_eq!(status("/api/meeting?pin=1111"), "429");
    assert_eq!(
        status("/api/meeting?pin=2468"),
        "429",
        "the address waits a minute"
    );
}

/// A meeting file with a mistake is refused with the file, the line and what is wrong.
#[test]
fn a_bad_meeting_file_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let write = |text: &str| std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let run = || {
        tolk(dir.path())
            .args([
                "serve",
                "--config",
                "meeting.toml",
                "--listen",
                "127.0.0.1:0",
            ])
            .output()
            .unwrap()
    };
    write("[meeting]\ntitle = \"x\"\n\n[[channel]]\nid = \"floor\"\nlanguage = \"en\"\nsource = { kind = \"tape\" }\n");
    clean_failure(run(), &["meeting.toml:7", "tape"]);
    write("[meeting]\ntitle = \"x\"\n\n[[channel]]\nid = \"a b\"\nlanguage = \"en\"\nsource = { kind = \"file\", path = \"x.wav\" }\n");
    clean_failure(run(), &["meeting.toml", "channel id `a b`"]);
    write("[meeting]\ntitle = \"x\"\nmodel = \"tiny.en\"\n\n[[channel]]\nid = \"floor\"\nlanguage = \"en\"\nsource = { kind = \"file\", path = \"missing.wav\" }\n");
    clean_failure(run(), &["missing.wav"]);
    // Translations: into English only, of a channel that exists.
    let floor = "[[channel]]\nid = \"floor\"\nlanguage = \"es\"\nsource = { kind = \"file\", path = \"x.wav\" }\n";
    write(&format!("[meeting]\ntitle = \"x\"\n\n{floor}\n[[channel]]\nid = \"fr\"\nlanguage = \"fr\"\nsource = {{ kind = \"translate\", from = \"floor\" }}\n"));
    clean_failure(run(), &["meeting.toml", "channel `fr`", "English only"]);
    write(&format!("[meeting]\ntitle = \"x\"\n\n{floor}\n[[channel]]\nid = \"en\"\nlanguage = \"en\"\nsource = {{ kind = \"translate\", from = \"stage\" }}\n"));
    clean_failure(run(), &["channel `en` translates `stage`", "not a channel"]);
}

/// A channel that takes the floor through Whisper's translate task: a Spanish speaker,
/// English captions, beside the Spanish transcript of the same audio. The floor plays at
/// half speed: two streams of base cost about 3 CPU seconds per second of audio, more than
/// this 2-core machine has (`benches/README.md`).
#[test]
fn a_translate_channel_gives_english_captions_of_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    trimmed("es-demo-congrats.wav", dir.path(), "es-20s.wav", 20);
    let text = format!(
        r#"[meeting]
title = "A Spanish floor, translated"
off_record = true
model = "base"
glossary = "{glossary}"

[[channel]]
id = "floor"
language = "es"
label = "Sala"
floor = true
source = {{ kind = "file", path = "es-20s.wav", speed = 0.5 }}

[[channel]]
id = "en"
language = "en"
label = "English (machine translation)"
source = {{ kind = "translate", from = "floor" }}
"#,
        glossary = root().join("glossaries/sex-work-rights.toml").display(),
    );
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let mut ws = connect(&server.addr);
    let hello = next(&mut ws).unwrap();
    assert_eq!(hello["channels"][1]["translates"], "floor", "{hello}");
    assert!(hello["channels"][0].get("translates").is_none(), "{hello}");
    send_json(
        &mut ws,
        json!({"type": "subscribe", "channels": ["floor", "en"]}),
    );
    let mut seen = Seen::default();
    follow(&mut ws, &mut seen, 150, |s| {
        ["floor", "en"]
            .iter()
            .all(|c| s.ended.get(*c) == Some(&true))
    });
    assert_eq!(seen.ended.get("en"), Some(&true), "the translation ended");
    let (floor, en) = (
        seen.text("floor").to_lowercase(),
        seen.text("en").to_lowercase(),
    );
    // Said: "Felicidades, usted ha instalado y ejecutado exitosamente su PBX de código
    // abierto, Asterisk. También ha instalado una serie de sonidos y archivos de
    // configuración que le ayudarán a comenzar."
    eprintln!("floor: {floor}\ntranslation: {en}");
    // Streaming translation with base is rough ("You liked the and executed successfully
    // your PBX, the code open..."), but it is English: the content words come through, and
    // its small words are English ones, where the floor's are Spanish.
    let content = [
        "congratulations",
        "installed",
        "executed",
        "successfully",
        "series",
        "configuration",
        "help",
        "start",
    ];
    let found: Vec<&str> = content.iter().copied().filter(|w| en.contains(w)).collect();
    // Under load the translation degrades (one CI run: "congratulations, bado, exitonent,
    // ... the configuration that audoran"): two content words and English small words are
    // what it always kept.
    assert!(found.len() >= 2, "English words {found:?} in: {en}");
    let small = |text: &str| {
        let words: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let count = |list: &[&str]| words.iter().filter(|w| list.contains(w)).count();
        (
            count(&[
                "the", "you", "your", "that", "to", "and", "of", "will", "also",
            ]),
            count(&[
                "de", "que", "y", "su", "usted", "ha", "el", "la", "una", "le",
            ]),
        )
    };
    let (english, spanish) = small(&en);
    assert!(
        english > 2 * spanish,
        "{english} English and {spanish} Spanish small words in: {en}"
    );
    let (english, spanish) = small(&floor);
    assert!(
        spanish > english,
        "{english} English and {spanish} Spanish small words on the floor: {floor}"
    );
}

/// A remote booth: `tolk send` encodes a recording as Opus and streams it to the server's
/// network channel, which transcribes it; a wrong token is refused, clearly.
#[test]
fn a_remote_booth_sends_opus_over_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let token = "booth-token-0123456789";
    std::fs::write(
        dir.path().join("meeting.toml"),
        format!(
            r#"[meeting]
title = "remote booth"
off_record = true
model = "base"

[[channel]]
id = "floor"
language = "en"
floor = true
source = {{ kind = "network", token = "{token}" }}
"#
        ),
    )
    .unwrap();
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let url = format!("ws://{}", server.addr);
    let send = |token: &str| {
        tolk(dir.path())
            .args([
                "send",
                "--server",
                &url,
                "--channel",
                "floor",
                "--token",
                token,
            ])
            .arg("--file")
            .arg(testdata("jfk.wav"))
            .output()
            .unwrap()
    };
    clean_failure(
        send("wrong-token-0123456789"),
        &["floor", "wrong ingest token"],
    );

    let mut ws = connect(&server.addr);
    next(&mut ws);
    send_json(&mut ws, json!({"type": "subscribe", "channels": ["floor"]}));
    let report = success(send(token));
    assert!(
        report.contains("sent 5"),
        "about 550 frames of 20 ms: {report}"
    );
    let mut seen = Seen::default();
    follow(&mut ws, &mut seen, 30, |s| {
        s.text("floor").contains("country.")
    });
    let w = tolk::eval::wer(&reference("jfk.txt"), &seen.text("floor"), "en");
    assert!(
        w.rate() <= 0.25,
        "WER {:.2} over the network: {}",
        w.rate(),
        seen.text("floor")
    );

    // Wrong keys are limited per address, loopback included (a local user is not the
    // organizer): ten wrong organizer or ingest tokens in a minute (one ingest above), then
    // even the right ones wait, and the page says why.
    for _ in 0..8 {
        assert_eq!(get(&server.addr, "/api/organizer", Some("guess")).0, 401);
    }
    assert_eq!(get(&server.addr, "/api/organizer", None).0, 401);
    let (code, body) = get(&server.addr, "/api/organizer", Some(TOKEN));
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("too many wrong tokens"), "{body}");
    clean_failure(send(token), &["floor", "too many wrong tokens"]);
}

/// A booth's sender dies mid-sentence (SIGKILL) and comes back: listeners are told the booth
/// is gone, the floor goes on meanwhile, and the booth's channel transcribes again when a
/// sender reconnects.
#[test]
fn a_booth_that_drops_and_comes_back_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let token = "booth-token-0123456789";
    trimmed("es-demo-instruct.wav", dir.path(), "es-12s.wav", 12);
    std::fs::write(
        dir.path().join("meeting.toml"),
        format!(
            "[meeting]\ntitle = \"drop\"\noff_record = true\nmodel = \"base\"\n\n\
             [[channel]]\nid = \"floor\"\nlanguage = \"es\"\nfloor = true\n\
             source = {{ kind = \"file\", path = \"es-12s.wav\", loop = true }}\n\n\
             [[channel]]\nid = \"booth\"\nlanguage = \"en\"\n\
             source = {{ kind = \"network\", token = \"{token}\" }}\n"
        ),
    )
    .unwrap();
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let sender = || {
        tolk(dir.path())
            .args(["send", "--server", &format!("ws://{}", server.addr)])
            .args(["--channel", "booth", "--token", token, "--file"])
            .arg(testdata("jfk.wav"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut ws = connect(&server.addr);
    next(&mut ws);
    send_json(
        &mut ws,
        json!({"type": "subscribe", "channels": ["floor", "booth"]}),
    );
    let mut seen = Seen::default();
    let mut first = sender();
    follow(&mut ws, &mut seen, 40, |s| !s.seqs("booth").is_empty());
    assert!(!seen.seqs("booth").is_empty(), "the booth was transcribed");
    first.kill().unwrap();
    first.wait().unwrap();
    let (floor_before, booth_before) = (seen.seqs("floor").len(), seen.seqs("booth").len());

    // Told within a few seconds; the floor goes on.
    let mut told = false;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20)
        && !(told && seen.seqs("floor").len() > floor_before)
    {
        let Some(m) = next(&mut ws) else { continue };
        if m["type"] == "status" && m["channel"] == "booth" {
            told |= m["source"].as_str().unwrap_or("").contains("disconnected");
        }
        seen.take(m);
    }
    assert!(told, "listeners were told the booth is gone");
    assert!(seen.seqs("floor").len() > floor_before, "the floor went on");

    // Back: the booth transcribes again.
    let mut second = sender();
    follow(&mut ws, &mut seen, 40, |s| {
        s.finals["booth"][booth_before..]
            .iter()
            .any(|f| f["text"].as_str().unwrap_or("").contains("country"))
    });
    let _ = second.kill();
    let _ = second.wait();
    let after: Vec<&str> = seen.finals["booth"][booth_before..]
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert!(
        after.iter().any(|t| t.contains("country")),
        "the booth after it came back: {after:?}"
    );
}

/// `tolk devices` lists the sound inputs, or says there are none (this machine has no sound
/// card): never an error or a crash.
#[test]
fn devices_are_listed_or_their_absence_said() {
    let dir = tempfile::tempdir().unwrap();
    let out = success(tolk(dir.path()).arg("devices").output().unwrap());
    assert!(
        out == "no sound input devices\n" || out.lines().all(|l| l.contains(" (")),
        "{out}"
    );
}

/// The same booth without Opus: 16-bit PCM frames (here at 8 kHz, resampled by the server),
/// sent by a plain WebSocket client; a text frame after the hello is an error, not the end.
#[test]
fn a_booth_may_send_16_bit_pcm() {
    let dir = tempfile::tempdir().unwrap();
    let token = "booth-token-0123456789";
    std::fs::write(
        dir.path().join("meeting.toml"),
        format!(
            "[meeting]\ntitle = \"pcm booth\"\noff_record = true\nmodel = \"base\"\n\n[[channel]]\nid = \"floor\"\nlanguage = \"en\"\nfloor = true\nsource = {{ kind = \"network\", token = \"{token}\" }}\n"
        ),
    )
    .unwrap();
    let pcm = dir.path().join("jfk-8k.raw");
    sox(&[
        testdata("jfk.wav").to_str().unwrap(),
        "-r",
        "8000",
        "-b",
        "16",
        "-e",
        "signed-integer",
        "-L",
        "-c",
        "1",
        pcm.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&pcm).unwrap();
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let mut listener = connect(&server.addr);
    next(&mut listener);
    send_json(
        &mut listener,
        json!({"type": "subscribe", "channels": ["floor"]}),
    );

    let (mut booth, _) =
        tungstenite::connect(format!("ws://{}/ingest/floor?token={token}", server.addr)).unwrap();
    send_json(
        &mut booth,
        json!({"type": "hello", "format": "pcm16", "rate": 8000}),
    );
    let ready: Value = serde_json::from_str(booth.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(ready["type"], "ready");
    booth.send(Message::text("not audio")).unwrap();
    let err: Value = serde_json::from_str(booth.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(err["code"], "bad_message");
    // 20 ms frames (160 samples, 320 bytes) at real-time pace.
    for frame in bytes.chunks(320) {
        booth.send(Message::binary(frame.to_vec())).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    booth.close(None).unwrap();
    let mut seen = Seen::default();
    follow(&mut listener, &mut seen, 30, |s| {
        s.text("floor").contains("country.")
    });
    let w = tolk::eval::wer(&reference("jfk.txt"), &seen.text("floor"), "en");
    assert!(
        w.rate() <= 0.25,
        "WER {:.2} from PCM: {}",
        w.rate(),
        seen.text("floor")
    );
}

/// A small file system of its own (tmpfs, `size` bytes), unmounted when dropped. Mounting
/// needs root: `make test` runs as root on the machine it is made for.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test fills a small file system of its own, which needs root (mount -t tmpfs): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(at)
    }

    /// Writes a file until the disk refuses: it is full.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The archive's disk fills up mid-meeting: live captions go on, the organizer sees an
/// alarm (the error, how many finals wait), `/healthz` says degraded; when space is freed
/// the finals that waited are written, and the archive holds every final a listener got.
#[test]
fn a_full_disk_stops_no_caption_and_loses_no_final() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(dir.path().join("disk"), "2m");
    let text = format!(
        r#"[meeting]
id = "full"
title = "A meeting on a small disk"
archive = "disk/archive.sqlite"
model = "base"

[[channel]]
id = "floor"
language = "en"
floor = true
source = {{ kind = "file", path = "{jfk}", loop = true }}
"#,
        jfk = testdata("jfk.wav").display(),
    );
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let addr = server.addr.clone();
    let status = || {
        let (code, body) = get(&addr, "/api/organizer", Some(TOKEN));
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let mut ws = connect(&addr);
    next(&mut ws);
    send_json(&mut ws, json!({"type": "subscribe", "channels": ["floor"]}));
    let mut seen = Seen::default();
    follow(&mut ws, &mut seen, 60, |s| s.seqs("floor").len() >= 2);
    assert!(seen.seqs("floor").len() >= 2, "finals came");
    assert!(status()["archive_alarm"].is_null());

    let filler = disk.fill();
    let before = seen.seqs("floor").len();
    follow(&mut ws, &mut seen, 60, |s| {
        s.seqs("floor").len() >= before + 3
    });
    assert!(
        seen.seqs("floor").len() >= before + 3,
        "captions go on while the disk is full"
    );
    let s = status();
    let alarm = s["archive_alarm"].as_str().unwrap_or_default().to_string();
    assert!(alarm.contains("cannot be written"), "{s}");
    assert!(alarm.contains("full"), "the alarm says why: {alarm}");
    assert!(s["archive_waiting"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(get(&addr, "/healthz", None).0, 503);

    // Space again: what waited is written, the alarm goes.
    std::fs::remove_file(filler).unwrap();
    let t = Instant::now();
    while !status()["archive_alarm"].is_null() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = status();
    assert!(s["archive_alarm"].is_null(), "{s}");
    assert_eq!(s["archive_waiting"], 0, "{s}");
    assert_eq!(get(&addr, "/healthz", None).0, 200);
    let (code, body) = get(&addr, "/api/export/floor?format=json", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let archived: Vec<Value> = serde_json::from_str(&body).unwrap();
    for r in &seen.finals["floor"] {
        let a = archived
            .iter()
            .find(|a| a["seq"] == r["seq"])
            .unwrap_or_else(|| panic!("final {} was shown but not archived", r["seq"]));
        assert_eq!(a["text"], r["text"]);
    }
    drop(server);
}

/// Protected names: a meeting lists "Maria Lopez"; the floor says it. Attendees' captions
/// (finals and partials) and the archive file withhold it; an interpreter with the
/// interpreter token reads it live; a wrong token is refused.
#[test]
fn protected_names_reach_interpreters_only() {
    let dir = tempfile::tempdir().unwrap();
    say(
        &dir.path().join("floor.wav"),
        "Yesterday Maria Lopez was arrested in a police raid. \
         Maria Lopez says sex workers want rights, not rescue.",
    );
    let interpreter_token = "interpreters-only-token-for-tests";
    let text = format!(
        r#"[meeting]
id = "names"
title = "Protected names"
archive = "archive.sqlite"
model = "base"
protected_names = ["Maria Lopez", "Maria"]
interpreter_token = "{interpreter_token}"

[[channel]]
id = "floor"
language = "en"
floor = true
source = {{ kind = "file", path = "floor.wav", loop = true }}
"#
    );
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let _guard = whisper_lock();
    // The most verbose log there is, whisper.cpp's included: it must not name her either.
    let log_path = dir.path().join("server.log");
    let mut cmd = tolk(dir.path());
    cmd.env("TOLK_LOG", "trace")
        .stderr(std::fs::File::create(&log_path).unwrap());
    let server = serve_command(cmd, &[]);
    let addr = server.addr.clone();
    let wrong = tungstenite::connect(format!("ws://{addr}/ws?interpreter=not-the-token"));
    match wrong {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!(
            "a wrong interpreter token was not refused: {:?}",
            other.is_ok()
        ),
    }
    let (mut interp, _) =
        tungstenite::connect(format!("ws://{addr}/ws?interpreter={interpreter_token}")).unwrap();
    if let MaybeTlsStream::Plain(s) = interp.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    let mut attendee = connect(&addr);
    for ws in [&mut interp, &mut attendee] {
        next(ws);
        send_json(ws, json!({"type": "subscribe", "channels": ["floor"]}));
    }
    // Both follow until the name has come by twice (the recording loops).
    let (mut heard, mut shown) = (Seen::default(), Seen::default());
    let mut partials = Vec::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(90)
        && heard.text("floor").to_lowercase().matches("maria").count() < 2
    {
        if let Some(m) = next(&mut interp) {
            heard.take(m);
        }
        while let Some(m) = next(&mut attendee) {
            if m["type"] == "partial" {
                partials.push(m["text"].as_str().unwrap_or_default().to_string());
            }
            shown.take(m);
        }
    }
    follow(&mut attendee, &mut shown, 10, |s| {
        s.seqs("floor").len() >= heard.seqs("floor").len()
    });
    let said = heard.text("floor");
    let withheld = shown.text("floor");
    assert!(
        said.to_lowercase().matches("maria").count() >= 2,
        "the interpreter reads the name: {said}"
    );
    assert!(!withheld.to_lowercase().contains("maria"), "{withheld}");
    assert!(withheld.contains("[name withheld]"), "{withheld}");
    assert!(
        withheld.contains("police raid"),
        "the rest is captioned: {withheld}"
    );
    for p in &partials {
        assert!(!p.to_lowercase().contains("maria"), "a partial: {p}");
    }
    // Same numbering for both: the interpreter's final n is the attendee's final n.
    assert_eq!(heard.seqs("floor")[..2], shown.seqs("floor")[..2]);
    drop(server);
    let mut stored = Vec::new();
    for f in ["archive.sqlite", "archive.sqlite-wal"] {
        stored.extend(std::fs::read(dir.path().join(f)).unwrap_or_default());
    }
    let stored = String::from_utf8_lossy(&stored).to_lowercase();
    assert!(
        stored.contains("[name withheld]"),
        "the archive holds the captions"
    );
    assert!(!stored.contains("maria"), "the archive names her");
    let log = std::fs::read_to_string(&log_path).unwrap().to_lowercase();
    assert!(
        log.matches("decoded").count() >= 3,
        "the log has every decode: {}",
        &log[..log.len().min(2000)]
    );
    for word in ["maria", "lopez", "arrested", "rescue"] {
        assert!(!log.contains(word), "the log has the words heard: {word}");
    }
}

/// Faults in recognition, as a listener, `/healthz` and the organizer see them: a panic in
/// the sink (glossary, redaction, the writer's queue) at the floor's second final loses that
/// final only, counted and named; a panic in the decoder thread at the floor's 12th decode
/// stops recognition — `/healthz` says 503, the channel says `incomplete`, the organizer
/// page raises an alarm — until the thread is started again and captions go on.
#[test]
fn recognition_faults_are_contained_counted_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[meeting]
id = "faults"
title = "Faults"
archive = "archive.sqlite"
model = "base"

[[channel]]
id = "floor"
language = "en"
floor = true
source = {{ kind = "file", path = "{jfk}", loop = true }}
"#,
        jfk = testdata("jfk.wav").display(),
    );
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let _guard = whisper_lock();
    let mut cmd = tolk(dir.path());
    cmd.env("TOLK_FAULT_PANIC", "sink:floor:2,thread:floor:12")
        .stderr(Stdio::inherit());
    let server = serve_command(cmd, &[]);
    let addr = server.addr.clone();
    // Watch /healthz and the organizer's status from another thread, 20 times a second.
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (addr, watching) = (addr.clone(), watching.clone());
        std::thread::spawn(move || {
            let (mut down, mut alarm) = (None, None);
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                let (code, body) = get(&addr, "/healthz", None);
                if code == 503 && down.is_none() {
                    down = Some(body);
                }
                let (_, body) = get(&addr, "/api/organizer", Some(TOKEN));
                let s: Value = serde_json::from_str(&body).unwrap();
                if alarm.is_none() {
                    alarm = s["recognition_alarm"].as_str().map(String::from);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (down, alarm)
        })
    };
    let mut ws = connect(&addr);
    next(&mut ws);
    send_json(&mut ws, json!({"type": "subscribe", "channels": ["floor"]}));
    let mut seen = Seen::default();
    // Past the restart (the 12th decode comes some 12 s in): finals for another 20 s.
    follow(&mut ws, &mut seen, 40, |_| false);
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let (down, alarm) = watcher.join().unwrap();

    let down = down.expect("/healthz never said recognition was down");
    let down: Value = serde_json::from_str(&down).unwrap();
    assert!(
        down["engine"].as_str().unwrap().starts_with("down"),
        "{down}"
    );
    assert_eq!(down["channels"][0]["state"], "incomplete", "{down}");
    let alarm = alarm.expect("the organizer's page never raised an alarm");
    assert!(alarm.contains("No speech is being captioned"), "{alarm}");

    let (code, health) = get(&addr, "/healthz", None);
    assert_eq!(code, 200, "recognition runs again: {health}");
    let (_, body) = get(&addr, "/api/organizer", Some(TOKEN));
    let s: Value = serde_json::from_str(&body).unwrap();
    let engine = s["engine"].as_str().unwrap();
    assert!(engine.starts_with("running (restarted 1×"), "{engine}");
    assert!(
        engine.contains("fault injected in the decoder thread"),
        "{engine}"
    );
    let floor = &s["channels"][0];
    assert_eq!(floor["finals_lost"], 1, "{floor}");
    assert!(floor["untranscribed_secs"].is_number(), "{floor}");
    let (_, metrics) = get(&addr, "/metrics", None);
    assert!(
        metrics.contains("tolk_speech_untranscribed_seconds_total{channel=\"floor\"}"),
        "{metrics}"
    );
    assert!(
        floor["last_fault"]
            .as_str()
            .unwrap()
            .contains("a final was lost in caption delivery"),
        "{floor}"
    );
    assert!(
        floor["source"]
            .as_str()
            .unwrap()
            .contains("1 caption(s) lost"),
        "{floor}"
    );
    // The listener: numbers with no gap (the lost final never got one), captions before
    // and well after the restart.
    let seqs = seen.seqs("floor");
    assert!(seqs.len() >= 8, "captions went on: {seqs:?}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let last_wall = seen.finals["floor"].last().unwrap()["wall_ms"]
        .as_u64()
        .unwrap();
    let first_wall = seen.finals["floor"][0]["wall_ms"].as_u64().unwrap();
    assert!(
        last_wall - first_wall > 25_000,
        "captions after the restart"
    );
    drop(server);
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

/// A listener that stops reading while the meeting goes on (a phone in a pocket) neither
/// slows anyone nor gets stale captions: once it is a whole broadcast queue behind it is
/// sent fresh snapshots (`resync`) and its finals still run without a gap; one that never
/// reads again is disconnected after 10 s. Both are counted in `/metrics`.
///
/// The broadcast queue is made small (`--broadcast-capacity 8`, 4,096 in a meeting) and the
/// listener fills its socket by asking for snapshots again and again without reading them:
/// what a phone does over half an hour happens here in seconds.
#[test]
fn a_listener_that_stops_reading_is_resynced_then_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[meeting]
id = "slow"
title = "Slow listeners"
off_record = true
model = "tiny.en"

[[channel]]
id = "floor"
language = "en"
label = "Floor"
floor = true
source = {{ kind = "file", path = "{jfk}", loop = true, speed = 2.0 }}
"#,
        jfk = testdata("jfk.wav").display(),
    );
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let _guard = whisper_lock();
    let server = serve_with(dir.path(), &["--broadcast-capacity", "8"]);
    let addr = server.addr.clone();
    let floor = json!({"type": "subscribe", "channels": ["floor"]});

    let mut reader = connect(&addr);
    next(&mut reader);
    send_json(&mut reader, floor.clone());
    let mut seen = Seen::default();
    follow(&mut reader, &mut seen, 90, |s| s.seqs("floor").len() >= 3);
    assert!(
        seen.seqs("floor").len() >= 3,
        "finals: {:?}",
        seen.seqs("floor")
    );

    // Stops reading, with its socket full of snapshots.
    let stall = |ws: &mut Ws| {
        next(ws);
        for _ in 0..300 {
            send_json(ws, floor.clone());
        }
    };
    let mut slow = connect_small(&addr);
    stall(&mut slow);
    // The meeting goes on for 7 s (under the 10-s send timeout): more than 8 events.
    let before = seen.other.len() + seen.seqs("floor").len();
    follow(&mut reader, &mut seen, 7, |_| false);
    let events = seen.other.len() + seen.seqs("floor").len() - before;
    assert!(events > 8, "only {events} events in 7 s");

    // It reads again: fresh snapshots marked `resync`, finals without a gap, up to date.
    let live = *seen.seqs("floor").iter().max().unwrap();
    let mut slow_seen = Seen::default();
    let mut resyncs = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(8) {
        if let Some(m) = next(&mut slow) {
            resyncs += (m["type"] == "snapshot" && m["resync"] == true) as usize;
            slow_seen.take(m);
        }
    }
    assert!(resyncs >= 1, "no resync snapshot");
    assert_eq!(metric(&addr, "tolk_listener_resyncs_total"), 1.0);

    // Another stops for good: disconnected after 10 s, counted; nobody else notices.
    let mut gone = connect_small(&addr);
    stall(&mut gone);
    follow(&mut reader, &mut seen, 14, |_| false);
    follow(&mut slow, &mut slow_seen, 1, |_| false);
    assert_eq!(metric(&addr, "tolk_listeners_too_slow_total"), 1.0);
    assert_eq!(metric(&addr, "tolk_connections"), 2.0, "reader and slow");
    let t = Instant::now();
    let closed = loop {
        match gone.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if t.elapsed() > Duration::from_secs(10) {
                    break false;
                }
            }
            Err(_) => break true,
        }
    };
    assert!(closed, "the stalled listener's connection is closed");

    // The reader's and the resynced listener's finals: no gap, the same words.
    let all = gapless(&seen, "floor");
    assert_eq!(all[0].0, 1);
    let resumed = gapless(&slow_seen, "floor");
    assert!(resumed.len() >= 3, "{resumed:?}");
    let last = all.last().unwrap().0;
    for f in resumed.iter().filter(|f| f.0 <= last) {
        assert!(all.contains(f), "{f:?} is not what the reader got: {all:?}");
    }
    assert!(
        resumed.last().unwrap().0 >= live,
        "the resynced listener got the finals of the moment it read again ({live}): {resumed:?}"
    );
}

/// A PulseAudio server of its own (Debian's `pulseaudio`): one null sink, `room`, whose
/// monitor is the default source; ALSA's `pulse` plugin (`libasound2-plugins`) makes it
/// ALSA's default device for the processes given [`SoundServer::env`]. Killed when dropped.
struct SoundServer {
    child: Child,
    dir: PathBuf,
}

impl SoundServer {
    fn start(dir: &Path) -> SoundServer {
        let run = dir.join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(
            dir.join("default.pa"),
            format!(
                "load-module module-native-protocol-unix socket={} auth-anonymous=1\n\
                 load-module module-null-sink sink_name=room rate=16000 channels=1\n\
                 set-default-sink room\nset-default-source room.monitor\n",
                dir.join("native").display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join(".asoundrc"),
            "pcm.!default { type pulse }\nctl.!default { type pulse }\n",
        )
        .unwrap();
        let _ = std::fs::remove_file(dir.join("native"));
        let child = std::process::Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
            ])
            .arg("-F")
            .arg(dir.join("default.pa"))
            .env("HOME", dir)
            .env("XDG_RUNTIME_DIR", &run)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pulseaudio (make test installs it)");
        let server = SoundServer {
            child,
            dir: dir.to_path_buf(),
        };
        let t = Instant::now();
        while !server
            .command("pactl")
            .arg("info")
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "pulseaudio did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Its clients' environment: ALSA's default device is the server's default source.
    fn env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        let mut server = std::ffi::OsString::from("unix:");
        server.push(self.dir.join("native"));
        vec![("HOME", self.dir.clone().into()), ("PULSE_SERVER", server)]
    }

    fn command(&self, program: &str) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        c.envs(self.env())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// Plays a recording into the room, at real time, in the background.
    fn play(&self, wav: &Path) -> Child {
        self.command("paplay")
            .arg("--device=room")
            .arg(wav)
            .spawn()
            .unwrap()
    }
}

impl Drop for SoundServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to 15 s for `/healthz` to say the floor's source is in a state that starts
/// with these words.
fn wait_for_source(addr: &str, starts: &str) {
    let t = Instant::now();
    loop {
        let (_, health) = get(addr, "/healthz", None);
        let v: Value = serde_json::from_str(&health).unwrap();
        let source = v["channels"][0]["source"].as_str().unwrap_or_default();
        if source.starts_with(starts) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the source: {source}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The first step of the mission, against a sound device: a (virtual) sound card is listed by
/// `tolk devices`, `tolk serve` with a device source captions a real recording played into
/// it, and when the sound server goes away (a card unplugged) and comes back, the channel
/// says so and captions resume.
#[test]
fn a_sound_card_is_captioned_and_survives_unplugging() {
    let dir = tempfile::tempdir().unwrap();
    let sound = dir.path().join("sound");
    std::fs::create_dir_all(&sound).unwrap();
    let mut card = SoundServer::start(&sound);

    let out = tolk(dir.path())
        .arg("devices")
        .envs(card.env())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let out = success(out);
    assert!(out.lines().any(|l| l.starts_with("* default")), "{out}");

    std::fs::write(
        dir.path().join("meeting.toml"),
        r#"[meeting]
id = "card"
title = "A sound card"
off_record = true
model = "base"

[[channel]]
id = "floor"
language = "en"
label = "Floor"
floor = true
source = { kind = "device" }
"#,
    )
    .unwrap();
    let _guard = whisper_lock();
    let mut cmd = tolk(dir.path());
    cmd.envs(card.env()).stderr(Stdio::null());
    let server = serve_command(cmd, &[]);
    let addr = server.addr.clone();
    wait_for_source(&addr, "recording from default");

    let mut ws = connect(&addr);
    next(&mut ws);
    send_json(&mut ws, json!({"type": "subscribe", "channels": ["floor"]}));
    let mut seen = Seen::default();
    let mut player = card.play(&testdata("jfk.wav"));
    follow(&mut ws, &mut seen, 14, |_| false);
    player.wait().unwrap();
    // Until the end of the speech: jfk says "country" twice, the second time last (reading
    // stopped at the first, when the last final was still on its way).
    follow(&mut ws, &mut seen, 20, |s| {
        s.text("floor").matches("country").count() >= 2
    });
    let w = tolk::eval::wer(&reference("jfk.txt"), &seen.text("floor"), "en");
    assert!(
        w.rate() <= 0.3,
        "WER {:.2}: {}",
        w.rate(),
        seen.text("floor")
    );

    // Unplugged: the channel says its device went away.
    drop(card);
    wait_for_source(&addr, "default went away");

    // Plugged back: recording again, and captions resume.
    card = SoundServer::start(&sound);
    wait_for_source(&addr, "recording from default");
    let had = seen.seqs("floor").len();
    let mut player = card.play(&testdata("jfk.wav"));
    follow(&mut ws, &mut seen, 14, |_| false);
    player.wait().unwrap();
    follow(&mut ws, &mut seen, 20, |s| {
        s.finals["floor"][had..]
            .iter()
            .any(|f| f["text"].as_str().unwrap().contains("country"))
    });
    let again: Vec<&str> = seen.finals["floor"][had..]
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    let w = tolk::eval::wer(&reference("jfk.txt"), &again.join(" "), "en");
    assert!(
        w.rate() <= 0.3,
        "after replugging, WER {:.2}: {again:?}",
        w.rate()
    );
}

/// A meeting bigger than its machine (three channels on a machine simulated at 0.6× this
/// one's speed, where one channel fits in full): `tolk serve` says so at start, the booths go
/// into the reduced mode — decoded every few seconds and at pauses — and every place the
/// organizer and listeners look says it (the channel's `status`, `/api/organizer`,
/// `/metrics`), and each channel's finals still hold its speech: what they miss beyond what
/// recognition misses anyway is counted as untranscribed.
#[test]
fn a_meeting_too_big_for_its_machine_is_reduced_and_says_so_but_loses_no_speech() {
    let dir = tempfile::tempdir().unwrap();
    let channels = [
        ("floor", "en", "sonnet"),
        ("en2", "en", "mfa-michaelandsickmichael"),
        ("es", "es", "es-demo-instruct"),
    ];
    let mut text = String::from(
        "[meeting]\nid = \"busy\"\ntitle = \"Busy\"\narchive = \"archive.sqlite\"\nmodel = \"base\"\n",
    );
    for (i, (id, lang, clip)) in channels.iter().enumerate() {
        let file = ["wav", "flac", "opus"]
            .iter()
            .map(|ext| testdata(&format!("{clip}.{ext}")))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("testdata/{clip}: run make test"));
        text.push_str(&format!(
            "\n[[channel]]\nid = \"{id}\"\nlanguage = \"{lang}\"\nfloor = {}\nsource = {{ kind = \"file\", path = \"{}\" }}\n",
            i == 0,
            file.display()
        ));
    }
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let _guard = whisper_lock();
    let server = serve_with(dir.path(), &["--simulate-speed", "0.6"]);
    let addr = server.addr.clone();
    let (_, organizer) = get(&addr, "/api/organizer", Some(TOKEN));
    let v: Value = serde_json::from_str(&organizer).unwrap();
    let capacity = v["capacity"].as_str().unwrap().to_string();
    let full: usize = capacity
        .split("about ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("capacity: {capacity}"));
    assert!(
        full < 3,
        "the machine is said to caption {full} fully: {capacity}"
    );

    let mut ws = connect(&addr);
    send_json(
        &mut ws,
        json!({"type": "subscribe", "channels": ["floor", "en2", "es"]}),
    );
    let mut seen = Seen::default();
    let (mut organizer_reduced, mut metrics_reduced) = (None, None);
    let t = Instant::now();
    let all_ended = |s: &Seen| {
        channels
            .iter()
            .all(|(c, _, _)| s.ended.get(*c).copied().unwrap_or(false))
    };
    while !all_ended(&seen) && t.elapsed() < Duration::from_secs(200) {
        follow(&mut ws, &mut seen, 2, |s| all_ended(s));
        let (_, organizer) = get(&addr, "/api/organizer", Some(TOKEN));
        let v: Value = serde_json::from_str(&organizer).unwrap();
        for c in v["channels"].as_array().unwrap() {
            if c["mode"] == "reduced" && organizer_reduced.is_none() {
                organizer_reduced = Some(c.clone());
            }
        }
        let (_, metrics) = get(&addr, "/metrics", None);
        if let Some(l) = metrics
            .lines()
            .find(|l| l.starts_with("tolk_channel_reduced{") && l.ends_with(" 1"))
        {
            metrics_reduced.get_or_insert(l.to_string());
        }
    }
    assert!(all_ended(&seen), "every channel ends: {:?}", seen.ended);

    // Said everywhere.
    let c = organizer_reduced.expect("/api/organizer showed a channel in the reduced mode");
    assert!(c["step"].as_f64().unwrap() > 1.0, "{c}");
    assert!(
        c["source"]
            .as_str()
            .unwrap()
            .contains("the machine is busy"),
        "{c}"
    );
    metrics_reduced.expect("/metrics showed a channel in the reduced mode");
    let reduced: Vec<&Value> = seen
        .statuses
        .iter()
        .filter(|s| s["mode"] == "reduced")
        .collect();
    assert!(
        reduced.iter().any(|s| s["channel"] != "floor"),
        "a booth's status said it was reduced: {:?}",
        seen.statuses
    );

    // Nothing lost silently: each channel's missing words are those recognition misses
    // anyway (a share of the reference) or counted as untranscribed speech.
    let (_, organizer) = get(&addr, "/api/organizer", Some(TOKEN));
    let v: Value = serde_json::from_str(&organizer).unwrap();
    for (i, (id, lang, clip)) in channels.iter().enumerate() {
        let untranscribed = v["channels"][i]["untranscribed_secs"].as_f64().unwrap();
        let w = tolk::eval::wer(
            &reference(&format!("{clip}.txt")),
            &gapless(&seen, id)
                .into_iter()
                .map(|(_, t)| serde_json::from_str::<String>(&t).unwrap())
                .collect::<Vec<_>>()
                .join(" "),
            lang,
        );
        eprintln!(
            "{id}: WER {:.3}, {} of {} words deleted, {untranscribed:.1} s untranscribed",
            w.rate(),
            w.deletions,
            w.reference_words
        );
        // Speech runs at about 2.5 words a second.
        let allowed = 0.15 * w.reference_words as f64 + 2.5 * untranscribed;
        assert!(
            (w.deletions as f64) <= allowed,
            "{id}: {} of {} words missing, {untranscribed:.1} s counted as untranscribed",
            w.deletions,
            w.reference_words
        );
        assert!(w.rate() < 0.6, "{id}: WER {:.3}", w.rate());
    }
}
