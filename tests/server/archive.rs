//! The archive and exports: what listeners saw is on disk and exported, off the record nothing is, a full disk loses no final.

use super::*;

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
