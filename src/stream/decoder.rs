//! Decoding: a [`DecodeJob`] through whisper.cpp into a [`Hypothesis`], with one
//! `WhisperState` per channel ([`Decoder`]); how the engine decodes ([`Decoding`]); Whisper's
//! prompt ([`fit_prompt`]); and what a decode's results become ([`Emitted`]). Used by the
//! decoder thread ([`super::scheduler`]) and the drivers ([`super::engine`]).

use std::time::Instant;

use whisper_rs::{FullParams, SamplingStrategy, WhisperState};

use super::lang::{LanguageLock, LanguageMode};
use super::policy::{DecodeJob, Event, Hypothesis, Word};
use crate::transcribe::{Model, TranscribeError};

/// Language detection on less audio than this is a guess: wait for more.
const MIN_DETECT_SECS: f64 = 3.0;

/// Beam width of the decode that closes an utterance.
const CLOSING_BEAM: i32 = 5;

/// Fast English is about 4 words, 5–6 tokens a second; well beyond that is a loop. Other
/// scripts take more of Whisper's tokens for the same speech: see [`max_tokens_per_sec`].
const MAX_TOKENS_PER_SEC: f64 = 10.0;

/// The most tokens a second of audio may decode to in `language` before it is taken for a
/// loop and cut: about three times what speech at 150 words a minute takes, as English's
/// 10 is (measured by `cargo bench --bench terms`, which prints each sentence's tokens a
/// second: English 2.7–3.6, Spanish 3.3–5.4, Bengali 20–21, Hindi 12.5–13.5, Ukrainian 7.0,
/// Thai 6.1–6.2, Russian 4.7–5.4, Chinese 2.3–2.9). With English's cap a Bengali or Hindi
/// decode was cut mid-sentence.
pub fn max_tokens_per_sec(language: &str) -> f64 {
    match language {
        // Bengali (measured) and the other Brahmic scripts, taken to cost as much.
        "bn" | "as" | "ta" | "te" | "kn" | "ml" | "gu" | "pa" | "si" | "my" | "km" | "lo" => 60.0,
        // Devanagari.
        "hi" | "mr" | "ne" | "sa" => 40.0,
        // Cyrillic and Thai.
        "ru" | "uk" | "be" | "bg" | "sr" | "mk" | "kk" | "th" => 20.0,
        _ => MAX_TOKENS_PER_SEC,
    }
}

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
        let strategy = if job.beam {
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
        // whisper.cpp would leave out a decode it judges no speech; the policy judges it
        // (`Guard`), and counts it, from the probability passed on with the words.
        params.set_no_speech_thold(1.0);
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
        let written = if self.translate {
            "en"
        } else {
            language.as_str()
        };
        params.set_max_tokens((secs * max_tokens_per_sec(written)) as i32 + 8);
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
        let mut pieces: Vec<Piece> = Vec::new();
        let mut no_speech = 0f32;
        let (mut logp, mut n_tok) = (0f64, 0usize);
        let eot = self.model.token_eot();
        let end_of_audio = job.start + secs;
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
                pieces.push(Piece {
                    bytes: tok.to_bytes().unwrap_or_default().to_vec(),
                    start: (job.start + d.t0 as f64 / 100.0).min(end_of_audio),
                    end: (job.start + d.t1 as f64 / 100.0).min(end_of_audio),
                    prob: d.p,
                });
            }
        }
        let words = words_from_tokens(&pieces);
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

/// One text token of a decode: its bytes (a character may be cut between two tokens), media
/// times and probability.
#[derive(Debug, Clone)]
pub struct Piece {
    pub bytes: Vec<u8>,
    pub start: f64,
    pub end: f64,
    pub prob: f32,
}

/// A decode's words from its tokens: a token that begins with a space begins a word, and in
/// scripts written without spaces (Chinese, Thai…) every token is a word of its own, so the
/// policy can agree on them one by one (as one word over seconds of speech, a Chinese
/// sentence was dropped by the sparse guard, or committed twice). A character cut between tokens is joined whole (decoded token by token, base's
/// Chinese and Thai captions held U+FFFD for every cut character); one left unfinished at the
/// end is dropped. A word's probability is its tokens' mean.
pub fn words_from_tokens(pieces: &[Piece]) -> Vec<Word> {
    use crate::glossary::fold::unspaced;
    use crate::transcribe::utf8::Utf8Carry;
    let mut words: Vec<Word> = Vec::new();
    let mut probs: Vec<f32> = Vec::new();
    let flush = |words: &mut Vec<Word>, probs: &mut Vec<f32>| {
        if let (Some(w), false) = (words.last_mut(), probs.is_empty()) {
            w.prob = probs.iter().sum::<f32>() / probs.len() as f32;
        }
        probs.clear();
    };
    let mut carry = Utf8Carry::default();
    // The tokens of a character still being joined: where it starts, their probabilities.
    let mut held: Option<f64> = None;
    let mut held_probs: Vec<f32> = Vec::new();
    for p in pieces {
        let start = *held.get_or_insert(p.start);
        held_probs.push(p.prob);
        let text = carry.push(&p.bytes);
        if text.is_empty() {
            continue;
        }
        held = None;
        let after_unspaced = words
            .last()
            .and_then(|w| w.text.chars().last())
            .is_some_and(unspaced);
        let starts_word = words.is_empty()
            || text.starts_with(' ')
            || after_unspaced
            || text.chars().next().is_some_and(unspaced);
        if starts_word {
            flush(&mut words, &mut probs);
            words.push(Word {
                text,
                start: start.min(p.end),
                end: p.end,
                prob: p.prob,
            });
        } else if let Some(w) = words.last_mut() {
            w.text.push_str(&text);
            w.end = w.end.max(p.end);
        }
        probs.append(&mut held_probs);
    }
    flush(&mut words, &mut probs);
    words.retain(|w| !w.text.trim().is_empty());
    words
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

/// How the engine decodes: Whisper's threads, and (for tests of capacity) a slower CPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoding {
    /// Whisper threads (at most the free cores).
    pub threads: usize,
    /// 1.0 for this machine's speed; below 1, each decode takes `1 / speed` times as long
    /// (the decoder waits out the difference): a slower machine, simulated.
    pub speed: f64,
}

impl Decoding {
    /// This machine at its own speed, with `threads` Whisper threads.
    pub fn threads(threads: usize) -> Decoding {
        Decoding {
            threads,
            speed: 1.0,
        }
    }

    /// A channel's decoder, decoding so.
    pub fn decoder<'m>(
        &self,
        model: &'m Model,
        language: LanguageMode,
        translate: bool,
    ) -> Result<Decoder<'m>, TranscribeError> {
        Ok(Decoder::new(model, language, self.threads)?
            .translating(translate)
            .slowed(self.speed))
    }
}

#[derive(Debug, Clone)]
pub struct Emitted {
    pub event: Event,
    pub at: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(cut: &[&[u8]]) -> Vec<Piece> {
        cut.iter()
            .enumerate()
            .map(|(i, b)| Piece {
                bytes: b.to_vec(),
                start: i as f64 * 0.2,
                end: i as f64 * 0.2 + 0.2,
                prob: 0.5 + i as f32 * 0.05,
            })
            .collect()
    }

    #[test]
    fn latin_words_begin_at_a_space() {
        let w = words_from_tokens(&pieces(&[b" Tais", b" Pl", b"us", b" in"]));
        let text: Vec<&str> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(text, [" Tais", " Plus", " in"]);
        assert!((w[1].start - 0.2).abs() < 1e-9 && (w[1].end - 0.6).abs() < 1e-9);
        assert!((w[1].prob - 0.575).abs() < 1e-6);
    }

    /// Base's Chinese as it came: characters cut between tokens (each three bytes). Decoded
    /// token by token the caption read "��4 ��2"; joined, every character is whole, each
    /// token's characters a word of their own, and the words join back into the text.
    #[test]
    fn characters_cut_between_tokens_are_whole_words() {
        let text = "性工作除罪化";
        let b = text.as_bytes();
        let w = words_from_tokens(&pieces(&[
            &b[..2],
            &b[2..4],
            &b[4..9],
            &b[9..10],
            &b[10..15],
            &b[15..],
        ]));
        let got: Vec<&str> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(got, ["性", "工作", "除罪", "化"]);
        assert_eq!(crate::stream::policy::join_words(&w), text);
        // "性" began in the first token and ended in the second.
        assert!(w[0].start.abs() < 1e-9 && (w[0].end - 0.4).abs() < 1e-9);
        // A character cut off at the end of the decode is dropped, not written broken.
        let w = words_from_tokens(&pieces(&[" ชุม".as_bytes(), &"ชน".as_bytes()[..4]]));
        let got: String = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(got, " ชุมช");
        assert!(!got.contains('\u{FFFD}'));
    }
}
