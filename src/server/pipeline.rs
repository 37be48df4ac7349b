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
//! replaces it anyway); a final, and everything after it, waits in a second queue, the
//! overflow, of up to [`OVERFLOW_FINALS`] (counted as held): the decoder thread never waits
//! for the disk, and the writer takes the overflow, in order, after the queue. Beyond the
//! overflow a final is given up, counted as lost, and shown to the organizer like finals
//! the archive lost.
//!
//! When a write fails (disk full, a read-only file system, the file removed), captions keep
//! flowing live: the meeting goes on. The finals not written wait in memory, in order, up to
//! [`ARCHIVE_BACKLOG`] of them (beyond that the oldest are given up, counted), and are written
//! with the next batch or every [`RETRY`] when none comes: once the disk has room again the
//! archive holds them all. Meanwhile the organizer's page shows an alarm (the error, how many
//! finals wait), `/healthz` says degraded, `/metrics` counts. While the archive fails, a final
//! a listener has seen is in that memory only: a kill then loses it.
//!
//! A revision of a final (`stream::revise`: the same speech decoded again, whole) comes
//! through the same queue, about half a minute after its final. The writer finds the final
//! by its channel and segment (the engine's number of it) among the last [`REVISABLE`] it numbered, gives the
//! revision that seq, replaces the archived text (only if the final was archived: one sent
//! off the record stays unwritten) and publishes it (`revised`). A revision is dropped when
//! the queue is full, like a partial (the final stays as it was; counted).

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

/// Finals (and switches) that wait behind a full queue: two hours of seven channels at a
/// final every three seconds. Partials are not kept here.
pub const OVERFLOW_FINALS: usize = 20_000;

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
    /// With the engine's segment of the final (what a revision names).
    Final(usize, u64, Final, Option<Box<Final>>),
    Partial(usize, Partial, Option<Partial>),
    /// Off the record (`true`) or back on, and the `meeting` event that says so.
    OffRecord(bool, String),
    /// A final's revised text (seq 0: the writer finds the final by its segment).
    Revised(usize, u64, Final, Option<Box<Final>>),
}

/// Finals per channel a revision can still find (by segment): at a final every two
/// seconds, ten minutes; a revision comes about half a minute after its final.
pub const REVISABLE: usize = 300;

/// A final numbered and sent, as a revision finds it.
struct Sent {
    segment: u64,
    seq: u64,
    wall_ms: u64,
    archived: bool,
}

/// Counters the server reports.
#[derive(Default)]
pub struct PipelineStats {
    pub finals: AtomicU64,
    pub partials: AtomicU64,
    pub partials_dropped: AtomicU64,
    /// Finals that found the queue full and waited in the overflow.
    pub finals_held: AtomicU64,
    /// Finals given up because the overflow was full too (the writer stalled for hours).
    pub finals_lost: AtomicU64,
    pub archive_failures: AtomicU64,
    /// The last archive error, if the last write failed.
    pub archive_error: Mutex<Option<String>>,
    /// Finals waiting for the archive to take them (see [`ARCHIVE_BACKLOG`]).
    pub archive_backlog: AtomicU64,
    /// Finals given up because the backlog was full.
    pub archive_lost: AtomicU64,
    /// Off the record now (switched by the organizer; set by the writer, in order).
    pub off_record: AtomicBool,
    /// Revisions published; dropped at a full queue; that found no final (older than
    /// [`REVISABLE`] finals, or not sent).
    pub revisions: AtomicU64,
    pub revisions_dropped: AtomicU64,
    pub revisions_unmatched: AtomicU64,
}

impl PipelineStats {
    /// Why the archive's last write failed; `None` while it writes.
    pub fn archive_error(&self) -> Option<String> {
        self.archive_error.lock().ok().and_then(|e| e.clone())
    }
}

/// The sending side (cloned into the decoder thread's sink). Never blocks.
#[derive(Clone)]
pub struct PipelineTx {
    tx: SyncSender<Job>,
    /// Jobs behind a full queue, in order (see the module doc). Its lock is held while a
    /// sender decides between the queue and the overflow, and while the writer takes from
    /// the overflow: a job goes to the queue only when the overflow is empty, so everything
    /// in the queue is older than everything in the overflow.
    overflow: Arc<Mutex<VecDeque<Job>>>,
    stats: Arc<PipelineStats>,
}

impl PipelineTx {
    /// Queues a final (protected names withheld) and, if they differ, the words as said
    /// for interpreters (never archived); never waits (see the module doc).
    pub fn final_(&self, channel: usize, segment: u64, f: Final, said: Option<Box<Final>>) {
        self.send(Job::Final(channel, segment, f, said));
    }

    /// Queues the switch off the record (or back on) and the event that announces it, in
    /// order with the finals.
    pub fn off_record(&self, off: bool, meeting_json: String) {
        self.send(Job::OffRecord(off, meeting_json));
    }

    /// Queues a partial, or drops it if the queue is full (or finals wait behind it).
    pub fn partial(&self, channel: usize, p: Partial, said: Option<Partial>) {
        let overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        let sent = overflow.is_empty()
            && match self.tx.try_send(Job::Partial(channel, p, said)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => false,
                // The writer only goes away at shutdown, when nothing is left to deliver to.
                Err(TrySendError::Disconnected(_)) => true,
            };
        if !sent {
            self.stats.partials_dropped.fetch_add(1, Relaxed);
        }
    }

    /// Queues a final's revision, or drops it (counted) if the queue is full or finals wait
    /// behind it: the final stays as it was sent.
    pub fn revised(&self, channel: usize, segment: u64, f: Final, said: Option<Box<Final>>) {
        let overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        let sent = overflow.is_empty()
            && !matches!(
                self.tx.try_send(Job::Revised(channel, segment, f, said)),
                Err(TrySendError::Full(_))
            );
        if !sent {
            self.stats.revisions_dropped.fetch_add(1, Relaxed);
        }
    }

    fn send(&self, job: Job) {
        let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        let job = if overflow.is_empty() {
            match self.tx.try_send(job) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(job)) => job,
            }
        } else {
            job
        };
        if overflow.len() >= OVERFLOW_FINALS {
            self.stats.finals_lost.fetch_add(1, Relaxed);
            tracing::error!("the writer is stalled and its overflow is full: a final is lost");
            return;
        }
        self.stats.finals_held.fetch_add(1, Relaxed);
        overflow.push_back(job);
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
    let overflow = Arc::new(Mutex::new(VecDeque::new()));
    let st = stats.clone();
    let queue = Incoming {
        rx,
        overflow: overflow.clone(),
    };
    let handle = std::thread::Builder::new()
        .name("tolk-writer".into())
        .spawn(move || writer(queue, hub, archive, st))?;
    Ok((
        PipelineTx {
            tx,
            overflow,
            stats: stats.clone(),
        },
        stats,
        handle,
    ))
}

/// The writer's side: the queue, then the overflow.
struct Incoming {
    rx: Receiver<Job>,
    overflow: Arc<Mutex<VecDeque<Job>>>,
}

impl Incoming {
    /// The next job if one waits: the queue's first (older than any in the overflow), else
    /// the overflow's.
    fn try_next(&self) -> Option<Job> {
        if let Ok(j) = self.rx.try_recv() {
            return Some(j);
        }
        let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        // Senders may have filled the queue, and then the overflow, since the look above;
        // under the lock none can, and what the queue holds is older than the overflow.
        // (Taking the overflow's first here, the writer numbered "final 1014" second when
        // the queue filled while it looked away: `a_stalled_disk_…`, 1 run in 20.)
        self.rx.try_recv().ok().or_else(|| overflow.pop_front())
    }

    /// The next job, waiting up to `wait` (forever: `None`); `Err(true)` when every sender
    /// is gone and nothing is left.
    fn next(&self, wait: Option<Duration>) -> Result<Job, bool> {
        if let Some(j) = self.try_next() {
            return Ok(j);
        }
        // Both were empty: the next job comes through the queue.
        match wait {
            None => self.rx.recv().map_err(|_| true),
            Some(d) => self.rx.recv_timeout(d).map_err(|e| match e {
                RecvTimeoutError::Timeout => false,
                RecvTimeoutError::Disconnected => true,
            }),
        }
    }
}

fn writer(
    rx: Incoming,
    hub: Arc<Hub>,
    mut archive: Option<(Archive, String)>,
    stats: Arc<PipelineStats>,
) {
    let mut pending: Vec<Job> = Vec::new();
    let mut store = Unwritten::default();
    let mut sent: BTreeMap<usize, VecDeque<Sent>> = BTreeMap::new();
    loop {
        let first = match pending.pop() {
            Some(j) => j,
            None if store.is_empty() => match rx.next(None) {
                Ok(j) => j,
                Err(_) => break,
            },
            None => match rx.next(Some(RETRY)) {
                Ok(j) => j,
                Err(false) => {
                    store.write(&mut archive, &stats);
                    continue;
                }
                Err(true) => {
                    store.write(&mut archive, &stats);
                    break;
                }
            },
        };
        // A batch ends before a switch off or on the record, which starts the next one.
        let mut batch = vec![first];
        while batch.len() < BATCH && !matches!(batch.last(), Some(Job::OffRecord(..))) {
            match rx.try_next() {
                Some(j @ Job::OffRecord(..)) => {
                    pending.push(j);
                    break;
                }
                Some(j) => batch.push(j),
                None => break,
            }
        }
        let off = stats.off_record.load(Relaxed);
        for job in &mut batch {
            match job {
                Job::Final(ch, segment, f, said) => {
                    hub.assign_seq(*ch, f);
                    if let Some(s) = said {
                        s.seq = f.seq;
                    }
                    if archive.is_some() {
                        store.add(f.clone(), off, &stats);
                    }
                    let recent = sent.entry(*ch).or_default();
                    if recent.len() == REVISABLE {
                        recent.pop_front();
                    }
                    recent.push_back(Sent {
                        segment: *segment,
                        seq: f.seq,
                        wall_ms: f.wall_ms,
                        archived: archive.is_some() && !off,
                    });
                }
                Job::Revised(ch, segment, f, said) => {
                    let found = sent
                        .get(ch)
                        .and_then(|r| r.iter().rev().find(|s| s.segment == *segment));
                    let Some(s) = found else {
                        stats.revisions_unmatched.fetch_add(1, Relaxed);
                        continue;
                    };
                    (f.seq, f.wall_ms) = (s.seq, s.wall_ms);
                    if let Some(x) = said {
                        (x.seq, x.wall_ms) = (s.seq, s.wall_ms);
                    }
                    if s.archived {
                        store.add(f.clone(), false, &stats);
                    }
                }
                _ => {}
            }
        }
        store.write(&mut archive, &stats);
        for job in batch {
            match job {
                Job::Final(ch, _, f, said) => {
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
                // Seq 0: no final found (counted above).
                Job::Revised(ch, _, f, said) if f.seq > 0 => {
                    stats.revisions.fetch_add(1, Relaxed);
                    hub.publish_revised(ch, f, said.map(|s| *s));
                }
                Job::Revised(..) => {}
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
    /// A one-channel ("floor") meeting's writer on the archive at `path` (meeting "m"), and a
    /// listener's receiver.
    fn floor_pipeline(
        path: &std::path::Path,
    ) -> (
        tokio::sync::broadcast::Receiver<Arc<super::super::hub::Published>>,
        PipelineTx,
        Arc<PipelineStats>,
        JoinHandle<()>,
    ) {
        use super::super::wire::ChannelInfo;
        let hub = Arc::new(Hub::new(
            vec![ChannelInfo {
                id: "floor".into(),
                language: "en".into(),
                label: "floor".into(),
                floor: true,
                translates: None,
            }],
            &[1],
            super::super::hub::BROADCAST_CAPACITY,
        ));
        let rx = hub.receiver();
        let archive = Archive::open(path).unwrap();
        let (tx, stats, writer) = start(hub, Some((archive, "m".into()))).unwrap();
        (rx, tx, stats, writer)
    }

    /// The disk stalls (another process holds the archive locked; the writer waits up to its
    /// busy timeout on every try): the decoder thread hands over three times the queue's
    /// worth of finals without waiting, and once the disk is free every one of them is
    /// published and archived, in order.
    #[test]
    fn a_stalled_disk_never_holds_the_decoder_and_loses_no_final() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        let (mut rx, tx, stats, writer) = floor_pipeline(&path);
        // Another process holds the archive locked: the writer's transaction waits.
        let lock = rusqlite::Connection::open(&path).unwrap();
        lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let n = 3 * PIPELINE_QUEUE;
        let (done, handed) = mpsc::channel();
        let decoder = {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..n {
                    tx.final_(
                        0,
                        i as u64,
                        Final::test("floor", 0, &format!("final {i}")),
                        None,
                    );
                    if i % 100 == 0 {
                        let p = Partial {
                            channel: "floor".into(),
                            segment: 1,
                            revision: 1,
                            text: "tentative".into(),
                            start: 0.0,
                            end: 1.0,
                        };
                        tx.partial(0, p, None);
                    }
                }
                done.send(()).unwrap();
            })
        };
        // The writer is held by the lock for 5 s per try: the decoder must be done first.
        assert!(
            handed.recv_timeout(Duration::from_secs(3)).is_ok(),
            "the decoder thread waited for the disk"
        );
        assert!(stats.finals_held.load(Relaxed) > 0, "the overflow was used");
        decoder.join().unwrap();
        lock.execute_batch("COMMIT").unwrap();
        drop(lock);
        let mut texts = Vec::new();
        while texts.len() < n {
            match rx.blocking_recv() {
                Ok(p) if p.seq.is_some() => texts.push(p.json.to_string()),
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        for (i, t) in texts.iter().enumerate() {
            assert!(t.contains(&format!("\"final {i}\"")), "{i}: {t}");
        }
        drop(tx);
        writer.join().unwrap();
        assert_eq!(stats.finals_lost.load(Relaxed), 0);
        let archived = Archive::open(&path)
            .unwrap()
            .finals(Some("m"), "floor")
            .unwrap();
        assert_eq!(
            archived.len(),
            n,
            "every final archived once the disk is free"
        );
    }
    /// A revision finds its final by segment even when two finals share a start (the
    /// policy clamps starts to go forward): it takes that final's seq, replaces its archived
    /// text (and nothing else), and is published as `revised`; one naming no final sent is
    /// counted, not published.
    #[test]
    fn a_revision_replaces_its_final_by_segment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        let (mut rx, tx, stats, writer) = floor_pipeline(&path);
        let at = |text: &str, start: f64| Final {
            start,
            end: start + 1.0,
            ..Final::test("floor", 0, text)
        };
        tx.final_(0, 7, at("ask not", 1.0), None);
        tx.final_(0, 8, at("what you", 1.0), None);
        tx.revised(0, 8, at("what your country", 1.0), None);
        tx.revised(0, 99, at("nowhere", 5.0), None);
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(rx.blocking_recv().unwrap().json.to_string());
        }
        assert!(got[2].contains("\"type\":\"revised\""), "{got:?}");
        assert!(
            got[2].contains("\"seq\":2") && got[2].contains("what your country"),
            "{got:?}"
        );
        drop(tx);
        writer.join().unwrap();
        assert_eq!(stats.revisions.load(Relaxed), 1);
        assert_eq!(stats.revisions_unmatched.load(Relaxed), 1);
        let archived = Archive::open(&path)
            .unwrap()
            .finals(Some("m"), "floor")
            .unwrap();
        let texts: Vec<(u64, &str)> = archived.iter().map(|f| (f.seq, f.text.as_str())).collect();
        assert_eq!(texts, [(1, "ask not"), (2, "what your country")]);
    }

    /// Publish after commit: while the archive's transaction cannot commit (another process
    /// holds the file locked) no listener gets the final; once it commits, they do, and it
    /// is on disk. A writer that published first would fail the first check.
    #[test]
    fn a_final_is_published_only_after_its_transaction_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        let (mut rx, tx, stats, writer) = floor_pipeline(&path);
        // Another process holds the archive locked: the writer's transaction waits.
        let lock = rusqlite::Connection::open(&path).unwrap();
        lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
        tx.final_(0, 0, Final::test("floor", 0, "held until on disk"), None);
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            rx.try_recv().is_err(),
            "a final was published before its transaction committed"
        );
        lock.execute_batch("COMMIT").unwrap();
        drop(lock);
        let p = rx.blocking_recv().unwrap();
        assert!(p.json.contains("held until on disk"));
        let archived = Archive::open(&path)
            .unwrap()
            .finals(Some("m"), "floor")
            .unwrap();
        assert_eq!(archived.len(), 1, "on disk when published");
        assert!(stats.archive_error.lock().unwrap().is_none());
        drop(tx);
        writer.join().unwrap();
    }
}
