//! `tolk worker`: decodes channels a room server offers over NATS, as many as this machine
//! can caption fully (or `max_channels`), each under a lease (see the module above).
//!
//! One engine (the decoder thread and its scheduler, as `tolk serve` runs them) holds every
//! channel the worker has taken. Each channel's audio comes from an ordered JetStream
//! consumer starting at the record's end ([`super::Progress`]); its events leave through
//! [`OUT_QUEUE`] (a partial is dropped when it is full, a final waits).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, kv};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::audio::SAMPLE_RATE;
use crate::stream::decoder::{Decoding, Emitted};
use crate::stream::lang::LanguageMode;
use crate::stream::policy::{Event, PolicyConfig};
use crate::stream::scheduler::{Channel, ChannelId, ChannelSpec, Engine};
use crate::transcribe::Model;

use super::resume::{Resume, Step};
use super::{
    audio_subject, connect, continued, events_subject, from_pcm, setup, Buckets, ClusterError,
    Endpoint, Progress, Published, Spec, WorkerStats, AUDIO_STREAM, HEADER_AT, HEADER_END,
    HEADER_SESSION, RENEW,
};

/// Events waiting to be published.
pub const OUT_QUEUE: usize = 1024;

/// An event on its way: subject, JSON, and whether it must reach the events stream (finals
/// and revisions) or may be lost (partials and numbers: the next ones replace them).
type Out = (String, Vec<u8>, bool);

pub struct WorkerOptions {
    pub nats: Endpoint,
    pub model: PathBuf,
    pub threads: usize,
    /// Channels to hold at most (default: what the calibration says this machine captions
    /// fully, at least one).
    pub max_channels: Option<usize>,
    /// This worker's name in leases and events (default: host and process id).
    pub name: String,
}

/// Where a channel's events go, and how its times continue the channel's.
struct Route {
    subject: String,
    /// Channel seconds of the first sample fed to the engine.
    offset: f64,
    segments: u64,
    /// False once the lease is lost: nothing more is published.
    live: bool,
    /// Seconds of the channel's audio that never reached this worker.
    missing_secs: f64,
    /// The room server's run, and this worker's lease revision on the channel.
    session: String,
    epoch: u64,
}

type Routes = Arc<Mutex<HashMap<ChannelId, Route>>>;

struct Held {
    spec: Spec,
    channel: Channel,
    revision: u64,
    feeder: tokio::task::JoinHandle<()>,
    /// The channel is no longer offered (its audio ended); released once emitted.
    withdrawn: bool,
}

/// Runs until `shutdown` resolves; leases are given back on the way out.
pub async fn run(
    options: WorkerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ClusterError> {
    let joined = join(&options.nats, &format!("tolk worker {}", options.name)).await?;
    let model_path = options.model.clone();
    let threads = options.threads.max(1);
    let decoding = Decoding::threads(threads);
    // Calibrated only when the number of channels is the machine's to say.
    let given = options.max_channels;
    let (model, max) = tokio::task::spawn_blocking(move || {
        let model = Arc::new(Model::load(&model_path)?);
        let max = match given {
            Some(n) => n,
            None => {
                let capacity = crate::stream::engine::calibrate(&model, decoding)?;
                tracing::info!(decode_4s = capacity.decode_4s, "worker calibrated");
                capacity.full
            }
        };
        Ok::<_, crate::transcribe::TranscribeError>((model, max.max(1)))
    })
    .await
    .map_err(|e| ClusterError::Other(format!("start-up failed: {e}")))?
    .map_err(|e| ClusterError::Other(e.to_string()))?;
    tracing::info!(
        worker = %options.name,
        max,
        "worker ready: takes up to {max} channel(s)"
    );
    println!("worker {} ready: up to {max} channel(s)", options.name);
    serve(joined, model, decoding, max, options.name, shutdown).await
}

/// The room server's own share of the decoding (`[cluster] decode_here`): a worker in its
/// process, with the model it has loaded and calibrated, taking up to `max` channels under
/// leases like any other (so that a channel it holds fails over the same way).
pub async fn run_here(
    nats: &Endpoint,
    name: String,
    model: Arc<Model>,
    decoding: Decoding,
    max: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ClusterError> {
    let joined = join(nats, &format!("tolk worker {name}")).await?;
    tracing::info!(worker = %name, max, "cluster: this server decodes up to {max} channel(s) itself");
    serve(joined, model, decoding, max, name, shutdown).await
}

/// A connection to NATS with the streams and buckets set up.
struct Joined {
    client: async_nats::Client,
    reconnects: watch::Receiver<u64>,
    buckets: Buckets,
}

async fn join(nats: &Endpoint, label: &str) -> Result<Joined, ClusterError> {
    let (client, reconnects) = connect(nats, label).await?;
    let buckets = setup(client.clone()).await?;
    Ok(Joined {
        client,
        reconnects,
        buckets,
    })
}

/// Takes channels and decodes them until `shutdown` resolves.
async fn serve(
    joined: Joined,
    model: Arc<Model>,
    decoding: Decoding,
    max: usize,
    name: String,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ClusterError> {
    let Joined {
        client,
        mut reconnects,
        mut buckets,
    } = joined;
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(OUT_QUEUE);
    let publisher = client.clone();
    let js = buckets.js.clone();
    tokio::spawn(async move {
        while let Some((subject, bytes, kept)) = out_rx.recv().await {
            if !kept {
                if let Err(e) = publisher.publish(subject, bytes.into()).await {
                    tracing::debug!("cluster: cannot publish: {e}");
                }
                continue;
            }
            // A final or a revision: published until the events stream has it (the room
            // server takes a final published twice once).
            loop {
                match js.publish(subject.clone(), bytes.clone().into()).await {
                    Ok(ack) => match ack.await {
                        Ok(_) => break,
                        Err(e) => tracing::warn!("cluster: a final not acknowledged ({e}): again"),
                    },
                    Err(e) => tracing::warn!("cluster: cannot publish a final ({e}): again"),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
    let routes: Routes = Arc::default();
    let sink_routes = routes.clone();
    let stats_tx = out_tx.clone();
    let sink_name = name.clone();
    let engine = Engine::start(
        model,
        decoding,
        Box::new(move |id, e: Emitted| {
            if matches!(e.event, Event::Trace(_)) {
                return;
            }
            let (subject, published) = {
                let Ok(r) = sink_routes.lock() else { return };
                let Some(route) = r.get(&id).filter(|r| r.live) else {
                    return;
                };
                (
                    route.subject.clone(),
                    Published {
                        worker: sink_name.clone(),
                        session: route.session.clone(),
                        epoch: route.epoch,
                        at: e.at + route.offset,
                        event: Some(continued(e.event, route.offset, route.segments)),
                        stats: None,
                    },
                )
            };
            let kept = matches!(
                published.event,
                Some(Event::Final { .. } | Event::Revised(_))
            );
            let Ok(bytes) = serde_json::to_vec(&published) else {
                return;
            };
            if kept {
                let _ = out_tx.blocking_send((subject, bytes, true));
            } else {
                let _ = out_tx.try_send((subject, bytes, false));
            }
        }),
    )
    .map_err(|e| ClusterError::Other(e.to_string()))?;

    let mut held: HashMap<String, Held> = HashMap::new();
    let mut last_take = Instant::now() - RENEW * 10;
    let mut tick = tokio::time::interval(RENEW);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        if reconnects.has_changed().unwrap_or(false) {
            reconnects.borrow_and_update();
            match setup(client.clone()).await {
                Ok(b) => buckets = b,
                Err(e) => tracing::warn!("cluster: after reconnecting: {e}"),
            }
        }
        renew(&buckets, &name, &mut held, &routes).await;
        publish_stats(&held, &routes, &name, &stats_tx);
        let offered = offered(&buckets).await;
        // Withdrawn channels (or offered anew by a restarted room server): released once
        // everything they had is emitted.
        for (k, h) in held.iter_mut() {
            match offered
                .iter()
                .find(|(key, spec)| key == k && same_channel(spec, &h.spec))
            {
                // A new session's topic: the next decodes are primed with its terms.
                Some((_, spec)) if spec.hints != h.spec.hints => {
                    h.channel.set_hints(spec.hints.clone());
                    h.spec.hints = spec.hints.clone();
                    tracing::info!(key = %k, terms = spec.hints.len(), "cluster: prompt terms changed");
                }
                Some(_) => {}
                None => {
                    h.withdrawn = true;
                    h.channel.finish();
                }
            }
        }
        let done: Vec<String> = held
            .iter()
            .filter(|(_, h)| h.withdrawn && h.channel.stats().is_none_or(|s| s.done))
            .map(|(k, _)| k.clone())
            .collect();
        for k in done {
            release(&buckets, &mut held, &routes, &k).await;
            tracing::info!(key = %k, "cluster: channel ended, lease given back");
        }
        // Take a free channel: one new channel per tick, later the more this worker holds,
        // so that several workers starting together share them; a channel whose worker is
        // gone (it has a record) at once, every one this worker has room for.
        for (k, spec) in &offered {
            if held.len() >= max {
                break;
            }
            if held.contains_key(k) {
                continue;
            }
            let orphan = has_record(&buckets, k, spec).await;
            let wait = RENEW * u32::try_from(held.len()).unwrap_or(u32::MAX);
            if !orphan && last_take.elapsed() < wait {
                continue;
            }
            let Ok(revision) = buckets.leases.create(k, name.clone().into()).await else {
                continue; // someone holds it
            };
            match take(
                &buckets,
                &engine,
                &routes,
                spec,
                k,
                revision,
                reconnects.clone(),
            )
            .await
            {
                Ok((channel, feeder)) => {
                    tracing::info!(key = %k, worker = %name, "cluster: channel taken");
                    held.insert(
                        k.clone(),
                        Held {
                            spec: spec.clone(),
                            channel,
                            revision,
                            feeder,
                            withdrawn: false,
                        },
                    );
                    last_take = Instant::now();
                }
                Err(e) => {
                    tracing::warn!(key = %k, "cluster: cannot take the channel: {e}");
                    let _ = buckets.leases.delete(k).await;
                }
            }
            if !orphan {
                break;
            }
        }
    }
    let keys: Vec<String> = held.keys().cloned().collect();
    for k in keys {
        release(&buckets, &mut held, &routes, &k).await;
    }
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .ok();
    Ok(())
}

/// The same channel offered (by the same run of the room server): all but the prompt terms,
/// which change with the session's topic.
fn same_channel(a: &Spec, b: &Spec) -> bool {
    Spec {
        hints: Vec::new(),
        ..a.clone()
    } == Spec {
        hints: Vec::new(),
        ..b.clone()
    }
}

/// Renews every lease. A channel whose lease another worker holds now is dropped at once;
/// one whose lease is gone (it expired while NATS was out of reach, or a restarted
/// nats-server lost it) is taken again if no one else has; while NATS cannot be asked, the
/// worker goes on decoding (its events wait in the client until it reconnects, and the
/// room server takes them only if no other worker's came first).
async fn renew(buckets: &Buckets, name: &str, held: &mut HashMap<String, Held>, routes: &Routes) {
    let mut lost = Vec::new();
    for (k, h) in held.iter_mut() {
        let me: bytes::Bytes = name.to_string().into();
        match buckets.leases.update(k, me.clone(), h.revision).await {
            Ok(r) => {
                h.revision = r;
                continue;
            }
            Err(e) => tracing::debug!(key = %k, "cluster: lease not renewed: {e}"),
        }
        match buckets.leases.entry(k.clone()).await {
            Ok(Some(e)) if e.operation == kv::Operation::Put && e.value != me => {
                tracing::warn!(key = %k, holder = ?String::from_utf8_lossy(&e.value), "cluster: another worker holds the channel now: dropped");
                lost.push(k.clone());
            }
            Ok(Some(e)) if e.operation == kv::Operation::Put => h.revision = e.revision,
            Ok(_) => match buckets.leases.create(k, me).await {
                Ok(r) => {
                    tracing::info!(key = %k, "cluster: lease taken again");
                    h.revision = r;
                    if let Ok(mut routes) = routes.lock() {
                        if let Some(route) = routes.get_mut(&h.channel.id()) {
                            route.epoch = r;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(key = %k, "cluster: lease lost ({e}): channel dropped");
                    lost.push(k.clone());
                }
            },
            Err(e) => {
                tracing::warn!(key = %k, "cluster: cannot renew the lease now ({e}); decoding on")
            }
        }
    }
    for k in lost {
        if let Some(h) = held.remove(&k) {
            stop(&h, routes);
        }
    }
}

/// Each held channel's numbers, for the organizer (dropped when the queue is full: the next
/// ones follow in [`RENEW`]).
fn publish_stats(
    held: &HashMap<String, Held>,
    routes: &Routes,
    name: &str,
    tx: &mpsc::Sender<Out>,
) {
    let Ok(r) = routes.lock() else { return };
    for h in held.values() {
        let (Some(s), Some(route)) = (h.channel.stats(), r.get(&h.channel.id())) else {
            continue;
        };
        let p = Published {
            worker: name.to_string(),
            session: route.session.clone(),
            epoch: route.epoch,
            at: route.offset + s.audio_secs,
            event: None,
            stats: Some(WorkerStats {
                lag: s.lag,
                untranscribed_secs: s.untranscribed_secs,
                missing_secs: route.missing_secs,
            }),
        };
        if let Ok(bytes) = serde_json::to_vec(&p) {
            let _ = tx.try_send((route.subject.clone(), bytes, false));
        }
    }
}

fn stop(h: &Held, routes: &Routes) {
    if let Ok(mut r) = routes.lock() {
        if let Some(route) = r.get_mut(&h.channel.id()) {
            route.live = false;
        }
    }
    h.feeder.abort();
    h.channel.finish();
}

async fn release(buckets: &Buckets, held: &mut HashMap<String, Held>, routes: &Routes, k: &str) {
    if let Some(h) = held.remove(k) {
        stop(&h, routes);
        let _ = buckets.leases.delete(k).await;
    }
}

/// Whether the channel has a record in this run: a worker decoded it and is gone.
async fn has_record(buckets: &Buckets, key: &str, spec: &Spec) -> bool {
    match buckets.progress.get(key).await {
        Ok(Some(b)) => serde_json::from_slice::<Progress>(&b)
            .is_ok_and(|p| p.session == spec.session && p.next_segment > 0),
        _ => false,
    }
}

/// The channels offered now, by key.
async fn offered(buckets: &Buckets) -> Vec<(String, Spec)> {
    let mut out = Vec::new();
    let Ok(mut keys) = buckets.channels.keys().await else {
        return out;
    };
    let mut names = Vec::new();
    while let Some(Ok(k)) = keys.next().await {
        names.push(k);
    }
    for k in names {
        if let Ok(Some(bytes)) = buckets.channels.get(&k).await {
            if let Ok(spec) = serde_json::from_slice::<Spec>(&bytes) {
                out.push((k, spec));
            }
        }
    }
    out.sort_by(|a, b| (!a.1.floor, &a.0).cmp(&(!b.1.floor, &b.0)));
    out
}

/// Opens the channel on the engine and starts feeding it from the record's end.
async fn take(
    buckets: &Buckets,
    engine: &Engine,
    routes: &Routes,
    spec: &Spec,
    key: &str,
    epoch: u64,
    reconnects: watch::Receiver<u64>,
) -> Result<(Channel, tokio::task::JoinHandle<()>), ClusterError> {
    let progress: Progress = match buckets.progress.get(key).await {
        Ok(Some(b)) => serde_json::from_slice(&b).unwrap_or_default(),
        _ => Progress::default(),
    };
    // Another run's progress (a room server restarted): this run's record starts at 0.
    let progress = if progress.session == spec.session {
        progress
    } else {
        Progress::default()
    };
    let channel = engine
        .open(ChannelSpec {
            name: spec.channel.clone(),
            language: match spec.language.as_str() {
                "auto" => LanguageMode::Detect(spec.allowed.clone()),
                code => LanguageMode::Fixed(code.to_string()),
            },
            floor: spec.floor,
            policy: if spec.translate {
                PolicyConfig::default().translating()
            } else {
                PolicyConfig::default()
            },
            hints: spec.hints.clone(),
            translate: spec.translate,
            revise: spec.revise,
            fault: None,
        })
        .map_err(|e| ClusterError::Other(e.to_string()))?;
    let start = (progress.end * f64::from(SAMPLE_RATE)).round() as u64;
    if let Ok(mut r) = routes.lock() {
        r.insert(
            channel.id(),
            Route {
                subject: events_subject(&spec.meeting, &spec.channel),
                offset: start as f64 / f64::from(SAMPLE_RATE),
                segments: progress.next_segment,
                live: true,
                missing_secs: 0.0,
                session: spec.session.clone(),
                epoch,
            },
        );
    }
    let feeder = tokio::spawn(feed(
        buckets.js.clone(),
        audio_subject(&spec.meeting, &spec.audio),
        spec.session.clone(),
        channel.clone(),
        start,
        routes.clone(),
        reconnects,
    ));
    Ok((channel, feeder))
}

/// The channel's retained audio, from the oldest sample the stream holds.
async fn open_audio(
    js: &jetstream::Context,
    subject: &str,
) -> Result<consumer::pull::Ordered, String> {
    let stream = js
        .get_stream(AUDIO_STREAM)
        .await
        .map_err(|e| format!("the audio stream: {e}"))?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject.to_string(),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("the audio consumer: {e}"))?;
    consumer
        .messages()
        .await
        .map_err(|e| format!("the audio consumer: {e}"))
}

/// Feeds the engine from the retained audio on: samples before `start` (the record has
/// them) skipped, gaps filled with silence, the end passed on. Audio the stream no longer
/// holds (older than its retention, or lost with a restarted nats-server) is not there to
/// decode: at first the engine's clock starts at the first sample there is; later the gap
/// is filled with silence; either way it is logged. When the consumer fails (nats-server
/// restarted) it is opened again: every sample is known by its index, so none is fed twice.
async fn feed(
    js: jetstream::Context,
    subject: String,
    session: String,
    channel: Channel,
    start: u64,
    routes: Routes,
    mut reconnects: watch::Receiver<u64>,
) {
    let mut resume = Resume::new(&session, start);
    loop {
        let mut messages = match open_audio(&js, &subject).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%subject, "cluster: {e}; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        reconnects.borrow_and_update();
        loop {
            // After a reconnection the consumer may be gone with a restarted nats-server:
            // opened again at once rather than after its heartbeats fail.
            let m = tokio::select! {
                m = super::next_message(&mut messages) => match m {
                    Ok(m) => m,
                    Err(()) => break,
                },
                _ = reconnects.changed() => break,
            };
            let Some(m) = m else { break };
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(%subject, "cluster: the audio consumer failed ({e}): opened again");
                    break;
                }
            };
            let headers = m.headers.clone().unwrap_or_default();
            let at = headers
                .get(HEADER_AT)
                .and_then(|v| v.as_str().parse::<u64>().ok());
            let step = resume.frame(
                headers.get(HEADER_SESSION).map(|v| v.as_str()),
                headers.get(HEADER_END).is_some(),
                at,
                m.payload.len() / 2,
            );
            let (silence, from, missing, offset) = match step {
                Step::Skip => continue,
                Step::End => {
                    channel.finish();
                    return;
                }
                Step::Feed {
                    silence,
                    from,
                    missing,
                    offset,
                } => (silence, from, missing, offset),
            };
            if missing > 0.0 {
                tracing::warn!(%subject, "cluster: {missing:.1} s of the channel's audio never came (NATS out of reach, or older than its retention): not decoded");
            }
            if let Ok(mut r) = routes.lock() {
                if let Some(route) = r.get_mut(&channel.id()) {
                    route.missing_secs += missing;
                    if let Some(offset) = offset {
                        route.offset = offset;
                    }
                }
            }
            if silence > 0 {
                let _ = channel.push_audio(&vec![0.0; silence]);
            }
            let samples = from_pcm(&m.payload);
            if channel
                .push_audio(&samples[from.min(samples.len())..])
                .is_err()
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The worker's default name: host and process id.
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into());
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{host}-{}", std::process::id())
}
