//! Starting a meeting: everything that blocks — the model, the glossary, the archive, the
//! writer, the engine and each channel's source — one step each, in order.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::cluster::room::{Here, Room};
use crate::cluster::Spec;
use crate::glossary::{ChannelAnnotator, Glossary, GlossaryError};
use crate::stream::decoder::Decoding;
use crate::stream::lang::LanguageMode;
use crate::stream::policy::PolicyConfig;
use crate::stream::scheduler::{Channel, ChannelSpec, Engine, Fault};
use crate::transcribe::Model;

use super::archive::Archive;
use super::auth::KEY_TRIES_PER_MINUTE;
use super::config::{MeetingConfig, MeetingSection, SourceConfig};
use super::hub::Hub;
use super::listener::Audience;
use super::sink::{Sink, SinkChannel};
use super::source::{self, Feed, Source, Target};
use super::topic::{prompt_terms, Primed, Topic};
use super::wire::{self, ChannelInfo, ServerMessage};
use super::{limits, now_ms, pipeline, redact, App, ServeOptions, ServerError};

/// Everything that blocks at start: the model, the glossary, the archive, the threads.
pub(super) fn start(config: MeetingConfig, options: ServeOptions) -> Result<App, ServerError> {
    let m = &config.meeting;
    let model = Arc::new(Model::load(&options.model)?);
    let glossary = load_glossary(&config, &options)?;
    let archive = open_archive(m)?;
    let archive_sealed = archive.as_ref().is_some_and(|a| a.sealed());
    let channels = channel_infos(&config);
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
    let (writer, pipeline_stats, _writer) =
        pipeline::start(hub.clone(), archive.map(|a| (a, m.id.clone())))?;
    let last_event: Arc<Vec<AtomicU64>> =
        Arc::new(channels.iter().map(|_| AtomicU64::new(0)).collect());
    let injected: Vec<Vec<Injected>> = channels.iter().map(|c| injected_panic(&c.id)).collect();

    // The sink runs on the decoder thread: annotate (microseconds), then queue.
    let mut sink = Sink::new(
        sink_channels(&config, &time_base, &injected),
        glossary.clone(),
        redact::Redactor::new(&m.protected_names).map_err(ServerError::Meeting)?,
        last_event.clone(),
        writer.clone(),
    );
    let threads = m
        .threads
        .unwrap_or_else(crate::transcribe::default_threads)
        .max(1);
    let decoding = Decoding {
        threads,
        speed: options.simulate_speed,
    };
    // The engine's channels (none with a cluster), for a topic set as the meeting runs.
    let mut primed: Vec<Option<Channel>> = vec![None; config.channels.len()];
    let (engine, room, targets, capacity, fits) = match &config.cluster {
        None => {
            // What this machine can caption, timed before recognition starts (nothing else
            // decodes yet); said once the meeting has started, and to the organizer.
            let capacity = crate::stream::engine::calibrate(&model, decoding)?;
            let engine = Engine::start(
                model.clone(),
                decoding,
                Box::new(move |id, e| sink.on_event(id as usize, e)),
            )
            .map_err(|e| ServerError::Engine(e.to_string()))?;
            let opened = open_channels(
                &engine,
                &config,
                &model,
                &options,
                glossary.as_deref(),
                &injected,
            )?;
            let fits = capacity.fits(config.channels.len());
            let capacity = capacity.describe(config.channels.len());
            primed = opened.iter().cloned().map(Some).collect();
            let targets: Vec<Option<Target>> =
                opened.into_iter().map(|c| Some(Target::Local(c))).collect();
            (engine, None, targets, capacity, fits)
        }
        Some(cluster) => {
            // Workers decode, and this server as one of them (`decode_here`, by default what
            // its calibration says it captions fully); this engine holds no channel.
            let here = match cluster.decode_here {
                Some(n) => n,
                None => crate::stream::engine::calibrate(&model, decoding)?.full,
            };
            let engine = Engine::start(model.clone(), decoding, Box::new(|_, _| {}))
                .map_err(|e| ServerError::Engine(e.to_string()))?;
            let session = format!("{}-{}", super::now_ms(), std::process::id());
            let specs = cluster_specs(&config, &model, glossary.as_deref(), &session);
            let name = format!("room-{}", crate::cluster::worker::default_name());
            let room = Room::start(
                cluster,
                &m.id,
                specs,
                move |i, e| sink.on_event(i, e),
                (here > 0).then(|| Here {
                    model: model.clone(),
                    decoding,
                    max: here,
                    name: name.clone(),
                }),
                &tokio::runtime::Handle::current(),
            )
            .map_err(|e| ServerError::Meeting(format!("[cluster]: {e}")))?;
            let targets = (0..config.channels.len())
                .map(|i| room.outlet(i).map(Target::Remote))
                .collect();
            let here = match here {
                0 => "none here".to_string(),
                n => format!("up to {n} here (as {name})"),
            };
            let capacity = format!(
                "recognition on workers over NATS ({}), {here}: `tolk worker --nats URL` on each machine",
                cluster.endpoint().shown()
            );
            (engine, Some(room), targets, capacity, true)
        }
    };
    let stopped: Vec<source::Stopped> = targets.iter().map(|_| Default::default()).collect();
    let sources = start_sources(&config, targets, &stopped)?;
    // Said once the meeting has started (a meeting that cannot start says only why).
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
    // What listeners see of the meeting: as it started, off the record as the organizer
    // last switched it.
    let now = {
        let (base, pipeline, archived, downloads) = (
            meeting.clone(),
            pipeline_stats.clone(),
            !m.off_record,
            m.downloads,
        );
        move || {
            let off = !archived
                || pipeline
                    .off_record
                    .load(std::sync::atomic::Ordering::Relaxed);
            super::meeting_now(&base, off, downloads)
        }
    };
    let audience = Arc::new(Audience::new(
        hub.clone(),
        Box::new(now),
        m.pin.clone(),
        m.interpreter_token.clone(),
    ));
    if let Some(room) = &room {
        room.forward_captions(audience.clone(), &tokio::runtime::Handle::current());
    }
    Ok(App {
        hub,
        audience,
        meeting,
        engine,
        room,
        sources: std::sync::Mutex::new(sources),
        pipeline: pipeline_stats,
        writer,
        last_event,
        archive_path: (!m.off_record).then(|| m.archive.clone()),
        archive_sealed,
        meeting_id: m.id.clone(),
        organizer_token: options.organizer_token,
        downloads: m.downloads,
        stopped,
        key_failures: limits::RateLimit::new(KEY_TRIES_PER_MINUTE, 60_000),
        capacity,
        topic: Topic::new(
            m.topic.clone(),
            m.bias,
            glossary.clone(),
            model.clone(),
            config
                .channels
                .iter()
                .zip(primed)
                .map(|(c, channel)| Primed {
                    config: c.clone(),
                    translate: matches!(c.source, SourceConfig::Translate { .. }),
                    channel,
                })
                .collect(),
        ),
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

/// The meeting's glossary, its channels' languages prepared now (not on their first caption).
fn load_glossary(
    config: &MeetingConfig,
    options: &ServeOptions,
) -> Result<Option<Arc<Glossary>>, ServerError> {
    let Some(p) = &config.meeting.glossary else {
        return Ok(None);
    };
    let g = match &options.glossary_cache {
        Some(dir) => Glossary::load_cached(p, dir)?,
        None => Glossary::load(p)?,
    };
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
    Ok(Some(Arc::new(g)))
}

/// The archive, old finals purged after the meeting's retention; none off the record.
fn open_archive(m: &MeetingSection) -> Result<Option<Archive>, ServerError> {
    if m.off_record {
        return Ok(None);
    }
    let mut a = Archive::open(&m.archive)?;
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
    Ok(Some(a))
}

/// The channels as listeners are told of them.
fn channel_infos(config: &MeetingConfig) -> Vec<ChannelInfo> {
    config
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
        .collect()
}

/// The channels as the sink knows them: each annotated in its language with equivalents in
/// the others' (the interpreters'), its times after the archive's last.
fn sink_channels(
    config: &MeetingConfig,
    time_base: &[f64],
    injected: &[Vec<Injected>],
) -> Vec<SinkChannel> {
    let langs: Vec<String> = config.channels.iter().map(|c| c.language.clone()).collect();
    config
        .channels
        .iter()
        .zip(time_base)
        .zip(injected)
        .map(|((c, &time_base), injected)| SinkChannel {
            id: c.id.clone(),
            annotator: ChannelAnnotator::new(
                &c.language,
                matches!(c.source, SourceConfig::Translate { .. }),
                &langs,
                config.meeting.flags,
            ),
            time_base,
            panic_at: injected.iter().find_map(|i| match i {
                Injected::Sink(n) => Some(*n),
                Injected::Engine(_) => None,
            }),
        })
        .collect()
}

/// Opens every channel on the engine (a source feeds its own channel and those that
/// translate it, so all are opened before any source starts).
fn open_channels(
    engine: &Engine,
    config: &MeetingConfig,
    model: &Model,
    options: &ServeOptions,
    glossary: Option<&Glossary>,
    injected: &[Vec<Injected>],
) -> Result<Vec<Channel>, ServerError> {
    let mut opened = Vec::new();
    for (c, injected) in config.channels.iter().zip(injected) {
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
        let hints = prompt_terms(
            &config.meeting.topic,
            config.meeting.bias,
            c,
            translate,
            glossary,
            &|t| model.token_count(t),
        );
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
                revise: config.meeting.revise,
                fault: injected.iter().find_map(|i| match i {
                    Injected::Engine(f) => Some(*f),
                    Injected::Sink(_) => None,
                }),
            })
            .map_err(|e| fail(e.to_string()))?;
        opened.push(channel);
    }
    Ok(opened)
}

/// Starts each channel's source, feeding its channel and the channels that translate it
/// (a target of `None`: a channel workers decode from another's audio).
fn start_sources(
    config: &MeetingConfig,
    targets: Vec<Option<Target>>,
    stopped: &[source::Stopped],
) -> Result<Vec<Source>, ServerError> {
    let mut sources = Vec::new();
    for ((c, target), stop) in config.channels.iter().zip(&targets).zip(stopped) {
        let translations = config
            .channels
            .iter()
            .zip(&targets)
            .zip(stopped)
            .filter(|((t, _), _)| matches!(&t.source, SourceConfig::Translate { from } if from == &c.id))
            .filter_map(|((_, ch), s)| Some((ch.clone()?, s.clone())))
            .collect();
        let feed = match target {
            Some(target) => Feed::new((target.clone(), stop.clone()), translations),
            None => Feed::new_silent(),
        };
        sources.push(
            Source::start(&c.source, feed).map_err(|source| ServerError::Source {
                channel: c.id.clone(),
                source,
            })?,
        );
    }
    drop(targets);
    // A translation's audio ends when that of the channel it translates does.
    for (i, c) in config.channels.iter().enumerate() {
        if let SourceConfig::Translate { from } = &c.source {
            if let Some(j) = config.channels.iter().position(|o| &o.id == from) {
                sources[i].ended = sources[j].ended.clone();
            }
        }
    }
    Ok(sources)
}

/// The channels as workers are offered them: what each decodes, in which language.
fn cluster_specs(
    config: &MeetingConfig,
    model: &Model,
    glossary: Option<&Glossary>,
    session: &str,
) -> Vec<Spec> {
    config
        .channels
        .iter()
        .map(|c| {
            let (heard, translate) = match &c.source {
                SourceConfig::Translate { from } => (
                    config.channels.iter().find(|o| &o.id == from).unwrap_or(c),
                    true,
                ),
                _ => (c, false),
            };
            let hints = prompt_terms(
                &config.meeting.topic,
                config.meeting.bias,
                c,
                translate,
                glossary,
                &|t| model.token_count(t),
            );
            Spec {
                meeting: config.meeting.id.clone(),
                session: session.to_string(),
                channel: c.id.clone(),
                audio: heard.id.clone(),
                language: heard.language.clone(),
                allowed: heard.allowed.clone(),
                floor: c.floor,
                translate,
                revise: config.meeting.revise,
                hints,
            }
        })
        .collect()
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
