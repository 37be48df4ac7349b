//! Booths over the network: `/ingest/CHANNEL` takes one sender's audio frames (PCM or
//! Opus, see `docs/protocol.md`) into its channel.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::{check_key, same_origin, too_many_wrong, Key};
use super::listener::{error, send_msg};
use super::net::Peer;
use super::source::{self, Feed};
use super::wire::{self, ErrorCode, ServerMessage};
use super::App;

#[derive(serde::Deserialize)]
pub(super) struct TokenQuery {
    #[serde(default)]
    token: Option<String>,
}

/// A remote booth connects: the channel must take network audio, the token must be the
/// channel's, and one sender at a time.
pub(super) async fn ingest_upgrade(
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
