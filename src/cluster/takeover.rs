//! Which worker's events a channel takes (pure).
//!
//! Two workers may publish the same channel for a moment: one cut off (its lease gone, it
//! does not know yet) and the one that took the channel over, decoding the same retained
//! audio. The record takes one: the worker whose final it last accepted; another worker's
//! final only if it holds a later lease (a higher revision of the channel's lease key, the
//! fencing token) and begins where the record ends (its worker then becomes the channel's),
//! so a final is never taken twice and the times only go forward. Events replayed after a
//! reconnection (the same final published again, a stale partial) are known by their
//! segment, which only grows. Partials and revisions come only from the channel's worker
//! (before any final: from the first that speaks).

use crate::stream::policy::Event;

/// Finals may begin this much before the last one's end (the policy clamps times forward,
/// and a new worker starts at the sample where the record ends).
const OVERLAP_SECS: f64 = 0.5;

/// One channel's record, as the room server has taken it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Takeover {
    /// The worker whose events the channel takes.
    pub worker: Option<String>,
    /// End of the last final taken (channel seconds).
    pub end: f64,
    /// The segment after the last final taken.
    pub next_segment: u64,
    /// The lease revision of the channel's worker.
    pub epoch: u64,
    /// Events refused: another worker's, or a final the record already has.
    pub refused: u64,
    /// Times the channel changed worker.
    pub handovers: u64,
}

impl Takeover {
    /// Whether the channel takes `event` from `worker`, which holds the channel's lease
    /// since revision `epoch` (a later lease has a higher one: the fencing token).
    pub fn accept(&mut self, worker: &str, epoch: u64, event: &Event) -> bool {
        let own = self.worker.as_deref() == Some(worker);
        let ok = if !own && epoch <= self.epoch && self.worker.is_some() {
            false // a worker whose lease another has taken since
        } else {
            match event {
                Event::Final {
                    start,
                    end,
                    segment,
                    ..
                } => {
                    // A final is taken once: events are replayed after a reconnection.
                    let new = *segment >= self.next_segment;
                    let fresh = *start >= self.end - OVERLAP_SECS && *end > self.end;
                    let ok = new && (own || fresh);
                    if ok {
                        if !own {
                            if self.worker.is_some() {
                                self.handovers += 1;
                            }
                            self.worker = Some(worker.to_string());
                        }
                        self.epoch = self.epoch.max(epoch);
                        self.end = self.end.max(*end);
                        self.next_segment = segment + 1;
                    }
                    ok
                }
                // A partial of a segment already final is stale (replayed).
                Event::Partial { segment, .. } if *segment < self.next_segment => false,
                Event::Partial { .. } if self.worker.is_none() => {
                    self.worker = Some(worker.to_string());
                    self.epoch = epoch;
                    true
                }
                Event::Partial { .. } | Event::Revised(_) => own,
                Event::Trace(_) => false,
            }
        };
        if !ok {
            self.refused += 1;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fin(segment: u64, start: f64, end: f64) -> Event {
        Event::Final {
            seq: 0,
            segment,
            start,
            end,
            text: "words".into(),
            raw_text: "words".into(),
            language: "en".into(),
            words: Vec::new(),
            emitted: end,
        }
    }

    fn partial(start: f64) -> Event {
        partial_of(0, start)
    }

    fn partial_of(segment: u64, start: f64) -> Event {
        Event::Partial {
            segment,
            revision: 0,
            text: "w".into(),
            start,
            end: start + 1.0,
            emitted: start + 1.0,
        }
    }

    #[test]
    fn one_worker_is_taken_as_it_speaks() {
        let mut t = Takeover::default();
        assert!(t.accept("a", 1, &partial(0.0)));
        assert!(t.accept("a", 1, &fin(0, 0.0, 2.0)));
        assert!(t.accept("a", 1, &fin(1, 2.0, 4.0)));
        assert_eq!((t.end, t.next_segment, t.refused), (4.0, 2, 0));
    }

    #[test]
    fn a_worker_that_lost_the_channel_is_not_heard_again() {
        let mut t = Takeover::default();
        assert!(t.accept("a", 1, &fin(0, 0.0, 4.0)));
        // b took over where the record ends; a, cut off, still decodes the same speech.
        assert!(t.accept("b", 2, &fin(1, 4.0, 6.5)));
        assert!(!t.accept("a", 1, &fin(1, 4.0, 6.0)));
        assert!(!t.accept("a", 1, &fin(2, 6.5, 9.0)));
        assert!(!t.accept("a", 1, &partial_of(3, 9.0)));
        assert!(t.accept("b", 2, &partial_of(2, 7.0)));
        assert!(t.accept("b", 2, &fin(2, 6.5, 9.0)));
        assert_eq!(t.worker.as_deref(), Some("b"));
        assert_eq!((t.handovers, t.refused, t.end), (1, 3, 9.0));
    }

    #[test]
    fn a_final_the_record_already_has_is_not_taken_twice() {
        let mut t = Takeover::default();
        assert!(t.accept("a", 1, &fin(0, 0.0, 4.0)));
        assert!(t.accept("a", 1, &fin(1, 4.0, 8.0)));
        // b replayed audio from before the record's end.
        assert!(!t.accept("b", 2, &fin(1, 3.0, 6.0)));
        assert!(!t.accept("b", 2, &fin(1, 6.0, 8.0)));
        assert_eq!(t.worker.as_deref(), Some("a"));
    }

    #[test]
    fn events_replayed_after_a_reconnection_are_taken_once() {
        let mut t = Takeover::default();
        assert!(t.accept("a", 1, &partial_of(0, 0.0)));
        assert!(t.accept("a", 1, &fin(0, 0.0, 2.0)));
        assert!(t.accept("a", 1, &fin(1, 2.0, 4.0)));
        // The stream replays everything it holds.
        assert!(!t.accept("a", 1, &partial_of(0, 0.0)));
        assert!(!t.accept("a", 1, &fin(0, 0.0, 2.0)));
        assert!(!t.accept("a", 1, &fin(1, 2.0, 4.0)));
        assert!(t.accept("a", 1, &partial_of(2, 4.0)));
        assert!(t.accept("a", 1, &fin(2, 4.0, 6.0)));
        assert_eq!((t.next_segment, t.refused), (3, 3));
    }

    #[test]
    fn a_worker_that_takes_its_lease_again_goes_on() {
        let mut t = Takeover::default();
        assert!(t.accept("a", 1, &fin(0, 0.0, 4.0)));
        // nats-server restarted and lost the lease: a took it again (a later revision);
        // its next final overlaps the last one's end, as finals may.
        assert!(t.accept("a", 7, &fin(1, 3.2, 6.0)));
        assert_eq!((t.epoch, t.handovers), (7, 0));
        // The older lease is not heard again.
        assert!(!t.accept("b", 5, &fin(2, 6.0, 8.0)));
    }

    #[test]
    fn revisions_come_from_the_channels_worker_only() {
        use crate::stream::revise::Revision;
        let r = Event::Revised(Revision {
            from: 0.0,
            to: 4.0,
            language: "en".into(),
            pieces: Vec::new(),
        });
        let mut t = Takeover::default();
        assert!(!t.accept("a", 1, &r));
        assert!(t.accept("a", 1, &fin(0, 0.0, 4.0)));
        assert!(t.accept("a", 1, &r));
        assert!(!t.accept("b", 2, &r));
    }
}
