//! `tolk send` (a remote booth's audio to a meeting) and `tolk devices` (the sound inputs).

use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct SendArgs {
    /// The server, e.g. ws://192.168.1.20:8080.
    #[arg(long)]
    pub server: String,
    /// The channel id this booth feeds.
    #[arg(long)]
    pub channel: String,
    /// The channel's ingest token (default: TOLK_INGEST_TOKEN).
    #[arg(long, env = "TOLK_INGEST_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The sound input device (`tolk devices`; default: the default one).
    #[arg(long, conflicts_with = "file")]
    pub device: Option<String>,
    /// Send a recording instead, at real-time pace.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// With --file: play it in a loop.
    #[arg(long = "loop", requires = "file")]
    pub looped: bool,
}

pub fn run(args: SendArgs) -> Result<()> {
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

/// Lists the sound input devices, the default marked.
pub fn devices() -> Result<()> {
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
