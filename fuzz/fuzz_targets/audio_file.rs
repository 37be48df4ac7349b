//! Audio files (`tolk transcribe`, file sources): any bytes, as a file, decode to audio or
//! to an error that says why — never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut f) = tempfile::Builder::new().suffix(".wav").tempfile() else {
        return;
    };
    use std::io::Write;
    if f.write_all(data).is_err() {
        return;
    }
    if let Ok(audio) = tolk::audio::decode_file(f.path()) {
        assert!(audio.samples.iter().all(|s| s.is_finite()));
    }
});
