//! The I/O edge of streaming: runs [`DecodeJob`]s through whisper.cpp and drives a
//! [`Policy`] over an audio source, under a virtual clock or in real time.
//!
//! [`Decoder`] turns a job into a hypothesis with one `WhisperState`. [`run`] streams a whole
//! recording: under the virtual clock on the calling thread (decisions as in real time, as
//! fast as the CPU allows), or in real time through a one-channel
//! [`super::scheduler::Engine`], whose decoder thread is the one the server runs.

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::decoder::{Decoder, Decoding, Emitted};
use super::lang::LanguageMode;
use super::policy::{DecodeJob, Policy, PolicyConfig};
use super::scheduler::{ChannelSpec, Engine, EngineError};
use crate::transcribe::{Model, TranscribeError};

/// How the driver paces the audio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// As fast as the CPU allows: the clock advances by the audio fed and by each decode's
    /// measured duration, so the policy makes the decisions it would make in real time.
    Virtual,
    /// As [`Pacing::Virtual`], but each decode advances the clock by a modelled duration
    /// instead of the measured one: the same input gives the same captions on any machine
    /// under any load, and a slower or faster CPU can be simulated.
    Modeled(DecodeCost),
    /// Audio is released at real-time pace; decodes run on their own thread meanwhile.
    RealTime,
}

/// What a decode costs in wall seconds, as a function of its window: a fixed part and a part
/// per second of audio (the encoder is sized to the window), more for the beam search that
/// closes an utterance. Calibrated with base on the reference machine of `benches/README.md`
/// (2-core AMD EPYC, AVX2), where a 1 s greedy decode takes ~0.25 s and a 4.5 s closing one
/// ~0.8 s; `speed` scales it (2.0 = a CPU twice as fast).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeCost {
    pub speed: f64,
}

impl DecodeCost {
    /// Modelled wall seconds of a decode of `secs` of audio.
    pub fn secs(&self, secs: f64, beam: bool) -> f64 {
        let (fixed, per_sec) = if beam { (0.22, 0.12) } else { (0.13, 0.11) };
        (fixed + per_sec * secs) / self.speed.max(0.01)
    }
}

/// What this machine can caption with a model, from a decode timed at start
/// ([`calibrate`]) and the cost model of [`DecodeCost`]: an estimate, said as one.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Capacity {
    /// Wall seconds of one greedy decode of a 4-s window here.
    pub decode_4s: f64,
    /// Channels of continuous speech captioned as the floor is: a decode every second.
    pub full: usize,
    /// Channels of continuous speech captioned when every channel but the floor is decoded
    /// in pieces (a channel waiting its turn widens its step and goes so, see
    /// `Policy::waited` and `PolicyConfig::piece_after`), the floor every second.
    pub reduced: usize,
}

/// Seconds of speech in a piece of a channel in the reduced mode, on average, and the
/// window its one decode reads (the piece and the context words before it). Measured with
/// three channels on the reference machine: a booth's pieces came every 4–4.5 s of its
/// speech, their windows p50 5.7–6.1 s (benches/README.md, "Booths in pieces").
const PIECE_SPEECH: f64 = 4.0;
const PIECE_WINDOW: f64 = 6.0;

/// What a prompt adds to a greedy decode (the live engine prompts nearly every decode with
/// its recent text; the calibration decode has none): 5-s windows, 0.53 s prompted against
/// 0.38 s (benches/README.md, "Decoding a prompt").
const PROMPTED: f64 = 1.4;

/// The share of the decoder's time that capacity is counted in: the rest absorbs closing
/// decodes of several channels at once and decodes longer than the model says. Measured:
/// with five channels of continuous speech the decoder was busy 98 % of the time and 12 s of
/// speech in 3 minutes went untranscribed, where this budget says four fit
/// (benches/README.md, "Channels").
const CAPACITY_BUDGET: f64 = 0.8;

impl Capacity {
    /// Capacity from a measured 4-s decode: the cost model scaled to this machine.
    pub fn from_decode(decode_4s: f64) -> Capacity {
        let reference = DecodeCost { speed: 1.0 };
        let cost = DecodeCost {
            speed: reference.secs(4.0, false) / decode_4s.max(1e-3),
        };
        // Streaming: a greedy decode of the window (about 5 s: context and new speech) every
        // second, and a closing beam decode per utterance (about 6 s long).
        let full_each = cost.secs(5.0, false) + cost.secs(4.0, true) / 6.0;
        // Reduced: one prompted greedy decode of each piece.
        let reduced_each = PROMPTED * cost.secs(PIECE_WINDOW, false) / PIECE_SPEECH;
        let full = (CAPACITY_BUDGET / full_each).floor() as usize;
        let reduced = if full_each > CAPACITY_BUDGET {
            0
        } else {
            1 + ((CAPACITY_BUDGET - full_each) / reduced_each).floor() as usize
        };
        Capacity {
            decode_4s,
            full,
            reduced,
        }
    }

    /// Whether `channels` channels all speaking at once fit (in the reduced mode).
    pub fn fits(&self, channels: usize) -> bool {
        channels <= self.reduced
    }

    /// In words, for the log and the organizer.
    pub fn describe(&self, channels: usize) -> String {
        let mut s = format!(
            "a 4-s decode takes {:.2} s here: about {} channel(s) of continuous speech can be \
             captioned with updates every second, about {} with the booths decoded in pieces \
             of a few seconds",
            self.decode_4s, self.full, self.reduced
        );
        if !self.fits(channels) {
            s.push_str(&format!(
                "; this meeting has {channels}: when all speak at once some captions will come \
                 late or be incomplete (counted per channel as untranscribed speech)"
            ));
        }
        s
    }
}

/// Times one greedy decode of 4 s of a synthetic voice (after one to warm up) with
/// the engine's Whisper threads (and simulated speed): what the encoder costs does not
/// depend on what it hears.
pub fn calibrate(model: &Model, decoding: Decoding) -> Result<Capacity, TranscribeError> {
    let mut decoder = Decoder::new(model, LanguageMode::Fixed("en".into()), decoding.threads)?
        .slowed(decoding.speed);
    let audio: Vec<f32> = (0..4 * 16_000)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            let pitch = (2.0 * std::f32::consts::PI * 140.0 * t).sin();
            let syllables = 0.5 + 0.5 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
            0.1 * pitch * syllables
        })
        .collect();
    let job = DecodeJob {
        id: 0,
        start: 0.0,
        audio,
        prompt: String::new(),
        hints: Vec::new(),
        closing: false,
        beam: false,
    };
    decoder.decode(&job)?;
    let t = Instant::now();
    decoder.decode(&job)?;
    Ok(Capacity::from_decode(t.elapsed().as_secs_f64()))
}

/// An emitted event with the emission time (seconds since the stream started).
/// Summary of a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunStats {
    pub audio_secs: f64,
    pub decodes: u64,
    /// Wall seconds whisper.cpp ran.
    pub decode_secs: f64,
    pub dropped: super::policy::Dropped,
    pub max_lag: f64,
    /// In real time: chunks of finals revised, refused, given up ([`super::revise`]).
    pub revisions: u64,
    pub revisions_refused: u64,
    pub revisions_given_up: u64,
}

/// Audio fed per tick of the driver: 100 ms.
const TICK: usize = 1600;

/// Streams `audio` (16 kHz mono) through the policy and Whisper (its translate task into
/// English with `translate`); `sink` receives each event as it is emitted.
#[allow(clippy::too_many_arguments)]
pub fn run(
    model: &Arc<Model>,
    audio: &[f32],
    lang: LanguageMode,
    translate: bool,
    cfg: PolicyConfig,
    threads: usize,
    pacing: Pacing,
    mut sink: impl FnMut(Emitted),
) -> Result<RunStats, TranscribeError> {
    let mut stats = RunStats {
        audio_secs: audio.len() as f64 / super::SAMPLE_RATE_F,
        ..RunStats::default()
    };
    stats.decode_secs = match pacing {
        Pacing::Virtual | Pacing::Modeled(_) => {
            let cost = match pacing {
                Pacing::Modeled(c) => Some(c),
                _ => None,
            };
            let mut policy = Policy::new(cfg);
            let busy = run_virtual(
                model,
                audio,
                (lang, translate, threads),
                cost,
                &mut policy,
                &mut sink,
                &mut stats,
            )?;
            stats.decodes = policy.decodes;
            stats.dropped = policy.dropped;
            busy
        }
        Pacing::RealTime => run_realtime(
            model,
            audio,
            (lang, translate),
            cfg,
            threads,
            &mut sink,
            &mut stats,
        )?,
    };
    Ok(stats)
}

fn drain(policy: &mut Policy, at: f64, sink: &mut impl FnMut(Emitted)) {
    while let Some(event) = policy.poll_event() {
        sink(Emitted { event, at });
    }
}

fn run_virtual(
    model: &Model,
    audio: &[f32],
    (lang, translate, threads): (LanguageMode, bool, usize),
    cost: Option<DecodeCost>,
    policy: &mut Policy,
    sink: &mut impl FnMut(Emitted),
    stats: &mut RunStats,
) -> Result<f64, TranscribeError> {
    let mut dec = Decoder::new(model, lang, threads)?.translating(translate);
    let mut fed = 0usize;
    let mut now = 0.0f64;
    let feed_until = |policy: &mut Policy, fed: &mut usize, t: f64| {
        let upto = ((t * super::SAMPLE_RATE_F) as usize).min(audio.len());
        while *fed < upto {
            let n = (upto - *fed).min(TICK);
            policy.push_audio(&audio[*fed..*fed + n]);
            *fed += n;
        }
    };
    loop {
        if let Some(job) = policy.poll_job(now) {
            let t = Instant::now();
            let hyp = dec.decode(&job)?;
            now += match cost {
                Some(c) => c.secs(job.audio.len() as f64 / super::SAMPLE_RATE_F, job.beam),
                None => t.elapsed().as_secs_f64(),
            };
            // The audio that arrived while Whisper worked.
            feed_until(policy, &mut fed, now);
            policy.on_result(job.id, hyp, now);
            stats.max_lag = stats.max_lag.max(policy.lag);
            drain(policy, now, sink);
            continue;
        }
        drain(policy, now, sink);
        if fed >= audio.len() {
            // The end of the stream closes the open utterance; the loop decodes what it owes.
            policy.finish();
            if policy.idle() {
                break;
            }
            continue;
        }
        now = now.max(fed as f64 / super::SAMPLE_RATE_F) + TICK as f64 / super::SAMPLE_RATE_F;
        feed_until(policy, &mut fed, now);
    }
    Ok(dec.busy_secs)
}

/// Capacity of the event queue from the decoder thread to the caller of [`run`] in real
/// time; the caller empties it every [`REALTIME_TICK`], so it never fills (if it did, the
/// decoder thread would wait for the caller).
const EVENT_QUEUE: usize = 1024;

/// How often the real-time driver releases audio and collects events.
const REALTIME_TICK: Duration = Duration::from_millis(20);

/// Real-time pacing: the audio is released at real pace to a one-channel [`Engine`] (the
/// same decoder thread the server runs), events are collected as they come.
fn run_realtime(
    model: &Arc<Model>,
    audio: &[f32],
    (lang, translate): (LanguageMode, bool),
    cfg: PolicyConfig,
    threads: usize,
    sink: &mut impl FnMut(Emitted),
    stats: &mut RunStats,
) -> Result<f64, TranscribeError> {
    let (tx, rx) = mpsc::sync_channel::<Emitted>(EVENT_QUEUE);
    let stopped = |e: EngineError| TranscribeError::Whisper(e.to_string());
    let engine = Engine::start(
        model.clone(),
        Decoding::threads(threads),
        Box::new(move |_, e| {
            // The receiver only goes away when the caller gave up: nothing to deliver to.
            let _ = tx.send(e);
        }),
    )
    .map_err(stopped)?;
    let channel = engine
        .open(ChannelSpec {
            name: "stream".into(),
            language: lang,
            floor: true,
            policy: cfg,
            hints: Vec::new(),
            translate,
            // In real time the stream's finals are revised as in a meeting.
            revise: true,
            fault: None,
        })
        .map_err(stopped)?;
    let start = Instant::now();
    let mut fed = 0usize;
    let mut finished = false;
    loop {
        let now = start.elapsed().as_secs_f64();
        let upto = ((now * super::SAMPLE_RATE_F) as usize).min(audio.len());
        if upto > fed {
            channel.push_audio(&audio[fed..upto]).map_err(stopped)?;
            fed = upto;
        }
        if fed >= audio.len() && !finished {
            channel.finish();
            finished = true;
        }
        while let Ok(e) = rx.try_recv() {
            sink(e);
        }
        if let Some(why) = engine.stopped() {
            return Err(TranscribeError::Whisper(why));
        }
        let s = channel.stats().unwrap_or_default();
        if s.done {
            stats.max_lag = s.max_lag;
            stats.decodes = s.decodes;
            stats.dropped = s.dropped;
            stats.revisions = s.revisions;
            stats.revisions_refused = s.revisions_refused;
            stats.revisions_given_up = s.revisions_given_up;
            engine.shutdown();
            // Events emitted between the last look and the end.
            while let Ok(e) = rx.try_recv() {
                sink(e);
            }
            return Ok(s.decode_secs);
        }
        std::thread::sleep(REALTIME_TICK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_follows_the_measured_decode() {
        // The reference machine of DecodeCost (a 4-s decode in 0.57 s): one channel.
        let slow = Capacity::from_decode(0.57);
        assert_eq!((slow.full, slow.reduced), (1, 1));
        // Twice as fast: two channels streamed, more with the booths reduced.
        let fast = Capacity::from_decode(0.285);
        assert!(fast.full >= 2 && fast.reduced > fast.full, "{fast:?}");
        // Too slow for even one channel: said, not hidden.
        let too_slow = Capacity::from_decode(2.0);
        assert_eq!((too_slow.full, too_slow.reduced), (0, 0));
        assert!(too_slow.describe(1).contains("this meeting has 1"));
        assert!(!fast.describe(fast.reduced).contains("this meeting has"));
        assert!(fast
            .describe(fast.reduced + 1)
            .contains("some captions will come late or be incomplete"));
    }
}
