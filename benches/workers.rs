//! Decoder layouts on this machine: one decoder with every Whisper thread (what the engine
//! does) against several decoders at once with fewer threads each (one per core, say). The
//! same decodes either way — windows of real speech as the streaming policy sends them
//! (greedy, 5 s, and one closing beam decode of 6 s in every four) — timed for throughput
//! (decodes per second: how many channels fit) and for each decode's wall time (how late a
//! caption comes).
//!
//! `cargo bench --bench workers [-- --model base --decodes 40]`; results in benches/README.md.
//!
//! What a decode costs, by kind: `-- --decodes 24 --kind greedy|beam --secs 5 --prompt 400`
//! times one decoder alone on windows of `--secs`, every one greedy or every one a closing
//! beam decode, each prompted with up to `--prompt` characters of the program's text before
//! the window (placed by the window's share of the program; the live engine's prompt holds
//! up to 400 characters of the channel's recent text).

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{arg, percentile, program};
use tolk::stream::decoder::Decoder;
use tolk::stream::lang::LanguageMode;
use tolk::stream::policy::DecodeJob;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("decoder layouts: run it with `cargo bench --bench workers`");
        return;
    }
    let model_name = arg("--model", "base");
    let decodes: usize = arg("--decodes", "40").parse().expect("--decodes N");
    let model = Arc::new(common::model(&model_name));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kind = arg("--kind", "mixed");
    assert!(
        ["mixed", "greedy", "beam"].contains(&kind.as_str()),
        "--kind {kind}: expected greedy, beam or mixed (the default)"
    );
    let secs: f64 = arg("--secs", "5").parse().expect("--secs S");
    let prompt_chars: usize = arg("--prompt", "0").parse().expect("--prompt CHARS");
    let (audio, text) = program(&common::root(), "en", 120.0);
    let text: Vec<char> = text.chars().collect();
    let program_secs = audio.len() as f64 / 16_000.0;
    // The text said before `start`, as far as the characters' share of the program tells.
    let prompt_at = |start: f64| -> String {
        let to = ((start / program_secs) * text.len() as f64) as usize;
        text[to.saturating_sub(prompt_chars)..to].iter().collect()
    };
    // The jobs: consecutive windows of the program, as a channel's decodes would be.
    let jobs: Arc<Vec<DecodeJob>> = Arc::new(
        (0..decodes)
            .map(|i| {
                let (closing, secs) = match kind.as_str() {
                    "greedy" => (false, secs),
                    "beam" => (true, secs),
                    _ => (i % 4 == 3, if i % 4 == 3 { 6.0 } else { 5.0 }),
                };
                // By kind, the windows begin 30 s in: every one has 400 characters before it.
                let first = if kind == "mixed" { 0.0 } else { 30.0 };
                let start =
                    first + (i as f64 * 2.5) % (audio.len() as f64 / 16_000.0 - secs - first);
                let from = (start * 16_000.0) as usize;
                DecodeJob {
                    id: i as u64,
                    start,
                    audio: audio[from..from + (secs * 16_000.0) as usize].to_vec(),
                    prompt: prompt_at(start),
                    hints: Vec::new(),
                    closing,
                    beam: closing,
                }
            })
            .collect(),
    );
    if kind == "mixed" {
        println!(
            "{model_name}, {cores} cores, {decodes} decodes (5-s greedy, every fourth a 6-s closing beam), prompt {prompt_chars} characters"
        );
    } else {
        println!(
            "{model_name}, {cores} cores, {decodes} decodes ({secs}-s {kind}), prompt {prompt_chars} characters"
        );
    }
    println!(
        "| decoders × threads | decodes/s | wall per decode p50 / p95 (s) | words per decode |"
    );
    println!("|---|---|---|---|");
    let mut layouts = vec![(1, cores)];
    // Costs by kind: one decoder only.
    for workers in 2..=(if kind == "mixed" { cores } else { 1 }) {
        layouts.push((workers, (cores / workers).max(1)));
    }
    for (workers, threads) in layouts {
        let t0 = Instant::now();
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (model, jobs) = (model.clone(), jobs.clone());
                std::thread::spawn(move || {
                    let mut d =
                        Decoder::new(&model, LanguageMode::Fixed("en".into()), threads).unwrap();
                    let (mut walls, mut words) = (Vec::new(), 0usize);
                    // Worker w takes jobs w, w + workers, …: the same decodes in all.
                    for job in jobs.iter().skip(w).step_by(workers) {
                        let t = Instant::now();
                        words += d.decode(job).unwrap().words.len();
                        walls.push(t.elapsed().as_secs_f64());
                    }
                    (walls, words)
                })
            })
            .collect();
        let (mut walls, mut words) = (Vec::new(), 0);
        for h in handles {
            let (w, n) = h.join().unwrap();
            walls.extend(w);
            words += n;
        }
        let total = t0.elapsed().as_secs_f64();
        println!(
            "| {workers} × {threads} | {:.2} | {:.2} / {:.2} | {:.1} |",
            decodes as f64 / total,
            percentile(&mut walls, 0.5),
            percentile(&mut walls, 0.95),
            words as f64 / decodes as f64
        );
    }
}
