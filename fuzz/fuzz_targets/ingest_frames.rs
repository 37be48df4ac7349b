//! A booth's audio frames: the first bytes choose the format and rate as a hello would, the
//! rest are frames (split on a length byte). Undecodable frames are errors, never panics,
//! and decoded audio is finite samples in [-1, 1]-ish range.
//! The body is `tolk::fuzz::ingest_frames`, shared with the short run in `make test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tolk::fuzz::ingest_frames(data));
