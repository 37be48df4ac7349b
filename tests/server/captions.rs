//! Captions as listeners get them: every final in order, resumed without a gap, a slow reader resynced.

use super::*;

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

/// A listener that stops reading while the meeting goes on (a phone in a pocket) neither
/// slows anyone nor gets stale captions: once it is a whole broadcast queue behind it is
/// sent fresh snapshots (`resync`) and its finals still run without a gap; one that never
/// reads again is disconnected after 10 s. Both are counted in `/metrics`.
///
/// The broadcast queue is made small (`--broadcast-capacity 8`, 4,096 in a meeting) and the
/// listener fills its socket by asking for snapshots again and again without reading them:
/// what a phone does over half an hour happens here in seconds.
/// The record revised (`stream::revise`): once the floor's speech is committed, it is
/// decoded again, whole; each final it covers comes again as `revised` (same seq and
/// times), replaces that final in the archive, the exports and late joiners' snapshots,
/// and reads at least as well as the live finals did; the organizer and `/metrics` count it.
#[test]
fn the_record_is_revised_in_place_after_the_finals() {
    let dir = tempfile::tempdir().unwrap();
    write_meeting(dir.path(), false);
    let file = dir.path().join("meeting.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("revise = false", "revise = true")).unwrap();
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let addr = server.addr.clone();
    let mut ws = connect(&addr);
    next(&mut ws);
    send_json(&mut ws, json!({"type": "subscribe", "channels": ["floor"]}));
    let mut seen = Seen::default();
    let live_text = std::cell::RefCell::new(String::new());
    follow(&mut ws, &mut seen, 120, |s| {
        if s.revised.is_empty() {
            *live_text.borrow_mut() = s.text("floor");
        }
        s.revised.iter().any(|r| r["channel"] == "floor")
    });
    // Whatever else is still coming (the chunk's other finals' revisions).
    follow(&mut ws, &mut seen, 3, |_| false);
    let revised: Vec<&Value> = seen
        .revised
        .iter()
        .filter(|r| r["channel"] == "floor")
        .collect();
    assert!(!revised.is_empty(), "no revision came: {:?}", seen.other);
    let finals = &seen.finals["floor"];
    for r in &revised {
        let f = finals
            .iter()
            .find(|f| f["seq"] == r["seq"])
            .unwrap_or_else(|| panic!("a revision of a final never sent: {r}"));
        assert_eq!((&f["start"], &f["end"]), (&r["start"], &r["end"]), "{r}");
    }
    let live = tolk::eval::wer(&reference("jfk.txt"), &live_text.borrow(), "en");
    let record = tolk::eval::wer(&reference("jfk.txt"), &seen.text("floor"), "en");
    assert!(
        record.rate() <= live.rate().max(0.1),
        "revised {:.2} ({}) against live {:.2} ({})",
        record.rate(),
        seen.text("floor"),
        live.rate(),
        live_text.borrow()
    );

    // The archive and a late joiner's snapshot hold the revised text.
    let (code, body) = get(&addr, "/api/export/floor?format=json", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let archived: Vec<Value> = serde_json::from_str(&body).unwrap();
    let mut late = connect(&addr);
    next(&mut late);
    send_json(
        &mut late,
        json!({"type": "subscribe", "channels": ["floor"]}),
    );
    let snap = next(&mut late).expect("a snapshot");
    for r in &revised {
        let a = archived.iter().find(|a| a["seq"] == r["seq"]).unwrap();
        assert_eq!(a["text"], r["text"], "archived");
        let s = snap["finals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["seq"] == r["seq"])
            .unwrap();
        assert_eq!(s["text"], r["text"], "snapshot");
    }
    assert!(metric(&addr, "tolk_revisions_total{channel=\"floor\"}") >= 1.0);
    // The floor's and the Spanish channel's.
    assert!(metric(&addr, "tolk_revised_finals_total") as usize >= seen.revised.len());
    let (_, organizer) = get(&addr, "/api/organizer", Some(TOKEN));
    let organizer: Value = serde_json::from_str(&organizer).unwrap();
    assert!(
        organizer["channels"][0]["revisions"].as_u64().unwrap() >= 1,
        "{organizer}"
    );
}

#[test]
fn a_listener_that_stops_reading_is_resynced_then_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[meeting]
id = "slow"
title = "Slow listeners"
off_record = true
model = "tiny.en"
# Not revised: the test compares what two listeners saw at different moments, and a
# revision published between the two would differ by design.
revise = false

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
    // The meeting goes on until more than 8 events have gone out (the queue's capacity),
    // at most 7 s: the stall stays as far under the 10-s send timeout as it can (it once
    // failed in a full `make test`, the machine loaded: no resync came).
    let before = seen.other.len() + seen.seqs("floor").len();
    let since = |s: &Seen| s.other.len() + s.seqs("floor").len() - before;
    follow(&mut reader, &mut seen, 7, |s| since(s) > 12);
    let events = since(&seen);
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
