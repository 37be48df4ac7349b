//! Access and security: nothing leaves the room, HTTPS and the PIN, protected names.

use super::*;

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
    let mut server = serve_command(cmd, &[]);
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
    // Stopped as an organizer stops it (Ctrl-C), a final just sent: the chunk of the
    // record that holds it is not revised yet, and the log says so, by count.
    assert!(
        server.interrupt(Duration::from_secs(30)),
        "the server did not stop within 30 s of Ctrl-C"
    );
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
    assert!(
        log.contains("stopping before the record's last chunks were revised")
            && log.contains("channel=floor"),
        "the log does not say which chunks of the record were left unrevised: {}",
        &log[log.len().saturating_sub(2000)..]
    );
}
