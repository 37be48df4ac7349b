//! `tolk transcribe` on real recordings with real models: accuracy and output formats.

use crate::util::*;
use tolk::eval::wer;

pub(crate) fn transcribe_text(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let _guard = whisper_lock();
    let out = tolk(dir.path())
        .arg("transcribe")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&success(out)).expect("JSON output");
    json["text"].as_str().expect("text field").to_string()
}

#[test]
fn jfk_with_base_is_within_5_percent_wer() {
    let jfk = testdata("jfk.wav");
    model("base");
    let text = transcribe_text(&[jfk.to_str().unwrap(), "--model", "base"]);
    let w = wer(&reference("jfk.txt"), &text, "en");
    assert!(
        w.rate() <= 0.05,
        "WER {:.3} ({} errors): {text}",
        w.rate(),
        w.errors
    );
}

#[test]
fn sonnet_with_base_is_within_15_percent_wer() {
    let sonnet = testdata("sonnet.wav");
    model("base");
    // Default decoding is beam search with 5 beams, as whisper.cpp's own command line.
    let text = transcribe_text(&[
        sonnet.to_str().unwrap(),
        "--model",
        "base",
        "--language",
        "en",
    ]);
    let w = wer(&reference("sonnet.txt"), &text, "en");
    assert!(
        w.rate() <= 0.15,
        "WER {:.3} ({} errors): {text}",
        w.rate(),
        w.errors
    );
}

#[test]
fn spanish_prompt_with_base_is_within_20_percent_wer() {
    let es = testdata("es-demo-instruct.wav");
    model("base");
    let text = transcribe_text(&[es.to_str().unwrap(), "--model", "base", "--language", "es"]);
    let w = wer(&reference("es-demo-instruct.txt"), &text, "es");
    assert!(
        w.rate() <= 0.20,
        "WER {:.3} ({} errors): {text}",
        w.rate(),
        w.errors
    );
}

#[test]
fn language_is_detected_when_auto() {
    let es = testdata("es-demo-instruct.wav");
    model("base");
    let dir = tempfile::tempdir().unwrap();
    let _guard = whisper_lock();
    let out = tolk(dir.path())
        .args([
            "transcribe",
            es.to_str().unwrap(),
            "--model",
            "base",
            "--beam-size",
            "1",
            "-f",
            "json",
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&success(out)).unwrap();
    assert_eq!(json["language"], "es");
}

/// Writes every format to a file with -o and reads it back as a user's tool would.
#[test]
fn output_formats_parse() {
    let jfk = testdata("jfk.wav");
    model("tiny.en");
    let dir = tempfile::tempdir().unwrap();
    let _guard = whisper_lock();
    for fmt in ["text", "json", "vtt", "srt"] {
        let path = dir.path().join(format!("out.{fmt}"));
        let out = tolk(dir.path())
            .args([
                "transcribe",
                jfk.to_str().unwrap(),
                "--model",
                "tiny.en",
                "--beam-size",
                "1",
                "-f",
                fmt,
                "-o",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert!(success(out).is_empty(), "with -o nothing goes to stdout");
        let body = std::fs::read_to_string(&path).unwrap();
        match fmt {
            "text" => {
                let first = body.lines().next().unwrap();
                assert!(first.starts_with("[00:00:00.000 --> 00:00:"), "{first}");
                assert!(body.contains("fellow Americans"), "{body}");
            }
            "json" => {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let segs = v["segments"].as_array().unwrap();
                assert!(!segs.is_empty());
                let mut last = 0.0;
                for s in segs {
                    let (a, b) = (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap());
                    assert!(a >= last && b > a && b <= 11.1, "segment times {a}..{b}");
                    last = a;
                }
                assert_eq!(v["model"], "tiny.en");
                assert_eq!(v["duration"], 11.0);
            }
            "vtt" | "srt" => {
                let sep = if fmt == "vtt" { '.' } else { ',' };
                if fmt == "vtt" {
                    assert!(body.starts_with("WEBVTT\n\n"));
                }
                let cues: Vec<&str> = body.lines().filter(|l| l.contains(" --> ")).collect();
                assert!(!cues.is_empty(), "{body}");
                for cue in cues {
                    let (a, b) = cue.split_once(" --> ").unwrap();
                    for t in [a, b] {
                        assert_eq!(t.len(), 12, "timestamp {t}");
                        assert_eq!(t.as_bytes()[8] as char, sep, "timestamp {t}");
                    }
                    assert!(a < b, "{cue}");
                }
                if fmt == "srt" {
                    assert!(body.starts_with("1\n"));
                }
            }
            _ => unreachable!(),
        }
    }
    // Only the four outputs: no temporary file left beside them.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
}

/// Compressed inputs through the whole command: MP3 and Ogg Opus made from jfk.wav.
#[test]
fn mp3_and_opus_inputs_transcribe() {
    let jfk = testdata("jfk.wav");
    model("tiny.en");
    let dir = tempfile::tempdir().unwrap();
    let mp3 = dir.path().join("jfk.mp3");
    sox(&[jfk.to_str().unwrap(), "-C", "64", mp3.to_str().unwrap()]);
    let opus = dir.path().join("jfk.opus");
    let st = std::process::Command::new("opusenc")
        .args([
            "--quiet",
            "--bitrate",
            "24",
            jfk.to_str().unwrap(),
            opus.to_str().unwrap(),
        ])
        .status()
        .expect("opusenc is installed by make's set-up");
    assert!(st.success());
    for f in [&mp3, &opus] {
        let text = transcribe_text(&[
            f.to_str().unwrap(),
            "--model",
            "tiny.en",
            "--beam-size",
            "1",
        ]);
        let w = wer(&reference("jfk.txt"), &text, "en");
        assert!(
            w.rate() <= 0.10,
            "{}: WER {:.3}: {text}",
            f.display(),
            w.rate()
        );
    }
}
