//! Fan-out: every channel's events to every listener, one serialization per event.
//!
//! One [`tokio::sync::broadcast`] queue for the whole meeting carries each event once, as
//! JSON text shared by all listeners ([`Published`]); a listener keeps the events of the
//! channels it subscribed to. The queue holds [`BROADCAST_CAPACITY`] events: a listener that
//! falls that far behind (a stalled phone) loses its place, never slows the publisher or
//! anyone else, and is sent a fresh snapshot of its channels (`resync`).
//!
//! Each channel also keeps its last [`RING_FINALS`] finals and its current partial, for
//! snapshots and for resuming after a reconnect. Publishing a final and subscribing both
//! hold the channel's lock, so a subscriber's snapshot and its live events meet with no gap
//! and no duplicate.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::broadcast;

use super::wire::{ChannelInfo, ChannelMode, ChannelState, Final, Partial, ServerMessage};

/// Events the broadcast queue holds for the slowest listener before it must resync.
pub const BROADCAST_CAPACITY: usize = 4096;

/// Finals each channel keeps in memory for snapshots and resume.
pub const RING_FINALS: usize = 1000;

/// Finals in a snapshot on subscribe.
pub const SNAPSHOT_FINALS: usize = 20;

/// The channel index of an event for every listener (a `meeting` event).
pub const EVERY_CHANNEL: usize = usize::MAX;

/// An event as it goes out: which channel (index, or [`EVERY_CHANNEL`]), its final's seq if
/// it is one, its JSON.
#[derive(Debug)]
pub struct Published {
    pub channel: usize,
    /// The channel's event number (1, 2, …, in publishing order; 0 for [`EVERY_CHANNEL`]).
    pub event: u64,
    pub seq: Option<u64>,
    /// Shared by every listener's send (a reference count, not a copy per listener).
    pub json: Utf8Bytes,
    /// The words as said, for interpreters, where `json` withholds protected names.
    pub said: Option<Utf8Bytes>,
}

impl Published {
    /// What a listener gets: interpreters the words as said.
    pub fn for_listener(&self, interpreter: bool) -> Utf8Bytes {
        match (&self.said, interpreter) {
            (Some(said), true) => said.clone(),
            _ => self.json.clone(),
        }
    }
}

/// A channel's health as listeners are told it (the `status` message).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStatus {
    pub state: ChannelState,
    pub mode: ChannelMode,
    /// Seconds the transcription is behind the audio.
    pub lag: f64,
    /// The source's state in words, with what was lost.
    pub source: String,
}

impl ChannelStatus {
    fn message(&self, channel: &str) -> ServerMessage {
        ServerMessage::Status {
            channel: channel.to_string(),
            state: self.state,
            lag: (self.lag * 10.0).round() / 10.0,
            mode: self.mode,
            source: self.source.clone(),
        }
    }
}

#[derive(Default)]
struct Slot {
    ring: VecDeque<Final>,
    partial: Option<Partial>,
    next_seq: u64,
    state: Option<ChannelStatus>,
    /// Events published for this channel so far (the last one's number).
    events: u64,
}

impl Slot {
    /// Numbers the next event of this channel (called under the channel's lock, which is
    /// held until the event is in the queue).
    fn next_event(&mut self) -> u64 {
        self.events += 1;
        self.events
    }
}

/// The meeting's channels and their live state.
pub struct Hub {
    pub channels: Vec<ChannelInfo>,
    state: Vec<Mutex<Slot>>,
    tx: broadcast::Sender<Arc<Published>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data: keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// A hub for `channels`; `next_seq[i]` is the first seq channel `i` will give (1 for a
    /// new meeting, after the archive's last for a restarted one); `capacity`: events the
    /// broadcast queue holds ([`BROADCAST_CAPACITY`] unless a test wants overflow sooner).
    pub fn new(channels: Vec<ChannelInfo>, next_seq: &[u64], capacity: usize) -> Hub {
        let (tx, _) = broadcast::channel(capacity.max(1));
        let state = (0..channels.len())
            .map(|i| {
                Mutex::new(Slot {
                    next_seq: next_seq.get(i).copied().unwrap_or(1).max(1),
                    ..Slot::default()
                })
            })
            .collect();
        Hub {
            channels,
            state,
            tx,
        }
    }

    /// Fills a channel's ring with its last archived finals (a restarted server): a client
    /// that resumes `since` a final it saw before the restart gets those it missed.
    pub fn preload(&self, channel: usize, finals: Vec<Final>) {
        let mut st = lock(&self.state[channel]);
        let skip = finals.len().saturating_sub(RING_FINALS);
        for f in finals.into_iter().skip(skip) {
            st.next_seq = st.next_seq.max(f.seq + 1);
            st.ring.push_back(f);
        }
    }

    /// The index of channel `id`.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.channels.iter().position(|c| c.id == id)
    }

    /// Gives a final its seq (in publishing order). Called by the one thread that then
    /// archives and publishes it.
    pub fn assign_seq(&self, channel: usize, f: &mut Final) {
        let mut st = lock(&self.state[channel]);
        f.seq = st.next_seq;
        st.next_seq += 1;
    }

    /// Sends a final to every listener of its channel and keeps it for snapshots.
    pub fn publish_final(&self, channel: usize, f: Final) {
        self.publish_final_said(channel, f, None);
    }

    /// [`Hub::publish_final`] of a final with protected names withheld; interpreters get
    /// `said`, the words as said (kept nowhere: snapshots and resumes have `f`).
    pub fn publish_final_said(&self, channel: usize, f: Final, said: Option<Final>) {
        let said = said.map(|s| ServerMessage::Final(s).to_json().into());
        let json = ServerMessage::Final(f.clone()).to_json();
        let mut st = lock(&self.state[channel]);
        st.next_seq = st.next_seq.max(f.seq + 1);
        let seq = f.seq;
        st.ring.push_back(f);
        while st.ring.len() > RING_FINALS {
            st.ring.pop_front();
        }
        // The partial it replaces is gone with it.
        st.partial = None;
        self.send(&mut st, channel, Some(seq), json, said);
    }

    /// Sends a final's revision (`revised`, the same seq) to every listener of its channel
    /// and puts it in the final's place for snapshots and resumes (if still kept).
    pub fn publish_revised(&self, channel: usize, f: Final, said: Option<Final>) {
        let said = said.map(|s| ServerMessage::Revised(s).to_json().into());
        let json = ServerMessage::Revised(f.clone()).to_json();
        let mut st = lock(&self.state[channel]);
        if let Some(kept) = st.ring.iter_mut().find(|k| k.seq == f.seq) {
            *kept = f;
        }
        self.send(&mut st, channel, None, json, said);
    }

    /// Sends a `meeting` event (the meeting changed: off the record or back) to every
    /// subscribed listener.
    pub fn publish_meeting(&self, json: String) {
        let _ = self.tx.send(Arc::new(Published {
            channel: EVERY_CHANNEL,
            event: 0,
            seq: None,
            json: json.into(),
            said: None,
        }));
    }

    /// Sends a partial (the channel's current tentative text).
    pub fn publish_partial(&self, channel: usize, p: Partial) {
        self.publish_partial_said(channel, p, None);
    }

    /// [`Hub::publish_partial`] with protected names withheld; interpreters get `said`.
    pub fn publish_partial_said(&self, channel: usize, p: Partial, said: Option<Partial>) {
        let said = said.map(|s| ServerMessage::Partial(s).to_json().into());
        let json = ServerMessage::Partial(p.clone()).to_json();
        let mut st = lock(&self.state[channel]);
        st.partial = (!p.text.is_empty()).then_some(p);
        self.send(&mut st, channel, None, json, said);
    }

    /// Sends a channel's status, if it changed (or the lag moved by more than a second).
    pub fn publish_status(&self, channel: usize, status: ChannelStatus) {
        let mut st = lock(&self.state[channel]);
        let changed = match &st.state {
            Some(s) => {
                s.state != status.state
                    || s.mode != status.mode
                    || (s.lag - status.lag).abs() >= 1.0
                    || s.source != status.source
            }
            None => true,
        };
        if !changed {
            return;
        }
        let json = status.message(&self.channels[channel].id).to_json();
        st.state = Some(status);
        self.send(&mut st, channel, None, json, None);
    }

    /// Numbers a channel's event and queues it for every listener, under the channel's
    /// lock (`st`), so that events go out in the order they are numbered. No listener is
    /// not an error: finals are kept in the ring.
    fn send(
        &self,
        st: &mut Slot,
        channel: usize,
        seq: Option<u64>,
        json: String,
        said: Option<Utf8Bytes>,
    ) {
        let event = st.next_event();
        let _ = self.tx.send(Arc::new(Published {
            channel,
            event,
            seq,
            json: json.into(),
            said,
        }));
    }

    /// The last status of a channel.
    pub fn status(&self, channel: usize) -> Option<ChannelStatus> {
        lock(&self.state[channel]).state.clone()
    }

    /// A broadcast receiver with no events yet.
    pub fn receiver(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    /// Listeners connected (broadcast receivers alive).
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }

    /// What a client subscribing to `channel` gets first, a receiver to follow it with, and
    /// the channel's last event those first messages reflect (its fence: see [`Follow`]).
    /// With `since`: the finals after it if the ring still has them all; otherwise (or
    /// without `since`) a snapshot. Taken under the channel's lock, so the receiver starts
    /// exactly after them.
    pub fn join(
        &self,
        channel: usize,
        since: Option<u64>,
        resync: bool,
    ) -> (Vec<ServerMessage>, broadcast::Receiver<Arc<Published>>, u64) {
        let st = lock(&self.state[channel]);
        let rx = self.tx.subscribe();
        let id = self.channels[channel].id.clone();
        let oldest = st.ring.front().map(|f| f.seq).unwrap_or(st.next_seq);
        let mut out = Vec::new();
        match since {
            // Everything after `since` is in the ring (or nothing was missed).
            Some(s) if s + 1 >= oldest && s < st.next_seq => {
                out.extend(
                    st.ring
                        .iter()
                        .filter(|f| f.seq > s)
                        .cloned()
                        .map(ServerMessage::Final),
                );
                if let Some(p) = &st.partial {
                    out.push(ServerMessage::Partial(p.clone()));
                }
            }
            _ => {
                let n = st.ring.len().saturating_sub(SNAPSHOT_FINALS);
                out.push(ServerMessage::Snapshot {
                    channel: id.clone(),
                    finals: st.ring.iter().skip(n).cloned().collect(),
                    partial: st.partial.clone(),
                    resync,
                });
            }
        }
        if let Some(status) = &st.state {
            out.push(status.message(&id));
        }
        (out, rx, st.events)
    }

    /// The last seq given in a channel (0: none yet).
    pub fn last_seq(&self, channel: usize) -> u64 {
        lock(&self.state[channel]).next_seq - 1
    }
}

/// What one listener follows, and where: a listener reads one receiver for all its channels
/// (the one from its first join), but each channel's first messages (snapshot or resume)
/// were taken at a different moment. An event of a channel is sent only if it came after
/// the fence of that channel's last join: what came before is in the first messages already
/// (a partial or status sent after its snapshot would be stale; a final, a duplicate).
#[derive(Debug, Clone)]
pub struct Follow {
    fence: Vec<Option<u64>>,
}

impl Follow {
    /// Following none of `channels` channels.
    pub fn new(channels: usize) -> Follow {
        Follow {
            fence: vec![None; channels],
        }
    }

    /// Follows `channel` from its event `fence` on (the third value of [`Hub::join`]).
    pub fn start(&mut self, channel: usize, fence: u64) {
        self.fence[channel] = Some(fence);
    }

    /// Stops following `channel`; whether it was followed.
    pub fn stop(&mut self, channel: usize) -> bool {
        self.fence[channel].take().is_some()
    }

    /// Whether `channel` is followed.
    pub fn follows(&self, channel: usize) -> bool {
        self.fence[channel].is_some()
    }

    /// The channels followed.
    pub fn channels(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.fence.len()).filter(|&i| self.follows(i))
    }

    /// Whether the listener is to be sent `p`: a meeting event always; a channel's event if
    /// the channel is followed and the event came after its fence.
    pub fn wants(&self, p: &Published) -> bool {
        if p.channel == EVERY_CHANNEL {
            return true;
        }
        matches!(self.fence.get(p.channel), Some(Some(fence)) if p.event > *fence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Hub {
        let ch = |id: &str| ChannelInfo {
            id: id.into(),
            language: "en".into(),
            label: id.into(),
            floor: id == "floor",
            translates: None,
        };
        Hub::new(vec![ch("floor"), ch("es")], &[1, 1], BROADCAST_CAPACITY)
    }

    fn final_(hub: &Hub, channel: usize, text: &str) -> Final {
        let mut f = Final::test(&hub.channels[channel].id, 0, text);
        hub.assign_seq(channel, &mut f);
        f
    }

    #[test]
    fn resume_gets_exactly_the_missed_finals_then_live_ones() {
        let h = hub();
        for t in ["a", "b", "c", "d"] {
            let f = final_(&h, 0, t);
            h.publish_final(0, f);
        }
        let (first, mut rx, _) = h.join(0, Some(2), false);
        let seqs: Vec<u64> = first
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Final(f) => Some(f.seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, vec![3, 4]);
        let f = final_(&h, 0, "e");
        h.publish_final(0, f);
        assert_eq!(rx.try_recv().unwrap().seq, Some(5));
        // Up to date: nothing missed, nothing repeated.
        let (first, _, _) = h.join(0, Some(5), false);
        assert!(first.is_empty(), "{first:?}");
    }

    /// A restarted server's hub holds the archive's last finals: a resume from before the
    /// restart gets what it missed, and numbering goes on.
    #[test]
    fn a_preloaded_hub_resumes_across_a_restart() {
        let before = hub();
        let finals: Vec<Final> = ["a", "b", "c"]
            .iter()
            .map(|t| final_(&before, 0, t))
            .collect();
        let h = Hub::new(before.channels.clone(), &[4, 1], BROADCAST_CAPACITY);
        h.preload(0, finals);
        let (first, _, _) = h.join(0, Some(1), false);
        let texts: Vec<String> = first
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Final(f) => Some(f.text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["b", "c"]);
        assert_eq!(final_(&h, 0, "d").seq, 4);
    }

    #[test]
    fn a_new_listener_or_one_too_far_behind_gets_a_snapshot() {
        let h = hub();
        for i in 0..(RING_FINALS + 5) {
            let f = final_(&h, 1, &format!("w{i}"));
            h.publish_final(1, f);
        }
        h.publish_partial(
            1,
            Partial {
                channel: "es".into(),
                segment: 9,
                revision: 1,
                text: "tentative".into(),
                start: 0.0,
                end: 1.0,
            },
        );
        for since in [None, Some(1)] {
            let (first, _, _) = h.join(1, since, since.is_some());
            match &first[0] {
                ServerMessage::Snapshot {
                    finals,
                    partial,
                    resync,
                    ..
                } => {
                    assert_eq!(finals.len(), SNAPSHOT_FINALS);
                    assert_eq!(finals.last().unwrap().seq, (RING_FINALS + 5) as u64);
                    assert_eq!(partial.as_ref().unwrap().text, "tentative");
                    assert_eq!(*resync, since.is_some());
                }
                other => panic!("{other:?}"),
            }
        }
    }

    fn partial(channel: &str, text: &str) -> Partial {
        Partial {
            channel: channel.into(),
            segment: 1,
            revision: 1,
            text: text.into(),
            start: 0.0,
            end: 1.0,
        }
    }

    /// A listener of two channels reads one receiver (its first join's): what the second
    /// channel published between the two joins is in the second snapshot and must not
    /// follow it (a stale partial or status; a final twice).
    #[test]
    fn a_listener_of_two_channels_gets_nothing_from_before_a_channels_snapshot() {
        let h = hub();
        let mut follow = Follow::new(2);
        let (_, mut rx, fence) = h.join(0, None, false);
        follow.start(0, fence);
        h.publish_partial(1, partial("es", "old partial"));
        h.publish_status(
            1,
            ChannelStatus {
                state: ChannelState::Live,
                mode: ChannelMode::Full,
                lag: 0.5,
                source: "file".into(),
            },
        );
        let f = final_(&h, 1, "old final");
        h.publish_final(1, f);
        h.publish_partial(1, partial("es", "newer partial"));
        let (first, _, fence) = h.join(1, Some(0), false);
        follow.start(1, fence);
        let firsts: Vec<String> = first.iter().map(|m| m.to_json()).collect();
        assert!(firsts.iter().any(|j| j.contains("old final")), "{firsts:?}");
        assert!(
            firsts.iter().any(|j| j.contains("newer partial")),
            "{firsts:?}"
        );
        h.publish_partial(1, partial("es", "live partial"));
        h.publish_partial(0, partial("floor", "floor partial"));
        let mut sent = Vec::new();
        while let Ok(p) = rx.try_recv() {
            if follow.wants(&p) {
                sent.push(p.json.to_string());
            }
        }
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(sent[0].contains("live partial"), "{sent:?}");
        assert!(sent[1].contains("floor partial"), "{sent:?}");
        // Unsubscribed: nothing more of it.
        assert!(follow.stop(1));
        h.publish_partial(1, partial("es", "after"));
        let p = rx.try_recv().unwrap();
        assert!(!follow.wants(&p));
        assert_eq!(follow.channels().collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn a_listener_that_falls_behind_is_told_it_lagged_and_the_publisher_never_waits() {
        let h = hub();
        let mut slow = h.receiver();
        for i in 0..(BROADCAST_CAPACITY + 10) {
            let f = final_(&h, 0, &format!("w{i}"));
            h.publish_final(0, f);
        }
        assert!(matches!(
            slow.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
