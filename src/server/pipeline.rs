//! The writer thread between the decoder thread and the listeners.
//!
//! Events leave the decoder thread (already through the glossary) into a bounded queue of
//! [`PIPELINE_QUEUE`] events. The writer thread takes what is waiting, numbers the finals,
//! writes them to the archive in one transaction, and only then publishes everything, in the
//! order it came: a final a listener has seen is on disk. Off the record there is no archive
//! and events are published as they come. The organizer may go off the record and back
//! during a meeting: the switch goes through the same queue, so every final published after
//! the `meeting` event that says "off the record" and before the one that says "on" is not
//! stored (only its number is, see [`Archive::note_seqs`]).
//!
//! When the queue is full (the disk stalls): a partial is dropped (counted; the next one
//! replaces it anyway), a final waits for room, which holds the decoder thread: captions are
//! late rather than lost.
//!
//! When a write fails (disk full, a read-only file system, the file removed), captions keep
//! flowing live: the meeting goes on. The finals not written wait in memory, in order, up to
//! [`ARCHIVE_BACKLOG`] of them (beyond that the oldest are given up, counted), and are written
//! with the next batch or every [`RETRY`] when none comes: once the disk has room again the
//! archive holds them all. Meanwhile the organizer's page shows an alarm (the error, how many
//! finals wait), `/healthz` says degraded, `/metrics` counts. While the archive fails, a final
//! a listener has seen is in that memory only: a kill then loses it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::archive::Archive;
use super::hub::Hub;
use super::wire::{Final, Partial};

/// Events waiting for the writer thread.
pub const PIPELINE_QUEUE: usize = 1024;

/// Most events published per archive transaction.
const BATCH: usize = 256;

/// Finals kept in memory while the archive cannot be written: seven channels at a final
/// every three seconds for about two hours. When full, the oldest is given up (counted in
/// `archive_lost`): the newest are the ones the meeting can still act on.
pub const ARCHIVE_BACKLOG: usize = 20_000;

/// How often a failing archive is tried again when no new final comes.
pub const RETRY: Duration = Duration::from_secs(2);

enum Job {
    /// A final (protected names withheld), and the words as said if they differ.
    Final(usize, Final, Option<Box<Final>>),
    Partial(usize, Partial, Option<Partial>),
    /// Off the record (`true`) or back on, and the `meeting` event that says so.
    OffRecord(bool, String),
}

/// Counters the server reports.
#[derive(Default)]
pub struct PipelineStats {
    pub finals: AtomicU64,
    pub partials: AtomicU64,
    pub partials_dropped: AtomicU64,
    pub archive_failures: AtomicU64,
    /// The last archive error, if the last write failed.
    pub archive_error: Mutex<Option<String>>,
    /// Finals waiting for the archive to take them (see [`ARCHIVE_BACKLOG`]).
    pub archive_backlog: AtomicU64,
    /// Finals given up because the backlog was full.
    pub archive_lost: AtomicU64,
    /// Off the record now (switched by the organizer; set by the writer, in order).
    pub off_record: AtomicBool,
}

/// The sending side (cloned into the decoder thread's sink).
#[derive(Clone)]
pub struct PipelineTx {
    tx: SyncSender<Job>,
    stats: Arc<PipelineStats>,
}

impl PipelineTx {
    /// Queues a final (protected names withheld) and, if they differ, the words as said
    /// for interpreters (never archived); waits for room if the queue is full (see the
    /// module doc).
    pub fn final_(&self, channel: usize, f: Final, said: Option<Box<Final>>) {
        // The writer only goes away at shutdown, when nothing is left to deliver to.
        let _ = self.tx.send(Job::Final(channel, f, said));
    }

    /// Queues the switch off the record (or back on) and the event that announces it; waits
    /// for room like a final.
    pub fn off_record(&self, off: bool, meeting_json: String) {
        let _ = self.tx.send(Job::OffRecord(off, meeting_json));
    }

    /// Queues a partial, or drops it if the queue is full.
    pub fn partial(&self, channel: usize, p: Partial, said: Option<Partial>) {
        match self.tx.try_send(Job::Partial(channel, p, said)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.stats.partials_dropped.fetch_add(1, Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Starts the writer thread. `archive`: the open archive and the meeting id, or `None` off
/// the record.
pub fn start(
    hub: Arc<Hub>,
    archive: Option<(Archive, String)>,
) -> std::io::Result<(PipelineTx, Arc<PipelineStats>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel(PIPELINE_QUEUE);
    let stats = Arc::new(PipelineStats::default());
    let st = stats.clone();
    let handle = std::thread::Builder::new()
        .name("tolk-writer".into())
        .spawn(move || writer(rx, hub, archive, st))?;
    Ok((
        PipelineTx {
            tx,
            stats: stats.clone(),
        },
        stats,
        handle,
    ))
}

fn writer(
    rx: Receiver<Job>,
    hub: Arc<Hub>,
    mut archive: Option<(Archive, String)>,
    stats: Arc<PipelineStats>,
) {
    let mut pending: Vec<Job> = Vec::new();
    let mut store = Unwritten::default();
    loop {
        let first = match pending.pop() {
            Some(j) => j,
            None if store.is_empty() => match rx.recv() {
                Ok(j) => j,
                Err(_) => break,
            },
            None => match rx.recv_timeout(RETRY) {
                Ok(j) => j,
                Err(RecvTimeoutError::Timeout) => {
                    store.write(&mut archive, &stats);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    store.write(&mut archive, &stats);
                    break;
                }
            },
        };
        // A batch ends before a switch off or on the record, which starts the next one.
        let mut batch = vec![first];
        while batch.len() < BATCH && !matches!(batch.last(), Some(Job::OffRecord(..))) {
            match rx.try_recv() {
                Ok(j @ Job::OffRecord(..)) => {
                    pending.push(j);
                    break;
                }
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let off = stats.off_record.load(Relaxed);
        for job in &mut batch {
            if let Job::Final(ch, f, said) = job {
                hub.assign_seq(*ch, f);
                if let Some(s) = said {
                    s.seq = f.seq;
                }
                if archive.is_some() {
                    store.add(f.clone(), off, &stats);
                }
            }
        }
        store.write(&mut archive, &stats);
        for job in batch {
            match job {
                Job::Final(ch, f, said) => {
                    stats.finals.fetch_add(1, Relaxed);
                    hub.publish_final_said(ch, f, said.map(|s| *s));
                }
                Job::Partial(ch, p, said) => {
                    stats.partials.fetch_add(1, Relaxed);
                    hub.publish_partial_said(ch, p, said);
                }
                Job::OffRecord(off, json) => {
                    stats.off_record.store(off, Relaxed);
                    tracing::info!(off_record = off, "the organizer switched the record");
                    hub.publish_meeting(json);
                }
            }
        }
    }
}

/// What the archive has not taken yet: finals on the record, in order, and for each channel
/// the last final off the record (only its number is written).
#[derive(Default)]
struct Unwritten {
    finals: VecDeque<Final>,
    numbers: BTreeMap<String, Final>,
}

impl Unwritten {
    fn is_empty(&self) -> bool {
        self.finals.is_empty() && self.numbers.is_empty()
    }

    fn add(&mut self, f: Final, off_record: bool, stats: &PipelineStats) {
        if off_record {
            self.numbers.insert(f.channel.clone(), f);
            return;
        }
        if self.finals.len() == ARCHIVE_BACKLOG {
            self.finals.pop_front();
            stats.archive_lost.fetch_add(1, Relaxed);
        }
        self.finals.push_back(f);
    }

    /// Writes what waits, in one transaction per kind; on failure keeps it for the next try.
    fn write(&mut self, archive: &mut Option<(Archive, String)>, stats: &PipelineStats) {
        let Some((a, meeting)) = archive else {
            return;
        };
        if self.is_empty() {
            return;
        }
        let mut result = Ok(());
        if !self.finals.is_empty() {
            result = a.append(meeting, self.finals.make_contiguous());
            if result.is_ok() {
                self.finals.clear();
            }
        }
        if result.is_ok() && !self.numbers.is_empty() {
            let numbers: Vec<Final> = self.numbers.values().cloned().collect();
            result = a.note_seqs(meeting, &numbers);
            if result.is_ok() {
                self.numbers.clear();
            }
        }
        stats
            .archive_backlog
            .store(self.finals.len() as u64, Relaxed);
        let mut slot = stats
            .archive_error
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => {
                if slot.take().is_some() {
                    tracing::info!(
                        "the archive takes writes again; every final waiting was written"
                    );
                }
            }
            Err(e) => {
                stats.archive_failures.fetch_add(1, Relaxed);
                if slot.is_none() {
                    tracing::error!(error = %e, waiting = self.finals.len(), "archive write failed; captions still go out live, finals wait in memory");
                }
                *slot = Some(e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn final_(channel: &str, seq: u64) -> Final {
        Final::test(channel, seq, &format!("final {seq}"))
    }

    /// A full backlog gives up its oldest final, counted; off the record only each
    /// channel's last number waits.
    #[test]
    fn the_backlog_is_bounded_and_keeps_the_newest() {
        let stats = PipelineStats::default();
        let mut w = Unwritten::default();
        for seq in 1..=ARCHIVE_BACKLOG as u64 + 5 {
            w.add(final_("floor", seq), false, &stats);
        }
        assert_eq!(w.finals.len(), ARCHIVE_BACKLOG);
        assert_eq!(w.finals.front().unwrap().seq, 6);
        assert_eq!(stats.archive_lost.load(Relaxed), 5);
        for seq in 1..=3 {
            w.add(final_("es", seq), true, &stats);
        }
        assert_eq!(w.numbers.len(), 1);
        assert_eq!(w.numbers["es"].seq, 3);
    }

    /// What waits is written once the archive takes it, in one go, and the error clears.
    #[test]
    fn what_waits_is_written_when_the_archive_works() {
        let dir = tempfile::tempdir().unwrap();
        let mut archive = Some((
            Archive::open(&dir.path().join("a.sqlite")).unwrap(),
            "m".to_string(),
        ));
        let stats = PipelineStats::default();
        *stats.archive_error.lock().unwrap() = Some("disk full".into());
        let mut w = Unwritten::default();
        for seq in 1..=3 {
            w.add(final_("floor", seq), false, &stats);
        }
        w.add(final_("es", 7), true, &stats);
        w.write(&mut archive, &stats);
        assert!(w.is_empty());
        assert!(stats.archive_error.lock().unwrap().is_none());
        let (a, _) = archive.as_ref().unwrap();
        assert_eq!(a.finals(Some("m"), "floor").unwrap().len(), 3);
        assert_eq!(a.last_seq("m", "es").unwrap(), 7);
    }
}
