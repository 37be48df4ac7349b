//! Streaming benchmark: long-form real speech (recordings joined with 1 s of silence) through
//! the live engine, against the offline transcription of the same audio with the same model.
//!
//! ```sh
//! cargo bench --bench streaming -- [--model base] [--lang en|es] [--pacing virtual|realtime]
//! ```
//!
//! Reports per-word final latency (emission time − the word's end in the audio, word times
//! from the streaming decode itself), partial latency, streaming and offline WER, the revision
//! rate of partials, CPU seconds per audio second, peak RSS, and median latency in the first
//! and the last minute. Prints one Markdown row for `benches/README.md`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tolk::stream::engine::{self, Pacing};
use tolk::stream::lang::LanguageMode;
use tolk::stream::policy::{Event, PolicyConfig};
use tolk::transcribe::{Language, Model, Options};

/// The recordings joined for each language (in `testdata/`, references in `tests/data/`).
fn clips(lang: &str) -> Vec<&'static str> {
    match lang {
        "es" => vec![
            "es-demo-instruct",
            "es-priv-callee-options",
            "es-demo-congrats",
            "es-conf-adminmenu-18",
        ],
        _ => vec![
            "jfk",
            "sonnet",
            "en-demo-instruct",
            "en-priv-callee-options",
            "en-demo-congrats",
            "en-basic-pbx-ivr-main",
            "en-demo-echotest",
        ],
    }
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_secs() -> f64 {
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

/// A memory figure of this process in MB from /proc/self/status: `VmHWM` (peak resident)
/// or `VmRSS` (resident now).
fn status_mb(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// The recordings of `lang` joined with 1 s of silence, and their joined reference text.
fn program(root: &std::path::Path, lang: &str) -> (Vec<f32>, String) {
    let mut audio = Vec::new();
    let mut reference = String::new();
    for clip in clips(lang) {
        let wav = root.join("testdata").join(format!("{clip}.wav"));
        let a = tolk::audio::decode_file(&wav).unwrap_or_else(|e| panic!("{e}: run make bench"));
        audio.extend(a.samples);
        audio.extend(vec![0.0f32; 16_000]);
        let text = std::fs::read_to_string(root.join("tests/data").join(format!("{clip}.txt")))
            .expect("reference");
        reference.push_str(&text);
        reference.push(' ');
    }
    (audio, reference)
}

fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

/// A phrase of 1–8 words said three times or more in a row (a repetition loop), if any.
fn repeated_phrase(words: &[String]) -> Option<String> {
    for n in 1..=8 {
        for i in 0..words.len() {
            let mut reps = 1;
            while i + (reps + 1) * n <= words.len()
                && words[i..i + n] == words[i + reps * n..i + (reps + 1) * n]
            {
                reps += 1;
            }
            if reps >= 3 {
                // The phrase, and the words around it, to see what happened.
                let (a, b) = (i.saturating_sub(6), (i + (reps + 2) * n).min(words.len()));
                return Some(format!(
                    "\"{}\" in \"{}\"",
                    words[i..i + n].join(" "),
                    words[a..b].join(" ")
                ));
            }
        }
    }
    None
}

/// The soak: the program looped with 5-minute silences for `minutes` of audio, under the
/// virtual clock. Per cycle: latency, WER, resident memory; over all: text during the
/// silences and repetition loops.
fn soak(
    model: &Arc<Model>,
    block: &[f32],
    reference: &str,
    lang: &str,
    minutes: f64,
    threads: usize,
) {
    const SILENCE_SECS: f64 = 300.0;
    let block_secs = block.len() as f64 / 16_000.0;
    let mut audio = Vec::new();
    let mut speech: Vec<(f64, f64)> = Vec::new();
    while (audio.len() as f64) < minutes * 60.0 * 16_000.0 {
        let start = audio.len() as f64 / 16_000.0;
        audio.extend_from_slice(block);
        speech.push((start, start + block_secs));
        audio.extend(vec![0.0f32; (SILENCE_SECS * 16_000.0) as usize]);
    }
    let secs = audio.len() as f64 / 16_000.0;
    eprintln!(
        "soak: {} cycles of {block_secs:.0} s speech + {SILENCE_SECS:.0} s silence = {:.1} min",
        speech.len(),
        secs / 60.0
    );
    let cycle_of = |t: f64| speech.iter().rposition(|(s, _)| t >= *s).unwrap_or(0);
    let in_silence = |a: f64, b: f64| {
        // Past the block's end by more than the closing tail, and before the next block.
        speech.iter().enumerate().any(|(k, (_, end))| {
            let next = speech.get(k + 1).map(|x| x.0).unwrap_or(f64::MAX);
            a >= end + 1.0 && b <= next
        })
    };
    let n = speech.len();
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut text: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut rss: Vec<f64> = vec![f64::NAN; n];
    let mut in_silences: Vec<String> = Vec::new();
    let cpu0 = cpu_secs();
    let t = Instant::now();
    let stats = engine::run(
        model,
        &audio,
        LanguageMode::Fixed(lang.to_string()),
        false,
        PolicyConfig::default(),
        threads,
        Pacing::Virtual,
        |e| {
            match &e.event {
                Event::Final {
                    text: t,
                    words,
                    start,
                    end,
                    ..
                } => {
                    let k = cycle_of(*start);
                    for w in words {
                        lat[k].push(e.at - w.end);
                    }
                    text[k].push(t.clone());
                    if in_silence(*start, *end) {
                        in_silences.push(format!("final {start:.1}–{end:.1}: {t}"));
                    }
                }
                Event::Partial {
                    text: t,
                    start,
                    end,
                    ..
                } => {
                    if !t.is_empty() && in_silence(*start, *end) {
                        in_silences.push(format!("partial {start:.1}–{end:.1}: {t}"));
                    }
                }
            }
            rss[cycle_of(e.at.min(secs))] = rss_mb();
        },
    )
    .expect("stream");
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    println!("| cycle | starts at (min) | final latency p50 / p95 (s) | WER | RSS at its end (MB) | repeated phrase |");
    println!("|---|---|---|---|---|---|");
    let mut loops = 0;
    for k in 0..n {
        let joined = text[k].join(" ");
        let w = tolk::eval::wer(reference, &joined, lang);
        let rep = repeated_phrase(&tolk::eval::normalize(&joined, lang));
        loops += rep.is_some() as usize;
        println!(
            "| {} | {:.1} | {:.2} / {:.2} | {:.1}% | {:.0} | {} |",
            k + 1,
            speech[k].0 / 60.0,
            percentile(&mut lat[k], 0.5),
            percentile(&mut lat[k], 0.95),
            100.0 * w.rate(),
            rss[k],
            rep.unwrap_or_else(|| "none".into()),
        );
    }
    println!(
        "\nsoak {lang}: {:.1} min of audio in {:.1} min; events during the silences: {}; cycles with a repeated phrase: {loops}; max lag {:.1} s; {:.2} CPU s/s; peak RSS {:.0} MB; dropped {:?}",
        secs / 60.0,
        wall / 60.0,
        in_silences.len(),
        stats.max_lag,
        cpu / secs,
        peak_rss_mb(),
        stats.dropped,
    );
    for line in in_silences {
        println!("  in silence: {line}");
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (`cargo test --all-targets`) only builds it.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("streaming benchmark: run it with `cargo bench --bench streaming`");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model_name = arg("--model", "base");
    let lang = arg("--lang", "en");
    let pacing = if arg("--pacing", "virtual") == "realtime" {
        Pacing::RealTime
    } else {
        Pacing::Virtual
    };
    let cache = std::env::var_os("TOLK_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or(root.join(".cache/tolk"));
    let model = Arc::new(
        Model::load(&cache.join("models").join(format!("ggml-{model_name}.bin")))
            .expect("model: run make bench"),
    );

    let (audio, reference) = program(&root, &lang);
    let threads = tolk::transcribe::default_threads();
    if let Some(minutes) = std::env::args()
        .position(|a| a == "--soak")
        .map(|_| arg("--soak", "60").parse::<f64>().expect("--soak MINUTES"))
    {
        soak(&model, &audio, &reference, &lang, minutes, threads);
        return;
    }
    let secs = audio.len() as f64 / 16_000.0;

    // Offline: the same model over the whole audio in one call, greedy like the stream.
    let t = Instant::now();
    let offline = model
        .transcribe(
            &audio,
            &Options {
                language: Language::Code(lang.clone()),
                beam_size: 1,
                threads,
                translate: false,
                prompt: None,
            },
        )
        .expect("offline transcription");
    let offline_secs = t.elapsed().as_secs_f64();
    let offline_wer = tolk::eval::wer(&reference, &offline.text(), &lang);

    // Streaming.
    let cpu0 = cpu_secs();
    let t = Instant::now();
    let mut word_lat: Vec<(f64, f64)> = Vec::new(); // (word end, latency)
    let mut partial_lat = Vec::new();
    let mut finals = Vec::new();
    let mut partials = 0usize;
    let stats = engine::run(
        &model,
        &audio,
        LanguageMode::Fixed(lang.clone()),
        false,
        PolicyConfig::default(),
        threads,
        pacing,
        |e| match e.event {
            Event::Final { text, words, .. } => {
                for w in &words {
                    word_lat.push((w.end, e.at - w.end));
                }
                finals.push(text);
            }
            Event::Partial { end, text, .. } => {
                if !text.is_empty() {
                    partials += 1;
                    partial_lat.push(e.at - end);
                }
            }
        },
    )
    .expect("stream");
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let stream_text = finals.join(" ");
    let stream_wer = tolk::eval::wer(&reference, &stream_text, &lang);
    let vs_offline = tolk::eval::wer(&offline.text(), &stream_text, &lang);
    let mut lat: Vec<f64> = word_lat.iter().map(|x| x.1).collect();
    let mut first: Vec<f64> = word_lat
        .iter()
        .filter(|x| x.0 < 60.0)
        .map(|x| x.1)
        .collect();
    let mut last: Vec<f64> = word_lat
        .iter()
        .filter(|x| x.0 >= secs - 60.0)
        .map(|x| x.1)
        .collect();
    let n_words = word_lat.len();

    eprintln!("offline ({offline_secs:.1} s): {}", offline.text());
    eprintln!("stream: {stream_text}");
    println!(
        "| {model_name} | {lang} | {:?} | {secs:.0} | {:.2} / {:.2} / {:.2} | {:.2} | {:.1}% | {:.1}% | {:.1}% | {:.2} | {:.2} | {:.0} | {:.2} → {:.2} | {:.1} |",
        pacing,
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.95),
        percentile(&mut lat, 1.0),
        percentile(&mut partial_lat, 0.5),
        100.0 * stream_wer.rate(),
        100.0 * offline_wer.rate(),
        100.0 * vs_offline.rate(),
        partials as f64 / n_words.max(1) as f64,
        cpu / secs,
        peak_rss_mb(),
        percentile(&mut first, 0.5),
        percentile(&mut last, 0.5),
        stats.max_lag,
    );
    eprintln!(
        "wall {wall:.1} s for {secs:.1} s of audio; {} decodes; dropped {:?}",
        stats.decodes, stats.dropped
    );
}
