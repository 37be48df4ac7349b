//! The meeting server: channels transcribed live, captions fanned out over WebSocket, every
//! final archived before anyone sees it.
//!
//! ```text
//! source thread ──► engine (decoder thread) ──► sink: glossary ──► writer thread ──► hub ──► listeners
//!  (file, …)          one model, all channels      (µs, inline)     archive, then      broadcast   (one task
//!                                                                    publish                      per socket)
//! ```
//!
//! [`run`] takes the meeting, a bound listener and a shutdown future, so tests start real
//! servers on `127.0.0.1:0`. Whisper and SQLite run on their own threads; the async runtime
//! only moves bytes. Every queue is bounded: the engine's audio inbox (scheduler), the
//! writer's queue ([`pipeline::PIPELINE_QUEUE`]), the broadcast ([`hub::BROADCAST_CAPACITY`]).
//!
//! The rooms: [`start`] (everything that blocks at start, in steps), [`sink`] (each caption
//! event on the decoder thread), [`listener`] (`/ws`), [`organizer`] (the organizer's
//! endpoints and exports), [`ingest`] (booths over the network), [`ops`] (`/healthz`,
//! `/metrics`), [`auth`] (PINs, tokens, origins), [`status`] (each channel's state),
//! [`net`] (accepted connections), [`topic`] (the session's topic, set as the meeting runs).

pub mod archive;
mod auth;
pub mod config;
pub mod export;
pub mod hub;
mod ingest;
pub mod limits;
pub(crate) mod listener;
mod net;
mod ops;
mod organizer;
pub mod pages;
pub mod pipeline;
pub mod redact;
pub mod sink;
pub mod source;
mod start;
mod status;
pub mod tls;
pub mod topic;
pub mod wire;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::Router;

use crate::stream::scheduler::Engine;

use config::MeetingConfig;
use hub::Hub;
use net::{Peer, PlainListener};
use source::Source;
use wire::ServerMessage;

pub(crate) use net::bound_send_buffer;

/// Why the server could not start. Every variant says what and why.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Model(#[from] crate::transcribe::TranscribeError),
    #[error(transparent)]
    Glossary(#[from] crate::glossary::GlossaryError),
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    #[error("channel `{channel}`: {source}")]
    Source {
        channel: String,
        source: source::SourceError,
    },
    #[error("streaming engine: {0}")]
    Engine(String),
    #[error("channel `{channel}`: {message}")]
    Channel { channel: String, message: String },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("meeting: {0}")]
    Meeting(String),
}

/// What [`run`] needs besides the meeting file.
pub struct ServeOptions {
    /// The ggml model file (resolved from the catalog by the caller).
    pub model: PathBuf,
    /// Protects the organizer's endpoints (exports); attendees need none.
    pub organizer_token: String,
    /// Where parsed glossaries are cached (see [`Glossary::load_cached`]); `None`: no cache.
    pub glossary_cache: Option<PathBuf>,
    /// Serve HTTPS and WSS with this configuration (see [`tls`]); `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Events the listeners' broadcast queue holds ([`hub::BROADCAST_CAPACITY`]; tests make it
    /// small to reach a slow listener's resync within seconds).
    pub broadcast_capacity: usize,
    /// 1.0; below 1, a slower machine simulated (each decode takes `1 / speed` times as long,
    /// see [`crate::stream::decoder::Decoder::slowed`]): tests of a meeting too big for its
    /// machine.
    pub simulate_speed: f64,
}

/// Shared by every connection.
struct App {
    hub: Arc<Hub>,
    /// The listeners (`/ws`) and what they need: shared with [`listener::routes`].
    audience: Arc<listener::Audience>,
    /// The `meeting` message as the meeting started; see [`App::meeting`].
    meeting: ServerMessage,
    /// To switch off the record and back through the writer's queue.
    writer: pipeline::PipelineTx,
    engine: Engine,
    /// With a `[cluster]`: the link to the workers that decode the channels.
    room: Option<crate::cluster::room::Room>,
    sources: std::sync::Mutex<Vec<Source>>,
    pipeline: Arc<pipeline::PipelineStats>,
    /// Wall ms of each channel's last caption event.
    last_event: Arc<Vec<AtomicU64>>,
    archive_path: Option<PathBuf>,
    /// The archive's words are sealed with the organizer's key.
    archive_sealed: bool,
    meeting_id: String,
    organizer_token: String,
    /// The glossary in use, in words ("title (N concepts)"), for the organizer.
    glossary_info: Option<String>,
    /// What this machine can caption, in words (`stream::engine::Capacity::describe`).
    capacity: String,
    /// The session's topic, which the organizer may change as the meeting runs.
    topic: topic::Topic,
    /// Attendees may download their channel's transcript (the meeting's `downloads`).
    downloads: bool,
    /// Per channel: the organizer stopped it (see [`source::Stopped`]).
    stopped: Vec<source::Stopped>,
    /// Wrong organizer and ingest tokens, per address.
    key_failures: limits::RateLimit,
}

impl App {
    /// The `meeting` message: off the record if the meeting started so, else as the
    /// organizer last switched it (`off`: as it is about to be).
    fn meeting(&self, off: Option<bool>) -> ServerMessage {
        meeting_now(&self.meeting, self.off_record(off), self.downloads)
    }

    /// Whether nothing is archived: the meeting started off the record, or the organizer
    /// switched it off (`off`: as it is about to be).
    fn off_record(&self, off: Option<bool>) -> bool {
        let switched = off.unwrap_or_else(|| self.pipeline.off_record.load(Relaxed));
        self.archive_path.is_none() || switched
    }
}

/// The `meeting` message `base` as it is now: off the record or not, downloads allowed or not.
fn meeting_now(base: &ServerMessage, off: bool, allowed: bool) -> ServerMessage {
    let mut m = base.clone();
    if let ServerMessage::Meeting {
        off_record,
        downloads,
        ..
    } = &mut m
    {
        *off_record = off;
        *downloads = allowed && !off;
    }
    m
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown` resolves: every
/// response private ([`pages::private`]), each client's address known ([`Peer`]).
pub(crate) async fn serve(
    router: Router,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router
        .layer(axum::middleware::map_response(pages::private))
        .into_make_service_with_connect_info::<Peer>();
    match tls {
        Some(tls) => {
            axum::serve(tls::TlsListener::new(listener, tls)?, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(PlainListener(listener), router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// Runs the meeting until `shutdown` resolves: loads the model and glossary, opens the
/// archive, starts every channel's source, and serves HTTP and WebSocket on `listener`.
pub async fn run(
    config: MeetingConfig,
    options: ServeOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let mut options = options;
    let tls = options.tls.take();
    let app = tokio::task::spawn_blocking(move || start::start(config, options))
        .await
        .map_err(|e| ServerError::Engine(format!("start-up failed: {e}")))??;
    let app = Arc::new(app);
    let status = tokio::spawn(status::status_loop(app.clone()));
    let router = Router::new()
        .merge(listener::routes().with_state(app.audience.clone()))
        .route("/interpreter", get(pages::interpreter))
        .route("/interpreter.js", get(pages::interpreter_js))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/api/export/{channel}", get(organizer::export_channel))
        .route("/transcript/{channel}", get(organizer::attendee_transcript))
        .route(
            "/api/off-record",
            axum::routing::post(organizer::switch_record),
        )
        .route(
            "/api/channel/{channel}",
            axum::routing::post(organizer::switch_channel),
        )
        .route("/api/organizer", get(organizer::organizer_status))
        .route("/api/topic", axum::routing::post(topic::set_topic))
        .route("/api/qr.svg", get(organizer::qr_svg))
        .route("/organizer", get(pages::organizer))
        .route("/organizer.js", get(pages::organizer_js))
        .route("/booth", get(pages::booth))
        .route("/booth.js", get(pages::booth_js))
        .route("/ingest/{channel}", get(ingest::ingest_upgrade))
        .with_state(app.clone());
    serve(router, listener, tls, shutdown).await?;
    status.abort();
    let _ = status.await;
    // Stop the sources, then the room's link to the workers (whether or not connections
    // still hold the app), then the engine (its last events reach the writer), then the
    // writer.
    if let Ok(mut s) = app.sources.lock() {
        s.iter_mut().for_each(Source::stop);
    }
    if let Some(room) = &app.room {
        room.close().await;
    }
    let Ok(app) = Arc::try_unwrap(app) else {
        // Connections still hold the app: the rest ends with them.
        return Ok(());
    };
    tokio::task::spawn_blocking(move || app.engine.shutdown())
        .await
        .ok();
    Ok(())
}
