//! Audio in: decoding files to 16 kHz mono f32, the only format Whisper takes.
//!
//! [`decode_file`] reads WAV (8/16/24/32-bit integer and 32/64-bit float, any rate, any number
//! of channels), FLAC, Ogg Vorbis, Ogg Opus and MP3, mixes down to mono and resamples.

pub mod capture;
mod decode;
mod resample;

use std::path::{Path, PathBuf};

pub use decode::decode_file;
pub use resample::{resample, StreamResampler};

/// The sample rate Whisper works at.
pub const SAMPLE_RATE: u32 = 16_000;

/// Decoded audio: 16 kHz mono samples in [-1, 1], with what the source was.
#[derive(Debug, Clone)]
pub struct Audio {
    pub samples: Vec<f32>,
    /// The source's own sample rate and channel count, for messages and logs.
    pub source_rate: u32,
    pub source_channels: usize,
    pub codec: String,
}

impl Audio {
    /// Length in seconds.
    pub fn duration(&self) -> f64 {
        self.samples.len() as f64 / SAMPLE_RATE as f64
    }
}

/// Why an audio file could not be decoded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: not a supported audio file ({why})")]
    Unsupported { path: PathBuf, why: String },
    #[error("{path}: corrupt audio: {why}")]
    Corrupt { path: PathBuf, why: String },
    #[error("{path}: no audio samples in the file")]
    NoSamples { path: PathBuf },
    #[error("resampling failed: {0}")]
    Resample(String),
}

impl AudioError {
    fn unsupported(path: &Path, why: impl Into<String>) -> AudioError {
        AudioError::Unsupported {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }
    fn corrupt(path: &Path, why: impl Into<String>) -> AudioError {
        AudioError::Corrupt {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }
}
