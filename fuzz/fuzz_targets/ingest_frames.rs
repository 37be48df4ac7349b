//! A booth's audio frames: the first bytes choose the format and rate as a hello would, the
//! rest are frames (split on a length byte). Undecodable frames are errors, never panics,
//! and decoded audio is finite samples in [-1, 1]-ish range.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tolk::server::source::FrameDecoder;
use tolk::server::wire::AudioFormat;

const RATES: [u32; 8] = [
    8_000, 12_000, 16_000, 24_000, 48_000, 44_100, 22_050, 96_000,
];

fuzz_target!(|data: &[u8]| {
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
            assert!(samples.iter().all(|s| s.is_finite()));
        }
        rest = next;
    }
});
