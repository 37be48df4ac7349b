//! Capacity benchmark: N channels of long-form real speech at real time through one engine
//! (the decoder thread and its scheduler, as `tolk serve` runs them), on one model.
//!
//! ```sh
//! cargo bench --bench channels -- [--model base] [--channels 1,3,5] [--secs 180]
//!     [--piece-after SECS] [--piece-max SECS] [--speed 1.0] [--explain] [--trace-out FILE] [--clips A,B,C]
//!     [--finals-out FILE]
//! ```
//!
//! `--clips` plays one recording per channel instead (`testdata/A.*`, whole; the floor
//! first; Spanish for a name beginning `es-`), once: what an integration test's meeting
//! does, with this benchmark's measures. `--speed` simulates a machine that many times as fast as this one (below 1: each decode
//! takes `1 / speed` times as long, as `tolk serve --simulate-speed`). `--explain` says, per
//! channel, for every word the offline transcript has and the channel's finals do not, why
//! (`stream::explain`, as the streaming benchmark's `--explain`); `--trace-out` writes, with
//! it, each channel's finals and policy trace as JSON lines (`{"channel": 0, "final": …}`).
//!
//! `--finals-out FILE` writes each channel's finals as emitted, and when (`FILE.0` the
//! floor's, `FILE.1` the first booth's…), for the streaming benchmark's `--replay` with
//! `--secs` as here: the record of one channel revised again on the same finals.
//!
//! `--piece-after` sets the policy's `piece_after` for every channel (how long a piece of
//! speech a channel with a widened step commits at a short pause; `inf`: no pieces, the
//! widened step alone, as before 2026-12-07), `--piece-max` the length at which a piece with
//! no such pause is cut, to compare with the defaults.
//!
//! The floor speaks English, the booths Spanish, English, Spanish… (the streaming
//! benchmark's programs, cut to the first `--secs` seconds of whole recordings). Per channel:
//! WER against the reference and its ratio to `tolk transcribe`'s WER on the same audio
//! (beam 5, computed once per language), deletions, the same for the record as revised by the
//! idle-core reviser (what the archive keeps and `tolk serve`'s clients end with; the live
//! columns are the finals as first sent), per-word final latency p50/p95, seconds of
//! speech reported untranscribed, audio dropped, the largest lag, decodes and the share of
//! the programs' time the decoder was busy with them; for the run: process CPU per audio
//! second of all channels while they played, and with the record's revisions that catch up
//! after. Prints Markdown rows for `benches/README.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tolk::stream::decoder::Decoding;
use tolk::stream::explain::{self, Trace};
use tolk::stream::lang::LanguageMode;
use tolk::stream::policy::{Event, PolicyConfig, Word};
use tolk::stream::scheduler::{ChannelSpec, Engine};

mod common;
use common::{arg, cpu_secs, percentile, print_explained, program, Emitted};

/// What one channel's listener got: final texts, and (word end, latency) per word; and, from
/// the policy's trace, its closing decodes: each one's window (seconds) and how long after
/// the window's end it was delivered (the wait for the decoder's turn, and the decode).
#[derive(Default)]
struct Got {
    finals: Vec<String>,
    /// The record: each final's segment and text, revised in place as revisions come.
    record: Vec<(u64, String)>,
    latency: Vec<f64>,
    closing_window: Vec<f64>,
    /// How long after its window's end each was taken (the pause heard, the decoder's turn).
    closing_taken: Vec<f64>,
    closing_done: Vec<f64>,
    /// The finals as emitted, with when (`--finals-out`).
    emitted: Vec<Emitted>,
    /// With `--explain`: the finals' words and the policy's whole trace.
    words: Vec<Word>,
    trace: Vec<Trace>,
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("capacity benchmark: run it with `cargo bench --bench channels`");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model_name = arg("--model", "base");
    let secs: f64 = arg("--secs", "180").parse().expect("--secs N");
    let speed: f64 = arg("--speed", "1").parse().expect("--speed X");
    let trace_out = std::env::args()
        .any(|a| a == "--trace-out")
        .then(|| arg("--trace-out", ""));
    let finals_out = std::env::args()
        .any(|a| a == "--finals-out")
        .then(|| arg("--finals-out", ""));
    let explain_it = trace_out.is_some() || std::env::args().any(|a| a == "--explain");
    let policy = PolicyConfig {
        trace: true,
        piece_after: arg(
            "--piece-after",
            &PolicyConfig::default().piece_after.to_string(),
        )
        .parse()
        .expect("--piece-after SECS (inf for none)"),
        piece_max: arg(
            "--piece-max",
            &PolicyConfig::default().piece_max.to_string(),
        )
        .parse()
        .expect("--piece-max SECS"),
        ..PolicyConfig::default()
    };
    let counts: Vec<usize> = arg("--channels", "1,3,5")
        .split(',')
        .map(|n| n.trim().parse().expect("--channels 1,3,5"))
        .collect();
    let model = Arc::new(common::model(&model_name));
    let threads = tolk::transcribe::default_threads();
    let cpu_name = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "{model_name}, {threads} threads, {cpu_name}, {secs} s programs, real time, pieces from {} s, cut at {} s{}",
        policy.piece_after,
        policy.piece_max,
        if speed < 1.0 {
            format!(", a machine {speed}x as fast simulated")
        } else {
            String::new()
        }
    );
    let decoding = Decoding {
        speed,
        ..Decoding::threads(threads)
    };
    let capacity =
        tolk::stream::engine::calibrate(&model, Decoding::threads(threads)).expect("calibration");
    println!(
        "calibration (as `tolk serve` says it): {}",
        capacity.describe(0)
    );

    // Each program and its offline WER (the ratio's denominator): a language's, or with
    // `--clips` one recording's per channel (the language from its name: `es-…` Spanish).
    let clips_arg = std::env::args()
        .any(|a| a == "--clips")
        .then(|| arg("--clips", ""));
    let lang_of = |key: &str| -> &'static str {
        if key == "es" || key.starts_with("es-") {
            "es"
        } else {
            "en"
        }
    };
    let lineups: Vec<Vec<String>> = match &clips_arg {
        Some(list) => vec![list.split(',').map(|c| c.trim().to_string()).collect()],
        None => counts
            .iter()
            .map(|&n| {
                (0..n)
                    .map(|i| if i % 2 == 0 { "en" } else { "es" }.to_string())
                    .collect()
            })
            .collect(),
    };
    let mut programs = BTreeMap::new();
    for key in lineups.iter().flatten() {
        if programs.contains_key(key) {
            continue;
        }
        let lang = lang_of(key);
        let (audio, reference) = match &clips_arg {
            Some(_) => common::program_of(&root, &[key.as_str()], f64::INFINITY),
            None => program(&root, lang, secs),
        };
        let offline = common::offline(&model, &audio, lang, threads);
        let w = tolk::eval::wer(&reference, &offline.text(), lang);
        println!(
            "offline {key}: {:.0} s of audio, WER {:.1} % ({} deleted)",
            audio.len() as f64 / 16_000.0,
            100.0 * w.rate(),
            w.deletions
        );
        let segments: Vec<(f64, f64, String)> = offline
            .segments
            .iter()
            .map(|s| (s.start, s.end, s.text.clone()))
            .collect();
        let words = explain::spread_words(&segments, lang);
        programs.insert(key.clone(), (audio, reference, w, words));
    }

    for keys in &lineups {
        let n = keys.len();
        let got: Arc<Mutex<Vec<Got>>> =
            Arc::new(Mutex::new((0..n).map(|_| Got::default()).collect()));
        let g = got.clone();
        let engine = Engine::start(
            model.clone(),
            decoding,
            Box::new(move |ch, e| {
                let mut g = g.lock().unwrap();
                let got = &mut g[ch as usize];
                match e.event {
                    Event::Final {
                        text,
                        words,
                        segment,
                        start,
                        end,
                        language,
                        ..
                    } => {
                        got.latency.extend(words.iter().map(|w| e.at - w.end));
                        got.emitted.push(Emitted {
                            segment,
                            start,
                            end,
                            text: text.clone(),
                            language,
                            at: e.at,
                        });
                        got.record.push((segment, text.clone()));
                        got.finals.push(text);
                        if explain_it {
                            got.words.extend(words);
                        }
                    }
                    Event::Revised(r) => {
                        for p in r.pieces {
                            if let Some(f) = got.record.iter_mut().find(|f| f.0 == p.segment) {
                                f.1 = p.text;
                            }
                        }
                    }
                    Event::Trace(t) => {
                        if let Trace::Decode {
                            from,
                            to,
                            closing: true,
                            taken,
                            ..
                        } = t
                        {
                            got.closing_window.push(to - from);
                            got.closing_taken.push(taken - to);
                            got.closing_done.push(e.at - to);
                        }
                        if explain_it {
                            got.trace.push(t);
                        }
                    }
                    _ => {}
                }
            }),
        )
        .expect("engine");
        let channels: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                engine
                    .open(ChannelSpec {
                        name: if i == 0 {
                            "floor".into()
                        } else {
                            format!("booth{i}")
                        },
                        language: LanguageMode::Fixed(lang_of(key).to_string()),
                        floor: i == 0,
                        policy: policy.clone(),
                        hints: Vec::new(),
                        translate: false,
                        revise: true,
                        fault: None,
                    })
                    .expect("channel")
            })
            .collect();
        // Real time: 50 ms of every channel's program every 50 ms.
        let (cpu0, t0) = (cpu_secs(), Instant::now());
        let chunk = 800;
        let longest = keys.iter().map(|k| programs[k].0.len()).max().unwrap_or(0);
        let mut at = 0;
        while at < longest {
            for (c, key) in channels.iter().zip(keys) {
                let audio = &programs[key].0;
                if at < audio.len() {
                    c.push_audio(&audio[at..(at + chunk).min(audio.len())])
                        .expect("push");
                }
            }
            at += chunk;
            let due = Duration::from_secs_f64(at as f64 / 16_000.0);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        channels.iter().for_each(|c| c.finish());
        // The live part: CPU and wall time while the programs played (the record's
        // revisions then catch up on cores left idle, counted after).
        let (live_cpu, live_wall) = (cpu_secs() - cpu0, t0.elapsed().as_secs_f64());
        let waited = Instant::now();
        while !channels.iter().all(|c| c.stats().is_some_and(|s| s.done))
            && waited.elapsed() < Duration::from_secs(300)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        // The last finals and revisions: how long after the programs' end.
        let drained = waited.elapsed().as_secs_f64();
        let cpu = cpu_secs() - cpu0;
        let stats: Vec<_> = channels
            .iter()
            .map(|c| c.stats().unwrap_or_default())
            .collect();
        drop(channels);
        engine.shutdown();
        let got = got.lock().unwrap();
        let audio_secs: f64 = keys
            .iter()
            .map(|k| programs[k].0.len() as f64 / 16_000.0)
            .sum();
        println!(
            "\n{n} channel(s): CPU {:.2} s per audio second of all channels while they played \
             ({:.2} s/s of wall time), {:.2} s with the record's revisions after; every channel \
             done (its last final and revision) {drained:.0} s after the programs' end\n",
            live_cpu / audio_secs,
            live_cpu / live_wall,
            cpu / audio_secs,
        );
        println!("| channels | channel | WER | × offline | deleted (offline) | the record revised: WER, × offline, deleted | latency p50 / p95 | untranscribed | audio dropped | max lag | decodes (busy) |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for (i, key) in keys.iter().enumerate() {
            let lang = lang_of(key);
            let (_, reference, offline, _) = &programs[key];
            let text = got[i].finals.join(" ");
            let w = tolk::eval::wer(reference, &text, lang);
            let record: Vec<&str> = got[i].record.iter().map(|f| f.1.as_str()).collect();
            let r = tolk::eval::wer(reference, &record.join(" "), lang);
            let mut lat = got[i].latency.clone();
            let s = &stats[i];
            println!(
                "| {n} | {} ({lang}) | {:.1} % | {:.2} | {} ({}) | {:.1} %, {:.2}, {} | {:.2} / {:.2} s | {:.1} s | {:.1} s | {:.1} s | {} ({:.0} %) |",
                if i == 0 { "floor".to_string() } else { format!("booth {i}") },
                100.0 * w.rate(),
                w.rate() / offline.rate().max(1e-9),
                w.deletions,
                offline.deletions,
                100.0 * r.rate(),
                r.rate() / offline.rate().max(1e-9),
                r.deletions,
                percentile(&mut lat, 0.5),
                percentile(&mut lat, 0.95),
                s.untranscribed_secs,
                s.audio_lost_secs,
                s.max_lag,
                s.decodes,
                100.0 * s.decode_secs / live_wall,
            );
        }
        println!();
        for (i, (g, s)) in got.iter().zip(&stats).enumerate() {
            let (mut window, mut taken, mut done) = (
                g.closing_window.clone(),
                g.closing_taken.clone(),
                g.closing_done.clone(),
            );
            println!(
                "{}: {} closing decodes, window p50 {:.1} s, taken p50 / p95 {:.2} / {:.2} s and \
                 done p50 / p95 {:.2} / {:.2} s after its end; the record: {} chunks revised, {} \
                 refused, {} given up",
                if i == 0 {
                    "floor".to_string()
                } else {
                    format!("booth {i}")
                },
                window.len(),
                percentile(&mut window, 0.5),
                percentile(&mut taken, 0.5),
                percentile(&mut taken, 0.95),
                percentile(&mut done, 0.5),
                percentile(&mut done, 0.95),
                s.revisions,
                s.revisions_refused,
                s.revisions_given_up,
            );
        }
        if let Some(path) = &finals_out {
            for (i, g) in got.iter().enumerate() {
                let lines: Vec<String> = g
                    .emitted
                    .iter()
                    .map(|f| serde_json::to_string(f).expect("json"))
                    .collect();
                std::fs::write(format!("{path}.{i}"), lines.join("\n")).expect("--finals-out");
            }
        }
        if explain_it {
            for (i, (g, key)) in got.iter().zip(keys).enumerate() {
                println!(
                    "\n### {}",
                    if i == 0 {
                        "floor".to_string()
                    } else {
                        format!("booth {i}")
                    }
                );
                let offline_words = &programs[key].3;
                print_explained(&explain::explain(
                    offline_words,
                    &g.words,
                    &g.trace,
                    lang_of(key),
                ));
            }
            if let Some(path) = &trace_out {
                let mut lines = Vec::new();
                for (i, g) in got.iter().enumerate() {
                    for w in &g.words {
                        lines.push(serde_json::json!({"channel": i, "final": w}).to_string());
                    }
                    for t in &g.trace {
                        lines.push(serde_json::json!({"channel": i, "trace": t}).to_string());
                    }
                }
                std::fs::write(path, lines.join("\n") + "\n").expect("--trace-out");
            }
        }
    }
}
