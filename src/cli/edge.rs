//! `tolk edge`: serve a meeting's attendees from the captions its room server publishes over
//! NATS (see `tolk::cluster::edge`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use tolk::model::Cache;

#[derive(clap::Args)]
pub struct EdgeArgs {
    /// The NATS server in the room server's [cluster]: `nats://HOST:4222`, or `tls://HOST:4222`.
    #[arg(long)]
    pub nats: String,
    /// The meeting's id (`id` in the room's meeting file).
    #[arg(long)]
    pub meeting: String,
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: String,
    /// A NATS credentials file (`.creds`).
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// The certificate authority (PEM) that signed nats-server's certificate, if the system
    /// does not trust it; TLS is then required.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    #[command(flatten)]
    pub tls: super::serve::TlsArgs,
}

pub fn run(args: EdgeArgs, cache: &Cache) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let tls = args.tls.config(addr, cache)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let fingerprint = tls.as_ref().map(|t| t.fingerprint.clone());
        let options = tolk::cluster::edge::EdgeOptions {
            nats: tolk::cluster::Endpoint {
                url: args.nats,
                credentials: args.credentials,
                ca: args.ca,
            },
            meeting: args.meeting,
            tls: tls.map(|t| t.config),
        };
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let serving = tokio::spawn(tolk::cluster::edge::run(options, listener, shutdown));
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "tolk edge: listening on {scheme}://{addr}");
        if let Some(f) = fingerprint {
            let _ = writeln!(out, "TLS certificate SHA-256: {f}");
        }
        let _ = out.flush();
        drop(out);
        serving.await.context("the edge stopped")??;
        Ok::<(), anyhow::Error>(())
    })
}
