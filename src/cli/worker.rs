//! `tolk worker`: decode a room server's channels over NATS (see `tolk::cluster`).

use std::path::PathBuf;

use anyhow::{Context, Result};

use tolk::model::{self, Cache};

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The NATS server the room server uses: `nats://HOST:4222`, or `tls://HOST:4222`.
    #[arg(long)]
    pub nats: String,
    /// A NATS credentials file (`.creds`).
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// The certificate authority (PEM) that signed nats-server's certificate, if the system
    /// does not trust it; TLS is then required.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// The model (a catalog name or a ggml file); the room's meeting names none to workers.
    #[arg(long, short, default_value = model::DEFAULT_MODEL)]
    pub model: String,
    /// Whisper threads (default: the cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Channels to hold at most (default: as many as the start-up calibration says this
    /// machine captions fully, at least one; given, the worker does not calibrate).
    #[arg(long)]
    pub max_channels: Option<usize>,
    /// This worker's name, as the organizer sees it (default: host and process id).
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: WorkerArgs, cache: &Cache) -> Result<()> {
    let model = cache.resolve(&args.model)?;
    let options = tolk::cluster::worker::WorkerOptions {
        nats: tolk::cluster::Endpoint {
            url: args.nats,
            credentials: args.credentials,
            ca: args.ca,
        },
        model,
        threads: args
            .threads
            .unwrap_or_else(tolk::transcribe::default_threads),
        max_channels: args.max_channels,
        name: args
            .name
            .unwrap_or_else(tolk::cluster::worker::default_name),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        tolk::cluster::worker::run(options, shutdown).await
    })?;
    Ok(())
}
