//! `[cluster]`: a room server and two `tolk worker` processes over a real `nats-server`
//! (Debian's, installed by `make`; started here on a free loopback port, JetStream in a
//! temporary folder).

use super::*;

/// A `nats-server` with JetStream; killed when dropped.
struct Nats {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats() -> Nats {
    nats_with(&[])
}

/// [`nats`] with more of nats-server's arguments (TLS, a user).
fn nats_with(args: &[&str]) -> Nats {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = start_nats(dir.path(), port, args);
    Nats {
        child,
        url: format!("nats://127.0.0.1:{port}"),
        dir,
    }
}

impl Nats {
    /// Killed (-9) and started again on the same port and folder after `down`.
    fn restart(&mut self, down: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        let port: u16 = self.url.rsplit(':').next().unwrap().parse().unwrap();
        self.child = start_nats(self.dir.path(), port, &[]);
    }
}

/// A loopback port nothing listens on (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_nats(dir: &Path, port: u16, args: &[&str]) -> Child {
    let child = std::process::Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (Debian's package; `make test` installs it)");
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "nats-server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// A `tolk worker`; killed when dropped. Returns once it says it is ready.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker(dir: &Path, url: &str, name: &str, max: usize) -> Worker {
    let mut child = tolk(dir)
        .args(["worker", "--nats", url, "--threads", "1", "--name", name])
        .args(["--max-channels", &max.to_string(), "--model", "base"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    printed(&mut child, 60, "the worker said it was ready", |l| {
        l.contains("ready").then_some(())
    });
    Worker(child)
}

/// What `pick` takes from the first line of `child`'s standard output it takes anything
/// from, within `secs` (else the test fails: `what` did not happen).
fn printed<T: Send + 'static>(
    child: &mut Child,
    secs: u64,
    what: &str,
    pick: impl Fn(&str) -> Option<T> + Send + 'static,
) -> T {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(v) = pick(&line) {
                let _ = tx.send(v);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what}"))
}

/// Which worker decodes each channel, as the organizer's API says.
fn workers(addr: &str) -> BTreeMap<String, (Option<String>, u64)> {
    organizer(addr)["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                (
                    c["worker"].as_str().map(String::from),
                    c["handovers"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect()
}

fn organizer(addr: &str) -> Value {
    let (code, body) = get(addr, "/api/organizer", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The meeting: its channels decoded by workers, and by the room server itself up to `here`
/// of them (on one thread).
fn meeting_file(dir: &Path, url: &str, here: usize, channels: &[(&str, &str, &str)]) {
    let mut text = format!(
        r#"[meeting]
id = "cluster-test"
title = "Workers"
archive = "archive.sqlite"
model = "base"
revise = false
threads = 1

[cluster]
nats = "{url}"
decode_here = {here}
"#
    );
    for (i, (id, language, recording)) in channels.iter().enumerate() {
        text.push_str(&format!(
            "\n[[channel]]\nid = \"{id}\"\nlanguage = \"{language}\"\nfloor = {}\nsource = {{ kind = \"file\", path = \"{}\" }}\n",
            i == 0,
            testdata(recording).display()
        ));
    }
    std::fs::write(dir.join("meeting.toml"), text).unwrap();
}

/// An English floor (a sonnet, 53 s) and a Spanish channel (a phone menu, 33 s).
const TWO_CHANNELS: &[(&str, &str, &str)] = &[
    ("floor", "en", "sonnet.wav"),
    ("es", "es", "es-conf-adminmenu-18.wav"),
];

/// Checks a channel's finals: numbered without a gap or a repeat, starts only going forward,
/// the words within `bound` of the recording's reference.
fn check_channel(seen: &Seen, ch: &str, reference: &str, lang: &str, bound: f64) {
    gapless(seen, ch);
    let finals = &seen.finals[ch];
    for w in finals.windows(2) {
        let (a, b) = (
            w[0]["start"].as_f64().unwrap(),
            w[1]["start"].as_f64().unwrap(),
        );
        assert!(b >= a, "{ch}: times go back: {w:?}");
    }
    let wer = tolk::eval::wer(&crate::util::reference(reference), &seen.text(ch), lang);
    eprintln!("{ch}: WER {:.1} % ({})", 100.0 * wer.rate(), seen.text(ch));
    assert!(
        wer.rate() < bound,
        "{ch}: WER {:.1} %: {}",
        100.0 * wer.rate(),
        seen.text(ch)
    );
}

/// Two workers share the meeting's two channels; one is killed (-9) mid-speech and the
/// other takes its channel over from the retained audio: both channels captioned to the
/// end, their finals numbered without a gap or a repeat, their starts only going forward, the
/// words close to the recordings', and the organizer told who decodes what.
#[test]
fn two_workers_caption_the_meeting_and_one_takes_over_when_the_other_dies() {
    let _guard = whisper_lock();
    let nats = nats();
    let dir = tempfile::tempdir().unwrap();
    meeting_file(dir.path(), &nats.url, 0, TWO_CHANNELS);
    // One channel each: the first worker may hold one, the second two (so that it can
    // take the other's over).
    let mut first = Some(worker(dir.path(), &nats.url, "worker-a", 1));
    let _second = worker(dir.path(), &nats.url, "worker-b", 2);
    let server = serve(dir.path());
    let mut ws = connect(&server.addr);
    send_json(
        &mut ws,
        json!({"type": "subscribe", "channels": ["floor", "es"]}),
    );
    let mut seen = Seen::default();
    follow(&mut ws, &mut seen, 40, |s| {
        s.seqs("floor").len() >= 2 && s.seqs("es").len() >= 2
    });
    let before = workers(&server.addr);
    let held_by_a: Vec<String> = before
        .iter()
        .filter(|(_, (w, _))| w.as_deref() == Some("worker-a"))
        .map(|(c, _)| c.clone())
        .collect();
    assert_eq!(
        held_by_a.len(),
        1,
        "each worker decodes a channel: {before:?}"
    );
    assert!(
        before
            .values()
            .any(|(w, _)| w.as_deref() == Some("worker-b")),
        "{before:?}"
    );
    let moved = held_by_a[0].clone();
    let had = seen.seqs(&moved).len();
    drop(first.take()); // kill -9
    follow(&mut ws, &mut seen, 120, Seen::all_ended);
    assert!(seen.all_ended(), "both channels ended: {:?}", seen.ended);
    // The finals still waiting for the record's last words.
    follow(&mut ws, &mut seen, 8, |_| false);
    let after = workers(&server.addr);
    assert_eq!(
        after[&moved],
        (Some("worker-b".to_string()), 1),
        "the dead worker's channel was handed over once: {after:?}"
    );
    assert!(
        seen.seqs(&moved).len() > had,
        "captions went on after the handover"
    );
    // Offline base reads these at 2-20 %; live, on one thread each with the machine
    // shared, and a handover (the audio replayed from the record's end) on one channel.
    check_channel(&seen, "floor", "sonnet.txt", "en", 0.4);
    check_channel(&seen, "es", "es-conf-adminmenu-18.txt", "es", 0.4);
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
}

/// The room server decodes what it has room for itself (`decode_here`), as a worker: with
/// no worker yet its first channel is captioned and the other waits, said to the organizer;
/// a worker started later takes that one from its retained audio.
#[test]
fn the_room_server_decodes_a_channel_itself_and_a_worker_takes_the_rest() {
    let _guard = whisper_lock();
    let nats = nats();
    let dir = tempfile::tempdir().unwrap();
    meeting_file(dir.path(), &nats.url, 1, TWO_CHANNELS);
    let server = serve(dir.path());
    let mut ws = connect(&server.addr);
    send_json(
        &mut ws,
        json!({"type": "subscribe", "channels": ["floor", "es"]}),
    );
    let mut seen = Seen::default();
    // The worker comes while the Spanish channel's first seconds are still retained (25 s).
    follow(&mut ws, &mut seen, 40, |s| !s.seqs("floor").is_empty());
    let alone = workers(&server.addr);
    let room = alone["floor"].0.clone().unwrap_or_default();
    assert!(
        room.starts_with("room-"),
        "the room decodes the floor: {alone:?}"
    );
    assert_eq!(
        alone["es"].0, None,
        "the other waits for a worker: {alone:?}"
    );
    let v = organizer(&server.addr);
    assert!(
        v["channels"][0]["source"]
            .as_str()
            .unwrap_or_default()
            .contains("decoded by this server"),
        "the organizer is told the floor is decoded here: {}",
        v["channels"][0]
    );
    assert!(seen.seqs("es").is_empty(), "no captions without a worker");
    let v = organizer(&server.addr);
    let es = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "es")
        .unwrap();
    assert!(
        es["state"] == "incomplete"
            && es["source"]
                .as_str()
                .unwrap_or_default()
                .contains("waiting for a worker"),
        "the organizer is told the channel waits: {es}"
    );
    let _worker = worker(dir.path(), &nats.url, "worker-b", 1);
    follow(&mut ws, &mut seen, 120, Seen::all_ended);
    assert!(seen.all_ended(), "both channels ended: {:?}", seen.ended);
    follow(&mut ws, &mut seen, 8, |_| false);
    let after = workers(&server.addr);
    assert_eq!(
        after["floor"].0.as_deref(),
        Some(room.as_str()),
        "{after:?}"
    );
    assert_eq!(after["es"].0.as_deref(), Some("worker-b"), "{after:?}");
    check_channel(&seen, "floor", "sonnet.txt", "en", 0.4);
    check_channel(&seen, "es", "es-conf-adminmenu-18.txt", "es", 0.4);
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
}

/// A room's own certificate authority (openssl): `ca.pem`, and `server.pem` / `server.key`
/// for 127.0.0.1 signed by it, in `dir`.
fn room_ca(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &[
                "req",
                "-x509",
                "-days",
                "1",
                "-subj",
                "/CN=tolk test room CA",
            ][..],
            &key,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-subj", "/CN=127.0.0.1"][..],
            &key,
            &["-keyout", "server.key", "-out", "server.csr"],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
}

/// NATS over TLS with the room's own certificate authority and a password in the URL: the
/// room server (decoding its channel itself) captions through it, and the password is
/// nowhere it shows the URL (its log, the organizer's API). A worker not told the authority
/// is refused, saying why.
#[test]
fn nats_over_tls_with_a_password_captions_and_the_password_is_never_shown() {
    let _guard = whisper_lock();
    let certs = tempfile::tempdir().unwrap();
    room_ca(certs.path());
    let pem = |f: &str| certs.path().join(f).display().to_string();
    let secret = "n4ts-Secret-do-not-show";
    let nats = nats_with(&[
        "--tls",
        "--tlscert",
        &pem("server.pem"),
        "--tlskey",
        &pem("server.key"),
        "--user",
        "tolk",
        "--pass",
        secret,
    ]);
    let url = nats
        .url
        .replace("nats://", &format!("tls://tolk:{secret}@"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(certs.path().join("ca.pem"), dir.path().join("ca.pem")).unwrap();
    std::fs::write(
        dir.path().join("meeting.toml"),
        format!(
            r#"[meeting]
id = "tls-test"
title = "Over TLS"
off_record = true
model = "base"
revise = false
threads = 1

[cluster]
nats = "{url}"
ca = "ca.pem"
decode_here = 1

[[channel]]
id = "floor"
language = "en"
source = {{ kind = "file", path = "{jfk}" }}
"#,
            jfk = testdata("jfk.wav").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let mut cmd = tolk(dir.path());
    cmd.env("TOLK_LOG", "debug")
        .stderr(std::fs::File::create(&log).unwrap());
    let server = serve_command(cmd, &[]);
    let mut ws = connect(&server.addr);
    send_json(&mut ws, json!({"type": "subscribe", "channels": ["floor"]}));
    let mut seen = Seen::default();
    follow(&mut ws, &mut seen, 60, |s| {
        s.ended.get("floor").copied().unwrap_or(false)
    });
    follow(&mut ws, &mut seen, 5, |_| false);
    check_channel(&seen, "floor", "jfk.txt", "en", 0.4);
    let v = organizer(&server.addr);
    assert!(
        v["cluster"]
            .as_str()
            .is_some_and(|c| c.contains("tls://tolk:…@")),
        "the organizer sees where NATS is: {}",
        v["cluster"]
    );
    assert!(!v.to_string().contains(secret), "the organizer's API: {v}");
    drop(server);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("tls://tolk:…@"),
        "the log names NATS: {logged}"
    );
    assert!(!logged.contains(secret), "the password logged: {logged}");

    // A worker that does not know the room's authority: refused, saying why, no password.
    let out = tolk(dir.path())
        .args([
            "worker",
            "--nats",
            &url,
            "--model",
            "tiny.en",
            "--threads",
            "1",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!said.contains(secret), "the password shown: {said}");
    clean_failure(out, &["cannot connect to NATS", "tls://tolk:…@"]);
}

/// nats-server is killed mid-speech and started again two seconds later: the room server
/// and the worker reconnect and set the stream up again, the worker takes its lease again,
/// the finals published meanwhile reach the room (published until the events stream has
/// them), and the audio sent while NATS was down is counted as never received, shown to
/// the organizer, not lost in silence.
#[test]
fn nats_server_restarted_mid_meeting_loses_no_final_and_counts_what_it_lost() {
    let _guard = whisper_lock();
    let mut nats = nats();
    let dir = tempfile::tempdir().unwrap();
    meeting_file(dir.path(), &nats.url, 0, &[("floor", "en", "sonnet.wav")]);
    let _worker = worker(dir.path(), &nats.url, "worker-a", 1);
    let server = serve(dir.path());
    let mut ws = connect(&server.addr);
    send_json(&mut ws, json!({"type": "subscribe", "channels": ["floor"]}));
    let mut seen = Seen::default();
    follow(&mut ws, &mut seen, 40, |s| s.seqs("floor").len() >= 2);
    let had = seen.seqs("floor").len();
    nats.restart(Duration::from_secs(2));
    follow(&mut ws, &mut seen, 90, |s| {
        s.ended.get("floor").copied().unwrap_or(false)
    });
    follow(&mut ws, &mut seen, 8, |_| false);
    assert!(
        seen.seqs("floor").len() > had + 2,
        "captions went on after the restart"
    );
    let v = organizer(&server.addr);
    let floor = &v["channels"][0];
    assert_eq!(floor["worker"], "worker-a", "{floor}");
    let missing = floor["audio_missing_secs"].as_f64().unwrap();
    assert!(
        (0.5..10.0).contains(&missing),
        "the audio sent while NATS was down is counted: {floor}"
    );
    assert!(
        metric(
            &server.addr,
            "tolk_audio_dropped_seconds_total{channel=\"floor\"}"
        ) >= 0.5,
        "and in /metrics"
    );
    // Two seconds of the sonnet (about six words) were never received.
    check_channel(&seen, "floor", "sonnet.txt", "en", 0.4);
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
}

/// A meeting whose NATS server cannot be reached does not start, and says why.
#[test]
fn a_cluster_that_cannot_be_reached_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("meeting.toml"),
        format!(
            r#"[meeting]
title = "No NATS"
off_record = true
model = "base"

[cluster]
nats = "nats://127.0.0.1:{port}"

[[channel]]
id = "floor"
language = "en"
source = {{ kind = "file", path = "{jfk}" }}
"#,
            jfk = testdata("jfk.wav").display()
        ),
    )
    .unwrap();
    let out = tolk(dir.path())
        .args([
            "serve",
            "--config",
            "meeting.toml",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    clean_failure(
        out,
        &["[cluster]", "cannot connect to NATS", &port.to_string()],
    );
    let out = tolk(dir.path())
        .args(["worker", "--nats", &format!("nats://127.0.0.1:{port}")])
        .args(["--model", "tiny.en", "--threads", "1"])
        .output()
        .unwrap();
    clean_failure(out, &["cannot connect to NATS", &port.to_string()]);
}

/// A `tolk edge` serving `meeting` from NATS (with more `args`); killed when dropped.
/// Returns once it is healthy (over plain HTTP; with `--tls`, once it listens).
fn edge(dir: &Path, url: &str, meeting: &str, args: &[&str]) -> Server {
    let tls = args.contains(&"--tls");
    let mut child = tolk(dir)
        .args(["edge", "--nats", url, "--meeting", meeting])
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let addr = printed(&mut child, 30, "the edge printed its address", |l| {
        l.strip_prefix("tolk edge: listening on http://")
            .or_else(|| l.strip_prefix("tolk edge: listening on https://"))
            .map(String::from)
    });
    if tls {
        return Server {
            child,
            addr,
            fingerprint: None,
        };
    }
    // Ready once it has read the meeting and what its stream holds.
    let t = Instant::now();
    while get(&addr, "/healthz", None).0 != 200 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the edge became healthy: {:?}",
            get(&addr, "/healthz", None)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Server {
        child,
        addr,
        fingerprint: None,
    }
}

/// A caption connection with the meeting's PIN (and more of the query), its first message
/// (`meeting`) read.
fn connect_with(addr: &str, query: &str) -> Ws {
    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/ws?{query}")).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    let first = next(&mut ws).expect("the meeting message");
    assert_eq!(first["type"], "meeting", "{first}");
    ws
}

/// Two edges serve a meeting's attendees from what its room server publishes over NATS: the
/// same finals with the same numbers as the room's own listeners, protected names withheld,
/// the PIN asked, no interpreter's words; a listener that leaves one edge mid-meeting and
/// resumes (`since`) on a second edge, started later, gets exactly the finals it missed;
/// a third, over HTTPS, serves the attendee page to a real browser.
#[test]
fn edges_serve_the_captions_and_a_listener_resumes_on_another_edge() {
    let _guard = whisper_lock();
    let nats = nats();
    let dir = tempfile::tempdir().unwrap();
    say(
        &dir.path().join("floor.wav"),
        "Good morning and welcome to the meeting on raids and rescue. \
         Yesterday Maria Lopez was arrested in a police raid. \
         The police came at night and took the phones of the workers. \
         Maria Lopez says sex workers want rights, not rescue. \
         Outreach teams lost contact with many of them for weeks. \
         Thank you all for coming, and please ask your questions now.",
    );
    meeting_file(dir.path(), &nats.url, 1, &[("floor", "en", "jfk.wav")]);
    let text = std::fs::read_to_string(dir.path().join("meeting.toml"))
        .unwrap()
        .replace(
            "threads = 1\n",
            "threads = 1\npin = \"2468\"\nprotected_names = [\"Maria Lopez\", \"Maria\"]\n\
             interpreter_token = \"interpreters-only-token-for-tests\"\n",
        )
        .replace(&testdata("jfk.wav").display().to_string(), "floor.wav");
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();
    let server = serve(dir.path());
    let first = edge(dir.path(), &nats.url, "cluster-test", &[]);

    // The edge asks for the PIN as the room does, and serves no interpreter.
    assert_eq!(get(&first.addr, "/api/meeting", None).0, 401);
    let (code, body) = get(&first.addr, "/api/meeting?pin=2468", None);
    assert_eq!(code, 200, "{body}");
    let meeting: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(meeting["channels"][0]["id"], "floor", "{meeting}");
    assert_eq!(meeting["downloads"], false, "{meeting}");
    match tungstenite::connect(format!(
        "ws://{}/ws?pin=2468&interpreter=interpreters-only-token-for-tests",
        first.addr
    )) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("an edge served an interpreter: {:?}", other.is_ok()),
    }
    let (code, page) = get(&first.addr, "/", None);
    assert!(code == 200 && page.contains("<html"), "{code}");

    let subscribe = json!({"type": "subscribe", "channels": ["floor"]});
    let mut room = connect_with(&server.addr, "pin=2468");
    send_json(&mut room, subscribe.clone());
    let mut on_first = connect_with(&first.addr, "pin=2468");
    send_json(&mut on_first, subscribe);
    // Everything an edge's listener is sent, partials included, to look for the name in.
    let mut raw = Vec::new();
    let (mut in_room, mut before) = (Seen::default(), Seen::default());
    let t = Instant::now();
    while before.seqs("floor").len() < 2 && t.elapsed() < Duration::from_secs(120) {
        if let Some(m) = next(&mut on_first) {
            raw.push(m.to_string());
            before.take(m);
        }
        while let Some(m) = next(&mut room) {
            in_room.take(m);
        }
    }
    let left_at = *before
        .seqs("floor")
        .last()
        .expect("finals on the first edge");
    // The organizer sees the edge and its listener (reported every 2 s).
    let t = Instant::now();
    let edges = loop {
        let v = organizer(&server.addr);
        let serving = v["edges"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e["connections"] == 1 && e["listeners"][0] == 1)
        });
        if serving || t.elapsed() > Duration::from_secs(10) {
            break v["edges"].clone();
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        edges.as_array().is_some_and(|e| e.len() == 1
            && e[0]["name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("edge-")
            && e[0]["listeners"][0] == 1),
        "the organizer sees the edge's listener: {edges}"
    );
    drop(on_first);

    // A second edge, started mid-meeting, replays what the stream holds; the listener
    // resumes there from the last final it saw.
    let second = edge(dir.path(), &nats.url, "cluster-test", &[]);
    let mut on_second = connect_with(&second.addr, "pin=2468");
    send_json(
        &mut on_second,
        json!({"type": "subscribe", "channels": ["floor"], "since": {"floor": left_at}}),
    );
    let (mut after, mut kinds) = (Seen::default(), Vec::new());
    // Until the end, and a few seconds more: the last final may come after the source's
    // end ("ended").
    let (t, mut ended) = (Instant::now(), None::<Instant>);
    while t.elapsed() < Duration::from_secs(150)
        && ended.is_none_or(|e| e.elapsed() < Duration::from_secs(6))
    {
        if let Some(m) = next(&mut on_second) {
            raw.push(m.to_string());
            kinds.push(m["type"].as_str().unwrap_or_default().to_string());
            after.take(m);
        }
        while let Some(m) = next(&mut room) {
            in_room.take(m);
        }
        if ended.is_none() && after.ended.get("floor").copied().unwrap_or(false) {
            ended = Some(Instant::now());
        }
    }
    assert_eq!(
        after.ended.get("floor"),
        Some(&true),
        "the end reached the second edge"
    );
    assert!(
        !kinds.iter().any(|k| k == "snapshot"),
        "a resume, not a snapshot: {kinds:?}"
    );

    // Exactly the finals missed, then the rest: together the room's, seq for seq.
    let resumed = after.seqs("floor");
    assert!(
        resumed.iter().all(|s| *s > left_at),
        "nothing seen twice: left at {left_at}, got {resumed:?}"
    );
    let mut both = Seen::default();
    for f in before.finals["floor"].iter().chain(&after.finals["floor"]) {
        both.take(f.clone());
    }
    gapless(&both, "floor");
    assert_eq!(both.seqs("floor"), in_room.seqs("floor"));
    assert_eq!(both.text("floor"), in_room.text("floor"));
    let said = both.text("floor");
    assert!(said.contains("[name withheld]"), "{said}");
    assert!(said.contains("police"), "{said}");
    for m in &raw {
        assert!(
            !m.to_lowercase().contains("maria"),
            "an edge sent the name: {m}"
        );
    }
    assert_eq!(metric(&second.addr, "tolk_edge_caught_up"), 1.0);
    assert_eq!(metric(&second.addr, "tolk_edge_refused_total"), 0.0);
    assert!(metric(&second.addr, "tolk_edge_events_total") > 0.0);

    // In a real browser, over HTTPS (`--tls self-signed`), with the PIN: the attendee page
    // from a third edge.
    let third = edge(
        dir.path(),
        &nats.url,
        "cluster-test",
        &["--tls", "self-signed"],
    );
    page_test("tls.mjs", &format!("https://{}", third.addr), &[]);

    // Stopped (Ctrl-C), the room server purges the meeting's captions from NATS.
    drop(room);
    let mut server = server;
    let stopped = std::process::Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let t = Instant::now();
    while server.child.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the room server stopped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let kept = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = async_nats::connect(nats.url.as_str()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream("TOLK_CAPTIONS").await.unwrap();
        stream.info().await.unwrap().state.messages
    });
    assert_eq!(kept, 0, "captions left in NATS after the meeting");
}

/// A NATS JWT (`alg: ed25519-nkey`) with `claims`, issued (signed) by `issuer` for `subject`.
fn nats_jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: Value) -> String {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = json!({
        "jti": format!("{name}-{}", subject.get(..12).unwrap_or(subject)),
        "iat": 1_700_000_000u64,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let body = format!("{header}.{}", b64(claims.to_string().as_bytes()));
    let signature = issuer.sign(body.as_bytes()).unwrap();
    format!("{body}.{}", b64(&signature))
}

/// NATS's decentralised authentication, made here as `nsc` would: an operator, an account
/// with JetStream, a user; nats-server's configuration (`nats.conf`) trusting the operator
/// and the user's credentials file (`user.creds`), in `dir`.
fn operator_and_user(dir: &Path) {
    let operator = nkeys::KeyPair::new_operator();
    // JetStream needs the system account (nats-server's own).
    let system = nkeys::KeyPair::new_account();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let operator_jwt = nats_jwt(
        &operator,
        &operator.public_key(),
        "room",
        json!({"type": "operator", "version": 2, "system_account": system.public_key()}),
    );
    let system_jwt = nats_jwt(
        &operator,
        &system.public_key(),
        "SYS",
        json!({"type": "account", "version": 2}),
    );
    let account_jwt = nats_jwt(
        &operator,
        &account.public_key(),
        "tolk",
        json!({
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                "wildcards": true, "conn": -1, "leaf": -1, "mem_storage": -1,
                "disk_storage": -1, "streams": -1, "consumer": -1},
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account",
            "version": 2
        }),
    );
    let user_jwt = nats_jwt(
        &account,
        &user.public_key(),
        "worker",
        json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
            "type": "user", "version": 2}),
    );
    std::fs::write(
        dir.join("nats.conf"),
        format!(
            "operator: \"{operator_jwt}\"\nsystem_account: {}\nresolver: MEMORY\n\
             resolver_preload: {{\n  {}: \"{system_jwt}\"\n  {}: \"{account_jwt}\"\n}}\n",
            system.public_key(),
            system.public_key(),
            account.public_key()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("user.creds"),
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed().unwrap()
        ),
    )
    .unwrap();
}

/// A nats-server that accepts only users of its operator's account: the room server and a
/// worker with the user's credentials file (`credentials` in [cluster], `tolk worker
/// --credentials`) caption the meeting; a worker without it is refused.
#[test]
fn nats_with_a_credentials_file_captions_and_a_worker_without_one_is_refused() {
    let _guard = whisper_lock();
    let keys = tempfile::tempdir().unwrap();
    operator_and_user(keys.path());
    let conf = keys.path().join("nats.conf").display().to_string();
    let nats = nats_with(&["-c", &conf]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        keys.path().join("user.creds"),
        dir.path().join("user.creds"),
    )
    .unwrap();
    meeting_file(dir.path(), &nats.url, 0, &[("floor", "en", "jfk.wav")]);
    let text = std::fs::read_to_string(dir.path().join("meeting.toml"))
        .unwrap()
        .replace(
            "decode_here = 0\n",
            "decode_here = 0\ncredentials = \"user.creds\"\n",
        );
    std::fs::write(dir.path().join("meeting.toml"), text).unwrap();

    // Without the credentials: refused.
    let out = tolk(dir.path())
        .args(["worker", "--nats", &nats.url, "--model", "tiny.en"])
        .args(["--threads", "1", "--max-channels", "1"])
        .output()
        .unwrap();
    clean_failure(out, &["cannot connect to NATS"]);

    let server = serve(dir.path());
    let mut child = tolk(dir.path())
        .args(["worker", "--nats", &nats.url, "--credentials", "user.creds"])
        .args(["--threads", "1", "--max-channels", "1", "--model", "base"])
        .args(["--name", "worker-creds"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut ws = connect(&server.addr);
    send_json(&mut ws, json!({"type": "subscribe", "channels": ["floor"]}));
    let mut seen = Seen::default();
    follow(&mut ws, &mut seen, 90, |s| {
        s.ended.get("floor").copied().unwrap_or(false)
    });
    follow(&mut ws, &mut seen, 5, |_| false);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        workers(&server.addr)["floor"].0.as_deref(),
        Some("worker-creds")
    );
    check_channel(&seen, "floor", "jfk.txt", "en", 0.4);
}

/// With a `[cluster]` the session's topic reaches the worker that decodes the channel: the
/// room offers the channel again with its new prompt terms, and the worker primes its next
/// decodes with them, keeping the channel (no handover). The sentence is the one base
/// mishears without the topic ("then power foundation", as the server's own test shows).
#[test]
fn a_topic_set_as_the_meeting_runs_reaches_the_worker() {
    use super::topic::{booth_meeting, check_primed, say, set_topic, TOPIC};
    let _guard = whisper_lock();
    let nats = nats();
    let dir = tempfile::tempdir().unwrap();
    booth_meeting(
        dir.path(),
        &format!(
            "threads = 1\n\n[cluster]\nnats = \"{}\"\ndecode_here = 0",
            nats.url
        ),
    );
    // The worker's log says when it takes the channel and when its terms change.
    let mut child = tolk(dir.path())
        .env("TOLK_LOG", "tolk=info")
        .args([
            "worker",
            "--nats",
            &nats.url,
            "--threads",
            "1",
            "--name",
            "worker-a",
        ])
        .args(["--max-channels", "1", "--model", "base"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = BufReader::new(child.stderr.take().unwrap());
    let (tx, logged) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in log.lines().map_while(Result::ok) {
            eprintln!("{line}");
            let _ = tx.send(line);
        }
    });
    let wait_for = |what: &str| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if let Ok(l) = logged.recv_timeout(Duration::from_millis(200)) {
                if l.contains(what) {
                    return;
                }
            }
        }
        panic!("the worker never logged `{what}`");
    };
    let _worker = Worker(child);
    let server = serve(dir.path());
    let mut ws = connect(&server.addr);
    next(&mut ws);
    send_json(&mut ws, json!({"type": "subscribe", "channels": ["floor"]}));
    // The worker holds the channel (offered without terms) before the topic is set.
    wait_for("channel taken");
    assert_eq!(set_topic(&server.addr, &TOPIC), 1);
    wait_for("prompt terms changed");
    let mut seen = Seen::default();
    let with = say(dir.path(), &server.addr, &mut ws, &mut seen);
    assert!(with.contains("training"), "{with}");
    check_primed(&with);
    assert_eq!(
        workers(&server.addr)["floor"],
        (Some("worker-a".to_string()), 0),
        "the worker kept the channel"
    );
}
