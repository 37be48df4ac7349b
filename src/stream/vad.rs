//! Voice activity detection: an energy detector with an adaptive noise floor, smoothed with
//! an onset and a hangover. Pure: fed samples, it says which 20 ms frames are speech.
//!
//! Silence costs no Whisper call, and utterances break at pauses, so the detector only needs
//! to be cheap and conservative: it lets through anything louder than the room's steady noise
//! (Whisper's own no-speech probability is the second guard).

/// Samples per analysis frame: 20 ms at 16 kHz.
pub const FRAME: usize = 320;

/// Frame duration in seconds.
pub const FRAME_SECS: f64 = FRAME as f64 / 16_000.0;

/// Detector settings.
#[derive(Debug, Clone, Copy)]
pub struct VadConfig {
    /// A frame is loud if its energy exceeds the noise floor by this many dB...
    pub margin_db: f32,
    /// ...or, once speech has begun, by this many (hysteresis: quiet words inside speech,
    /// a cold, a soft voice, do not end it). On the Montreal Forced Aligner's conversational
    /// recording (52 s, about 42 s of speech over a -50 dBFS room) a single 10 dB margin
    /// heard 24 s of speech in 20 pieces, and Whisper never got the rest; 10 dB to begin and
    /// 5 dB to go on hears 40 s in 10 utterances, and steady pink noise still none.
    pub hold_margin_db: f32,
    /// ...and the absolute level of -55 dBFS (digital silence and hiss stay silent).
    pub min_level_db: f32,
    /// Loud frames in a row that open speech.
    pub onset_frames: usize,
    /// Quiet frames in a row that close speech (the pause that ends an utterance).
    pub hangover_frames: usize,
    /// Quiet frames in a row, inside speech, that make a short pause ([`VadEvent::Pause`]):
    /// a breath or a phrase boundary, where a channel decoded in pieces may cut.
    pub pause_frames: usize,
    /// The noise floor is this percentile of the frame levels in the recent history...
    pub floor_percentile: f32,
    /// ...of this many frames (3 s). Speech has gaps between words, so a low percentile of a
    /// few seconds tracks the room's noise, whether someone speaks or not.
    pub floor_history: usize,
}

impl Default for VadConfig {
    fn default() -> VadConfig {
        VadConfig {
            margin_db: 10.0,
            hold_margin_db: 5.0,
            min_level_db: -55.0,
            onset_frames: 3,
            hangover_frames: 25,
            pause_frames: 10,
            floor_percentile: 0.1,
            floor_history: 150,
        }
    }
}

/// What the detector says about the frames it was just given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began this many frames from the start of the stream (onset frames included).
    SpeechStart { frame: u64 },
    /// Speech ended: the last speech frame was `frame - 1` (the hangover is not speech).
    SpeechEnd { frame: u64 },
    /// A short pause inside speech (`pause_frames` quiet in a row, fewer than the
    /// hangover): the last speech frame before it was `frame - 1`. Speech goes on.
    Pause { frame: u64 },
    /// Speech again after a [`VadEvent::Pause`], before the hangover ended it: from `frame`.
    Resume { frame: u64 },
}

/// The detector. Feed it any number of samples; it works in whole frames.
#[derive(Debug, Clone)]
pub struct Vad {
    cfg: VadConfig,
    pending: Vec<f32>,
    frames: u64,
    history: std::collections::VecDeque<f32>,
    /// Whether each frame of `history` was heard as loud.
    loud_history: std::collections::VecDeque<bool>,
    sorted: Vec<f32>,
    loud_run: usize,
    quiet_run: usize,
    speaking: bool,
    /// A [`VadEvent::Pause`] was said and no loud frame has come since.
    paused: bool,
    /// Energy of the most recent frame, dBFS (for level meters and logs).
    pub last_level_db: f32,
}

impl Vad {
    pub fn new(cfg: VadConfig) -> Vad {
        Vad {
            cfg,
            pending: Vec::with_capacity(FRAME),
            frames: 0,
            history: std::collections::VecDeque::with_capacity(cfg.floor_history),
            loud_history: std::collections::VecDeque::with_capacity(cfg.floor_history),
            sorted: Vec::with_capacity(cfg.floor_history),
            loud_run: 0,
            quiet_run: 0,
            speaking: false,
            paused: false,
            last_level_db: -120.0,
        }
    }

    /// Whether the detector is inside speech now.
    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// Quiet frames since the last loud one (a pause under way, or the hangover).
    pub fn quiet_frames(&self) -> usize {
        self.quiet_run
    }

    /// Frames analysed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The quietest `span` frames in a row among the last `within` analysed (at most the
    /// level history's length): the frame at their middle, counted from the start of the
    /// stream. With `gap`, only frames all heard as quiet (a gap between words, not the
    /// soft middle of one) count. None if there are none.
    pub fn quietest_recent(&self, within: usize, span: usize, gap: bool) -> Option<u64> {
        let n = within.min(self.history.len());
        let span = span.max(1);
        if n < span {
            return None;
        }
        let skip = self.history.len() - n;
        let energy: Vec<f32> = self
            .history
            .iter()
            .skip(skip)
            .map(|db| 10f32.powf(db / 10.0))
            .collect();
        let loud: Vec<bool> = self.loud_history.iter().skip(skip).copied().collect();
        let best = (0..=n - span)
            .filter(|&i| !gap || !loud[i..i + span].iter().any(|l| *l))
            .min_by(|&a, &b| {
                let sum = |i: usize| energy[i..i + span].iter().sum::<f32>();
                sum(a).total_cmp(&sum(b))
            })?;
        Some(self.frames - n as u64 + (best + span / 2) as u64)
    }

    /// Where the audio analysed so far stops being heard as quiet (seconds from the start of
    /// the stream): the start of the loud frames at its end, if any (speech may be starting
    /// there, not yet long enough to be said), else the end of the last whole frame.
    pub fn quiet_until(&self) -> f64 {
        (self.frames - self.loud_run as u64) as f64 * FRAME_SECS
    }

    /// Feeds samples; returns the speech boundaries they contain, in order.
    pub fn push(&mut self, samples: &[f32]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (FRAME - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == FRAME {
                let energy = self.pending.iter().map(|v| v * v).sum::<f32>() / FRAME as f32;
                self.pending.clear();
                if let Some(e) = self.frame(energy) {
                    events.push(e);
                }
            }
        }
        events
    }

    fn frame(&mut self, energy: f32) -> Option<VadEvent> {
        let db = 10.0 * (energy.max(1e-12)).log10();
        self.last_level_db = db;
        if self.history.len() == self.cfg.floor_history.max(1) {
            self.history.pop_front();
        }
        self.history.push_back(db);
        self.sorted.clear();
        self.sorted.extend(self.history.iter().copied());
        self.sorted.sort_by(f32::total_cmp);
        let idx = ((self.sorted.len() - 1) as f32 * self.cfg.floor_percentile) as usize;
        let floor = self.sorted[idx];
        let margin = if self.speaking {
            self.cfg.hold_margin_db
        } else {
            self.cfg.margin_db
        };
        let loud = db > self.cfg.min_level_db && db > floor + margin;
        if self.loud_history.len() == self.cfg.floor_history.max(1) {
            self.loud_history.pop_front();
        }
        self.loud_history.push_back(loud);
        self.frames += 1;
        if loud {
            self.loud_run += 1;
            self.quiet_run = 0;
        } else {
            self.quiet_run += 1;
            self.loud_run = 0;
        }
        if !self.speaking && self.loud_run >= self.cfg.onset_frames {
            self.speaking = true;
            return Some(VadEvent::SpeechStart {
                frame: self.frames - self.loud_run as u64,
            });
        }
        if self.speaking && self.quiet_run >= self.cfg.hangover_frames {
            self.speaking = false;
            self.paused = false;
            return Some(VadEvent::SpeechEnd {
                frame: self.frames - self.quiet_run as u64,
            });
        }
        if self.speaking && !self.paused && self.quiet_run == self.cfg.pause_frames.max(1) {
            self.paused = true;
            return Some(VadEvent::Pause {
                frame: self.frames - self.quiet_run as u64,
            });
        }
        if self.speaking && self.paused && loud {
            self.paused = false;
            return Some(VadEvent::Resume {
                frame: self.frames - 1,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A syllable-like signal: a tone whose loudness swells and fades four times a second.
    fn tone(secs: f64, amp: f32) -> Vec<f32> {
        (0..(secs * 16_000.0) as usize)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                let env = 0.55 + 0.45 * (2.0 * std::f32::consts::PI * 4.0 * t).cos();
                amp * env * (i as f32 * 0.2).sin()
            })
            .collect()
    }

    /// A deterministic hiss (xorshift), uniformly distributed in [-amp, amp].
    fn hiss(secs: f64, amp: f32) -> Vec<f32> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..(secs * 16_000.0) as usize)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                amp * ((x >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
            })
            .collect()
    }

    #[test]
    fn digital_silence_and_steady_hiss_are_not_speech() {
        let mut v = Vad::new(VadConfig::default());
        assert!(v.push(&vec![0.0; 16_000 * 5]).is_empty());
        let mut v = Vad::new(VadConfig::default());
        assert!(v.push(&hiss(10.0, 0.05)).is_empty());
    }

    #[test]
    fn a_burst_over_the_floor_opens_and_a_pause_closes() {
        let mut v = Vad::new(VadConfig::default());
        let mut audio = hiss(1.0, 0.002);
        audio.extend(tone(1.0, 0.3));
        audio.extend(hiss(1.0, 0.002));
        let events = v.push(&audio);
        // The pause is a short one first, then, long enough, the end of speech.
        assert_eq!(events.len(), 3, "{events:?}");
        let VadEvent::SpeechStart { frame: s } = events[0] else {
            panic!()
        };
        let VadEvent::Pause { frame: p } = events[1] else {
            panic!()
        };
        let VadEvent::SpeechEnd { frame: e } = events[2] else {
            panic!()
        };
        assert_eq!(p, e);
        assert!((s as f64 * FRAME_SECS - 1.0).abs() < 0.05, "start {s}");
        assert!((e as f64 * FRAME_SECS - 2.0).abs() < 0.05, "end {e}");
    }

    #[test]
    fn long_continuous_speech_stays_speech() {
        let mut v = Vad::new(VadConfig::default());
        let mut audio = hiss(0.5, 0.002);
        audio.extend(tone(30.0, 0.3));
        let events = v.push(&audio);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(v.speaking());
    }

    #[test]
    fn short_gaps_inside_speech_do_not_split_it() {
        let mut v = Vad::new(VadConfig::default());
        let mut audio = hiss(0.5, 0.002);
        audio.extend(tone(1.0, 0.3));
        audio.extend(vec![0.0; 3_200]); // 200 ms gap, shorter than the 500 ms hangover
        audio.extend(tone(1.0, 0.3));
        let events = v.push(&audio);
        let bounds: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, VadEvent::SpeechStart { .. } | VadEvent::SpeechEnd { .. }))
            .collect();
        assert_eq!(bounds.len(), 1, "{events:?}");
        assert!(v.speaking());
    }

    #[test]
    fn a_breath_inside_speech_is_a_pause_and_speech_resumes_after_it() {
        let mut v = Vad::new(VadConfig::default());
        let mut audio = hiss(0.5, 0.002);
        audio.extend(tone(1.0, 0.3));
        audio.extend(hiss(0.3, 0.002)); // a 300 ms breath
        audio.extend(tone(1.0, 0.3));
        audio.extend(hiss(0.1, 0.002)); // 100 ms between words: no pause
        audio.extend(tone(1.0, 0.3));
        let events = v.push(&audio);
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(
            matches!(events[0], VadEvent::SpeechStart { .. }),
            "{events:?}"
        );
        let VadEvent::Pause { frame: p } = events[1] else {
            panic!("{events:?}")
        };
        let VadEvent::Resume { frame: r } = events[2] else {
            panic!("{events:?}")
        };
        assert!((p as f64 * FRAME_SECS - 1.5).abs() < 0.05, "pause {p}");
        assert!((r as f64 * FRAME_SECS - 1.8).abs() < 0.05, "resume {r}");
        assert!(v.speaking());
    }

    #[test]
    fn the_quietest_gap_between_words_is_found_not_the_soft_middle_of_one() {
        let mut v = Vad::new(VadConfig::default());
        let mut audio = hiss(0.5, 0.002);
        audio.extend(tone(1.0, 0.3));
        audio.extend(hiss(0.12, 0.002)); // a 120 ms gap between words, at 1.5-1.62 s
        audio.extend(tone(0.6, 0.3));
        // A long word whose middle is soft, but still speech.
        audio.extend(tone(0.5, 0.3));
        audio.extend(tone(0.3, 0.05));
        audio.extend(tone(0.5, 0.3));
        v.push(&audio);
        assert!(v.speaking());
        let at = |f: u64| f as f64 * FRAME_SECS;
        let gap = v.quietest_recent(150, 5, true).expect("a gap");
        assert!((at(gap) - 1.56).abs() < 0.05, "gap at {}", at(gap));
        // Only the soft middle of the word lies in the last second: no gap there.
        assert_eq!(v.quietest_recent(50, 5, true), None);
        let soft = v.quietest_recent(50, 5, false).expect("the quietest");
        assert!((at(soft) - 2.87).abs() < 0.2, "soft at {}", at(soft));
    }
}
