//! `tolk stream`: an audio file through the live engine, caption events as JSON Lines.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use tolk::model::{self, Cache};
use tolk::transcribe::{self as tr, Language, Model};

/// A CPU speed factor: a positive number.
pub fn speed_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "`{s}` is not a speed factor (a positive number, e.g. 0.5 or 2)"
        )),
    }
}

#[derive(clap::Args)]
pub struct StreamArgs {
    /// The audio file.
    pub file: PathBuf,
    /// Release the audio at real-time pace (as a live source would). Finals are then also
    /// revised as in a meeting: `{"type": "revised", "pieces": [...]}` lines follow them,
    /// each piece a final's start, end and text from a decode of the whole passage.
    #[arg(long, conflicts_with = "fast")]
    pub realtime: bool,
    /// As fast as the CPU allows, with a virtual clock that measures each decode: the same
    /// decisions as real time (the default; not with `--simulate-speed`, which models them).
    #[arg(long, conflicts_with = "simulate_speed")]
    pub fast: bool,
    /// With the virtual clock, model each decode's duration (as on the 2-core reference
    /// machine, times this speed factor) instead of measuring it: reproducible captions.
    #[arg(long, conflicts_with = "realtime", value_parser = speed_factor)]
    pub simulate_speed: Option<f64>,
    /// A model name or the path of a ggml file.
    #[arg(long, short, default_value = model::DEFAULT_MODEL)]
    pub model: String,
    /// `auto` to detect (then lock), or an ISO 639-1 code.
    #[arg(long, short, default_value = "auto")]
    pub language: String,
    /// With `--language auto`: the languages to choose among, comma-separated (e.g. en,es,ru).
    #[arg(long, value_delimiter = ',')]
    pub allowed: Vec<String>,
    /// CPU threads for Whisper.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seconds of new audio between two decodes of an open utterance.
    #[arg(long, default_value_t = 1.0)]
    pub step: f64,
    /// Annotate captions with this glossary (corrections, term hints, flags).
    #[arg(long)]
    pub glossary: Option<PathBuf>,
    /// With --glossary: booth languages for term equivalents, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub target: Vec<String>,
    /// With --glossary: also start every Whisper prompt with the glossary's terms.
    #[arg(long, requires = "glossary")]
    pub bias: bool,
    /// The session's terms and names, comma-separated: every prompt starts with them
    /// (through --glossary, as the glossary writes each in the stream's language), instead
    /// of the glossary's general list.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["bias", "translate"])]
    pub topic: Vec<String>,
    /// Translate into English (Whisper's translate task) instead of transcribing.
    #[arg(long)]
    pub translate: bool,
}

pub fn run(args: StreamArgs, cache: &Cache) -> Result<()> {
    use tolk::stream::{decoder, engine, lang::LanguageMode, policy::PolicyConfig};
    let mode = match args.language.parse::<Language>()? {
        Language::Code(c) => LanguageMode::Fixed(c),
        Language::Auto => {
            for a in &args.allowed {
                a.parse::<Language>()?;
            }
            LanguageMode::Detect(args.allowed.clone())
        }
    };
    let audio = tolk::audio::decode_file(&args.file)?;
    let model = std::sync::Arc::new(Model::load(&cache.resolve(&args.model)?)?);
    let glossary = match &args.glossary {
        Some(path) => Some(tolk::glossary::Glossary::load_cached(
            path,
            &cache.glossaries(),
        )?),
        None => None,
    };
    // The language captions are annotated in when the event does not say.
    let lang = match &mode {
        LanguageMode::Fixed(c) => c.clone(),
        LanguageMode::Detect(allowed) => allowed.first().cloned().unwrap_or_else(|| "en".into()),
    };
    let topic = tolk::server::topic::check(&args.topic).context("--topic")?;
    let hints = match (&glossary, args.bias) {
        (Some(g), _) if !topic.is_empty() => g.topic(&topic, &lang),
        (None, _) => topic,
        (Some(g), true) => g.bias(&lang, decoder::PROMPT_TOKENS / 2, |t| model.token_count(t)),
        (Some(_), false) => Vec::new(),
    };
    let mut cfg = PolicyConfig {
        step: args.step.clamp(0.2, 10.0),
        hints,
        ..PolicyConfig::default()
    };
    if args.translate {
        cfg = cfg.translating();
    }
    // The same annotation as a meeting's channel (language, equivalents, recent terms).
    let mut annotator =
        tolk::glossary::ChannelAnnotator::new(&lang, args.translate, &args.target, true);
    let pacing = match (args.realtime, args.fast, args.simulate_speed) {
        (true, _, _) => engine::Pacing::RealTime,
        (false, false, Some(speed)) => engine::Pacing::Modeled(engine::DecodeCost { speed }),
        (false, _, _) => engine::Pacing::Virtual,
    };
    let threads = args.threads.unwrap_or_else(tr::default_threads).max(1);
    let mut out = std::io::stdout().lock();
    let mut write_err = None;
    let stats = engine::run(
        &model,
        &audio.samples,
        mode,
        args.translate,
        cfg,
        threads,
        pacing,
        |e| {
            let mut v = serde_json::to_value(&e.event).unwrap_or_default();
            if let Some(g) = &glossary {
                let text = v["text"].as_str().unwrap_or_default().to_string();
                if !text.is_empty() {
                    let l = annotator.language(v["language"].as_str().unwrap_or_default());
                    let start = v["start"].as_f64().unwrap_or_default();
                    let end = v["end"].as_f64().unwrap_or(start);
                    let a = annotator.annotate(g, &text, &l, start, end, v["type"] == "final");
                    v["text"] = serde_json::json!(a.text);
                    v["glossary"] = serde_json::json!({
                        "corrections": a.corrections,
                        "hits": a.hits,
                        "flags": a.flags,
                    });
                }
            }
            // A revision (real time only): each piece annotated as its final was.
            let heard = annotator.language(v["language"].as_str().unwrap_or_default());
            if let (Some(g), Some(pieces)) = (&glossary, v["pieces"].as_array_mut()) {
                let l = heard;
                for p in pieces {
                    let text = p["text"].as_str().unwrap_or_default().to_string();
                    let (start, end) = (
                        p["start"].as_f64().unwrap_or_default(),
                        p["end"].as_f64().unwrap_or_default(),
                    );
                    let a = annotator.annotate(g, &text, &l, start, end, false);
                    p["text"] = serde_json::json!(a.text);
                    p["glossary"] = serde_json::json!({
                        "corrections": a.corrections,
                        "hits": a.hits,
                        "flags": a.flags,
                    });
                }
            }
            v["emitted"] = serde_json::json!((e.at * 1000.0).round() / 1000.0);
            if write_err.is_none() {
                if let Err(err) = writeln!(out, "{v}").and_then(|_| out.flush()) {
                    write_err = Some(err);
                }
            }
        },
    )?;
    if let Some(err) = write_err {
        return Err(err).context("cannot write to standard output");
    }
    tracing::info!(
        audio_s = stats.audio_secs,
        decodes = stats.decodes,
        decode_s = stats.decode_secs,
        max_lag_s = stats.max_lag,
        dropped = ?stats.dropped,
        "stream finished"
    );
    Ok(())
}
