//! Live streaming transcription: audio in, `partial` and `final` caption events out.
//!
//! - [`vad`]: voice activity detection (pure).
//! - [`policy`]: the commit policy, a sans-IO state machine (pure).
//! - [`lang`]: language detection locking (pure).
//! - [`engine`]: the edge: whisper.cpp on its own thread, virtual or real-time pacing.
//! - [`scheduler`]: several channels on one model: one decoder thread, the floor first.
//! - [`revise`]: the record revised: committed speech decoded again in long chunks, when a
//!   core is idle.

pub mod decoder;
pub mod engine;
pub mod explain;
pub mod lang;
pub mod policy;
pub mod revise;
pub mod scheduler;
pub mod vad;

/// Whisper's sample rate as f64, for time arithmetic.
pub const SAMPLE_RATE_F: f64 = crate::audio::SAMPLE_RATE as f64;
