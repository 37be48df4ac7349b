//! Audio files (`tolk transcribe`, file sources): any bytes, as a file, decode to audio or
//! to an error that says why — never a panic.
//! The body is `tolk::fuzz::audio_file`, shared with the short run in `make test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tolk::fuzz::audio_file(data));
