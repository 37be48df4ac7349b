//! Streaming benchmark: long-form real speech (recordings joined with 1 s of silence) through
//! the live engine, against `tolk transcribe` (the same model, beam 5, the whole recording
//! in one call) on the same audio.
//!
//! ```sh
//! cargo bench --bench streaming -- [--model base] [--lang en|es] [--pacing virtual|realtime]
//!     [--runs 3] [--explain] [--offline-greedy] [--second-pass 0,12,28]
//! ```
//!
//! Reports, median of `--runs`: streaming WER against the reference with its substitutions,
//! deletions and insertions, the offline WER likewise, their ratios; per-word final latency
//! (emission time − the word's end in the audio, word times from the streaming decode
//! itself), partial latency, the revision rate of partials, CPU seconds per audio second,
//! peak RSS, and median latency in the first and the last minute. `--explain` says, for
//! every word the offline transcript has and the stream does not, why (`stream::explain`);
//! `--trace-out FILE` writes the offline segments, the stream's finals and the policy's
//! decisions as JSON lines, to look at one lost phrase closely. `--offline-greedy` also
//! prints the offline WER with greedy decoding; `--runs 0` stops after the offline ones.
//! `--second-pass SECS,…` scores, after each run, the stream's text revised by beam-5 decodes
//! of its utterances, joined into chunks of up to SECS seconds (0: each alone): a design
//! measured before it is built. `--finals-out FILE` writes each run's finals (`FILE.1`, …);
//! `--replay FILE` then revises those finals again without streaming (the reviser's chunks
//! and decodes, one after another) and scores the record: a change to the reviser measured
//! on the same finals, in minutes.
//! Prints Markdown rows for `benches/README.md`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tolk::stream::engine::{self, Pacing};
use tolk::stream::explain::{self, Trace};
use tolk::stream::lang::LanguageMode;
use tolk::stream::policy::{Event, PolicyConfig, Word};
use tolk::transcribe::Model;

mod common;
use common::{arg, cpu_secs, percentile, print_explained, program, Emitted};

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
                Event::Trace(_) | Event::Revised(_) => {}
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

/// One streaming run's figures.
#[derive(Debug, Clone, Default)]
struct Run {
    wer: Option<tolk::eval::Wer>,
    vs_offline: Option<tolk::eval::Wer>,
    lat_p50: f64,
    lat_p95: f64,
    lat_max: f64,
    partial_p50: f64,
    revisions: f64,
    cpu_per_sec: f64,
    first_min: f64,
    last_min: f64,
    max_lag: f64,
    wall: f64,
    text: String,
    explained: Option<explain::Report>,
    dropped: String,
    trace: Vec<Trace>,
    final_words: Vec<Word>,
    /// When each of `final_words` was emitted (engine seconds).
    final_at: Vec<f64>,
    /// In real time: the finals' text with their revisions ([`tolk::stream::revise`]).
    revised: Option<Revised>,
    /// The finals as emitted (`--finals-out`, `--replay`).
    emitted: Vec<Emitted>,
}

/// What the record reads once revised, and when.
#[derive(Debug, Clone)]
struct Revised {
    wer: tolk::eval::Wer,
    vs_offline: tolk::eval::Wer,
    /// Seconds from the end of a revised final's audio to its revision, p50 and max.
    delay_p50: f64,
    delay_max: f64,
    /// Chunks revised, refused, given up.
    chunks: (u64, u64, u64),
    text: String,
    marked: String,
}

#[allow(clippy::too_many_arguments)]
fn stream_once(
    model: &Arc<Model>,
    audio: &[f32],
    reference: &str,
    lang: &str,
    pacing: Pacing,
    threads: usize,
    offline: &tolk::transcribe::Transcript,
    explain_it: bool,
    hints: &[String],
) -> Run {
    let secs = audio.len() as f64 / 16_000.0;
    let cpu0 = cpu_secs();
    let t = Instant::now();
    let mut word_lat: Vec<(f64, f64)> = Vec::new(); // (word end, latency)
    let mut partial_lat = Vec::new();
    let mut finals = Vec::new();
    let mut final_words: Vec<Word> = Vec::new();
    let mut final_at: Vec<f64> = Vec::new();
    let mut trace: Vec<Trace> = Vec::new();
    let mut partials = 0usize;
    // Each final's segment, for its revision to find it.
    let mut starts: Vec<u64> = Vec::new();
    let mut revised_finals: Vec<(usize, String)> = Vec::new();
    // The first final of each revised chunk (for the marked record).
    let mut chunk_starts: Vec<usize> = Vec::new();
    let mut revised_delay: Vec<f64> = Vec::new();
    let mut emitted: Vec<Emitted> = Vec::new();
    let stats = engine::run(
        model,
        audio,
        LanguageMode::Fixed(lang.to_string()),
        false,
        PolicyConfig {
            trace: explain_it,
            hints: hints.to_vec(),
            ..PolicyConfig::default()
        },
        threads,
        pacing,
        |e| match e.event {
            Event::Final {
                text,
                words,
                segment,
                start,
                end,
                language,
                ..
            } => {
                for w in &words {
                    word_lat.push((w.end, e.at - w.end));
                }
                emitted.push(Emitted {
                    segment,
                    start,
                    end,
                    text: text.clone(),
                    language,
                    at: e.at,
                });
                finals.push(text);
                starts.push(segment);
                final_at.extend(words.iter().map(|_| e.at));
                final_words.extend(words);
            }
            Event::Partial { end, text, .. } => {
                if !text.is_empty() {
                    partials += 1;
                    partial_lat.push(e.at - end);
                }
            }
            Event::Trace(t) => trace.push(t),
            Event::Revised(r) => {
                if let Some(p) = r.pieces.first() {
                    if let Some(i) = starts.iter().rposition(|s| *s == p.segment) {
                        chunk_starts.push(i);
                    }
                }
                for p in r.pieces {
                    if let Some(i) = starts.iter().rposition(|s| *s == p.segment) {
                        revised_delay.push(e.at - p.end);
                        revised_finals.push((i, p.text));
                    }
                }
            }
        },
    )
    .expect("stream");
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let text = finals.join(" ");
    let revised = (pacing == Pacing::RealTime).then(|| {
        let (text, marked) = record(&finals, &revised_finals, &chunk_starts);
        Revised {
            wer: tolk::eval::wer(reference, &text, lang),
            vs_offline: tolk::eval::wer(&offline.text(), &text, lang),
            delay_p50: percentile(&mut revised_delay.clone(), 0.5),
            delay_max: percentile(&mut revised_delay, 1.0),
            chunks: (
                stats.revisions,
                stats.revisions_refused,
                stats.revisions_given_up,
            ),
            text,
            marked,
        }
    });
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
    let explained = explain_it.then(|| {
        let segments: Vec<(f64, f64, String)> = offline
            .segments
            .iter()
            .map(|s| (s.start, s.end, s.text.clone()))
            .collect();
        let offline_words = explain::spread_words(&segments, lang);
        explain::explain(&offline_words, &final_words, &trace, lang)
    });
    Run {
        wer: Some(tolk::eval::wer(reference, &text, lang)),
        vs_offline: Some(tolk::eval::wer(&offline.text(), &text, lang)),
        lat_p50: percentile(&mut lat, 0.5),
        lat_p95: percentile(&mut lat, 0.95),
        lat_max: percentile(&mut lat, 1.0),
        partial_p50: percentile(&mut partial_lat, 0.5),
        revisions: partials as f64 / word_lat.len().max(1) as f64,
        cpu_per_sec: cpu / secs,
        first_min: percentile(&mut first, 0.5),
        last_min: percentile(&mut last, 0.5),
        max_lag: stats.max_lag,
        wall,
        text,
        explained,
        dropped: format!("{} decodes; dropped {:?}", stats.decodes, stats.dropped),
        trace,
        final_words,
        final_at,
        revised,
        emitted,
    }
}

/// The record as read once revised (`finals` with each `(index, revised text)` put in), and
/// the same marked: "‖" where a revised chunk begins (`chunk_starts`), ⟦unrevised finals⟧.
fn record(
    finals: &[String],
    revised: &[(usize, String)],
    chunk_starts: &[usize],
) -> (String, String) {
    let mut record = finals.to_vec();
    for (i, t) in revised {
        record[*i].clone_from(t);
    }
    let marked: Vec<String> = (0..record.len())
        .map(|i| {
            let bar = if chunk_starts.contains(&i) {
                "‖ "
            } else {
                ""
            };
            if revised.iter().any(|(j, _)| *j == i) {
                format!("{bar}{}", record[i].trim())
            } else {
                format!("⟦{}⟧", finals[i].trim())
            }
        })
        .collect();
    let text: Vec<&str> = record
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    (text.join(" "), marked.join(" "))
}

/// `--replay FILE`: the revision of a run's finals (written by `--finals-out`) decoded
/// again here, one chunk after another, as the reviser would: the same chunks, the same
/// decodes, without the stream (so a change to the reviser is measured on the same finals).
/// Returns the record, marked, and the chunks revised and refused.
fn replay(
    model: &Model,
    audio: &[f32],
    emitted: &[Emitted],
    threads: usize,
) -> (String, String, usize, usize) {
    use tolk::stream::revise::{self, Chunker, Outcome};
    let mut chunker = Chunker::new(0.0, Vec::new());
    let mut jobs = Vec::new();
    let mut fed = 0usize;
    let mut feed_to = |chunker: &mut Chunker, t: f64, jobs: &mut Vec<_>| {
        let until = ((t * 16_000.0) as usize).min(audio.len());
        while fed < until {
            let n = (until - fed).min(1_600);
            jobs.extend(chunker.push_audio(&audio[fed..fed + n]));
            fed += n;
        }
    };
    for f in emitted {
        feed_to(&mut chunker, f.at, &mut jobs);
        jobs.extend(chunker.on_final(f.segment, f.start, f.end, &f.text, &f.language));
    }
    feed_to(&mut chunker, f64::INFINITY, &mut jobs);
    jobs.extend(chunker.finish());
    let finals: Vec<String> = emitted.iter().map(|f| f.text.clone()).collect();
    let index = |segment: u64| emitted.iter().rposition(|f| f.segment == segment);
    let (mut revised, mut starts, mut refused) = (Vec::new(), Vec::new(), 0);
    let n = jobs.len();
    let mut before = Vec::new();
    for job in jobs {
        match revise::revise(model, threads, job, &mut before) {
            Outcome::Revised(r) => {
                starts.extend(r.pieces.first().and_then(|p| index(p.segment)));
                for p in r.pieces {
                    if let Some(i) = index(p.segment) {
                        revised.push((i, p.text));
                    }
                }
            }
            _ => refused += 1,
        }
    }
    let (text, marked) = record(&finals, &revised, &starts);
    (text, marked, n - refused, refused)
}

/// What [`second_pass`] read and what it cost.
struct SecondPass {
    text: String,
    /// Decoder seconds per audio second.
    cost: f64,
    decodes: usize,
    /// p50 decoder seconds of one decode.
    decode_p50: f64,
    /// p50 and longest audio of one decode, seconds.
    len_p50: f64,
    len_max: f64,
}

/// `--second-pass CHUNKS`: what the stream would read if each utterance (from the voice
/// detector's start to its end, as the policy traced them) were decoded again with beam 5
/// once it ended, its text replacing the finals inside it — a design not built, measured
/// before it is (issue 13). With `chunk` seconds above 0, consecutive utterances are decoded
/// together while they span no more than that (the window length a live decoder would need).
fn second_pass(
    model: &Model,
    audio: &[f32],
    trace: &[Trace],
    final_words: &[Word],
    lang: &str,
    threads: usize,
    chunk: f64,
) -> SecondPass {
    let secs = audio.len() as f64 / 16_000.0;
    let cfg = PolicyConfig::default();
    let spans = explain::utterances(trace, secs);
    // Pre-roll and tail as the live decodes have them, never into the next utterance.
    let padded: Vec<(f64, f64)> = spans
        .iter()
        .enumerate()
        .map(|(i, &(s, e))| {
            let lo = if i > 0 {
                (spans[i - 1].1 + s) / 2.0
            } else {
                0.0
            };
            let hi = spans.get(i + 1).map_or(secs, |n| (e + n.0) / 2.0);
            ((s - cfg.preroll).max(lo), (e + cfg.tail).min(hi))
        })
        .collect();
    let mut chunks: Vec<(f64, f64)> = Vec::new();
    for &(s, e) in &padded {
        match chunks.last_mut() {
            Some(c) if e - c.0 <= chunk => c.1 = e,
            _ => chunks.push((s, e)),
        }
    }
    let mut pieces: Vec<(f64, String)> = Vec::new();
    let mut each = Vec::new();
    let t = Instant::now();
    for &(s, e) in &chunks {
        let t1 = Instant::now();
        let a = ((s * 16_000.0) as usize).min(audio.len());
        let b = ((e * 16_000.0) as usize).min(audio.len());
        if b - a < 1_600 {
            continue;
        }
        // Prompted with the text before it, as the live decodes are.
        let before: Vec<&str> = pieces.iter().map(|p| p.1.as_str()).collect();
        let before = before.join(" ");
        let prompt = before
            .char_indices()
            .rev()
            .nth(200)
            .map_or(before.as_str(), |(i, _)| &before[i..]);
        let prompt = (!prompt.is_empty()).then(|| prompt.to_string());
        let text = common::offline_prompted(model, &audio[a..b], lang, threads, 5, prompt).text();
        pieces.push((s, speech_only(&text)));
        each.push(t1.elapsed().as_secs_f64());
    }
    let cost = t.elapsed().as_secs_f64() / secs;
    for w in final_words {
        if !padded.iter().any(|&(s, e)| w.start < e && s < w.end) {
            pieces.push((w.start, w.text.clone()));
        }
    }
    pieces.sort_by(|x, y| x.0.total_cmp(&y.0));
    let text = pieces
        .iter()
        .map(|p| p.1.trim())
        .collect::<Vec<_>>()
        .join(" ");
    let mut lens: Vec<f64> = chunks.iter().map(|(s, e)| e - s).collect();
    SecondPass {
        text,
        cost,
        decodes: lens.len(),
        decode_p50: percentile(&mut each, 0.5),
        len_p50: percentile(&mut lens, 0.5),
        len_max: percentile(&mut lens, 1.0),
    }
}

/// `text` without Whisper's non-speech tags ("[BLANK_AUDIO]", "(laughs)") and with a word
/// said more than five times running cut to five (the live guards do as much).
fn speech_only(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut tag = false;
    for w in text.split_whitespace() {
        if w.starts_with('[') || w.starts_with('(') {
            tag = true;
        }
        let was = tag;
        if w.ends_with(']') || w.ends_with(')') {
            tag = false;
        }
        if was {
            continue;
        }
        let same =
            |x: &&str| tolk::stream::policy::normalise(x) == tolk::stream::policy::normalise(w);
        if out.len() >= 5 && out[out.len() - 5..].iter().all(same) {
            continue;
        }
        out.push(w);
    }
    out.join(" ")
}

/// The median of `f` over the runs.
fn median(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    percentile(&mut v, 0.5)
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (`cargo test --all-targets`) only builds it.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("streaming benchmark: run it with `cargo bench --bench streaming`");
        return;
    }
    // `TOLK_LOG=tolk=debug`: the engine's counts and times (never words) on standard error.
    if let Ok(filter) = std::env::var("TOLK_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model_name = arg("--model", "base");
    let lang = arg("--lang", "en");
    let pacing = if arg("--pacing", "virtual") == "realtime" {
        Pacing::RealTime
    } else {
        Pacing::Virtual
    };
    let runs: usize = arg("--runs", "1").parse().expect("--runs N");
    let trace_out = std::env::args()
        .any(|a| a == "--trace-out")
        .then(|| arg("--trace-out", ""));
    let second: Vec<f64> = std::env::args()
        .any(|a| a == "--second-pass")
        .then(|| arg("--second-pass", "0"))
        .map(|v| {
            v.split(',')
                .map(|c| c.parse().expect("--second-pass SECS,SECS,…"))
                .collect()
        })
        .unwrap_or_default();
    let explain_it =
        trace_out.is_some() || !second.is_empty() || std::env::args().any(|a| a == "--explain");
    let model = Arc::new(common::model(&model_name));
    // `--topic`: every prompt starts with the term benchmark's session topic for this
    // language (as a meeting file's `topic` would), on speech that has none of its terms:
    // what a topic costs ordinary speech.
    let hints = if std::env::args().any(|a| a == "--topic") {
        let glossary =
            tolk::glossary::Glossary::load(&root.join("glossaries/sex-work-rights.toml"))
                .expect("glossary");
        let hints = glossary.topic(&common::session_topic(&root, &lang), &lang);
        println!("topic: {}", hints.join(", "));
        hints
    } else {
        Vec::new()
    };

    // `--secs N`: the program's first whole recordings up to N seconds, as the channels
    // benchmark cuts it (to replay a channel's finals written there with `--finals-out`).
    let secs: f64 = arg("--secs", "inf").parse().expect("--secs N");
    let (audio, reference) = program(&root, &lang, secs);
    let threads = tolk::transcribe::default_threads();
    if let Some(minutes) = std::env::args()
        .position(|a| a == "--soak")
        .map(|_| arg("--soak", "60").parse::<f64>().expect("--soak MINUTES"))
    {
        soak(&model, &audio, &reference, &lang, minutes, threads);
        return;
    }
    let secs = audio.len() as f64 / 16_000.0;

    // Offline: `tolk transcribe` with the same model over the whole audio in one call (its
    // default, beam 5).
    let t = Instant::now();
    let offline = common::offline(&model, &audio, &lang, threads);
    let offline_secs = t.elapsed().as_secs_f64();
    let off = tolk::eval::wer(&reference, &offline.text(), &lang);
    eprintln!("offline ({offline_secs:.1} s): {}", offline.text());
    // `--offline-greedy`: the same offline transcription with greedy decoding, to tell the
    // part of the gap greedy decoding makes from the part short windows make.
    if std::env::args().any(|a| a == "--offline-greedy") {
        let greedy = common::offline_with_beam(&model, &audio, &lang, threads, 1);
        let g = tolk::eval::wer(&reference, &greedy.text(), &lang);
        println!(
            "offline greedy: WER {:.1}% (S {} / D {} / I {}), {:.2} x beam 5's",
            100.0 * g.rate(),
            g.substitutions,
            g.deletions,
            g.insertions,
            g.rate() / off.rate().max(1e-9)
        );
    }
    if let Some(path) = std::env::args()
        .any(|a| a == "--replay")
        .then(|| arg("--replay", ""))
    {
        let emitted: Vec<Emitted> = std::fs::read_to_string(&path)
            .expect("--replay FILE: the finals of a run (--finals-out)")
            .lines()
            .map(|l| serde_json::from_str(l).expect("--replay FILE: a final per line"))
            .collect();
        let stream: Vec<&str> = emitted.iter().map(|f| f.text.as_str()).collect();
        let stream = tolk::eval::wer(&reference, &stream.join(" "), &lang);
        let t = Instant::now();
        let (text, marked, revised, refused) = replay(&model, &audio, &emitted, threads);
        let w = tolk::eval::wer(&reference, &text, &lang);
        eprintln!("replayed record: {text}\nmarked: {marked}");
        println!(
            "replay of {path} ({:.0} s): stream {:.1}% ({:.2} x offline); record revised {:.1}% (S {} / D {} / I {}), {:.2} x offline, {:.1}% against the offline text; chunks revised / refused {revised} / {refused}",
            t.elapsed().as_secs_f64(),
            100.0 * stream.rate(),
            stream.rate() / off.rate().max(1e-9),
            100.0 * w.rate(),
            w.substitutions,
            w.deletions,
            w.insertions,
            w.rate() / off.rate().max(1e-9),
            100.0 * tolk::eval::wer(&offline.text(), &text, &lang).rate(),
        );
        return;
    }
    if runs == 0 {
        // `--runs 0`: the offline transcriptions only.
        return;
    }
    let finals_out = std::env::args()
        .any(|a| a == "--finals-out")
        .then(|| arg("--finals-out", ""));

    let mut all = Vec::new();
    for k in 0..runs {
        let r = stream_once(
            &model, &audio, &reference, &lang, pacing, threads, &offline, explain_it, &hints,
        );
        eprintln!("stream run {} ({:.0} s): {}", k + 1, r.wall, r.text);
        if !hints.is_empty() {
            // Prompt terms the stream wrote more often than the speech says them.
            let count = |text: &str, term: &str| {
                let (t, n) = (
                    tolk::eval::normalize(text, &lang),
                    tolk::eval::normalize(term, &lang),
                );
                if n.is_empty() {
                    0
                } else {
                    t.windows(n.len()).filter(|w| *w == n.as_slice()).count()
                }
            };
            let unsaid: Vec<String> = hints
                .iter()
                .filter_map(|h| {
                    let extra = count(&r.text, h).saturating_sub(count(&reference, h));
                    (extra > 0).then(|| format!("{h} ×{extra}"))
                })
                .collect();
            println!(
                "topic terms written, not said (run {}): {} {unsaid:?}",
                k + 1,
                unsaid.len()
            );
        }
        eprintln!("  {}", r.dropped);
        if let Some(e) = &r.explained {
            print_explained(e);
        }
        if let Some(v) = &r.revised {
            eprintln!("revised run {}: {}", k + 1, v.text);
            eprintln!("revised run {} marked: {}", k + 1, v.marked);
            println!(
                "revised (run {}): WER {:.1}% (S {} / D {} / I {}), {:.2} x offline, deletions {:.2} x, {:.1}% against the offline text; chunks revised / refused / given up {} / {} / {}; revision {:.1} s after the audio (p50; max {:.1} s)",
                k + 1,
                100.0 * v.wer.rate(),
                v.wer.substitutions,
                v.wer.deletions,
                v.wer.insertions,
                v.wer.rate() / off.rate().max(1e-9),
                v.wer.deletions as f64 / (off.deletions as f64).max(1.0),
                100.0 * v.vs_offline.rate(),
                v.chunks.0,
                v.chunks.1,
                v.chunks.2,
                v.delay_p50,
                v.delay_max,
            );
        }
        for &chunk in &second {
            let p = second_pass(
                &model,
                &audio,
                &r.trace,
                &r.final_words,
                &lang,
                threads,
                chunk,
            );
            let w = tolk::eval::wer(&reference, &p.text, &lang);
            println!(
                "second pass, chunks up to {chunk} s ({} decodes of p50 {:.1} s, max {:.1} s, beam 5, p50 {:.2} s each): WER {:.1}% (S {} / D {} / I {}), {:.2} x offline; {:.2} decoder s per audio s",
                p.decodes,
                p.len_p50,
                p.len_max,
                p.decode_p50,
                100.0 * w.rate(),
                w.substitutions,
                w.deletions,
                w.insertions,
                w.rate() / off.rate().max(1e-9),
                p.cost
            );
            eprintln!("second pass ({chunk} s) text: {}", p.text);
        }
        if let Some(path) = &finals_out {
            let lines: Vec<String> = r
                .emitted
                .iter()
                .map(|f| serde_json::to_string(f).expect("json"))
                .collect();
            std::fs::write(format!("{path}.{}", k + 1), lines.join("\n")).expect("--finals-out");
        }
        if let Some(path) = &trace_out {
            let mut lines = Vec::new();
            for s in &offline.segments {
                lines.push(serde_json::json!({"offline": [s.start, s.end, s.text]}).to_string());
            }
            for (w, at) in r.final_words.iter().zip(&r.final_at) {
                lines.push(serde_json::json!({"final": w, "at": at}).to_string());
            }
            for t in &r.trace {
                lines.push(serde_json::to_string(t).expect("json"));
            }
            std::fs::write(format!("{path}.{}", k + 1), lines.join("\n")).expect("--trace-out");
        }
        all.push(r);
    }
    let w = |r: &Run| r.wer.expect("measured");
    let pct = |x: f64| 100.0 * x;
    let stream_wer = median(&all, |r| w(r).rate());
    let deletions = median(&all, |r| w(r).deletions as f64);
    println!(
        "\n| model | lang | pacing | audio s | runs | streaming WER (S / D / I) | offline WER, beam 5 (S / D / I) | WER ratio | deletions ratio | WER vs offline text | final latency p50 / p95 / max (s) | partial latency p50 (s) | revisions / word | CPU s/s | peak RSS MB | first → last min p50 (s) | max lag (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {model_name} | {lang} | {pacing:?} | {secs:.0} | {} | {:.1}% ({:.0} / {:.0} / {:.0}) | {:.1}% ({} / {} / {}) | {:.2} | {:.2} | {:.1}% | {:.2} / {:.2} / {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} → {:.2} | {:.1} |",
        all.len(),
        pct(stream_wer),
        median(&all, |r| w(r).substitutions as f64),
        deletions,
        median(&all, |r| w(r).insertions as f64),
        pct(off.rate()),
        off.substitutions,
        off.deletions,
        off.insertions,
        stream_wer / off.rate().max(1e-9),
        deletions / (off.deletions as f64).max(1.0),
        pct(median(&all, |r| r.vs_offline.expect("measured").rate())),
        median(&all, |r| r.lat_p50),
        median(&all, |r| r.lat_p95),
        median(&all, |r| r.lat_max),
        median(&all, |r| r.partial_p50),
        median(&all, |r| r.revisions),
        median(&all, |r| r.cpu_per_sec),
        peak_rss_mb(),
        median(&all, |r| r.first_min),
        median(&all, |r| r.last_min),
        median(&all, |r| r.max_lag),
    );
    if all.len() > 1 {
        let each: Vec<String> = all
            .iter()
            .map(|r| format!("{:.1}%", pct(w(r).rate())))
            .collect();
        println!("\nstreaming WER of each run: {}", each.join(", "));
    }
}
