//! Glossary import: any text as the TOML glossary, a CSV or a TBX file parses or is refused
//! with a message; what parses builds its matchers and annotates a caption without panic.
//! The body is `tolk::fuzz::glossary`, shared with the short run in `make test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tolk::fuzz::glossary(data));
