//! Offline transcription with whisper.cpp (through whisper-rs).
//!
//! [`Model`] is a loaded model, shareable between threads; [`Model::transcribe`] runs one whole
//! recording through `whisper_full` on the calling thread, which must not be an async runtime
//! thread (it keeps the CPU busy for seconds).

pub mod format;
pub mod utf8;

use std::path::{Path, PathBuf};
use std::sync::Once;

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use crate::model::ggml;

/// Beam width used for offline transcription, as whisper.cpp's own command line does.
pub const DEFAULT_BEAM_SIZE: usize = 5;

/// Why transcription failed.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error("{path}: not a usable Whisper model: {source}")]
    BadModel {
        path: PathBuf,
        #[source]
        source: ggml::GgmlError,
    },
    #[error("{path}: whisper.cpp could not load the model: {why}")]
    Load { path: PathBuf, why: String },
    #[error("unknown language `{0}` (use `auto` or an ISO 639-1 code Whisper knows, such as en, es, ru)")]
    Language(String),
    #[error("model {model} is English-only; it cannot transcribe language `{language}` (use a multilingual model such as `base`)")]
    EnglishOnly { model: String, language: String },
    #[error("whisper failed: {0}")]
    Whisper(String),
}

/// A loaded model.
pub struct Model {
    ctx: WhisperContext,
    pub path: PathBuf,
    pub info: ggml::Info,
}

/// Language to transcribe in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Language {
    /// Let Whisper detect it from the first 30 seconds.
    Auto,
    /// An ISO 639-1 code Whisper knows.
    Code(String),
}

impl std::str::FromStr for Language {
    type Err = TranscribeError;
    fn from_str(s: &str) -> Result<Language, TranscribeError> {
        let s = s.trim().to_ascii_lowercase();
        if s == "auto" {
            return Ok(Language::Auto);
        }
        // Look the code up in whisper.cpp's table without asking `whisper_lang_id`, which logs
        // an error for every unknown code.
        let known = (0..=whisper_rs::get_lang_max_id())
            .any(|id| whisper_rs::get_lang_str(id) == Some(s.as_str()));
        if known {
            Ok(Language::Code(s))
        } else {
            Err(TranscribeError::Language(s))
        }
    }
}

/// Decoding options.
#[derive(Debug, Clone)]
pub struct Options {
    pub language: Language,
    /// 1 means greedy decoding.
    pub beam_size: usize,
    /// CPU threads for whisper.cpp. Never more than free cores: its threads spin-wait.
    pub threads: usize,
    /// Translate to English instead of transcribing.
    pub translate: bool,
    /// Text that conditions the decoder (terms, names).
    pub prompt: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            language: Language::Auto,
            beam_size: DEFAULT_BEAM_SIZE,
            threads: default_threads(),
            translate: false,
            prompt: None,
        }
    }
}

/// The number of cores this process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// One timed piece of the transcript.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Segment {
    /// Seconds from the start of the audio.
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Whisper's probability that the segment holds no speech.
    pub no_speech_prob: f32,
}

/// A whole transcription.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Transcript {
    /// The language used (detected or given).
    pub language: String,
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// All segment texts joined with single spaces.
    pub fn text(&self) -> String {
        let parts: Vec<&str> = self
            .segments
            .iter()
            .map(|s| s.text.trim())
            .filter(|t| !t.is_empty())
            .collect();
        parts.join(" ")
    }
}

static LOG_HOOKS: Once = Once::new();

/// Routes whisper.cpp's own logging (it writes to stderr otherwise) into `tracing`.
pub fn install_log_hooks() {
    LOG_HOOKS.call_once(whisper_rs::install_logging_hooks);
}

/// Whether whisper.cpp computes attention fused ("flash attention", its own default;
/// whisper-rs turns it off). Off: on this CPU it was no faster and its greedy decodes wrote
/// a fifth fewer words, benches/README.md "Flash attention, tried"
/// (`cargo bench --bench workers -- --flash-attn on` times it).
pub const FLASH_ATTENTION: bool = false;

impl Model {
    /// Checks the file ([`ggml::inspect`]), then loads it.
    pub fn load(path: &Path) -> Result<Model, TranscribeError> {
        Model::load_with(path, FLASH_ATTENTION)
    }

    /// [`Model::load`], saying whether to use flash attention (benchmarks compare).
    pub fn load_with(path: &Path, flash_attention: bool) -> Result<Model, TranscribeError> {
        install_log_hooks();
        let info = ggml::inspect(path).map_err(|source| TranscribeError::BadModel {
            path: path.to_path_buf(),
            source,
        })?;
        tracing::debug!(
            system = whisper_rs::print_system_info(),
            "whisper.cpp build"
        );
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false);
        params.flash_attn(flash_attention);
        let ctx =
            WhisperContext::new_with_params(path, params).map_err(|e| TranscribeError::Load {
                path: path.to_path_buf(),
                why: e.to_string(),
            })?;
        Ok(Model {
            ctx,
            path: path.to_path_buf(),
            info,
        })
    }

    /// A fresh decoding state (one per channel; the weights are shared).
    pub fn create_state(&self) -> Result<whisper_rs::WhisperState, TranscribeError> {
        self.ctx
            .create_state()
            .map_err(|e| TranscribeError::Whisper(e.to_string()))
    }

    /// How many tokens the model's tokenizer makes of `text` (a very long text counts as
    /// more than any prompt can hold).
    pub fn token_count(&self, text: &str) -> usize {
        if text.is_empty() {
            return 0;
        }
        self.ctx
            .tokenize(text, 4096)
            .map(|t| t.len())
            .unwrap_or(usize::MAX / 2)
    }

    /// The end-of-text token id; ids at or above it are special tokens.
    pub fn token_eot(&self) -> i32 {
        self.ctx.token_eot()
    }

    /// The model's usual name (`base`, `tiny.en`, …).
    pub fn name(&self) -> String {
        self.info.canonical_name()
    }

    pub fn multilingual(&self) -> bool {
        self.info.hparams.multilingual()
    }

    /// Transcribes 16 kHz mono audio.
    pub fn transcribe(&self, audio: &[f32], opts: &Options) -> Result<Transcript, TranscribeError> {
        let language = match (&opts.language, self.multilingual()) {
            (Language::Code(c), false) if c != "en" => {
                return Err(TranscribeError::EnglishOnly {
                    model: self.name(),
                    language: c.clone(),
                })
            }
            (_, false) => Some("en".to_string()),
            (Language::Auto, true) => None,
            (Language::Code(c), true) => Some(c.clone()),
        };
        let strategy = if opts.beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: opts.beam_size as i32,
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(opts.threads.max(1) as i32);
        params.set_language(Some(language.as_deref().unwrap_or("auto")));
        params.set_translate(opts.translate);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        if let Some(p) = &opts.prompt {
            params.set_initial_prompt(p);
        }
        let mut state = self
            .ctx
            .create_state()
            .map_err(|e| TranscribeError::Whisper(e.to_string()))?;
        // whisper.cpp needs at least a little audio; pad very short clips with silence.
        let min = crate::audio::SAMPLE_RATE as usize / 10;
        let padded;
        let samples = if audio.len() < min {
            padded = [audio, &vec![0.0; min - audio.len()]].concat();
            &padded[..]
        } else {
            audio
        };
        state
            .full(params, samples)
            .map_err(|e| TranscribeError::Whisper(e.to_string()))?;
        let detected = whisper_rs::get_lang_str(state.full_lang_id_from_state())
            .unwrap_or("en")
            .to_string();
        // A character may be cut between two segments: its bytes are joined, not written
        // as U+FFFD.
        let mut carry = utf8::Utf8Carry::default();
        let segments = state
            .as_iter()
            .map(|seg| Segment {
                start: seg.start_timestamp() as f64 / 100.0,
                end: seg.end_timestamp() as f64 / 100.0,
                text: carry
                    .push(seg.to_bytes().unwrap_or_default())
                    .trim()
                    .to_string(),
                no_speech_prob: seg.no_speech_probability(),
            })
            .collect();
        Ok(Transcript {
            language: language.unwrap_or(detected),
            segments,
        })
    }
}
