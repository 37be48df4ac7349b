//! `tolk send`: a remote booth's sender. Audio (a sound card, or a recording at real-time
//! pace) is cut into 20 ms frames at 16 kHz, Opus-encoded, and sent over WebSocket to the
//! server's `/ingest/{channel}` with the channel's token.
//!
//! The network may drop: frames wait in a buffer of [`BUFFER_FRAMES`] (5 s; when full the
//! oldest are dropped and counted) while the sender reconnects with backoff (0.5 s doubling
//! to 8 s). A refused token or an unknown channel is not retried: it will not get better.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

use crate::audio::capture::{Capture, Next};
use crate::audio::{decode_file, StreamResampler, SAMPLE_RATE};

/// Samples per frame: 20 ms at 16 kHz.
pub const FRAME: usize = 320;

/// Frames buffered while the connection is down: 5 s.
pub const BUFFER_FRAMES: usize = 250;

const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Where the audio comes from.
pub enum Input {
    File { path: PathBuf, looped: bool },
    Device { name: Option<String> },
}

pub struct SendOptions {
    /// `ws://HOST:PORT` (or `http://…`, taken as `ws://…`).
    pub server: String,
    pub channel: String,
    pub token: String,
    pub input: Input,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
    #[error(transparent)]
    Capture(#[from] crate::audio::capture::CaptureError),
    #[error("the server refused channel `{channel}`: {why}")]
    Refused { channel: String, why: String },
    #[error("`{0}` is not a server address (ws://HOST:PORT)")]
    BadUrl(String),
    #[error("opus encoder: {0}")]
    Opus(String),
}

/// Frames waiting to go, oldest first.
struct Buffer {
    frames: Mutex<VecDeque<Vec<u8>>>,
    ready: Notify,
    dropped: AtomicU64,
    done: AtomicBool,
}

impl Buffer {
    fn push(&self, frame: Vec<u8>) {
        if let Ok(mut f) = self.frames.lock() {
            if f.len() >= BUFFER_FRAMES {
                f.pop_front();
                self.dropped.fetch_add(1, Relaxed);
            }
            f.push_back(frame);
        }
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<Vec<u8>> {
        self.frames.lock().ok()?.pop_front()
    }

    fn unpop(&self, frame: Vec<u8>) {
        if let Ok(mut f) = self.frames.lock() {
            f.push_front(frame);
        }
    }
}

/// Sends until the input ends (a file that does not loop) or `stop` is set.
pub async fn run(opts: SendOptions, stop: Arc<AtomicBool>) -> Result<SendReport, SendError> {
    let url = ingest_url(&opts.server, &opts.channel)?;
    let buffer = Arc::new(Buffer {
        frames: Mutex::new(VecDeque::new()),
        ready: Notify::new(),
        dropped: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let producer = {
        let (b, s) = (buffer.clone(), stop.clone());
        let input = opts.input;
        let mut enc =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
                .map_err(|e| SendError::Opus(e.to_string()))?;
        // Prepared before the thread, so a missing file or device is an error now.
        let source = Source::open(input)?;
        std::thread::Builder::new()
            .name("tolk-send-audio".into())
            .spawn(move || {
                source.frames(&s, |frame| {
                    let mut out = vec![0u8; 400];
                    if let Ok(n) = enc.encode_float(frame, &mut out) {
                        out.truncate(n);
                        b.push(out);
                    }
                });
                b.done.store(true, Relaxed);
                b.ready.notify_one();
            })
            .map_err(|e| SendError::Opus(format!("cannot start the audio thread: {e}")))?
    };
    let mut sent = 0u64;
    let mut reconnects = 0u64;
    let mut backoff = BACKOFF_START;
    loop {
        if stop.load(Relaxed) {
            break;
        }
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|_| SendError::BadUrl(opts.server.clone()))?;
        if let Ok(v) = format!("Bearer {}", opts.token).parse() {
            request.headers_mut().insert("Authorization", v);
        }
        let mut ws = match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => ws,
            Err(tungstenite::Error::Http(resp)) => {
                let why = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).trim().to_string())
                    .unwrap_or_else(|| resp.status().to_string());
                return Err(SendError::Refused {
                    channel: opts.channel.clone(),
                    why,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot reach the server");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                reconnects += 1;
                continue;
            }
        };
        let hello = r#"{"type":"hello","format":"opus","rate":16000}"#;
        if ws.send(Message::text(hello)).await.is_err() {
            continue;
        }
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str().contains("\"ready\"") => {}
            Some(Ok(Message::Text(t))) => {
                return Err(SendError::Refused {
                    channel: opts.channel.clone(),
                    why: t.to_string(),
                })
            }
            _ => continue,
        }
        tracing::info!(url, "connected");
        backoff = BACKOFF_START;
        // Send what is buffered, then frames as they come.
        let finished = loop {
            if stop.load(Relaxed) {
                break true;
            }
            match buffer.pop() {
                Some(frame) => {
                    if ws.send(Message::binary(frame.clone())).await.is_err() {
                        buffer.unpop(frame);
                        break false;
                    }
                    sent += 1;
                }
                None if buffer.done.load(Relaxed) => break true,
                None => {
                    tokio::select! {
                        _ = buffer.ready.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        msg = ws.next() => {
                            if !matches!(msg, Some(Ok(_))) {
                                break false;
                            }
                        }
                    }
                }
            }
        };
        if finished {
            let _ = ws.close(None).await;
            break;
        }
        reconnects += 1;
        tracing::warn!("connection lost; reconnecting");
    }
    stop.store(true, Relaxed);
    let _ = tokio::task::spawn_blocking(move || producer.join()).await;
    Ok(SendReport {
        frames_sent: sent,
        frames_dropped: buffer.dropped.load(Relaxed),
        reconnects,
    })
}

/// What a send did.
#[derive(Debug, Clone, Copy)]
pub struct SendReport {
    pub frames_sent: u64,
    pub frames_dropped: u64,
    pub reconnects: u64,
}

fn ingest_url(server: &str, channel: &str) -> Result<String, SendError> {
    let base = server.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_string()
    } else {
        return Err(SendError::BadUrl(server.to_string()));
    };
    Ok(format!("{base}/ingest/{channel}"))
}

/// The audio, opened.
enum Source {
    File { samples: Vec<f32>, looped: bool },
    Device(Capture),
}

impl Source {
    fn open(input: Input) -> Result<Source, SendError> {
        Ok(match input {
            Input::File { path, looped } => Source::File {
                samples: decode_file(&path)?.samples,
                looped,
            },
            Input::Device { name } => Source::Device(Capture::open(name.as_deref())?),
        })
    }

    /// Calls `each` with 20 ms frames at 16 kHz, at real-time pace, until the end or `stop`.
    fn frames(self, stop: &AtomicBool, mut each: impl FnMut(&[f32])) {
        match self {
            Source::File { samples, looped } => loop {
                let t0 = Instant::now();
                for (k, frame) in samples.chunks(FRAME).enumerate() {
                    if stop.load(Relaxed) {
                        return;
                    }
                    let due = t0 + Duration::from_millis(20 * k as u64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let mut f = frame.to_vec();
                    f.resize(FRAME, 0.0);
                    each(&f);
                }
                if !looped {
                    return;
                }
            },
            Source::Device(capture) => {
                let Ok(mut r) = StreamResampler::new(capture.rate) else {
                    return;
                };
                let mut pending: Vec<f32> = Vec::new();
                while !stop.load(Relaxed) {
                    match capture.next(Duration::from_millis(200)) {
                        Next::Block(block) => {
                            pending.extend(r.push(&block).unwrap_or_default());
                            let whole = pending.len() / FRAME * FRAME;
                            for f in pending[..whole].chunks(FRAME) {
                                each(f);
                            }
                            pending.drain(..whole);
                        }
                        Next::Quiet => {}
                        Next::Gone => return,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_become_ingest_urls() {
        assert_eq!(
            ingest_url("http://10.0.0.2:8080/", "es").unwrap(),
            "ws://10.0.0.2:8080/ingest/es"
        );
        assert_eq!(
            ingest_url("ws://h:1", "floor").unwrap(),
            "ws://h:1/ingest/floor"
        );
        assert!(ingest_url("10.0.0.2:8080", "es").is_err());
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_frames() {
        let b = Buffer {
            frames: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            dropped: AtomicU64::new(0),
            done: AtomicBool::new(false),
        };
        for i in 0..(BUFFER_FRAMES + 3) {
            b.push(vec![(i % 256) as u8]);
        }
        assert_eq!(b.dropped.load(Relaxed), 3);
        assert_eq!(b.pop(), Some(vec![3]));
    }
}
