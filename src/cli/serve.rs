//! `tolk serve`: run a meeting, and tell people where to find it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use tolk::model::{self, Cache};
use tolk::server::config::MIN_TOKEN_CHARS;

use super::glossary::DEFAULT_GLOSSARY;
use super::stream::speed_factor;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The meeting file. Without one: the default sound card as the floor if there is one,
    /// otherwise a demo meeting replaying recordings.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: String,
    /// The model (overrides the meeting file's).
    #[arg(long, short)]
    pub model: Option<String>,
    /// The organizer's token (default: TOLK_ORGANIZER_TOKEN, else a new random one, printed).
    #[arg(long, env = "TOLK_ORGANIZER_TOKEN", hide_env_values = true)]
    pub organizer_token: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Events the listeners' broadcast queue holds; for tests of slow listeners.
    #[arg(long, hide = true, default_value_t = tolk::server::hub::BROADCAST_CAPACITY)]
    pub broadcast_capacity: usize,
    /// Simulate a machine this much slower (0.5: each decode takes twice as long); for tests
    /// of a meeting too big for its machine.
    #[arg(long, hide = true, default_value_t = 1.0, value_parser = speed_factor)]
    pub simulate_speed: f64,
}

pub fn run(args: ServeArgs, cache: &Cache) -> Result<()> {
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
        let tls = args.tls.config(addr, cache)?;
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

/// HTTPS for the listeners (the room server's, an edge's).
#[derive(clap::Args)]
pub struct TlsArgs {
    /// HTTPS with a certificate tolk makes for this machine's addresses (`self-signed`; kept
    /// in the cache and used again while the addresses stay the same). Its SHA-256
    /// fingerprint is printed: people compare it with what their browser shows.
    #[arg(long, value_parser = ["self-signed"], conflicts_with = "tls_cert")]
    pub tls: Option<String>,
    /// HTTPS with this certificate chain (PEM); with --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The TLS configuration asked for, for a server listening on `addr`; `None`: plain HTTP.
    pub fn config(
        &self,
        addr: std::net::SocketAddr,
        cache: &Cache,
    ) -> Result<Option<tolk::server::tls::Tls>> {
        Ok(match (&self.tls, &self.tls_cert, &self.tls_key) {
            (Some(_), _, _) => {
                // The names phones may use: this machine's LAN address, the one listened
                // on, and loopback.
                let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
                if addr.ip().is_unspecified() {
                    names.extend(lan_address());
                } else {
                    names.push(addr.ip().to_string());
                }
                Some(tolk::server::tls::self_signed(&names, &cache.tls())?)
            }
            (None, Some(cert), Some(key)) => Some(tolk::server::tls::from_files(cert, key)?),
            _ => None,
        })
    }
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
