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
}

/// The detector. Feed it any number of samples; it works in whole frames.
#[derive(Debug, Clone)]
pub struct Vad {
    cfg: VadConfig,
    pending: Vec<f32>,
    frames: u64,
    history: std::collections::VecDeque<f32>,
    sorted: Vec<f32>,
    loud_run: usize,
    quiet_run: usize,
    speaking: bool,
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
            sorted: Vec::with_capacity(cfg.floor_history),
            loud_run: 0,
            quiet_run: 0,
            speaking: false,
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
            return Some(VadEvent::SpeechEnd {
                frame: self.frames - self.quiet_run as u64,
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
        assert_eq!(events.len(), 2, "{events:?}");
        let VadEvent::SpeechStart { frame: s } = events[0] else {
            panic!()
        };
        let VadEvent::SpeechEnd { frame: e } = events[1] else {
            panic!()
        };
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
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(v.speaking());
    }
}
