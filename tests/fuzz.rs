//! The fuzz targets (`tolk::fuzz`) for a few seconds each, inside `make test`: first every
//! regression input in `tests/data/fuzz/TARGET/`, then real inputs (protocol messages, Opus
//! and PCM frames, audio files, the glossary as TOML, CSV and TBX) mutated at random. This
//! run is not coverage-guided (that is `make fuzz`, see fuzz/README.md); it keeps the targets
//! honest on the stable toolchain and catches a panic brought in by a change.
//!
//! `TOLK_FUZZ_SECS` (default 3) seconds per target; `TOLK_FUZZ_SEED` repeats a run. A panic
//! saves the input in `target/fuzz-crashes/` and fails with its path and the seed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use tolk::fuzz::{mutate, Rng, TARGETS};

use crate::util::*;

/// Real inputs for `target`.
fn seeds(target: &str, dir: &Path) -> Vec<Vec<u8>> {
    match target {
        "protocol" => [
            r#"{"type":"subscribe","channels":["floor","es"]}"#,
            r#"{"type":"subscribe","channels":["floor"],"since":{"floor":12}}"#,
            r#"{"type":"unsubscribe","channels":["es"]}"#,
            r#"{"type":"ping","id":7}"#,
            r#"{"type":"hello","format":"opus","rate":48000}"#,
            r#"{"type":"hello","format":"pcm16","rate":16000}"#,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "ingest_frames" => {
            // 20 ms frames of a tone, length-prefixed as the target reads them.
            let tone: Vec<i16> = (0..48_000)
                .map(|i| ((i as f32 * 0.05).sin() * 8000.0) as i16)
                .collect();
            let mut enc =
                opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
            let mut opus_in = vec![0u8, 4]; // Opus, 48 kHz
            for frame in tone.chunks(960).take(10) {
                let packet = enc.encode_vec(frame, 255).unwrap();
                opus_in.push(packet.len() as u8);
                opus_in.extend(packet);
            }
            let mut pcm_in = vec![1u8, 2]; // PCM, 16 kHz
            for frame in tone[..3200].chunks(100) {
                pcm_in.push(200);
                pcm_in.extend(frame.iter().flat_map(|s| s.to_le_bytes()));
            }
            vec![opus_in, pcm_in]
        }
        "audio_file" => ["wav", "flac", "ogg", "mp3"]
            .iter()
            .map(|ext| {
                // A quarter of a second of speech, in each format the decoder reads.
                let out = dir.join(format!("seed.{ext}"));
                sox(&[
                    testdata("jfk.wav").to_str().unwrap(),
                    out.to_str().unwrap(),
                    "trim",
                    "1",
                    "0.25",
                ]);
                std::fs::read(out).unwrap()
            })
            .collect(),
        "glossary" => {
            // The real glossary, cut to a few concepts so an input stays small.
            let text =
                std::fs::read_to_string(root().join("glossaries/sex-work-rights.toml")).unwrap();
            let mut file = tolk::glossary::parse(&text).unwrap();
            file.concepts.truncate(6);
            let toml = toml::to_string(&file).unwrap();
            let csv = tolk::glossary::interchange::to_csv(&file).unwrap();
            let tbx = tolk::glossary::interchange::to_tbx(&file);
            [(0u8, toml), (1, csv), (2, tbx)]
                .into_iter()
                .map(|(k, t)| [vec![k], t.into_bytes()].concat())
                .collect()
        }
        other => panic!("no seeds for target {other}"),
    }
}

/// An input taking longer than this is a finding too (a client could stall a thread).
const SLOW: Duration = Duration::from_secs(1);

/// Runs `body` on `input`; on a panic, or if it takes over [`SLOW`], saves the input and
/// fails saying how to repeat it.
fn run_one(target: &str, body: fn(&[u8]), input: &[u8], how: &str) {
    let t = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| body(input)));
    let took = t.elapsed();
    if took > SLOW {
        let dir = root().join("target/fuzz-crashes");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{target}-slow-{:016x}", fnv(input)));
        std::fs::write(&path, input).unwrap();
        panic!(
            "fuzz target {target} took {:.1} s on {} ({how})",
            took.as_secs_f64(),
            path.display()
        );
    }
    if let Err(panic) = result {
        let dir = root().join("target/fuzz-crashes");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{target}-{:016x}", fnv(input)));
        std::fs::write(&path, input).unwrap();
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!(
            "fuzz target {target} panicked ({what}) on {} ({how})",
            path.display()
        );
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, x| {
        (h ^ u64::from(*x)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn the_fuzz_targets_survive_a_short_run() {
    let secs: u64 = std::env::var("TOLK_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("TOLK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    // CPU-heavy for seconds: not beside a Whisper test.
    let _guard = whisper_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    for (target, body) in TARGETS {
        let regressions = root().join("tests/data/fuzz").join(target);
        let mut replayed = 0;
        if let Ok(entries) = std::fs::read_dir(&regressions) {
            for e in entries.flatten() {
                let input = std::fs::read(e.path()).unwrap();
                run_one(
                    target,
                    body,
                    &input,
                    &format!("regression {}", e.path().display()),
                );
                replayed += 1;
            }
        }
        let seeds = seeds(target, dir.path());
        for s in &seeds {
            run_one(target, body, s, "a seed");
        }
        let mut rng = Rng::new(seed ^ fnv(target.as_bytes()));
        let (start, mut runs) = (Instant::now(), 0u64);
        while start.elapsed() < Duration::from_secs(secs) {
            let a = &seeds[rng.below(seeds.len())];
            let b = &seeds[rng.below(seeds.len())];
            let input = mutate(a, b, &mut rng);
            run_one(target, body, &input, &format!("TOLK_FUZZ_SEED={seed}"));
            runs += 1;
        }
        report.push(format!("{target}: {replayed} regressions, {runs} inputs"));
    }
    eprintln!("fuzz (seed {seed}, {secs} s each): {}", report.join("; "));
}
