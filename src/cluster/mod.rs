//! Recognition beyond one machine: the room server's channels decoded by `tolk worker`
//! processes on other machines, over NATS (`nats-server`, JetStream for the audio's replay
//! and for the key-value buckets).
//!
//! ```text
//! room server ── audio ──► tolk.<meeting>.audio.<channel>  (JetStream TOLK_AUDIO, memory, AUDIO_RETAIN)
//!     ▲                                │
//!     │                                ▼
//!     │                          tolk worker (holds the channel's lease, decodes it)
//!     └──── events ◄── tolk.<meeting>.events.<channel>  (partials, finals, revisions)
//! ```
//!
//! - **Specs** (`tolk_channels`, key `<meeting>.<channel>`): the room server puts one per
//!   channel at start (its language, floor, the channel whose audio it decodes, its prompt
//!   terms), again when the organizer sets a session's topic (new terms: the worker that
//!   holds the channel keeps it and primes its decodes with them), and deletes it when the
//!   meeting closes.
//! - **Leases** (`tolk_leases`, same key, entries expire after [`LEASE_TTL`]; the entry's
//!   revision is the lease's fencing token, carried by every event): a worker takes
//!   a channel by creating its key (only one create can win) and keeps it by updating it
//!   every [`RENEW`] with the revision it last wrote; an update that fails (the key expired,
//!   someone else holds it) means the channel is no longer its own: it stops publishing it
//!   at once. A worker that dies or is cut off loses its leases within [`LEASE_TTL`].
//! - **Progress** (`tolk_progress`, same key; written by the room server only): the end of
//!   the last final it accepted and the next segment number. A worker taking a channel
//!   starts decoding the retained audio there, its times and segments continuing the
//!   channel's, so finals are neither repeated nor renumbered.
//! - The room server accepts a channel's events from one worker at a time ([`takeover`]):
//!   the worker whose final it last took, or a new one whose final begins where the record
//!   ends. The room server does everything after recognition as with local decoding: the
//!   glossary, protected names withheld, numbering, the archive, the listeners.
//!
//! What a worker sees: the channel's audio and the raw captions, protected names included
//! (names are withheld by the room server). On any network not closed to the room, NATS
//! must run with TLS and credentials (SECURITY.md).

pub mod edge;
pub mod resume;
pub mod room;
pub mod takeover;
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream::StorageType};

use crate::stream::policy::Event;

/// The stream that holds every channel's audio for [`AUDIO_RETAIN`] (in memory: speech is
/// never written to NATS's disk).
pub const AUDIO_STREAM: &str = "TOLK_AUDIO";
/// The stream that holds the workers' events for [`EVENTS_RETAIN`] (in memory: captions
/// are written only to the room server's archive), so that the room server, reconnecting,
/// takes what was published meanwhile; a worker publishes a final until the stream has it.
pub const EVENTS_STREAM: &str = "TOLK_EVENTS";
pub const EVENTS_RETAIN: Duration = Duration::from_secs(120);
/// How much audio a worker taking over a channel can go back for: the engine's inbox holds
/// 30 s (`stream::scheduler::INBOX_SECS`), and a lease expires in [`LEASE_TTL`].
pub const AUDIO_RETAIN: Duration = Duration::from_secs(25);
pub const CHANNELS_BUCKET: &str = "tolk_channels";
pub const LEASES_BUCKET: &str = "tolk_leases";
pub const PROGRESS_BUCKET: &str = "tolk_progress";
/// A lease not renewed for this long is gone, and another worker may take the channel.
pub const LEASE_TTL: Duration = Duration::from_secs(6);
/// How often a worker renews its leases and looks for channels to take.
pub const RENEW: Duration = Duration::from_secs(2);

/// Audio message headers: the channel's sample index (16 kHz) of the first sample; the
/// channel's audio has ended (no payload); the room server's run ([`Spec::session`]: the
/// stream still holds an earlier run's last seconds when a meeting is started again).
pub const HEADER_AT: &str = "Tolk-At";
pub const HEADER_END: &str = "Tolk-End";
pub const HEADER_SESSION: &str = "Tolk-Session";

/// The next message of a JetStream consumer, or `Err` when the NATS client panicked in it
/// (async-nats 0.35's pull consumer unwraps a send to its request task, which panics once
/// that task is gone): the caller opens the consumer again, as after any failure of it,
/// rather than losing the task that reads it.
pub async fn next_message<S>(messages: &mut S) -> Result<Option<S::Item>, ()>
where
    S: futures_util::Stream + Unpin,
{
    use futures_util::{FutureExt, StreamExt};
    std::panic::AssertUnwindSafe(messages.next())
        .catch_unwind()
        .await
        .map_err(|_| tracing::warn!("cluster: the NATS client failed in a consumer: opened again"))
}

/// Where NATS is and how to prove who we are to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `nats://HOST:4222` or `tls://HOST:4222`, perhaps with `user:password@`.
    pub url: String,
    /// A credentials file (`.creds`: a user JWT and its NKey seed).
    pub credentials: Option<PathBuf>,
    /// The certificate authority (PEM) that signed nats-server's certificate, when it is
    /// not one the system trusts (a room's own); TLS is then required.
    pub ca: Option<PathBuf>,
}

impl Endpoint {
    /// The URL as logs, errors and the organizer's page show it: a password in it replaced.
    pub fn shown(&self) -> String {
        shown_url(&self.url)
    }
}

/// The URL without its user part, and that part: `(user, Some(password))`, or a token
/// alone as `(token, None)`.
fn split_user(url: &str) -> (String, Option<(String, Option<String>)>) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("nats", url));
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let user = match userinfo.split_once(':') {
        Some((u, p)) => (u.to_string(), Some(p.to_string())),
        None => (userinfo.to_string(), None),
    };
    (format!("{scheme}://{host}"), Some(user))
}

/// `scheme://user:secret@host` → `scheme://user:…@host` (a token alone, `scheme://t@host`,
/// → `scheme://…@host`); anything else as it is.
pub fn shown_url(url: &str) -> String {
    let (bare, user) = split_user(url);
    let hidden = match user {
        None => return url.to_string(),
        Some((user, Some(_))) => format!("{user}:…@"),
        Some((_, None)) => "…@".to_string(),
    };
    let (scheme, host) = bare.split_once("://").unwrap_or(("nats", &bare));
    format!("{scheme}://{hidden}{host}")
}

/// Why the cluster could not be reached or used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("NATS credentials {}: {message}", path.display())]
    Credentials { path: PathBuf, message: String },
    #[error("NATS certificate authority {}: {message}", path.display())]
    Ca { path: PathBuf, message: String },
    #[error("NATS JetStream ({what}): {message} (is nats-server running with -js?)")]
    JetStream { what: &'static str, message: String },
    #[error("{0}")]
    Other(String),
}

fn js_err(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ClusterError {
    move |e| ClusterError::JetStream {
        what,
        message: e.to_string(),
    }
}

/// A channel as the room server offers it to workers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    pub meeting: String,
    /// The room server's run (a restarted server's channels are new ones: their media
    /// clocks start again, and no worker may go on from an older run's progress).
    pub session: String,
    pub channel: String,
    /// The channel whose audio it decodes (itself, or the one it translates).
    pub audio: String,
    /// ISO 639-1, or `auto` (among `allowed`).
    pub language: String,
    #[serde(default)]
    pub allowed: Vec<String>,
    pub floor: bool,
    /// Whisper's translate task (into English).
    pub translate: bool,
    /// Revise the record on the worker's idle cores.
    pub revise: bool,
    /// Prompt terms (the session's topic, or the meeting's `bias`), in the channel's
    /// language: the room server offers the channel again with new ones when the organizer
    /// sets a topic, and the worker that holds it takes them without letting it go.
    #[serde(default)]
    pub hints: Vec<String>,
}

/// What a worker publishes on a channel's events subject: a caption event (in the channel's
/// times and segments), or its numbers for the channel (every [`RENEW`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Published {
    pub worker: String,
    /// The room server's run ([`Spec::session`]) and the revision of the worker's lease on
    /// the channel (see [`takeover`]).
    pub session: String,
    pub epoch: u64,
    /// The channel's media time when it was emitted.
    pub at: f64,
    #[serde(default)]
    pub event: Option<Event>,
    #[serde(default)]
    pub stats: Option<WorkerStats>,
}

/// A channel's numbers on the worker that decodes it (since it took the channel).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkerStats {
    /// Seconds the latest decode was behind the audio.
    pub lag: f64,
    /// Seconds of speech the engine gave up untranscribed.
    pub untranscribed_secs: f64,
    /// Seconds of the channel's audio that never reached the worker (lost while NATS was
    /// out of reach, or older than the stream's retention when it took the channel).
    pub missing_secs: f64,
}

/// Where a channel's record stands, as the room server accepted it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// The room server's run it belongs to ([`Spec::session`]).
    pub session: String,
    /// End (channel media seconds) of the last final accepted.
    pub end: f64,
    /// The segment number a new worker's first final takes.
    pub next_segment: u64,
}

pub fn audio_subject(meeting: &str, channel: &str) -> String {
    format!("tolk.{meeting}.audio.{channel}")
}

pub fn events_subject(meeting: &str, channel: &str) -> String {
    format!("tolk.{meeting}.events.{channel}")
}

/// A channel's key in the buckets.
pub fn key(meeting: &str, channel: &str) -> String {
    format!("{meeting}.{channel}")
}

/// Meeting and channel ids name subjects and keys: letters, digits, `-` and `_` only.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} `{name}`: with a [cluster], use 1 to 64 letters, digits, - or _ (it names NATS subjects)"
        ))
    }
}

/// Connects to NATS (`nats://` or `tls://`), with a credentials file if given. The client
/// reconnects by itself (every half second to two seconds, for ever); the receiver counts
/// its reconnections, after which the stream and buckets are set up again (a restarted
/// nats-server has lost what it kept in memory).
pub async fn connect(
    nats: &Endpoint,
    name: &str,
) -> Result<(async_nats::Client, tokio::sync::watch::Receiver<u64>), ClusterError> {
    let (url, user) = split_user(&nats.url);
    let mut options = match &nats.credentials {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| ClusterError::Credentials {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?,
        None => async_nats::ConnectOptions::new(),
    };
    // async-nats reads no user or password from the URL: given to it here.
    options = match user {
        Some((user, Some(password))) => options.user_and_password(user, password),
        Some((token, None)) => options.token(token),
        None => options,
    };
    if let Some(ca) = &nats.ca {
        // Read here so that a missing file is named as such, not as a failed handshake.
        std::fs::read(ca).map_err(|e| ClusterError::Ca {
            path: ca.clone(),
            message: e.to_string(),
        })?;
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    let tx = std::sync::Arc::new(tx);
    let client = options
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((500 * attempts as u64).min(2000))
        })
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!("cluster: connected to NATS again");
                        tx.send_modify(|n| *n += 1);
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!("cluster: NATS connection lost; reconnecting");
                    }
                    other => tracing::debug!("cluster: NATS: {other}"),
                }
            }
        })
        .connect(url.as_str())
        .await
        .map_err(|e| {
            let mut message = e.to_string();
            if message.contains("UnknownIssuer") {
                message.push_str(
                    " (nats-server's certificate is signed by an authority this machine does not \
                     trust: give its authority's PEM, `ca` in [cluster] or `tolk worker --ca`)",
                );
            }
            ClusterError::Connect {
                url: nats.shown(),
                message,
            }
        })?;
    Ok((client, rx))
}

/// The stream and buckets, created by whoever comes first (the same configuration from
/// every process, so creating twice is no error).
pub struct Buckets {
    pub js: jetstream::Context,
    pub channels: kv::Store,
    pub leases: kv::Store,
    pub progress: kv::Store,
}

pub async fn setup(client: async_nats::Client) -> Result<Buckets, ClusterError> {
    let js = jetstream::new(client);
    js.get_or_create_stream(jetstream::stream::Config {
        name: AUDIO_STREAM.into(),
        subjects: vec!["tolk.*.audio.*".into()],
        max_age: AUDIO_RETAIN,
        storage: StorageType::Memory,
        ..Default::default()
    })
    .await
    .map_err(|e| js_err("the audio stream")(&e))?;
    js.get_or_create_stream(jetstream::stream::Config {
        name: EVENTS_STREAM.into(),
        subjects: vec!["tolk.*.events.*".into()],
        max_age: EVENTS_RETAIN,
        storage: StorageType::Memory,
        ..Default::default()
    })
    .await
    .map_err(|e| js_err("the events stream")(&e))?;
    let bucket = |name: &str, max_age: Duration, storage: StorageType| kv::Config {
        bucket: name.into(),
        history: 1,
        max_age,
        storage,
        ..Default::default()
    };
    let channels = store(
        &js,
        bucket(CHANNELS_BUCKET, Duration::ZERO, StorageType::File),
    )
    .await?;
    // On disk: a restarted nats-server keeps the leases and their revisions (the fencing
    // tokens only grow).
    let leases = store(&js, bucket(LEASES_BUCKET, LEASE_TTL, StorageType::File)).await?;
    let progress = store(
        &js,
        bucket(PROGRESS_BUCKET, Duration::ZERO, StorageType::File),
    )
    .await?;
    Ok(Buckets {
        js,
        channels,
        leases,
        progress,
    })
}

async fn store(js: &jetstream::Context, config: kv::Config) -> Result<kv::Store, ClusterError> {
    if let Ok(s) = js.get_key_value(config.bucket.clone()).await {
        return Ok(s);
    }
    js.create_key_value(config)
        .await
        .map_err(|e| js_err("a key-value bucket")(&e))
}

/// 16-bit little-endian PCM, as the audio subjects carry it.
pub fn to_pcm(samples: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for s in samples {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

pub fn from_pcm(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

/// An event `secs` later and `segments` further on, revisions included (a worker's engine
/// counts from the point where it took the channel).
pub fn continued(event: Event, secs: f64, segments: u64) -> Event {
    match event.shifted(secs, segments) {
        Event::Revised(mut r) => {
            r.from += secs;
            r.to += secs;
            for p in &mut r.pieces {
                p.start += secs;
                p.end += secs;
                p.segment += segments;
            }
            Event::Revised(r)
        }
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_break_a_subject_are_refused() {
        assert!(check_name("channel id", "es-booth_2").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", "ü"] {
            let e = check_name("channel id", bad).unwrap_err();
            assert!(e.contains("NATS subjects"), "{e}");
        }
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        assert_eq!(
            shown_url("tls://tolk:s3cret@10.0.0.5:4222"),
            "tls://tolk:…@10.0.0.5:4222"
        );
        assert_eq!(shown_url("nats://tok3n@host:4222"), "nats://…@host:4222");
        assert_eq!(shown_url("nats://host:4222"), "nats://host:4222");
        // A password holding '@' is hidden whole.
        assert_eq!(shown_url("nats://u:p@ss@h:1"), "nats://u:…@h:1");
    }

    #[test]
    fn the_user_part_of_the_url_is_taken_apart() {
        assert_eq!(
            split_user("tls://tolk:p@ss@h:4222"),
            (
                "tls://h:4222".to_string(),
                Some(("tolk".to_string(), Some("p@ss".to_string())))
            )
        );
        assert_eq!(
            split_user("nats://t0ken@h:4222"),
            (
                "nats://h:4222".to_string(),
                Some(("t0ken".to_string(), None))
            )
        );
        assert_eq!(
            split_user("nats://h:4222"),
            ("nats://h:4222".to_string(), None)
        );
    }

    #[test]
    fn pcm_round_trips_within_a_step() {
        let s = [0.0, 0.5, -0.5, 1.0, -1.0, 2.0];
        let back = from_pcm(&to_pcm(&s));
        for (a, b) in s.iter().zip(&back) {
            assert!((a.clamp(-1.0, 1.0) - b).abs() < 1e-4, "{a} {b}");
        }
    }

    #[test]
    fn a_revision_continues_the_channel_as_its_finals_do() {
        use crate::stream::revise::{Piece, Revision};
        let r = Event::Revised(Revision {
            from: 1.0,
            to: 5.0,
            language: "en".into(),
            pieces: vec![Piece {
                segment: 2,
                start: 1.0,
                end: 5.0,
                text: "x".into(),
            }],
        });
        let Event::Revised(r) = continued(r, 10.0, 7) else {
            panic!()
        };
        assert_eq!((r.from, r.to), (11.0, 15.0));
        assert_eq!(
            (r.pieces[0].segment, r.pieces[0].start, r.pieces[0].end),
            (9, 11.0, 15.0)
        );
    }
}
