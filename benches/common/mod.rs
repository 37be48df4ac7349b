//! What the benchmarks share: their arguments, the long-form programs of real speech, the
//! model from the cache, percentiles and CPU time. Each benchmark uses some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tolk::stream::explain;
use tolk::transcribe::{Language, Model, Options, Transcript};

/// The value after `name` on the command line, or `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// The `p` quantile (0–1) of `v`, sorted in place; NaN when empty.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// CPU seconds this process has used (user + system), from /proc.
pub fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// `tolk transcribe`'s transcript of `audio` in `lang` (one call over the whole audio, its
/// default beam 5): the benchmarks' reference for what the live engine should reach.
pub fn offline(model: &Model, audio: &[f32], lang: &str, threads: usize) -> Transcript {
    offline_with_beam(model, audio, lang, threads, 5)
}

/// [`offline`] with another beam width (1: greedy, as the live engine's tentative decodes).
pub fn offline_with_beam(
    model: &Model,
    audio: &[f32],
    lang: &str,
    threads: usize,
    beam_size: usize,
) -> Transcript {
    offline_prompted(model, audio, lang, threads, beam_size, None)
}

/// [`offline_with_beam`] with Whisper's prompt (the text before `audio`).
pub fn offline_prompted(
    model: &Model,
    audio: &[f32],
    lang: &str,
    threads: usize,
    beam_size: usize,
    prompt: Option<String>,
) -> Transcript {
    model
        .transcribe(
            audio,
            &Options {
                language: Language::Code(lang.into()),
                beam_size,
                threads,
                translate: false,
                prompt,
            },
        )
        .expect("offline transcription")
}

/// The package's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A model from tolk's cache (`TOLK_CACHE_DIR`, else `.cache/tolk`); `--flash-attn on`
/// loads it with whisper.cpp's flash attention (off, as tolk runs it, by default).
pub fn model(name: &str) -> Model {
    let cache = std::env::var_os("TOLK_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or(root().join(".cache/tolk"));
    let flash = match arg("--flash-attn", "off").as_str() {
        "on" => true,
        "off" => false,
        other => panic!("--flash-attn {other}: expected on or off"),
    };
    Model::load_with(
        &cache.join("models").join(format!("ggml-{name}.bin")),
        flash,
    )
    .expect("model: run make bench")
}

/// The recordings joined for each language (in `testdata/`, references in `tests/data/`):
/// read speech, conversational speech with fillers and a cold, whispered speech, falsetto,
/// speech around laughter and breaths, and telephone prompts (8 kHz; Russian: prompts only).
pub fn clips(lang: &str) -> &'static [&'static str] {
    match lang {
        "ru" => &[
            "ru-demo-instruct",
            "ru-demo-congrats",
            "ru-priv-callee-options",
            "ru-screen-callee-options",
            "ru-vm-options",
            "ru-conf-adminmenu-18",
        ],
        "es" => &[
            "es-demo-instruct",
            "mfa-13697_11991_000000",
            "es-priv-callee-options",
            "es-demo-congrats",
            "es-conf-adminmenu-18",
            "es-vm-options",
            "es-screen-callee-options",
            "es-demo-echotest",
        ],
        _ => &[
            "jfk",
            "sonnet",
            "mfa-michaelandsickmichael",
            "en-demo-instruct",
            "mfa-cold_corpus3",
            "mfa-whisper",
            "mfa-surround",
            "mfa-falsetto",
            "mfa-whisper2",
            "mfa-laughter",
            "mfa-61-70968-0000",
            "mfa-words",
            "mfa-falsetto2",
            "mfa-thoughts",
            "mfa-crossword",
            "en-priv-callee-options",
            "mfa-breaths",
            "en-demo-congrats",
            "mfa-youknow",
            "en-basic-pbx-ivr-main",
            "en-demo-echotest",
        ],
    }
}

/// The recordings of `lang` joined with 1 s of silence, whole, up to about `secs` seconds
/// (all of them with `f64::INFINITY`), and their joined reference text.
pub fn program(root: &Path, lang: &str, secs: f64) -> (Vec<f32>, String) {
    program_of(root, clips(lang), secs)
}

/// [`program`] of the recordings named.
pub fn program_of(root: &Path, clips: &[&str], secs: f64) -> (Vec<f32>, String) {
    let (mut audio, mut reference) = (Vec::new(), String::new());
    for clip in clips {
        if audio.len() as f64 / 16_000.0 >= secs {
            break;
        }
        let file = ["wav", "flac", "opus"]
            .iter()
            .map(|ext| root.join("testdata").join(format!("{clip}.{ext}")))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("testdata/{clip}.*: run make bench"));
        let a = tolk::audio::decode_file(&file).unwrap_or_else(|e| panic!("{e}: run make bench"));
        audio.extend(a.samples);
        audio.extend(vec![0.0f32; 16_000]);
        reference.push_str(
            &std::fs::read_to_string(root.join("tests/data").join(format!("{clip}.txt")))
                .expect("reference"),
        );
        reference.push(' ');
    }
    (audio, reference)
}

/// A language's session topic, as an organizer would list it (`topic` in a meeting file):
/// the first form of every term and name the term benchmark's sentences in that language
/// expect (`benches/terms.toml`), in order, each once.
pub fn session_topic(root: &Path, lang: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(root.join("benches/terms.toml")).expect("benches/terms.toml");
    let file: toml::Value = toml::from_str(&text).expect("benches/terms.toml");
    let mut out: Vec<String> = Vec::new();
    for s in file["sentence"].as_array().expect("[[sentence]]") {
        if s["lang"].as_str() != Some(lang) {
            continue;
        }
        for t in s["terms"].as_array().expect("terms") {
            let t = t.as_str().expect("a term");
            let first = t.split('|').next().unwrap_or(t).to_string();
            if !out.contains(&first) {
                out.push(first);
            }
        }
    }
    out
}

/// What `--explain` found in one run: lost words by cause, and the longest lost phrases.
pub fn print_explained(r: &explain::Report) {
    println!(
        "\nwords of the offline transcript missing from the stream: {} of {}",
        r.lost.len(),
        r.offline_words
    );
    println!("\n| cause | words |\n|---|---|");
    for (cause, n) in r.counts() {
        println!("| {cause:?} | {n} |");
    }
    // Runs of lost words that stand together (a lost phrase), longest first.
    let mut phrases: Vec<(usize, String, f64, explain::Cause)> = Vec::new();
    let mut cur: Vec<&(explain::TimedWord, explain::Cause)> = Vec::new();
    let mut flush = |cur: &mut Vec<&(explain::TimedWord, explain::Cause)>| {
        if cur.len() >= 3 {
            let text: Vec<&str> = cur.iter().map(|(w, _)| w.text.as_str()).collect();
            phrases.push((cur.len(), text.join(" "), cur[0].0.start, cur[0].1));
        }
        cur.clear();
    };
    for l in &r.lost {
        if cur.last().is_some_and(|p| l.0.start - p.0.end > 1.0) {
            flush(&mut cur);
        }
        cur.push(l);
    }
    flush(&mut cur);
    phrases.sort_by_key(|p| std::cmp::Reverse(p.0));
    for (n, text, at, cause) in phrases.iter().take(12) {
        println!("  lost at {at:.1} s ({n} words, {cause:?}): \"{text}\"");
    }
}

/// A final as the engine emitted it: what a revision replay needs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Emitted {
    pub segment: u64,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub language: String,
    /// Engine seconds when it was emitted (the media time then, in real time).
    pub at: f64,
}
