//! `tolk edge`: serve a meeting's attendees from the captions its room server publishes over
//! NATS (see `tolk::cluster::edge`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use tolk::server;

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
    /// HTTPS with this certificate chain (PEM); with --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

pub fn run(args: EdgeArgs) -> Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(server::tls::from_files(cert, key)?),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
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
        let _ = out.flush();
        drop(out);
        serving.await.context("the edge stopped")??;
        Ok::<(), anyhow::Error>(())
    })
}
