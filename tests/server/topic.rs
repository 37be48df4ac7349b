//! The session's topic, set by the organizer while the meeting runs.

use super::*;

/// A remote booth's ingest token in these meetings.
pub(super) const BOOTH_TOKEN: &str = "booth-token-0123456789";

/// A meeting of one English channel a remote booth speaks into, with the glossary, and
/// `more` after the `[meeting]` section's keys (a `[cluster]`).
pub(super) fn booth_meeting(dir: &Path, more: &str) {
    std::fs::write(
        dir.join("meeting.toml"),
        format!(
            r#"[meeting]
id = "sessions"
title = "sessions"
off_record = true
model = "base"
revise = false
glossary = "{glossary}"
{more}

[[channel]]
id = "floor"
language = "en"
floor = true
source = {{ kind = "network", token = "{BOOTH_TOKEN}" }}
"#,
            glossary = root().join("glossaries/sex-work-rights.toml").display(),
        ),
    )
    .unwrap();
}

/// The names of a session, and one the booth says, which base mishears without them
/// ("then power foundation", espeak-ng's voice at 150 words a minute).
pub(super) const TOPIC: [&str; 5] = [
    "Tais Plus",
    "Legalife",
    "Empower Foundation",
    "APNSW",
    "NSWP",
];

/// Says the sentence into the booth (`tolk send`; its disconnection closes the utterance)
/// and returns the text of the finals it brought.
pub(super) fn say(dir: &Path, server: &str, ws: &mut Ws, seen: &mut Seen) -> String {
    let wav = dir.join("en.wav");
    if !wav.exists() {
        say_in(
            &wav,
            "Legalife from Ukraine and Empower Foundation from Thailand joined the peer educator training.",
            "en",
            150,
        );
    }
    let before = seen.text("floor");
    let sent = before.matches("training").count();
    success(
        tolk(dir)
            .args(["send", "--server", &format!("ws://{server}")])
            .args(["--channel", "floor", "--token", BOOTH_TOKEN, "--file"])
            .arg(&wav)
            .output()
            .unwrap(),
    );
    follow(ws, seen, 40, |s| {
        s.text("floor").matches("training").count() > sent
    });
    seen.text("floor")[before.len()..].to_string()
}

/// Sets the topic as the organizer; returns how many channels it primes.
pub(super) fn set_topic(server: &str, topic: &[&str]) -> u64 {
    let (code, body) = post_json(
        server,
        "/api/topic",
        Some(TOKEN),
        &json!({ "topic": topic }),
    );
    assert_eq!(code, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    answer["channels_primed"].as_u64().unwrap()
}

/// Without the topic the name is misheard; with it, written.
fn check_heard(without: &str, with: &str) {
    assert!(without.contains("training"), "{without}");
    assert!(!without.contains("Empower Foundation"), "{without}");
    check_primed(with);
}

/// With the topic the name is written, and none of its terms the speaker did not say.
pub(super) fn check_primed(with: &str) {
    assert!(with.contains("Empower Foundation"), "{with}");
    for unsaid in ["Tais", "APNSW", "NSWP"] {
        assert!(!with.contains(unsaid), "{unsaid} written: {with}");
    }
}

/// A meeting has sessions: the organizer lists the next one's names (`POST /api/topic`), and
/// the channel's next decodes are primed with them. The same sentence from a remote booth,
/// sent before and after: base mishears "Empower Foundation" without the topic and writes it
/// with it, and writes none of the topic's terms the speaker did not say. A bad topic is
/// refused, saying why, and the one before stays; the organizer's API shows the topic.
#[test]
fn the_organizer_sets_the_sessions_topic_while_the_meeting_runs() {
    let dir = tempfile::tempdir().unwrap();
    booth_meeting(dir.path(), "");
    let _guard = whisper_lock();
    let server = serve(dir.path());
    let mut ws = connect(&server.addr);
    next(&mut ws);
    send_json(&mut ws, json!({"type": "subscribe", "channels": ["floor"]}));
    let mut seen = Seen::default();
    let without = say(dir.path(), &server.addr, &mut ws, &mut seen);

    let topic = json!({ "topic": TOPIC });
    assert_eq!(post_json(&server.addr, "/api/topic", None, &topic).0, 401);
    assert_eq!(set_topic(&server.addr, &TOPIC), 1);
    // Refused, saying why; the topic before stays.
    let many: Vec<String> = (0..41).map(|i| format!("term {i}")).collect();
    let (code, body) = post_json(
        &server.addr,
        "/api/topic",
        Some(TOKEN),
        &json!({"topic": many}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("at most 40 terms"), "{body}");
    let (code, body) = post_json(&server.addr, "/api/topic", Some(TOKEN), &json!(["NSWP"]));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("{\"topic\""), "the form it takes: {body}");
    let (_, status) = get(&server.addr, "/api/organizer", Some(TOKEN));
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["topic"], json!(TOPIC), "{status}");

    let with = say(dir.path(), &server.addr, &mut ws, &mut seen);
    check_heard(&without, &with);
}
