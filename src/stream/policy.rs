//! The streaming commit policy: a sans-IO state machine.
//!
//! It is fed audio and told the time; it asks for decodes ([`DecodeJob`]) and is handed their
//! results ([`Hypothesis`]); it emits caption events ([`Event`]). It never reads a clock,
//! never blocks and knows nothing of threads or whisper.cpp, so it runs the same under a
//! virtual clock (as fast as the CPU allows) and in real time, and is unit-tested on recorded
//! hypotheses.
//!
//! # How text is committed
//!
//! - The voice activity detector ([`super::vad`]) opens an utterance at speech and closes it at
//!   a pause. Silence costs no decode.
//! - While an utterance is open, every `step` seconds of new audio the uncommitted audio (the
//!   *window*, from the last commit point) is decoded. Words that two consecutive hypotheses
//!   agree on (LocalAgreement-2) are committed as a `final`; the rest is shown as the
//!   `partial` of the open segment.
//! - When the pause comes, the rest of the window is decoded once more and committed whole.
//! - After a commit the window starts at the end of the last committed word, so decodes stay
//!   short (whisper.cpp's cost follows the audio length once `audio_ctx` is sized to it).
//! - Guards drop what Whisper invents: high no-speech probability or low confidence, text
//!   that compresses too well (a repetition loop: the context is reset), a decode that begins
//!   by repeating the last committed words (an echo of the prompt), the prompt's term list
//!   recited after a name it has ([`recited_terms`]), and known phantom phrases ("Thanks for
//!   watching") over near-silence.
//! - When decodes fall behind the audio, or wait their turn behind other channels, the step
//!   widens (fewer decodes, each committing nearly all it heard at the window's cap), so the
//!   lag stays bounded instead of growing, and the channel is decoded in pieces: a short
//!   pause (a breath, 200 ms) ends a piece of at least `piece_after` seconds as a pause ends
//!   an utterance (a piece with no pause is cut at `piece_max`, in its quietest gap between
//!   words), and one greedy closing decode commits it whole — no tentative decodes, no
//!   partials: a word waits for its piece's end and one decode, not for two decodes a wide
//!   step apart to agree. No audio is skipped
//!   for it: speech is given up only when more than `max_window` of it gave no word at all
//!   (`give_up_window` for a channel that waited its turn behind others),
//!   and then it is counted ([`Policy::untranscribed`]), as is an utterance whose every
//!   decode failed.

use std::collections::VecDeque;

use super::explain::{Guard, Trace};
use super::vad::{Vad, VadConfig, VadEvent, FRAME_SECS};
use super::SAMPLE_RATE_F;

/// Policy settings.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Seconds of new audio between two decodes of an open utterance.
    pub step: f64,
    /// The longest window decoded at once; beyond it the oldest uncommitted audio is
    /// committed as it stands.
    pub max_window: f64,
    /// A word that decodes still read differently when one has heard this many seconds of
    /// audio after it is committed as that decode reads it: agreement gets no better with
    /// more audio after a word, and such words (an 8-kHz telephone menu read a new way by
    /// every decode, recorded) otherwise waited for the pause or a full window, 6-12 s.
    /// Only while the speaker goes on and the step is the base one: see [`Policy::aged`].
    pub commit_age: f64,
    /// Audio kept before the detected speech start, so the first syllable is not cut.
    pub preroll: f64,
    /// The window is cut (at a committed word) once it is this long; the last
    /// `context_words` committed words stay in it as context and are recognised and dropped
    /// from each hypothesis.
    pub trim_after: f64,
    pub context_words: usize,
    /// Windows shorter than this are decoded without a prompt (Whisper given a prompt and a
    /// very short window tends to repeat the prompt).
    pub min_prompt_window: f64,
    /// Audio decoded after the detector's speech end, in the closing decode.
    pub tail: f64,
    /// The last words of the previous utterance are decoded again with the next one (for
    /// context) if the pause between them is shorter than this.
    pub max_context_gap: f64,
    /// Lag (seconds behind the audio) at which the policy starts to degrade.
    pub degrade_lag: f64,
    /// The widest step when degraded (seconds of new audio between decodes).
    pub max_step: f64,
    /// With its step widened, a channel is decoded in pieces: a short pause inside speech
    /// ([`super::vad::VadEvent::Pause`]) ends a piece as a pause ends an utterance, once the
    /// piece holds this many seconds, and one closing decode commits it whole. Tentative
    /// decodes a wide step apart waited for two to agree (6 s and more per word for a booth
    /// beside the floor); a piece's words wait for the piece's end and one decode.
    pub piece_after: f64,
    /// A piece with no such pause is cut once it is this long, at its quietest 100 ms of
    /// gap between words in the last 3 s (at twice this, with no gap, at its quietest
    /// 100 ms). No tentative decodes are made in pieces: a piece is decoded once.
    pub piece_max: f64,
    /// A channel that waited its turn has its oldest uncommitted speech given up, counted,
    /// only past this (seconds; others past `max_window`); at most Whisper's 30 s.
    pub give_up_window: f64,
    /// Whisper's rule: no-speech probability above this...
    pub no_speech_threshold: f32,
    /// ...together with an average log-probability below this means no speech.
    pub logprob_threshold: f32,
    /// Text whose gzip-like compression ratio exceeds this is a repetition loop.
    pub compression_ratio_threshold: f32,
    /// Window level (dBFS) under which a known phantom phrase is dropped.
    pub phantom_level_db: f32,
    /// Characters of committed text carried in the prompt.
    pub prompt_chars: usize,
    /// Terms every prompt starts with (the glossary's, most valuable first); see
    /// [`Policy::set_hints`].
    pub hints: Vec<String>,
    pub vad: VadConfig,
    /// Record the policy's decisions as [`Event::Trace`] events (for the benchmark's
    /// `--explain`; never in a meeting: the record holds the words heard).
    pub trace: bool,
}

impl Default for PolicyConfig {
    fn default() -> PolicyConfig {
        PolicyConfig {
            step: 1.0,
            max_window: 12.0,
            commit_age: 3.5,
            preroll: 0.5,
            trim_after: 10.0,
            context_words: 4,
            min_prompt_window: 1.0,
            tail: 0.5,
            max_context_gap: 2.0,
            degrade_lag: 2.0,
            max_step: 6.0,
            piece_after: 3.0,
            piece_max: 6.0,
            give_up_window: 24.0,
            no_speech_threshold: 0.6,
            logprob_threshold: -1.0,
            compression_ratio_threshold: 2.4,
            phantom_level_db: -40.0,
            prompt_chars: 400,
            hints: Vec::new(),
            vad: VadConfig::default(),
            trace: false,
        }
    }
}

/// A channel whose step has widened to this many times its own (the first widening, after
/// a decode late or kept waiting over `degrade_lag`) is in the reduced mode: decoded in
/// pieces ([`PolicyConfig::piece_after`]), and said so to the organizer and the readers.
pub const REDUCED_AT: f64 = 1.5;

/// Whisper's translate task is less sure of its words than transcription: on 20 s of Spanish
/// (`es-demo-congrats.wav`, base) its decodes averaged log-probabilities of -0.9 to -1.6,
/// where transcription of the same audio stays above -1.0. The threshold under which a
/// translation is dropped as failed.
pub const TRANSLATE_LOGPROB_THRESHOLD: f32 = -1.7;

impl PolicyConfig {
    /// The policy for a channel in Whisper's translate task: the same, but only a decode less
    /// sure than [`TRANSLATE_LOGPROB_THRESHOLD`] is dropped as failed.
    pub fn translating(self) -> PolicyConfig {
        PolicyConfig {
            logprob_threshold: TRANSLATE_LOGPROB_THRESHOLD,
            ..self
        }
    }
}

/// One word of a hypothesis, with media times in seconds from the start of the stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Word {
    /// As Whisper wrote it, usually with a leading space.
    pub text: String,
    pub start: f64,
    pub end: f64,
    /// Mean token probability.
    pub prob: f32,
}

/// Whisper's output for one decode job.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Hypothesis {
    pub words: Vec<Word>,
    /// Highest no-speech probability among the segments.
    pub no_speech_prob: f32,
    /// Mean log-probability of the tokens.
    pub avg_logprob: f32,
    /// The language used (given or detected).
    pub language: String,
}

/// A request to decode audio.
#[derive(Debug, Clone)]
pub struct DecodeJob {
    pub id: u64,
    /// Media time of the first sample.
    pub start: f64,
    pub audio: Vec<f32>,
    /// Recent committed text, for Whisper's prompt.
    pub prompt: String,
    /// Terms to bias recognition towards, most valuable first (see [`Policy::set_hints`]).
    pub hints: Vec<String>,
    /// The last decode of an utterance: everything it returns is committed.
    pub closing: bool,
    /// Beam search (an utterance's closing decode), else greedy (tentative decodes, and a
    /// piece's closing decode: see [`PolicyConfig::piece_after`]).
    pub beam: bool,
}

/// A caption event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Tentative text of the open segment; a later partial with a higher revision replaces it.
    Partial {
        segment: u64,
        revision: u64,
        text: String,
        start: f64,
        end: f64,
        emitted: f64,
    },
    /// Committed text: immutable, numbered in order.
    Final {
        seq: u64,
        segment: u64,
        start: f64,
        end: f64,
        text: String,
        raw_text: String,
        /// The language Whisper decoded in (ISO 639-1).
        language: String,
        /// The words with their media times.
        words: Vec<Word>,
        emitted: f64,
    },
    /// A decision of the policy, when [`PolicyConfig::trace`] is on.
    Trace(Trace),
    /// Finals already emitted, revised: the same finals (by their times) with the text of
    /// a long beam decode of their audio ([`super::revise`]; the scheduler's, never the
    /// policy's). Its times are the channel's already.
    Revised(super::revise::Revision),
}

impl Event {
    /// The same event `secs` later and `segments` further on: a channel's events after its
    /// recognition was restarted (a new policy counts from zero again) follow the old ones.
    pub fn shifted(mut self, secs: f64, segments: u64) -> Event {
        match &mut self {
            Event::Partial {
                segment,
                start,
                end,
                ..
            } => {
                *segment += segments;
                *start += secs;
                *end += secs;
            }
            Event::Final {
                segment,
                start,
                end,
                words,
                ..
            } => {
                *segment += segments;
                *start += secs;
                *end += secs;
                for w in words {
                    w.start += secs;
                    w.end += secs;
                }
            }
            Event::Trace(_) | Event::Revised(_) => {}
        }
        self
    }
}

/// Why a hypothesis (or part of it) was dropped; counted for reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Dropped {
    pub no_speech: u64,
    /// Decodes whose average log-probability was below the threshold (noise, mumbling).
    pub low_confidence: u64,
    pub compression: u64,
    /// Hypotheses that began by repeating the last committed words (Whisper echoing its
    /// prompt, or looping across windows): the repeated words were dropped.
    pub repetition: u64,
    pub phantom: u64,
    /// Decodes that said a word or two over seconds of speech (failed): dropped, and the
    /// next decode went without the prompt.
    pub sparse: u64,
    /// Decodes of several words most of which Whisper itself doubted: invented over noise.
    pub unsure: u64,
    /// Hypotheses that recited the prompt's terms ([`recited_terms`]): those terms were
    /// dropped, the rest kept.
    pub recited: u64,
}

/// A decode of at least this many words…
const UNSURE_MIN_WORDS: usize = 3;
/// …whose median word probability is below this was invented: over swelling brown noise
/// Whisper wrote "I'm going to keep going." with word probabilities 0.10, 0.08, 0.85, 0.01,
/// 0.32 (median 0.10); finals of real speech (jfk, the Spanish IVR prompts, base) have
/// medians of 0.50 and up, most above 0.8.
const UNSURE_MEDIAN_PROB: f32 = 0.2;

/// A decode of at least this many seconds…
const SPARSE_MIN_SECS: f64 = 3.0;
/// …with fewer words than this per second has failed (speech is 2–3 words a second)…
const SPARSE_WORDS_PER_SEC: f64 = 0.5;
/// …unless it stopped short: this many words at least…
const SHORT_STOP_MIN_WORDS: usize = 3;
/// …as many as this per second from the window's start to where they stop (Whisper, greedy
/// on a long window, sometimes stops at a pause, and the rest is decoded from its last
/// word: see [`SHORT_STOP_SECS`]).
const SHORT_STOP_WORDS_PER_SEC: f64 = 1.0;

/// The closing decode's last this many words are looked in for tentative words it already
/// has ([`Policy::rescue_tail`]).
const CLOSING_TAIL_WORDS: usize = 8;

/// A word shorter than this has no audio under it: Whisper squeezed it into no time (words
/// it wrote past the speech, or a loop).
const SQUEEZED_SECS: f64 = 0.05;

fn squeezed(w: &Word) -> bool {
    w.end - w.start < SQUEEZED_SECS
}

/// Committed words remembered for the prompt: more than `prompt_chars` (400) can hold.
const RECENT_WORDS: usize = 120;

/// Phrases Whisper is known to invent over silence or noise, by language, in the form
/// [`crate::eval::normalize`] gives them (lower case, no accents, no punctuation).
const PHANTOMS: &[&str] = &[
    "thanks for watching",
    "thank you for watching",
    "thank you",
    "please subscribe",
    "subtitles by",
    "subtitles by the amara org community",
    "transcribed by",
    "you",
    "bye",
    "gracias por ver",
    "gracias por ver el video",
    "subtitulos por la comunidad de amara org",
    "subtitulado por la comunidad de amara org",
    "gracias",
    "продолжение следует",
    "субтитры сделал dimatorzok",
    "редактор субтитров а семкин корректор а егорова",
    "ondertitels ingediend door de amara org gemeenschap",
    "sous titres realises par la communaute d amara org",
];

/// A decode out: its id, whether it closes the utterance, its audio `[from, to)`, and
/// whether it went with a prompt.
#[derive(Debug, Clone, Copy)]
struct Flight {
    id: u64,
    closing: bool,
    from: f64,
    to: f64,
    prompted: bool,
}

/// The state machine.
pub struct Policy {
    cfg: PolicyConfig,
    vad: Vad,
    /// Audio from `buf_start` (media seconds) to now.
    buf: Vec<f32>,
    buf_start: f64,
    /// Where uncommitted audio begins (media seconds): the last committed word's end, or
    /// the pre-roll of the latest utterance if it began later.
    committed_until: f64,
    /// The last committed word's end. Whisper's times for words before it are old words;
    /// not `committed_until`, which moves to the next utterance's start although the voice
    /// detector, late on a quiet first word, may open the utterance after the word began.
    last_word_end: f64,
    /// The end of the last committed word whose time Whisper gave properly (not squeezed to
    /// an instant at a window's end), and how many squeezed words were committed after it.
    last_sure_end: f64,
    squeezed_tail: usize,
    /// Where the decode window begins (media seconds): the utterance start, later a committed
    /// word kept as context.
    window_start: f64,
    /// Committed words inside the window, to recognise them in each hypothesis.
    window_words: Vec<Word>,
    /// The last committed words (normalised), to recognise a prompt Whisper repeats.
    recent_words: VecDeque<String>,
    /// Where the detector heard the utterance end, while its closing decode is owed.
    speech_end: Option<f64>,
    /// Where a piece cut in speech (no pause) ends: its closing decode stops there.
    cut: Option<f64>,
    /// The utterance's closing decode stopped short of its end and is being run again
    /// from where it stopped (see [`SHORT_STOP_SECS`]).
    short_retried: bool,
    /// Where the next utterance began, if it did before that closing decode.
    next_onset: Option<f64>,
    /// Where that next utterance ended, if it did before that closing decode too.
    next_end: Option<f64>,
    /// In pieces: a short pause in that next utterance, and where speech resumed after it,
    /// while the closing decode waited (the decode, once taken, reaches to that pause).
    next_pause: Option<f64>,
    next_resume: Option<f64>,
    /// Samples received so far.
    received: u64,
    /// Whether an utterance is open.
    in_utterance: bool,
    /// An utterance ended and its closing decode is owed.
    closing_owed: bool,
    /// Media time of the audio end when the last decode was issued.
    last_decode_at: f64,
    /// The decode out.
    in_flight: Option<Flight>,
    /// The next decode goes without a prompt (the last one failed with it).
    prompt_off: bool,
    next_job: u64,
    /// New (uncommitted) words of the previous hypothesis, for LocalAgreement.
    prev_words: Vec<Word>,
    /// The hypothesis before it, while nothing has been committed since (a decode may agree
    /// with either: see the tentative path of [`Policy::on_result`]).
    older_words: Vec<Word>,
    /// Terms for the prompt (from the glossary).
    hints: Vec<String>,
    /// The language of the latest hypothesis.
    language: String,
    /// Committed words (as Whisper wrote them) with their media end time, newest last, for
    /// the prompt. Per word, not per final: a final that straddles the window's start would
    /// otherwise leave its words before the window out of the prompt, and Whisper, prompted
    /// with text that stops short of the audio, invents the missing words.
    recent: VecDeque<(String, f64)>,
    next_seq: u64,
    /// The last final's start: a final never starts before the one it follows.
    last_final_start: f64,
    segment: u64,
    revision: u64,
    events: VecDeque<Event>,
    /// Current step, widened when behind.
    step: f64,
    /// The window cap (`max_window`; reported with the step).
    window: f64,
    /// Lag, seconds: how far the latest result is behind the audio.
    pub lag: f64,
    /// Seconds the decode now out waited for the decoder after it was due (other channels
    /// went first); see [`Policy::waited`].
    wait: f64,
    pub dropped: Dropped,
    /// Decodes issued (for CPU accounting in reports).
    pub decodes: u64,
    /// Seconds of speech given up with no decode that could transcribe them: a window
    /// whose every decode failed a guard, audio left out when the policy fell too far
    /// behind. Counted, never lost in silence (`tolk_speech_untranscribed_seconds_total`).
    pub untranscribed: f64,
    /// Whether the decisions are recorded ([`Event::Trace`]).
    tracing: bool,
}

impl Policy {
    pub fn new(cfg: PolicyConfig) -> Policy {
        let hints = cfg.hints.clone();
        let cfg_trace = cfg.trace;
        Policy {
            vad: Vad::new(cfg.vad),
            step: cfg.step,
            window: cfg.max_window,
            cfg,
            buf: Vec::new(),
            buf_start: 0.0,
            committed_until: 0.0,
            last_word_end: 0.0,
            last_sure_end: 0.0,
            squeezed_tail: 0,
            untranscribed: 0.0,
            window_start: 0.0,
            window_words: Vec::new(),
            recent_words: VecDeque::new(),
            speech_end: None,
            cut: None,
            short_retried: false,
            next_onset: None,
            next_end: None,
            next_pause: None,
            next_resume: None,
            received: 0,
            in_utterance: false,
            closing_owed: false,
            last_decode_at: 0.0,
            in_flight: None,
            prompt_off: false,
            next_job: 0,
            prev_words: Vec::new(),
            older_words: Vec::new(),
            recent: VecDeque::new(),
            hints,
            language: String::new(),
            next_seq: 0,
            last_final_start: 0.0,
            segment: 0,
            revision: 0,
            events: VecDeque::new(),
            lag: 0.0,
            wait: 0.0,
            dropped: Dropped::default(),
            decodes: 0,
            tracing: cfg_trace,
        }
    }

    fn note(&mut self, t: impl FnOnce() -> Trace) {
        if self.tracing {
            self.events.push_back(Event::Trace(t()));
        }
    }

    /// Media time of the end of the audio received so far.
    pub fn media_now(&self) -> f64 {
        self.received as f64 / SAMPLE_RATE_F
    }

    /// Whether a decode is in flight.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Segments begun so far (the next segment's number).
    pub fn segments(&self) -> u64 {
        self.segment + 1
    }

    /// The current step and window cap (they change when the policy degrades).
    pub fn step_and_window(&self) -> (f64, f64) {
        (self.step, self.window)
    }

    /// Feeds audio that arrived by `now`.
    pub fn push_audio(&mut self, samples: &[f32]) {
        for event in self.vad.push(samples) {
            match event {
                VadEvent::SpeechStart { frame } => {
                    self.note(|| Trace::SpeechStart {
                        at: frame as f64 * FRAME_SECS,
                    });
                    self.speech_from(frame as f64 * FRAME_SECS);
                }
                VadEvent::SpeechEnd { frame } => {
                    self.note(|| Trace::SpeechEnd {
                        at: frame as f64 * FRAME_SECS,
                    });
                    self.speech_until(frame as f64 * FRAME_SECS);
                }
                // A short pause inside speech ends a piece of it when the channel is decoded
                // in pieces (see `piece_after`): its closing decode commits the piece whole.
                VadEvent::Pause { frame } => {
                    let at = frame as f64 * FRAME_SECS;
                    if !self.in_pieces() || !self.in_utterance {
                        continue;
                    }
                    if !self.closing_owed {
                        if at - self.committed_until >= self.cfg.piece_after {
                            self.speech_until(at);
                        }
                    } else if self.next_onset.is_some() {
                        // The last piece's decode is still owed and the next piece has
                        // begun: kept waiting, its decode will reach to this pause.
                        self.next_pause = Some(at);
                        self.next_resume = None;
                    }
                }
                // Speech after such a pause is the next piece (after a pause that ended none,
                // the utterance simply goes on).
                VadEvent::Resume { frame } => {
                    let at = frame as f64 * FRAME_SECS;
                    if !self.in_utterance {
                        self.speech_from(at);
                    } else if self.next_pause.is_some() && self.next_resume.is_none() {
                        self.next_resume = Some(at);
                    }
                }
            }
        }
        self.buf.extend_from_slice(samples);
        self.received += samples.len() as u64;
        self.cut_piece();
        self.trim_buffer();
    }

    /// A piece that found no pause by `piece_max` is cut at its quietest 100 ms of gap
    /// between words in the last 3 s (the detector's level history), or, past twice that
    /// long, at its quietest 100 ms: it ends there and the next piece begins there.
    fn cut_piece(&mut self) {
        let long = self.media_now() - self.committed_until;
        if !self.in_pieces() || !self.in_utterance || self.closing_owed || long < self.cfg.piece_max
        {
            return;
        }
        const WITHIN: usize = (3.0 / FRAME_SECS) as usize;
        const SPAN: usize = (0.1 / FRAME_SECS) as usize;
        let gap = long < 2.0 * self.cfg.piece_max;
        let Some(frame) = self.vad.quietest_recent(WITHIN, SPAN, gap) else {
            return;
        };
        let at = frame as f64 * FRAME_SECS;
        if at <= self.committed_until + 1.0 {
            return;
        }
        self.speech_until(at);
        self.cut = Some(at);
        self.speech_from(at);
    }

    /// Speech (an utterance, or the next piece of one) begins at `t`.
    fn speech_from(&mut self, t: f64) {
        if !self.in_utterance && !self.closing_owed {
            self.open_window(t);
        }
        if self.closing_owed {
            // The next utterance began before the last one's closing decode: that decode must
            // stop before it. (If one began and ended already, this one goes on from it.)
            self.next_onset = self.next_onset.or(Some(t));
            self.next_end = None;
        } else {
            self.speech_end = None;
        }
        self.in_utterance = true;
    }

    /// Speech (an utterance, or a piece of one) ended at `t`: its closing decode is owed.
    fn speech_until(&mut self, t: f64) {
        if !self.in_utterance {
            return;
        }
        self.in_utterance = false;
        if self.closing_owed {
            // The next utterance began, and ended, before the last one's closing decode: its
            // own is owed after that one.
            self.next_end = Some(t);
            self.next_pause = None;
            self.next_resume = None;
        } else {
            self.closing_owed = true;
            self.speech_end = Some(t);
        }
    }

    /// Whether the channel is decoded in pieces: its step widened (decodes late, or waiting
    /// their turn behind other channels), each short pause ends a piece once it is
    /// `piece_after` long, and a piece is committed whole by one closing decode. Never with
    /// an infinite `piece_after` (the benchmark's comparison with the step widened alone).
    fn in_pieces(&self) -> bool {
        self.step >= REDUCED_AT * self.cfg.step - 1e-9 && self.cfg.piece_after.is_finite()
    }

    /// Whether the committed words kept as context can go before an utterance that starts
    /// (pre-roll included) at `t`: they ended at most `max_context_gap` before it, and their
    /// audio is all still buffered (context words with part of their audio cut are not
    /// found in the hypothesis, and then new words are taken for them).
    fn context_alive(&self, t: f64) -> bool {
        match (self.window_words.first(), self.window_words.last()) {
            (Some(first), Some(last)) => {
                t - last.end <= self.cfg.max_context_gap
                    && first.start.min(self.window_start) >= self.buf_start - 1e-3
            }
            _ => false,
        }
    }

    /// Drops audio before the window (keeping the pre-roll while no one speaks).
    fn trim_buffer(&mut self) {
        let keep_from = if self.in_utterance || self.closing_owed {
            self.window_start
        } else {
            // Between utterances: the pre-roll, and the context words, whole, while the next
            // utterance could still begin close enough to them.
            let now = self.media_now();
            let t = now - self.cfg.preroll;
            let mut keep = t;
            if self.context_alive(t) {
                keep = keep.min(self.window_start);
            }
            if t - self.committed_until <= self.cfg.max_context_gap {
                keep = keep.min(self.committed_until);
            }
            keep
        };
        let drop = ((keep_from - self.buf_start) * SAMPLE_RATE_F).floor();
        if drop >= 1.0 {
            let drop = (drop as usize).min(self.buf.len());
            self.buf.drain(..drop);
            self.buf_start += drop as f64 / SAMPLE_RATE_F;
        }
    }

    /// The audio of the window `[from, to)` in media seconds.
    fn window_audio(&self, from: f64, to: f64) -> Vec<f32> {
        let a = (((from - self.buf_start) * SAMPLE_RATE_F).round().max(0.0) as usize)
            .min(self.buf.len());
        let b =
            (((to - self.buf_start) * SAMPLE_RATE_F).round().max(0.0) as usize).min(self.buf.len());
        self.buf[a..b].to_vec()
    }

    /// Whether a decode is due (none in flight, and a step of new speech or a closing decode
    /// owed): a scheduler serving several channels asks this before [`Policy::poll_job`].
    pub fn wants_decode(&self) -> bool {
        self.in_flight.is_none()
            && (self.closing_owed
                || (self.in_utterance
                    && !self.in_pieces()
                    && self.media_now() - self.last_decode_at >= self.step))
    }

    /// A decode to run now, if one is due and none is in flight.
    pub fn poll_job(&mut self, now: f64) -> Option<DecodeJob> {
        if !self.wants_decode() {
            return None;
        }
        let media = self.media_now();
        let closing = self.closing_owed;
        if closing && self.in_pieces() {
            self.reach_on();
        }
        // A closing decode stops shortly after the speech did: the hangover is silence, and
        // Whisper given silence after a prompt tends to repeat the prompt. It stops before
        // the next speech, and before audio not yet heard as quiet: a piece's pause may be
        // ending as its decode is taken (the first sound of the next word decoded with the
        // piece comes out as a word of its own, then said again whole).
        let to = match (closing, self.speech_end) {
            (true, Some(_)) if self.cut.is_some() => self.cut.unwrap_or(media).min(media),
            (true, Some(end)) => {
                let next = self
                    .next_onset
                    .map_or(f64::MAX, |on| (on - 0.05).max(end + 0.1));
                let heard = (self.vad.quiet_until() - 0.05).max(end + 0.1);
                (end + self.cfg.tail).min(next).min(heard).min(media)
            }
            _ => media,
        };
        if to - self.committed_until < 0.3 {
            if closing {
                // Nothing left to decode: the decodes before heard the audio to the end of
                // the speech (committed words squeezed to a window's end can put the commit
                // point past it). Their tentative tail is the best hypothesis there is, and
                // no closing decode will confirm or deny it: it is committed, not withdrawn.
                let tail = std::mem::take(&mut self.prev_words);
                self.older_words.clear();
                self.commit(&tail, now);
                self.close_utterance(now);
            }
            return None;
        }
        // Uncommitted speech longer than the window: every decode of it failed (when decodes
        // give words, the window's oldest words are committed as they stand once it passes
        // `max_window`). Its oldest part is given up, counted. A channel that waited its turn
        // behind others is allowed up to `give_up_window`: its next decode may come several
        // seconds after its window reached the cap, and it then decodes the longer window
        // whole rather than give up its oldest seconds (with five channels on this machine,
        // booths gave up 15–19 s of speech each in 3 minutes that way). A channel that did
        // not wait keeps `max_window`: for it a longer window only means longer failing
        // decodes (one channel at real time lost twice the words with 24 s for everyone).
        let limit = if self.wait > self.cfg.degrade_lag {
            self.cfg.give_up_window.max(self.cfg.max_window)
        } else {
            self.cfg.max_window
        };
        let oldest = to - limit;
        if oldest > self.committed_until + 0.1 {
            let since = self.committed_until;
            self.give_up(since, oldest, "no decode of it gave words");
            self.committed_until = oldest;
            self.window_start = oldest;
            self.window_words.clear();
        }
        let from = self.window_start.max(oldest).max(self.buf_start);
        let id = self.next_job;
        let committed = self.committed_until;
        self.note(|| Trace::Decode {
            id,
            from,
            to,
            closing,
            skipped: (from > committed + 0.1).then_some((committed, from)),
            taken: media,
        });
        self.next_job += 1;
        // The glossary's hints are prompt text too: off with the rest of the prompt (a
        // decode that parroted or failed with them goes again without).
        let (prompt, hints) = if to - from >= self.cfg.min_prompt_window && !self.prompt_off {
            (self.prompt(), self.hints.clone())
        } else {
            (String::new(), Vec::new())
        };
        self.in_flight = Some(Flight {
            id,
            closing,
            from,
            to,
            prompted: !prompt.is_empty() || !hints.is_empty(),
        });
        self.last_decode_at = media;
        self.decodes += 1;
        Some(DecodeJob {
            id,
            start: from,
            audio: self.window_audio(from, to),
            prompt,
            hints,
            closing,
            // In pieces every decode is greedy: the decoder is short of time (beam search
            // costs about half as much again), and a piece is decoded once.
            beam: closing && !self.in_pieces(),
        })
    }

    /// A piece's closing decode taken after it waited its turn: it reaches over the speech
    /// that came meanwhile, to the end of the utterance or to its last short pause, so one
    /// decode commits all it can (kept to the piece, the next piece's words waited for the
    /// next turn as well: booths among five channels, p50 11–13 s a word).
    fn reach_on(&mut self) {
        if let Some(end) = self.next_end.take() {
            self.speech_end = Some(end);
            self.next_onset = None;
        } else if let Some(pause) = self.next_pause {
            self.speech_end = Some(pause);
            self.next_onset = self.next_resume;
            self.in_utterance = self.next_resume.is_some();
        } else {
            return;
        }
        self.next_pause = None;
        self.next_resume = None;
        self.cut = None;
    }

    /// Sets the terms every decode's prompt starts with, most valuable first: the interface
    /// the glossary feeds (organisation names, acronyms, domain terms in the channel's
    /// language). The engine fits hints and recent text into Whisper's prompt budget, hints
    /// first ([`super::decoder::fit_prompt`]).
    pub fn set_hints(&mut self, terms: Vec<String>) {
        self.hints = terms;
    }

    /// Recent committed text that lies before the window. Words inside the window are in
    /// its audio: given them in the prompt too, Whisper skips them or says them twice.
    fn prompt(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        let mut len = 0;
        for (t, _) in self
            .recent
            .iter()
            .rev()
            .filter(|(_, end)| *end <= self.window_start + 0.01)
        {
            if len + t.len() + 1 > self.cfg.prompt_chars {
                break;
            }
            len += t.len() + 1;
            parts.push(t);
        }
        // A decode's first word has no leading space (scripts without spaces between words
        // have none inside a decode either): one goes between decodes.
        let mut out = String::new();
        for t in parts.into_iter().rev() {
            if !out.is_empty() && !t.starts_with(char::is_whitespace) {
                out.push(' ');
            }
            out.push_str(t);
        }
        out.trim().to_string()
    }

    /// Hands in the result of job `id`, decoded by `now`.
    pub fn on_result(&mut self, id: u64, hyp: Hypothesis, now: f64) {
        // A result for a job that is not the one out (a stale or duplicate answer) is ignored
        // and the job stays out.
        let Flight {
            closing,
            from,
            to,
            prompted,
            ..
        } = match self.in_flight {
            Some(f) if f.id == id => f,
            _ => return,
        };
        let secs = to - from;
        self.in_flight = None;
        if !hyp.language.is_empty() {
            self.language = hyp.language.clone();
        }
        self.lag = now - self.last_decode_at;
        self.adapt();
        let mut hyp = hyp;
        let heard = if self.tracing {
            hyp.words.clone()
        } else {
            Vec::new()
        };
        let mut guard = None;
        // A failed decode that still says something: a word or two over seconds of speech
        // ("are" for 5 to 12 s of an IVR prompt, recorded; every decode of that window with
        // the same prompt failed the same way). It is dropped, and the next decode goes
        // without the prompt; a closing decode is run again that way. Not one that said its
        // words as densely as speech and then stopped: it stopped short, and a closing one
        // goes again from its last word (recorded: a booth's piece taken late, 82.5-96.3 s,
        // "e ingresará al sistema de mensajes." in its first 3 s, nothing of the next
        // speaker after a pause; dropped as sparse twice, and 13.8 s were given up).
        let reach = hyp.words.last().map_or(0.0, |w| w.end - from);
        let stopped_short = hyp.words.len() >= SHORT_STOP_MIN_WORDS
            && hyp.words.len() as f64 >= reach * SHORT_STOP_WORDS_PER_SEC;
        if !hyp.words.is_empty()
            && secs >= SPARSE_MIN_SECS
            && (hyp.words.len() as f64) < secs * SPARSE_WORDS_PER_SEC
            && !stopped_short
        {
            self.dropped.sparse += 1;
            hyp.words.clear();
            guard = Some(Guard::Sparse);
            if !self.prompt_off {
                self.prompt_off = true;
                if closing {
                    // Still owed: the next poll runs it again.
                    let _ = self.bare_window();
                    self.note(|| Trace::Result {
                        id,
                        words: heard,
                        dropped: guard,
                        kept: Vec::new(),
                        new: Vec::new(),
                    });
                    return;
                }
            }
        }
        let repeats = self.dropped.repetition;
        let said = !hyp.words.is_empty();
        let (words, dropped) = self.accept(hyp);
        let looped = self.dropped.repetition > repeats;
        let kept = if self.tracing {
            words.clone()
        } else {
            Vec::new()
        };
        let mut words = self.new_words(words);
        let mut guard = guard.or(dropped);
        if prompted && self.prompt_echo(&words) {
            self.dropped.repetition += 1;
            words.clear();
            guard = Some(Guard::Echo);
        }
        // A decode with the prompt that failed goes again without it (Whisper's reference
        // decoder drops the prompt when it has to fall back, for the same reason). If it
        // parroted the prompt (an echo, a loop, nothing new but repeats), the text before is
        // taken out of the prompt for good: after a voice change (IVR prompts, then a quiet
        // speaker with a cold) base said "You can press the pound key to disconnect from the
        // PBX" over 25 s of other speech, decode after decode, while it was prompted.
        let parroted = matches!(guard, Some(Guard::Echo | Guard::Compression))
            || (said && looped && words.is_empty());
        // Nothing new over seconds of audio since the last committed word, only the context
        // said again (squeezed to the window's end, or stopping short of it): Whisper
        // repeating its context, prompted (recorded: "disconnect from the PBX" five decodes
        // in a row over "All right, so this is the sick corpus"; "and that should be all,
        // thanks" six times over "So this is the sick corpus, I have a cold", the closing
        // decode too). A failure like the others.
        // (Not a closing decode run again after one that stopped short: see below.) A
        // closing decode that, prompted, wrote nothing at all is stuck too (recorded: a
        // booth's piece of 68.2-73.3 s, fast speech after "…this is the acoustic corpus I'm
        // talking about.", came back empty and closed the utterance: 17 words went with no
        // count): it runs again without the prompt. Unprompted, nothing is taken for
        // Whisper's word.
        let stuck = (said || (closing && prompted))
            && words.is_empty()
            && guard.is_none()
            && !self.short_retried
            && to - self.last_word_end >= STUCK_SECS;
        // The prompt's text goes for good with any failure it was given to (Whisper's
        // reference decoder resets its prompt when it has to fall back): turned back on, it
        // holds only what is committed after. Kept, it failed every other decode (recorded:
        // prompted with an IVR's "…disconnect from the PBX", base wrote "The set corpus is
        // the set corpus" over a new speaker, decode after decode, each time it was on).
        if prompted && (parroted || stuck || guard.is_some_and(|g| g.failed(prompted))) {
            self.prompt_off = true;
            self.recent.clear();
        } else if !words.is_empty() {
            self.prompt_off = false;
        }
        self.note(|| Trace::Result {
            id,
            words: heard,
            dropped: guard,
            kept,
            new: words.clone(),
        });
        // Where the detector heard the speech end (a piece's cut, or the window's end).
        let end = self.speech_end.map_or(to, |e| e.min(to));
        if closing && self.short_retried && words.is_empty() {
            // The closing decode run again from where the last one's words stopped found no
            // more words: it said only those already committed (the last one had them all,
            // timed early: nothing is missing), or nothing, or what a guard dropped — the
            // speech after them is counted.
            self.short_retried = false;
            if !(said && guard.is_none()) {
                let since = self.committed_until.max(from);
                self.give_up(since, end, "its closing decodes stopped short of it");
            }
            self.close_utterance(now);
            return;
        }
        if closing {
            let failed = words.is_empty() && (stuck || guard.is_some_and(|g| g.failed(prompted)));
            // The utterance's last chance: once more without the prompt (`prompt_off`, set
            // above: Whisper given a prompt sometimes loops on it or answers with nothing
            // sure), and without the committed words' audio before it: asked only while
            // either was there, so it ends.
            if failed && (self.bare_window() | prompted) {
                return;
            }
            let mut words = words;
            let rescued = self.rescue_tail(&words, to);
            if failed {
                // What the tentative words kept do not cover (they may come from a decode
                // several failures back) is counted.
                let since = self.committed_until.max(from);
                let covered = rescued.last().map_or(since, |w| w.end.max(since));
                self.give_up(covered, to, "its decodes failed Whisper's guards");
            }
            words.extend(rescued);
            self.commit(&words, now);
            // The closing decode's word times (beam search, audio cut at the pause) are often
            // squeezed towards the window's end: such words are no use as context audio.
            if words
                .iter()
                .rev()
                .take(self.cfg.context_words)
                .any(squeezed)
            {
                self.window_words.clear();
            }
            // A closing decode whose words stop seconds before the speech's end left that
            // speech out: Whisper, greedy on a long window, stops early (recorded: a booth
            // among three on a slow machine, 42-66 s decoded whole, its words ending at
            // 58.1 s; the closing decode then closed the utterance and 8 s of speech went
            // with no word and no count). It runs again from where its words stopped, as
            // Whisper's own decoder seeks to its last timestamp, for as long as each run
            // gives words; what the last one leaves out is counted (above).
            if !failed && !words.is_empty() && end - self.committed_until >= SHORT_STOP_SECS {
                self.short_retried = true;
                let _ = self.bare_window();
                return;
            }
            self.short_retried = false;
            self.close_utterance(now);
            return;
        }
        // A failed decode, or one that wrote nothing at all over the window's speech, says
        // nothing of the words: the hypothesis before it stands, for the next decode to
        // agree with (wiped, a decode that failed every other time held 30 words to the
        // pause; recorded: 16-29 times a run).
        if words.is_empty() && (guard.is_some() || !said) {
            return;
        }
        // The last word of a tentative decode is where the audio is cut: two decodes may
        // agree on it and both be wrong ("ask NOT" for "ask not what"). It waits for a
        // decode that hears past it.
        // Two decodes agree, the latest and either of the two before it: successive decodes
        // may alternate between two readings of the same speech (recorded: "Yeah, so that
        // just happened" / "Yes, that just happened" / "Yeah, so that just happened"), and
        // each would wait for the pause.
        // Across a decode that read them otherwise, three words at least: two ("Ties plus"
        // against "Tais Plus in Kyrgyzstan") committed a misheard name apart from the words
        // that would have corrected it.
        let older = agreement(&self.older_words, &words);
        let agreed = agreement(&self.prev_words, &words)
            .max(if older >= OLDER_AGREEMENT_MIN {
                older
            } else {
                0
            })
            .min(words.len().saturating_sub(1));
        // The window is full when the next step would take it past its cap: what has not
        // been agreed on is committed as it stands (all but the last two words), before the
        // oldest audio would have to be given up. (Measured as "is past the cap now", it
        // never fired at real time: the give-up left the window exactly at the cap, since
        // the audio that arrives during a decode is fed after its result; 110 words of a
        // Spanish IVR passage whose decodes never agreed were given up, step by step.)
        let cap_reached = self.media_now() + self.step - self.committed_until > self.window;
        let n_commit = if cap_reached {
            agreed.max(words.len().saturating_sub(2))
        } else {
            agreed.max(self.aged(&words, to))
        };
        self.commit(&words[..n_commit], now);
        self.older_words = if n_commit == 0 {
            std::mem::take(&mut self.prev_words)
        } else {
            Vec::new()
        };
        self.prev_words = words[n_commit..].to_vec();
        if !self.prev_words.is_empty() {
            self.revision += 1;
            self.events.push_back(Event::Partial {
                segment: self.segment,
                revision: self.revision,
                text: join_words(&self.prev_words),
                start: self.prev_words[0].start,
                end: self.prev_words[self.prev_words.len() - 1].end,
                emitted: now,
            });
        }
    }

    /// How many leading words of a tentative decode are committed by age: those it heard
    /// `commit_age` seconds of audio after (not its last word, not words squeezed to an
    /// instant, whose times say nothing). Not when the speaker has paused (the detector
    /// quiet for `AGE_QUIET_FRAMES`): the closing decode, beam search over the whole
    /// utterance, comes within a second and reads better (recorded: greedy "Ties plus
    /// incurgistan" where it writes "Tais Plus in Kyrgyzstan", the glossary's evidence).
    /// Not with a widened step: each decode then hears several seconds past its words, and
    /// committing by age commits every greedy reading (a booth in the reduced mode lost 23
    /// of 123 words to it, against 20 without).
    fn aged(&self, words: &[Word], to: f64) -> usize {
        if self.step > self.cfg.step + 1e-9 || self.vad.quiet_frames() >= AGE_QUIET_FRAMES {
            return 0;
        }
        words[..words.len().saturating_sub(1)]
            .iter()
            .take_while(|w| !squeezed(w) && to - w.end >= self.cfg.commit_age)
            .count()
    }

    /// The words of a hypothesis that are not committed yet. The window holds committed words
    /// as context; the hypothesis prefix that best matches them (edit distance on normalised
    /// words, since Whisper may word them a little differently) is dropped. If nothing
    /// matches well, word times decide.
    fn new_words(&mut self, words: Vec<Word>) -> Vec<Word> {
        let ctx: Vec<String> = self
            .window_words
            .iter()
            .map(|w| normalise(&w.text))
            .collect();
        let hyp: Vec<String> = words.iter().map(|w| normalise(&w.text)).collect();
        // Whisper sometimes starts by repeating the end of its prompt (the committed text).
        // Where the text could end at several places (a speaker or an IVR menu saying the
        // same words again), time decides: the old words end where the last committed
        // word ended, a repeat after it is new speech.
        let ends: Vec<f64> = words.iter().map(|w| w.end).collect();
        let at = self.last_word_end;
        let recent: Vec<String> = self.recent_words.iter().cloned().collect();
        let echoes: Vec<usize> = overlaps(&recent, &hyp)
            .into_iter()
            .filter(|&k| k >= 2)
            .collect();
        let aligned = align_prefix(&ctx, &hyp);
        if let Some(echo) = nearest_in_time(&echoes, &ends, at) {
            // Unless the window's context words explain more of the hypothesis: context
            // audio read beginning with the words the committed text ends with (recorded:
            // "... quite different" committed, the context "very different than the acoustic
            // corpus ..." read again as "quite different than the acoustic corpus ...", and
            // 11 of its words were committed a second time as new).
            match aligned {
                Some(k) if k > echo => {}
                _ => {
                    self.dropped.repetition += 1;
                    return words.into_iter().skip(echo).collect();
                }
            }
        }
        let mut skip = match aligned {
            Some(k) => k,
            None => {
                // By time; but the last committed word heard again among the words time
                // calls old says where the old ones end (recorded: "dial" committed at
                // 130.8-131.0 s, said at 130.0-130.4; the next decode's "dial 500", "500"
                // at 130.4-131.3, lost "500" to time alone).
                let by_time = self.old_by_time(&words);
                recent
                    .last()
                    .and_then(|last| hyp[..by_time].iter().rposition(|x| x == last))
                    .map_or(by_time, |k| k + 1)
            }
        };
        // The committed text's last words said again near the start of the hypothesis: all
        // up to them is old, whatever the alignment found.
        let anchors = tail_anchor(&recent, &hyp, ctx.len() + 4);
        if let Some(end) = nearest_in_time(&anchors, &ends, at) {
            skip = skip.max(end);
        }
        // The last committed word once more, where it was already committed.
        if let (Some(last), Some(w)) = (recent.last(), words.get(skip)) {
            if hyp[skip] == *last && w.start < self.last_word_end + 0.3 {
                skip += 1;
            }
        }
        words.into_iter().skip(skip).collect()
    }

    /// How many leading words of a hypothesis are old by their times: those before the end
    /// of the last committed word. Committed words squeezed to an instant at a window's end
    /// say only that they came before it: of the words between the last properly timed
    /// committed word and that instant, as many as were squeezed are old, the rest new
    /// (recorded: "Dial one" committed at 302.0 s, said at 300.3; the next decode, timed
    /// properly, heard "Dial 1, if you wish this color" before 302.0, and all of it was
    /// taken for old).
    fn old_by_time(&self, words: &[Word]) -> usize {
        let mid = |w: &Word| (w.start + w.end) / 2.0;
        if self.squeezed_tail == 0 {
            return words
                .iter()
                .take_while(|w| mid(w) < self.last_word_end)
                .count();
        }
        let sure = words
            .iter()
            .take_while(|w| mid(w) < self.last_sure_end)
            .count();
        let unsure = words[sure..]
            .iter()
            .take_while(|w| mid(w) < self.last_word_end)
            .count();
        sure + unsure.min(self.squeezed_tail)
    }

    /// Whether new words are the prompt said again over audio that has none of it: most
    /// of them squeezed into no time, and four in a row found in the recent committed text
    /// (on a 1.3 s cough after IVR prompts, with the prompt: "and forevermore. Dial four, to
    /// send this color to the torture menus, now and forevermore.", 16 of 17 words at one
    /// instant).
    fn prompt_echo(&self, words: &[Word]) -> bool {
        const RUN: usize = 4;
        if words.len() < RUN || words.iter().filter(|w| squeezed(w)).count() * 4 < words.len() * 3 {
            return false;
        }
        let recent: Vec<String> = self.recent.iter().map(|(t, _)| normalise(t)).collect();
        let new: Vec<String> = words.iter().map(|w| normalise(&w.text)).collect();
        new.windows(RUN)
            .any(|n| recent.windows(RUN).any(|r| r == n))
    }

    /// The tentative words (shown as the partial) that a closing decode's `words` leave out
    /// at the end, and that began before the closing window's end `to`: Whisper, decoding
    /// the whole utterance once more with beam search, sometimes stops early or fails; the
    /// tentative decode heard those words, so they are kept rather than withdrawn.
    fn rescue_tail(&mut self, words: &[Word], to: f64) -> Vec<Word> {
        let prev = std::mem::take(&mut self.prev_words);
        self.older_words.clear();
        let after = match words.last() {
            None => 0,
            Some(last) => {
                let key = normalise(&last.text);
                // The closing decode's last word among the tentative ones: what follows it.
                match prev
                    .iter()
                    .rposition(|w| normalise(&w.text) == key && (w.end - last.end).abs() < 1.0)
                {
                    Some(j) => j + 1,
                    None => prev
                        .iter()
                        .position(|w| w.start >= last.end - 0.05)
                        .unwrap_or(prev.len()),
                }
            }
        };
        // Words the closing decode has are not withdrawn; words begun after its window are.
        let mut rescued = Vec::new();
        // Squeezed words are not rescued: a tentative decode's words squeezed at its window's
        // end are often ones Whisper wrote past the speech (its prompt, again).
        for (i, w) in prev.into_iter().enumerate() {
            if w.start >= to || (i >= after && squeezed(&w)) {
                self.prev_words.push(w);
            } else if i >= after {
                rescued.push(w);
            }
        }
        // The tentative words that follow where the closing decode seemed to end may be its
        // own last words, timed earlier (recorded, a sentence said twice: the closing decode
        // squeezed "from Thailand joins the beer educator training." into 11.0-11.7 s, the
        // tentative one had "joins" at 11.7-12.0 s, or "joins the Beer Educator training." at
        // 11.7-13.6 s, and both were committed). They are not rescued when the closing
        // decode's last words hold them in order: two words or more, or all there are.
        let said: Vec<String> = words.iter().map(|w| normalise(&w.text)).collect();
        let again: Vec<String> = rescued.iter().map(|w| normalise(&w.text)).collect();
        let had = (said.len().saturating_sub(CLOSING_TAIL_WORDS)..said.len()).find_map(|p| {
            let m = again.len().min(said.len() - p);
            (m >= 1 && (m >= 2 || m == again.len()) && said[p..p + m] == again[..m]).then_some(m)
        });
        if let Some(m) = had {
            rescued.drain(..m);
        }
        rescued
    }

    /// A closing decode that failed, or stopped short, goes again without the audio of the
    /// committed words before the speech it owes: Whisper, given them, may say them and
    /// stop (recorded: a booth's piece, its prompted decode looping, then unprompted "That
    /// should be all. Thanks." — the 3.6 s of context — and nothing of the 6.6 s of speech
    /// after). Whether it moved the window.
    fn bare_window(&mut self) -> bool {
        if self.window_start >= self.committed_until - 0.1 {
            return false;
        }
        self.window_start = self.committed_until;
        self.window_words.clear();
        true
    }

    /// Speech `[from, to)` given up: counted and recorded.
    fn give_up(&mut self, from: f64, to: f64, why: &str) {
        if to <= from {
            return;
        }
        self.untranscribed += to - from;
        self.note(|| Trace::GivenUp {
            from,
            to,
            why: why.to_string(),
        });
    }

    /// After a commit, cut the window so decodes stay short: it restarts at the
    /// `context_words`-th last committed word.
    fn trim_window(&mut self) {
        if self.media_now() - self.window_start < self.cfg.trim_after {
            return;
        }
        let keep = self.cfg.context_words.min(self.window_words.len());
        if keep == 0 {
            if self.window_words.is_empty() && self.committed_until > self.window_start {
                self.window_start = self.committed_until;
            }
            return;
        }
        let mut first = self.window_words.len() - keep;
        // Words squeezed to an instant at a window's end say only that they came before it:
        // the window keeps the audio from the last properly timed word before them (recorded:
        // "press the pound key" committed at 190.9 s, said at 189.0; the window cut there
        // lost "to disconnect", heard but not yet committed).
        if let Some(q) = self.window_words[first..].iter().position(squeezed) {
            first = self.window_words[..first + q]
                .iter()
                .rposition(|w| !squeezed(w))
                .unwrap_or(0);
        }
        self.window_start = self.window_words[first].start;
        self.window_words.drain(..first);
    }

    /// Ends the stream: whatever is open is decoded once more and committed — speech that
    /// began while the last piece's closing decode was out too (its decode follows that
    /// one's, as when it ends at a pause).
    pub fn finish(&mut self) {
        self.speech_until(self.media_now());
    }

    /// Seconds of speech heard and not committed yet (what a restart would lose).
    pub fn uncommitted_speech(&self) -> f64 {
        if self.in_utterance || self.closing_owed {
            (self.media_now() - self.committed_until).max(0.0)
        } else {
            0.0
        }
    }

    /// Whether everything owed has been emitted (no utterance open, no decode owed).
    pub fn idle(&self) -> bool {
        !self.in_utterance && !self.closing_owed && self.in_flight.is_none()
    }

    /// The next event to send, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn close_utterance(&mut self, now: f64) {
        self.closing_owed = false;
        if !self.prev_words.is_empty() {
            let words = self.prev_words.clone();
            self.note(|| Trace::Withdrawn { words });
            // A tentative tail that the closing decode did not confirm: withdraw it.
            self.revision += 1;
            self.events.push_back(Event::Partial {
                segment: self.segment,
                revision: self.revision,
                text: String::new(),
                start: self.committed_until,
                end: self.committed_until,
                emitted: now,
            });
        }
        self.prev_words.clear();
        self.older_words.clear();
        // The commit point stays at the last committed word: the next utterance may begin
        // inside this one's closing tail, and its first words must not count as old.
        self.speech_end = None;
        self.cut = None;
        // Keep the last few committed words (and their audio) as context for the next
        // utterance.
        let keep = self.cfg.context_words.min(self.window_words.len());
        self.window_words.drain(..self.window_words.len() - keep);
        self.window_start = self
            .window_words
            .first()
            .map(|w| w.start)
            .unwrap_or(self.committed_until);
        // The next utterance began during this one's closing decode: its window opens now
        // (and if it ended too, its closing decode is owed).
        if let Some(onset) = self.next_onset.take() {
            self.open_window(onset);
        }
        if let Some(end) = self.next_end.take() {
            self.closing_owed = true;
            self.speech_end = Some(end);
        } else if let Some(pause) = self.next_pause.take() {
            // In pieces, the next piece ended at a short pause during this decode.
            self.closing_owed = true;
            self.speech_end = Some(pause);
            self.next_onset = self.next_resume.take();
            self.in_utterance = self.next_onset.is_some();
        }
        self.next_resume = None;
        self.trim_buffer();
    }

    /// An utterance heard from `onset` (media seconds), with nothing uncommitted pending:
    /// the window starts at the speech (less the pre-roll) or, if the last words said end
    /// shortly before it and their audio is still here, at those words: Whisper hears the
    /// first word of an utterance much better with the end of the previous one before it
    /// (they are recognised and dropped).
    fn open_window(&mut self, onset: f64) {
        let t = onset - self.cfg.preroll;
        // After a short pause the audio since the last committed word is decoded too: the
        // detector, late on quiet speech, may have heard part of it as the pause.
        if t - self.committed_until > self.cfg.max_context_gap
            || self.committed_until < self.buf_start
        {
            self.committed_until = t.max(0.0);
        }
        if !self.context_alive(t) {
            self.window_start = self.committed_until;
            self.window_words.clear();
        }
    }

    /// When results come late, widen the step (up to `max_step`); when they are on time
    /// again, go back. The window is not shortened: with a wide step the window's cap fires
    /// at every decode, so each decode commits nearly all it heard — finals at pauses or
    /// every few seconds, from one decode of the whole stretch, fewer decodes for the same
    /// speech. (Shortening the window to 4 s as well, as before, cut speech mid-word every few
    /// seconds: with five channels on this machine, booths lost twice their offline words,
    /// benches/README.md "Channels".)
    fn adapt(&mut self) {
        let base = self.cfg.step;
        // Behind: results late, or decodes waiting their turn behind other channels (their
        // window then holds all that came meanwhile, so the result itself is not late).
        let behind = self.lag.max(self.wait);
        if behind > self.cfg.degrade_lag {
            self.step = (self.step * 1.5).min(self.cfg.max_step.max(base));
        } else if behind < self.cfg.degrade_lag / 2.0 {
            self.step = (self.step / 1.25).max(base);
        }
    }

    /// The scheduler says how long the decode it is about to take waited after it was due
    /// (seconds): a channel that keeps waiting widens its step like one whose results are
    /// late, so it asks for fewer, longer decodes and the others get their turns.
    pub fn waited(&mut self, secs: f64) {
        self.wait = secs.max(0.0);
    }

    /// Applies the quality guards; returns the words worth considering, or the guard that
    /// dropped them all.
    fn accept(&mut self, hyp: Hypothesis) -> (Vec<Word>, Option<Guard>) {
        if hyp.words.is_empty() {
            return (Vec::new(), None);
        }
        // Whisper's own rule for silence, and then its rule for a failed decode (which it
        // would retry at a higher temperature; a stream drops it and decodes the next step).
        if hyp.no_speech_prob > self.cfg.no_speech_threshold
            && hyp.avg_logprob < self.cfg.logprob_threshold
        {
            self.dropped.no_speech += 1;
            return (Vec::new(), Some(Guard::NoSpeech));
        }
        if hyp.avg_logprob < self.cfg.logprob_threshold {
            self.dropped.low_confidence += 1;
            return (Vec::new(), Some(Guard::LowConfidence));
        }
        // A loop is cut where it starts. If the text compresses too well (Whisper's sign of
        // a failed decode) the whole decode is dropped, unless the loop is one Whisper fell
        // into after the speech, over the silence at the window's end ("ask not ask not
        // ask not...", the repeats squeezed into no time): what came before it is speech.
        let mut words = hyp.words;
        // A loop inside one word ("e-e-e-e-e-e", "2-n-n-n-n"): that word and what follows go.
        if let Some(i) = words.iter().position(|w| syllable_loop(&w.text)) {
            self.dropped.repetition += 1;
            words.truncate(i);
            if words.is_empty() {
                return (words, Some(Guard::Compression));
            }
        }
        let looping = compression_ratio(&join_words(&words)) > self.cfg.compression_ratio_threshold;
        let mut after_speech = false;
        // The committed text the prompt holds: what Whisper may recite.
        let committed: Vec<String> = self.recent.iter().map(|(t, _)| normalise(t)).collect();
        if let Some(cut) = loop_start(&words, self.last_word_end, &committed) {
            self.dropped.repetition += 1;
            let rest = &words[cut..];
            let none = rest.iter().filter(|w| squeezed(w)).count();
            after_speech = none * 2 >= rest.len();
            words.truncate(cut);
            // What comes before the loop is no speech either when half of it is squeezed
            // into no time: Whisper wrote a phrase over audio it did not hear, then looped
            // on it (recorded, in every run of the English program at 289-291 s, a quiet
            // "But um": "I really don't know if we'll talk like this..." three times over, a
            // phrase committed ten seconds before; its first time was kept, 5 of its 9 words
            // at the window's end).
            let unheard = words.iter().filter(|w| squeezed(w)).count();
            if unheard * 2 >= words.len() {
                self.dropped.compression += 1;
                self.recent.clear();
                return (Vec::new(), Some(Guard::Compression));
            }
        }
        if (looping && !after_speech)
            || compression_ratio(&join_words(&words)) > self.cfg.compression_ratio_threshold
        {
            self.dropped.compression += 1;
            self.recent.clear();
            return (Vec::new(), Some(Guard::Compression));
        }
        if words.len() >= UNSURE_MIN_WORDS {
            let mut probs: Vec<f32> = words.iter().map(|w| w.prob).collect();
            probs.sort_by(f32::total_cmp);
            if probs[probs.len() / 2] < UNSURE_MEDIAN_PROB {
                self.dropped.unsure += 1;
                return (Vec::new(), Some(Guard::Unsure));
            }
        }
        if let Some(cut) = recited_terms(&words, &self.hints) {
            self.dropped.recited += 1;
            words.drain(cut);
            if words.is_empty() {
                return (words, Some(Guard::Echo));
            }
        }
        let key = crate::eval::normalize(&join_words(&words), "").join(" ");
        if PHANTOMS.contains(&key.as_str()) {
            let (a, b) = (words[0].start, words[words.len() - 1].end);
            if level_db(&self.window_audio(a, b.max(a + 0.1))) < self.cfg.phantom_level_db {
                self.dropped.phantom += 1;
                return (Vec::new(), Some(Guard::Phantom));
            }
        }
        (words, None)
    }

    fn commit(&mut self, words: &[Word], now: f64) {
        if words.is_empty() {
            return;
        }
        let raw = join_words(words);
        let last = &words[words.len() - 1];
        self.committed_until = self.committed_until.max(last.end);
        self.last_word_end = self.last_word_end.max(last.end);
        // Whisper's times for the same words move between windows (a last word's end is
        // often stretched to the window's end), so a final can seem to begin before the one
        // it follows. Captions are in order of start (WebVTT requires it): never earlier than
        // the previous final's start, never ending before they begin.
        let start = words[0].start.max(self.last_final_start);
        let end = last.end.max(start);
        self.last_final_start = start;
        self.events.push_back(Event::Final {
            seq: self.next_seq,
            segment: self.segment,
            start,
            end,
            text: raw.clone(),
            raw_text: raw.clone(),
            language: self.language.clone(),
            words: words.to_vec(),
            emitted: now,
        });
        self.next_seq += 1;
        self.segment += 1;
        self.revision = 0;
        self.window_words.extend(words.iter().cloned());
        for w in words {
            self.recent.push_back((w.text.clone(), w.end));
            self.recent_words.push_back(normalise(&w.text));
            if squeezed(w) {
                self.squeezed_tail += 1;
            } else {
                self.last_sure_end = self.last_sure_end.max(w.end);
                self.squeezed_tail = 0;
            }
        }
        while self.recent_words.len() > 16 {
            self.recent_words.pop_front();
        }
        self.trim_window();
        while self.recent.len() > RECENT_WORDS {
            self.recent.pop_front();
        }
    }
}

/// Where a hypothesis starts repeating itself: after a single word looping (below), or the
/// index after the first run of 2 to 8 words
/// that is immediately said again ("for you, for you, for you"), or where a run of 4 or more
/// words comes a second time ("can do for you, ask not what your country can do for you").
/// Whisper loops like this on short windows; the repeat is never speech worth keeping.
///
/// `committed_end` and `committed` are where the last committed word ended and the
/// committed words the prompt holds (normalised): words a decode times over the committed
/// ones that are not the committed text were written out of place, and a later copy of them
/// is not a repeat.
pub fn loop_start(words: &[Word], committed_end: f64, committed: &[String]) -> Option<usize> {
    let w: Vec<String> = words.iter().map(|w| normalise(&w.text)).collect();
    let mut cut: Option<usize> = None;
    // One word said three times or more in a row with most repeats shorter than a syllable
    // ("zero zero zero", the repeats squeezed into no time), or eight times and more:
    // Whisper looping. A speaker's own "words, words, words, words" or "word, word, word,
    // word, word, word" (MFA's conversational recording; 0.3-0.5 s each) is speech.
    for i in 0..w.len().saturating_sub(2) {
        if i > 0 && w[i - 1] == w[i] {
            continue; // judged from where the run begins
        }
        let run = w[i..].iter().take_while(|x| **x == w[i]).count();
        let repeats = &words[i + 1..i + run];
        if run >= 8 || (run >= 3 && unheard(repeats)) {
            // The repeats with audio under them before the first without are the speaker's
            // (at most six words in all: "word, word, word, word" then Whisper looping).
            let audible = repeats
                .iter()
                .take_while(|w| w.end - w.start >= SHORT_WORD_SECS)
                .count()
                .min(5);
            cut = Some(i + 1 + audible);
            break;
        }
    }
    for i in 0..w.len() {
        for n in 2..=8 {
            // A phrase said again back to back: a loop if it goes on (three times or more)
            // or if the repeat has no audio under it. "4 2 4 2" (a password read out, each
            // digit 0.3 s) is speech. (A single word said again is judged above.)
            if i + 2 * n <= w.len()
                && w[i..i + n] == w[i + n..i + 2 * n]
                && w[i..i + n].iter().any(|x| *x != w[i])
            {
                let again = i + 3 * n <= w.len() && w[i..i + n] == w[i + 2 * n..i + 3 * n];
                if again || unheard(&words[i + n..i + 2 * n]) {
                    cut = Some(cut.map_or(i + n, |c| c.min(i + n)));
                }
            }
        }
    }
    // Four words said again further on, with no audio under the repeat. An IVR menu's "send
    // this caller to" in every option, with audio, is speech.
    const RUN: usize = 4;
    // Not when the first time is out of place: timed over the committed words, and not their
    // text (at most one of the four words among them). Those go as context, and the repeat
    // is the only time the words are said (recorded: a booth's piece, after "…about
    // Asterisk, dial 2 now" was committed, came back as "the voiceover IP capabilities of
    // asterisk dial 2 now. If you'd like to test out the voiceover IP capabilities of
    // asterisk.", the first time over "about Asterisk, dial 2 now", the second squeezed at
    // the window's end; cut as a loop, six words said once went with neither). Whisper
    // saying its context again, then reciting it, has the committed text the first time.
    let out_of_place = |i: usize| {
        words[i..i + RUN]
            .iter()
            .all(|x| (x.start + x.end) / 2.0 < committed_end)
            && w[i..i + RUN]
                .iter()
                .filter(|x| committed.contains(x))
                .count()
                <= 1
    };
    for j in RUN..w.len().saturating_sub(RUN - 1) {
        if (0..j.saturating_sub(RUN - 1))
            .any(|i| i + RUN <= j && w[i..i + RUN] == w[j..j + RUN] && !out_of_place(i))
            && unheard(&words[j..j + RUN])
        {
            cut = Some(cut.map_or(j, |c| c.min(j)));
            break;
        }
    }
    cut
}

/// Seconds of speech after a closing decode's last word (to where the detector heard the
/// speech end) over which the decode stopped short: it is run again from that word.
const SHORT_STOP_SECS: f64 = 2.0;

/// Seconds of audio after the last committed word over which a decode that says nothing new
/// (its context again, squeezed to the window's end) has failed.
const STUCK_SECS: f64 = 2.0;
/// Words a decode must agree on with the one before last (not the last) to commit them.
const OLDER_AGREEMENT_MIN: usize = 3;

/// Quiet 20-ms frames (200 ms) after which words are no longer committed by age: a pause
/// has begun, and with it, likely, the utterance's closing decode (see [`Policy::aged`]).
const AGE_QUIET_FRAMES: usize = 10;

/// Words shorter than this have no syllable of audio under them.
const SHORT_WORD_SECS: f64 = 0.15;

/// The words of a hypothesis that recite the prompt's term list instead of speech, if any.
/// The prompt starts with the hints as "A, B, C, D. ": Whisper, having heard one of them
/// (or nothing it can place), sometimes goes on with the list to its end. Recorded, base,
/// the session topic "Tais Plus, Legalife, Empower Foundation, APNSW, NSWP" and a booth
/// saying "Legalife from Ukraine and Empower Foundation from Thailand…" twice: "Legalife
/// from Ukraine, Empower Foundation, APNSW, NSWP." and "APNSW," committed over the pause
/// between the sentences. A recitation is two or more terms back to back in the list's
/// order, each but the last ending in the list's comma, the last being the list's last: the
/// run's first term may have been said (it is kept); the others go. A speaker naming the
/// topic's terms in its order, commas only, to its very end, would lose all but the first:
/// rarer than Whisper's recitation, which every term list invites.
pub fn recited_terms(words: &[Word], hints: &[String]) -> Option<std::ops::Range<usize>> {
    if hints.len() < 2 {
        return None;
    }
    let terms: Vec<Vec<String>> = hints
        .iter()
        .map(|h| h.split_whitespace().map(normalise).collect())
        .collect();
    let said: Vec<String> = words.iter().map(|w| normalise(&w.text)).collect();
    // Term `t` at word `i`: its words' length.
    let at = |t: usize, i: usize| -> Option<usize> {
        let n = terms[t].len();
        (n > 0 && said.get(i..i + n) == Some(&terms[t][..])).then_some(n)
    };
    let ends_with_comma = |i: usize| words[i].text.trim_end().ends_with(',');
    let last = terms.len() - 1;
    for start in 0..said.len() {
        for first in 0..last {
            let Some(n) = at(first, start) else {
                continue;
            };
            // Follow the list from `first`, comma after comma.
            let (mut t, mut end) = (first, start + n);
            while t < last && ends_with_comma(end - 1) {
                match at(t + 1, end) {
                    Some(m) => {
                        t += 1;
                        end += m;
                    }
                    None => break,
                }
            }
            if t == last && t > first {
                return Some(start + n..end);
            }
        }
    }
    None
}

/// Whether most of `words` had no audio under them: repeats Whisper loops into are squeezed
/// into (almost) no time; a speaker's take the time of speech.
fn unheard(words: &[Word]) -> bool {
    let short = words
        .iter()
        .filter(|w| w.end - w.start < SHORT_WORD_SECS)
        .count();
    !words.is_empty() && short * 2 >= words.len()
}

/// Whether one written word is a syllable said again and again ("Bum-pum-pum-pum-pum",
/// "e-e-e-e-e", "си-си-си-су-су-су-су"): Whisper looping inside a word.
pub fn syllable_loop(word: &str) -> bool {
    let parts: Vec<String> = normalise(word).split(' ').map(str::to_string).collect();
    // Digits said one by one ("5-5-5-1-2") are not a loop.
    if parts.len() < 4 || !parts.iter().any(|p| p.chars().any(char::is_alphabetic)) {
        return false;
    }
    // The same syllable three times in a row, or (rhymes: "bum-pum-pum") four parts of which
    // at most two differ.
    let run3 = parts.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]);
    let mut distinct = parts.clone();
    distinct.sort();
    distinct.dedup();
    run3 || distinct.len() * 2 <= parts.len()
}

/// Every `k` (longest first) for which the last `k` words of `recent` are the first `k` of
/// `hyp`.
pub fn overlaps(recent: &[String], hyp: &[String]) -> Vec<usize> {
    (1..=recent.len().min(hyp.len()))
        .rev()
        .filter(|&k| recent[recent.len() - k..] == hyp[..k])
        .collect()
}

/// Where the last 2–6 committed words (`recent`) occur again within the first `within` words
/// of `hyp`: the index just after each occurrence of the longest such run, in order.
///
/// The last committed word is the least sure (it may be one Whisper added at a window's
/// edge): if the tail is not found whole, it is looked for without that word.
pub fn tail_anchor(recent: &[String], hyp: &[String], within: usize) -> Vec<usize> {
    let limit = hyp.len().min(within);
    let find = |recent: &[String]| {
        for k in (2..=recent.len().min(6)).rev() {
            let tail = &recent[recent.len() - k..];
            let at: Vec<usize> = (k..=limit).filter(|&j| hyp[j - k..j] == *tail).collect();
            if !at.is_empty() {
                return at;
            }
        }
        Vec::new()
    };
    let whole = find(recent);
    if whole.is_empty() {
        find(&recent[..recent.len().saturating_sub(1)])
    } else {
        whole
    }
}

/// Of the places `cuts` where the old words of a hypothesis could end (`k`: its first `k`
/// words are old), the one whose last old word ends nearest to `at` (`ends`: each word's
/// end); ties go to the later cut. A repeated phrase matches the committed text in more
/// than one place, and only time tells the one Whisper heard again from the one said anew.
pub fn nearest_in_time(cuts: &[usize], ends: &[f64], at: f64) -> Option<usize> {
    cuts.iter()
        .copied()
        .filter(|&k| k >= 1 && k <= ends.len())
        .min_by(|&a, &b| {
            let (da, db) = ((ends[a - 1] - at).abs(), (ends[b - 1] - at).abs());
            da.total_cmp(&db).then(b.cmp(&a))
        })
}

/// How many leading words of `hyp` correspond to the words `ctx` (already committed), by
/// edit distance with a free end in `hyp`; `None` when they do not match well enough to say.
pub fn align_prefix(ctx: &[String], hyp: &[String]) -> Option<usize> {
    let n = ctx.len();
    if n == 0 {
        return Some(0);
    }
    let m = hyp.len().min(n + 3);
    // d[i][j]: edit distance between ctx[..i] and hyp[..j].
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let sub = d[i - 1][j - 1] + usize::from(ctx[i - 1] != hyp[j - 1]);
            d[i][j] = sub.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
        }
    }
    // The best end in hyp; ties go to the length closest to ctx's.
    let (best, cost) = (0..=m)
        .map(|j| (j, d[n][j]))
        .min_by_key(|&(j, c)| (c, j.abs_diff(n)))
        .expect("at least j = 0");
    // A wrong match drops a new word, a missed one falls back on word times, which are
    // often stretched at a pause and then drop new words too: accept up to half the context
    // words differing ("is not" committed, "ask not what" heard next).
    if cost * 2 > n {
        return None;
    }
    Some(best)
}

/// How many leading words of `cur` agree with `prev`: the same letters and digits (case,
/// punctuation, hyphens and spaces aside) up to a place where both have a word boundary.
/// Whisper writes the same speech as "inter asterisk", "InterAsterisk" or
/// "inter-asterisk", "5-0-0" or "500" from one decode to the next: compared word by word,
/// such decodes never agreed, and a telephone menu's words waited 10 s for the pause.
/// (Spellings nearly alike — "inter-asterosk" — were tried as agreeing too: one run lost
/// more words than any before, `benches/README.md`; they do not agree.)
pub fn agreement(prev: &[Word], cur: &[Word]) -> usize {
    let (mut i, mut j) = (0, 0);
    while let Some((p, q)) = same_letters(&prev[i..], &cur[j..]) {
        (i, j) = (i + p, j + q);
    }
    j
}

/// The letters and digits of words, lower case.
fn letters(words: &[Word]) -> Vec<char> {
    words
        .iter()
        .flat_map(|w| w.text.chars())
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// From a boundary of both, how many words of each make the same letters up to the next
/// boundary of both; `None` where they part (or one has no words left).
fn same_letters(prev: &[Word], cur: &[Word]) -> Option<(usize, usize)> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    loop {
        // Extend the shorter side by its next word (the previous one, on a tie).
        if a.len() <= b.len() && i < prev.len() {
            a.extend(letters(&prev[i..=i]));
            i += 1;
        } else if j < cur.len() {
            b.extend(letters(&cur[j..=j]));
            j += 1;
        } else {
            return None;
        }
        let n = a.len().min(b.len());
        if a[..n] != b[..n] {
            return None;
        }
        if a.len() == b.len() && i > 0 && j > 0 {
            return Some((i, j));
        }
    }
}

/// Words joined back into text.
pub fn join_words(words: &[Word]) -> String {
    let s: String = words.iter().map(|w| w.text.as_str()).collect();
    s.trim().to_string()
}

/// Lower case, letters and digits only, single spaces.
pub fn normalise(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A cheap stand-in for Whisper's gzip compression ratio: text length over the size of its
/// LZ77-style encoding (repeated runs of 4+ bytes cost 3 bytes). Normal speech scores 1–1.6; a
/// phrase looping five times scores well above 2.4.
pub fn compression_ratio(text: &str) -> f32 {
    let b = text.as_bytes();
    if b.len() < 24 {
        return 1.0;
    }
    let mut cost = 0usize;
    let mut i = 0;
    while i < b.len() {
        let mut best = 0;
        let lo = i.saturating_sub(1024);
        for j in lo..i {
            let mut k = 0;
            while i + k < b.len() && b[j + k] == b[i + k] && k < 255 {
                k += 1;
            }
            best = best.max(k);
        }
        if best >= 4 {
            cost += 3;
            i += best;
        } else {
            cost += 1;
            i += 1;
        }
    }
    b.len() as f32 / cost.max(1) as f32
}

/// RMS level of audio in dBFS.
pub fn level_db(audio: &[f32]) -> f32 {
    if audio.is_empty() {
        return -120.0;
    }
    let e = audio.iter().map(|v| v * v).sum::<f32>() / audio.len() as f32;
    10.0 * e.max(1e-12).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Word timings Whisper (base) gave for jfk.wav in one decode: the recorded data the
    /// simulated decoder below answers from.
    /// Recorded with `cargo run --release --example record_words -- \
    /// .cache/tolk/models/ggml-base.bin testdata/jfk.wav en` (token timestamps are rough).
    const JFK: &[(&str, f64, f64)] = &[
        (" And", 0.22, 0.22),
        (" so", 0.33, 0.45),
        (" my", 0.45, 0.53),
        (" fellow", 0.68, 1.17),
        (" Americans", 1.17, 1.98),
        (" ask", 2.01, 3.68),
        (" not", 4.03, 4.24),
        (" what", 4.24, 4.29),
        (" your", 4.80, 5.35),
        (" country", 5.41, 6.34),
        (" can", 6.34, 6.63),
        (" do", 6.64, 6.80),
        (" for", 6.80, 6.92),
        (" you,", 7.01, 7.49),
        (" ask", 9.14, 9.29),
        (" what", 9.29, 9.49),
        (" you", 9.49, 9.63),
        (" can", 9.65, 9.79),
        (" do", 9.79, 9.89),
        (" for", 9.89, 9.97),
        (" your", 10.06, 10.19),
        (" country.", 10.23, 10.99),
    ];

    /// A syllable-like test signal: loud where JFK speaks, silent elsewhere.
    fn jfk_like_audio() -> Vec<f32> {
        let n = 11 * 16_000;
        (0..n)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                let speaking = JFK.iter().any(|(_, a, b)| t >= *a && t < *b + 0.05);
                if speaking {
                    0.3 * (0.6 + 0.4 * (t * 25.0).cos()) as f32 * (i as f32 * 0.2).sin()
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// What Whisper returns for a window: the recorded words inside it, except that a word
    /// still being spoken at the window's end comes out wrong (as a real decoder guesses).
    fn decode(job: &DecodeJob) -> Hypothesis {
        let end = job.start + job.audio.len() as f64 / 16_000.0;
        let words = JFK
            .iter()
            .filter(|(_, a, b)| *b > job.start + 0.05 && *a < end)
            .map(|(w, a, b)| Word {
                text: if *b > end {
                    format!("{w}-ish")
                } else {
                    w.to_string()
                },
                start: *a,
                end: b.min(end),
                prob: 0.9,
            })
            .collect();
        Hypothesis {
            words,
            no_speech_prob: 0.01,
            avg_logprob: -0.2,
            language: "en".into(),
        }
    }

    /// Runs the policy over `audio` with a virtual clock: each decode takes `cost(job)` seconds.
    fn replay(
        audio: &[f32],
        cfg: PolicyConfig,
        mut decoder: impl FnMut(&DecodeJob) -> Hypothesis,
        cost: impl Fn(&DecodeJob) -> f64,
    ) -> (Vec<Event>, Policy) {
        let mut p = Policy::new(cfg);
        let mut events = Vec::new();
        let (mut fed, mut now) = (0usize, 0.0f64);
        let tick = 1600;
        loop {
            if let Some(job) = p.poll_job(now) {
                now += cost(&job);
                let upto = ((now * 16_000.0) as usize).min(audio.len());
                if upto > fed {
                    p.push_audio(&audio[fed..upto]);
                    fed = upto;
                }
                p.on_result(job.id, decoder(&job), now);
            } else if fed < audio.len() {
                let upto = (fed + tick).min(audio.len());
                p.push_audio(&audio[fed..upto]);
                fed = upto;
                now = now.max(fed as f64 / 16_000.0);
            } else {
                p.finish();
                if p.idle() {
                    break;
                }
            }
            while let Some(e) = p.poll_event() {
                events.push(e);
            }
        }
        while let Some(e) = p.poll_event() {
            events.push(e);
        }
        (events, p)
    }

    fn finals(events: &[Event]) -> Vec<(u64, String, f64, f64, f64)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Final {
                    seq,
                    text,
                    start,
                    end,
                    emitted,
                    ..
                } => Some((*seq, text.clone(), *start, *end, *emitted)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn finals_cover_every_word_once_in_order() {
        let (events, _) = replay(&jfk_like_audio(), PolicyConfig::default(), decode, |_| 0.3);
        let f = finals(&events);
        assert!(!f.is_empty());
        for (i, (seq, ..)) in f.iter().enumerate() {
            assert_eq!(*seq, i as u64, "finals are numbered in order");
        }
        let text: Vec<String> = f.iter().map(|x| x.1.clone()).collect();
        let all = normalise(&text.join(" "));
        let want = normalise(&JFK.iter().map(|w| w.0).collect::<String>());
        assert_eq!(all, want);
        // Media times only move forward.
        for w in f.windows(2) {
            assert!(w[1].2 >= w[0].3 - 1e-9, "{:?} then {:?}", w[0], w[1]);
        }
    }

    /// Whisper's times for the same words move from window to window: seen in CI, a final
    /// "rescue. The network" began before the one it followed, and the WebVTT export was out
    /// of order. Here the decoder's times jump 2 s earlier once the first final is out (as
    /// far as the window allows): finals still start in order and end after they start.
    #[test]
    fn finals_start_in_order_when_whisper_moves_its_times() {
        let mut calls = 0;
        let jumpy = |job: &DecodeJob| {
            calls += 1;
            let mut h = decode(job);
            if calls > 6 {
                for w in &mut h.words {
                    w.start = (w.start - 2.0).max(job.start);
                    w.end = (w.end - 2.0).max(w.start);
                }
            }
            h
        };
        let (events, _) = replay(&jfk_like_audio(), PolicyConfig::default(), jumpy, |_| 0.3);
        let f = finals(&events);
        assert!(f.len() >= 3, "{f:?}");
        for w in f.windows(2) {
            assert!(w[1].2 >= w[0].2, "{:?} then {:?}", w[0], w[1]);
        }
        assert!(f.iter().all(|x| x.3 >= x.2), "{f:?}");
    }

    /// The prompt is the committed text up to where the window's audio begins, with no
    /// word missing in between: a final that straddles the window's start (its last words
    /// kept as context audio) still gives its first words to the prompt. Prompted with
    /// "ask not, what" over audio starting at "can do for you", Whisper wrote "your
    /// country, can do for you" again (a CI run on jfk.wav).
    #[test]
    fn the_prompt_reaches_the_window_with_no_word_missing() {
        let audio = jfk_like_audio();
        let mut p = Policy::new(PolicyConfig::default());
        let mut committed: Vec<Word> = Vec::new();
        let (mut fed, mut now, mut checked) = (0usize, 0.0f64, 0);
        loop {
            if let Some(job) = p.poll_job(now) {
                let before: Vec<Word> = committed
                    .iter()
                    .filter(|w| w.end <= job.start + 0.01)
                    .cloned()
                    .collect();
                if !job.prompt.is_empty() && !before.is_empty() {
                    let prompt = normalise(&job.prompt);
                    let said = normalise(&join_words(&before));
                    assert!(
                        said.ends_with(&prompt),
                        "`{prompt}` is not what was committed: `{said}`"
                    );
                    let last = normalise(&before[before.len() - 1].text);
                    assert!(
                        prompt.ends_with(&last),
                        "window at {:.2}: prompt `{prompt}` stops short of `{last}`",
                        job.start
                    );
                    checked += 1;
                }
                now += 0.3;
                let upto = ((now * 16_000.0) as usize).min(audio.len());
                if upto > fed {
                    p.push_audio(&audio[fed..upto]);
                    fed = upto;
                }
                p.on_result(job.id, decode(&job), now);
            } else if fed < audio.len() {
                let upto = (fed + 1600).min(audio.len());
                p.push_audio(&audio[fed..upto]);
                fed = upto;
                now = now.max(fed as f64 / 16_000.0);
            } else {
                p.finish();
                if p.idle() {
                    break;
                }
            }
            while let Some(e) = p.poll_event() {
                if let Event::Final { words, .. } = e {
                    committed.extend(words);
                }
            }
        }
        assert!(checked >= 3, "only {checked} prompts checked");
    }

    /// Recorded on an Asterisk IVR prompt (en-basic-pbx-ivr-main, simulated 0.7× CPU): with
    /// the prompt, every decode of the window said only "are" over 5 to 12 s of speech, and
    /// 12 s of speech were lost. Such a decode is dropped and the next goes without the
    /// prompt, which hears the words.
    #[test]
    fn a_decode_that_says_one_word_over_seconds_of_speech_is_retried_without_prompt() {
        let fails_with_prompt = |job: &DecodeJob| {
            let secs = job.audio.len() as f64 / 16_000.0;
            if !job.prompt.is_empty() && secs >= 3.0 {
                Hypothesis {
                    words: vec![word(" are", job.start, job.start + secs)],
                    no_speech_prob: 0.01,
                    avg_logprob: -0.9,
                    language: "en".into(),
                }
            } else {
                decode(job)
            }
        };
        let (events, p) = replay(
            &jfk_like_audio(),
            PolicyConfig::default(),
            fails_with_prompt,
            |_| 0.3,
        );
        let text: Vec<String> = finals(&events).iter().map(|x| x.1.clone()).collect();
        let want = normalise(&JFK.iter().map(|w| w.0).collect::<String>());
        assert_eq!(normalise(&text.join(" ")), want);
        assert!(p.dropped.sparse >= 1, "{:?}", p.dropped);
    }

    /// Chinese is written without spaces: a decode's words used to be its tokens joined up to
    /// the next space, so a whole Chinese sentence over seconds of speech was one word, which
    /// the sparse guard (under half a word a second) took for a failed decode, and which
    /// could be agreed on or cut only whole. With each token a word (`words_from_tokens`),
    /// the sentence is committed whole, once. The tokens cut characters, as byte-level tokens do.
    #[test]
    fn chinese_written_without_spaces_is_committed_not_taken_for_a_failed_decode() {
        use crate::stream::decoder::{words_from_tokens, Piece};
        // One Chinese chunk for each word JFK says, at his words' times.
        const ZH: [&str; 11] = [
            "我們",
            "的",
            "社群",
            "要求",
            "性工作",
            "除罪化",
            "，",
            "從",
            "第一次",
            "會議",
            "開始",
        ];
        let said = |i: usize| ZH[i % ZH.len()];
        let chinese = |one_word: bool| {
            move |job: &DecodeJob| {
                let end = job.start + job.audio.len() as f64 / 16_000.0;
                let mut pieces = Vec::new();
                for (i, (_, a, b)) in JFK.iter().enumerate() {
                    if *b <= job.start + 0.05 || *a >= end {
                        continue;
                    }
                    // Each chunk as two tokens, cut inside its first character.
                    let bytes = said(i).as_bytes();
                    for part in [&bytes[..2], &bytes[2..]] {
                        pieces.push(Piece {
                            bytes: part.to_vec(),
                            start: *a,
                            end: b.min(end),
                            prob: 0.9,
                        });
                    }
                }
                let mut words = words_from_tokens(&pieces);
                if one_word && !words.is_empty() {
                    // As words were made before: one word up to the next space.
                    let text: String = words.iter().map(|w| w.text.as_str()).collect();
                    let (start, end) = (words[0].start, words[words.len() - 1].end);
                    words = vec![word(&text, start, end)];
                }
                Hypothesis {
                    words,
                    no_speech_prob: 0.01,
                    avg_logprob: -0.3,
                    language: "zh".into(),
                }
            }
        };
        let run = |one_word: bool| {
            let (events, p) = replay(
                &jfk_like_audio(),
                PolicyConfig::default(),
                chinese(one_word),
                |_| 0.3,
            );
            let text: String = finals(&events).iter().map(|x| x.1.clone()).collect();
            (text, p)
        };
        let sentence: String = (0..JFK.len()).map(said).collect();
        let (text, p) = run(false);
        assert_eq!(text, sentence);
        assert_eq!(p.dropped.sparse, 0);
        assert!(p.untranscribed < 0.5, "{}", p.untranscribed);
        // The same decodes as one word each: some dropped as failed, and the caption wrong
        // (recorded here: "…要求性工作要求性工作除罪化…", a phrase said twice — one word
        // cannot be agreed on, or cut at a commit, in part).
        let (text, p) = run(true);
        assert!(p.dropped.sparse > 0, "{:?}", p.dropped);
        assert_ne!(text, sentence);
    }

    #[test]
    fn words_are_committed_within_a_few_seconds_of_being_spoken() {
        let (events, _) = replay(&jfk_like_audio(), PolicyConfig::default(), decode, |_| 0.3);
        for (_, text, _, end, emitted) in finals(&events) {
            let latency = emitted - end;
            assert!(latency >= 0.0, "emitted before the audio ended: {text}");
            assert!(latency < 3.0, "`{text}` waited {latency:.2} s");
        }
    }

    #[test]
    fn partials_are_revised_then_replaced_by_finals() {
        let (events, _) = replay(&jfk_like_audio(), PolicyConfig::default(), decode, |_| 0.3);
        let mut last: Option<(u64, u64)> = None;
        let mut partials = 0;
        for e in &events {
            match e {
                Event::Partial {
                    segment, revision, ..
                } => {
                    partials += 1;
                    if let Some((s, r)) = last {
                        if s == *segment {
                            assert!(*revision > r, "revisions grow within a segment");
                        }
                    }
                    last = Some((*segment, *revision));
                }
                Event::Final { segment, .. } => {
                    if let Some((s, _)) = last {
                        assert!(*segment >= s);
                    }
                    last = None;
                }
                Event::Trace(_) | Event::Revised(_) => {}
            }
        }
        assert!(partials > 0, "tentative text is shown before it is final");
        // The tentative guess for a word cut by the window end never becomes final.
        assert!(finals(&events).iter().all(|f| !f.1.contains("-ish")));
    }

    #[test]
    fn a_result_for_another_job_is_ignored() {
        let mut p = Policy::new(PolicyConfig::default());
        p.push_audio(&jfk_like_audio()[..16_000 * 2]);
        let job = p.poll_job(2.0).expect("speech started: a decode is due");
        p.on_result(job.id + 7, decode(&job), 2.1);
        assert!(p.busy(), "the real job is still out");
        p.on_result(job.id, decode(&job), 2.2);
        assert!(!p.busy());
    }

    #[test]
    fn silence_costs_no_decode_and_gives_no_event() {
        let (events, p) = replay(
            &vec![0.0; 16_000 * 30],
            PolicyConfig::default(),
            decode,
            |_| 0.3,
        );
        assert!(events.is_empty());
        assert_eq!(p.decodes, 0);
    }

    #[test]
    fn a_repetition_loop_is_dropped_and_the_context_reset() {
        let looping = |job: &DecodeJob| {
            let start = job.start;
            let words = (0..30)
                .map(|i| Word {
                    text: [" thank", " you", " so", " much."][i % 4].to_string(),
                    start: start + i as f64 * 0.1,
                    end: start + i as f64 * 0.1 + 0.1,
                    prob: 0.5,
                })
                .collect();
            Hypothesis {
                words,
                no_speech_prob: 0.1,
                avg_logprob: -0.5,
                language: "en".into(),
            }
        };
        let (events, p) = replay(&jfk_like_audio(), PolicyConfig::default(), looping, |_| 0.3);
        assert!(finals(&events).is_empty(), "{events:?}");
        assert!(p.dropped.compression > 0);
        assert!(p.prompt().is_empty(), "the context is reset");
    }

    #[test]
    fn the_same_phrase_committed_again_and_again_is_stopped() {
        // Each decode returns the same phrase (no compression signal in one decode), the way
        // Whisper repeats its prompt across windows and utterances.
        // Six short utterances apart.
        let mut audio = Vec::new();
        for _ in 0..6 {
            audio.extend(vec![0.0f32; 16_000]);
            audio
                .extend((0..16_000).map(|i| {
                    0.3 * (0.6 + 0.4 * (i as f32 / 640.0).cos()) * (i as f32 * 0.2).sin()
                }));
        }
        audio.extend(vec![0.0f32; 16_000]);
        let (events, p) = replay(
            &audio,
            PolicyConfig::default(),
            |job: &DecodeJob| Hypothesis {
                words: [" We", " will", " go", " on."]
                    .iter()
                    .enumerate()
                    .map(|(i, w)| Word {
                        text: w.to_string(),
                        start: job.start + 0.1 * i as f64,
                        end: job.start + 0.1 * i as f64 + 0.1,
                        prob: 0.5,
                    })
                    .collect(),
                no_speech_prob: 0.1,
                avg_logprob: -0.5,
                language: "en".into(),
            },
            |_| 0.3,
        );
        let f = finals(&events);
        let text: Vec<&str> = f.iter().map(|f| f.1.as_str()).collect();
        assert_eq!(
            text.join(" "),
            "We will go on.",
            "said once, committed once"
        );
        assert!(p.dropped.repetition > 0);
    }

    #[test]
    fn phantom_phrases_over_near_silence_are_dropped() {
        // Quiet breathing-level audio that still opens the detector.
        let audio = breathing_audio();
        let phantom = |job: &DecodeJob| Hypothesis {
            words: [" Thanks", " for", " watching!"]
                .iter()
                .enumerate()
                .map(|(i, w)| Word {
                    text: w.to_string(),
                    start: job.start + i as f64 * 0.3,
                    end: job.start + i as f64 * 0.3 + 0.3,
                    prob: 0.4,
                })
                .collect(),
            no_speech_prob: 0.3,
            avg_logprob: -0.6,
            language: "en".into(),
        };
        let (events, p) = replay(&audio, PolicyConfig::default(), phantom, |_| 0.3);
        assert!(p.decodes > 0, "the detector opened");
        assert!(finals(&events).is_empty(), "{events:?}");
        assert!(p.dropped.phantom > 0);
    }

    #[test]
    fn accented_phantom_phrases_are_recognised() {
        let audio = breathing_audio();
        let phantom = |job: &DecodeJob| Hypothesis {
            words: [
                " Subtítulos",
                " por",
                " la",
                " comunidad",
                " de",
                " Amara.org",
            ]
            .iter()
            .enumerate()
            .map(|(i, w)| Word {
                text: w.to_string(),
                start: job.start + i as f64 * 0.2,
                end: job.start + i as f64 * 0.2 + 0.2,
                prob: 0.4,
            })
            .collect(),
            no_speech_prob: 0.3,
            avg_logprob: -0.6,
            language: "es".into(),
        };
        let (events, p) = replay(&audio, PolicyConfig::default(), phantom, |_| 0.3);
        assert!(finals(&events).is_empty(), "{events:?}");
        assert!(p.dropped.phantom > 0);
    }

    #[test]
    fn no_speech_with_low_confidence_is_dropped() {
        let unsure = |job: &DecodeJob| {
            let mut h = decode(job);
            h.no_speech_prob = 0.9;
            h.avg_logprob = -1.5;
            h
        };
        let (events, p) = replay(&jfk_like_audio(), PolicyConfig::default(), unsure, |_| 0.3);
        assert!(finals(&events).is_empty());
        assert!(p.dropped.no_speech > 0);
    }

    /// Recorded: over 10 s of brown noise swelling in and out (`sox -R … brownnoise tremolo
    /// 0.5 90`), base wrote these words and probabilities; they became a final before the
    /// guard. The same words said with confidence still come through.
    #[test]
    fn words_whisper_itself_doubts_are_dropped() {
        const RECORDED: [(&str, f32); 5] = [
            (" I'm", 0.096),
            (" going", 0.083),
            (" to", 0.853),
            (" keep", 0.008),
            (" going.", 0.320),
        ];
        let with = |probs: &'static [(&'static str, f32)]| {
            move |job: &DecodeJob| {
                let mut h = decode(job);
                let t0 = job.start + 1.0;
                h.words = probs
                    .iter()
                    .enumerate()
                    .map(|(i, (text, prob))| Word {
                        text: text.to_string(),
                        start: t0 + i as f64 * 0.3,
                        end: t0 + i as f64 * 0.3 + 0.25,
                        prob: *prob,
                    })
                    .collect();
                h
            }
        };
        let (events, p) = replay(
            &jfk_like_audio(),
            PolicyConfig::default(),
            with(&RECORDED),
            |_| 0.3,
        );
        assert!(finals(&events).is_empty(), "{events:?}");
        assert!(p.dropped.unsure > 0);
        const SURE: [(&str, f32); 5] = [
            (" I'm", 0.9),
            (" going", 0.8),
            (" to", 0.95),
            (" keep", 0.7),
            (" going.", 0.6),
        ];
        let (events, p) = replay(
            &jfk_like_audio(),
            PolicyConfig::default(),
            with(&SURE),
            |_| 0.3,
        );
        assert!(!finals(&events).is_empty(), "{events:?}");
        assert_eq!(p.dropped.unsure, 0);
    }

    #[test]
    fn when_decodes_are_slow_the_step_widens_and_lag_stays_bounded() {
        // A decoder three times slower than real time for its window: without degradation the
        // lag would grow without end over two minutes of speech.
        let mut audio = Vec::new();
        for _ in 0..11 {
            audio.extend(jfk_like_audio());
        }
        let cfg = PolicyConfig::default();
        let max_window = cfg.max_window;
        let (events, p) = replay(&audio, cfg, jfk_plays, |job| {
            let secs = job.audio.len() as f64 / 16_000.0;
            0.5 + 0.25 * secs
        });
        // Slower decodes cost latency, never speech: every word of the 11 plays is in a final,
        // once, whole.
        assert_eq!(p.untranscribed, 0.0, "{events:?}");
        let said: Vec<String> = (0..11)
            .flat_map(|_| JFK.iter().map(|(w, _, _)| normalise(w)))
            .collect();
        let got: Vec<String> = finals(&events)
            .iter()
            .flat_map(|f| f.1.split_whitespace().map(normalise).collect::<Vec<_>>())
            .collect();
        assert_eq!(got, said, "words lost, cut or repeated");
        let (step, window) = p.step_and_window();
        assert!(step >= 1.0 && window <= max_window);
        let last = finals(&events).last().cloned().expect("finals");
        assert!(
            last.4 - last.3 < 8.0,
            "the last final waited {:.1} s",
            last.4 - last.3
        );
    }

    /// The recorded JFK words of every play (every 11 s) that a decode's window overlaps, the
    /// one cut by the window's end marked (as Whisper half-hears it).
    fn jfk_plays(job: &DecodeJob) -> Hypothesis {
        let end = job.start + job.audio.len() as f64 / 16_000.0;
        let first = (job.start / 11.0).floor() as i64;
        let words = (first..=(end / 11.0).floor() as i64)
            .flat_map(|c| {
                JFK.iter()
                    .map(move |(w, a, b)| (w, a + 11.0 * c as f64, b + 11.0 * c as f64))
            })
            .filter(|(_, a, b)| *b > job.start + 0.05 && *a < end)
            .map(|(w, a, b)| Word {
                text: if b > end {
                    format!("{w}-ish")
                } else {
                    w.to_string()
                },
                start: a,
                end: b.min(end),
                prob: 0.9,
            })
            .collect();
        Hypothesis {
            words,
            no_speech_prob: 0.01,
            avg_logprob: -0.2,
            language: "en".into(),
        }
    }

    #[test]
    fn a_channel_that_waits_its_turn_behind_others_loses_no_speech() {
        // A booth among five channels: each of its decodes comes about 5 s after the one
        // before (it waits for the others, then decodes) and speech goes on without a pause
        // long enough to close an utterance: every word arrives once, whole, none given up.
        let mut audio = Vec::new();
        for _ in 0..8 {
            audio.extend(jfk_like_audio());
        }
        let (events, p) = replay(&audio, PolicyConfig::default(), jfk_plays, |_| 5.0);
        assert_eq!(p.untranscribed, 0.0, "speech given up: {events:?}");
        let said: Vec<String> = (0..8)
            .flat_map(|_| JFK.iter().map(|(w, _, _)| normalise(w)))
            .collect();
        let got: Vec<String> = finals(&events)
            .iter()
            .flat_map(|f| f.1.split_whitespace().map(normalise).collect::<Vec<_>>())
            .collect();
        assert_eq!(got, said, "words lost, cut or repeated");
    }

    #[test]
    fn a_channel_kept_waiting_asks_for_fewer_decodes_and_loses_nothing() {
        // The scheduler says each decode waited 3 s behind other channels: the step widens
        // (fewer, longer decodes), the window's cap commits, and every word arrives once.
        let mut audio = Vec::new();
        for _ in 0..6 {
            audio.extend(jfk_like_audio());
        }
        let mut p = Policy::new(PolicyConfig::default());
        let (mut events, mut fed, mut now) = (Vec::new(), 0usize, 0.0f64);
        let mut steps = Vec::new();
        loop {
            // As the scheduler does: told the wait before it takes the job.
            p.waited(3.0);
            if let Some(job) = p.poll_job(now) {
                now += 0.5;
                let upto = ((now * 16_000.0) as usize).min(audio.len());
                if upto > fed {
                    p.push_audio(&audio[fed..upto]);
                    fed = upto;
                }
                p.on_result(job.id, jfk_plays(&job), now);
                steps.push(p.step_and_window().0);
            } else if fed < audio.len() {
                let upto = (fed + 1600).min(audio.len());
                p.push_audio(&audio[fed..upto]);
                fed = upto;
                now = now.max(fed as f64 / 16_000.0);
            } else {
                p.finish();
                if p.idle() {
                    break;
                }
            }
            while let Some(e) = p.poll_event() {
                events.push(e);
            }
        }
        events.extend(std::iter::from_fn(|| p.poll_event()));
        let widest = steps.iter().copied().fold(0.0, f64::max);
        assert!(widest >= 4.0, "the step stayed at {widest} s");
        assert!(p.decodes < 40, "{} decodes for 66 s", p.decodes);
        assert_eq!(p.untranscribed, 0.0);
        let said: Vec<String> = (0..6)
            .flat_map(|_| JFK.iter().map(|(w, _, _)| normalise(w)))
            .collect();
        let got: Vec<String> = finals(&events)
            .iter()
            .flat_map(|f| f.1.split_whitespace().map(normalise).collect::<Vec<_>>())
            .collect();
        assert_eq!(got, said, "words lost, cut or repeated");
    }

    /// Streams `audio` as a channel whose every decode waited `wait` seconds behind other
    /// channels, each decode taking 0.5 s, and whose turn comes at most every `every`
    /// seconds; returns the finals' words with the time each was emitted, and the policy.
    fn kept_waiting(
        audio: &[f32],
        cfg: PolicyConfig,
        wait: f64,
        every: f64,
    ) -> (Vec<(Word, f64)>, Policy) {
        let mut p = Policy::new(cfg);
        let (mut events, mut fed, mut now, mut turn) = (Vec::new(), 0usize, 0.0f64, 0.0f64);
        loop {
            p.waited(wait);
            if let Some(job) = (now >= turn).then(|| p.poll_job(now)).flatten() {
                turn = now + every;
                now += 0.5;
                let upto = ((now * 16_000.0) as usize).min(audio.len());
                if upto > fed {
                    p.push_audio(&audio[fed..upto]);
                    fed = upto;
                }
                p.on_result(job.id, jfk_plays(&job), now);
            } else if fed < audio.len() {
                let upto = (fed + 1600).min(audio.len());
                p.push_audio(&audio[fed..upto]);
                fed = upto;
                now = now.max(fed as f64 / 16_000.0);
            } else {
                p.finish();
                if p.idle() {
                    break;
                }
                now = now.max(turn);
            }
            events.extend(std::iter::from_fn(|| p.poll_event()));
        }
        events.extend(std::iter::from_fn(|| p.poll_event()));
        let words = events
            .into_iter()
            .filter_map(|e| match e {
                Event::Final { words, emitted, .. } => Some((words, emitted)),
                _ => None,
            })
            .flat_map(|(words, emitted)| words.into_iter().map(move |w| (w, emitted)))
            .collect();
        (words, p)
    }

    #[test]
    fn a_channel_kept_waiting_commits_each_piece_at_its_short_pause() {
        // Behind other channels the step widens to 6 s. Decoded every 6 s, a word waited for
        // a second decode to agree or for the utterance's end: "ask" (said 2.0-3.7 s, a
        // 0.3-s breath after it) was final 4-5 s after it was said. Now the breath ends a
        // piece and one decode commits it.
        let mut audio = Vec::new();
        for _ in 0..6 {
            audio.extend(jfk_like_audio());
        }
        let (words, p) = kept_waiting(&audio, PolicyConfig::default(), 3.0, 0.0);
        assert_eq!(p.untranscribed, 0.0);
        let said: Vec<String> = (0..6)
            .flat_map(|_| JFK.iter().map(|(w, _, _)| normalise(w)))
            .collect();
        let got: Vec<String> = words.iter().map(|(w, _)| normalise(&w.text)).collect();
        assert_eq!(got, said, "words lost, cut or repeated");
        // Each "ask" before the breath, the first of the two in every repeat.
        let late: Vec<f64> = words
            .iter()
            .enumerate()
            .filter(|(i, _)| i % JFK.len() == 5)
            .map(|(_, (w, emitted))| emitted - w.end)
            .collect();
        assert_eq!(late.len(), 6);
        assert!(
            late.iter().skip(1).all(|l| *l < 2.0),
            "final after {late:?} s"
        );
        // Decoded in pieces only while kept waiting: on time, the base step and agreement.
        let (on_time, _) = kept_waiting(&audio, PolicyConfig::default(), 0.0, 0.0);
        let got: Vec<String> = on_time.iter().map(|(w, _)| normalise(&w.text)).collect();
        assert_eq!(got, said);
    }

    #[test]
    fn a_piece_decoded_late_reaches_over_the_speech_that_came_meanwhile() {
        // A booth among many: its turn comes every 4 s. A piece's decode is taken seconds
        // after the piece ended, and reaches to the last short pause since (or the end of
        // the utterance), so the words said meanwhile do not wait for yet another turn.
        let mut audio = Vec::new();
        for _ in 0..8 {
            audio.extend(jfk_like_audio());
        }
        let (words, p) = kept_waiting(&audio, PolicyConfig::default(), 3.0, 4.0);
        assert_eq!(p.untranscribed, 0.0);
        let said: Vec<String> = (0..8)
            .flat_map(|_| JFK.iter().map(|(w, _, _)| normalise(w)))
            .collect();
        let got: Vec<String> = words.iter().map(|(w, _)| normalise(&w.text)).collect();
        assert_eq!(got, said, "words lost, cut or repeated");
        let mut late: Vec<f64> = words.iter().map(|(w, emitted)| emitted - w.end).collect();
        late.sort_by(f64::total_cmp);
        let p50 = late[late.len() / 2];
        assert!(
            p50 < 5.0,
            "words final {p50:.2} s after they were said (p50)"
        );
    }

    /// Quiet breathing-level audio between seconds of silence: it still opens the detector.
    fn breathing_audio() -> Vec<f32> {
        let mut audio = vec![0.0f32; 16_000];
        audio.extend(
            (0..16_000 * 2)
                .map(|i| 0.004 * (i as f32 * 0.3).sin() * (1.0 + (i as f32 / 800.0).sin())),
        );
        audio.extend(vec![0.0f32; 16_000]);
        audio
    }

    fn word(text: &str, start: f64, end: f64) -> Word {
        Word {
            text: text.into(),
            start,
            end,
            prob: 0.6,
        }
    }

    /// The words of `text`, one every `each` seconds from `from`, each 90 % as long.
    fn timed(text: &str, from: f64, each: f64) -> Vec<Word> {
        text.split_whitespace()
            .enumerate()
            .map(|(i, t)| {
                let a = from + i as f64 * each;
                word(&format!(" {t}"), a, a + each * 0.9)
            })
            .collect()
    }

    fn words_of(text: &str) -> Vec<Word> {
        text.split_whitespace()
            .enumerate()
            .map(|(i, t)| word(&format!(" {t}"), i as f64, i as f64 + 0.5))
            .collect()
    }

    /// Recorded at real time (the English program, 133–140 s): successive decodes of an
    /// Asterisk menu wrote the same words split, joined and hyphenated differently, and
    /// word-by-word agreement held them all until the pause, 10 s late.
    #[test]
    fn decodes_agree_on_the_same_letters_however_the_words_are_split() {
        let prev = words_of("dial 5-0-0 to attempt an inter asterisk exchange.");
        let cur = words_of("dial 5-0-0 to attempt an InterAsterisk exchange or");
        assert_eq!(agreement(&prev, &cur), 7, "through \"exchange\"");
        let prev = words_of("you can dial 5-00 to attempt an InterAsterisk Exchange or IAX");
        let cur =
            words_of("you can dial 500 to attempt an inter-asterisk exchange or IAX connection");
        assert_eq!(agreement(&prev, &cur), 11, "through \"IAX\"");
        // Where the letters part, agreement stops at the last boundary both had.
        let prev = words_of("or IAXK. connection");
        let cur = words_of("or IAX connection");
        assert_eq!(agreement(&prev, &cur), 1);
        // Two words of one decode, one of the other: they agree once both have a boundary.
        let prev = words_of("to apolite menu");
        let cur = words_of("to a polite menu");
        assert_eq!(agreement(&prev, &cur), 4, "\"a polite\" is \"apolite\"");
        assert_eq!(
            agreement(&prev[..2], &cur[..2]),
            1,
            "\"a\" alone is not \"apolite\""
        );
        let prev = words_of("send this color");
        let cur = words_of("send this collar to");
        assert_eq!(agreement(&prev, &cur), 2);
        // A word spelled otherwise is another word.
        let prev = words_of("an inter-asterosk exchange");
        let cur = words_of("an inter asterisk exchange");
        assert_eq!(agreement(&prev, &cur), 1);
        assert_eq!(agreement(&[], &cur), 0);
        assert_eq!(agreement(&prev, &[]), 0);
    }

    fn ws(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    /// The speaker of the conversational recording says "word, word, word, word, word,
    /// word": four are committed (the last ending at 10.0 s) and the next window, with the
    /// last two as context audio, hears six. Text alone matches the committed tail at the
    /// fourth word (two new words lost, as measured); the words' times say the old ones end
    /// at the second.
    #[test]
    fn a_word_the_speaker_repeats_is_not_taken_for_the_committed_ones() {
        let mut p = Policy::new(PolicyConfig::default());
        let said = [
            ("Here's", 7.0, 7.4),
            (" some", 7.4, 7.7),
            (" more", 7.7, 8.0),
            (" word,", 8.1, 8.5),
            (" word,", 8.6, 9.0),
            (" word,", 9.2, 9.6),
            (" word,", 9.6, 10.0),
        ];
        let committed: Vec<Word> = said.iter().map(|&(t, a, b)| word(t, a, b)).collect();
        p.commit(&committed, 11.0);
        p.window_words = committed[5..].to_vec();
        let heard = [
            (" word,", 9.2, 9.6),
            (" word,", 9.6, 10.0),
            (" word,", 10.3, 10.7),
            (" word.", 10.8, 11.2),
            (" I", 11.6, 11.7),
            (" really", 11.7, 12.0),
        ];
        let new = p.new_words(heard.iter().map(|&(t, a, b)| word(t, a, b)).collect());
        assert_eq!(join_words(&new), "word, word. I really");
        // A tail said again further on: the occurrence nearest the committed end in time.
        let recent = ws("some more word word");
        let hyp = ws("word word word word i");
        let anchors = tail_anchor(&recent, &hyp, 6);
        assert_eq!(anchors, [2, 3, 4]);
        let ends = [9.6, 10.0, 10.7, 11.2, 11.7];
        assert_eq!(nearest_in_time(&anchors, &ends, 10.0), Some(2));
        // Times that say nothing (all squeezed to one instant): the latest, as before.
        assert_eq!(nearest_in_time(&anchors, &[5.0; 5], 10.0), Some(4));
    }

    /// Recorded in the three-channel meeting test (the booth with a cold, on a machine
    /// simulated at 0.6×): the recording ended while a piece's closing decode was out
    /// (43.97–47.75 s) and the next piece had begun ("…and I think this is probably good.
    /// Alright, thanks."); `finish` left nothing owed for it, and once the decode came back
    /// the channel was idle: 4.7 s of speech with no decode and no count. Its closing
    /// decode follows, to the stream's end.
    #[test]
    fn the_stream_ending_while_a_closing_decode_is_out_still_decodes_the_next_piece() {
        let mut p = Policy::new(PolicyConfig::default());
        p.push_audio(&spans_audio(&[(0.5, 10.0, 0.3)], 10.0));
        // The detector's part, told: speech from 0.5 s, a piece ended at 4.0 s.
        p.speech_from(0.5);
        p.speech_until(4.0);
        let job = p.poll_job(4.2).expect("the first piece's closing decode");
        assert!(job.closing);
        p.speech_from(4.3);
        p.finish();
        let words = vec![word(" first", 0.6, 1.5), word(" piece.", 1.6, 3.9)];
        p.on_result(
            job.id,
            Hypothesis {
                words,
                no_speech_prob: 0.01,
                avg_logprob: -0.2,
                language: "en".into(),
            },
            5.0,
        );
        let next = p.poll_job(5.0).expect("the next piece's closing decode");
        assert!(next.closing);
        assert!(next.start <= 4.3, "{}", next.start);
        let end = next.start + next.audio.len() as f64 / 16_000.0;
        assert!(end > 9.9, "it reaches the stream's end: {end}");
        assert!(!p.idle());
    }

    /// Recorded on the conversational recording (times less 100 s): the last tentative
    /// decode put "words that I did not say in the original one" all at its window's end,
    /// 0.3 s after the speech ended; two decodes agreed up to "not", which moved the commit
    /// point past the speech's end, so no closing decode was run — and the tentative "say in
    /// the original one", heard by the decode that covered the whole utterance, was
    /// withdrawn. It is kept.
    #[test]
    fn a_tail_no_closing_decode_can_confirm_is_kept() {
        let mut p = Policy::new(PolicyConfig::default());
        p.push_audio(&spans_audio(&[(0.5, 9.74, 0.3)], 10.6));
        let at = |t: &str| word(t, 10.03, 10.03);
        p.commit(
            &[at(" words"), at(" that"), at(" I"), at(" did"), at(" not")],
            10.1,
        );
        p.prev_words = [" say", " in", " the", " original", " one."]
            .into_iter()
            .map(at)
            .collect();
        p.in_flight = None;
        p.speech_end = Some(9.74);
        p.closing_owed = true;
        assert!(p.poll_job(10.6).is_none(), "nothing left to decode");
        let events: Vec<Event> = std::iter::from_fn(|| p.poll_event()).collect();
        assert_eq!(
            final_text(&events),
            "words that I did not say in the original one."
        );
        assert!(p.prev_words.is_empty() && !p.closing_owed);
    }

    /// Recorded on the IVR menu after a mumbled "Montreal forced aligner": "Dial one" was
    /// committed squeezed to 302.03 s (said at 300.3); the next decode heard the window
    /// differently from the committed text ("Forestliner" for "Liner"), so word times
    /// decided, and every word before 302.03 — "if you wish this color", never committed —
    /// was taken for old.
    #[test]
    fn words_before_a_squeezed_commit_are_not_all_old() {
        let mut p = Policy::new(PolicyConfig::default());
        let committed = [
            word(" but", 292.64, 293.18),
            word(" um", 293.4, 294.47),
            word(" but", 294.61, 294.84),
            word(" Liner.", 297.55, 297.7),
            word(" Dial", 302.03, 302.03),
            word(" one", 302.03, 302.03),
        ];
        p.commit(&committed, 303.0);
        p.window_words = committed.to_vec();
        let heard = [
            (" but", 292.64, 293.61),
            (" Montreal", 293.75, 296.38),
            (" Forestliner.", 296.38, 300.32),
            (" Dial", 300.32, 300.56),
            (" 1,", 300.56, 300.86),
            (" if", 300.93, 300.98),
            (" you", 300.98, 301.16),
            (" wish", 301.16, 301.4),
            (" this", 301.4, 301.66),
            (" color", 301.77, 302.02),
            (" to", 302.02, 302.16),
            (" reach", 302.16, 302.39),
        ];
        let new = p.new_words(heard.iter().map(|&(t, a, b)| word(t, a, b)).collect());
        let new = join_words(&new);
        assert!(new.ends_with("if you wish this color to reach"), "{new}");
        assert!(
            new.split_whitespace().count() <= 7 + 1,
            "at most one old word again: {new}"
        );
    }

    /// Recorded on the IVR voicemail prompt: "press the pound key" committed squeezed to
    /// 190.9 s, said from 189.0; the window was cut at 190.85, and "to disconnect" (heard,
    /// tentative) fell out of every later window. The cut keeps the audio from the last
    /// properly timed word on.
    #[test]
    fn the_window_is_not_cut_at_squeezed_word_times() {
        let mut p = Policy::new(PolicyConfig::default());
        p.push_audio(&spans_audio(&[(180.0, 191.9, 0.3)], 192.0));
        p.window_start = 180.48;
        let committed = [
            word(" voicemail", 187.0, 187.5),
            word(" system.", 187.5, 188.2),
            word(" You", 190.6, 190.6),
            word(" can", 190.6, 190.6),
            word(" press", 190.9, 190.9),
            word(" the", 190.9, 190.9),
            word(" pound", 190.9, 190.9),
            word(" key", 190.9, 190.9),
        ];
        p.commit(&committed, 191.0);
        assert!(
            p.window_start <= 187.5,
            "the window starts at {} s",
            p.window_start
        );
        assert_eq!(
            join_words(&p.window_words),
            "system. You can press the pound key"
        );
    }

    /// The glossary's hints go with the prompt: a decode that failed or parroted with them
    /// turns the prompt off, and the next one has neither.
    #[test]
    fn glossary_hints_are_off_when_the_prompt_is() {
        let mut p = Policy::new(PolicyConfig::default());
        p.set_hints(vec!["NSWP".into(), "Tais Plus".into()]);
        p.push_audio(&spans_audio(&[(0.2, 9.0, 0.3)], 4.0));
        let job = p.poll_job(4.0).expect("speech: a decode");
        assert_eq!(job.hints, ["NSWP", "Tais Plus"]);
        // Whisper answers with the hints and nothing else, unsure of them: a failed decode.
        let echo = Hypothesis {
            words: ["NSWP", "Tais", "Plus", "NSWP", "Tais", "Plus"]
                .iter()
                .map(|t| word(&format!(" {t}"), 4.0, 4.0))
                .collect(),
            no_speech_prob: 0.01,
            avg_logprob: -2.0,
            language: "en".into(),
        };
        p.on_result(job.id, echo, 4.5);
        p.push_audio(&spans_audio(&[(0.0, 2.0, 0.3)], 2.0));
        let job = p.poll_job(6.0).expect("still speech: a decode");
        assert!(job.hints.is_empty() && job.prompt.is_empty(), "{job:?}");
    }

    fn topic() -> Vec<String> {
        [
            "Tais Plus",
            "Legalife",
            "Empower Foundation",
            "APNSW",
            "NSWP",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect()
    }

    /// Recorded (base, the session topic in the prompt, virtual clock): a booth said
    /// "Legalife from Ukraine and Empower Foundation from Thailand joined the peer educator
    /// training." twice; decodes of the second went on with the prompt's list after the
    /// name they heard. The names said stay; the list's rest goes.
    #[test]
    fn the_prompts_term_list_recited_is_dropped() {
        let said = |h: &str| {
            let w = words_of(h);
            let cut = recited_terms(&w, &topic());
            let mut kept = w.clone();
            if let Some(r) = cut {
                kept.drain(r);
            }
            join_words(&kept).trim().to_string()
        };
        assert_eq!(
            said("Legalife from Ukraine, Empower Foundation, APNSW, NSWP."),
            "Legalife from Ukraine, Empower Foundation,"
        );
        assert_eq!(
            said("Legalife, Empower Foundation, APNSW, NSWP. Legalife from"),
            "Legalife, Legalife from"
        );
        assert_eq!(
            said("Thailand, Zoyn, APNSW, NSWP."),
            "Thailand, Zoyn, APNSW,"
        );
        // Near misses: the terms said in another order, not to the list's end, or joined
        // by words; a term alone.
        for kept in [
            "NSWP, APNSW and Tais Plus met.",
            "Tais Plus, Legalife, Empower Foundation from Thailand joined.",
            "Empower Foundation and APNSW and NSWP.",
            "Empower Foundation, APNSW NSWP.",
            "NSWP.",
        ] {
            assert_eq!(said(kept), kept);
        }
        // Without a list, nothing to recite.
        assert_eq!(recited_terms(&words_of("APNSW, NSWP."), &[]), None);
    }

    /// Through the policy: the recited terms never reach a caption, the speech does.
    #[test]
    fn a_recited_term_list_never_reaches_a_caption() {
        let audio = speech_audio(&[(0.5, 4.5, 0.3)], 6.0);
        let cfg = PolicyConfig {
            hints: topic(),
            ..PolicyConfig::default()
        };
        // Every decode: the names heard, then the prompt's list to its end.
        let (events, p) = replay(
            &audio,
            cfg,
            |job| Hypothesis {
                words: words_of("Legalife from Ukraine, Empower Foundation, APNSW, NSWP.")
                    .into_iter()
                    .map(|mut w| {
                        w.start = job.start + w.start * 0.4;
                        w.end = job.start + w.end * 0.4;
                        w
                    })
                    .collect(),
                no_speech_prob: 0.01,
                avg_logprob: -0.2,
                language: "en".into(),
            },
            |_| 0.3,
        );
        let text: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Final { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect();
        let text = text.join(" ");
        assert!(text.contains("Empower Foundation"), "{text}");
        assert!(!text.contains("APNSW") && !text.contains("NSWP"), "{text}");
        assert!(p.dropped.recited >= 1, "{:?}", p.dropped);
    }

    /// Recorded on the IVR prompt: "you can dial" committed ("dial" timed 130.76-131.0 s,
    /// said at 130.0-130.4); the next decode heard "dial 500 to attempt", which matched the
    /// context too poorly for the text to decide, and by time alone "500" (130.4-131.3)
    /// was old. The last committed word heard again says where the old words end.
    #[test]
    fn the_last_committed_word_heard_again_ends_the_old_words() {
        let mut p = Policy::new(PolicyConfig::default());
        let committed = [
            word(" asterisk,", 129.49, 130.01),
            word(" you", 130.01, 130.17),
            word(" can", 130.17, 130.17),
            word(" dial", 130.76, 131.0),
        ];
        p.commit(&committed, 131.7);
        p.window_words = committed[1..].to_vec();
        let heard = [
            (" dial", 130.01, 130.4),
            (" 500", 130.4, 131.28),
            (" to", 131.28, 131.46),
            (" attempt", 131.47, 132.16),
        ];
        let new = p.new_words(heard.iter().map(|&(t, a, b)| word(t, a, b)).collect());
        assert_eq!(join_words(&new), "500 to attempt");
    }

    /// Recorded on the IVR prompts: after "…to disconnect from the PBX." a new speaker
    /// said "All right, so this is the sick corpus"; prompted, base said "disconnect from the
    /// PBX" again (squeezed to the window's end) five decodes in a row, with nothing new.
    /// That is a failure: the prompt goes off and the next decode hears the speaker; a
    /// closing decode that fails so is run again without it.
    #[test]
    fn a_decode_that_only_repeats_its_context_turns_the_prompt_off() {
        let spans = [(0.5, 3.8, 0.3), (5.0, 8.0, 0.3)];
        let script = [
            (" to", 0.5, 1.0),
            (" disconnect", 1.0, 1.9),
            (" from", 2.0, 2.4),
            (" the", 2.4, 2.7),
            (" PBX.", 2.8, 3.8),
            (" All", 5.0, 5.3),
            (" right,", 5.3, 5.7),
            (" so", 5.8, 6.1),
            (" this", 6.2, 6.5),
            (" is", 6.6, 6.9),
            (" the", 7.0, 7.2),
            (" sick", 7.3, 7.6),
            (" corpus.", 7.6, 8.0),
        ];
        let audio = spans_audio(&spans, 11.0);
        let (events, _) = replay(
            &audio,
            PolicyConfig::default(),
            |job| {
                let mut h = scripted(&script, job);
                let end = job.start + job.audio.len() as f64 / 16_000.0;
                if !job.prompt.is_empty() && end > 5.5 {
                    // The context again, squeezed to the window's end (or, from 7 s on,
                    // stopping short of it, as the closing decode did).
                    h.words.retain(|w| w.start < 4.0);
                    if end < 7.0 {
                        for w in h.words.iter_mut().skip(1) {
                            w.start = end;
                            w.end = end;
                        }
                    }
                }
                h
            },
            |_| 0.2,
        );
        let text = final_text(&events);
        assert!(
            text.ends_with("All right, so this is the sick corpus."),
            "{text}"
        );
    }

    /// Recorded at real time (English program, 192-207 s): after the IVR's "...disconnect
    /// from the PBX." a speaker with a cold began. Every decode prompted with the IVR's text
    /// failed ("The set corpus is the set corpus...", low confidence); every one without it
    /// heard "All right, so this is the sick corpus...". The prompt went off after a failure
    /// and on after a success, so decodes alternated, and each failure wiped the hypothesis
    /// the next success had to agree with: 30 words waited 8-14 s, for the pause. A failed
    /// decode now leaves the previous hypothesis standing, and the prompt keeps only text
    /// committed after the failure (Whisper's reference decoder resets its prompt so).
    #[test]
    fn a_failed_decode_does_not_undo_the_agreement_of_those_around_it() {
        let said = "All right, so this is the sick corpus. Hopefully the recording levels are \
                    okay. I have a cold, so this probably sounds a lot different than the \
                    acoustic corpus.";
        let mut script = spread("to disconnect from the PBX.", 0.5, 3.3);
        script.extend(spread(said, 6.5, 11.0));
        let audio = speech_audio(&[(0.5, 3.8, 0.3), (6.5, 17.5, 0.3)], 20.0);
        let (events, _) = replay(
            &audio,
            PolicyConfig::default(),
            |job| {
                let mut h = scripted(&script, job);
                let end = job.start + job.audio.len() as f64 / 16_000.0;
                if job.prompt.contains("PBX") && end > 7.0 {
                    h.words = words_of("The set corpus is the set corpus.")
                        .into_iter()
                        .map(|w| Word {
                            start: job.start,
                            end,
                            ..w
                        })
                        .collect();
                    h.avg_logprob = -1.4;
                }
                h
            },
            |_| 0.4,
        );
        let text = final_text(&events);
        assert!(text.ends_with(said), "{text}");
        assert_final_within(&events, 15.5, 4.0);
    }

    /// Decodes that fail every other time, whatever the prompt, or write nothing at all
    /// (recorded: 16-29 times a run, a success, a failure, a success; and "…an echo test",
    /// nothing, "…an echo test, dial 6000", nothing): the successes agree across them.
    #[test]
    fn decodes_agree_across_a_failed_one() {
        for empty in [false, true] {
            decodes_agree_across_a_failed_one_(empty);
        }
    }

    fn decodes_agree_across_a_failed_one_(empty: bool) {
        let said = "so this is the sick corpus hopefully the recording levels are okay";
        let events = every_other_decode(said, |h| {
            if empty {
                h.words.clear();
            } else {
                h.avg_logprob = -1.4;
            }
        });
        assert_eq!(final_text(&events), said);
        // The failures cost a step each; wiping what came before them, 8.3 s.
        assert_final_within(&events, 7.0, 5.0);
    }

    /// Recorded (English program, 213-216 s): successive decodes read the start of a phrase
    /// two ways by turns, "Yeah, so that just happened" and "Yes, that just happened";
    /// compared only with the decode just before, none agreed until the pause.
    #[test]
    fn decodes_that_alternate_between_two_readings_agree_with_the_one_before_last() {
        let said = "yeah so that just happened and that should be good alright thanks";
        let events = every_other_decode(said, |h| {
            if h.words.len() >= 2 {
                // "yeah so" read as "yes".
                let end = h.words[1].end;
                h.words.remove(1);
                h.words[0].text = " yes".into();
                h.words[0].end = end;
            }
        });
        let text = final_text(&events);
        assert!(
            text.ends_with("that just happened and that should be good alright thanks"),
            "{text}"
        );
        // Three words agreed on first (the one before last is short at first); compared
        // only with the decode just before, 8.3 s.
        assert_final_within(&events, 7.0, 5.0);
    }

    /// Recorded (Spanish program, an 8-kHz telephone menu, 117-130 s): each decode read the
    /// same words its own way ("ahora y en adelante" / "ORAIN ADELANTE" / "Laura I. En
    /// Adelante"), so none agreed and they waited for the pause, 6-12 s. Once a decode has
    /// heard seconds of audio after them, they are committed as it reads them.
    #[test]
    fn words_no_decodes_agree_on_are_committed_once_heard_well_past() {
        let said = "marque el número tres para enviar este color al menú de tortura ahora y en \
                    adelante marque el número cuatro para enviarlo a la gente";
        let script = spread(said, 0.5, 11.0);
        let audio = speech_audio(&[(0.5, 11.5, 0.3)], 14.0);
        let (events, _) = replay(
            &audio,
            PolicyConfig::default(),
            |job| spelled_anew(&script, job),
            |_| 0.4,
        );
        let words: usize = finals(&events)
            .iter()
            .map(|f| f.1.split_whitespace().count())
            .sum();
        assert_eq!(
            words,
            said.split_whitespace().count(),
            "{}",
            final_text(&events)
        );
        // Heard 3.5 s past, at the next step; waiting for the pause, 10.8 s.
        assert_final_within(&events, 9.0, 5.0);
    }

    /// Recorded (the term test's synthesised "Tais Plus in Kyrgyzstan gives PrEP and PEP to
    /// key populations."): the tentative decodes, greedy, read "Ties plus incurgistan"; the
    /// closing decode, beam search, "Tais Plus in Kyrgyzstan" — the glossary's evidence. A
    /// decode that comes once the speaker has paused commits nothing by age: the closing
    /// decode's reading is the final one.
    #[test]
    fn words_are_not_committed_by_age_once_the_speaker_pauses() {
        let said = "Tais Plus in Kyrgyzstan gives PrEP and PEP to key populations";
        let script = spread(said, 0.2, 3.5);
        let audio = speech_audio(&[(0.2, 3.7, 0.3)], 7.0);
        let (events, _) = replay(
            &audio,
            PolicyConfig::default(),
            |job| spelled_anew(&script, job),
            |_| 0.4,
        );
        assert_eq!(final_text(&events), said);
    }

    /// A long utterance whose decodes never agree (each hears its first word differently,
    /// as the window slides: recorded on a Spanish IVR passage) is committed as the window
    /// fills, not given up — also when the audio that arrives during a decode is fed only
    /// after its result, as the live engine does.
    #[test]
    fn a_full_window_is_committed_even_when_decodes_never_agree() {
        let script: Vec<(String, f64, f64)> = (0..56)
            .map(|i| (format!(" w{i}"), 1.0 + i as f64 * 0.5, 1.4 + i as f64 * 0.5))
            .collect();
        // Speech-like: a tone whose level moves as syllables do.
        let audio: Vec<f32> = (0..31 * 16_000)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                if (1.0..29.0).contains(&t) {
                    0.3 * (0.6 + 0.4 * (i as f32 / 640.0).cos()) * (i as f32 * 0.2).sin()
                } else {
                    0.0
                }
            })
            .collect();
        let mut p = Policy::new(PolicyConfig::default());
        let mut events = Vec::new();
        let mut fed = 0usize;
        while fed < audio.len() || !p.idle() {
            if let Some(job) = p.poll_job(fed as f64 / 16_000.0) {
                let end = job.start + job.audio.len() as f64 / 16_000.0;
                let words: Vec<Word> = script
                    .iter()
                    .filter(|(_, _, b)| *b > job.start + 0.05 && *b <= end)
                    .enumerate()
                    .map(|(k, (t, a, b))| {
                        // Every decode hears its first word its own way.
                        let text = if k == 0 {
                            format!(" v{}", job.id)
                        } else {
                            t.clone()
                        };
                        word(&text, *a, *b)
                    })
                    .collect();
                let hyp = Hypothesis {
                    words,
                    no_speech_prob: 0.01,
                    avg_logprob: -0.2,
                    language: "en".into(),
                };
                // Fed after the result, as the live engine does.
                p.on_result(job.id, hyp, fed as f64 / 16_000.0 + 0.3);
            } else if fed < audio.len() {
                let upto = (fed + 16_000).min(audio.len());
                p.push_audio(&audio[fed..upto]);
                fed = upto;
            } else {
                p.finish();
            }
            while let Some(e) = p.poll_event() {
                events.push(e);
            }
        }
        assert_eq!(p.untranscribed, 0.0, "speech given up");
        let text = final_text(&events);
        let kept = script
            .iter()
            .filter(|(t, _, _)| text.split_whitespace().any(|w| w == t.trim()))
            .count();
        assert!(kept >= 45, "{kept} of 56 words: {text}");
    }

    /// Recorded from the LibriVox sonnet: "thereby beauties" was committed, and the next
    /// window's hypothesis started again at "and crease".
    #[test]
    fn a_committed_tail_said_again_is_found() {
        let recent = ws("we desire and crease thereby beauties");
        let hyp = ws("and crease that thereby beauties rose might never die");
        assert_eq!(tail_anchor(&recent, &hyp, 8), [5]);
        // Not past the search limit: further on, a repeat may be genuine speech.
        assert!(tail_anchor(&recent, &hyp, 4).is_empty());
        // A single shared word is not evidence.
        assert!(tail_anchor(&ws("so my fellow americans"), &ws("americans ask not"), 8).is_empty());
        assert!(tail_anchor(&ws("a b"), &ws(""), 8).is_empty());
        // Recorded from the hour-long soak: "press zero for" was committed, the next window
        // began "press zero you are about to": the committed "for" was never said.
        let recent = ws("for an operator press zero for");
        let hyp = ws("press zero you are about to enter an echo test");
        assert_eq!(tail_anchor(&recent, &hyp, 8), [2]);
    }

    /// Recorded (English program, the closing decode of a quiet "But um" at 289.3-291.2 s,
    /// with the prompt): a phrase committed ten seconds before, written three times over, the
    /// first time half squeezed into the window's end. Nothing of it was heard: the decode
    /// failed (and is run again without the prompt), none of it is kept.
    #[test]
    fn a_loop_whose_first_time_was_not_heard_either_is_dropped_whole() {
        let mut p = Policy::new(PolicyConfig::default());
        let unit = [
            (" I", 289.33, 289.45),
            (" really", 289.8, 290.18),
            (" don't", 290.18, 290.7),
            (" know", 290.7, 291.2),
            (" if", 291.2, 291.2),
            (" we'll", 291.2, 291.2),
            (" talk", 291.2, 291.2),
            (" like", 291.2, 291.2),
            (" this...", 291.2, 291.2),
        ];
        let mut words: Vec<Word> = unit.iter().map(|&(t, a, b)| word(t, a, b)).collect();
        for _ in 0..2 {
            words.extend(unit.iter().map(|&(t, _, _)| word(t, 291.2, 291.2)));
        }
        let (kept, guard) = p.accept(Hypothesis {
            words,
            no_speech_prob: 0.02,
            avg_logprob: -0.4,
            language: "en".into(),
        });
        assert_eq!(join_words(&kept), "");
        assert_eq!(guard, Some(Guard::Compression));
    }

    /// Recorded on jfk.wav: the closing decode of "ask not" went on over the pause,
    /// repeating itself with no audio under the repeats.
    #[test]
    fn a_loop_over_the_silence_after_speech_keeps_the_speech() {
        let hyp = |words: Vec<Word>| Hypothesis {
            words,
            no_speech_prob: 0.0,
            avg_logprob: -0.8,
            language: "en".into(),
        };
        let mut p = Policy::new(PolicyConfig::default());
        let mut words = vec![word(" ask", 3.29, 3.65), word(" not", 4.01, 4.28)];
        words.extend((0..20).map(|i| word([" ask", " not"][i % 2], 4.79, 4.79)));
        assert_eq!(join_words(&p.accept(hyp(words)).0), "ask not");
        // The same loop heard over real audio throughout is a failed decode.
        let words = (0..22)
            .map(|i| {
                word(
                    [" ask", " not"][i % 2],
                    i as f64 * 0.3,
                    i as f64 * 0.3 + 0.25,
                )
            })
            .collect();
        assert!(p.accept(hyp(words)).0.is_empty());
        assert_eq!(p.dropped.compression, 1);
    }

    /// Recorded in the hour-long soak: "press zero" followed by silence came back as "press
    /// zero zero zero", the repeats squeezed into no time.
    #[test]
    fn a_single_word_looping_over_silence_is_cut() {
        let heard = [
            word(" press", 22.9, 23.3),
            word(" zero.", 23.3, 23.9),
            word(" zero.", 24.6, 24.6),
            word(" zero.", 24.6, 24.6),
        ];
        assert_eq!(loop_start(&heard, 0.0, &[]), Some(2));
        // Said three times with audio under each: speech ("no, no, no").
        let said = [
            word(" no,", 1.0, 1.2),
            word(" no,", 1.3, 1.5),
            word(" no.", 1.6, 1.8),
        ];
        assert_eq!(loop_start(&said, 0.0, &[]), None);
        // A speaker's "words, words, words, words" (MFA's conversational recording).
        let said: Vec<Word> = (0..4)
            .map(|i| word(" words,", 87.0 + i as f64 * 0.45, 87.4 + i as f64 * 0.45))
            .collect();
        assert_eq!(loop_start(&said, 0.0, &[]), None);
        // Said with audio under each, then looped: the said ones are kept (recorded at real
        // time: "more word, word, word, word" then "word" ×5 squeezed).
        let mut said: Vec<Word> = (0..4)
            .map(|i| word(" word,", 273.6 + i as f64 * 0.4, 273.95 + i as f64 * 0.4))
            .collect();
        said.extend(
            (0..5).map(|i| word(" word", 275.0 + i as f64 * 0.03, 275.02 + i as f64 * 0.03)),
        );
        assert_eq!(loop_start(&said, 0.0, &[]), Some(4));
        // The same word over and over is a loop, whatever its times.
        let looped: Vec<Word> = (0..12)
            .map(|i| word(" Montreal,", 336.1 + i as f64 * 0.1, 336.2 + i as f64 * 0.1))
            .collect();
        assert_eq!(loop_start(&looped, 0.0, &[]), Some(1));
    }

    /// Recorded at real time: repetitions that are speech, with audio under every word, were
    /// cut as loops — "password 4 2 4 2" (and the 23 words after it, decode after decode),
    /// "word, word, word, word, word" with the last squeezed at the window's end, and an
    /// IVR menu saying "send this color to" in two options.
    #[test]
    fn repetitions_with_audio_under_them_are_speech() {
        let password = timed("and password 4 2 4 2 that user is configured", 164.2, 0.3);
        assert_eq!(loop_start(&password, 0.0, &[]), None);
        let mut words = timed("Here's some more word, word, word, word,", 272.1, 0.5);
        words.push(word(" word.", 275.7, 275.7));
        assert_eq!(loop_start(&words, 0.0, &[]), None);
        let menu = timed(
            "dial two to send this color to voicemail now dial three to send this color to the torture menus",
            301.0,
            0.35,
        );
        assert_eq!(loop_start(&menu, 0.0, &[]), None);
        // The same phrases looped with no audio under the repeats are cut where they repeat.
        let mut looped = timed("and password 4 2", 164.2, 0.3);
        looped.extend(["4", "2", "4", "2"].map(|t| word(&format!(" {t}"), 165.5, 165.5)));
        assert_eq!(loop_start(&looped, 0.0, &[]), Some(4));
        let mut looped = timed("to send this color to voicemail", 301.0, 0.35);
        looped.extend(timed("send this color to", 303.0, 0.01));
        assert_eq!(loop_start(&looped, 0.0, &[]), Some(6));
        // A phrase said three times back to back, whatever its times: Whisper's loop.
        let thrice = timed("thank you thank you thank you", 10.0, 0.3);
        assert_eq!(loop_start(&thrice, 0.0, &[]), Some(2));
    }

    /// Recorded (three channels at real time, the English booth in pieces, trace of
    /// `cargo bench --bench channels -- --channels 3 --trace-out`): after "…about Asterisk,
    /// dial 2 now." was committed, the next piece's greedy decode of 123.3-129.4 s wrote
    /// "the voiceover IP capabilities of asterisk dial 2 now. If you'd like to test out the
    /// voiceover IP capabilities of asterisk." — the phrase the first time over the
    /// committed words (so taken for context), the second squeezed at the window's end (so
    /// cut as a loop): six words said once went with neither. The text and the window are
    /// the trace's; the word times are rebuilt from where it placed them (the first copy
    /// over the committed words, "If you'd like to test out" after them, the rest at the
    /// window's end), the trace itself not kept.
    #[test]
    fn words_written_out_of_place_over_the_committed_ones_do_not_make_the_real_ones_a_loop() {
        let hyp = |words: Vec<Word>| Hypothesis {
            words,
            no_speech_prob: 0.01,
            avg_logprob: -0.3,
            language: "en".into(),
        };
        let committed = timed(
            "If you would like to learn more technical information about Asterisk, dial 2 now.",
            119.8,
            0.37,
        );
        let decode = |heard: Vec<Word>| {
            let mut p = Policy::new(PolicyConfig::default());
            p.commit(&committed, 125.0);
            p.window_words = committed[10..].to_vec();
            let (words, guard) = p.accept(hyp(heard));
            assert_eq!(guard, None);
            join_words(&p.new_words(words))
        };
        let end = committed.last().unwrap().end;
        assert!(end > 124.0 && end < 125.0, "{end}");
        let mut heard = timed(
            "the voiceover IP capabilities of asterisk dial 2 now.",
            123.3,
            0.17,
        );
        heard.extend(timed("If you'd like to test out", 125.4, 0.3));
        heard.extend(timed(
            "the voiceover IP capabilities of asterisk.",
            129.4,
            0.0,
        ));
        assert_eq!(
            decode(heard),
            "If you'd like to test out the voiceover IP capabilities of asterisk."
        );
        // The committed words said again, then recited at the window's end: the recital goes.
        let mut heard = timed("about Asterisk, dial 2 now.", 123.3, 0.3);
        heard.extend(timed("If you'd like to test out", 125.4, 0.3));
        heard.extend(timed("about Asterisk, dial 2 now.", 129.4, 0.0));
        assert_eq!(decode(heard), "If you'd like to test out");
    }

    /// Audio that is a tone of the given amplitude in each `(from, to, amplitude)` span and
    /// digital silence elsewhere, `total` seconds long.
    fn spans_audio(spans: &[(f64, f64, f32)], total: f64) -> Vec<f32> {
        (0..(total * 16_000.0) as usize)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                spans
                    .iter()
                    .find(|(a, b, _)| t >= *a && t < *b)
                    .map_or(0.0, |(_, _, amp)| amp * (i as f32 * 0.2).sin())
            })
            .collect()
    }

    /// [`spans_audio`] with a level that moves as syllables do (the detector takes a steady
    /// tone for noise after a few seconds).
    fn speech_audio(spans: &[(f64, f64, f32)], total: f64) -> Vec<f32> {
        spans_audio(spans, total)
            .into_iter()
            .enumerate()
            .map(|(i, x)| x * (0.6 + 0.4 * (i as f32 / 640.0).cos()))
            .collect()
    }

    /// `said` over 8 s of speech from 0.5 s, every other tentative decode's answer changed by
    /// `alter`.
    fn every_other_decode(said: &str, alter: impl Fn(&mut Hypothesis)) -> Vec<Event> {
        let script = spread(said, 0.5, 8.0);
        let audio = speech_audio(&[(0.5, 8.5, 0.3)], 11.0);
        let (events, _) = replay(
            &audio,
            PolicyConfig::default(),
            |job| {
                let mut h = scripted(&script, job);
                if job.id % 2 == 1 && !job.closing {
                    alter(&mut h);
                }
                h
            },
            |_| 0.4,
        );
        events
    }

    /// Every word that ends before `until` (media seconds) is final within `bound` seconds.
    fn assert_final_within(events: &[Event], until: f64, bound: f64) {
        for e in events {
            if let Event::Final { words, emitted, .. } = e {
                for w in words.iter().filter(|w| w.end < until) {
                    let latency = emitted - w.end;
                    assert!(latency < bound, "`{}` waited {latency:.2} s", w.text);
                }
            }
        }
    }

    /// A script of the words of `said`, spread evenly over `secs` seconds from `from`.
    fn spread(said: &str, from: f64, secs: f64) -> Vec<(String, f64, f64)> {
        let n = said.split_whitespace().count() as f64;
        said.split_whitespace()
            .enumerate()
            .map(|(k, w)| {
                let at = from + secs * k as f64 / n;
                (format!(" {w}"), at, at + secs / n - 0.05)
            })
            .collect()
    }

    /// Whisper's answer for a window from a script of words: those the window overlaps, a
    /// word cut by the window's end coming out wrong.
    /// [`scripted`], but every tentative decode spells every word its own way (no two agree);
    /// the closing decode reads the script.
    fn spelled_anew<S: AsRef<str>>(script: &[(S, f64, f64)], job: &DecodeJob) -> Hypothesis {
        let mut h = scripted(script, job);
        if !job.closing {
            for w in &mut h.words {
                w.text = format!("{}{}", w.text, job.id);
            }
        }
        h
    }

    fn scripted<S: AsRef<str>>(script: &[(S, f64, f64)], job: &DecodeJob) -> Hypothesis {
        let end = job.start + job.audio.len() as f64 / 16_000.0;
        Hypothesis {
            words: script
                .iter()
                .filter(|(_, a, b)| *b > job.start + 0.05 && *a < end)
                .map(|(w, a, b)| Word {
                    text: if *b > end + 0.05 {
                        format!("{}-ish", w.as_ref())
                    } else {
                        w.as_ref().to_string()
                    },
                    start: *a,
                    end: b.min(end),
                    prob: 0.9,
                })
                .collect(),
            no_speech_prob: 0.01,
            avg_logprob: -0.2,
            language: "en".into(),
        }
    }

    fn final_text(events: &[Event]) -> String {
        finals(events)
            .iter()
            .map(|f| f.1.trim())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// "well then", a pause of 1.1 s, and "I have a thousand" whose first word is too quiet
    /// for the detector (it opens at "have").
    const LATE_ONSET: &[(f64, f64, f32)] = &[(0.6, 1.9, 0.3), (3.0, 3.8, 0.0005), (3.8, 4.9, 0.3)];
    const FIRST: &[(&str, f64, f64)] = &[(" well", 0.6, 1.2), (" then", 1.3, 1.9)];
    const SECOND: &[(&str, f64, f64)] = &[
        (" hello", 0.6, 1.2),
        (" there", 1.3, 1.9),
        (" I", 3.0, 3.2),
        (" have", 3.85, 4.1),
        (" a", 4.1, 4.2),
        (" thousand", 4.2, 4.9),
    ];

    /// Whisper hears the context words of the first utterance differently the second time
    /// ("hello there" for "well then"), so they cannot be matched and word times decide.
    fn late_onset_decoder(job: &DecodeJob) -> Hypothesis {
        let end = job.start + job.audio.len() as f64 / 16_000.0;
        scripted(if end < 3.0 { FIRST } else { SECOND }, job)
    }

    #[test]
    fn a_first_word_before_the_detectors_late_onset_is_kept() {
        // Cause: at the next utterance the commit point moved to the detector's onset less
        // the pre-roll (3.3 s); "I" (3.0-3.2) lay before it and was taken for an old word.
        let audio = spans_audio(LATE_ONSET, 7.0);
        let (events, _) = replay(&audio, PolicyConfig::default(), late_onset_decoder, |_| 0.2);
        assert_eq!(
            final_text(&events),
            "well then I have a thousand",
            "{events:?}"
        );
    }

    #[test]
    fn context_words_go_whole_into_the_next_window() {
        // Cause: between utterances the buffer was cut 2.5 s before now, through the context
        // words; with half of "well" gone Whisper cannot say it, and the context is not found.
        let audio = spans_audio(LATE_ONSET, 7.0);
        let mut starts = Vec::new();
        replay(
            &audio,
            PolicyConfig::default(),
            |job| {
                starts.push((job.start, job.start + job.audio.len() as f64 / 16_000.0));
                late_onset_decoder(job)
            },
            |_| 0.2,
        );
        let (from, to) = *starts
            .iter()
            .find(|(_, to)| *to > 3.8)
            .expect("a decode of the second utterance");
        assert!(
            (from - 0.6).abs() < 0.02,
            "the window starts at {from:.2}, not at the context word (0.6)"
        );
        let secs = to - from;
        assert!(secs > 3.2, "{secs:.2} s of audio");
    }

    #[test]
    fn an_utterance_begun_during_a_closing_decode_opens_its_own_window() {
        // Cause: the next utterance's window was chosen only when it began with nothing owed;
        // begun during the last closing decode, it kept that utterance's context even when
        // it was seconds away, and decodes ran over the silence between them.
        let spans = [(0.6, 1.9, 0.3), (4.6, 6.0, 0.3)];
        let script = [
            (" well", 0.6, 1.2),
            (" then", 1.3, 1.9),
            (" so", 4.6, 5.0),
            (" be", 5.1, 6.0),
        ];
        let audio = spans_audio(&spans, 8.0);
        let mut windows = Vec::new();
        let (events, _) = replay(
            &audio,
            PolicyConfig::default(),
            |job| {
                windows.push((job.start, job.closing));
                scripted(&script, job)
            },
            // The closing decode of the first utterance takes until after 4.6 s.
            |job| {
                if job.closing && job.start < 1.0 {
                    2.5
                } else {
                    0.2
                }
            },
        );
        assert_eq!(final_text(&events), "well then so be", "{events:?}");
        let second: Vec<f64> = windows
            .iter()
            .filter(|(s, c)| !(*c && *s < 1.0))
            .map(|w| w.0)
            .filter(|s| *s > 0.7)
            .collect();
        assert!(
            second.iter().all(|s| *s > 3.9),
            "windows of the second utterance start at {second:?}"
        );
    }

    #[test]
    fn a_closing_decode_that_stops_short_keeps_the_tentative_tail() {
        // Cause: the closing decode (the whole utterance once more) said "I think this is"
        // and the tentative "probably good", heard by the decodes before, was withdrawn.
        let script = [
            (" I", 0.5, 0.7),
            (" think", 0.7, 1.0),
            (" this", 1.0, 1.3),
            (" is", 1.3, 1.5),
            (" probably", 1.6, 2.2),
            (" good.", 2.2, 2.6),
        ];
        let audio = spans_audio(&[(0.5, 2.6, 0.3)], 5.0);
        let (events, p) = replay(
            &audio,
            PolicyConfig::default(),
            |job| {
                let mut h = scripted(&script, job);
                if job.closing {
                    h.words.truncate(4);
                }
                h
            },
            |_| 0.2,
        );
        assert_eq!(
            final_text(&events),
            "I think this is probably good.",
            "{events:?}"
        );
        assert_eq!(p.untranscribed, 0.0);
    }

    /// Ten words over 0.5-6.0 s, no tentative decodes; the first closing decode stops after
    /// the fourth word (2.65 s), and the next hears the rest, or nothing.
    fn stopping_short(rest: bool) -> (Vec<Event>, Policy, usize) {
        let script: Vec<(String, f64, f64)> = (0..10)
            .map(|i| {
                (
                    format!(" w{i}"),
                    0.5 + 0.55 * i as f64,
                    0.5 + 0.55 * i as f64 + 0.5,
                )
            })
            .collect();
        let audio = speech_audio(&[(0.5, 6.0, 0.3)], 9.0);
        let mut closings = 0;
        let (events, p) = replay(
            &audio,
            // No tentative decodes (whose words would stand for the closing one's missing).
            PolicyConfig {
                step: 100.0,
                ..PolicyConfig::default()
            },
            |job| {
                let mut h = scripted(&script, job);
                if job.closing {
                    closings += 1;
                    if closings == 1 {
                        h.words.retain(|w| w.end <= 3.0);
                    } else if !rest {
                        h.words.clear();
                    }
                }
                h
            },
            |_| 0.2,
        );
        (events, p, closings)
    }

    #[test]
    fn a_closing_decode_that_stops_short_goes_again_from_its_last_word() {
        let (events, p, closings) = stopping_short(true);
        assert_eq!(
            final_text(&events),
            "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9",
            "{events:?}"
        );
        assert_eq!(closings, 2);
        assert_eq!(p.untranscribed, 0.0);
    }

    /// Recorded (three channels at real time, the Spanish booth in pieces): a piece's closing
    /// decode taken late reached over 13.8 s (82.5-96.3 s) and said "e ingresará al sistema
    /// de mensajes." in its first 3 s, nothing of the speaker after; with fewer than half a
    /// word a second over the window it was dropped as sparse (a failed decode), with its
    /// prompt and without, and the 13.8 s were given up. Here 10.4 s of speech whose closing
    /// decodes, when they begin before 2 s, stop at 3.0 s: the one run again from its last
    /// word hears the rest.
    #[test]
    fn a_long_closing_decode_that_stops_short_is_not_taken_for_a_failed_one() {
        let script: Vec<(String, f64, f64)> = (0..20)
            .map(|i| {
                let a = 0.5 + 0.52 * i as f64;
                (format!(" w{i}"), a, a + 0.45)
            })
            .collect();
        let audio = speech_audio(&[(0.5, 10.9, 0.3)], 14.0);
        let (events, p) = replay(
            &audio,
            PolicyConfig {
                step: 100.0,
                ..PolicyConfig::default()
            },
            |job| {
                let mut h = scripted(&script, job);
                if job.closing && job.start < 2.0 {
                    h.words.retain(|w| w.end <= 3.0);
                }
                h
            },
            |_| 0.2,
        );
        let want: Vec<String> = script.iter().map(|w| w.0.trim().to_string()).collect();
        assert_eq!(final_text(&events), want.join(" "), "{events:?}");
        assert_eq!(p.untranscribed, 0.0);
        assert_eq!(p.dropped.sparse, 0);
    }

    #[test]
    fn speech_a_closing_decode_stopped_short_of_twice_is_counted() {
        let (events, p, closings) = stopping_short(false);
        assert_eq!(final_text(&events), "w0 w1 w2 w3", "{events:?}");
        assert_eq!(closings, 2);
        // The rest of the speech: 2.65-6.0 s.
        assert!((2.8..3.6).contains(&p.untranscribed), "{}", p.untranscribed);
    }

    #[test]
    fn a_closing_decode_that_says_only_its_context_goes_again_without_it() {
        // Recorded: a booth's piece decoded with the last words before it as context audio;
        // Whisper said those words ("That should be all. Thanks.") and nothing of the 6.6 s
        // after, and the piece was given up.
        let script = [
            (" well", 0.5, 0.8),
            (" then", 0.8, 1.2),
            (" this", 2.0, 2.4),
            (" is", 2.4, 2.7),
            (" the", 2.7, 3.0),
            (" sick", 3.0, 3.6),
            (" corpus", 3.6, 4.4),
            (" with", 4.4, 4.8),
            (" a", 4.8, 5.0),
            (" cold", 5.0, 5.8),
        ];
        let audio = speech_audio(&[(0.5, 1.2, 0.3), (2.0, 5.8, 0.3)], 8.0);
        let (events, p) = replay(
            &audio,
            PolicyConfig {
                step: 100.0,
                ..PolicyConfig::default()
            },
            |job| {
                let mut h = scripted(&script, job);
                let end = job.start + job.audio.len() as f64 / 16_000.0;
                if job.closing && end > 3.0 && job.start < 1.2 {
                    h.words.retain(|w| w.end <= 1.2);
                }
                h
            },
            |_| 0.2,
        );
        assert_eq!(
            final_text(&events),
            "well then this is the sick corpus with a cold",
            "{events:?}"
        );
        assert_eq!(p.untranscribed, 0.0);
    }

    #[test]
    fn a_closing_decode_with_its_words_squeezed_early_is_not_doubled_by_the_tentative_tail() {
        // Cause (recorded, a sentence said twice): the closing decode squeezed the whole
        // phrase into its first second; its last word was not among the tentative ones near
        // its time, so the tentative words after that time were rescued: "from Thailand
        // joins the beer educator training. joins the Beer Educator training."
        let script = [
            (" from", 0.5, 0.8),
            (" Thailand", 0.8, 1.4),
            (" joins", 1.5, 1.9),
            (" the", 1.9, 2.1),
            (" beer", 2.2, 2.6),
            (" educator", 2.6, 3.3),
            (" training.", 3.3, 3.9),
        ];
        let audio = speech_audio(&[(0.5, 3.9, 0.3)], 6.0);
        // The tentative decodes heard the whole phrase, or (as recorded too) stopped at
        // "joins".
        for tentative in [script.len(), 3] {
            let (events, p) = replay(
                &audio,
                PolicyConfig::default(),
                |job| {
                    let mut h = scripted(&script, job);
                    if job.closing {
                        for w in &mut h.words {
                            w.start = 0.5 + (w.start - 0.5) * 0.3;
                            w.end = 0.5 + (w.end - 0.5) * 0.3;
                        }
                    } else {
                        h.words.truncate(tentative);
                    }
                    h
                },
                |_| 0.2,
            );
            assert_eq!(
                final_text(&events),
                "from Thailand joins the beer educator training.",
                "{events:?}"
            );
            assert_eq!(p.untranscribed, 0.0);
        }
    }

    /// An utterance ("well then"), a pause, and 2.5 s of speech whose decodes Whisper is
    /// unsure of: the closing one with a prompt, or (`always`) every one whose window passes
    /// `after` seconds; and (`no_speech`) judges no speech.
    fn failing_second_utterance(
        always: bool,
        after: f64,
        no_speech: bool,
    ) -> (Vec<Event>, Policy, Vec<bool>) {
        let spans = [(0.6, 1.9, 0.3), (5.0, 7.5, 0.3)];
        let script = [
            (" well", 0.6, 1.2),
            (" then", 1.3, 1.9),
            (" come", 5.0, 5.4),
            (" back", 5.5, 6.0),
            (" home", 6.1, 6.6),
            (" now.", 6.7, 7.4),
        ];
        let audio = spans_audio(&spans, 10.0);
        let mut prompted = Vec::new();
        let (events, p) = replay(
            &audio,
            PolicyConfig::default(),
            |job| {
                let mut h = scripted(&script, job);
                if job.start + job.audio.len() as f64 / 16_000.0 > after {
                    if job.closing {
                        prompted.push(!job.prompt.is_empty());
                    }
                    if always || (job.closing && !job.prompt.is_empty()) {
                        h.avg_logprob = -1.4;
                        if no_speech {
                            h.no_speech_prob = 0.8;
                        }
                    }
                }
                h
            },
            |_| 0.2,
        );
        (events, p, prompted)
    }

    #[test]
    fn a_closing_decode_that_fails_with_its_prompt_is_run_again_without() {
        // Cause: a closing decode dropped by a guard lost the whole utterance (only a sparse
        // one was retried).
        let (events, p, prompted) = failing_second_utterance(false, 5.0, false);
        assert_eq!(prompted, [true, false]);
        assert_eq!(
            final_text(&events),
            "well then come back home now.",
            "{events:?}"
        );
        assert_eq!(p.untranscribed, 0.0);
    }

    /// Whisper prompted with the channel's text judged the closing decode no speech (with
    /// its confidence low): taken for silence, the utterance's last words went with no count.
    /// (Before whisper.cpp's no-speech probability was read from the right logits,
    /// `vendor/README.md`, such a decode was dropped as unsure and run again.) Now it is run
    /// again without the prompt, like a decode that failed.
    #[test]
    fn a_closing_decode_judged_no_speech_with_its_prompt_is_run_again_without() {
        let (events, p, prompted) = failing_second_utterance(false, 5.0, true);
        assert_eq!(prompted, [true, false]);
        assert_eq!(
            final_text(&events),
            "well then come back home now.",
            "{events:?}"
        );
        assert_eq!(p.untranscribed, 0.0);
        assert!(p.dropped.no_speech > 0);
    }

    /// Judged no speech without a prompt too, the audio is taken for what Whisper says it is
    /// (as `tolk transcribe` leaves it out): the tentative words heard before stay, nothing is
    /// counted untranscribed (recorded: a 3-s sound between two speakers in the English
    /// program, "I'm sorry." at low confidence, counted in every run before).
    #[test]
    fn audio_judged_no_speech_without_a_prompt_is_not_counted() {
        let (events, p, prompted) = failing_second_utterance(true, 6.3, true);
        // The tentative decodes judged no speech, prompted, turned the prompt off.
        assert_eq!(prompted, [false]);
        assert_eq!(final_text(&events), "well then come back", "{events:?}");
        assert_eq!(p.untranscribed, 0.0);
    }

    /// Recorded (three channels at real time, the English booth in pieces): a piece's closing
    /// decode, prompted with the booth's last sentence, came back with no words at all over
    /// 5 s of fast speech, and the utterance closed on it: 17 words, no count. Here every
    /// decode given a prompt says nothing; the closing one runs again without it.
    #[test]
    fn a_closing_decode_that_says_nothing_with_its_prompt_is_run_again_without() {
        let spans = [(0.6, 1.9, 0.3), (5.0, 8.5, 0.3)];
        let script = [
            (" well", 0.6, 1.2),
            (" then", 1.3, 1.9),
            (" this", 5.0, 5.4),
            (" is", 5.5, 5.8),
            (" pretty", 5.9, 6.5),
            (" fast", 6.6, 7.1),
            (" here", 7.2, 7.7),
            (" now.", 7.8, 8.2),
        ];
        let audio = spans_audio(&spans, 11.0);
        let mut prompted = Vec::new();
        let (events, p) = replay(
            &audio,
            // No tentative decodes (a booth in pieces): the closing decode is the only one.
            PolicyConfig {
                step: 100.0,
                ..PolicyConfig::default()
            },
            |job| {
                let mut h = scripted(&script, job);
                if job.closing {
                    prompted.push(!job.prompt.is_empty());
                }
                if !job.prompt.is_empty() {
                    h.words.clear();
                }
                h
            },
            |_| 0.2,
        );
        assert_eq!(prompted, [false, true, false]);
        assert_eq!(
            final_text(&events),
            "well then this is pretty fast here now.",
            "{events:?}"
        );
        assert_eq!(p.untranscribed, 0.0);
    }

    #[test]
    fn speech_no_decode_can_transcribe_is_counted() {
        let (events, p, _) = failing_second_utterance(true, 5.0, false);
        assert_eq!(final_text(&events), "well then", "{events:?}");
        // The utterance, from its pre-roll to the closing decode's end.
        assert!(
            (2.4..3.6).contains(&p.untranscribed),
            "{:.2} s counted",
            p.untranscribed
        );
    }

    /// The decodes that heard "come back" were followed only by failures, the closing one
    /// too: "come back" is kept from the tentative decode, and the rest of the utterance,
    /// which no decode transcribed, is counted (it was not, once any word was kept).
    #[test]
    fn speech_after_the_words_kept_from_a_failing_utterance_is_counted() {
        let (events, p, _) = failing_second_utterance(true, 6.3, false);
        assert_eq!(final_text(&events), "well then come back", "{events:?}");
        assert!(
            (1.0..2.5).contains(&p.untranscribed),
            "{:.2} s counted",
            p.untranscribed
        );
    }

    #[test]
    fn a_syllable_looping_inside_a_word_is_cut() {
        // Recorded: base on the MFA "sick corpus" recording and Asterisk prompts, and the
        // domain sentences of the issue.
        for w in [
            " e-e-e-e-e-e-e-e-e-e-e-e",
            " 2-n-n-n-n-n-n",
            " Bum-pum-pum-pum-pum-pum",
            " си-си-си-су-су-су-су-су",
        ] {
            assert!(syllable_loop(w), "{w}");
        }
        for w in [
            " self-substantial",
            " 5-5-5-1-2-1-2",
            " bud-beariest",
            " re-re-record",
            " ha-ha",
        ] {
            assert!(!syllable_loop(w), "{w}");
        }
        let mut p = Policy::new(PolicyConfig::default());
        let hyp = Hypothesis {
            words: vec![
                word(" different", 99.2, 99.6),
                word(" than", 99.8, 100.2),
                word(" the", 100.2, 100.4),
                word(" e-e-e-e-e-e-e-e", 100.4, 100.7),
            ],
            no_speech_prob: 0.01,
            avg_logprob: -0.3,
            language: "en".into(),
        };
        let (kept, guard) = p.accept(hyp);
        assert_eq!(join_words(&kept), "different than the");
        assert_eq!(guard, None);
    }

    /// Recorded (English program, 98-108 s, the sick corpus): the committed text ended
    /// "... is also quite different"; the window's context words were "very different than
    /// the acoustic corpus ... quite different", and the next decode, hearing them again,
    /// read "quite different than ...": the same two words the committed text ends with.
    /// Taken for an echo of the committed end, only those two were dropped, and eleven
    /// context words were committed a second time.
    #[test]
    fn context_that_begins_like_the_committed_end_is_not_taken_for_an_echo() {
        let mut p = Policy::new(PolicyConfig::default());
        let before = [
            (" I", 97.12, 97.19),
            (" have", 97.19, 97.49),
            (" a", 97.49, 97.56),
        ];
        let context = [
            (" very", 98.57, 98.74),
            (" different", 98.74, 99.03),
            (" than", 99.13, 99.37),
            (" the", 99.37, 100.24),
            (" acoustic", 100.28, 101.15),
            (" corpus.", 101.75, 102.97),
            (" The", 102.85, 103.12),
            (" reporting", 103.12, 103.95),
            (" environment", 103.95, 104.57),
            (" is", 104.57, 104.68),
            (" also", 104.68, 104.9),
            (" quite", 104.9, 105.21),
            (" different", 105.21, 105.57),
        ];
        let committed: Vec<Word> = before
            .iter()
            .chain(&context)
            .map(|&(t, a, b)| word(t, a, b))
            .collect();
        p.commit(&committed, 107.7);
        p.window_words = committed[before.len()..].to_vec();
        let heard: Vec<Word> = [
            (" quite", 98.57, 99.02),
            (" different", 99.11, 100.05),
            (" than", 100.05, 100.58),
            (" the", 100.58, 100.92),
            (" acoustic", 100.92, 101.8),
            (" corpus.", 101.82, 102.85),
            (" The", 102.85, 103.12),
            (" reporting", 103.12, 103.95),
            (" environment", 103.95, 104.57),
            (" is", 104.57, 104.68),
            (" also", 104.68, 104.9),
            (" quite", 104.9, 105.21),
            (" different", 105.21, 105.57),
            (" and", 106.73, 106.84),
            (" I'm", 106.84, 106.94),
            (" saying", 106.94, 107.17),
            (" a", 107.17, 107.2),
            (" bunch", 107.2, 107.39),
            (" of", 107.39, 107.45),
            (" different", 107.48, 107.87),
            (" things.", 107.87, 108.0),
        ]
        .iter()
        .map(|&(t, a, b)| word(t, a, b))
        .collect();
        let new = p.new_words(heard);
        assert_eq!(
            join_words(&new),
            "and I'm saying a bunch of different things."
        );
    }

    #[test]
    fn the_prompt_said_again_in_no_time_is_an_echo() {
        let mut p = Policy::new(PolicyConfig::default());
        let said = [
            (" Dial", 310.0, 310.3),
            (" four,", 310.3, 310.8),
            (" to", 310.9, 311.0),
            (" send", 311.0, 311.3),
            (" this", 311.3, 311.5),
            (" color", 311.5, 311.9),
            (" to", 311.9, 312.0),
            (" the", 312.0, 312.1),
            (" torture", 312.1, 312.6),
            (" menus.", 312.6, 313.2),
        ];
        let words: Vec<Word> = said.iter().map(|(t, a, b)| word(t, *a, *b)).collect();
        p.commit(&words, 314.0);
        // Recorded (base, a cough at 332.9 s, with the prompt): squeezed at the window's end.
        let echo: Vec<Word> = [
            " and",
            " forevermore.",
            " Dial",
            " four,",
            " to",
            " send",
            " this",
            " color",
            " to",
            " the",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i == 0 {
                word(t, 332.88, 333.8)
            } else {
                word(t, 333.8, 333.8)
            }
        })
        .collect();
        assert!(p.prompt_echo(&echo));
        // The same words with audio under them are speech (prompts do repeat).
        let spoken: Vec<Word> = echo
            .iter()
            .enumerate()
            .map(|(i, w)| word(&w.text, 333.0 + i as f64 * 0.3, 333.25 + i as f64 * 0.3))
            .collect();
        assert!(!p.prompt_echo(&spoken));
        // Squeezed words the prompt does not have are not an echo.
        let other: Vec<Word> = [" these", " ones", " send", " them", " to", " voicemail."]
            .iter()
            .map(|t| word(t, 330.95, 330.95))
            .collect();
        assert!(!p.prompt_echo(&other));
    }

    #[test]
    fn a_decode_that_parrots_its_prompt_goes_again_without_it() {
        // Cause: after IVR prompts, a new quiet speaker; base, prompted with the prompts, said
        // them again decode after decode (looping, all taken for old text) over 25 s of other
        // speech, and only an unprompted decode heard the speech.
        let spans = [(0.5, 3.0, 0.3), (6.0, 9.0, 0.3)];
        let ivr = [
            (" You", 0.5, 0.7),
            (" can", 0.7, 0.9),
            (" press", 0.9, 1.3),
            (" the", 1.3, 1.4),
            (" pound", 1.4, 1.9),
            (" key", 1.9, 2.2),
            (" to", 2.2, 2.3),
            (" disconnect.", 2.3, 2.9),
        ];
        let speech = [
            (" I", 6.0, 6.2),
            (" have", 6.2, 6.5),
            (" a", 6.5, 6.6),
            (" cold", 6.6, 7.2),
            (" so", 7.3, 7.6),
            (" this", 7.6, 8.0),
            (" sounds", 8.0, 8.5),
            (" different.", 8.5, 8.9),
        ];
        let audio = spans_audio(&spans, 11.0);
        let mut prompts = Vec::new();
        let (events, _) = replay(
            &audio,
            PolicyConfig::default(),
            |job| {
                let end = job.start + job.audio.len() as f64 / 16_000.0;
                if end < 5.0 {
                    return scripted(&ivr, job);
                }
                prompts.push(!job.prompt.is_empty());
                if job.prompt.is_empty() {
                    return scripted(&speech, job);
                }
                // The prompt said again, twice, over the new speech.
                let mut h = scripted(&speech, job);
                let n = ivr.len();
                let step = (end - job.start) / (2 * n) as f64;
                h.words = (0..2 * n)
                    .map(|i| {
                        let a = job.start + i as f64 * step;
                        word(ivr[i % n].0, a, a + step)
                    })
                    .collect();
                h
            },
            |_| 0.2,
        );
        assert_eq!(
            final_text(&events),
            "You can press the pound key to disconnect. I have a cold so this sounds different.",
            "{events:?}"
        );
        // The first prompted decode failed; the next went without the prompt.
        let first = prompts.iter().position(|p| *p).expect("a prompted decode");
        assert_eq!(prompts.get(first + 1), Some(&false), "{prompts:?}");
    }
}
