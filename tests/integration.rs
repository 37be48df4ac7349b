//! tolk's integration tests: one test binary (see Cargo.toml), real Whisper on real recordings.
//!
//! The recordings and models come from `make test`'s set-up (scripts/fetch-testdata.sh and
//! `tolk models fetch`); a test that finds them missing fails and says how to get them.
//! Whisper-heavy tests take the lock in [`util::whisper_lock`], so two never run at once:
//! whisper.cpp spin-waits on every core it is given.

mod util;

mod cli {
    mod bad_input;
    mod models;
    mod stream;
    mod transcribe;
}
mod decode;
mod engine;
mod fuzz;
mod server;
