//! Audio in: remote booths (Opus, PCM) over the network, a booth that drops, sound cards.

use super::*;

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
