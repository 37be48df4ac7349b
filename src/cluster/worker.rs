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
use std::time::Instant;

use async_nats::jetstream::consumer;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::audio::SAMPLE_RATE;
use crate::stream::decoder::{Decoding, Emitted};
use crate::stream::lang::LanguageMode;
use crate::stream::policy::{Event, PolicyConfig};
use crate::stream::scheduler::{Channel, ChannelId, ChannelSpec, Engine};
use crate::transcribe::Model;

use super::{
    audio_subject, connect, continued, events_subject, from_pcm, setup, Buckets, ClusterError,
    Progress, Published, Spec, AUDIO_STREAM, HEADER_AT, HEADER_END, RENEW,
};

/// Events waiting to be published.
pub const OUT_QUEUE: usize = 1024;

/// Longest gap in a channel's audio filled with silence (longer ones: the audio jumps, and
/// the engine's clock would not follow; the stream's retention is shorter anyway).
const MAX_GAP_SECS: u64 = 30;

pub struct WorkerOptions {
    pub nats: String,
    pub credentials: Option<PathBuf>,
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
    let client = connect(
        &options.nats,
        options.credentials.as_deref(),
        &format!("tolk worker {}", options.name),
    )
    .await?;
    let buckets = setup(client.clone()).await?;
    let model_path = options.model.clone();
    let threads = options.threads.max(1);
    let decoding = Decoding::threads(threads);
    let (model, capacity) = tokio::task::spawn_blocking(move || {
        let model = Arc::new(Model::load(&model_path)?);
        let capacity = crate::stream::engine::calibrate(&model, decoding)?;
        Ok::<_, crate::transcribe::TranscribeError>((model, capacity))
    })
    .await
    .map_err(|e| ClusterError::Other(format!("start-up failed: {e}")))?
    .map_err(|e| ClusterError::Other(e.to_string()))?;
    let max = options.max_channels.unwrap_or(capacity.full).max(1);
    tracing::info!(
        worker = %options.name,
        max,
        decode_4s = capacity.decode_4s,
        "worker ready: takes up to {max} channel(s)"
    );
    println!("worker {} ready: up to {max} channel(s)", options.name);

    let (out_tx, mut out_rx) = mpsc::channel::<(String, Vec<u8>)>(OUT_QUEUE);
    let publisher = client.clone();
    tokio::spawn(async move {
        while let Some((subject, bytes)) = out_rx.recv().await {
            if let Err(e) = publisher.publish(subject, bytes.into()).await {
                tracing::warn!("cluster: cannot publish an event: {e}");
            }
        }
    });
    let routes: Routes = Arc::default();
    let sink_routes = routes.clone();
    let name = options.name.clone();
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
                        worker: name.clone(),
                        at: e.at + route.offset,
                        event: continued(e.event, route.offset, route.segments),
                    },
                )
            };
            let is_final = matches!(published.event, Event::Final { .. });
            let Ok(bytes) = serde_json::to_vec(&published) else {
                return;
            };
            if is_final {
                let _ = out_tx.blocking_send((subject, bytes));
            } else {
                let _ = out_tx.try_send((subject, bytes));
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
        renew(&buckets, &options.name, &mut held, &routes).await;
        let offered = offered(&buckets).await;
        // Withdrawn channels (or offered anew by a restarted room server): released once
        // everything they had is emitted.
        for (k, h) in held.iter_mut() {
            if !offered.iter().any(|(key, spec)| key == k && spec == &h.spec) {
                h.withdrawn = true;
                h.channel.finish();
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
        // Take a free channel: one per tick, later the more this worker holds, so that
        // several workers starting together share the channels.
        let wait = RENEW * u32::try_from(held.len()).unwrap_or(u32::MAX);
        if held.len() < max && last_take.elapsed() >= wait {
            for (k, spec) in &offered {
                if held.contains_key(k) {
                    continue;
                }
                let Ok(revision) = buckets
                    .leases
                    .create(k, options.name.clone().into())
                    .await
                else {
                    continue; // someone holds it
                };
                match take(&buckets, &engine, &routes, spec, k).await {
                    Ok((channel, feeder)) => {
                        tracing::info!(key = %k, worker = %options.name, "cluster: channel taken");
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

/// Renews every lease; a channel whose lease cannot be renewed is dropped at once.
async fn renew(buckets: &Buckets, name: &str, held: &mut HashMap<String, Held>, routes: &Routes) {
    let mut lost = Vec::new();
    for (k, h) in held.iter_mut() {
        match buckets
            .leases
            .update(k, name.to_string().into(), h.revision)
            .await
        {
            Ok(r) => h.revision = r,
            Err(e) => {
                tracing::warn!(key = %k, "cluster: lease lost ({e}): channel dropped");
                lost.push(k.clone());
            }
        }
    }
    for k in lost {
        if let Some(h) = held.remove(&k) {
            stop(&h, routes);
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
            },
        );
    }
    let stream = buckets
        .js
        .get_stream(AUDIO_STREAM)
        .await
        .map_err(|e| ClusterError::Other(format!("the audio stream: {e}")))?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: audio_subject(&spec.meeting, &spec.audio),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| ClusterError::Other(format!("the audio consumer: {e}")))?;
    let messages = consumer
        .messages()
        .await
        .map_err(|e| ClusterError::Other(format!("the audio consumer: {e}")))?;
    let feeder = tokio::spawn(feed(messages, channel.clone(), start, routes.clone()));
    Ok((channel, feeder))
}

/// Feeds the engine from the retained audio on: samples before `start` (the record has
/// them) skipped, gaps filled with silence, the end passed on. Audio the stream no longer
/// holds (older than its retention) is not there to decode: the engine's clock starts at
/// the first sample there is, and the gap is logged.
async fn feed(mut messages: consumer::pull::Ordered, channel: Channel, start: u64, routes: Routes) {
    let mut next = start;
    let mut first = true;
    while let Some(m) = messages.next().await {
        let Ok(m) = m else { continue };
        let headers = m.headers.clone().unwrap_or_default();
        if headers.get(HEADER_END).is_some() {
            channel.finish();
            return;
        }
        let Some(at) = headers
            .get(HEADER_AT)
            .and_then(|v| v.as_str().parse::<u64>().ok())
        else {
            continue;
        };
        let mut samples = from_pcm(&m.payload);
        let end = at + samples.len() as u64;
        if end <= next {
            continue;
        }
        if first && at > next {
            tracing::warn!(
                channel = %channel.id(),
                "cluster: {:.1} s of the channel's audio were no longer retained",
                (at - next) as f64 / f64::from(SAMPLE_RATE)
            );
            if let Ok(mut r) = routes.lock() {
                if let Some(route) = r.get_mut(&channel.id()) {
                    route.offset = at as f64 / f64::from(SAMPLE_RATE);
                }
            }
            next = at;
        }
        first = false;
        if at > next {
            let gap = (at - next).min(MAX_GAP_SECS * u64::from(SAMPLE_RATE));
            let _ = channel.push_audio(&vec![0.0; gap as usize]);
        } else {
            samples.drain(..(next - at) as usize);
        }
        next = end;
        if channel.push_audio(&samples).is_err() {
            return;
        }
    }
}

/// The worker's default name: host and process id.
pub fn default_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into());
    let host: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    format!("{host}-{}", std::process::id())
}
