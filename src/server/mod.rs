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

pub mod archive;
pub mod config;
pub mod export;
pub mod hub;
pub mod limits;
pub mod pages;
pub mod pipeline;
pub mod redact;
pub mod source;
pub mod tls;
pub mod wire;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::broadcast::error::RecvError;

use crate::glossary::{AnnotateOptions, Glossary, GlossaryError};
use crate::stream::engine::{Emitted, PROMPT_TOKENS};
use crate::stream::lang::LanguageMode;
use crate::stream::policy::{Event, PolicyConfig};
use crate::stream::scheduler::{ChannelSpec, Decoding, Engine, Fault};
use crate::transcribe::Model;

use config::{MeetingConfig, SourceConfig};
use hub::{ChannelStatus, Hub};
use source::{Feed, Source};
use wire::{
    Annotations, ChannelInfo, ChannelMode, ChannelState, ClientMessage, ErrorCode, Final, Partial,
    ServerMessage,
};

/// A channel whose transcription is further behind than this (seconds) is `lagging`.
pub const LAGGING_AFTER: f64 = 3.0;

/// A channel with no caption event for this long (seconds) is `silent`.
const SILENT_AFTER_MS: u64 = 5_000;
/// A channel that gave up speech untranscribed (or dropped audio) says "captions incomplete"
/// for this long afterwards.
const INCOMPLETE_FOR: std::time::Duration = std::time::Duration::from_secs(30);
/// A channel decoded less often than every second because the machine is busy is `reduced`
/// for this long afterwards (its step goes up and down with the load; the mode said to
/// listeners should not flicker).
const REDUCED_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// How often statuses are sent (when they change) and heartbeats.
const STATUS_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// A listener whose socket takes longer than this to take one message is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener socket's read and write buffers, bytes.
const LISTENER_BUFFER: usize = 4 * 1024;

/// The kernel's send buffer of every accepted connection, bytes. Left alone, Linux grows it
/// up to 4 MiB for a client that stops reading: a phone in a pocket would hold half an hour
/// of stale captions in the kernel before [`SEND_TIMEOUT`] or a resync could notice, and a
/// few hundred of them gigabytes. Captions are a few kilobytes a second and pages a few
/// hundred kilobytes: 64 KiB sends both at full speed over a local network.
pub const SOCKET_SEND_BUFFER: usize = 64 * 1024;

/// Bounds an accepted connection's kernel send buffer ([`SOCKET_SEND_BUFFER`]).
pub(crate) fn bound_send_buffer(tcp: &tokio::net::TcpStream) {
    if let Err(e) = socket2::SockRef::from(tcp).set_send_buffer_size(SOCKET_SEND_BUFFER) {
        tracing::debug!("cannot bound a socket's send buffer: {e}");
    }
}

/// New caption connections a minute from one address (not loopback: a local process
/// already has the machine); over it, `429`. A phone reconnecting with backoff opens a few.
const JOINS_PER_MINUTE: u32 = 60;

/// Wrong meeting PINs a minute from one address; then every try is `429` until the minute
/// ends (a 4-digit PIN would take over 30 hours to guess from one address).
const PIN_TRIES_PER_MINUTE: u32 = 5;
/// Wrong organizer or ingest tokens an address may give in a minute (a token is 16
/// characters or more: at this rate, guessing one takes longer than any meeting).
const KEY_TRIES_PER_MINUTE: u32 = 10;

/// The largest client message accepted (subscriptions are small): a larger one is answered
/// with an `unsupported` error and the connection stays.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// The largest frame read at all: beyond it the connection is closed (the WebSocket layer
/// refuses to buffer it).
const MAX_CLIENT_FRAME: usize = 1024 * 1024;

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
    /// see [`crate::stream::engine::Decoder::slowed`]): tests of a meeting too big for its
    /// machine.
    pub simulate_speed: f64,
}

/// Shared by every connection.
struct App {
    hub: Arc<Hub>,
    /// The `meeting` message as the meeting started; see [`App::meeting`].
    meeting: ServerMessage,
    /// To switch off the record and back through the writer's queue.
    writer: pipeline::PipelineTx,
    engine: Engine,
    sources: std::sync::Mutex<Vec<Source>>,
    pipeline: Arc<pipeline::PipelineStats>,
    /// Listeners subscribed, per channel.
    listening: Vec<AtomicUsize>,
    /// Wall ms of each channel's last caption event.
    last_event: Arc<Vec<AtomicU64>>,
    archive_path: Option<PathBuf>,
    /// The archive's words are sealed with the organizer's key.
    archive_sealed: bool,
    meeting_id: String,
    organizer_token: String,
    connections: AtomicUsize,
    /// Listeners that fell a whole broadcast queue behind and were sent fresh snapshots.
    resyncs: AtomicU64,
    /// Listeners disconnected because one message took over [`SEND_TIMEOUT`] to send.
    too_slow: AtomicU64,
    /// The glossary in use, in words ("title (N concepts)"), for the organizer.
    glossary_info: Option<String>,
    /// What this machine can caption, in words (`stream::engine::Capacity::describe`).
    capacity: String,
    /// Attendees may download their channel's transcript (the meeting's `downloads`).
    downloads: bool,
    /// Per channel: the organizer stopped it (see [`source::Stopped`]).
    stopped: Vec<source::Stopped>,
    /// The attendees' PIN (the meeting's `pin`), if it has one.
    pin: Option<String>,
    /// Opens the words as said, protected names included, to interpreters.
    interpreter_token: Option<String>,
    joins: limits::RateLimit,
    pin_failures: limits::RateLimit,
    /// Wrong organizer and ingest tokens, per address.
    key_failures: limits::RateLimit,
}

impl App {
    /// The `meeting` message: off the record if the meeting started so, else as the
    /// organizer last switched it (`off`: as it is about to be).
    fn meeting(&self, off: Option<bool>) -> ServerMessage {
        let mut m = self.meeting.clone();
        if let ServerMessage::Meeting {
            off_record,
            downloads,
            ..
        } = &mut m
        {
            *off_record = self.off_record(off);
            *downloads = self.downloads && !*off_record;
        }
        m
    }

    /// Whether nothing is archived: the meeting started off the record, or the organizer
    /// switched it off (`off`: as it is about to be).
    fn off_record(&self, off: Option<bool>) -> bool {
        let switched = off.unwrap_or_else(|| self.pipeline.off_record.load(Relaxed));
        self.archive_path.is_none() || switched
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
    let app = tokio::task::spawn_blocking(move || start(config, options))
        .await
        .map_err(|e| ServerError::Engine(format!("start-up failed: {e}")))??;
    let app = Arc::new(app);
    let status = tokio::spawn(status_loop(app.clone()));
    let router = Router::new()
        .route("/", get(pages::index))
        .route("/interpreter", get(pages::interpreter))
        .route("/common.js", get(pages::common_js))
        .route("/app.js", get(pages::app_js))
        .route("/interpreter.js", get(pages::interpreter_js))
        .route("/style.css", get(pages::style_css))
        .route("/ws", get(ws_upgrade))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/meeting", get(meeting_info))
        .route("/api/export/{channel}", get(export_channel))
        .route("/transcript/{channel}", get(attendee_transcript))
        .route("/api/off-record", axum::routing::post(switch_record))
        .route(
            "/api/channel/{channel}",
            axum::routing::post(switch_channel),
        )
        .route("/api/organizer", get(organizer_status))
        .route("/api/qr.svg", get(qr_svg))
        .route("/organizer", get(pages::organizer))
        .route("/organizer.js", get(pages::organizer_js))
        .route("/booth", get(pages::booth))
        .route("/booth.js", get(pages::booth_js))
        .route("/ingest/{channel}", get(ingest_upgrade))
        .layer(axum::middleware::map_response(pages::private))
        .with_state(app.clone())
        .into_make_service_with_connect_info::<Peer>();
    match tls {
        Some(tls) => {
            axum::serve(tls::TlsListener::new(listener, tls)?, router)
                .with_graceful_shutdown(shutdown)
                .await?
        }
        None => {
            axum::serve(PlainListener(listener), router)
                .with_graceful_shutdown(shutdown)
                .await?
        }
    }
    status.abort();
    // Stop the sources, then the engine (its last events reach the writer), then the writer.
    let app = match Arc::try_unwrap(app) {
        Ok(app) => app,
        Err(app) => {
            // Connections still hold the app: stop what feeds it; the rest ends with them.
            if let Ok(mut s) = app.sources.lock() {
                s.iter_mut().for_each(Source::stop);
            }
            return Ok(());
        }
    };
    if let Ok(mut s) = app.sources.into_inner() {
        s.iter_mut().for_each(Source::stop);
    }
    tokio::task::spawn_blocking(move || app.engine.shutdown())
        .await
        .ok();
    Ok(())
}

/// Where a test injects a panic (`TOLK_FAULT_PANIC`), once.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Injected {
    /// In the engine (`CHANNEL:N`: the channel's recognition at its decode N, which
    /// restarts that channel; `thread:CHANNEL:N`: the decoder thread, which restarts).
    Engine(Fault),
    /// `sink:CHANNEL:N`: the sink, at the channel's final N (that final is lost, counted).
    Sink(u64),
}

/// Fault injection for the tests: what `TOLK_FAULT_PANIC` (a comma-separated list) asks of
/// `channel`, in the sink and in the engine.
fn injected_panic(channel: &str) -> Vec<Injected> {
    let v = std::env::var("TOLK_FAULT_PANIC").unwrap_or_default();
    v.split(',')
        .filter_map(|one| {
            let mut parts = one.rsplitn(3, ':');
            let n: u64 = parts.next()?.parse().ok()?;
            (parts.next()? == channel).then_some(())?;
            let injected = match parts.next() {
                None => Injected::Engine(Fault::Recognition(n)),
                Some("thread") => Injected::Engine(Fault::Thread(n)),
                Some("sink") => Injected::Sink(n),
                Some(_) => return None,
            };
            tracing::warn!(
                channel,
                ?injected,
                "TOLK_FAULT_PANIC: a panic will be injected"
            );
            Some(injected)
        })
        .collect()
}

/// Everything that blocks at start: the model, the glossary, the archive, the threads.
fn start(config: MeetingConfig, options: ServeOptions) -> Result<App, ServerError> {
    let m = &config.meeting;
    let model = Arc::new(Model::load(&options.model)?);
    let glossary = match &m.glossary {
        Some(p) => {
            let g = match &options.glossary_cache {
                Some(dir) => Glossary::load_cached(p, dir)?,
                None => Glossary::load(p)?,
            };
            // The channels' languages now, not on their first caption.
            let langs: Vec<&str> = config
                .channels
                .iter()
                .map(|c| c.language.as_str())
                .collect();
            g.prepare(Some(&langs))
                .map_err(|message| GlossaryError::Invalid {
                    path: p.clone(),
                    message,
                })?;
            Some(Arc::new(g))
        }
        None => None,
    };
    let archive = if m.off_record {
        None
    } else {
        let mut a = archive::Archive::open(&m.archive)?;
        if m.retention_days > 0 {
            let before = now_ms().saturating_sub(u64::from(m.retention_days) * 86_400_000);
            let n = a.purge(before)?;
            if n > 0 {
                tracing::info!(
                    purged = n,
                    days = m.retention_days,
                    "retention: old finals purged"
                );
            }
        }
        Some(a)
    };
    let archive_sealed = archive.as_ref().is_some_and(|a| a.sealed());
    let channels: Vec<ChannelInfo> = config
        .channels
        .iter()
        .map(|c| ChannelInfo {
            id: c.id.clone(),
            language: c.language.clone(),
            label: if c.label.is_empty() {
                c.id.clone()
            } else {
                c.label.clone()
            },
            floor: c.floor,
            translates: match &c.source {
                SourceConfig::Translate { from } => Some(from.clone()),
                _ => None,
            },
        })
        .collect();
    // A restarted meeting goes on: numbers after the archive's last, times after its end
    // (each channel's media clock starts at 0 again with its audio).
    let mut next_seq = Vec::new();
    let mut time_base = Vec::new();
    for c in &channels {
        let (seq, end) = match &archive {
            Some(a) => (a.last_seq(&m.id, &c.id)?, a.last_end(&m.id, &c.id)?),
            None => (0, 0.0),
        };
        next_seq.push(seq + 1);
        time_base.push(end);
    }
    let hub = Arc::new(Hub::new(
        channels.clone(),
        &next_seq,
        options.broadcast_capacity,
    ));
    if let Some(a) = &archive {
        for (i, c) in channels.iter().enumerate() {
            hub.preload(i, a.finals(Some(&m.id), &c.id)?);
        }
    }
    let (tx, pipeline_stats, _writer) =
        pipeline::start(hub.clone(), archive.map(|a| (a, m.id.clone())))?;
    let writer_tx = tx.clone();
    let last_event: Arc<Vec<AtomicU64>> =
        Arc::new(channels.iter().map(|_| AtomicU64::new(0)).collect());

    // The sink runs on the decoder thread: annotate (microseconds), then queue.
    let langs: Vec<String> = channels.iter().map(|c| c.language.clone()).collect();
    let ids: Vec<String> = channels.iter().map(|c| c.id.clone()).collect();
    let (g, flags, le) = (glossary.clone(), m.flags, last_event.clone());
    let redactor = redact::Redactor::new(&m.protected_names).map_err(ServerError::Meeting)?;
    let injected: Vec<Vec<Injected>> = channels.iter().map(|c| injected_panic(&c.id)).collect();
    let sink_panics: Vec<Option<u64>> = injected
        .iter()
        .map(|i| {
            i.iter().find_map(|i| match i {
                Injected::Sink(n) => Some(*n),
                Injected::Engine(_) => None,
            })
        })
        .collect();
    let mut finals_seen = vec![0u64; channels.len()];
    // Per channel, media time (seconds) of the end of the last final with a glossary term.
    let mut last_term: Vec<Option<f64>> = vec![None; channels.len()];
    let sink = Box::new(move |id: u32, e: Emitted| {
        let ch = id as usize;
        let Some(channel) = ids.get(ch).cloned() else {
            return;
        };
        if matches!(e.event, Event::Trace(_)) {
            // Not a caption (the server's channels do not trace their policies).
            return;
        }
        if let Some(t) = le.get(ch) {
            t.store(now_ms(), Relaxed);
        }
        let base = time_base.get(ch).copied().unwrap_or(0.0);
        match e.event {
            Event::Trace(_) => {}
            Event::Partial {
                segment,
                revision,
                text,
                start,
                end,
                ..
            } => {
                let p = Partial {
                    channel,
                    segment,
                    revision,
                    text,
                    start: base + start,
                    end: base + end,
                };
                match redactor.as_ref().and_then(|r| r.partial(&p)) {
                    Some(withheld) => tx.partial(ch, withheld, Some(p)),
                    None => tx.partial(ch, p, None),
                }
            }
            Event::Final {
                start,
                end,
                raw_text,
                language,
                ..
            } => {
                finals_seen[ch] += 1;
                if sink_panics[ch] == Some(finals_seen[ch]) {
                    panic!("fault injected in the sink (TOLK_FAULT_PANIC)");
                }
                let lang = if language.is_empty() {
                    langs[ch].clone()
                } else {
                    language
                };
                let (text, glossary) = match &g {
                    Some(g) => {
                        // Hints into the other channels' languages: the interpreters'.
                        let targets: Vec<String> = langs
                            .iter()
                            .filter(|l| **l != lang && l.as_str() != "auto")
                            .cloned()
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect();
                        let in_domain = last_term[ch]
                            .is_some_and(|t| base + start - t < crate::glossary::RECENT_TERMS_SECS);
                        let opts = AnnotateOptions {
                            targets,
                            flags,
                            in_domain,
                        };
                        let a = g.annotate(&raw_text, &lang, &opts);
                        if !a.hits.is_empty() {
                            last_term[ch] = Some(base + end);
                        }
                        (
                            a.text,
                            Annotations {
                                corrections: a.corrections,
                                hits: a.hits,
                                flags: a.flags,
                            },
                        )
                    }
                    None => (raw_text.clone(), Annotations::default()),
                };
                let f = Final {
                    channel,
                    seq: 0,
                    start: base + start,
                    end: base + end,
                    wall_ms: now_ms(),
                    language: lang,
                    text,
                    raw_text,
                    glossary,
                };
                match redactor.as_ref().and_then(|r| r.final_(&f)) {
                    Some(withheld) => tx.final_(ch, withheld, Some(Box::new(f))),
                    None => tx.final_(ch, f, None),
                }
            }
        }
    });
    let threads = m
        .threads
        .unwrap_or_else(crate::transcribe::default_threads)
        .max(1);
    // What this machine can caption, timed before recognition starts (nothing else decodes
    // yet); said once the meeting has started, and to the organizer.
    let decoding = Decoding {
        threads,
        speed: options.simulate_speed,
    };
    let capacity = crate::stream::engine::calibrate(&model, decoding)?;
    let engine = Engine::start(model.clone(), decoding, sink)
        .map_err(|e| ServerError::Engine(e.to_string()))?;
    // Every channel's engine side first: a source feeds its own channel and those that
    // translate it.
    let mut opened = Vec::new();
    for (c, injected) in config.channels.iter().zip(&injected) {
        let fail = |message: String| ServerError::Channel {
            channel: c.id.clone(),
            message,
        };
        // A translation decodes the speech of the channel it translates, in its language.
        let (heard, translate) = match &c.source {
            SourceConfig::Translate { from } => {
                if !model.multilingual() {
                    return Err(fail(format!(
                        "translating needs a multilingual model; {} is English-only",
                        options.model.display()
                    )));
                }
                let from = config.channels.iter().find(|o| &o.id == from);
                (from.unwrap_or(c), true)
            }
            _ => (c, false),
        };
        let language = match heard.language.as_str() {
            "auto" => LanguageMode::Detect(heard.allowed.clone()),
            code => LanguageMode::Fixed(code.to_string()),
        };
        // No prompt terms for a translation: Whisper then writes the names it is primed
        // with ("SWAN, AMMAR") over speech it is translating.
        let hints = match (&glossary, m.bias) {
            (Some(g), true) if c.language != "auto" && !translate => {
                g.bias(&c.language, PROMPT_TOKENS / 2, |t| model.token_count(t))
            }
            _ => Vec::new(),
        };
        let channel = engine
            .open(ChannelSpec {
                name: c.id.clone(),
                language,
                floor: c.floor,
                policy: if translate {
                    PolicyConfig::default().translating()
                } else {
                    PolicyConfig::default()
                },
                hints,
                translate,
                fault: injected.iter().find_map(|i| match i {
                    Injected::Engine(f) => Some(*f),
                    Injected::Sink(_) => None,
                }),
            })
            .map_err(|e| fail(e.to_string()))?;
        opened.push(channel);
    }
    let stopped: Vec<source::Stopped> = opened.iter().map(|_| Default::default()).collect();
    let mut sources = Vec::new();
    for ((c, channel), stop) in config.channels.iter().zip(&opened).zip(&stopped) {
        let translations = config
            .channels
            .iter()
            .zip(&opened)
            .zip(&stopped)
            .filter(|((t, _), _)| matches!(&t.source, SourceConfig::Translate { from } if from == &c.id))
            .map(|((_, ch), s)| (ch.clone(), s.clone()))
            .collect();
        let feed = Feed::new((channel.clone(), stop.clone()), translations);
        sources.push(
            Source::start(&c.source, feed).map_err(|source| ServerError::Source {
                channel: c.id.clone(),
                source,
            })?,
        );
    }
    drop(opened);
    // A translation's audio ends when that of the channel it translates does.
    for (i, c) in config.channels.iter().enumerate() {
        if let SourceConfig::Translate { from } = &c.source {
            if let Some(j) = config.channels.iter().position(|o| &o.id == from) {
                sources[i].ended = sources[j].ended.clone();
            }
        }
    }
    let fits = capacity.fits(config.channels.len());
    let capacity = capacity.describe(config.channels.len());
    if fits {
        tracing::info!("capacity: {capacity}");
    } else {
        tracing::warn!("capacity: {capacity}");
    }
    let meeting = ServerMessage::Meeting {
        protocol: wire::PROTOCOL_VERSION,
        title: m.title.clone(),
        off_record: m.off_record,
        demo: m.demo,
        downloads: false,
        channels: channels.clone(),
    };
    Ok(App {
        listening: channels.iter().map(|_| AtomicUsize::new(0)).collect(),
        hub,
        meeting,
        engine,
        sources: std::sync::Mutex::new(sources),
        pipeline: pipeline_stats,
        writer: writer_tx,
        last_event,
        archive_path: (!m.off_record).then(|| m.archive.clone()),
        archive_sealed,
        meeting_id: m.id.clone(),
        organizer_token: options.organizer_token,
        connections: AtomicUsize::new(0),
        resyncs: AtomicU64::new(0),
        too_slow: AtomicU64::new(0),
        downloads: m.downloads,
        stopped,
        pin: m.pin.clone().filter(|p| !p.is_empty()),
        interpreter_token: m.interpreter_token.clone(),
        joins: limits::RateLimit::new(JOINS_PER_MINUTE, 60_000),
        pin_failures: limits::RateLimit::new(PIN_TRIES_PER_MINUTE, 60_000),
        key_failures: limits::RateLimit::new(KEY_TRIES_PER_MINUTE, 60_000),
        capacity,
        glossary_info: glossary.as_ref().map(|g| {
            format!(
                "{} ({} concepts, {})",
                g.file.glossary.title,
                g.file.concepts.len(),
                m.glossary
                    .as_ref()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )
        }),
    })
}

/// Whether a channel is in the reduced mode now (or was, within [`REDUCED_FOR`]).
fn reduced(s: &crate::stream::scheduler::ChannelStats) -> bool {
    s.reduced_last.is_some_and(|t| t.elapsed() < REDUCED_FOR)
}

/// Each channel's state, from the engine's numbers and the source.
fn channel_states(app: &App) -> Vec<ChannelStatus> {
    let stats = app.engine.stats();
    let health = app.engine.health();
    let sources = app.sources.lock().ok();
    let now = now_ms();
    (0..app.hub.channels.len())
        .map(|i| {
            let lag = stats.get(i).map(|s| s.lag).unwrap_or(0.0);
            let (ended, described) = sources
                .as_ref()
                .and_then(|s| s.get(i))
                .map(|s| (s.ended.load(Relaxed), s.describe()))
                .unwrap_or((true, "none".into()));
            let done = stats.get(i).map(|s| s.done).unwrap_or(false);
            let reduced = stats.get(i).is_some_and(reduced);
            let mode = if reduced {
                ChannelMode::Reduced
            } else {
                ChannelMode::Full
            };
            // A channel not being captioned has no mode but the default.
            let status = |state: ChannelState, source: String| ChannelStatus {
                state,
                mode: match state {
                    ChannelState::Stopped | ChannelState::Ended => ChannelMode::Full,
                    _ => mode,
                },
                lag,
                source,
            };
            let mut described = described;
            if let Some(s) = stats.get(i) {
                if s.restarts > 0 {
                    described.push_str(&format!(
                        "; recognition restarted {}× after a fault",
                        s.restarts
                    ));
                }
                if s.finals_lost > 0 {
                    described.push_str(&format!(
                        "; {} caption(s) lost to a fault in delivery",
                        s.finals_lost
                    ));
                }
                if reduced {
                    described.push_str(&format!(
                        "; decoded every {:.0} s and at pauses: the machine is busy",
                        s.step.max(1.0)
                    ));
                }
                if s.untranscribed_secs >= 0.05 {
                    described.push_str(&format!(
                        "; {:.1} s of speech could not be transcribed",
                        s.untranscribed_secs
                    ));
                }
                if let Some((fault, _)) = &s.last_fault {
                    described.push_str(&format!(" (last fault: {fault})"));
                }
            }
            let gave_up_lately = stats
                .get(i)
                .and_then(|s| s.untranscribed_last)
                .is_some_and(|t| t.elapsed() < INCOMPLETE_FOR);
            let state = if let Some(why) = app.engine.stopped() {
                return status(ChannelState::Ended, format!("engine stopped: {why}"));
            } else if let Some(why) = &health.down {
                return status(
                    ChannelState::Incomplete,
                    format!("recognition is down ({why}): restarting; {described}"),
                );
            } else if app.stopped[i].load(Relaxed) {
                return status(ChannelState::Stopped, "stopped by the organizer".into());
            } else if ended && done {
                ChannelState::Ended
            } else if gave_up_lately {
                ChannelState::Incomplete
            } else if lag > LAGGING_AFTER {
                ChannelState::Lagging
            } else if now.saturating_sub(app.last_event[i].load(Relaxed)) > SILENT_AFTER_MS {
                ChannelState::Silent
            } else {
                ChannelState::Live
            };
            status(state, described)
        })
        .collect()
}

async fn status_loop(app: Arc<App>) {
    let mut tick = tokio::time::interval(STATUS_EVERY);
    loop {
        tick.tick().await;
        for (i, status) in channel_states(&app).into_iter().enumerate() {
            app.hub.publish_status(i, status);
        }
    }
}

/// The client's address, over plain TCP or TLS (rate limits are per address).
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

/// Plain HTTP's listener: each connection's send buffer bounded ([`bound_send_buffer`]).
struct PlainListener(tokio::net::TcpListener);

impl axum::serve::Listener for PlainListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's accept: it waits out errors such as running out of file descriptors.
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.0).await;
        bound_send_buffer(&tcp);
        (tcp, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, PlainListener>>
    for Peer
{
    fn connect_info(s: axum::serve::IncomingStream<'_, PlainListener>) -> Peer {
        Peer(*s.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tls::TlsListener>>
    for Peer
{
    fn connect_info(s: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Peer {
        Peer(*s.remote_addr())
    }
}

/// A browser's WebSocket from a page of another site (its `Origin` is not this server) is
/// refused: a page elsewhere cannot read the captions or feed a booth through a visitor's
/// browser. Clients that are not browsers send no `Origin` and are not affected.
#[allow(clippy::result_large_err)]
fn same_origin(headers: &HeaderMap) -> Result<(), Response> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    tracing::info!(origin, "a cross-origin WebSocket refused");
    Err((
        StatusCode::FORBIDDEN,
        format!("connections from pages of another site ({origin}) are refused\n"),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
struct PinQuery {
    #[serde(default)]
    pin: Option<String>,
    /// The interpreter token (`/ws?interpreter=`): protected names as said.
    #[serde(default)]
    interpreter: Option<String>,
}

/// With a meeting PIN: `Err` with the answer for a missing or wrong one, or for an address
/// that tried too many. Only a PIN given counts as a try (pages first ask without one, to
/// learn whether the meeting has one). Addresses are not logged.
#[allow(clippy::result_large_err)]
fn check_pin(app: &App, ip: IpAddr, given: Option<&str>) -> Result<(), Response> {
    let Some(pin) = &app.pin else {
        return Ok(());
    };
    let now = now_ms();
    if !app.pin_failures.allows(ip, now) {
        return Err(too_many_wrong("PINs"));
    }
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), pin.as_bytes())) {
        return Ok(());
    }
    if given.is_some() {
        app.pin_failures.hit(ip, now);
        tracing::info!("a wrong meeting PIN");
    }
    Err((
        StatusCode::UNAUTHORIZED,
        if given.is_some() {
            "wrong meeting PIN\n"
        } else {
            "this meeting needs its PIN (?pin=)\n"
        },
    )
        .into_response())
}

/// The answer to an address over its wrong tries this minute (PINs and interpreter tokens
/// count together).
fn too_many_wrong(what: &str) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many wrong {what} from this address: wait a minute\n"),
    )
        .into_response()
}

/// Whether a listener is an interpreter: no token given, no; the right one, yes; a wrong
/// one (or one where the meeting has none) is refused, and counts as a wrong PIN does.
#[allow(clippy::result_large_err)]
fn check_interpreter(app: &App, ip: IpAddr, given: Option<&str>) -> Result<bool, Response> {
    let Some(given) = given else {
        return Ok(false);
    };
    let now = now_ms();
    if !app.pin_failures.allows(ip, now) {
        return Err(too_many_wrong("tokens"));
    }
    match &app.interpreter_token {
        Some(t) if constant_time_eq(given.as_bytes(), t.as_bytes()) => Ok(true),
        _ => {
            app.pin_failures.hit(ip, now);
            tracing::info!("a wrong interpreter token");
            Err((StatusCode::UNAUTHORIZED, "wrong interpreter token\n").into_response())
        }
    }
}

async fn ws_upgrade(
    ws: WebSocketUpgrade,
    State(app): State<Arc<App>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Query(q): Query<PinQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = same_origin(&headers) {
        return refused;
    }
    let ip = peer.ip();
    if !ip.is_loopback() && !app.joins.hit(ip, now_ms()) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many connections from this address: wait a minute\n",
        )
            .into_response();
    }
    if let Err(refused) = check_pin(&app, ip, q.pin.as_deref()) {
        return refused;
    }
    let interpreter = match check_interpreter(&app, ip, q.interpreter.as_deref()) {
        Ok(yes) => yes,
        Err(refused) => return refused,
    };
    // Small buffers: a listener receives a few kilobytes a second and sends less; the
    // defaults (128 KiB to read) would cost more than the rest of a listener together.
    ws.max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .read_buffer_size(LISTENER_BUFFER)
        .write_buffer_size(LISTENER_BUFFER)
        .on_upgrade(move |socket| listener(socket, app, interpreter))
}

/// Why a message was not sent.
#[derive(Debug, PartialEq)]
enum Unsent {
    /// The client is gone.
    Gone,
    /// The socket took none of it for [`SEND_TIMEOUT`]: the client stopped reading.
    TooSlow,
}

/// Sends one message, waiting at most [`SEND_TIMEOUT`] for the socket to take it.
async fn send(ws: &mut WebSocket, text: Utf8Bytes) -> Result<(), Unsent> {
    match tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::Text(text))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Unsent::Gone),
        Err(_) => Err(Unsent::TooSlow),
    }
}

/// Sends one message; `false` if the client is gone or too slow to take it.
async fn send_msg(ws: &mut WebSocket, m: &ServerMessage) -> bool {
    send(ws, m.to_json().into()).await.is_ok()
}

/// Sends one message to a listener; `false` if it is gone or too slow to take it, which is
/// counted ([`App::too_slow`]).
async fn to_listener_text(app: &App, ws: &mut WebSocket, text: Utf8Bytes) -> bool {
    match send(ws, text).await {
        Ok(()) => true,
        Err(Unsent::Gone) => false,
        Err(Unsent::TooSlow) => {
            app.too_slow.fetch_add(1, Relaxed);
            tracing::debug!("a listener took no message for {SEND_TIMEOUT:?}; disconnected");
            false
        }
    }
}

/// [`to_listener_text`] of a message.
async fn to_listener(app: &App, ws: &mut WebSocket, m: &ServerMessage) -> bool {
    to_listener_text(app, ws, m.to_json().into()).await
}

fn error(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error {
        code,
        message: message.into(),
    }
}

/// One listener's connection: its subscriptions, and the events of those channels.
/// `interpreter`: gets protected names as said (see [`redact`]).
async fn listener(mut ws: WebSocket, app: Arc<App>, interpreter: bool) {
    app.connections.fetch_add(1, Relaxed);
    let n = app.hub.channels.len();
    // The channels followed, each from its last join's fence: nothing is sent twice or
    // stale (see [`hub::Follow`]).
    let mut follow = hub::Follow::new(n);
    let mut rx: Option<tokio::sync::broadcast::Receiver<Arc<hub::Published>>> = None;
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    heartbeat.tick().await;
    let mut open = to_listener(&app, &mut ws, &app.meeting(None)).await;
    while open {
        tokio::select! {
            incoming = ws.recv() => {
                let text = match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        open = to_listener(&app, &mut ws, &error(ErrorCode::Unsupported,
                            "binary frames are not part of the caption protocol; send JSON text")).await;
                        continue;
                    }
                    Some(Ok(_)) => continue, // ping/pong: answered by the WebSocket layer
                };
                if text.len() > MAX_CLIENT_MESSAGE {
                    open = to_listener(&app, &mut ws, &error(ErrorCode::Unsupported, format!(
                        "a message of {} bytes is over the limit of {MAX_CLIENT_MESSAGE} bytes",
                        text.len()
                    ))).await;
                    continue;
                }
                match wire::parse_client(text.as_str()) {
                    Err(why) => {
                        open = to_listener(&app, &mut ws, &error(ErrorCode::BadMessage, why)).await;
                    }
                    Ok(ClientMessage::Ping { id }) => {
                        open = to_listener(&app, &mut ws, &ServerMessage::Pong { id }).await;
                    }
                    Ok(ClientMessage::Unsubscribe { channels }) => {
                        for id in channels {
                            match app.hub.index(&id) {
                                Some(i) => {
                                    if follow.stop(i) {
                                        app.listening[i].fetch_sub(1, Relaxed);
                                    }
                                }
                                None => {
                                    open = to_listener(&app, &mut ws, &error(ErrorCode::UnknownChannel,
                                        format!("no channel `{id}` in this meeting"))).await;
                                }
                            }
                        }
                    }
                    Ok(ClientMessage::Subscribe { channels, since }) => {
                        for id in channels {
                            let Some(i) = app.hub.index(&id) else {
                                open = to_listener(&app, &mut ws, &error(ErrorCode::UnknownChannel,
                                    format!("no channel `{id}` in this meeting"))).await;
                                continue;
                            };
                            let (first, r, fence) = app.hub.join(i, since.get(&id).copied(), false);
                            if rx.is_none() {
                                rx = Some(r);
                            }
                            if !follow.follows(i) {
                                app.listening[i].fetch_add(1, Relaxed);
                            }
                            follow.start(i, fence);
                            for m in first {
                                open = open && to_listener(&app, &mut ws, &m).await;
                            }
                        }
                    }
                }
            }
            event = async { rx.as_mut().expect("guarded").recv().await }, if rx.is_some() => {
                match event {
                    Ok(p) => {
                        if !follow.wants(&p) {
                            continue;
                        }
                        open = to_listener_text(&app, &mut ws, p.for_listener(interpreter)).await;
                    }
                    Err(RecvError::Lagged(missed)) => {
                        // Too far behind: a fresh snapshot of each channel, then live again.
                        tracing::debug!(missed, "listener lagged; resync");
                        app.resyncs.fetch_add(1, Relaxed);
                        // The first channel's receiver is the oldest: it has every event
                        // after that snapshot; what the later snapshots already hold is
                        // before their fences.
                        let mut fresh = None;
                        let followed: Vec<usize> = follow.channels().collect();
                        for i in followed {
                            let (first, r, fence) = app.hub.join(i, None, true);
                            fresh.get_or_insert(r);
                            follow.start(i, fence);
                            for m in first {
                                open = open && to_listener(&app, &mut ws, &m).await;
                            }
                        }
                        if fresh.is_some() {
                            rx = fresh;
                        }
                    }
                    Err(RecvError::Closed) => break,
                }
            }
            _ = heartbeat.tick() => {
                open = to_listener(&app, &mut ws, &ServerMessage::Heartbeat { wall_ms: now_ms() }).await;
            }
        }
    }
    for i in follow.channels() {
        app.listening[i].fetch_sub(1, Relaxed);
    }
    app.connections.fetch_sub(1, Relaxed);
}

/// The recognition engine in a few words: "running", "running (restarted 1× after …)",
/// "down (…)", "stopped (…)"; and whether it is running now.
fn engine_state(app: &App) -> (bool, String) {
    let h = app.engine.health();
    if let Some(why) = app.engine.stopped() {
        return (false, format!("stopped ({why})"));
    }
    if let Some(why) = h.down {
        return (false, format!("down ({why}): restarting"));
    }
    match (h.thread_restarts, h.last_thread_fault) {
        (0, _) => (true, "running".into()),
        (n, fault) => (
            true,
            format!(
                "running (restarted {n}× after a fault; last: {})",
                fault.unwrap_or_default()
            ),
        ),
    }
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let (running, engine) = engine_state(&app);
    let archive = app
        .pipeline
        .archive_error
        .lock()
        .ok()
        .and_then(|e| e.clone());
    let ok = running && archive.is_none();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "degraded" },
        "engine": engine,
        "archive": match (&app.archive_path, archive) {
            (None, _) => "off the record".to_string(),
            (Some(_), Some(e)) => e,
            (Some(_), None) => "ok".to_string(),
        },
        "archive_waiting": app.pipeline.archive_backlog.load(Relaxed),
        "channels": channel_states(&app).iter().zip(&app.hub.channels).map(|(s, c)| {
            serde_json::json!({"id": c.id, "state": s.state, "mode": s.mode, "lag": s.lag, "source": s.source})
        }).collect::<Vec<_>>(),
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn meeting_info(
    State(app): State<Arc<App>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Query(q): Query<PinQuery>,
) -> Response {
    if let Err(refused) = check_pin(&app, peer.ip(), q.pin.as_deref()) {
        return refused;
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        app.meeting(None).to_json(),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct TokenOnly {
    #[serde(default)]
    token: Option<String>,
}

fn unauthorized(what: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        format!("{what} needs the organizer token (Authorization: Bearer TOKEN)\n"),
    )
        .into_response()
}

/// `Err` with the answer unless the request carries the organizer's token (see
/// [`check_key`]).
#[allow(clippy::result_large_err)]
fn check_organizer(
    app: &App,
    ip: IpAddr,
    headers: &HeaderMap,
    query: Option<&str>,
    what: &str,
) -> Result<(), Response> {
    match check_key(app, ip, headers, query, &app.organizer_token) {
        Key::Right => Ok(()),
        Key::Wrong => Err(unauthorized(what)),
        Key::TooMany => Err(too_many_wrong("tokens")),
    }
}

/// `GET /api/organizer` (organizer): everything the organizer's page shows — the meeting,
/// each channel's state, lag, source, listeners and audio level, the engine, the archive,
/// the glossary.
async fn organizer_status(
    State(app): State<Arc<App>>,
    Query(q): Query<TokenOnly>,
    headers: HeaderMap,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
) -> Response {
    if let Err(refused) = check_organizer(
        &app,
        peer.ip(),
        &headers,
        q.token.as_deref(),
        "the organizer's status",
    ) {
        return refused;
    }
    let stats = app.engine.stats();
    let archive = app
        .pipeline
        .archive_error
        .lock()
        .ok()
        .and_then(|e| e.clone());
    let channels: Vec<serde_json::Value> = channel_states(&app)
        .into_iter()
        .zip(&app.hub.channels)
        .enumerate()
        .map(|(i, (status, c))| {
            let s = stats.get(i).cloned().unwrap_or_default();
            serde_json::json!({
                "id": c.id,
                "label": c.label,
                "language": c.language,
                "state": status.state,
                "mode": status.mode,
                // Seconds of new audio between decodes (1 in full mode; wider when reduced).
                "step": (s.step * 10.0).round() / 10.0,
                "lag": (status.lag * 10.0).round() / 10.0,
                "source": status.source,
                "listeners": app.listening.get(i).map(|l| l.load(Relaxed)).unwrap_or(0),
                "level_db": (s.level_db * 10.0).round() / 10.0,
                "audio_secs": s.audio_secs.round(),
                "audio_lost_secs": s.audio_lost_secs,
                "untranscribed_secs": (s.untranscribed_secs * 10.0).round() / 10.0,
                "restarts": s.restarts,
                "finals_lost": s.finals_lost,
                "last_fault": s.last_fault.as_ref().map(|f| f.0.clone()),
                "last_seq": app.hub.last_seq(i),
            })
        })
        .collect();
    let (running, engine) = engine_state(&app);
    let body = serde_json::json!({
        "meeting": app.meeting(None),
        "engine": engine,
        // An alarm for the organizer: no speech is captioned while recognition is down.
        "recognition_alarm": (!running).then(|| format!(
            "Recognition is {engine}. No speech is being captioned on any channel until it runs again; listeners see \"captions incomplete\"."
        )),
        "archive": match (&app.archive_path, &archive) {
            (None, _) => "none: the meeting was started off the record".to_string(),
            (Some(_), Some(e)) => format!("failing: {e}"),
            (Some(p), None) => format!(
                "ok ({}{})",
                p.display(),
                if app.archive_sealed { ", encrypted" } else { "" }
            ),
        },
        // An alarm for the organizer: the archive fails, captions go on, finals wait.
        "archive_alarm": archive.map(|e| {
            let waiting = app.pipeline.archive_backlog.load(Relaxed);
            let lost = app.pipeline.archive_lost.load(Relaxed);
            let mut a = format!(
                "The archive cannot be written ({e}). Captions go on live; {waiting} final(s) wait in memory and will be written when it can be (free space, or make it writable). Do not stop tolk now: what waits would be lost."
            );
            if lost > 0 {
                a.push_str(&format!(" {lost} final(s) were given up (the memory held {})." , pipeline::ARCHIVE_BACKLOG));
            }
            a
        }).or_else(|| {
            let lost = app.pipeline.finals_lost.load(Relaxed);
            (lost > 0).then(|| format!(
                "{lost} final(s) were lost: the archive's disk stalled so long that {} finals waited for it. Check the disk.",
                pipeline::OVERFLOW_FINALS
            ))
        }),
        "archive_waiting": app.pipeline.archive_backlog.load(Relaxed),
        "archive_lost": app.pipeline.archive_lost.load(Relaxed),
        "glossary": app.glossary_info,
        // From a decode timed at start: how many channels this machine can caption.
        "capacity": app.capacity,
        // The organizer hands it to the interpreters (their page's link).
        "interpreter_key": app.interpreter_token,
        "connections": app.connections.load(Relaxed),
        "channels": channels,
    });
    axum::Json(body).into_response()
}

#[derive(serde::Deserialize)]
struct QrQuery {
    text: String,
    #[serde(default)]
    token: Option<String>,
}

/// `GET /api/qr.svg?text=URL` (organizer): a QR code of the attendee address, drawn here (a
/// page may load nothing from elsewhere).
async fn qr_svg(
    State(app): State<Arc<App>>,
    Query(q): Query<QrQuery>,
    headers: HeaderMap,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
) -> Response {
    if let Err(refused) =
        check_organizer(&app, peer.ip(), &headers, q.token.as_deref(), "a QR code")
    {
        return refused;
    }
    match qrcode::QrCode::new(q.text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(240, 240)
                .build();
            ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("no QR code for that text: {e}\n"),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
struct RecordQuery {
    /// `true`: off the record from now on; `false`: back on.
    off: bool,
    #[serde(default)]
    token: Option<String>,
}

/// `POST /api/off-record?off=true|false` (organizer): finals from now on are not stored
/// (captions still flow), or are again. Every listener gets a `meeting` event saying so,
/// in order with the finals (see `pipeline`).
async fn switch_record(
    State(app): State<Arc<App>>,
    Query(q): Query<RecordQuery>,
    headers: HeaderMap,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
) -> Response {
    if let Err(refused) = check_organizer(
        &app,
        peer.ip(),
        &headers,
        q.token.as_deref(),
        "going off the record",
    ) {
        return refused;
    }
    if app.archive_path.is_none() {
        return (
            StatusCode::CONFLICT,
            "this meeting was started off the record: it has no archive to go back on\n",
        )
            .into_response();
    }
    let json = app.meeting(Some(q.off)).to_json();
    let a = app.clone();
    // The writer's queue may be full for a moment (a final waits for room the same way).
    let queued = tokio::task::spawn_blocking(move || a.writer.off_record(q.off, json)).await;
    if queued.is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the switch failed\n").into_response();
    }
    tracing::info!(off_record = q.off, "off-record switch requested");
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "off_record": q.off }).to_string(),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct ChannelSwitchQuery {
    stopped: bool,
    #[serde(default)]
    token: Option<String>,
}

/// The organizer stops a channel (its audio is no longer transcribed; listeners see
/// `stopped`) or starts it again.
async fn switch_channel(
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    Query(q): Query<ChannelSwitchQuery>,
    headers: HeaderMap,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
) -> Response {
    if let Err(refused) = check_organizer(
        &app,
        peer.ip(),
        &headers,
        q.token.as_deref(),
        "stopping or starting a channel",
    ) {
        return refused;
    }
    let Some(i) = app.hub.index(&channel) else {
        return (StatusCode::NOT_FOUND, "no such channel in this meeting\n").into_response();
    };
    app.stopped[i].store(q.stopped, Relaxed);
    tracing::info!(
        channel,
        stopped = q.stopped,
        "channel switched by the organizer"
    );
    // Listeners hear of it now, not at the next status tick.
    if let Some(status) = channel_states(&app).into_iter().nth(i) {
        app.hub.publish_status(i, status);
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "channel": channel, "stopped": q.stopped }).to_string(),
    )
        .into_response()
}

/// Prometheus text format.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    use std::fmt::Write;
    let mut s = String::new();
    let stats = app.engine.stats();
    let p = &app.pipeline;
    let _ = writeln!(s, "# HELP tolk_connections WebSocket connections open.\n# TYPE tolk_connections gauge\ntolk_connections {}", app.connections.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_listener_resyncs_total Listeners that fell a whole broadcast queue behind and were sent fresh snapshots.\n# TYPE tolk_listener_resyncs_total counter\ntolk_listener_resyncs_total {}", app.resyncs.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_listeners_too_slow_total Listeners disconnected because their socket took no message for 10 s.\n# TYPE tolk_listeners_too_slow_total counter\ntolk_listeners_too_slow_total {}", app.too_slow.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_tasks Tasks alive on the server's async runtime (one per connection and a few of its own).\n# TYPE tolk_tasks gauge\ntolk_tasks {}", tokio::runtime::Handle::current().metrics().num_alive_tasks());
    let _ = writeln!(
        s,
        "# HELP tolk_listeners Listeners subscribed to a channel.\n# TYPE tolk_listeners gauge"
    );
    for (c, n) in app.hub.channels.iter().zip(&app.listening) {
        let _ = writeln!(
            s,
            "tolk_listeners{{channel=\"{}\"}} {}",
            c.id,
            n.load(Relaxed)
        );
    }
    let _ = writeln!(s, "# HELP tolk_finals_total Finals published.\n# TYPE tolk_finals_total counter\ntolk_finals_total {}", p.finals.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_partials_total Partials published.\n# TYPE tolk_partials_total counter\ntolk_partials_total {}", p.partials.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_partials_dropped_total Partials dropped because the writer queue was full.\n# TYPE tolk_partials_dropped_total counter\ntolk_partials_dropped_total {}", p.partials_dropped.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_finals_held_total Finals that found the writer queue full and waited behind it (the decoder did not).\n# TYPE tolk_finals_held_total counter\ntolk_finals_held_total {}", p.finals_held.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_finals_lost_total Finals given up because the writer stalled and its overflow was full.\n# TYPE tolk_finals_lost_total counter\ntolk_finals_lost_total {}", p.finals_lost.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_archive_failures_total Archive writes that failed.\n# TYPE tolk_archive_failures_total counter\ntolk_archive_failures_total {}", p.archive_failures.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_archive_waiting Finals waiting in memory for a failing archive.\n# TYPE tolk_archive_waiting gauge\ntolk_archive_waiting {}", p.archive_backlog.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_archive_lost_total Finals given up because the archive failed too long.\n# TYPE tolk_archive_lost_total counter\ntolk_archive_lost_total {}", p.archive_lost.load(Relaxed));
    let per = |s: &mut String, name: &str, help: &str, kind: &str, f: &dyn Fn(usize) -> f64| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (i, c) in app.hub.channels.iter().enumerate() {
            let _ = writeln!(s, "{name}{{channel=\"{}\"}} {}", c.id, f(i));
        }
    };
    per(
        &mut s,
        "tolk_lag_seconds",
        "How far transcription is behind the audio.",
        "gauge",
        &|i| stats.get(i).map(|x| x.lag).unwrap_or(0.0),
    );
    per(
        &mut s,
        "tolk_decode_step_seconds",
        "Seconds of new audio between a channel's decodes: 1 when captioned fully, wider when the machine is busy (the reduced mode).",
        "gauge",
        &|i| stats.get(i).map(|x| (x.step * 10.0).round() / 10.0).unwrap_or(0.0),
    );
    per(
        &mut s,
        "tolk_channel_reduced",
        "1 while a channel is captioned in the reduced mode (decoded every few seconds and at pauses, the machine being busy), else 0.",
        "gauge",
        &|i| f64::from(u8::from(stats.get(i).is_some_and(reduced))),
    );
    per(
        &mut s,
        "tolk_asr_seconds_total",
        "Seconds whisper.cpp spent decoding (wall time of the decoder thread, all its threads).",
        "counter",
        &|i| stats.get(i).map(|x| x.decode_secs).unwrap_or(0.0),
    );
    per(
        &mut s,
        "tolk_audio_seconds_total",
        "Seconds of audio received.",
        "counter",
        &|i| stats.get(i).map(|x| x.audio_secs).unwrap_or(0.0),
    );
    per(
        &mut s,
        "tolk_audio_dropped_seconds_total",
        "Seconds of audio dropped because the channel's inbox was full.",
        "counter",
        &|i| stats.get(i).map(|x| x.audio_lost_secs).unwrap_or(0.0),
    );
    per(
        &mut s,
        "tolk_speech_untranscribed_seconds_total",
        "Seconds of speech given up untranscribed (every decode of it failed, or recognition fell too far behind or restarted).",
        "counter",
        &|i| stats.get(i).map(|x| x.untranscribed_secs).unwrap_or(0.0),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s).into_response()
}

#[derive(serde::Deserialize)]
struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    token: Option<String>,
    /// A second channel for the side-by-side export.
    #[serde(default)]
    with: Option<String>,
    /// The meeting PIN (attendees' downloads).
    #[serde(default)]
    pin: Option<String>,
}

/// What a request's key (the organizer's or a channel's ingest token) turned out to be.
#[derive(Debug, PartialEq)]
enum Key {
    Right,
    Wrong,
    /// The address gave [`KEY_TRIES_PER_MINUTE`] wrong keys this minute: even the right one
    /// waits.
    TooMany,
}

/// Whether the request carries `token`, in `Authorization: Bearer` or `?token=`. A wrong or
/// missing key counts against the address — every address, loopback included: a local user
/// is not the organizer. Addresses are not logged.
fn check_key(app: &App, ip: IpAddr, headers: &HeaderMap, query: Option<&str>, token: &str) -> Key {
    let now = now_ms();
    if !app.key_failures.allows(ip, now) {
        return Key::TooMany;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let given = bearer.or(query).unwrap_or("");
    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
        return Key::Right;
    }
    app.key_failures.hit(ip, now);
    Key::Wrong
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn export_channel(
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    Query(q): Query<ExportQuery>,
    headers: HeaderMap,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
) -> Response {
    if let Err(refused) =
        check_organizer(&app, peer.ip(), &headers, q.token.as_deref(), "an export")
    {
        return refused;
    }
    export(&app, channel, q.format.as_deref().unwrap_or("vtt"), q.with).await
}

/// An attendee downloads their channel's transcript, when the meeting allows it
/// (`downloads = true`) and is on the record; plain text unless `format` says otherwise.
async fn attendee_transcript(
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    Query(q): Query<ExportQuery>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
) -> Response {
    if let Err(refused) = check_pin(&app, peer.ip(), q.pin.as_deref()) {
        return refused;
    }
    if !app.downloads || app.off_record(None) {
        return (
            StatusCode::FORBIDDEN,
            "this meeting does not let attendees download transcripts (the organizer can allow \
             it with `downloads = true`; never while off the record)\n",
        )
            .into_response();
    }
    let format = q.format.as_deref().unwrap_or("txt");
    let name = format!("{}-{channel}.{format}", app.meeting_id);
    let mut response = export(&app, channel, format, None).await;
    if response.status().is_success() {
        if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, v);
        }
    }
    response
}

/// A channel's archived finals in `format`, or beside those of channel `with`.
async fn export(app: &App, channel: String, format: &str, with: Option<String>) -> Response {
    let Some(path) = app.archive_path.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "this meeting is off the record: nothing is archived\n",
        )
            .into_response();
    };
    let format = match format.parse::<export::Format>() {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let known = |c: &str| app.hub.index(c).is_some();
    if !known(&channel) || with.as_deref().is_some_and(|w| !known(w)) {
        return (StatusCode::NOT_FOUND, "no such channel in this meeting\n").into_response();
    }
    let meeting = app.meeting_id.clone();
    let side_by_side = with.is_some();
    let result = tokio::task::spawn_blocking(move || {
        let a = archive::Archive::open(&path)?;
        let main = a.finals(Some(&meeting), &channel)?;
        let other = match &with {
            Some(w) => Some((w.clone(), a.finals(Some(&meeting), w)?)),
            None => None,
        };
        Ok::<_, archive::ArchiveError>(match other {
            Some((w, o)) => export::side_by_side(&channel, &main, &w, &o),
            None => export::render(&main, format),
        })
    })
    .await;
    match result {
        Ok(Ok(body)) => {
            let ct = if side_by_side {
                "text/markdown; charset=utf-8"
            } else {
                format.content_type()
            };
            ([(header::CONTENT_TYPE, ct)], body).into_response()
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("export failed: {e}\n"),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: Option<String>,
}

/// A remote booth connects: the channel must take network audio, the token must be the
/// channel's, and one sender at a time.
async fn ingest_upgrade(
    ws: WebSocketUpgrade,
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
) -> Response {
    if let Err(refused) = same_origin(&headers) {
        return refused;
    }
    let Some(i) = app.hub.index(&channel) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no channel `{channel}` in this meeting\n"),
        )
            .into_response();
    };
    let found = app.sources.lock().ok().and_then(|s| {
        s.get(i).and_then(|src| {
            src.network.as_ref().map(|n| {
                (
                    n.token.clone(),
                    n.channel.clone(),
                    n.busy.clone(),
                    src.state.clone(),
                )
            })
        })
    });
    let Some((token, feed, busy, state)) = found else {
        return (
            StatusCode::NOT_FOUND,
            format!("channel `{channel}` does not take audio over the network\n"),
        )
            .into_response();
    };
    match check_key(&app, peer.ip(), &headers, q.token.as_deref(), &token) {
        Key::Right => {}
        Key::Wrong => {
            tracing::warn!(channel, "ingest refused: wrong token");
            return (
                StatusCode::UNAUTHORIZED,
                format!("wrong ingest token for channel `{channel}`\n"),
            )
                .into_response();
        }
        Key::TooMany => return too_many_wrong("tokens"),
    }
    if busy.swap(true, Relaxed) {
        tracing::info!(channel, "ingest refused: a sender is already connected");
        return (
            StatusCode::CONFLICT,
            format!("a sender is already connected to channel `{channel}`\n"),
        )
            .into_response();
    }
    // Frees the channel for the next sender when the connection ends — or when the upgrade
    // fails and the callback is dropped unrun (a handshake the client abandoned).
    let guard = Sender(busy);
    tracing::debug!(channel, "ingest upgrade accepted");
    ws.max_message_size(MAX_INGEST_FRAME)
        .on_failed_upgrade(|e| tracing::warn!("ingest upgrade failed: {e}"))
        .on_upgrade(move |socket| async move {
            let _sender = guard;
            ingest(socket, &channel, &feed, &state).await;
            source::set(
                &state,
                "booth disconnected; waiting for it to reconnect".into(),
            );
        })
}

/// A network channel's one sender: the channel is free again when this is dropped.
struct Sender(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.store(false, Relaxed);
    }
}

/// The largest ingest frame: a second of 48 kHz 16-bit PCM.
const MAX_INGEST_FRAME: usize = 96_000;

/// How long a sender has to say `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Tells a booth why it is refused (and the log, for the organizer), before closing.
async fn refuse_booth(ws: &mut WebSocket, channel: &str, code: ErrorCode, why: String) {
    tracing::info!(channel, why, "booth refused");
    let _ = send_msg(ws, &error(code, why)).await;
}

/// Decodes a booth's audio frames into its channel.
async fn ingest(mut ws: WebSocket, channel: &str, feed: &Feed, state: &std::sync::Mutex<String>) {
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, ws.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => {
            serde_json::from_str::<wire::IngestMessage>(t.as_str()).map_err(|e| e.to_string())
        }
        Ok(Some(Ok(_))) => Err("the first message must be a JSON hello".into()),
        Ok(end) => {
            tracing::info!(channel, ?end, "booth left before its hello");
            return;
        }
        Err(_) => Err(format!("no hello within {} s", HELLO_TIMEOUT.as_secs())),
    };
    let wire::IngestMessage::Hello { format, rate } = match hello {
        Ok(h) => h,
        Err(why) => {
            refuse_booth(&mut ws, channel, ErrorCode::BadMessage, why).await;
            return;
        }
    };
    let mut frames = match source::FrameDecoder::new(format, rate) {
        Ok(d) => d,
        Err(why) => {
            refuse_booth(&mut ws, channel, ErrorCode::BadAudio, why).await;
            return;
        }
    };
    let ready = ServerMessage::Ready {
        channel: channel.to_string(),
    };
    if !send_msg(&mut ws, &ready).await {
        return;
    }
    source::set(state, format!("receiving {format:?} audio from the booth"));
    tracing::info!(channel, ?format, rate, "booth connected");
    let mut bad = 0u32;
    while let Some(Ok(msg)) = ws.recv().await {
        let frame = match msg {
            Message::Binary(b) => b,
            Message::Close(_) => break,
            Message::Text(_) => {
                let why = "after the hello, audio comes as binary frames";
                if !send_msg(&mut ws, &error(ErrorCode::BadMessage, why)).await {
                    break;
                }
                continue;
            }
            _ => continue,
        };
        let out = match frames.decode(&frame) {
            Ok(out) => out,
            Err(e) => {
                bad += 1;
                // A lost or corrupt packet: say so once in a while, keep the connection.
                if bad == 1 || bad % 100 == 0 {
                    let why = format!("{e} ({bad} so far)");
                    if !send_msg(&mut ws, &error(ErrorCode::BadAudio, why)).await {
                        break;
                    }
                }
                continue;
            }
        };
        if !out.is_empty() && feed.push_audio(&out).is_err() {
            break;
        }
    }
    // A booth that drops mid-sentence: its last words close as if it had gone quiet.
    let silence = vec![0f32; (DISCONNECT_SILENCE_SECS * crate::audio::SAMPLE_RATE as f64) as usize];
    let _ = feed.push_audio(&silence);
    tracing::info!(channel, "booth disconnected");
}

/// Silence added when a booth disconnects, so the open utterance closes.
const DISCONNECT_SILENCE_SECS: f64 = 1.5;
