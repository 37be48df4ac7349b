//! The I/O edge of streaming: runs [`DecodeJob`]s through whisper.cpp and drives a
//! [`Policy`] over an audio source, under a virtual clock or in real time.
//!
//! [`Decoder`] turns a job into a hypothesis with one `WhisperState`. [`run`] streams a whole
//! recording: under the virtual clock on the calling thread (decisions as in real time, as
//! fast as the CPU allows), or in real time through a one-channel
//! [`super::scheduler::Engine`], whose decoder thread is the one the server runs.

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use whisper_rs::{FullParams, SamplingStrategy, WhisperState};

use super::lang::{LanguageLock, LanguageMode};
use super::policy::{DecodeJob, Event, Hypothesis, Policy, PolicyConfig, Word};
use super::scheduler::{ChannelSpec, Decoding, Engine, EngineError};
use crate::transcribe::{Model, TranscribeError};

/// Language detection on less audio than this is a guess: wait for more.
const MIN_DETECT_SECS: f64 = 3.0;

/// Beam width of the decode that closes an utterance.
const CLOSING_BEAM: i32 = 5;

/// Fast speech is about 4 words, 5–6 tokens a second; well beyond that is a loop.
const MAX_TOKENS_PER_SEC: f64 = 10.0;

/// Encoder frames per second of audio (whisper's 30 s window is 1500 frames).
const FRAMES_PER_SEC: f64 = 50.0;

/// Decodes jobs with one `WhisperState` (one per channel; the model is shared).
pub struct Decoder<'m> {
    model: &'m Model,
    state: WhisperState,
    threads: usize,
    pub lang: LanguageLock,
    /// Whisper's translate task (into English) instead of transcription.
    translate: bool,
    /// Seconds spent in whisper.cpp (wall time of the decoder thread).
    pub busy_secs: f64,
    /// Below 1: a slower machine simulated (see [`Decoder::slowed`]).
    speed: f64,
}

impl<'m> Decoder<'m> {
    pub fn new(
        model: &'m Model,
        mode: LanguageMode,
        threads: usize,
    ) -> Result<Decoder<'m>, TranscribeError> {
        let state = model.create_state()?;
        let mode = if model.multilingual() {
            mode
        } else {
            LanguageMode::Fixed("en".into())
        };
        Ok(Decoder {
            model,
            state,
            threads: threads.max(1),
            lang: LanguageLock::new(mode),
            translate: false,
            busy_secs: 0.0,
            speed: 1.0,
        })
    }

    /// Simulates a machine `speed` times as fast as this one (below 1: slower): each decode
    /// then takes `1 / speed` times its time here, the decoder waiting out the difference.
    /// For tests of what a smaller machine does with a meeting (`tolk serve
    /// --simulate-speed`); 1 or more changes nothing.
    pub fn slowed(mut self, speed: f64) -> Decoder<'m> {
        self.speed = speed.clamp(0.01, 1.0);
        self
    }

    /// Decodes with Whisper's translate task (English text of speech in the channel's
    /// language) when `yes`.
    pub fn translating(mut self, yes: bool) -> Decoder<'m> {
        self.translate = yes;
        self
    }

    /// Detects the language of the job's audio among the allowed ones (until locked).
    /// `None`: too little audio to tell yet (the job is skipped).
    fn language_for(
        &mut self,
        audio: &[f32],
        closing: bool,
    ) -> Result<Option<String>, TranscribeError> {
        if let Some(l) = self.lang.locked() {
            return Ok(Some(l.to_string()));
        }
        if !closing && (audio.len() as f64) < MIN_DETECT_SECS * super::SAMPLE_RATE_F {
            return Ok(None);
        }
        let werr = |e: whisper_rs::WhisperError| TranscribeError::Whisper(e.to_string());
        self.state.pcm_to_mel(audio, self.threads).map_err(werr)?;
        let (_, probs) = self.state.lang_detect(0, self.threads).map_err(werr)?;
        let list: Vec<(String, f32)> = probs
            .iter()
            .enumerate()
            .filter_map(|(id, p)| whisper_rs::get_lang_str(id as i32).map(|c| (c.to_string(), *p)))
            .collect();
        Ok(Some(self.lang.observe(&list)))
    }

    /// Runs one job: greedy decoding, the encoder sized to the audio, one segment per word.
    pub fn decode(&mut self, job: &DecodeJob) -> Result<Hypothesis, TranscribeError> {
        let t0 = Instant::now();
        let Some(language) = self.language_for(&job.audio, job.closing)? else {
            return Ok(Hypothesis {
                words: Vec::new(),
                no_speech_prob: 0.0,
                avg_logprob: 0.0,
                language: String::new(),
            });
        };
        // Greedy for the frequent tentative decodes; beam search for the one that closes an
        // utterance, whose words are committed whole.
        let strategy = if job.closing {
            SamplingStrategy::BeamSearch {
                beam_size: CLOSING_BEAM,
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(self.threads as i32);
        params.set_language(Some(&language));
        params.set_translate(self.translate);
        params.set_no_context(true);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        // No temperature fallback: a failed decode is cheaper to drop than to redo at 6
        // temperatures; the policy's guards catch what it would have caught.
        params.set_temperature(0.0);
        params.set_temperature_inc(0.0);
        params.set_token_timestamps(true);
        let secs = job.audio.len() as f64 / super::SAMPLE_RATE_F;
        // whisper.cpp pads every call to 30 s; sizing the encoder to the audio (plus a margin)
        // makes a 3 s window cost about a tenth of a 30 s one.
        let ctx = ((secs + 1.0) * FRAMES_PER_SEC).ceil().min(1500.0) as i32;
        params.set_audio_ctx(ctx);
        let prompt = fit_prompt(self.model, &job.hints, &job.prompt);
        if !prompt.is_empty() {
            params.set_initial_prompt(&prompt);
        }
        // One segment whose length is capped: a decode that produces far more tokens than
        // anyone can say in the window is a loop (short encoder windows make them likelier);
        // the cap stops it early instead of paying for it.
        params.set_single_segment(true);
        params.set_max_tokens((secs * MAX_TOKENS_PER_SEC) as i32 + 8);
        // whisper.cpp wants at least one second; pad short windows with silence.
        let min = super::SAMPLE_RATE_F as usize * 11 / 10;
        let padded;
        let audio = if job.audio.len() < min {
            padded = [&job.audio[..], &vec![0.0; min - job.audio.len()]].concat();
            &padded[..]
        } else {
            &job.audio[..]
        };
        self.state
            .full(params, audio)
            .map_err(|e| TranscribeError::Whisper(e.to_string()))?;
        let mut words: Vec<Word> = Vec::new();
        let mut probs: Vec<f32> = Vec::new();
        let mut no_speech = 0f32;
        let (mut logp, mut n_tok) = (0f64, 0usize);
        let eot = self.model.token_eot();
        let end_of_audio = job.start + secs;
        // Words from tokens: a token that starts with a space starts a word.
        let flush = |words: &mut Vec<Word>, probs: &mut Vec<f32>| {
            if let Some(w) = words.last_mut() {
                if !probs.is_empty() {
                    w.prob = probs.iter().sum::<f32>() / probs.len() as f32;
                }
            }
            probs.clear();
        };
        for seg in self.state.as_iter() {
            no_speech = no_speech.max(seg.no_speech_probability());
            for i in 0..seg.n_tokens() {
                let Some(tok) = seg.get_token(i) else {
                    continue;
                };
                let d = tok.token_data();
                if d.id >= eot {
                    continue;
                }
                logp += d.plog as f64;
                n_tok += 1;
                let text = tok
                    .to_str_lossy()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let (t0, t1) = (
                    (job.start + d.t0 as f64 / 100.0).min(end_of_audio),
                    (job.start + d.t1 as f64 / 100.0).min(end_of_audio),
                );
                let starts_word = text.starts_with(' ') || words.is_empty();
                if starts_word {
                    flush(&mut words, &mut probs);
                    words.push(Word {
                        text,
                        start: t0.min(t1),
                        end: t1,
                        prob: d.p,
                    });
                } else if let Some(w) = words.last_mut() {
                    w.text.push_str(&text);
                    w.end = w.end.max(t1);
                }
                probs.push(d.p);
            }
        }
        flush(&mut words, &mut probs);
        words.retain(|w| !w.text.trim().is_empty());
        if self.speed < 1.0 {
            std::thread::sleep(t0.elapsed().mul_f64(1.0 / self.speed - 1.0));
        }
        self.busy_secs += t0.elapsed().as_secs_f64();
        // Never the words or the prompt: a log is written, and a protected name must not be
        // (the redactor runs later, in the server). Counts and times only.
        tracing::debug!(
            start = job.start,
            secs,
            closing = job.closing,
            prompt_chars = job.prompt.chars().count(),
            took = t0.elapsed().as_secs_f64(),
            no_speech,
            logprob = if n_tok == 0 { 0.0 } else { logp / n_tok as f64 },
            words = words.len(),
            "decoded"
        );
        Ok(Hypothesis {
            words,
            no_speech_prob: no_speech,
            avg_logprob: if n_tok == 0 {
                0.0
            } else {
                (logp / n_tok as f64) as f32
            },
            language,
        })
    }
}

/// Whisper's prompt holds at most this many tokens (half its 448-token text context, less
/// the start-of-prompt token); whisper.cpp keeps the *last* tokens of a longer prompt, which
/// would drop the hints that come first.
pub const PROMPT_TOKENS: usize = 223;

/// The share of the prompt budget the hints may take; the rest is for recent text.
const HINT_SHARE: usize = 2;

/// Builds the prompt: hint terms first (as many as fit in half the budget, in the given
/// order), then as much of the most recent text as fits in the rest, within
/// [`PROMPT_TOKENS`] as the model's tokenizer counts.
pub fn fit_prompt(model: &Model, hints: &[String], recent: &str) -> String {
    let count = |t: &str| model.token_count(t);
    let mut hint_text = String::new();
    for term in hints {
        let next = if hint_text.is_empty() {
            term.clone()
        } else {
            format!("{hint_text}, {term}")
        };
        if count(&next) > PROMPT_TOKENS / HINT_SHARE {
            break;
        }
        hint_text = next;
    }
    let sep = if hint_text.is_empty() { "" } else { ". " };
    let room = PROMPT_TOKENS.saturating_sub(count(&hint_text) + count(sep));
    let words: Vec<&str> = recent.split_whitespace().collect();
    // Keep the longest run of newest words that fits: binary search on the first word kept.
    let fits = |from: usize| count(&words[from..].join(" ")) <= room;
    let (mut lo, mut hi) = (0, words.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fits(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let tail = words[lo..].join(" ");
    format!("{hint_text}{sep}{tail}").trim().to_string()
}

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
    pub fn secs(&self, secs: f64, closing: bool) -> f64 {
        let (fixed, per_sec) = if closing { (0.22, 0.12) } else { (0.13, 0.11) };
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
    /// every [`REDUCED_STEP`] seconds and at pauses (a channel waiting its turn widens its
    /// step so, see `Policy::waited`), the floor every second.
    pub reduced: usize,
}

/// The step (seconds) of a channel decoded less often because the machine is full (the
/// policy's `max_step`).
pub const REDUCED_STEP: f64 = 6.0;

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
        // Reduced: a decode of about 8 s every REDUCED_STEP seconds, and the closing one.
        let reduced_each =
            cost.secs(REDUCED_STEP + 2.0, false) / REDUCED_STEP + cost.secs(4.0, true) / 6.0;
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
             captioned with updates every second, about {} with the booths decoded every {} s \
             and at pauses",
            self.decode_4s, self.full, self.reduced, REDUCED_STEP
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
    };
    decoder.decode(&job)?;
    let t = Instant::now();
    decoder.decode(&job)?;
    Ok(Capacity::from_decode(t.elapsed().as_secs_f64()))
}

/// An emitted event with the emission time (seconds since the stream started).
#[derive(Debug, Clone)]
pub struct Emitted {
    pub event: Event,
    pub at: f64,
}

/// Summary of a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunStats {
    pub audio_secs: f64,
    pub decodes: u64,
    /// Wall seconds whisper.cpp ran.
    pub decode_secs: f64,
    pub dropped: super::policy::Dropped,
    pub max_lag: f64,
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
                Some(c) => c.secs(job.audio.len() as f64 / super::SAMPLE_RATE_F, job.closing),
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
