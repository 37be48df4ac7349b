//! `tolk transcribe`: an audio file transcribed whole, with timestamps.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use tolk::model::{self, Cache};
use tolk::transcribe::format::{self, Format};
use tolk::transcribe::{self as tr, Language, Model};

use super::write_output;

#[derive(clap::Args)]
pub struct TranscribeArgs {
    /// The audio file.
    pub file: PathBuf,
    /// A model name (`tolk models list`) or the path of a ggml file.
    #[arg(long, short, default_value = model::DEFAULT_MODEL)]
    pub model: String,
    /// `auto` to detect, or an ISO 639-1 code (en, es, ru, zh, th, bn, hi, uk, …).
    #[arg(long, short, default_value = "auto")]
    pub language: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write to this file instead of standard output (written whole or not at all).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Beam width; 1 for greedy decoding.
    #[arg(long, default_value_t = tr::DEFAULT_BEAM_SIZE)]
    pub beam_size: usize,
    /// CPU threads for Whisper (default: all cores this process may use).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Translate into English instead of transcribing.
    #[arg(long)]
    pub translate: bool,
}

pub fn run(args: TranscribeArgs, cache: &Cache) -> Result<()> {
    let language: Language = args.language.parse()?;
    // Everything that can fail on bad input happens before any output file is created.
    let audio = tolk::audio::decode_file(&args.file)?;
    let model_path = cache.resolve(&args.model)?;
    let t0 = Instant::now();
    let model = Model::load(&model_path)?;
    let load_s = t0.elapsed().as_secs_f64();
    let opts = tr::Options {
        language,
        beam_size: args.beam_size.max(1),
        threads: args.threads.unwrap_or_else(tr::default_threads).max(1),
        translate: args.translate,
        prompt: None,
    };
    let t1 = Instant::now();
    let transcript = model.transcribe(&audio.samples, &opts)?;
    let run_s = t1.elapsed().as_secs_f64();
    tracing::info!(load_s, run_s, rtf = run_s / audio.duration(), "transcribed");
    let meta = serde_json::json!({
        "file": args.file.display().to_string(),
        "model": model.name(),
        "duration": audio.duration(),
        "beam_size": opts.beam_size,
    });
    let text = format::render(&transcript, args.format, &meta);
    write_output(args.output.as_deref(), &text)
}
