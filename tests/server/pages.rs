//! The pages in a real browser: attendee, interpreter, organizer, booth.

use super::*;

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
