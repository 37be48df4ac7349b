//! The room server's side: each channel's audio out to NATS, the workers' events back into
//! the meeting's sink (the same path as local recognition's), the record's progress kept
//! for a worker that takes a channel over.
//!
//! Queues: each channel's outgoing audio waits in [`AUDIO_QUEUE`] frames (a source never
//! blocks: when NATS stalls that long, frames are given up and counted in the channel's
//! `audio_dropped_secs`, shown to the organizer); incoming events wait in [`EVENTS_QUEUE`]
//! (the events stream's consumer waits when it is full: the sink is microseconds per event).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_nats::HeaderMap;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};

use crate::audio::SAMPLE_RATE;
use crate::server::config::ClusterSection;
use crate::stream::decoder::{Decoding, Emitted};
use crate::stream::policy::Event;
use crate::transcribe::Model;

use super::takeover::Takeover;
use super::{
    audio_subject, connect, events_subject, key, setup, to_pcm, ClusterError, Progress, Published,
    Spec, HEADER_AT, HEADER_END,
};
use super::{WorkerStats, EVENTS_STREAM, HEADER_SESSION};

/// Frames of a channel's audio waiting for NATS: at 50 ms a frame, 25 s.
pub const AUDIO_QUEUE: usize = 500;
/// Workers' events waiting for the sink.
pub const EVENTS_QUEUE: usize = 1024;

/// The room server's own share of the decoding (`[cluster] decode_here`): a worker in its
/// process ([`super::worker::run_here`]) with the model it loaded.
pub struct Here {
    pub model: Arc<Model>,
    pub decoding: Decoding,
    /// Channels it takes at most.
    pub max: usize,
    /// Its name in leases and on the organizer's page.
    pub name: String,
}

/// What the organizer sees of a channel decoded elsewhere.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ChannelView {
    pub channel: String,
    /// The worker whose captions the channel takes now.
    pub worker: Option<String>,
    /// Times another worker took the channel over.
    pub handovers: u64,
    /// Events refused (another worker's, a final the record had).
    pub refused: u64,
    /// Audio given up before it reached NATS (seconds).
    pub audio_dropped_secs: f64,
    /// The worker's numbers for the channel (lag, speech untranscribed or never received),
    /// summed over the workers that decoded it.
    pub lag: f64,
    pub untranscribed_secs: f64,
    pub missing_secs: f64,
    /// When speech was last given up or missed (for "captions incomplete").
    #[serde(skip)]
    pub incomplete_last: Option<std::time::Instant>,
    /// What earlier workers of the channel counted.
    #[serde(skip)]
    before: WorkerStats,
    #[serde(skip)]
    latest: WorkerStats,
}

impl ChannelView {
    /// The channel's worker says how it goes.
    fn take_stats(&mut self, s: WorkerStats) {
        let was = self.untranscribed_secs + self.missing_secs;
        self.latest = s;
        self.lag = s.lag;
        self.untranscribed_secs = self.before.untranscribed_secs + s.untranscribed_secs;
        self.missing_secs = self.before.missing_secs + s.missing_secs;
        if self.untranscribed_secs + self.missing_secs > was + 0.05 {
            self.incomplete_last = Some(std::time::Instant::now());
        }
    }

    /// Another worker has the channel now: its counts start from zero.
    fn handed_over(&mut self) {
        self.before.untranscribed_secs += self.latest.untranscribed_secs;
        self.before.missing_secs += self.latest.missing_secs;
        self.latest = WorkerStats::default();
    }
}

/// The cluster as the organizer sees it.
pub struct RoomStatus {
    pub nats: String,
    /// This server's own worker's name, when it decodes channels itself.
    pub here: Option<String>,
    views: Vec<Mutex<ChannelView>>,
    dropped: Vec<Arc<AtomicU64>>,
    /// The edges serving this meeting's listeners (`tolk edge`), as they last said.
    edges: Arc<Mutex<Vec<super::edge::EdgeView>>>,
}

impl RoomStatus {
    pub fn edges(&self) -> Vec<super::edge::EdgeView> {
        self.edges.lock().map(|e| e.clone()).unwrap_or_default()
    }

    pub fn channels(&self) -> Vec<ChannelView> {
        self.views
            .iter()
            .zip(&self.dropped)
            .map(|(v, d)| {
                let mut v = v.lock().map(|v| v.clone()).unwrap_or_default();
                v.audio_dropped_secs = d.load(Relaxed) as f64 / f64::from(SAMPLE_RATE);
                v
            })
            .collect()
    }
}

enum Frame {
    Audio { at: u64, pcm: Vec<u8> },
    End,
}

/// A channel's audio on its way to NATS (what a source feeds instead of a local engine
/// channel). Never blocks.
#[derive(Clone)]
pub struct Outlet {
    tx: mpsc::Sender<Frame>,
    /// The next sample's index in the channel.
    next: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    handle: Handle,
}

impl Outlet {
    pub fn push_audio(&self, samples: &[f32]) {
        let at = self.next.fetch_add(samples.len() as u64, Relaxed);
        let frame = Frame::Audio {
            at,
            pcm: to_pcm(samples),
        };
        if self.tx.try_send(frame).is_err() {
            self.dropped.fetch_add(samples.len() as u64, Relaxed);
        }
    }

    /// The channel's audio ended: its worker closes what is open.
    pub fn finish(&self) {
        let tx = self.tx.clone();
        self.handle.spawn(async move {
            let _ = tx.send(Frame::End).await;
        });
    }
}

/// The room server's link to its workers.
pub struct Room {
    pub status: Arc<RoomStatus>,
    outlets: Vec<Option<Outlet>>,
    /// The channels as offered (their prompt terms change with the session's topic).
    offers: Arc<Mutex<Vec<Spec>>>,
    channels: async_nats::jetstream::kv::Store,
    keys: Vec<String>,
    _events: JoinHandle<()>,
    /// Offers the channels again after a reconnection; stopped by [`Room::close`] (a closed
    /// meeting's channels are not offered again).
    reoffer: tokio::task::JoinHandle<()>,
    /// The worker in this process, if any: told to stop, and awaited, by [`Room::close`].
    here: Mutex<Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>>,
    js: async_nats::jetstream::Context,
    meeting: String,
    reconnects: watch::Receiver<u64>,
    /// The captions for edges ([`super::edge::forward`]) and the edges' reports, stopped by
    /// [`Room::close`].
    captions: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Room {
    /// Connects, offers the channels (`specs`, in the meeting's order) and starts taking
    /// their events into `sink` (called with the channel's index); with `here`, this server
    /// decodes some of them itself. Called off the runtime (the server's start-up thread),
    /// with the runtime's `handle`.
    pub fn start(
        cluster: &ClusterSection,
        meeting: &str,
        specs: Vec<Spec>,
        mut sink: impl FnMut(usize, Emitted) + Send + 'static,
        here: Option<Here>,
        handle: &Handle,
    ) -> Result<Room, ClusterError> {
        let endpoint = cluster.endpoint();
        let (client, reconnects) =
            handle.block_on(connect(&endpoint, &format!("tolk room {meeting}")))?;
        let buckets = handle.block_on(setup(client.clone()))?;
        // A restarted nats-server lost the audio stream and the leases (kept in memory):
        // set them up again, and offer the channels again (if it lost its disk too).
        let again = client.clone();
        let mut reconnected = reconnects.clone();
        let offers: Arc<Mutex<Vec<Spec>>> = Arc::new(Mutex::new(specs.clone()));
        let offered = offers.clone();
        let reoffer = handle.spawn(async move {
            while reconnected.changed().await.is_ok() {
                match setup(again.clone()).await {
                    Ok(b) => {
                        // As they are now (a topic set since start is in their hints).
                        let now: Vec<Spec> = offered.lock().map(|o| o.clone()).unwrap_or_default();
                        for s in &now {
                            let json = serde_json::to_vec(s).unwrap_or_default();
                            let _ = b
                                .channels
                                .put(key(&s.meeting, &s.channel), json.into())
                                .await;
                        }
                    }
                    Err(e) => tracing::warn!("cluster: after reconnecting: {e}"),
                }
            }
        });
        let keys: Vec<String> = specs.iter().map(|s| key(meeting, &s.channel)).collect();
        let session = specs.first().map(|s| s.session.clone()).unwrap_or_default();
        let mut progress = Vec::new();
        for (s, k) in specs.iter().zip(&keys) {
            // The record starts again with this server's media clocks.
            let start = Progress {
                session: session.clone(),
                ..Default::default()
            };
            let json = serde_json::to_vec(&start).unwrap_or_default();
            handle
                .block_on(buckets.progress.put(k, json.into()))
                .map_err(|e| ClusterError::Other(format!("cannot write progress: {e}")))?;
            let json = serde_json::to_vec(s).unwrap_or_default();
            handle
                .block_on(buckets.channels.put(k, json.into()))
                .map_err(|e| ClusterError::Other(format!("cannot offer `{}`: {e}", s.channel)))?;
            let (tx, mut rx) = watch::channel(start);
            let store = buckets.progress.clone();
            let k = k.clone();
            handle.spawn(async move {
                while rx.changed().await.is_ok() {
                    let p = rx.borrow_and_update().clone();
                    let json = serde_json::to_vec(&p).unwrap_or_default();
                    if let Err(e) = store.put(&k, json.into()).await {
                        tracing::warn!(key = %k, "cluster: cannot write progress: {e}");
                    }
                }
            });
            progress.push(tx);
        }

        let dropped: Vec<Arc<AtomicU64>> = specs.iter().map(|_| Arc::default()).collect();
        let outlets = specs
            .iter()
            .zip(&dropped)
            .map(|(s, dropped)| {
                (s.audio == s.channel).then(|| {
                    let (tx, rx) = mpsc::channel(AUDIO_QUEUE);
                    let subject = audio_subject(meeting, &s.channel);
                    handle.spawn(publish_audio(client.clone(), subject, session.clone(), rx));
                    Outlet {
                        tx,
                        next: Arc::default(),
                        dropped: dropped.clone(),
                        handle: handle.clone(),
                    }
                })
            })
            .collect();
        let status = Arc::new(RoomStatus {
            nats: endpoint.shown(),
            here: here.as_ref().map(|h| h.name.clone()),
            views: specs
                .iter()
                .map(|s| {
                    Mutex::new(ChannelView {
                        channel: s.channel.clone(),
                        ..Default::default()
                    })
                })
                .collect(),
            dropped,
            edges: Arc::default(),
        });

        let (tx, mut rx) = mpsc::channel::<(usize, Published)>(EVENTS_QUEUE);
        let names: Vec<String> = specs.iter().map(|s| s.channel.clone()).collect();
        handle.spawn(take_events(
            buckets.js.clone(),
            events_subject(meeting, "*"),
            names,
            session.clone(),
            tx,
            reconnects.clone(),
        ));
        let view = status.clone();
        let events = std::thread::Builder::new()
            .name("tolk-room-events".into())
            .spawn(move || {
                let mut takeovers: Vec<Takeover> =
                    progress.iter().map(|_| Takeover::default()).collect();
                while let Some((i, p)) = rx.blocking_recv() {
                    let t = &mut takeovers[i];
                    let Some(event) = p.event else {
                        // Numbers count from the channel's worker only.
                        if let (Some(s), true) = (p.stats, t.worker.as_deref() == Some(&p.worker)) {
                            if let Ok(mut v) = view.views[i].lock() {
                                v.take_stats(s);
                            }
                        }
                        continue;
                    };
                    let handovers = t.handovers;
                    if !t.accept(&p.worker, p.epoch, &event) {
                        if let Ok(mut v) = view.views[i].lock() {
                            v.refused = t.refused;
                        }
                        continue;
                    }
                    let is_final = matches!(event, Event::Final { .. });
                    if let Ok(mut v) = view.views[i].lock() {
                        if t.handovers > handovers {
                            v.handed_over();
                        }
                        v.worker = t.worker.clone();
                        v.handovers = t.handovers;
                        v.refused = t.refused;
                    }
                    if is_final {
                        let _ = progress[i].send(Progress {
                            session: session.clone(),
                            end: t.end,
                            next_segment: t.next_segment,
                        });
                    }
                    sink(i, Emitted { event, at: p.at });
                }
            })
            .map_err(|e| ClusterError::Other(format!("cannot start the events thread: {e}")))?;
        let here = here.map(|h| {
            let (stop, stopped) = oneshot::channel::<()>();
            let endpoint = endpoint.clone();
            let task = handle.spawn(async move {
                let stopped = async {
                    let _ = stopped.await;
                };
                let run =
                    super::worker::run_here(&endpoint, h.name, h.model, h.decoding, h.max, stopped);
                if let Err(e) = run.await {
                    tracing::error!("cluster: this server's own decoding stopped: {e}");
                }
            });
            (stop, task)
        });
        Ok(Room {
            status,
            outlets,
            offers,
            channels: buckets.channels,
            keys,
            _events: events,
            reoffer,
            here: Mutex::new(here),
            js: buckets.js,
            meeting: meeting.to_string(),
            reconnects,
            captions: Mutex::new(Vec::new()),
        })
    }

    /// Publishes what `audience` gets, for edges (`tolk edge`): see [`super::edge`].
    pub(crate) fn forward_captions(
        &self,
        audience: Arc<crate::server::listener::Audience>,
        handle: &Handle,
    ) {
        let forward = handle.spawn(super::edge::forward(
            self.js.clone(),
            self.meeting.clone(),
            audience,
            self.reconnects.clone(),
        ));
        let edges = handle.spawn(super::edge::watch_edges(
            self.js.clone(),
            self.meeting.clone(),
            self.status.edges.clone(),
        ));
        if let Ok(mut c) = self.captions.lock() {
            for old in c.drain(..) {
                old.abort();
            }
            c.extend([forward, edges]);
        }
    }

    /// New prompt terms for every channel (in the meeting's order; a new session's topic):
    /// each channel's offer is put again with them, and the worker that holds it primes its
    /// next decodes with them (a worker compares the offer every [`super::RENEW`]).
    pub async fn set_hints(&self, hints: Vec<Vec<String>>) -> Result<(), ClusterError> {
        let now: Vec<Spec> = match self.offers.lock() {
            Ok(mut offers) => {
                for (s, h) in offers.iter_mut().zip(hints) {
                    s.hints = h;
                }
                offers.clone()
            }
            Err(_) => return Err(ClusterError::Other("the offers' lock is poisoned".into())),
        };
        for (s, k) in now.iter().zip(&self.keys) {
            let json = serde_json::to_vec(s).unwrap_or_default();
            self.channels.put(k, json.into()).await.map_err(|e| {
                ClusterError::Other(format!("cannot offer `{}` again: {e}", s.channel))
            })?;
        }
        Ok(())
    }

    /// Where channel `i`'s audio goes (`None` for a channel that decodes another's audio).
    pub fn outlet(&self, i: usize) -> Option<Outlet> {
        self.outlets.get(i).cloned().flatten()
    }

    /// The meeting is over: its channels are no longer offered (workers let them go), its
    /// captions for edges are purged from NATS, and this server's own decoding stops (its
    /// leases given back).
    pub async fn close(&self) {
        self.reoffer.abort();
        let tasks: Vec<_> = self
            .captions
            .lock()
            .map(|mut c| c.drain(..).collect())
            .unwrap_or_default();
        if !tasks.is_empty() {
            tasks.iter().for_each(|t| t.abort());
            // The meeting's captions are not kept for edges beyond it.
            if let Ok(stream) = self.js.get_stream(super::edge::CAPTIONS_STREAM).await {
                let subjects = format!("tolk.{}.captions.>", self.meeting);
                if let Err(e) = stream.purge().filter(subjects).await {
                    tracing::warn!("cluster: the meeting's captions for edges not purged: {e}");
                }
            }
        }
        for k in &self.keys {
            let _ = self.channels.delete(k).await;
        }
        let here = self.here.lock().ok().and_then(|mut h| h.take());
        if let Some((stop, task)) = here {
            let _ = stop.send(());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
        }
    }
}

async fn publish_audio(
    client: async_nats::Client,
    subject: String,
    session: String,
    mut rx: mpsc::Receiver<Frame>,
) {
    while let Some(frame) = rx.recv().await {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_SESSION, session.as_str());
        let payload = match frame {
            Frame::Audio { at, pcm } => {
                headers.insert(HEADER_AT, at.to_string().as_str());
                pcm
            }
            Frame::End => {
                headers.insert(HEADER_END, "1");
                Vec::new()
            }
        };
        if let Err(e) = client
            .publish_with_headers(subject.clone(), headers, payload.into())
            .await
        {
            tracing::warn!(%subject, "cluster: cannot publish audio: {e}");
        }
    }
}

/// Workers' events, by channel, onto the events thread's queue: from the events stream,
/// new ones at first; after a reconnection all it holds again (the takeover knows each
/// final already taken), so what workers published meanwhile is not lost.
async fn take_events(
    js: async_nats::jetstream::Context,
    subject: String,
    names: Vec<String>,
    session: String,
    tx: mpsc::Sender<(usize, Published)>,
    mut reconnects: watch::Receiver<u64>,
) {
    use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
    let mut deliver = DeliverPolicy::New;
    loop {
        reconnects.borrow_and_update();
        let opened = async {
            js.get_stream(EVENTS_STREAM)
                .await
                .map_err(|e| e.to_string())?
                .create_consumer(OrderedConfig {
                    filter_subject: subject.clone(),
                    deliver_policy: deliver,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?
                .messages()
                .await
                .map_err(|e| e.to_string())
        };
        let mut messages = match opened.await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("cluster: the events consumer: {e}; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        deliver = DeliverPolicy::All;
        loop {
            let m = tokio::select! {
                m = super::next_message(&mut messages) => match m {
                    Ok(m) => m,
                    Err(()) => break,
                },
                _ = reconnects.changed() => break,
            };
            let m = match m {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!("cluster: the events consumer failed ({e}): opened again");
                    break;
                }
                None => break,
            };
            let channel = m.subject.as_str().rsplit('.').next().unwrap_or_default();
            let Some(i) = names.iter().position(|n| n == channel) else {
                continue;
            };
            match serde_json::from_slice::<Published>(&m.payload) {
                Ok(p) if p.session == session => {
                    if tx.send((i, p)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {} // a worker still decoding an earlier run of this meeting
                Err(e) => tracing::warn!(channel, "cluster: an event that does not parse: {e}"),
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
