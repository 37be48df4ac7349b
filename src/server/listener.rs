//! Listeners: the `/ws` upgrade and one task per connection, sending the captions of the
//! channels it follows (protocol: `docs/protocol.md`, types: [`super::wire`]), and the
//! [`Audience`] they share — the room server's, or an edge's (`tolk edge`,
//! [`crate::cluster::edge`]), which serves the same pages and `/ws` from captions it
//! receives over NATS.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;

use super::auth::{check_interpreter, check_pin, same_origin, PinQuery};
use super::auth::{JOINS_PER_MINUTE, PIN_TRIES_PER_MINUTE};
use super::hub::Hub;
use super::limits::RateLimit;
use super::net::Peer;
use super::wire::{self, ClientMessage, ErrorCode, ServerMessage};
use super::{hub, now_ms, pages};

/// The `meeting` message as it is now (off the record or not, for instance).
pub(crate) type MeetingNow = Box<dyn Fn() -> ServerMessage + Send + Sync>;

/// What serving listeners needs, and what it counts: the captions (the hub), who may join,
/// the meeting as it is now.
pub(crate) struct Audience {
    pub(crate) hub: Arc<Hub>,
    pub(crate) meeting: MeetingNow,
    /// The attendees' PIN (the meeting's `pin`), if it has one.
    pub(crate) pin: Option<String>,
    /// Opens the words as said, protected names included, to interpreters (`None` on an
    /// edge, which never has them).
    pub(crate) interpreter_token: Option<String>,
    pub(crate) joins: RateLimit,
    /// Wrong PINs and interpreter tokens, per address.
    pub(crate) pin_failures: RateLimit,
    /// Listeners subscribed, per channel.
    pub(crate) listening: Vec<AtomicUsize>,
    pub(crate) connections: AtomicUsize,
    /// Listeners that fell a whole broadcast queue behind and were sent fresh snapshots.
    pub(crate) resyncs: AtomicU64,
    /// Listeners disconnected because one message took over [`SEND_TIMEOUT`] to send.
    pub(crate) too_slow: AtomicU64,
}

impl Audience {
    pub(crate) fn new(
        hub: Arc<Hub>,
        meeting: MeetingNow,
        pin: Option<String>,
        interpreter_token: Option<String>,
    ) -> Audience {
        Audience {
            listening: hub.channels.iter().map(|_| AtomicUsize::new(0)).collect(),
            hub,
            meeting,
            pin: pin.filter(|p| !p.is_empty()),
            interpreter_token,
            joins: RateLimit::new(JOINS_PER_MINUTE, 60_000),
            pin_failures: RateLimit::new(PIN_TRIES_PER_MINUTE, 60_000),
            connections: AtomicUsize::new(0),
            resyncs: AtomicU64::new(0),
            too_slow: AtomicU64::new(0),
        }
    }

    fn meeting(&self) -> ServerMessage {
        (self.meeting)()
    }
}

/// The attendee's page, its `/ws` and `/api/meeting`: what the room server and every edge
/// serve alike.
pub(crate) fn routes() -> axum::Router<Arc<Audience>> {
    use axum::routing::get;
    axum::Router::new()
        .route("/", get(pages::index))
        .route("/common.js", get(pages::common_js))
        .route("/app.js", get(pages::app_js))
        .route("/style.css", get(pages::style_css))
        .route("/ws", get(ws_upgrade))
        .route("/api/meeting", get(meeting_info))
}

/// How often a heartbeat is sent.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

/// A listener whose socket takes longer than this to take one message is dropped.
pub(super) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener socket's read and write buffers, bytes.
const LISTENER_BUFFER: usize = 4 * 1024;

/// The largest client message accepted (subscriptions are small): a larger one is answered
/// with an `unsupported` error and the connection stays.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// The largest frame read at all: beyond it the connection is closed (the WebSocket layer
/// refuses to buffer it).
const MAX_CLIENT_FRAME: usize = 1024 * 1024;

async fn ws_upgrade(
    ws: WebSocketUpgrade,
    State(app): State<Arc<Audience>>,
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
pub(super) async fn send_msg(ws: &mut WebSocket, m: &ServerMessage) -> bool {
    send(ws, m.to_json().into()).await.is_ok()
}

/// Sends one message to a listener; `false` if it is gone or too slow to take it, which is
/// counted ([`Audience::too_slow`]).
async fn to_listener_text(app: &Audience, ws: &mut WebSocket, text: Utf8Bytes) -> bool {
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
async fn to_listener(app: &Audience, ws: &mut WebSocket, m: &ServerMessage) -> bool {
    to_listener_text(app, ws, m.to_json().into()).await
}

pub(super) fn error(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error {
        code,
        message: message.into(),
    }
}

/// One listener's connection: its subscriptions, and the events of those channels.
/// `interpreter`: gets protected names as said (see [`redact`]).
async fn listener(mut ws: WebSocket, app: Arc<Audience>, interpreter: bool) {
    app.connections.fetch_add(1, Relaxed);
    let n = app.hub.channels.len();
    // The channels followed, each from its last join's fence: nothing is sent twice or
    // stale (see [`hub::Follow`]).
    let mut follow = hub::Follow::new(n);
    let mut rx: Option<tokio::sync::broadcast::Receiver<Arc<hub::Published>>> = None;
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    heartbeat.tick().await;
    let mut open = to_listener(&app, &mut ws, &app.meeting()).await;
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

async fn meeting_info(
    State(app): State<Arc<Audience>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Query(q): Query<PinQuery>,
) -> Response {
    if let Err(refused) = check_pin(&app, peer.ip(), q.pin.as_deref()) {
        return refused;
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        app.meeting().to_json(),
    )
        .into_response()
}
