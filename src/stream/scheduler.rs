//! Several live channels on one model: the decoder thread and its scheduler.
//!
//! One OS thread, the *decoder thread*, owns every channel's [`Policy`] and `WhisperState`
//! (through a [`Decoder`]) and runs one decode at a time with all the Whisper threads:
//! whisper.cpp spin-waits, so two decodes at once on a small machine are slower than the same
//! two one after the other. The model is loaded once and shared ([`Arc<Model>`]).
//!
//! When the decoder is free it asks [`pick`] which channel goes next: the floor first (the
//! interpreters follow it), then the channel that has waited longest; a channel that has
//! waited more than [`STARVE_AFTER`] seconds goes before the floor, so a second channel is
//! slowed, never silenced — but never twice in a row: after a decode of another channel the
//! floor, if due, goes next, so with many booths the floor keeps every other decode and the
//! booths share the rest. A channel that waits is told how long (`Policy::waited`) and its
//! policy degrades (a wider step: fewer, longer decodes): lag stays bounded and is reported
//! per channel in seconds ([`ChannelStats::lag`]).
//!
//! Audio comes in from any thread ([`Channel::push_audio`]) into the channel's inbox, a
//! bounded buffer of [`INBOX_SECS`] seconds the decoder thread empties between decodes. If it
//! is full (the decoder thread stalled for that long) the oldest audio is dropped and replaced
//! by the same length of silence when it is taken, so media times stay true; the loss is
//! counted in [`ChannelStats::audio_lost_secs`]. Events go to the sink given to
//! [`Engine::start`], called on the decoder thread; it must not block (the server hands them
//! to bounded broadcast queues).
//!
//! A fault in one channel's recognition (a decode error, a panic in its policy or decoder)
//! restarts that channel only: a new policy and Whisper state, its times and segments going
//! on from where they were, the audio of the failed window lost, the fault counted in
//! [`ChannelStats::restarts`] and named in [`ChannelStats::last_fault`]. The other channels
//! do not notice. A panic in the sink loses that one event (counted in
//! [`ChannelStats::events_lost`], named in `last_fault`) and nothing else. Should the decoder
//! thread itself die (a panic or error outside any one channel), it is started again after a
//! pause ([`RESTART_PAUSE`], doubling while it keeps failing, at most
//! [`MAX_RESTART_PAUSE`]) with every open channel, its times going on; meanwhile
//! [`Engine::health`] says recognition is down, and why.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::decoder::{Decoder, Decoding, Emitted};
use super::lang::LanguageMode;
use super::policy::{Dropped, Event, Policy, PolicyConfig};
use super::revise::{Chunker, Outcome, Reviser, RevisionJob};
use crate::transcribe::{Model, TranscribeError};

/// Capacity of a channel's audio inbox, in seconds of audio.
pub const INBOX_SECS: usize = 30;

/// A channel waiting longer than this (seconds) is served before the floor.
pub const STARVE_AFTER: f64 = 4.0;

/// How long the decoder thread sleeps when nothing is due (it wakes at once on new audio).
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// The pause before the decoder thread is started again after it died; it doubles while the
/// thread keeps dying, up to [`MAX_RESTART_PAUSE`], and is back to this after
/// [`HEALTHY_AFTER`] without a fault.
pub const RESTART_PAUSE: Duration = Duration::from_secs(1);
pub const MAX_RESTART_PAUSE: Duration = Duration::from_secs(30);
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// A channel whose step has widened to this many times its policy's step is in the reduced
/// mode: decoded in pieces, without partials (the policy's own threshold).
pub use super::policy::REDUCED_AT;

/// Identifies a channel within an engine.
pub type ChannelId = u32;

/// What the scheduler knows of a channel with a decode due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ready {
    /// The floor (the speaker the room listens to) is served first.
    pub floor: bool,
    /// Seconds this channel has had a decode due.
    pub waited: f64,
}

/// The channel to decode next, as an index into `ready`: a starving channel (waited more
/// than [`STARVE_AFTER`]) first, then the floor, then the longest wait. `floor_turn`: the
/// last decode was not the floor's, so the floor (if due) goes now, starving channels or not
/// (with eight channels, seven starving booths took turns ahead of the floor, whose captions
/// came 16 s late).
pub fn pick(ready: &[Ready], floor_turn: bool) -> Option<usize> {
    if floor_turn {
        if let Some(f) = ready.iter().position(|r| r.floor) {
            return Some(f);
        }
    }
    let rank = |r: &Ready| {
        if r.waited > STARVE_AFTER {
            0
        } else if r.floor {
            1
        } else {
            2
        }
    };
    (0..ready.len()).min_by(|&a, &b| {
        rank(&ready[a])
            .cmp(&rank(&ready[b]))
            .then(ready[b].waited.total_cmp(&ready[a].waited))
    })
}

/// How to open a channel.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    /// For logs and stats ("floor", "es"...).
    pub name: String,
    pub language: LanguageMode,
    pub floor: bool,
    pub policy: PolicyConfig,
    /// Terms for Whisper's prompt, most valuable first (from the glossary).
    pub hints: Vec<String>,
    /// Whisper's translate task: English text of speech in `language`.
    pub translate: bool,
    /// Revise its finals with long beam decodes when a core is idle ([`super::revise`]):
    /// `Event::Revised` follows its finals about half a minute later.
    pub revise: bool,
    /// Fault injection for the tests (the server sets it from `TOLK_FAULT_PANIC`).
    pub fault: Option<Fault>,
}

/// A panic injected for the tests, once, at the channel's decode number N.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// In the channel's recognition: the channel restarts.
    Recognition(u64),
    /// In the decoder thread outside any channel's guard: the thread restarts.
    Thread(u64),
}

/// A channel's numbers, for status pages and benchmarks.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ChannelStats {
    pub name: String,
    /// Seconds the latest decode result was behind the audio.
    pub lag: f64,
    pub max_lag: f64,
    pub decodes: u64,
    /// Wall seconds whisper.cpp spent on this channel.
    pub decode_secs: f64,
    /// Media seconds received.
    pub audio_secs: f64,
    /// Seconds of audio dropped because the inbox was full.
    pub audio_lost_secs: f64,
    /// Seconds of speech given up untranscribed: decodes that all failed, audio left out
    /// when recognition fell too far behind, the window lost to a restart.
    pub untranscribed_secs: f64,
    /// When speech was last given up (for "captions incomplete").
    #[serde(skip)]
    pub untranscribed_last: Option<Instant>,
    /// The policy's current step (wider when degraded) and window cap.
    pub step: f64,
    pub window: f64,
    /// When the channel was last decoded much less often than its policy asks (its step
    /// widened to [`REDUCED_AT`] times or more, because its results came late or it waited
    /// its turn behind other channels): the reduced mode, "captions every few seconds".
    #[serde(skip)]
    pub reduced_last: Option<Instant>,
    pub dropped: Dropped,
    /// The language in use (locked or fixed), if known yet.
    pub language: Option<String>,
    /// Whether the channel is finished and fully emitted.
    pub done: bool,
    /// Loudness of the audio last received (RMS, dBFS; -100 for digital silence), for the
    /// organizer's level meters.
    pub level_db: f64,
    /// Times this channel's recognition was restarted after a fault.
    pub restarts: u64,
    /// Events (finals or partials) lost to a panic in the sink, and finals among them.
    pub events_lost: u64,
    pub finals_lost: u64,
    /// Segments the channel's policies have opened (so that a restarted policy's segment
    /// numbers go on after them).
    pub segments: u64,
    /// The last fault, and the engine time (seconds) it happened.
    pub last_fault: Option<(String, f64)>,
    /// Chunks of its finals revised ([`super::revise`]), refused (the revision looked worse
    /// than the stream, or whisper.cpp failed), and given up (the reviser's queue was full:
    /// no idle core); the finals of the last two stay as they were sent.
    pub revisions: u64,
    pub revisions_refused: u64,
    pub revisions_given_up: u64,
}

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the streaming engine has stopped")]
    Stopped,
    #[error("no channel {0}")]
    NoChannel(ChannelId),
    #[error(transparent)]
    Whisper(#[from] TranscribeError),
}

/// The receiving end of events: called on the decoder thread with each event as it is
/// emitted (`at`: seconds since the engine started). Must not block.
pub type Sink = Box<dyn FnMut(ChannelId, Emitted) + Send>;

struct Inbox {
    samples: VecDeque<f32>,
    lost: usize,
    /// Samples the decoder thread has taken (and those lost), in all: where a channel
    /// opened again after the thread died goes on in media time.
    taken: usize,
    finished: bool,
    /// New prompt terms ([`Channel::set_hints`]), taken with the next audio.
    hints: Option<Vec<String>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    /// Every channel until it is done: the decoder thread opens from here, and opens them
    /// all again when it is restarted.
    channels: Vec<(ChannelId, ChannelSpec)>,
    inboxes: Vec<(ChannelId, Inbox)>,
    stats: Vec<(ChannelId, ChannelStats)>,
    /// Set when the decoder thread stopped for good (shutdown).
    stopped: Option<String>,
    /// Set while the decoder thread is down (it died and is started again after a pause).
    down: Option<String>,
    /// Times the decoder thread died and was started again, and the last reason.
    thread_restarts: u64,
    last_thread_fault: Option<String>,
    shutdown: bool,
    next_id: ChannelId,
}

/// The decoder thread's health, for `/healthz` and the organizer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// Recognition is down (the decoder thread died and waits to start again): why.
    pub down: Option<String>,
    pub thread_restarts: u64,
    pub last_thread_fault: Option<String>,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic on another thread while holding the lock leaves consistent data (every update
    // is a single assignment or push); keep going rather than cascade.
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The streaming engine: one decoder thread, any number of channels.
pub struct Engine {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A handle to feed one channel.
#[derive(Clone)]
pub struct Channel {
    id: ChannelId,
    shared: Arc<Shared>,
}

/// The decoder thread's nice value (and so that of whisper.cpp's worker threads, which it
/// starts and which inherit it). Whisper keeps every core busy (its workers spin-wait);
/// sending a final to thousands of listeners is short and bursty, and late captions are
/// what people see. At nice 10 the kernel gives the server's I/O threads about 90 % of a
/// core when they want it, and Whisper everything else: 5,000 listeners' p99 delivery
/// latency went from 297 to the figure in `benches/README.md` (fan-out). A decode waits a
/// few milliseconds more; the policy already tolerates lag.
pub const DECODER_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority to [`DECODER_NICE`] (Linux: nice is per thread).
/// Best effort: where it fails, Whisper runs at the normal priority.
fn yield_to_delivery() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes plain integers and touches no memory of ours; `who = 0`
        // is the calling thread on Linux.
        #[allow(unsafe_code)]
        let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, DECODER_NICE) };
        if r != 0 {
            tracing::debug!(
                "cannot lower the decoder's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

impl Engine {
    /// Starts the decoder thread. `decoding.threads`: Whisper threads (at most the free
    /// cores).
    pub fn start(model: Arc<Model>, decoding: Decoding, sink: Sink) -> Result<Engine, EngineError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                channels: Vec::new(),
                inboxes: Vec::new(),
                stats: Vec::new(),
                stopped: None,
                down: None,
                thread_restarts: 0,
                last_thread_fault: None,
                shutdown: false,
                next_id: 0,
            }),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tolk-decoder".into())
            .spawn(move || {
                yield_to_delivery();
                supervise(&model, decoding, &s, sink);
                lock(&s).stopped = Some("shut down".into());
            })
            .map_err(|e| {
                TranscribeError::Whisper(format!("cannot start the decoder thread: {e}"))
            })?;
        Ok(Engine {
            shared,
            thread: Some(thread),
        })
    }

    /// Opens a channel.
    pub fn open(&self, spec: ChannelSpec) -> Result<Channel, EngineError> {
        let mut st = lock(&self.shared);
        if st.stopped.is_some() {
            return Err(EngineError::Stopped);
        }
        let id = st.next_id;
        st.next_id += 1;
        st.stats.push((
            id,
            ChannelStats {
                name: spec.name.clone(),
                step: spec.policy.step,
                window: spec.policy.max_window,
                ..ChannelStats::default()
            },
        ));
        st.inboxes.push((
            id,
            Inbox {
                samples: VecDeque::new(),
                lost: 0,
                taken: 0,
                finished: false,
                hints: None,
            },
        ));
        st.channels.push((id, spec));
        drop(st);
        self.shared.wake.notify_one();
        Ok(Channel {
            id,
            shared: self.shared.clone(),
        })
    }

    /// Every channel's numbers.
    pub fn stats(&self) -> Vec<ChannelStats> {
        lock(&self.shared)
            .stats
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Why the engine stopped, if it did.
    pub fn stopped(&self) -> Option<String> {
        lock(&self.shared).stopped.clone()
    }

    /// Whether recognition is running, and the decoder thread's faults.
    pub fn health(&self) -> Health {
        let st = lock(&self.shared);
        Health {
            down: st.down.clone(),
            thread_restarts: st.thread_restarts,
            last_thread_fault: st.last_thread_fault.clone(),
        }
    }

    /// Stops the decoder thread (after the decode in progress) and waits for it.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        lock(&self.shared).shutdown = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Channel {
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// Adds 16 kHz mono audio. Never blocks on Whisper: the samples go to the inbox.
    pub fn push_audio(&self, samples: &[f32]) -> Result<(), EngineError> {
        // The level for the organizer's meter, computed before taking the lock.
        let level = (!samples.is_empty()).then(|| {
            let power =
                samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64;
            (10.0 * power.log10()).max(-100.0)
        });
        let mut st = lock(&self.shared);
        if st.stopped.is_some() {
            return Err(EngineError::Stopped);
        }
        if let (Some(level), Some((_, s))) =
            (level, st.stats.iter_mut().find(|(id, _)| *id == self.id))
        {
            s.level_db = level;
        }
        let inbox = st
            .inboxes
            .iter_mut()
            .find(|(id, _)| *id == self.id)
            .map(|(_, i)| i)
            .ok_or(EngineError::NoChannel(self.id))?;
        inbox.samples.extend(samples);
        let cap = INBOX_SECS * crate::audio::SAMPLE_RATE as usize;
        if inbox.samples.len() > cap {
            let over = inbox.samples.len() - cap;
            inbox.samples.drain(..over);
            inbox.lost += over;
        }
        drop(st);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// The stream ended: what is open is decoded and committed, then the channel closes
    /// (its stats say `done`).
    pub fn finish(&self) {
        let mut st = lock(&self.shared);
        if let Some((_, i)) = st.inboxes.iter_mut().find(|(id, _)| *id == self.id) {
            i.finished = true;
        }
        drop(st);
        self.shared.wake.notify_one();
    }

    /// Replaces the terms its prompts start with (a new session's topic): decodes from the
    /// next turn of the decoder thread on, and the record's revisions of audio after it,
    /// use them; a restarted decoder thread opens the channel with them.
    pub fn set_hints(&self, hints: Vec<String>) {
        let mut st = lock(&self.shared);
        if let Some((_, spec)) = st.channels.iter_mut().find(|(id, _)| *id == self.id) {
            spec.hints = hints.clone();
        }
        if let Some((_, i)) = st.inboxes.iter_mut().find(|(id, _)| *id == self.id) {
            i.hints = Some(hints);
        }
        drop(st);
        self.shared.wake.notify_one();
    }

    /// This channel's numbers.
    pub fn stats(&self) -> Option<ChannelStats> {
        lock(&self.shared)
            .stats
            .iter()
            .find(|(id, _)| *id == self.id)
            .map(|(_, s)| s.clone())
    }
}

/// A channel as the decoder thread holds it.
struct Live<'m> {
    id: ChannelId,
    spec: ChannelSpec,
    floor: bool,
    policy: Policy,
    decoder: Decoder<'m>,
    /// Media seconds and segments of the policies before this one (after restarts).
    time_offset: f64,
    segment_offset: u64,
    restarts: u64,
    last_fault: Option<(String, f64)>,
    events_lost: u64,
    finals_lost: u64,
    /// Engine time at which a decode became due.
    due_since: Option<f64>,
    finished: bool,
    lost_secs: f64,
    /// Speech given up by the policies before this one.
    untranscribed_before: f64,
    max_lag: f64,
    /// Its audio and finals gathered for the reviser (when its spec says `revise`).
    chunker: Option<Chunker>,
    /// Its chunks at the reviser, waiting or being decoded.
    revising: usize,
    revisions: u64,
    revisions_refused: u64,
    revisions_given_up: u64,
}

/// The decoder thread's body: [`decoder_thread`] until shutdown, started again after a
/// pause whenever it dies. The sink survives it (a panic in one event is caught there).
fn supervise(model: &Arc<Model>, decoding: Decoding, shared: &Shared, mut sink: Sink) {
    let start = Instant::now();
    let mut pause = RESTART_PAUSE;
    loop {
        let began = Instant::now();
        let ran = catch_unwind(AssertUnwindSafe(|| {
            decoder_thread(model, decoding, shared, &mut sink, start)
        }));
        let why = match ran {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(panic) => panic_message(&*panic),
        };
        if began.elapsed() > HEALTHY_AFTER {
            pause = RESTART_PAUSE;
        }
        tracing::error!(
            "recognition stopped on every channel ({why}); starting it again in {} s",
            pause.as_secs_f64()
        );
        let mut st = lock(shared);
        st.down = Some(why.clone());
        st.thread_restarts += 1;
        st.last_thread_fault = Some(why);
        // The pause, cut short by a shutdown.
        let until = Instant::now() + pause;
        while !st.shutdown {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = shared
                .wake
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if st.shutdown {
            return;
        }
        drop(st);
        pause = (pause * 2).min(MAX_RESTART_PAUSE);
    }
}

/// A channel to open on the decoder thread: what its earlier policies did (after a restart
/// of the thread), and where its media time is.
struct Opening {
    id: ChannelId,
    spec: ChannelSpec,
    before: ChannelStats,
    time_offset: f64,
}

/// Opens a channel on the decoder thread, going on from its earlier policies' times,
/// segments and faults.
fn open_live(model: &Model, decoding: Decoding, o: Opening) -> Result<Live<'_>, EngineError> {
    let Opening {
        id,
        spec,
        before,
        time_offset,
    } = o;
    Ok(Live {
        id,
        chunker: (spec.revise && !spec.translate)
            .then(|| Chunker::new(time_offset, spec.hints.clone())),
        revising: 0,
        revisions: before.revisions,
        revisions_refused: before.revisions_refused,
        revisions_given_up: before.revisions_given_up,
        floor: spec.floor,
        policy: new_policy(&spec),
        decoder: decoding.decoder(model, spec.language.clone(), spec.translate)?,
        spec,
        time_offset,
        segment_offset: before.segments,
        restarts: before.restarts,
        last_fault: before.last_fault,
        events_lost: before.events_lost,
        finals_lost: before.finals_lost,
        due_since: None,
        finished: false,
        lost_secs: before.audio_lost_secs,
        untranscribed_before: before.untranscribed_secs,
        max_lag: before.max_lag,
    })
}

/// [`turns`] until shutdown or its death; either way it says what of the record the
/// reviser will not get to (its queue goes with the thread).
fn decoder_thread(
    model_arc: &Arc<Model>,
    decoding: Decoding,
    shared: &Shared,
    sink: &mut Sink,
    start: Instant,
) -> Result<(), EngineError> {
    let mut live: Vec<Live<'_>> = Vec::new();
    let ran = catch_unwind(AssertUnwindSafe(|| {
        turns(model_arc, decoding, shared, sink, start, &mut live)
    }));
    unrevised(shared, &live, !matches!(ran, Ok(Ok(()))));
    match ran {
        Ok(done) => done,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The decoder thread's turns: new channels and audio taken, one decode, its events
/// delivered, the reviser's results, the stats published; until shutdown.
fn turns<'m>(
    model_arc: &'m Arc<Model>,
    decoding: Decoding,
    shared: &Shared,
    sink: &mut Sink,
    start: Instant,
    live: &mut Vec<Live<'m>>,
) -> Result<(), EngineError> {
    let model: &Model = model_arc;
    let now = || start.elapsed().as_secs_f64();
    // Started with the first channel that revises; stopped with this thread.
    let mut reviser: Option<Reviser> = None;
    // The last decode was not the floor's: the floor, if due, goes next (see [`pick`]).
    let mut floor_turn = false;
    loop {
        let Some((opening, audio)) = take_new(shared, live) else {
            return Ok(());
        };
        for o in opening {
            let revise = o.spec.revise && !o.spec.translate;
            live.push(open_live(model, decoding, o)?);
            if revise && reviser.is_none() {
                // Its own threads: at SCHED_IDLE they take only cores nobody else wants.
                reviser = Some(Reviser::start(model_arc.clone(), decoding.threads).map_err(
                    |e| TranscribeError::Whisper(format!("cannot start the reviser thread: {e}")),
                )?);
            }
        }
        if !live.is_empty() || lock(shared).channels.is_empty() {
            lock(shared).down = None;
        }
        for taken in audio {
            if let Some(ch) = live.iter_mut().find(|c| c.id == taken.id) {
                if let Err(why) = feed(ch, taken, reviser.as_ref()) {
                    restart(ch, model, decoding, why, now())?;
                }
            }
        }
        let decoded = decode_next(live, &mut floor_turn, model, decoding, shared, &now)?;
        deliver(live, sink, now(), reviser.as_ref());
        if let Some(r) = &reviser {
            revised(live, r, sink, now());
        }
        publish(shared, live, decoded);
    }
}

/// Says, per channel, what of its record the reviser will not get to as the decoder thread
/// ends: chunks waiting for an idle core (a meeting stopped while the reviser was behind:
/// with three channels on two cores it finishes about 2.5 minutes after the speech) and the
/// finals of the chunk still open. Their finals stay in the record as sent. A count and the
/// channel's name only, never text. When the thread died (`fault`: it is started again, the
/// meeting goes on), those chunks are also counted given up in the channel's stats
/// (`revisions_given_up`: the organizer's page and `/metrics`).
fn unrevised(shared: &Shared, live: &[Live<'_>], fault: bool) {
    for ch in live {
        let open = ch.chunker.as_ref().is_some_and(|c| !c.idle());
        let chunks = ch.revising + usize::from(open);
        if chunks == 0 {
            continue;
        }
        if fault {
            tracing::warn!(
                channel = %ch.spec.name,
                chunks,
                "recognition stopped before the record's last chunks were revised: their finals stay as sent"
            );
            if let Some((_, s)) = lock(shared).stats.iter_mut().find(|(id, _)| *id == ch.id) {
                s.revisions_given_up = ch.revisions_given_up + chunks as u64;
            }
        } else {
            tracing::warn!(
                channel = %ch.spec.name,
                chunks,
                "stopping before the record's last chunks were revised: their finals stay as sent"
            );
        }
    }
}

/// A channel's audio taken from its inbox.
struct Taken {
    id: ChannelId,
    samples: Vec<f32>,
    /// Samples dropped from a full inbox before these.
    lost: usize,
    /// The channel's audio has ended.
    finished: bool,
    /// Its prompt terms changed ([`Channel::set_hints`]).
    hints: Option<Vec<String>>,
}

/// The channels opened and the audio come since the last turn; `None` at shutdown.
fn take_new(shared: &Shared, live: &[Live<'_>]) -> Option<(Vec<Opening>, Vec<Taken>)> {
    let mut st = lock(shared);
    if st.shutdown {
        return None;
    }
    let opening: Vec<Opening> = st
        .channels
        .iter()
        .filter(|(id, _)| !live.iter().any(|c| c.id == *id))
        .map(|(id, spec)| Opening {
            id: *id,
            spec: spec.clone(),
            before: st
                .stats
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, s)| s.clone())
                .unwrap_or_default(),
            time_offset: st
                .inboxes
                .iter()
                .find(|(i, _)| i == id)
                .map_or(0.0, |(_, i)| i.taken as f64 / super::SAMPLE_RATE_F),
        })
        .collect();
    let audio = st
        .inboxes
        .iter_mut()
        .map(|(id, i)| {
            let lost = std::mem::take(&mut i.lost);
            i.taken += lost + i.samples.len();
            Taken {
                id: *id,
                samples: i.samples.drain(..).collect(),
                lost,
                finished: i.finished,
                hints: i.hints.take(),
            }
        })
        .collect();
    Some((opening, audio))
}

/// Feeds a channel's policy (and its chunker) the audio taken; `Err` says why its
/// recognition panicked.
fn feed(ch: &mut Live<'_>, taken: Taken, reviser: Option<&Reviser>) -> Result<(), String> {
    if taken.lost > 0 {
        ch.lost_secs += taken.lost as f64 / super::SAMPLE_RATE_F;
    }
    let newly_finished = taken.finished && !ch.finished;
    ch.finished |= taken.finished;
    if let Some(hints) = taken.hints {
        if let Some(c) = &mut ch.chunker {
            c.set_hints(hints.clone());
        }
        ch.policy.set_hints(hints.clone());
        ch.spec.hints = hints;
    }
    if let Some(c) = &mut ch.chunker {
        if taken.lost > 0 {
            c.push_audio(&vec![0.0; taken.lost]);
        }
        let job = c.push_audio(&taken.samples);
        submit(ch, job, reviser);
    }
    catch_unwind(AssertUnwindSafe(|| {
        if taken.lost > 0 {
            // Silence in place of what was lost keeps media times true.
            ch.policy.push_audio(&vec![0.0; taken.lost]);
        }
        ch.policy.push_audio(&taken.samples);
        if newly_finished {
            ch.policy.finish();
        }
    }))
    .map_err(|panic| panic_message(&*panic))
}

/// Runs the decode of the channel [`pick`] chooses among those with one due, if any;
/// whether a decode ran. A channel whose recognition fails is restarted.
fn decode_next<'m>(
    live: &mut [Live<'m>],
    floor_turn: &mut bool,
    model: &'m Model,
    decoding: Decoding,
    shared: &Shared,
    now: &dyn Fn() -> f64,
) -> Result<bool, EngineError> {
    let t = now();
    let mut ready = Vec::new();
    let mut ready_ix = Vec::new();
    for (ix, ch) in live.iter_mut().enumerate() {
        if ch.policy.wants_decode() {
            let since = *ch.due_since.get_or_insert(t);
            ready.push(Ready {
                floor: ch.floor,
                waited: t - since,
            });
            ready_ix.push(ix);
        } else {
            ch.due_since = None;
        }
    }
    let Some(k) = pick(&ready, *floor_turn) else {
        return Ok(false);
    };
    let ch = &mut live[ready_ix[k]];
    *floor_turn = !ch.floor;
    ch.due_since = None;
    ch.policy.waited(ready[k].waited);
    if let Some(Fault::Thread(n)) = ch.spec.fault {
        if ch.policy.decodes + 1 >= n {
            // Once: the restarted thread opens the channel without it.
            let mut st = lock(shared);
            if let Some((_, spec)) = st.channels.iter_mut().find(|(id, _)| *id == ch.id) {
                spec.fault = None;
            }
            drop(st);
            panic!("fault injected in the decoder thread (TOLK_FAULT_PANIC)");
        }
    }
    let step = catch_unwind(AssertUnwindSafe(|| -> Result<bool, TranscribeError> {
        let Some(job) = ch.policy.poll_job(t) else {
            return Ok(false);
        };
        if ch.restarts == 0 && ch.spec.fault == Some(Fault::Recognition(ch.policy.decodes)) {
            panic!(
                "fault injected at decode {} (TOLK_FAULT_PANIC)",
                ch.policy.decodes
            );
        }
        let hyp = ch.decoder.decode(&job)?;
        ch.policy.on_result(job.id, hyp, now());
        Ok(true)
    }));
    match step {
        Ok(Ok(decoded)) => {
            ch.max_lag = ch.max_lag.max(ch.policy.lag);
            Ok(decoded)
        }
        Ok(Err(e)) => restart(ch, model, decoding, e.to_string(), now()).map(|_| false),
        Err(panic) => restart(ch, model, decoding, panic_message(&*panic), now()).map(|_| false),
    }
}

/// Hands every channel's new events to the sink (and its finals to its chunker). A panic
/// there loses that one event, counted and named; the channel and the sink go on.
fn deliver(live: &mut [Live<'_>], sink: &mut Sink, t: f64, reviser: Option<&Reviser>) {
    for ch in live.iter_mut() {
        while let Some(event) = ch.policy.poll_event() {
            let event = event.shifted(ch.time_offset, ch.segment_offset);
            if let (
                Some(c),
                Event::Final {
                    segment,
                    start,
                    end,
                    text,
                    language,
                    ..
                },
            ) = (&mut ch.chunker, &event)
            {
                let job = c.on_final(*segment, *start, *end, text, language);
                submit(ch, job, reviser);
            }
            let is_final = matches!(event, Event::Final { .. });
            to_sink(
                ch,
                sink,
                event,
                t,
                if is_final { "final" } else { "partial" },
            );
        }
        // The stream ended and everything is committed: the last chunk goes too.
        if ch.finished && ch.policy.idle() {
            let job = ch.chunker.as_mut().and_then(Chunker::finish);
            submit(ch, job, reviser);
        }
    }
}

/// One event to the sink; a panic there loses it, counted and named.
fn to_sink(ch: &mut Live<'_>, sink: &mut Sink, event: Event, t: f64, what: &str) {
    let is_final = matches!(event, Event::Final { .. });
    let delivered = catch_unwind(AssertUnwindSafe(|| sink(ch.id, Emitted { event, at: t })));
    if let Err(panic) = delivered {
        let why = format!(
            "a {what} was lost in caption delivery ({})",
            panic_message(&*panic)
        );
        tracing::error!(channel = %ch.spec.name, "{why}");
        ch.events_lost += 1;
        ch.finals_lost += u64::from(is_final);
        ch.last_fault = Some((why, t));
    }
}

/// Hands a channel's closed chunk to the reviser.
fn submit(ch: &mut Live<'_>, job: Option<RevisionJob>, reviser: Option<&Reviser>) {
    if let (Some(job), Some(r)) = (job, reviser) {
        ch.revising += 1;
        r.submit(ch.id, job);
    }
}

/// Collects the reviser's outcomes: revisions go to the sink as [`Event::Revised`], the
/// others are counted.
fn revised(live: &mut [Live<'_>], r: &Reviser, sink: &mut Sink, t: f64) {
    while let Some((id, outcome)) = r.try_recv() {
        let Some(ch) = live.iter_mut().find(|c| c.id == id) else {
            continue;
        };
        ch.revising = ch.revising.saturating_sub(1);
        match outcome {
            Outcome::Revised(rev) => {
                ch.revisions += 1;
                to_sink(ch, sink, Event::Revised(rev), t, "revision");
            }
            Outcome::Refused(why) => {
                ch.revisions_refused += 1;
                tracing::debug!(channel = %ch.spec.name, "revision not used: {why}");
            }
            Outcome::Failed(why) => {
                ch.revisions_refused += 1;
                tracing::warn!(channel = %ch.spec.name, "revision failed: {why}");
            }
            Outcome::GivenUp => ch.revisions_given_up += 1,
        }
    }
}

/// Publishes each channel's stats, lets finished channels go, and — when nothing was
/// decoded and nothing new came — sleeps until audio comes (or a step's worth of time).
fn publish(shared: &Shared, live: &mut Vec<Live<'_>>, decoded: bool) {
    let mut st = lock(shared);
    for ch in live.iter() {
        if let Some((_, s)) = st.stats.iter_mut().find(|(id, _)| *id == ch.id) {
            let (step, window) = ch.policy.step_and_window();
            s.lag = ch.policy.lag;
            s.max_lag = ch.max_lag;
            s.decodes = ch.policy.decodes;
            s.decode_secs = ch.decoder.busy_secs;
            s.audio_secs = ch.time_offset + ch.policy.media_now();
            s.segments = ch.segment_offset + ch.policy.segments();
            s.restarts = ch.restarts;
            s.events_lost = ch.events_lost;
            s.finals_lost = ch.finals_lost;
            s.last_fault.clone_from(&ch.last_fault);
            s.audio_lost_secs = ch.lost_secs;
            let untranscribed = ch.untranscribed_before + ch.policy.untranscribed;
            if untranscribed > s.untranscribed_secs {
                s.untranscribed_last = Some(Instant::now());
            }
            s.untranscribed_secs = untranscribed;
            s.step = step;
            s.window = window;
            if step >= REDUCED_AT * ch.spec.policy.step {
                s.reduced_last = Some(Instant::now());
            }
            s.dropped = ch.policy.dropped;
            s.language = ch.decoder.lang.locked().map(str::to_string);
            s.revisions = ch.revisions;
            s.revisions_refused = ch.revisions_refused;
            s.revisions_given_up = ch.revisions_given_up;
            s.done = ch.finished && ch.policy.idle() && ch.revising == 0;
        }
    }
    let done: Vec<ChannelId> = live
        .iter()
        .filter(|c| c.finished && c.policy.idle() && c.revising == 0)
        .map(|c| c.id)
        .collect();
    st.inboxes.retain(|(id, _)| !done.contains(id));
    st.channels.retain(|(id, _)| !done.contains(id));
    live.retain(|c| !done.contains(&c.id));
    if !decoded {
        let nothing_new = st.channels.len() == live.len()
            && st.inboxes.iter().all(|(_, i)| i.samples.is_empty())
            && !st.shutdown;
        if nothing_new {
            let _ = shared.wake.wait_timeout(st, IDLE_WAIT);
        }
    }
}

fn new_policy(spec: &ChannelSpec) -> Policy {
    let mut policy = Policy::new(spec.policy.clone());
    policy.set_hints(spec.hints.clone());
    policy
}

/// Restarts a channel's recognition after a fault: a new policy and Whisper state, times
/// and segments going on after the old ones. What the old policy held and had not
/// committed (the window being decoded) is lost; everything it emitted was sent.
fn restart<'m>(
    ch: &mut Live<'m>,
    model: &'m Model,
    decoding: Decoding,
    why: String,
    at: f64,
) -> Result<(), EngineError> {
    tracing::error!(
        channel = %ch.spec.name,
        restarts = ch.restarts + 1,
        "recognition failed on this channel ({why}); restarting it, the others go on"
    );
    ch.time_offset += ch.policy.media_now();
    ch.segment_offset += ch.policy.segments();
    ch.untranscribed_before += ch.policy.untranscribed + ch.policy.uncommitted_speech();
    ch.policy = new_policy(&ch.spec);
    if ch.finished {
        ch.policy.finish();
    }
    ch.decoder = decoding.decoder(model, ch.spec.language.clone(), ch.spec.translate)?;
    ch.restarts += 1;
    ch.last_fault = Some((why, at));
    Ok(())
}

/// What a panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("panic: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(floor: bool, waited: f64) -> Ready {
        Ready { floor, waited }
    }

    #[test]
    fn nothing_ready_nothing_picked() {
        assert_eq!(pick(&[], false), None);
        assert_eq!(pick(&[], true), None);
    }

    #[test]
    fn the_floor_goes_first() {
        assert_eq!(pick(&[r(false, 1.0), r(true, 0.0)], false), Some(1));
        assert_eq!(pick(&[r(true, 0.5), r(false, 3.9)], false), Some(0));
    }

    #[test]
    fn among_equals_the_longest_wait_goes_first() {
        assert_eq!(
            pick(&[r(false, 1.0), r(false, 2.0), r(false, 0.5)], true),
            Some(1)
        );
    }

    #[test]
    fn a_starving_channel_goes_before_the_floor_once() {
        let ready = [r(true, 0.2), r(false, STARVE_AFTER + 0.1)];
        assert_eq!(pick(&ready, false), Some(1));
        // The floor's turn comes after it.
        assert_eq!(pick(&ready, true), Some(0));
    }

    /// Eight channels, every one always due, each decode 1 s: the floor gets every other
    /// decode and every booth still gets its turns, in order of waiting.
    #[test]
    fn with_seven_starving_booths_the_floor_keeps_every_other_decode() {
        let mut since = [0.0f64; 8];
        let (mut floor_turn, mut decodes) = (false, [0usize; 8]);
        for step in 0..64 {
            let now = step as f64;
            let ready: Vec<Ready> = (0..8).map(|i| r(i == 0, now - since[i])).collect();
            let k = pick(&ready, floor_turn).unwrap();
            floor_turn = k != 0;
            decodes[k] += 1;
            since[k] = now + 1.0;
        }
        assert!(decodes[0] >= 32, "{decodes:?}");
        assert!(decodes[1..].iter().all(|&d| d >= 4), "{decodes:?}");
    }
}
