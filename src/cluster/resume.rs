//! Where a worker's audio for a channel goes on (pure): each frame of the stream, known by
//! its run and sample index, is fed once, in order, from the record's end.
//!
//! The stream may hold an earlier run's last seconds (a meeting started again), replay what
//! the worker already fed (its consumer opened again after a reconnection), or lack audio
//! (lost while NATS was down, or older than the retention when the worker took the
//! channel): frames of another run are skipped, samples already fed are cut, a gap is
//! filled with silence (so the engine's media clock stays the channel's) and counted; at
//! first, audio the stream no longer holds moves the engine's clock to the first sample it
//! does.

use crate::audio::SAMPLE_RATE;

/// Longest gap filled with silence (the engine's inbox holds 30 s).
const MAX_GAP_SECS: u64 = 30;

#[derive(Debug)]
pub struct Resume {
    session: String,
    /// The next sample the engine needs.
    next: u64,
    first: bool,
}

/// What to do with a frame.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Nothing (another run's frame, one already fed, or one without its sample index).
    Skip,
    /// The channel's audio ended.
    End,
    /// Feed `silence` zero samples, then the frame's samples from `from` on. `missing`:
    /// seconds of the channel that never came (counted). `offset`: the engine's clock
    /// starts at this channel time (the first frame fed).
    Feed {
        silence: usize,
        from: usize,
        missing: f64,
        offset: Option<f64>,
    },
}

impl Resume {
    /// From sample `start` of the run `session` (the record's end).
    pub fn new(session: &str, start: u64) -> Resume {
        Resume {
            session: session.to_string(),
            next: start,
            first: true,
        }
    }

    /// A frame of `len` samples from sample `at`, or the end marker, of run `session`.
    pub fn frame(&mut self, session: Option<&str>, end: bool, at: Option<u64>, len: usize) -> Step {
        if session != Some(self.session.as_str()) {
            return Step::Skip;
        }
        if end {
            return Step::End;
        }
        let Some(at) = at else { return Step::Skip };
        let stop = at + len as u64;
        if stop <= self.next {
            return Step::Skip;
        }
        let rate = u64::from(SAMPLE_RATE);
        let secs = |n: u64| n as f64 / rate as f64;
        let missing = secs(at.saturating_sub(self.next));
        let step = if self.first && at > self.next {
            Step::Feed {
                silence: 0,
                from: 0,
                missing,
                offset: Some(secs(at)),
            }
        } else if at > self.next {
            Step::Feed {
                silence: (at - self.next).min(MAX_GAP_SECS * rate) as usize,
                from: 0,
                missing,
                offset: self.first.then(|| secs(self.next)),
            }
        } else {
            Step::Feed {
                silence: 0,
                from: (self.next - at) as usize,
                missing: 0.0,
                offset: self.first.then(|| secs(self.next)),
            }
        };
        self.first = false;
        self.next = stop;
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 16_000;

    #[test]
    fn a_run_goes_on_from_the_records_end_and_replays_are_fed_once() {
        let mut r = Resume::new("b", 3 * S);
        // The retained audio from 2 s: the second before the record's end is cut.
        assert_eq!(
            r.frame(Some("b"), false, Some(2 * S), 2 * S as usize),
            Step::Feed {
                silence: 0,
                from: S as usize,
                missing: 0.0,
                offset: Some(3.0)
            }
        );
        assert_eq!(
            r.frame(Some("b"), false, Some(4 * S), 800),
            Step::Feed {
                silence: 0,
                from: 0,
                missing: 0.0,
                offset: None
            }
        );
        // The consumer opened again replays it all: nothing twice.
        assert_eq!(
            r.frame(Some("b"), false, Some(2 * S), 2 * S as usize),
            Step::Skip
        );
        assert_eq!(r.frame(Some("b"), false, Some(4 * S), 800), Step::Skip);
        assert_eq!(r.frame(Some("b"), true, None, 0), Step::End);
    }

    #[test]
    fn an_earlier_run_of_the_meeting_is_not_fed() {
        // The stream still holds the last seconds of run "a" (at two minutes in) when run
        // "b" starts from zero: they would move the clock and hide the new run's audio.
        let mut r = Resume::new("b", 0);
        assert_eq!(r.frame(Some("a"), false, Some(120 * S), 800), Step::Skip);
        assert_eq!(r.frame(Some("a"), true, None, 0), Step::Skip);
        assert_eq!(r.frame(None, false, Some(0), 800), Step::Skip);
        assert_eq!(
            r.frame(Some("b"), false, Some(0), 800),
            Step::Feed {
                silence: 0,
                from: 0,
                missing: 0.0,
                offset: Some(0.0)
            }
        );
    }

    #[test]
    fn audio_lost_while_nats_was_down_is_silence_and_counted() {
        let mut r = Resume::new("b", 0);
        r.frame(Some("b"), false, Some(0), S as usize);
        assert_eq!(
            r.frame(Some("b"), false, Some(4 * S), 800),
            Step::Feed {
                silence: 3 * S as usize,
                from: 0,
                missing: 3.0,
                offset: None
            }
        );
    }

    #[test]
    fn audio_older_than_the_retention_moves_the_clock_and_is_counted() {
        let mut r = Resume::new("b", 0);
        assert_eq!(
            r.frame(Some("b"), false, Some(40 * S), 800),
            Step::Feed {
                silence: 0,
                from: 0,
                missing: 40.0,
                offset: Some(40.0)
            }
        );
    }
}
