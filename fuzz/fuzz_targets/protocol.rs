//! The caption protocol's client messages (`docs/protocol.md`) and a booth's hello: any text
//! is parsed to a message or refused with an error, never a panic; a hello's format and rate
//! are checked without panic.
//! The body is `tolk::fuzz::protocol`, shared with the short run in `make test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tolk::fuzz::protocol(data));
