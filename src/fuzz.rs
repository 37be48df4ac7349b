//! The fuzz targets' bodies, shared by cargo-fuzz (`fuzz/fuzz_targets/`, coverage-guided,
//! `make fuzz`) and by the seconds-long run inside `make test` (`tests/fuzz.rs`: seeds
//! mutated at random on the stable toolchain, no instrumentation). Each takes any bytes and
//! must not panic; what it checks beyond that is in its doc.

use std::io::Write;

use crate::glossary::{interchange, parse, AnnotateOptions, Glossary};
use crate::server::source::FrameDecoder;
use crate::server::wire::{AudioFormat, ClientMessage, IngestMessage};

/// A target: its name and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by the name cargo-fuzz knows it by.
pub const TARGETS: [Target; 4] = [
    ("protocol", protocol),
    ("ingest_frames", ingest_frames),
    ("audio_file", audio_file),
    ("glossary", glossary),
];

/// The caption protocol's client messages and a booth's hello: any text is parsed to a
/// message or refused, never a panic; a hello's format and rate are checked without panic.
pub fn protocol(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = serde_json::from_str::<ClientMessage>(text);
    if let Ok(IngestMessage::Hello { format, rate }) = serde_json::from_str::<IngestMessage>(text) {
        let _ = FrameDecoder::new(format, rate);
    }
}

const RATES: [u32; 8] = [
    8_000, 12_000, 16_000, 24_000, 48_000, 44_100, 22_050, 96_000,
];

/// A booth's audio frames: the first bytes choose the format and rate as a hello would, the
/// rest are frames (each after a length byte). Undecodable frames are errors, and decoded
/// audio is finite samples.
pub fn ingest_frames(data: &[u8]) {
    let [kind, rate, rest @ ..] = data else {
        return;
    };
    let format = if kind & 1 == 0 {
        AudioFormat::Opus
    } else {
        AudioFormat::Pcm16
    };
    let Ok(mut d) = FrameDecoder::new(format, RATES[*rate as usize % RATES.len()]) else {
        return;
    };
    let mut rest = rest;
    while let [len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (frame, next) = tail.split_at(n);
        if let Ok(samples) = d.decode(frame) {
            assert!(
                samples.iter().all(|s| s.is_finite()),
                "a sample is not finite"
            );
        }
        rest = next;
    }
}

/// Audio files (`tolk transcribe`, file sources): any bytes, as a file, decode to finite
/// audio or to an error.
pub fn audio_file(data: &[u8]) {
    let Ok(mut f) = tempfile::Builder::new().suffix(".wav").tempfile() else {
        return;
    };
    if f.write_all(data).is_err() {
        return;
    }
    if let Ok(audio) = crate::audio::decode_file(f.path()) {
        assert!(
            audio.samples.iter().all(|s| s.is_finite()),
            "a sample is not finite"
        );
    }
}

/// Glossary import: the first byte chooses TOML, CSV or TBX, the rest is the text; it
/// parses or is refused, and what parses builds its matchers, annotates a caption and lints.
pub fn glossary(data: &[u8]) {
    let [which, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let file = match which % 3 {
        0 => parse(text).ok(),
        1 => interchange::from_csv(text).ok(),
        _ => interchange::from_tbx(text).ok(),
    };
    let Some(file) = file else {
        return;
    };
    if let Ok(g) = Glossary::new(file) {
        let opts = AnnotateOptions {
            targets: vec!["es".into()],
            flags: true,
            in_domain: false,
        };
        let _ = g.annotate("the sex workers said decriminalisation now", "en", &opts);
        let _ = g.lint();
    }
}

/// A small random number generator (xorshift64*): the runs are repeatable from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// One input made from `seed` by a few random edits (the usual ones of mutation fuzzers:
/// bit flips, bytes set to interesting values, insertions, deletions, repeats, splices with
/// `other`, truncation).
pub fn mutate(seed: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    const INTERESTING: [u8; 10] = [0, 1, 0x7f, 0x80, 0xff, b'"', b'{', b'<', b',', b'\n'];
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                v.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                v.drain(a..b);
            }
            4 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let piece = v[a..b].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, piece);
            }
            5 if !other.is_empty() => {
                let a = rng.below(other.len());
                let b = (a + 1 + rng.below(256)).min(other.len());
                let at = rng.below(len + 1);
                v.splice(at..at, other[a..b].iter().copied());
            }
            6 if len > 0 => v.truncate(rng.below(len)),
            _ if len > 0 => {
                // A number-like field made extreme: a run of nines or of zeros.
                let i = rng.below(len);
                let n = 1 + rng.below(20);
                let c = if rng.below(2) == 0 { b'9' } else { b'0' };
                v.splice(i..i, std::iter::repeat_n(c, n));
            }
            _ => v.push(rng.next_u64() as u8),
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_repeatable_and_change_the_input() {
        let seed = br#"{"type":"subscribe","channels":["floor"]}"#;
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let mut changed = 0;
        for _ in 0..100 {
            let x = mutate(seed, b"other", &mut a);
            assert_eq!(x, mutate(seed, b"other", &mut b));
            changed += usize::from(x != seed);
        }
        assert!(changed > 90, "{changed} of 100 changed");
    }
}
