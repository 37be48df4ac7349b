//! Revising the record: once a stretch of a channel's speech is committed, it is decoded
//! again, whole, with beam search — as `tolk transcribe` decodes — and that text replaces
//! the stream's finals in it (issue 13).
//!
//! Why: the live stream decodes a few seconds at a time and commits what its decodes agree
//! on; at the latency it keeps (p50 about 2 s) it loses more words than one decode of a
//! long window does (English: 1.42 × offline's WER; the same audio decoded in chunks of up
//! to 28 s: 1.03 ×, `benches/README.md`). Such a decode takes seconds (3.2 s p50 for 28 s
//! here): too slow for live captions, not for the record. The finals people read live are
//! sent as they are; about half a minute later each is revised in place — in the archive,
//! the exports, the snapshots and on the pages.
//!
//! [`Chunker`] (pure) gathers a channel's audio and finals into chunks of at most
//! [`CHUNK_SECS`]; [`split`] gives each final of a chunk the revised words heard in its
//! time; [`check`] refuses a revision that looks worse than the stream (far fewer words,
//! far more, a loop), and `fill_skipped` puts back the stream's words where a revision
//! that passed left out a phrase of them. [`Reviser`] is the thread that decodes the
//! chunks, at the lowest CPU priority there is (`SCHED_IDLE`): it only ever runs on cores
//! the live decodes and the server leave idle, so it costs live captions nothing. Its queue holds
//! [`REVISE_QUEUE`] chunks; when full, the oldest is given up: its finals stay as they were
//! sent (counted, never silent).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::decoder::fit_prompt;
use super::policy::{compression_ratio, normalise, overlaps, syllable_loop, Word};
use super::SAMPLE_RATE_F;
use crate::transcribe::{Language, Model, Options, Segment};

/// The longest audio of one revision decode, seconds (whisper's window is 30 s; 28-s
/// chunks measured 1.03 × offline's WER, 12-s chunks 1.42 ×: context is what helps).
/// (Decoding 2 s more either side, each chunk keeping the words timed inside its own
/// stretch, measured far worse: 2.22 × against 1.35 × on the same finals — a segment's
/// times are too coarse to tell which side of a seam its words were said on.)
pub const CHUNK_SECS: f64 = 28.0;
/// Audio before a chunk's first final, when no chunk ends there (seconds).
pub const LEAD: f64 = 1.0;
/// Audio after a chunk's last final (seconds).
pub const TAIL: f64 = 1.0;
/// A chunk of at least [`MIN_CHUNK_SECS`] closes after this many seconds with no new
/// final; a shorter one waits for more speech (a short chunk alone reads worse: 1.32 ×
/// offline decoded utterance by utterance — laughter and coughs become words) up to
/// [`QUIET_CLOSE`].
pub const CLOSE_AFTER: f64 = 4.0;
pub const MIN_CHUNK_SECS: f64 = 12.0;
pub const QUIET_CLOSE: f64 = 20.0;
/// Audio kept while no chunk is open: finals come seconds after their audio (more when the
/// channel lags), and their chunk's audio must still be there.
pub const KEEP_SECS: f64 = 30.0;
/// An open chunk older than this closes whatever its finals (a channel that lags far).
pub const MAX_OPEN_SECS: f64 = 45.0;
/// Chunks waiting for the reviser thread; when full, the oldest is given up (its finals
/// stay as sent, counted in `revisions_given_up`). While several channels speak on a small
/// machine no core is idle (three channels on 2 cores: 2-3 chunks of each revised in three
/// minutes, 8-11 given up with a queue of 4, benches/README.md "The record in a meeting");
/// the chunks wait for a pause, a break or the meeting's end. 64 chunks of at most 30 s
/// are about half an hour of one channel's speech, 120 MB of audio at most.
pub const REVISE_QUEUE: usize = 64;

/// A final as the stream emitted it (media seconds), or its revised text.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Piece {
    /// The final's segment: its number in the channel (`Event::Final::segment`, unique; two
    /// finals may share a start, the policy clamping times to go forward).
    pub segment: u64,
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// A chunk of a channel's speech to decode again.
#[derive(Debug, Clone)]
pub struct RevisionJob {
    /// Media time of the first sample.
    pub from: f64,
    pub audio: Vec<f32>,
    /// The finals inside, in order.
    pub finals: Vec<Piece>,
    /// The language they were heard in.
    pub language: String,
    /// The text before the chunk, for Whisper's prompt.
    pub prompt: String,
    pub hints: Vec<String>,
}

impl RevisionJob {
    pub fn secs(&self) -> f64 {
        self.audio.len() as f64 / SAMPLE_RATE_F
    }
}

/// The finals of a chunk with their revised text: one piece per final, the same times.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Revision {
    pub from: f64,
    pub to: f64,
    /// The language decoded in (the finals').
    pub language: String,
    pub pieces: Vec<Piece>,
}

/// Why a revision was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the revision has no words where the stream has some")]
    Empty,
    #[error("the revision has far fewer words than the stream")]
    Fewer,
    #[error("the revision has far more words than the stream")]
    More,
    #[error("the revision loops")]
    Loop,
}

/// Beam width of a revision (`tolk transcribe`'s).
const BEAM: usize = 5;

/// A chunk's revision must keep this share of the stream's words (a long-window decode that
/// skips a stretch of speech, as Whisper sometimes does, is refused)…
const MIN_WORDS_KEPT: f64 = 0.85;
/// Where a revision that passes leaves out this many words running that the stream wrote,
/// the stream's words go back in ([`fill_skipped`]). (Three, replayed on one English run,
/// put back only "I don't know", the stream's mishearing of a phrase the revision left
/// out: three insertions, 1.04 → 1.08 × offline; a dropped segment is a phrase.)
const SKIPPED_PHRASE: usize = 4;
/// At a chunk's start or end (before the revision's first word that matches the stream's,
/// or after its last), this many: a long decode often leaves out the last words before its
/// cut ("…for your country." and not "One. From", the sonnet's first words, said at the
/// cut; recorded), and the next chunk's revision cannot have them, its finals not holding
/// them. Were its audio to hold them after all, that revision's first words repeat its
/// prompt, the finals' text, and are dropped as an echo ([`without_echo`]): not said twice.
/// (Replayed on the finals of two three-channel runs, six channels: deletions 80 → 70,
/// insertions 101 → 106 with one word against four; four records of six read better, one
/// the same, one worse by one error. benches/README.md "The record's edges".)
const SKIPPED_AT_EDGE: usize = 1;
/// Words of the record before a chunk, beyond the phrase's own length, in which a phrase
/// left out at the chunk's start is looked for ([`fill_skipped`]).
const SEAM_SLACK: usize = 4;
/// …and add no more than this share plus [`MAX_WORDS_EXTRA`] (text in silence).
const MAX_WORDS_GROWTH: f64 = 1.6;
const MAX_WORDS_EXTRA: usize = 8;
/// Whisper's own threshold for repetitive text (`compression_ratio_threshold`).
const MAX_COMPRESSION: f32 = 2.4;

/// Whether a tag Whisper writes for what is not speech ("[BLANK_AUDIO]", "(laughs)").
fn tag(word: &str) -> bool {
    let w = word.trim();
    (w.starts_with('[') && w.ends_with(']')) || (w.starts_with('(') && w.ends_with(')'))
}

/// Whether `words` (a revision's, tags taken out) may replace `finals`.
/// (An improbable decode, Whisper's mean log-probability under -1, is decoded again at a
/// higher temperature by whisper.cpp itself, as `tolk transcribe`'s are.)
pub fn check(words: &[Word], finals: &[Piece]) -> Result<(), Refused> {
    let stream = finals
        .iter()
        .map(|f| f.text.split_whitespace().count())
        .sum::<usize>();
    if words.is_empty() {
        return if stream == 0 {
            Ok(())
        } else {
            Err(Refused::Empty)
        };
    }
    if (words.len() as f64) < MIN_WORDS_KEPT * stream as f64 {
        return Err(Refused::Fewer);
    }
    if words.len() as f64 > MAX_WORDS_GROWTH * stream as f64 + MAX_WORDS_EXTRA as f64 {
        return Err(Refused::More);
    }
    let text: String = words.iter().map(|w| w.text.as_str()).collect();
    if repeats_itself(words)
        || says_again(words, finals)
        || words.iter().any(|w| syllable_loop(&w.text))
        || compression_ratio(&text) > MAX_COMPRESSION
    {
        return Err(Refused::Loop);
    }
    Ok(())
}

/// A revision's words with the phrases it leaves out put back: where [`SKIPPED_PHRASE`] or
/// more words the stream wrote running ([`SKIPPED_AT_EDGE`] at the chunk's start or end)
/// have no word of the revision (by a minimum-edit
/// alignment of the texts, not by times), the stream's words go in at that place, timed as
/// their final. A long decode drops a segment now and then (Whisper, after a pause:
/// recorded in the three-channel meeting test, "And here's a long…" read live and gone from
/// the record, the chunk as a whole keeping 90 % of the stream's words); the record must
/// not lose what listeners read. At a chunk's start, words the revision leaves out are put
/// back only if none of them is among the last of `before` (the record's last words as
/// the chunk before left it, [`record_tail`]; empty for a channel's first chunk): the
/// stream times words after the cut between chunks that were said before it, and the
/// chunk before's revision has them. (Replayed on one English run, of seven phrases of
/// three words or more left out, six were at a chunk's start; five of those were in the
/// chunk before's revision, one in neither: "You know, Montreal forced a liner".) Returns
/// the words and how many went back in.
fn fill_skipped(words: Vec<Word>, finals: &[Piece], before: &[String]) -> (Vec<Word>, usize) {
    use crate::eval::{align, Step};
    let mut stream: Vec<Word> = Vec::new();
    for f in finals {
        let parts: Vec<&str> = f.text.split_whitespace().collect();
        let d = (f.end - f.start).max(0.0) / parts.len().max(1) as f64;
        stream.extend(parts.iter().enumerate().map(|(i, t)| Word {
            text: format!(" {t}"),
            start: f.start + i as f64 * d,
            end: f.start + (i + 1) as f64 * d,
            prob: 1.0,
        }));
    }
    stream.retain(|w| !token(&w.text).is_empty());
    let (ours, theirs): (Vec<String>, Vec<String>) = (
        stream.iter().map(|w| token(&w.text)).collect(),
        words.iter().map(|w| token(&w.text)).collect(),
    );
    // Runs of left-out stream words: (where in the revision, which stream words).
    let mut runs: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    let (mut h, mut matched, mut open): (usize, bool, Option<(usize, usize, usize)>) =
        (0, false, None);
    let mut close = |open: &mut Option<(usize, usize, usize)>, matched: bool, last: bool| {
        if let Some((at, a, b)) = open.take() {
            // Said before the cut: the chunk before ends with some of these words.
            let theirs = &before[before.len().saturating_sub(b - a + SEAM_SLACK)..];
            let seam = !matched && ours[a..b].iter().any(|w| theirs.contains(w));
            let least = if !matched || last {
                SKIPPED_AT_EDGE
            } else {
                SKIPPED_PHRASE
            };
            if b - a >= least && !seam {
                runs.push((at, a..b));
            }
        }
    };
    for step in align(&ours, &theirs) {
        match step {
            Step::Delete { r } => match &mut open {
                Some((_, _, b)) => *b = r + 1,
                None => open = Some((h, r, r + 1)),
            },
            // A word the revision adds does not end a run it leaves out.
            Step::Insert { .. } => h += 1,
            Step::Match { .. } | Step::Substitute { .. } => {
                close(&mut open, matched, false);
                matched = true;
                h += 1;
            }
        }
    }
    close(&mut open, matched, true);
    let filled = runs.iter().map(|(_, r)| r.len()).sum();
    let mut out = Vec::with_capacity(words.len() + filled);
    let mut runs = runs.into_iter().peekable();
    for (i, w) in words.into_iter().enumerate() {
        while let Some((_, r)) = runs.next_if(|(at, _)| *at <= i) {
            out.extend(stream[r].iter().cloned());
        }
        out.push(w);
    }
    for (_, r) in runs {
        out.extend(stream[r].iter().cloned());
    }
    (out, filled)
}

/// Whether Whisper looped: one word eight times running, or a phrase of up to eight words
/// three times back to back. (Not the live path's `loop_start`, which judges repeats by the
/// audio under each word: a revision's word times are spread over its segments, and a
/// speaker who says "Montreal Forced Aligner" again and again, or an IVR menu's "now and
/// forevermore", is speech.)
fn repeats_itself(words: &[Word]) -> bool {
    let w: Vec<String> = words.iter().map(|w| normalise(&w.text)).collect();
    (0..w.len()).any(|i| {
        w[i..].iter().take_while(|x| **x == w[i]).count() >= 8
            || (2..=8).any(|n| {
                // A phrase, not one word said again ("word, word, word, word, word, word":
                // the speaker's, judged above).
                i + 3 * n <= w.len()
                    && w[i..i + n].iter().any(|x| *x != w[i])
                    && w[i..i + n] == w[i + n..i + 2 * n]
                    && w[i..i + n] == w[i + 2 * n..i + 3 * n]
            })
    })
}

/// Whether the revision says a phrase of [`PHRASE`] words (three of them different) at
/// least twice more often than the stream did: Whisper looping over a sentence it had heard ("Dial 3, to send this
/// color to voicemail now and forevermore. Dial 3, to send this color to voicemail now and
/// forevermore. Dial 3, to send this…", recorded at real time), too long for
/// [`repeats_itself`].
fn says_again(words: &[Word], finals: &[Piece]) -> bool {
    use std::collections::HashMap;
    fn phrases(words: &[String]) -> HashMap<&[String], usize> {
        let mut n = HashMap::new();
        for p in words.windows(PHRASE) {
            // A phrase, not one or two words said again ("word, word, word…"): the
            // speaker's, judged by `repeats_itself`.
            if p.iter().collect::<std::collections::HashSet<_>>().len() >= 3 {
                *n.entry(p).or_insert(0) += 1;
            }
        }
        n
    }
    let revised: Vec<String> = words.iter().map(|w| normalise(&w.text)).collect();
    let stream: Vec<String> = finals
        .iter()
        .flat_map(|f| f.text.split_whitespace())
        .map(normalise)
        .collect();
    let before = phrases(&stream);
    phrases(&revised)
        .into_iter()
        .any(|(p, n)| n >= before.get(p).copied().unwrap_or(0) + 2)
}

/// See [`says_again`].
const PHRASE: usize = 5;

/// Each final of a chunk with the revised words heard in its time: a word goes to the
/// final whose time holds its middle, or, between two finals, to the nearer (the boundary
/// is half way through the gap). Words stay in order; every word goes to one final.
pub fn split(words: &[Word], finals: &[Piece]) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = finals
        .iter()
        .map(|f| Piece {
            segment: f.segment,
            start: f.start,
            end: f.end,
            text: String::new(),
        })
        .collect();
    if pieces.is_empty() {
        return pieces;
    }
    let mut at = 0;
    for w in words {
        let mid = (w.start + w.end) / 2.0;
        while at + 1 < finals.len() && mid >= (finals[at].end + finals[at + 1].start) / 2.0 {
            at += 1;
        }
        let t = &mut pieces[at].text;
        if !t.is_empty() {
            t.push(' ');
        }
        t.push_str(w.text.trim());
    }
    pieces
}

/// The chunk being gathered.
#[derive(Debug)]
struct Open {
    from: f64,
    finals: Vec<Piece>,
    language: String,
}

/// One channel's audio and finals, gathered into chunks to revise (pure: told the audio
/// and the finals, in the channel's media time).
#[derive(Debug)]
pub struct Chunker {
    audio: VecDeque<f32>,
    /// Media time of `audio[0]`.
    kept_from: f64,
    open: Option<Open>,
    /// Where the last chunk's audio ended: the next starts no earlier.
    last_to: f64,
    /// The text so far (the prompt of the next chunk), at most [`PROMPT_CHARS`].
    recent: String,
    hints: Vec<String>,
    finished: bool,
}

/// Characters of the text before a chunk given as its prompt.
const PROMPT_CHARS: usize = 200;

impl Chunker {
    /// A chunker whose audio starts at media time `at`; `hints`: the channel's prompt terms.
    pub fn new(at: f64, hints: Vec<String>) -> Chunker {
        Chunker {
            audio: VecDeque::new(),
            kept_from: at,
            open: None,
            last_to: at,
            recent: String::new(),
            hints,
            finished: false,
        }
    }

    /// New prompt terms, for the chunks that close from now on.
    pub fn set_hints(&mut self, hints: Vec<String>) {
        self.hints = hints;
    }

    /// Media time of the end of the audio given.
    pub fn media_now(&self) -> f64 {
        self.kept_from + self.audio.len() as f64 / SAMPLE_RATE_F
    }

    /// Nothing gathered that is not yet handed out.
    pub fn idle(&self) -> bool {
        self.open.is_none()
    }

    /// The channel's next audio; a chunk that is due closes.
    pub fn push_audio(&mut self, samples: &[f32]) -> Option<RevisionJob> {
        self.audio.extend(samples);
        let job = self.close_if_due();
        self.trim();
        job
    }

    /// A final the stream committed (media seconds, in order); the chunk before it closes if
    /// it would grow past [`CHUNK_SECS`].
    pub fn on_final(
        &mut self,
        segment: u64,
        start: f64,
        end: f64,
        text: &str,
        language: &str,
    ) -> Option<RevisionJob> {
        let piece = Piece {
            segment,
            start,
            end,
            text: text.trim().to_string(),
        };
        let mut job = None;
        if let Some(o) = self
            .open
            .as_mut()
            .filter(|o| end + TAIL - o.from > CHUNK_SECS)
        {
            // Cut after the final, in the chunk's second half, followed by the quietest
            // audio (a cut inside speech gives its words to both chunks or to neither); the
            // finals after the cut open the next chunk.
            let mid = o.from + CHUNK_SECS / 2.0;
            let candidates: Vec<usize> = (0..o.finals.len())
                .filter(|&i| o.finals[i].end >= mid)
                .collect();
            let finals = &o.finals;
            let quiet = |i: usize| {
                let next = finals.get(i + 1).map_or(start, |n| n.start);
                quietest(&self.audio, self.kept_from, finals[i].end - 0.3, next + 0.3).1
            };
            let cut = candidates
                .iter()
                .copied()
                .min_by(|&a, &b| quiet(a).total_cmp(&quiet(b)))
                .unwrap_or(finals.len() - 1);
            let o = self.open.as_mut().expect("open");
            let carried = o.finals.split_off(cut + 1);
            let next = carried.first().map_or(start, |f| f.start);
            job = self.close(Some(next));
            for f in carried {
                self.add(f, language);
            }
        }
        self.add(piece, language);
        job.or_else(|| self.close_if_due())
    }

    /// Adds a final to the open chunk, opening one if none is.
    fn add(&mut self, f: Piece, language: &str) {
        let from = self
            .last_to
            .max(f.start - LEAD)
            .max(self.kept_from)
            .min(f.start);
        let open = self.open.get_or_insert_with(|| Open {
            from,
            finals: Vec::new(),
            language: String::new(),
        });
        open.finals.push(f);
        language.clone_into(&mut open.language);
    }

    /// The middle of the quietest 100 ms of the audio between `a` and `b`.
    fn quietest(&self, a: f64, b: f64) -> f64 {
        quietest(&self.audio, self.kept_from, a, b).0
    }

    /// The stream ended: what is open is handed out.
    pub fn finish(&mut self) -> Option<RevisionJob> {
        self.finished = true;
        self.close(None)
    }

    fn close_if_due(&mut self) -> Option<RevisionJob> {
        let o = self.open.as_ref()?;
        let now = self.media_now();
        let last_end = o.finals.last().map_or(o.from, |f| f.end);
        let quiet = now - last_end;
        let due = self.finished
            || now - o.from >= MAX_OPEN_SECS
            || (quiet >= CLOSE_AFTER && last_end - o.from >= MIN_CHUNK_SECS)
            || quiet >= QUIET_CLOSE;
        if due {
            self.close(None)
        } else {
            None
        }
    }

    /// Hands out the open chunk; `next`: where the next final starts (its audio is not this
    /// chunk's).
    fn close(&mut self, next: Option<f64>) -> Option<RevisionJob> {
        let o = self.open.take()?;
        let last_end = o.finals.last().map_or(o.from, |f| f.end);
        // The cut: at the quietest point between the last final and the next (or TAIL after
        // it), a little either side: the finals' times are Whisper's, not exact.
        let until = next.map_or(last_end + TAIL, |n| n.max(last_end));
        let until = until.min(self.media_now());
        let to = if next.is_some() || self.media_now() < last_end + TAIL {
            self.quietest(last_end - 0.25, until + 0.25)
        } else {
            self.quietest(last_end, until)
        };
        // Whisper decodes 30 s at most.
        let to = to.min(o.from + CHUNK_SECS + 1.5).max(o.from);
        let ix = |t: f64| {
            (((t - self.kept_from) * SAMPLE_RATE_F).round().max(0.0) as usize).min(self.audio.len())
        };
        let (a, b) = (ix(o.from), ix(to));
        let audio: Vec<f32> = self.audio.range(a..b).copied().collect();
        self.last_to = to;
        let prompt = self.recent.clone();
        for f in &o.finals {
            if !self.recent.is_empty() {
                self.recent.push(' ');
            }
            self.recent.push_str(&f.text);
        }
        if let Some((i, _)) = self.recent.char_indices().rev().nth(PROMPT_CHARS) {
            self.recent = self.recent[i..].trim_start().to_string();
        }
        Some(RevisionJob {
            from: o.from,
            audio,
            finals: o.finals,
            language: o.language,
            prompt,
            hints: self.hints.clone(),
        })
    }

    /// Drops audio no chunk can need: before the open chunk, or older than [`KEEP_SECS`]
    /// (and never what a closed chunk had).
    fn trim(&mut self) {
        let keep = match &self.open {
            Some(o) => o.from,
            None => self.last_to.max(self.media_now() - KEEP_SECS),
        };
        let drop = (((keep - self.kept_from) * SAMPLE_RATE_F).floor().max(0.0) as usize)
            .min(self.audio.len());
        if drop > 0 {
            self.audio.drain(..drop);
            self.kept_from += drop as f64 / SAMPLE_RATE_F;
        }
    }
}

/// The quietest 100 ms of `audio` (starting at media time `at`) between `a` and `b`: its
/// middle, and its energy (infinite where there is no such audio).
fn quietest(audio: &VecDeque<f32>, at: f64, a: f64, b: f64) -> (f64, f32) {
    const FRAME: usize = 1_600;
    const HOP: usize = 320;
    let ix = |t: f64| (((t - at) * SAMPLE_RATE_F).max(0.0) as usize).min(audio.len());
    let (lo, hi) = (ix(a), ix(b));
    if hi < lo + FRAME {
        return ((a + b) / 2.0, f32::INFINITY);
    }
    let mut best = (f32::INFINITY, lo);
    let mut i = lo;
    while i + FRAME <= hi {
        let e: f32 = audio.range(i..i + FRAME).map(|x| x * x).sum();
        if e < best.0 {
            best = (e, i);
        }
        i += HOP;
    }
    (at + (best.1 + FRAME / 2) as f64 / SAMPLE_RATE_F, best.0)
}

/// `words` without the first ones that repeat the end of `before` (the text before the
/// chunk, its prompt), when they begin in the chunk's first [`ECHO_SECS`] (from `from`):
/// Whisper, prompted with text that stops mid-phrase, often writes the phrase's end again
/// ("…contracted to" | "contracted to thine own bright eyes"), and a cut close to a word can
/// give it to both chunks. The live path drops such echoes the same way
/// (`policy::overlaps`).
pub fn without_echo(mut words: Vec<Word>, before: &str, from: f64) -> Vec<Word> {
    let recent: Vec<String> = before
        .split_whitespace()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(normalise)
        .collect();
    // The echo starts at the seam; it may run on past ECHO_SECS (a slow speaker, a long
    // segment's words spread over it).
    let at_seam = words.first().is_some_and(|w| w.start < from + ECHO_SECS);
    let early: Vec<String> = words
        .iter()
        .take(if at_seam { recent.len() } else { 0 })
        .map(|w| normalise(&w.text))
        .collect();
    if let Some(&k) = overlaps(&recent, &early).first() {
        words.drain(..k);
    }
    words
}

/// See [`without_echo`].
const ECHO_SECS: f64 = 2.0;

/// What became of a chunk.
#[derive(Debug)]
pub enum Outcome {
    Revised(Revision),
    Refused(Refused),
    /// whisper.cpp failed or panicked (the reviser goes on with the next chunk).
    Failed(String),
    /// The queue was full: given up undecoded.
    GivenUp,
}

/// The reviser thread's queue.
struct Queue {
    jobs: VecDeque<(u32, RevisionJob)>,
    /// Channels of chunks given up, until [`Reviser::try_recv`] reports them.
    given_up: Vec<u32>,
    stop: bool,
}

/// The thread that decodes chunks again (see the module doc). Dropping it stops the thread
/// after the decode in progress.
pub struct Reviser {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    results: Receiver<(u32, Outcome)>,
    thread: Option<JoinHandle<()>>,
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reviser {
    /// Starts the thread: `threads` Whisper threads, at the lowest priority.
    pub fn start(model: Arc<Model>, threads: usize) -> std::io::Result<Reviser> {
        let queue = Arc::new((
            Mutex::new(Queue {
                jobs: VecDeque::new(),
                given_up: Vec::new(),
                stop: false,
            }),
            Condvar::new(),
        ));
        // As many results as chunks can be out: the decoder thread takes them every turn.
        let (tx, results) = mpsc::sync_channel(REVISE_QUEUE);
        let q = queue.clone();
        let thread = std::thread::Builder::new()
            .name("tolk-reviser".into())
            .spawn(move || {
                only_when_idle();
                reviser_thread(&model, threads, &q, &tx);
            })?;
        Ok(Reviser {
            queue,
            results,
            thread: Some(thread),
        })
    }

    /// Queues channel `channel`'s chunk; when the queue is full the oldest waiting chunk is
    /// given up ([`Outcome::GivenUp`] for its channel).
    pub fn submit(&self, channel: u32, job: RevisionJob) {
        let (m, cv) = &*self.queue;
        let mut q = lock(m);
        if q.jobs.len() >= REVISE_QUEUE {
            if let Some((c, _)) = q.jobs.pop_front() {
                q.given_up.push(c);
            }
        }
        q.jobs.push_back((channel, job));
        drop(q);
        cv.notify_one();
    }

    /// A chunk's outcome, if one is ready.
    pub fn try_recv(&self) -> Option<(u32, Outcome)> {
        if let Some(c) = lock(&self.queue.0).given_up.pop() {
            return Some((c, Outcome::GivenUp));
        }
        self.results.try_recv().ok()
    }
}

impl Drop for Reviser {
    fn drop(&mut self) {
        let (m, cv) = &*self.queue;
        lock(m).stop = true;
        cv.notify_one();
        // Unblock a thread waiting to hand over a result.
        while self.results.try_recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            while !t.is_finished() {
                while self.results.try_recv().is_ok() {}
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let _ = t.join();
        }
    }
}

/// Puts the calling thread (and the Whisper workers it starts, which inherit it) in Linux's
/// `SCHED_IDLE` class: it runs only when no other thread wants the core. Best effort.
fn only_when_idle() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler reads `param` and touches no other memory of ours;
        // pid 0 is the calling thread.
        #[allow(unsafe_code)]
        let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if r != 0 {
            tracing::debug!(
                "cannot make the reviser idle-only: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

fn reviser_thread(
    model: &Model,
    threads: usize,
    queue: &(Mutex<Queue>, Condvar),
    tx: &SyncSender<(u32, Outcome)>,
) {
    let (m, cv) = queue;
    // Each channel's record's last words, for its next chunk's start.
    let mut tails: std::collections::HashMap<u32, Vec<String>> = Default::default();
    loop {
        let mut q = lock(m);
        let (channel, job) = loop {
            if q.stop {
                return;
            }
            if let Some(j) = q.jobs.pop_front() {
                break j;
            }
            q = cv.wait(q).unwrap_or_else(|e| e.into_inner());
        };
        drop(q);
        let before = tails.entry(channel).or_default();
        let outcome = catch_unwind(AssertUnwindSafe(|| revise(model, threads, job, before)))
            .unwrap_or_else(|_| Outcome::Failed("panic in the reviser".into()));
        if tx.send((channel, outcome)).is_err() {
            return;
        }
    }
}

/// Words with times from a transcript's segments (seconds from `from`): each segment's
/// words spread evenly over it. Whisper's segment times are good to a few tenths of a
/// second, enough to tell which final a word belongs to; the segments themselves are a long
/// decode's (timestamps on, as `tolk transcribe` decodes — the mode the 1.03 × was measured
/// in; one segment without timestamps skipped whole sentences of 28-s chunks).
pub fn spread(segments: &[Segment], from: f64) -> Vec<Word> {
    let mut words = Vec::new();
    for s in segments {
        let parts: Vec<&str> = s.text.split_whitespace().filter(|w| !tag(w)).collect();
        let d = (s.end - s.start).max(0.0) / parts.len().max(1) as f64;
        for (i, w) in parts.iter().enumerate() {
            words.push(Word {
                text: format!(" {w}"),
                start: from + s.start + i as f64 * d,
                end: from + s.start + (i + 1) as f64 * d,
                prob: 1.0,
            });
        }
    }
    words
}

/// Decodes one chunk as `tolk transcribe` decodes (beam 5, timestamps, temperature
/// fallback), in the channel's language, prompted with the text before it. A chunk
/// refused (Whisper skipped much of it, or looped) is decoded again in halves ([`part`]):
/// what still reads worse than the stream stays as the stream sent it. (Decoding again
/// alone each run of finals a passed decode wrote far fewer words for read worse on the
/// same finals — 12.2 % against 10.9 % without, some words said twice; `benches/README.md`
/// — and was not kept.)
pub fn revise(
    model: &Model,
    threads: usize,
    job: RevisionJob,
    before: &mut Vec<String>,
) -> Outcome {
    let (from, to) = (job.from, job.from + job.secs());
    let revised = |pieces: Vec<Piece>| {
        Outcome::Revised(Revision {
            from,
            to,
            language: job.language.clone(),
            pieces,
        })
    };
    let words = match words_of(model, threads, &job) {
        Ok(w) => w,
        Err(failed) => {
            *before = record_tail(&job.finals, &[]);
            return failed;
        }
    };
    // The stream's words where a passed revision left out a phrase of them.
    let whole = |words: Vec<Word>, job: &RevisionJob, before: &[String]| {
        let (words, filled) = fill_skipped(words, &job.finals, before);
        if filled > 0 {
            tracing::debug!(
                filled,
                secs = job.secs(),
                "stream words kept where the revision had none"
            );
        }
        split(&words, &job.finals)
    };
    let outcome = match checked(&words, &job) {
        Ok(()) => revised(whole(words, &job, before)),
        // Whisper skipped much or looped: shorter windows often decode well.
        Err(why) if job.finals.len() >= 2 => {
            let mut pieces = Vec::new();
            let mut tail = before.clone();
            for half in halves(&job) {
                let mut got = Vec::new();
                if let Ok(w) = words_of(model, threads, &half) {
                    if checked(&w, &half).is_ok() {
                        got = whole(w, &half, &tail);
                    }
                }
                tail = record_tail(&half.finals, &got);
                pieces.extend(got);
            }
            if pieces.is_empty() {
                Outcome::Refused(why)
            } else {
                revised(pieces)
            }
        }
        Err(why) => Outcome::Refused(why),
    };
    *before = match &outcome {
        Outcome::Revised(r) => record_tail(&job.finals, &r.pieces),
        _ => record_tail(&job.finals, &[]),
    };
    outcome
}

/// Words of a channel's record kept for the next chunk's start ([`fill_skipped`]).
const TAIL_WORDS: usize = 16;

/// The last [`TAIL_WORDS`] words of the record over `finals` once `pieces` (their revised
/// text, by segment; none for a chunk left as sent) replace them.
fn record_tail(finals: &[Piece], pieces: &[Piece]) -> Vec<String> {
    let mut words: Vec<String> = finals
        .iter()
        .flat_map(|f| {
            let text = pieces
                .iter()
                .find(|p| p.segment == f.segment)
                .map_or(f.text.as_str(), |p| p.text.as_str());
            text.split_whitespace().map(token).collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty())
        .collect();
    let cut = words.len().saturating_sub(TAIL_WORDS);
    words.drain(..cut);
    words
}

/// A word as compared across texts: letters and digits, lower case ("don't" one word,
/// "5-0-0" the same as "500"; `policy::normalise`, which splits at every other character,
/// would make two words and three of them, and the alignment would count them so).
fn token(w: &str) -> String {
    w.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// [`check`], and a debug line with the counts (never the words) when it refuses.
fn checked(words: &[Word], job: &RevisionJob) -> Result<(), Refused> {
    check(words, &job.finals).inspect_err(|why| {
        tracing::debug!(
            %why,
            secs = job.secs(),
            words = words.len(),
            finals = job.finals.len(),
            stream_words = job.finals.iter().map(|f| words_in(&f.text)).sum::<usize>(),
            "revision not used"
        );
    })
}

fn words_in(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The finals `run` of a chunk as a chunk of their own: their audio runs from half way
/// through the gap before them to half way through the gap after (the chunk's ends at its
/// ends); prompted with the text before them.
fn part(job: &RevisionJob, run: std::ops::Range<usize>) -> RevisionJob {
    let f = &job.finals;
    let gap = |i: usize| (f[i - 1].end + f[i].start) / 2.0;
    let ix =
        |t: f64| (((t - job.from) * SAMPLE_RATE_F).round().max(0.0) as usize).min(job.audio.len());
    let a = if run.start == 0 {
        0
    } else {
        ix(gap(run.start))
    };
    let b = if run.end >= f.len() {
        job.audio.len()
    } else {
        ix(gap(run.end))
    };
    let mut prompt = job.prompt.clone();
    for p in &f[..run.start] {
        prompt.push(' ');
        prompt.push_str(&p.text);
    }
    RevisionJob {
        from: job.from + a as f64 / SAMPLE_RATE_F,
        audio: job.audio[a..b].to_vec(),
        finals: f[run].to_vec(),
        language: job.language.clone(),
        prompt: prompt.trim().to_string(),
        hints: job.hints.clone(),
    }
}

/// A chunk cut in two between the finals nearest its middle (in the gap between them).
fn halves(job: &RevisionJob) -> [RevisionJob; 2] {
    let middle = job.from + job.secs() / 2.0;
    let f = &job.finals;
    let i = (1..f.len())
        .min_by(|&a, &b| {
            let gap = |i: usize| (f[i - 1].end + f[i].start) / 2.0;
            (gap(a) - middle).abs().total_cmp(&(gap(b) - middle).abs())
        })
        .unwrap_or(1);
    [part(job, 0..i), part(job, i..f.len())]
}

/// One decode of a chunk: its words (tags out, an echo of the text before dropped);
/// `Err`: whisper.cpp failed, or the chunk has no language.
fn words_of(model: &Model, threads: usize, job: &RevisionJob) -> Result<Vec<Word>, Outcome> {
    if job.language.is_empty() {
        return Err(Outcome::Refused(Refused::Empty));
    }
    let prompt = fit_prompt(model, &job.hints, &job.prompt);
    let transcript = model
        .transcribe(
            &job.audio,
            &Options {
                language: Language::Code(job.language.clone()),
                beam_size: BEAM,
                threads,
                translate: false,
                prompt: (!prompt.is_empty()).then_some(prompt),
            },
        )
        .map_err(|e| Outcome::Failed(e.to_string()))?;
    Ok(without_echo(
        spread(&transcript.segments, job.from),
        &job.prompt,
        job.from,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str, start: f64, end: f64) -> Word {
        Word {
            text: format!(" {text}"),
            start,
            end,
            prob: 0.9,
        }
    }

    /// `text`'s words, one every `every` seconds from `at`, each `len` long.
    fn spoken(text: &str, at: f64, every: f64, len: f64) -> Vec<Word> {
        text.split(' ')
            .enumerate()
            .map(|(i, t)| w(t, at + i as f64 * every, at + i as f64 * every + len))
            .collect()
    }

    fn f(start: f64, end: f64, text: &str) -> Piece {
        Piece {
            segment: (start * 10.0) as u64,
            start,
            end,
            text: text.into(),
        }
    }

    fn secs(s: f64) -> Vec<f32> {
        vec![0.0; (s * SAMPLE_RATE_F) as usize]
    }

    /// The recorded case the design is for (benches/README.md, issue 13): the stream lost
    /// "probably sound quite different" between two finals; the revision has it, and it goes
    /// to the final it was said nearest to. Every word lands once, in order.
    #[test]
    fn words_the_stream_lost_go_to_the_nearest_final() {
        let finals = [f(10.0, 12.0, "it'll"), f(14.5, 16.0, "than the recording")];
        let words = [
            w("it'll", 10.1, 10.5),
            w("probably", 10.6, 11.2),
            w("sound", 11.3, 11.8),
            w("quite", 12.2, 12.6),
            w("different", 13.4, 14.0),
            w("than", 14.6, 14.8),
            w("the", 14.8, 15.0),
            w("recording", 15.0, 15.8),
        ];
        let pieces = split(&words, &finals);
        assert_eq!(pieces[0].text, "it'll probably sound quite");
        assert_eq!(pieces[1].text, "different than the recording");
        assert_eq!((pieces[1].start, pieces[1].end), (14.5, 16.0));
    }

    /// The recorded seams (benches/README.md, "The record revised"): the end of the text
    /// before, written again at the chunk's start, goes; the same words later on stay.
    #[test]
    fn an_echo_of_the_text_before_is_dropped_at_the_seam() {
        let words = |t: &str, at: f64| -> Vec<Word> { spoken(t, at, 0.3, 0.25) };
        let text = |ws: &[Word]| {
            ws.iter()
                .map(|w| w.text.trim())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let got = without_echo(
            words("contracted to thine own bright eyes", 30.0),
            "But thou contracted to",
            30.0,
        );
        assert_eq!(text(&got), "thine own bright eyes");
        let got = without_echo(
            words("the world's due by the grave", 60.0),
            "to eat the",
            60.0,
        );
        assert_eq!(text(&got), "world's due by the grave");
        // Not at the seam: kept.
        let got = without_echo(words("so the world's", 63.0), "to eat the", 60.0);
        assert_eq!(text(&got), "so the world's");
        let got = without_echo(words("and more", 60.0), "here are some words", 60.0);
        assert_eq!(text(&got), "and more");
        // A long echo, its words spread over a slow segment (recorded at real time: "…no
        // voice speech whatsoever here. | be no voice speech whatsoever here. Montreal").
        let slow: Vec<Word> = spoken(
            "be no voice speech whatsoever here. Montreal forced a liner.",
            90.0,
            0.6,
            0.5,
        );
        let got = without_echo(
            slow,
            "There's going to be no voice speech whatsoever here.",
            90.0,
        );
        assert_eq!(text(&got), "Montreal forced a liner.");
    }

    /// Words spread over their segment, tags left out, times from the chunk's start.
    #[test]
    fn a_segments_words_are_spread_over_it() {
        let seg = |start: f64, end: f64, text: &str| Segment {
            start,
            end,
            text: text.into(),
            no_speech_prob: 0.0,
        };
        let words = spread(
            &[
                seg(0.0, 2.0, "ask not [BLANK_AUDIO]"),
                seg(3.0, 4.5, "what your country"),
            ],
            10.0,
        );
        let got: Vec<(&str, f64, f64)> = words
            .iter()
            .map(|w| (w.text.trim(), w.start, w.end))
            .collect();
        assert_eq!(
            got,
            [
                ("ask", 10.0, 11.0),
                ("not", 11.0, 12.0),
                ("what", 13.0, 13.5),
                ("your", 13.5, 14.0),
                ("country", 14.0, 14.5)
            ]
        );
    }

    #[test]
    fn a_revision_that_skips_speech_or_loops_is_refused() {
        let finals = [f(
            0.0,
            5.0,
            "one two three four five six seven eight nine ten",
        )];
        let few: Vec<Word> = (0..5)
            .map(|i| w("word", i as f64, i as f64 + 0.5))
            .collect();
        assert_eq!(check(&few, &finals), Err(Refused::Fewer));
        assert_eq!(check(&[], &finals), Err(Refused::Empty));
        let many: Vec<Word> = (0..40)
            .map(|i| w(&format!("w{i}"), i as f64 * 0.1, i as f64 * 0.1 + 0.1))
            .collect();
        assert_eq!(check(&many, &finals), Err(Refused::More));
        let looping: Vec<Word> = (0..10)
            .map(|i| w("for you", i as f64 * 0.05, i as f64 * 0.05 + 0.02))
            .collect();
        assert_eq!(check(&looping, &finals), Err(Refused::Loop));
        // A phrase said again by the speaker (an IVR menu's "now and forevermore"), twice:
        // speech.
        let menu: Vec<Word> = spoken(
            "now and forevermore dial four now and forevermore dial five",
            0.0,
            0.1,
            0.1,
        );
        assert_eq!(check(&menu, &finals), Ok(()));
        let said: Vec<Word> = spoken(
            "word another word here's some more word word word word word word",
            0.0,
            0.1,
            0.1,
        );
        assert_eq!(check(&said, &finals), Ok(()));
        let fine: Vec<Word> = spoken(
            "one two three four five six seven eight nine ten",
            0.0,
            0.5,
            0.4,
        );
        assert_eq!(check(&fine, &finals), Ok(()));
        let most = &fine[..8];
        assert_eq!(check(most, &finals), Err(Refused::Fewer));
        // A sentence said once, written three times (recorded at real time).
        let menu = [f(
            0.0,
            9.0,
            "Dial 2, if you wish to send this color to voicemail now and forevermore. Dial 3, to send this color to the torture menus",
        )];
        let looped: Vec<Word> = spoken("Dial 2, if you wish to send this color to voicemail now and forevermore. Dial 3, to send this color to voicemail now and forevermore. Dial 3, to send this color to voicemail now and forevermore. Dial 3, to send this", 0.0, 0.2, 0.2);
        assert_eq!(check(&looped, &menu), Err(Refused::Loop));
        // The same sentence twice in the stream and in the revision is the speaker's.
        let twice = [f(
            0.0,
            9.0,
            "now and forevermore dial four now and forevermore dial five to allow",
        )];
        let said_twice: Vec<Word> = spoken(
            "now and forevermore dial four now and forevermore dial five to allow",
            0.0,
            0.2,
            0.2,
        );
        assert_eq!(check(&said_twice, &twice), Ok(()));
    }

    /// Recorded (the three-channel meeting test, its booth with a cold, 2026-12-07): the
    /// chunk's decode dropped its last segment, after a pause; it kept 44 of the stream's
    /// 49 words, over the share asked, and the last final went out empty. (The finals'
    /// texts as revised; the last one's as the run's transcript shows it live.) The
    /// stream's words go back where the revision has none of four or more running; two
    /// (a "you know" that a better reading leaves out) do not.
    #[test]
    fn a_phrase_the_revision_leaves_out_keeps_the_streams_words() {
        let finals = [
            f(28.56, 36.46, "So this is the sick corpus. I have a cold so I probably sound quite different than the acoustic corpus."),
            f(35.07, 43.88, "The reporting environment is also quite different and I'm saying a bunch of different words that I did not say in the original one."),
            f(43.88, 47.74, "And here's a long, and"),
        ];
        let words = |t: &str| -> Vec<Word> { spoken(t, 28.6, 0.35, 0.3) };
        let said = "So this is the sick corpus. I have a cold so I probably sound quite different than the acoustic corpus. The recording environment is also quite different, and I'm saying a bunch of different words that I did not say in the original one.";
        let recorded = words(said);
        assert_eq!(check(&recorded, &finals), Ok(()));
        assert_eq!(
            split(&recorded, &finals)[2].text,
            "",
            "what it did to the record"
        );
        let before = tail("the words words words words and that should be all thanks");
        for before in [&[][..], &before[..]] {
            let (filled, n) = fill_skipped(recorded.clone(), &finals, before);
            assert_eq!(n, 5);
            let pieces = split(&filled, &finals);
            assert_eq!(pieces[2].text, "And here's a long, and");
            let text: Vec<&str> = pieces.iter().map(|p| p.text.as_str()).collect();
            assert_eq!(text.join(" "), format!("{said} And here's a long, and"));
        }
        // A revision that has the phrase is used as it is.
        let whole = words(&format!("{said} And here's a long pause, and"));
        assert_eq!(fill_skipped(whole.clone(), &finals, &[]), (whole, 0));
        // Two words left out: a better reading.
        let short = [f(
            28.5,
            33.0,
            "So this is, you know, the sick corpus. I have a cold.",
        )];
        let better = words("So this is the sick corpus. I have a cold.");
        assert_eq!(fill_skipped(better.clone(), &short, &[]), (better, 0));
    }

    /// Recorded (a real-time English run, replayed): the stream timed "1, 2, 3, 4, you"
    /// after the cut between two chunks; the revision of the chunk before ends "…if you
    /// dial 1 2 3 4.", this one starts at "can". Such words stay out (the record would say
    /// them twice). In the same run "You know… Montreal Forstyliner, still liner." opened a
    /// chunk whose revision left it out, and the chunk before's ended "…the actions of a
    /// standard telephone": those go back in, as in a channel's first chunk, or within one.
    #[test]
    fn words_left_out_at_a_seam_go_back_unless_the_chunk_before_has_them() {
        let finals = [
            f(30.2, 31.9, "1, 2, 3, 4, you can"),
            f(
                32.0,
                34.4,
                "try to ring the console. If the console is busy",
            ),
            f(34.4, 35.3, "or unavailable,"),
        ];
        let revised: Vec<Word> = spoken(
            "can try to ring the console, if the console is busy or unavailable,",
            31.6,
            0.3,
            0.3,
        );
        let dialled =
            tail("to ring the console when their extension is dialed if you dial 1 2 3 4.");
        assert_eq!(fill_skipped(revised.clone(), &finals, &dialled).1, 0);
        let (first, n) = fill_skipped(revised.clone(), &finals, &[]);
        assert_eq!(n, 5);
        assert_eq!(split(&first, &finals)[0].text, "1, 2, 3, 4, you can");
        // Within: "try to ring the" left out between words it has.
        let mut within = revised.clone();
        within.drain(1..5);
        let (back, n) = fill_skipped(within, &finals, &dialled);
        assert_eq!(n, 4);
        let text: Vec<&str> = back.iter().map(|w| w.text.trim()).collect();
        assert_eq!(
            text.join(" "),
            "can try to ring the console, if the console is busy or unavailable,"
        );

        let finals = [
            f(250.1, 250.5, "You"),
            f(250.5, 251.0, "know…"),
            f(251.2, 252.6, "Montreal Forstyliner,"),
            f(252.6, 253.3, "still liner."),
            f(254.0, 255.9, "Thank you for calling"),
        ];
        let revised: Vec<Word> = spoken("Thank you for calling", 254.0, 0.4, 0.4);
        let telephone = tail("hang up commands to simulate the actions of a standard telephone");
        let (back, n) = fill_skipped(revised, &finals, &telephone);
        assert_eq!(n, 6);
        let pieces = split(&back, &finals);
        assert_eq!(pieces[2].text, "Montreal Forstyliner,");
        assert_eq!(pieces[4].text, "Thank you for calling");
    }

    /// Recorded (a three-channel run at real time, the English booth's first chunk, its
    /// finals and its revision replayed): the revision ends at "…for your country." and
    /// leaves out the two words said at the cut, the sonnet's "One. From", which the next
    /// chunk's finals do not hold. They stay; one word left out inside the chunk (the live
    /// "is" of "is not.") does not come back: within a chunk it takes four running.
    #[test]
    fn words_left_out_at_a_chunks_end_go_back() {
        let finals = [
            f(0.32, 0.94, "and so my"),
            f(2.67, 2.67, "fellow Americans"),
            f(3.29, 4.91, "is not."),
            f(4.07, 6.02, "what your country"),
            f(6.54, 8.12, "can do for you."),
            f(7.69, 10.42, "ask what you can do for your country."),
            f(12.3, 13.7, "one"),
            f(13.9, 14.3, "from"),
        ];
        let said = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";
        let revised: Vec<Word> = spoken(said, 0.3, 0.45, 0.4);
        assert_eq!(check(&revised, &finals), Ok(()));
        let (back, n) = fill_skipped(revised.clone(), &finals, &[]);
        assert_eq!(n, 2);
        let pieces = split(&back, &finals);
        assert_eq!(pieces[6].text, "one");
        assert_eq!(pieces[7].text, "from");
        let text: Vec<&str> = pieces.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(text.join(" ").trim(), format!("{said} one from"));
        // One word left out within: the revision's reading stands.
        let within: Vec<Word> = spoken("And so my fellow Americans, not what your country can do for you, ask what you can do for your country. One. From", 0.3, 0.6, 0.4);
        assert_eq!(fill_skipped(within.clone(), &finals, &[]), (within, 0));
    }

    /// [`record_tail`] of one final's text, as left by the chunk before.
    fn tail(text: &str) -> Vec<String> {
        record_tail(&[f(0.0, 1.0, text)], &[])
    }

    /// A chunk Whisper skipped part of is decoded again in halves, cut between the finals
    /// nearest its middle: every final in one half, the audio split there, the second
    /// half prompted with the first's text.
    #[test]
    fn a_chunk_is_halved_between_its_finals() {
        let job = RevisionJob {
            from: 10.0,
            audio: secs(20.0),
            finals: vec![
                f(10.5, 14.0, "a b"),
                f(14.4, 19.8, "c d"),
                f(20.2, 29.0, "e f"),
            ],
            language: "en".into(),
            prompt: "before".into(),
            hints: Vec::new(),
        };
        let [a, b] = halves(&job);
        assert_eq!(a.finals.len() + b.finals.len(), 3);
        assert_eq!(b.finals[0].text, "e f");
        // The halves meet in the gap between the finals.
        assert!((a.from - 10.0).abs() < 1e-3 && (a.secs() - 10.0).abs() < 1e-3);
        assert!((b.from - 20.0).abs() < 1e-3, "{}", b.from);
        assert!((b.from + b.secs() - 30.0).abs() < 1e-3);
        assert_eq!(b.prompt, "before a b c d");
    }

    /// Finals of continuous speech: a chunk closes before the final that would take it past
    /// CHUNK_SECS, its audio runs from just before its first final to where the next begins,
    /// and the next chunk starts there (no audio between chunks is left out).
    #[test]
    fn chunks_tile_the_speech_and_stay_under_whisper_window() {
        let mut c = Chunker::new(0.0, Vec::new());
        let mut jobs = Vec::new();
        let mut t = 0.0;
        for i in 0..20 {
            jobs.extend(c.push_audio(&secs(3.0)));
            let (s, e) = (t + 0.2, t + 2.9);
            jobs.extend(c.on_final(i, s, e, &format!("final {i}"), "en"));
            t += 3.0;
        }
        jobs.extend(c.finish());
        assert!(jobs.len() >= 3, "{}", jobs.len());
        let mut end = 0.0;
        let mut finals = 0;
        for j in &jobs {
            assert!(j.secs() <= 30.0, "{}", j.secs());
            assert!(
                (j.from - end).abs() < 1e-3 || j.from >= end,
                "{} after {end}",
                j.from
            );
            assert!(j.from <= j.finals[0].start);
            end = j.from + j.secs();
            finals += j.finals.len();
            assert_eq!(j.language, "en");
        }
        assert_eq!(finals, 20);
        // The second chunk is prompted with the first's text.
        assert!(jobs[1]
            .prompt
            .ends_with(&jobs[0].finals.last().unwrap().text));
        assert!(c.idle());
    }

    /// A short utterance waits for more speech rather than being decoded alone; a long
    /// pause hands it out at last; audio kept stays bounded meanwhile.
    #[test]
    fn a_short_chunk_waits_for_more_speech_and_memory_stays_bounded() {
        let mut c = Chunker::new(0.0, Vec::new());
        c.push_audio(&secs(4.0));
        assert!(c.on_final(0, 1.0, 3.0, "hello there", "en").is_none());
        assert!(c.push_audio(&secs(CLOSE_AFTER + 2.0)).is_none());
        let job = (0..200).find_map(|_| c.push_audio(&secs(0.1))).unwrap();
        assert_eq!(job.finals.len(), 1);
        assert!(job.secs() <= 4.0);
        for _ in 0..100 {
            assert!(c.push_audio(&secs(1.0)).is_none());
        }
        assert!(c.audio.len() as f64 <= (KEEP_SECS + 1.0) * SAMPLE_RATE_F);
    }
}
