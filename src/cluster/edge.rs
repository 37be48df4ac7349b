//! Caption fan-out beyond the room server: `tolk edge` serves a meeting's attendee page and
//! `/ws` from the captions the room server publishes over NATS, so that listeners can be
//! spread over several machines.
//!
//! ```text
//! room server: hub ──► forward ──► tolk.<m>.captions.<c>.final|partial|status ┐ JetStream TOLK_CAPTIONS
//!                                  tolk.<m>.captions.meeting                  ┘ (memory, in order)
//!                                          │
//!                                          ▼
//!              tolk edge: mirror ──► its own hub ──► /ws, one task per listener (as in the room)
//! ```
//!
//! What goes out is what attendees get: protected names withheld, never the words as said
//! (interpreters are served by the room server only). A final keeps the seq the room gave
//! it, so a listener resumes (`since`) on any edge. The stream keeps [`CAPTIONS_KEPT`]
//! messages per subject — a channel's last finals with their revisions, its last partials
//! and statuses — in the order they were published: an edge started late replays them into
//! its hub, holding back partials and statuses until it has caught up (so no stale one
//! reaches a listener), and takes each final once (by its seq).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream::StorageType};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast::error::RecvError, watch};

use super::{check_name, connect, next_message, ClusterError, Endpoint};
use crate::server::hub::{
    ChannelStatus, Follow, Hub, BROADCAST_CAPACITY, EVERY_CHANNEL, RING_FINALS,
};
use crate::server::listener::{self, Audience};
use crate::server::wire::{Partial, ServerMessage};

/// The stream of every meeting's captions as attendees get them.
pub const CAPTIONS_STREAM: &str = "TOLK_CAPTIONS";
/// Messages kept per subject: twice the finals a hub keeps (each may have a revision).
pub const CAPTIONS_KEPT: i64 = 2 * RING_FINALS as i64;
/// How long captions are kept for edges (in nats-server's memory, never on its disk).
pub const CAPTIONS_RETAIN: Duration = Duration::from_secs(12 * 3600);

/// Where each edge says, every [`super::RENEW`], how many listeners it serves (key
/// `<meeting>.<edge>`; an entry not renewed is gone after [`super::LEASE_TTL`]): the room
/// server shows the organizer.
pub const EDGES_BUCKET: &str = "tolk_edges";

/// An edge as the organizer sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeView {
    pub name: String,
    /// WebSocket connections open.
    pub connections: usize,
    /// Listeners per channel, in the meeting's order.
    pub listeners: Vec<usize>,
}

/// The edges' bucket (in memory: counts only).
pub async fn edges_bucket(js: &jetstream::Context) -> Result<jetstream::kv::Store, ClusterError> {
    super::store(
        js,
        jetstream::kv::Config {
            bucket: EDGES_BUCKET.into(),
            history: 1,
            max_age: super::LEASE_TTL,
            storage: StorageType::Memory,
            ..Default::default()
        },
    )
    .await
}

/// The room server's side: the edges of `meeting` now, every [`super::RENEW`], into `edges`.
pub(crate) async fn watch_edges(
    js: jetstream::Context,
    meeting: String,
    edges: Arc<Mutex<Vec<EdgeView>>>,
) {
    use futures_util::StreamExt;
    let prefix = format!("{meeting}.");
    let mut tick = tokio::time::interval(super::RENEW);
    loop {
        tick.tick().await;
        let Ok(store) = edges_bucket(&js).await else {
            continue;
        };
        let Ok(keys) = store.keys().await else {
            continue;
        };
        let keys: Vec<String> = keys
            .filter_map(|k| async move { k.ok() })
            .filter(|k| std::future::ready(k.starts_with(&prefix)))
            .collect()
            .await;
        let mut now = Vec::new();
        for k in keys {
            if let Ok(Some(v)) = store.get(&k).await {
                if let Ok(view) = serde_json::from_slice::<EdgeView>(&v) {
                    now.push(view);
                }
            }
        }
        now.sort_by(|a, b| a.name.cmp(&b.name));
        if let Ok(mut e) = edges.lock() {
            *e = now;
        }
    }
}

/// The edge's side: its listeners, every [`super::RENEW`], for the room server.
async fn report(js: jetstream::Context, key: String, name: String, audience: Arc<Audience>) {
    let mut tick = tokio::time::interval(super::RENEW);
    loop {
        tick.tick().await;
        let view = EdgeView {
            name: name.clone(),
            connections: audience.connections.load(Relaxed),
            listeners: audience.listening.iter().map(|l| l.load(Relaxed)).collect(),
        };
        let json = serde_json::to_vec(&view).unwrap_or_default();
        match edges_bucket(&js).await {
            Ok(store) => {
                if let Err(e) = store.put(&key, json.into()).await {
                    tracing::debug!("edge: cannot report its listeners: {e}");
                }
            }
            Err(e) => tracing::debug!("edge: cannot report its listeners: {e}"),
        }
    }
}

/// What a channel's subject carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Finals and their revisions.
    Final,
    Partial,
    Status,
}

impl Kind {
    fn token(self) -> &'static str {
        match self {
            Kind::Final => "final",
            Kind::Partial => "partial",
            Kind::Status => "status",
        }
    }
}

/// `tolk.<meeting>.captions.<channel>.<kind>`.
pub fn captions_subject(meeting: &str, channel: &str, kind: Kind) -> String {
    format!("tolk.{meeting}.captions.{channel}.{}", kind.token())
}

/// `tolk.<meeting>.captions.meeting`: the meeting as the room server last announced it.
pub fn meeting_subject(meeting: &str) -> String {
    format!("tolk.{meeting}.captions.meeting")
}

/// The meeting as edges serve it: the `meeting` message (its channels) and its PIN, which
/// an edge asks of attendees as the room server does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Announced {
    pub meeting: ServerMessage,
    pub pin: Option<String>,
}

/// The captions stream, created by whoever comes first (the same configuration from every
/// process).
pub async fn setup(js: &jetstream::Context) -> Result<jetstream::stream::Stream, ClusterError> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: CAPTIONS_STREAM.into(),
        subjects: vec!["tolk.*.captions.>".into()],
        max_messages_per_subject: CAPTIONS_KEPT,
        max_age: CAPTIONS_RETAIN,
        storage: StorageType::Memory,
        ..Default::default()
    })
    .await
    .map_err(|e| super::js_err("the captions stream")(&e))
}

/// The seq of a channel's last final the stream holds (0: none); `None` if NATS did not say.
async fn last_in_stream(js: &jetstream::Context, subject: &str) -> Option<u64> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let stream = setup(js).await.ok()?;
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(raw) => {
            let m = async_nats::Message::try_from(raw).ok()?;
            match serde_json::from_slice::<ServerMessage>(&m.payload).ok()? {
                ServerMessage::Final(f) | ServerMessage::Revised(f) => Some(f.seq),
                _ => Some(0),
            }
        }
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Some(0),
        Err(_) => None,
    }
}

/// Publishes until the stream has it (`must`: a final, a revision, the meeting), or once (a
/// partial or a status, which the next one replaces).
async fn publish(js: &jetstream::Context, subject: String, payload: Vec<u8>, must: bool) {
    let mut wait = Duration::from_millis(250);
    loop {
        let sent = match js.publish(subject.clone(), payload.clone().into()).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(()) => return,
            Err(e) if !must => {
                tracing::debug!(%subject, "cluster: a caption event not published: {e}");
                return;
            }
            Err(e) => {
                tracing::warn!(%subject, "cluster: cannot publish captions for edges ({e}); trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
                // A restarted nats-server lost the stream (kept in memory).
                let _ = setup(js).await;
            }
        }
    }
}

/// The room server's side: every caption event its listeners get, into the captions stream,
/// in order, from where the stream's last final ends (a restarted room server sends none
/// twice). After a reconnection, or if this task fell a whole broadcast queue behind, it
/// joins the hub again from the last final it published — the finals meanwhile are sent
/// then, as a listener resuming would get them — and a stream that lost its finals (a
/// restarted nats-server) is given the hub's again.
pub(crate) async fn forward(
    js: jetstream::Context,
    meeting: String,
    audience: Arc<Audience>,
    mut reconnects: watch::Receiver<u64>,
) {
    let hub = audience.hub.clone();
    let n = hub.channels.len();
    let mut sent = vec![0u64; n];
    loop {
        reconnects.borrow_and_update();
        for (i, c) in hub.channels.iter().enumerate() {
            if let Some(last) =
                last_in_stream(&js, &captions_subject(&meeting, &c.id, Kind::Final)).await
            {
                sent[i] = last;
            }
        }
        if sent.iter().enumerate().any(|(i, s)| *s > hub.last_seq(i)) {
            // An earlier run's finals (a meeting off the record numbers from 1 again after a
            // crash): not this run's to skip.
            tracing::warn!("cluster: the captions stream held an earlier run's finals: purged");
            if let Ok(stream) = setup(&js).await {
                let _ = stream
                    .purge()
                    .filter(format!("tolk.{meeting}.captions.>"))
                    .await;
            }
            sent.iter_mut().for_each(|s| *s = 0);
        }
        let announce = |m: ServerMessage| {
            serde_json::to_vec(&Announced {
                meeting: m,
                pin: audience.pin.clone(),
            })
            .unwrap_or_default()
        };
        publish(
            &js,
            meeting_subject(&meeting),
            announce((audience.meeting)()),
            true,
        )
        .await;
        let mut follow = Follow::new(n);
        let mut rx = None;
        for i in 0..n {
            let (first, r, fence) = hub.join(i, Some(sent[i]), false);
            rx.get_or_insert(r);
            follow.start(i, fence);
            for m in first {
                forward_one(&js, &meeting, &hub, i, m, &mut sent).await;
            }
        }
        let Some(mut rx) = rx else {
            return;
        };
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Ok(p) => {
                        if !follow.wants(&p) {
                            continue;
                        }
                        let Ok(m) = serde_json::from_str::<ServerMessage>(p.json.as_str()) else {
                            continue;
                        };
                        if p.channel == EVERY_CHANNEL {
                            publish(&js, meeting_subject(&meeting), announce(m), true).await;
                        } else {
                            forward_one(&js, &meeting, &hub, p.channel, m, &mut sent).await;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "cluster: captions for edges fell behind; sent again from the last final");
                        break;
                    }
                    Err(RecvError::Closed) => return,
                },
                changed = reconnects.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// One of channel `i`'s messages onto its subject; a snapshot's finals one by one.
async fn forward_one(
    js: &jetstream::Context,
    meeting: &str,
    hub: &Hub,
    i: usize,
    m: ServerMessage,
    sent: &mut [u64],
) {
    let channel = &hub.channels[i].id;
    let (kind, must) = match &m {
        ServerMessage::Final(f) => {
            if f.seq <= sent[i] {
                return;
            }
            sent[i] = f.seq;
            (Kind::Final, true)
        }
        ServerMessage::Revised(_) => (Kind::Final, true),
        ServerMessage::Partial(_) => (Kind::Partial, false),
        ServerMessage::Status { .. } => (Kind::Status, false),
        ServerMessage::Snapshot {
            finals, partial, ..
        } => {
            for f in finals {
                Box::pin(forward_one(
                    js,
                    meeting,
                    hub,
                    i,
                    ServerMessage::Final(f.clone()),
                    sent,
                ))
                .await;
            }
            if let Some(p) = partial {
                Box::pin(forward_one(
                    js,
                    meeting,
                    hub,
                    i,
                    ServerMessage::Partial(p.clone()),
                    sent,
                ))
                .await;
            }
            return;
        }
        _ => return,
    };
    let subject = captions_subject(meeting, channel, kind);
    publish(js, subject, m.to_json().into_bytes(), must).await;
}

/// What a channel's partial and status were at the end of a replay.
#[derive(Default)]
struct Held {
    partial: Option<Partial>,
    status: Option<ChannelStatus>,
}

/// An edge's copy of the meeting: each message of the captions stream into its hub, each
/// final once (by its seq), a replay's partials and statuses held back until it has caught
/// up. Pure but for the hub it feeds.
pub struct Mirror {
    hub: Arc<Hub>,
    meeting: Arc<Mutex<ServerMessage>>,
    prefix: String,
    held: Vec<Held>,
}

impl Mirror {
    pub fn new(meeting_id: &str, hub: Arc<Hub>, meeting: Arc<Mutex<ServerMessage>>) -> Mirror {
        Mirror {
            held: hub.channels.iter().map(|_| Held::default()).collect(),
            hub,
            meeting,
            prefix: format!("tolk.{meeting_id}.captions."),
        }
    }

    /// Takes one message of the stream; `replaying`: more are waiting (partials and statuses
    /// are held until [`Mirror::caught_up`]). `Err` says why a message was not taken.
    pub fn take(&mut self, subject: &str, payload: &[u8], replaying: bool) -> Result<(), String> {
        let rest = subject
            .strip_prefix(&self.prefix)
            .ok_or_else(|| format!("`{subject}` is not this meeting's"))?;
        if rest == "meeting" {
            let a: Announced = serde_json::from_slice(payload)
                .map_err(|e| format!("`{subject}` does not parse: {e}"))?;
            let mut meeting = a.meeting;
            if let ServerMessage::Meeting {
                downloads,
                channels,
                ..
            } = &mut meeting
            {
                // Transcripts are the room server's (its archive): not on an edge.
                *downloads = false;
                if *channels != self.hub.channels {
                    tracing::warn!(
                        "edge: the meeting's channels changed; this edge serves those it started with (start it again)"
                    );
                    channels.clone_from(&self.hub.channels);
                }
            }
            if let Ok(mut now) = self.meeting.lock() {
                *now = meeting.clone();
            }
            if !replaying {
                self.hub.publish_meeting(meeting.to_json());
            }
            return Ok(());
        }
        let m: ServerMessage = serde_json::from_slice(payload)
            .map_err(|e| format!("`{subject}` does not parse: {e}"))?;
        let channel = rest.split('.').next().unwrap_or_default();
        let i = self
            .hub
            .index(channel)
            .ok_or_else(|| format!("no channel `{channel}` in this meeting as the edge started"))?;
        match m {
            ServerMessage::Final(f) => {
                if f.seq > self.hub.last_seq(i) {
                    self.held[i].partial = None;
                    self.hub.publish_final(i, f);
                }
            }
            ServerMessage::Revised(f) => self.hub.publish_revised(i, f, None),
            ServerMessage::Partial(p) if replaying => self.held[i].partial = Some(p),
            ServerMessage::Partial(p) => self.hub.publish_partial(i, p),
            ServerMessage::Status {
                state,
                lag,
                mode,
                source,
                ..
            } => {
                let status = ChannelStatus {
                    state,
                    mode,
                    lag,
                    source,
                };
                if replaying {
                    self.held[i].status = Some(status);
                } else {
                    self.hub.publish_status(i, status);
                }
            }
            other => return Err(format!("`{subject}`: not a caption event: {other:?}")),
        }
        Ok(())
    }

    /// The replay is over: each channel's last partial and status (if no final followed the
    /// partial) go to the hub.
    pub fn caught_up(&mut self) {
        for (i, h) in self.held.iter_mut().enumerate() {
            if let Some(p) = h.partial.take() {
                self.hub.publish_partial(i, p);
            }
            if let Some(s) = h.status.take() {
                self.hub.publish_status(i, s);
            }
        }
    }
}

/// What an edge counts.
#[derive(Default)]
pub struct EdgeStats {
    /// Messages taken from the captions stream.
    pub events: AtomicU64,
    /// Messages that were not taken (not this meeting's channels, not parsing).
    pub refused: AtomicU64,
    /// The edge has replayed what the stream held and takes events as they come.
    pub caught_up: AtomicBool,
    /// Times the edge reconnected to NATS.
    pub reconnects: AtomicU64,
}

/// The captions stream into `mirror`: all it holds at first and after every reconnection or
/// failure (each final taken once), then as they come.
async fn mirror(
    js: jetstream::Context,
    meeting: String,
    mut mirror: Mirror,
    stats: Arc<EdgeStats>,
    mut reconnects: watch::Receiver<u64>,
) {
    use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
    let filter = format!("tolk.{meeting}.captions.>");
    loop {
        stats
            .reconnects
            .store(*reconnects.borrow_and_update(), Relaxed);
        stats.caught_up.store(false, Relaxed);
        let opened = async {
            let mut consumer = setup(&js)
                .await
                .map_err(|e| e.to_string())?
                .create_consumer(OrderedConfig {
                    filter_subject: filter.clone(),
                    deliver_policy: DeliverPolicy::All,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            let pending = consumer
                .info()
                .await
                .map_err(|e| e.to_string())?
                .num_pending;
            let messages = consumer.messages().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((pending, messages))
        };
        let (pending, mut messages) = match opened.await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("cluster: the captions consumer: {e}; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if pending == 0 {
            mirror.caught_up();
            stats.caught_up.store(true, Relaxed);
        }
        loop {
            let m = tokio::select! {
                m = next_message(&mut messages) => match m {
                    Ok(Some(Ok(m))) => m,
                    Ok(Some(Err(e))) => {
                        tracing::warn!("cluster: the captions consumer failed ({e}): opened again");
                        break;
                    }
                    Ok(None) | Err(()) => break,
                },
                _ = reconnects.changed() => break,
            };
            let replaying = m.info().map(|i| i.pending > 0).unwrap_or(false);
            match mirror.take(m.subject.as_str(), &m.payload, replaying) {
                Ok(()) => stats.events.fetch_add(1, Relaxed),
                Err(e) => {
                    tracing::debug!("cluster: {e}");
                    stats.refused.fetch_add(1, Relaxed)
                }
            };
            if !replaying && !stats.caught_up.load(Relaxed) {
                mirror.caught_up();
                stats.caught_up.store(true, Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How `tolk edge` runs.
pub struct EdgeOptions {
    pub nats: Endpoint,
    /// The meeting's id (its `id` in the room's meeting file).
    pub meeting: String,
    /// Serve HTTPS and WSS with this configuration; `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

struct Edge {
    audience: Arc<Audience>,
    stats: Arc<EdgeStats>,
    client: async_nats::Client,
    nats: String,
}

/// Serves a meeting's attendees on `listener` from the captions its room server publishes,
/// until `shutdown` resolves. Waits for the room server's first announcement of the meeting
/// (its channels and PIN, taken once, at start).
pub async fn run(
    options: EdgeOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ClusterError> {
    check_name("meeting", &options.meeting).map_err(ClusterError::Other)?;
    let meeting = options.meeting;
    let (client, reconnects) = connect(&options.nats, &format!("tolk edge {meeting}")).await?;
    let js = jetstream::new(client.clone());
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let announced = loop {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let stream = setup(&js).await?;
        match stream
            .get_last_raw_message_by_subject(&meeting_subject(&meeting))
            .await
        {
            Ok(raw) => {
                let m = async_nats::Message::try_from(raw)
                    .map_err(|e| ClusterError::Other(format!("the meeting's announcement: {e}")))?;
                break serde_json::from_slice::<Announced>(&m.payload).map_err(|e| {
                    ClusterError::Other(format!("the meeting's announcement does not parse: {e}"))
                })?;
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                tracing::info!(
                    "edge: waiting for meeting `{meeting}` (its room server, with this NATS server in its [cluster])"
                );
            }
            Err(e) => return Err(super::js_err("the meeting's announcement")(&e)),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stopped.changed() => return Ok(()),
        }
    };
    let ServerMessage::Meeting { channels, .. } = &announced.meeting else {
        return Err(ClusterError::Other(
            "the meeting's announcement is not a meeting".into(),
        ));
    };
    let hub = Arc::new(Hub::new(
        channels.clone(),
        &vec![1; channels.len()],
        BROADCAST_CAPACITY,
    ));
    let now = Arc::new(Mutex::new(announced.meeting.clone()));
    let shown = now.clone();
    let audience = Arc::new(Audience::new(
        hub.clone(),
        Box::new(move || {
            shown
                .lock()
                .map(|m| m.clone())
                .unwrap_or_else(|e| e.into_inner().clone())
        }),
        announced.pin.clone(),
        None,
    ));
    let stats = Arc::new(EdgeStats::default());
    let mut first = Mirror::new(&meeting, hub, now);
    // The announcement read above is the meeting as it is until the stream says otherwise.
    let _ = first.take(
        &meeting_subject(&meeting),
        &serde_json::to_vec(&announced).unwrap_or_default(),
        true,
    );
    let name = format!("edge-{}", super::worker::default_name());
    let reporting = tokio::spawn(report(
        js.clone(),
        format!("{meeting}.{name}"),
        name,
        audience.clone(),
    ));
    let task = tokio::spawn(mirror(
        js,
        meeting.clone(),
        first,
        stats.clone(),
        reconnects,
    ));
    tracing::info!(
        channels = channels.len(),
        "edge: serving meeting `{meeting}` from {}",
        options.nats.shown()
    );
    let edge = Arc::new(Edge {
        audience: audience.clone(),
        stats,
        client,
        nats: options.nats.shown(),
    });
    let router = axum::Router::new()
        .merge(listener::routes().with_state(audience))
        .route("/healthz", axum::routing::get(healthz))
        .route("/metrics", axum::routing::get(metrics))
        .with_state(edge);
    let shutdown = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let served = crate::server::serve(router, listener, options.tls, shutdown).await;
    task.abort();
    reporting.abort();
    served.map_err(|e| ClusterError::Other(format!("serving: {e}")))
}

/// `/healthz`: 200 once the edge has caught up with the stream and is connected to NATS.
async fn healthz(State(edge): State<Arc<Edge>>) -> Response {
    let connected = matches!(
        edge.client.connection_state(),
        async_nats::connection::State::Connected
    );
    let caught_up = edge.stats.caught_up.load(Relaxed);
    let status = match (connected, caught_up) {
        (true, true) => "ok",
        (false, _) => "NATS disconnected",
        (true, false) => "catching up",
    };
    let body = serde_json::json!({
        "status": status,
        "nats": edge.nats,
        "channels": edge.audience.hub.channels.iter().map(|c| &c.id).collect::<Vec<_>>(),
    });
    let code = if connected && caught_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

/// Prometheus text format: the listeners as the room server counts them, and the stream.
async fn metrics(State(edge): State<Arc<Edge>>) -> Response {
    use std::fmt::Write;
    let a = &edge.audience;
    let s = &edge.stats;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP tolk_connections WebSocket connections open.\n# TYPE tolk_connections gauge\ntolk_connections {}", a.connections.load(Relaxed));
    let _ = writeln!(out, "# HELP tolk_listener_resyncs_total Listeners that fell a whole broadcast queue behind and were sent fresh snapshots.\n# TYPE tolk_listener_resyncs_total counter\ntolk_listener_resyncs_total {}", a.resyncs.load(Relaxed));
    let _ = writeln!(out, "# HELP tolk_listeners_too_slow_total Listeners disconnected because their socket took no message for 10 s.\n# TYPE tolk_listeners_too_slow_total counter\ntolk_listeners_too_slow_total {}", a.too_slow.load(Relaxed));
    let _ = writeln!(
        out,
        "# HELP tolk_listeners Listeners subscribed to a channel.\n# TYPE tolk_listeners gauge"
    );
    for (c, n) in a.hub.channels.iter().zip(&a.listening) {
        let _ = writeln!(
            out,
            "tolk_listeners{{channel=\"{}\"}} {}",
            c.id,
            n.load(Relaxed)
        );
    }
    let _ = writeln!(out, "# HELP tolk_edge_events_total Caption events taken from the captions stream.\n# TYPE tolk_edge_events_total counter\ntolk_edge_events_total {}", s.events.load(Relaxed));
    let _ = writeln!(out, "# HELP tolk_edge_refused_total Messages of the captions stream not taken (a channel the meeting did not have when the edge started, or one that does not parse).\n# TYPE tolk_edge_refused_total counter\ntolk_edge_refused_total {}", s.refused.load(Relaxed));
    let _ = writeln!(out, "# HELP tolk_edge_caught_up 1 once the edge has replayed the captions stream and takes events as they come.\n# TYPE tolk_edge_caught_up gauge\ntolk_edge_caught_up {}", u8::from(s.caught_up.load(Relaxed)));
    let _ = writeln!(out, "# HELP tolk_nats_reconnects_total Times the edge reconnected to NATS.\n# TYPE tolk_nats_reconnects_total counter\ntolk_nats_reconnects_total {}", s.reconnects.load(Relaxed));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire::{ChannelInfo, ChannelMode, ChannelState, Final};

    fn mirror() -> (Mirror, Arc<Hub>, Arc<Mutex<ServerMessage>>) {
        let channels = vec![ChannelInfo {
            id: "floor".into(),
            language: "en".into(),
            label: "Floor".into(),
            floor: true,
            translates: None,
        }];
        let meeting = ServerMessage::Meeting {
            protocol: 1,
            title: "t".into(),
            off_record: false,
            demo: false,
            downloads: true,
            channels: channels.clone(),
        };
        let hub = Arc::new(Hub::new(channels, &[1], BROADCAST_CAPACITY));
        let now = Arc::new(Mutex::new(meeting));
        (Mirror::new("m", hub.clone(), now.clone()), hub, now)
    }

    fn final_(seq: u64, text: &str) -> Vec<u8> {
        ServerMessage::Final(Final::test("floor", seq, text))
            .to_json()
            .into_bytes()
    }

    fn partial(segment: u64, text: &str) -> Vec<u8> {
        ServerMessage::Partial(Partial {
            channel: "floor".into(),
            segment,
            revision: 1,
            text: text.into(),
            start: 0.0,
            end: 1.0,
        })
        .to_json()
        .into_bytes()
    }

    fn status(state: ChannelState) -> Vec<u8> {
        ServerMessage::Status {
            channel: "floor".into(),
            state,
            lag: 0.5,
            mode: ChannelMode::Full,
            source: "playing".into(),
        }
        .to_json()
        .into_bytes()
    }

    const FINAL: &str = "tolk.m.captions.floor.final";
    const PARTIAL: &str = "tolk.m.captions.floor.partial";
    const STATUS: &str = "tolk.m.captions.floor.status";

    /// The stream as a late edge replays it: finals go to the hub at once; the partials and
    /// statuses wait for the end of the replay, and a partial a later final replaced is
    /// never shown.
    #[test]
    fn a_replay_shows_no_stale_partial_and_each_final_once() {
        let (mut m, hub, _) = mirror();
        let mut rx = hub.receiver();
        m.take(PARTIAL, &partial(1, "good mor"), true).unwrap();
        m.take(FINAL, &final_(1, "Good morning."), true).unwrap();
        m.take(STATUS, &status(ChannelState::Live), true).unwrap();
        m.take(PARTIAL, &partial(2, "welcome to"), true).unwrap();
        m.take(FINAL, &final_(2, "Welcome to the meeting."), true)
            .unwrap();
        // Sent again by the room server after a reconnection: taken once.
        m.take(FINAL, &final_(1, "Good morning."), true).unwrap();
        m.take(PARTIAL, &partial(3, "the pol"), true).unwrap();
        let mut during = Vec::new();
        while let Ok(p) = rx.try_recv() {
            during.push(p.json.to_string());
        }
        assert_eq!(during.len(), 2, "only the two finals: {during:?}");
        assert!(during.iter().all(|j| j.contains("\"final\"")), "{during:?}");
        m.caught_up();
        let mut after = Vec::new();
        while let Ok(p) = rx.try_recv() {
            after.push(p.json.to_string());
        }
        assert_eq!(after.len(), 2, "{after:?}");
        assert!(after[0].contains("the pol"), "{after:?}");
        assert!(after[1].contains("\"status\""), "{after:?}");
        assert_eq!(hub.last_seq(0), 2);
        let (first, _, _) = hub.join(0, Some(1), false);
        let seqs: Vec<u64> = first
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Final(f) => Some(f.seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, vec![2], "a listener resumes by the room's seqs");
    }

    #[test]
    fn live_events_go_straight_to_listeners() {
        let (mut m, hub, _) = mirror();
        m.caught_up();
        let mut rx = hub.receiver();
        m.take(PARTIAL, &partial(1, "good mor"), false).unwrap();
        m.take(FINAL, &final_(1, "Good morning."), false).unwrap();
        let revised = ServerMessage::Revised(Final::test("floor", 1, "Good morning, all."));
        m.take(FINAL, revised.to_json().as_bytes(), false).unwrap();
        let kinds: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|p| p.json.to_string())
            .collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(kinds[2].contains("\"revised\"") && kinds[2].contains("all."));
    }

    #[test]
    fn the_meeting_is_served_without_downloads_and_strangers_are_refused() {
        let (mut m, hub, now) = mirror();
        let mut meeting = now.lock().unwrap().clone();
        if let ServerMessage::Meeting { channels, .. } = &mut meeting {
            // The room server started again with another channel.
            let mut es = channels[0].clone();
            es.id = "es".into();
            channels.push(es);
        }
        let announced = Announced {
            meeting,
            pin: Some("1234".into()),
        };
        let mut rx = hub.receiver();
        m.take(
            "tolk.m.captions.meeting",
            &serde_json::to_vec(&announced).unwrap(),
            false,
        )
        .unwrap();
        match &*now.lock().unwrap() {
            ServerMessage::Meeting {
                downloads,
                channels,
                ..
            } => {
                assert!(!downloads);
                assert_eq!(channels, &hub.channels, "the channels it serves");
            }
            other => panic!("{other:?}"),
        }
        assert!(rx.try_recv().is_ok(), "listeners are told");
        let e = m
            .take("tolk.m.captions.es.final", &final_(1, "Hola."), false)
            .unwrap_err();
        assert!(e.contains("no channel `es`"), "{e}");
        let e = m
            .take("tolk.other.captions.floor.final", &final_(1, "x"), false)
            .unwrap_err();
        assert!(e.contains("not this meeting's"), "{e}");
        let e = m.take(FINAL, b"{not json", false).unwrap_err();
        assert!(e.contains("does not parse"), "{e}");
    }
}
