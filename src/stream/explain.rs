//! Where lost words go: the policy's decisions, recorded ([`Trace`]), and a report that says,
//! for every word an offline transcript has and the stream does not, why ([`explain`]).
//!
//! Pure: the policy records its trace when asked ([`super::policy::PolicyConfig::trace`]);
//! the streaming benchmark (`--explain`) hands the trace, the stream's finals and the offline
//! transcript's words to [`explain`].

use super::policy::Word;
use crate::eval::{align, normalize, Step};

/// A guard that drops a whole decode.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Guard {
    /// Whisper's no-speech probability high and its confidence low.
    NoSpeech,
    /// Average log-probability under the threshold.
    LowConfidence,
    /// The text compresses too well (a repetition loop).
    Compression,
    /// Most words doubted by Whisper itself.
    Unsure,
    /// A known phantom phrase over near-silence.
    Phantom,
    /// A word or two over seconds of speech.
    Sparse,
    /// The prompt said again, squeezed into no time.
    Echo,
}

impl Guard {
    /// Whether the decode it dropped failed, to be run again without its prompt (a closing
    /// decode) or its speech counted: a decode of speech that failed (Whisper looped,
    /// doubted itself or said nearly nothing), or one judged no speech while it was prompted
    /// (Whisper given the channel's recent text may take quiet speech for none). Unprompted,
    /// Whisper's no-speech judgement stands, as it does for `tolk transcribe`, which leaves
    /// such audio out too.
    pub fn failed(self, prompted: bool) -> bool {
        match self {
            Guard::LowConfidence
            | Guard::Compression
            | Guard::Unsure
            | Guard::Sparse
            | Guard::Echo => true,
            Guard::NoSpeech => prompted,
            Guard::Phantom => false,
        }
    }
}

/// One decision of the policy, in media seconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "trace", rename_all = "snake_case")]
pub enum Trace {
    /// The voice detector heard speech start / end.
    SpeechStart {
        at: f64,
    },
    SpeechEnd {
        at: f64,
    },
    /// A decode of `[from, to)` was asked for. `skipped`: uncommitted audio left out of it
    /// because the window was capped (given up). `taken`: the media time when it was taken
    /// (how much audio had come by then: a closing decode's `taken - to` is the wait for
    /// the pause to be heard and for the decoder's turn).
    Decode {
        id: u64,
        from: f64,
        to: f64,
        closing: bool,
        skipped: Option<(f64, f64)>,
        #[serde(default)]
        taken: f64,
    },
    /// Its result: Whisper's words, the guard that dropped them all (if one did), the words
    /// left after the loop cut, and those the policy took as new (not the context already
    /// committed).
    Result {
        id: u64,
        words: Vec<Word>,
        dropped: Option<Guard>,
        kept: Vec<Word>,
        new: Vec<Word>,
    },
    /// Tentative words withdrawn when an utterance closed (its closing decode did not have
    /// them).
    Withdrawn {
        words: Vec<Word>,
    },
    /// Speech the policy gave up without a decode that could transcribe it.
    GivenUp {
        from: f64,
        to: f64,
        why: String,
    },
}

/// Why a word of the offline transcript is not in the stream.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Cause {
    /// No decode covered its audio, and the voice detector did not hear speech there.
    DetectorClosed,
    /// No decode covered its audio although the detector heard speech there (a closing
    /// decode that stopped short, a gap between windows).
    NotDecoded,
    /// Its audio was left out of a capped window (the policy fell behind) or given up.
    Skipped,
    /// Decoded, and Whisper wrote it, but a guard dropped that decode.
    DroppedBy(Guard),
    /// Whisper wrote it, but in what the loop cut took for Whisper repeating itself.
    CutAsLoop,
    /// Whisper wrote it in a tentative decode, but it was taken for already committed text
    /// (context, echo) and never committed.
    TakenForContext,
    /// It was shown as a partial and withdrawn when the utterance closed.
    Withdrawn,
    /// Whisper wrote it in a decode the policy accepted, but it was never committed (a later
    /// decode said otherwise).
    NotAgreed,
    /// Decoded, but no stream decode wrote it (Whisper heard it only with the whole
    /// recording around it).
    NeverHeard,
}

/// A word of the offline transcript, normalised, with its (approximate) media times.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord {
    pub text: String,
    pub start: f64,
    pub end: f64,
}

/// Words of timed segments (such as an offline transcript's), normalised for `lang`, each
/// given a share of its segment's time in proportion to its length.
pub fn spread_words(segments: &[(f64, f64, String)], lang: &str) -> Vec<TimedWord> {
    let mut out = Vec::new();
    for (start, end, text) in segments {
        let words = normalize(text, lang);
        let chars: usize = words.iter().map(|w| w.chars().count() + 1).sum();
        let mut at = *start;
        for w in words {
            let share = (end - start) * (w.chars().count() + 1) as f64 / chars.max(1) as f64;
            out.push(TimedWord {
                text: w,
                start: at,
                end: at + share,
            });
            at += share;
        }
    }
    out
}

/// What [`explain`] found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Offline words missing from the stream, each with its cause.
    pub lost: Vec<(TimedWord, Cause)>,
    /// Offline words in all.
    pub offline_words: usize,
}

impl Report {
    /// Lost words per cause, most first.
    pub fn counts(&self) -> Vec<(Cause, usize)> {
        let mut counts: std::collections::BTreeMap<Cause, usize> = Default::default();
        for (_, c) in &self.lost {
            *counts.entry(*c).or_default() += 1;
        }
        let mut v: Vec<(Cause, usize)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

/// Seconds a word's time may be off (offline times are spread over segments, streaming
/// word times are rough) and still count as the same place.
const SLACK: f64 = 1.5;

/// For every offline word the stream's finals do not have (a deletion in the alignment of
/// the offline words to the stream's), the cause, from the policy's `trace`.
pub fn explain(offline: &[TimedWord], finals: &[Word], trace: &[Trace], lang: &str) -> Report {
    let stream: Vec<String> = finals
        .iter()
        .flat_map(|w| normalize(&w.text, lang))
        .collect();
    let reference: Vec<String> = offline.iter().map(|w| w.text.clone()).collect();
    let mut lost = Vec::new();
    for step in align(&reference, &stream) {
        if let Step::Delete { r } = step {
            let w = &offline[r];
            lost.push((w.clone(), cause(w, trace, lang)));
        }
    }
    Report {
        lost,
        offline_words: offline.len(),
    }
}

/// The utterances the voice detector heard, from the trace: (start, end) in media seconds;
/// one still open at the trace's end ends at `open_end`.
pub fn utterances(trace: &[Trace], open_end: f64) -> Vec<(f64, f64)> {
    let mut speech = Vec::new();
    let mut open: Option<f64> = None;
    for t in trace {
        match t {
            Trace::SpeechStart { at } => open = Some(*at),
            Trace::SpeechEnd { at } => {
                if let Some(s) = open.take() {
                    speech.push((s, *at));
                }
            }
            _ => {}
        }
    }
    if let Some(s) = open {
        speech.push((s, open_end));
    }
    speech
}

fn has(words: &[Word], w: &TimedWord, lang: &str) -> bool {
    words.iter().any(|x| {
        x.end + SLACK >= w.start
            && x.start - SLACK <= w.end
            && normalize(&x.text, lang).contains(&w.text)
    })
}

fn cause(w: &TimedWord, trace: &[Trace], lang: &str) -> Cause {
    let mid = (w.start + w.end) / 2.0;
    let near = |a: f64, b: f64| mid >= a - 0.25 && mid <= b + 0.25;
    // Decoded at all?
    let mut decoded = false;
    let mut skipped = false;
    for t in trace {
        match t {
            Trace::Decode {
                from,
                to,
                skipped: s,
                ..
            } => {
                decoded |= near(*from, *to);
                if let Some((a, b)) = s {
                    skipped |= mid >= *a && mid <= *b;
                }
            }
            Trace::GivenUp { from, to, .. } => skipped |= mid >= *from && mid <= *to,
            _ => {}
        }
    }
    let speech = utterances(trace, f64::MAX);
    if !decoded {
        if skipped {
            return Cause::Skipped;
        }
        if speech.iter().any(|(a, b)| near(*a, *b)) {
            return Cause::NotDecoded;
        }
        return Cause::DetectorClosed;
    }
    // Decoded: what became of the decodes that had it?
    let mut dropped_by = None;
    let mut accepted = false;
    let mut taken_for_context = false;
    let mut cut_as_loop = false;
    let mut kept_once = false;
    for t in trace {
        match t {
            Trace::Result {
                words,
                dropped,
                kept,
                new,
                ..
            } if has(words, w, lang) => match dropped {
                Some(g) => dropped_by = dropped_by.or(Some(*g)),
                None => {
                    accepted = true;
                    let kept = has(kept, w, lang);
                    kept_once |= kept;
                    cut_as_loop |= !kept;
                    taken_for_context |= kept && !has(new, w, lang);
                }
            },
            Trace::Withdrawn { words } if has(words, w, lang) => return Cause::Withdrawn,
            _ => {}
        }
    }
    if accepted {
        // Cut as a loop by every decode that wrote it.
        if cut_as_loop && !kept_once {
            return Cause::CutAsLoop;
        }
        if taken_for_context {
            return Cause::TakenForContext;
        }
        return Cause::NotAgreed;
    }
    if let Some(g) = dropped_by {
        return Cause::DroppedBy(g);
    }
    if skipped {
        return Cause::Skipped;
    }
    Cause::NeverHeard
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, start: f64, end: f64) -> Word {
        Word {
            text: format!(" {text}"),
            start,
            end,
            prob: 0.9,
        }
    }

    fn timed(text: &str, start: f64, end: f64) -> TimedWord {
        TimedWord {
            text: text.into(),
            start,
            end,
        }
    }

    #[test]
    fn words_are_spread_over_their_segment() {
        let w = spread_words(&[(1.0, 3.0, "ab cd".into())], "en");
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].start, w[0].end, w[1].end), (1.0, 2.0, 3.0));
    }

    /// Each cause, from a trace made by hand.
    #[test]
    fn each_lost_word_gets_its_cause() {
        let offline = [
            timed("quiet", 0.5, 1.0),    // no decode, no speech heard
            timed("cut", 3.0, 3.5),      // speech heard, no decode
            timed("noisy", 6.0, 6.5),    // decoded, dropped for low confidence
            timed("echo", 8.0, 8.5),     // decoded, taken for context
            timed("tail", 10.0, 10.5),   // shown, withdrawn
            timed("again", 11.0, 11.5),  // decoded, cut as a loop
            timed("missed", 12.0, 12.5), // decoded, never written
            timed("kept", 13.0, 13.5),
        ];
        let trace = vec![
            Trace::SpeechStart { at: 2.5 },
            Trace::SpeechEnd { at: 4.0 },
            Trace::Decode {
                id: 0,
                from: 5.0,
                to: 14.0,
                closing: false,
                skipped: None,
                taken: 14.0,
            },
            Trace::Result {
                id: 0,
                words: vec![word("noisy", 6.0, 6.5)],
                dropped: Some(Guard::LowConfidence),
                kept: vec![],
                new: vec![],
            },
            Trace::Result {
                id: 1,
                words: vec![
                    word("echo", 8.0, 8.5),
                    word("tail", 10.0, 10.5),
                    word("again", 11.0, 11.5),
                ],
                dropped: None,
                kept: vec![word("echo", 8.0, 8.5), word("tail", 10.0, 10.5)],
                new: vec![word("tail", 10.0, 10.5)],
            },
            Trace::Withdrawn {
                words: vec![word("tail", 10.0, 10.5)],
            },
        ];
        let r = explain(&offline, &[word("kept", 13.0, 13.5)], &trace, "en");
        let causes: Vec<(&str, Cause)> =
            r.lost.iter().map(|(w, c)| (w.text.as_str(), *c)).collect();
        assert_eq!(
            causes,
            [
                ("quiet", Cause::DetectorClosed),
                ("cut", Cause::NotDecoded),
                ("noisy", Cause::DroppedBy(Guard::LowConfidence)),
                ("echo", Cause::TakenForContext),
                ("tail", Cause::Withdrawn),
                ("again", Cause::CutAsLoop),
                ("missed", Cause::NeverHeard),
            ]
        );
        assert_eq!(r.offline_words, 8);
        assert_eq!(r.counts()[0].1, 1);
    }
}
