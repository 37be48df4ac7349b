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
//! late rather than lost. If a write fails (disk full, file removed), the error is logged and
//! reported in `/metrics` and `/healthz`, and captions keep flowing live: the meeting goes on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::archive::Archive;
use super::hub::Hub;
use super::wire::{Final, Partial};

/// Events waiting for the writer thread.
pub const PIPELINE_QUEUE: usize = 1024;

/// Most events published per archive transaction.
const BATCH: usize = 256;

enum Job {
    Final(usize, Final),
    Partial(usize, Partial),
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
    /// Queues a final; waits for room if the queue is full (see the module doc).
    pub fn final_(&self, channel: usize, f: Final) {
        // The writer only goes away at shutdown, when nothing is left to deliver to.
        let _ = self.tx.send(Job::Final(channel, f));
    }

    /// Queues the switch off the record (or back on) and the event that announces it; waits
    /// for room like a final.
    pub fn off_record(&self, off: bool, meeting_json: String) {
        let _ = self.tx.send(Job::OffRecord(off, meeting_json));
    }

    /// Queues a partial, or drops it if the queue is full.
    pub fn partial(&self, channel: usize, p: Partial) {
        match self.tx.try_send(Job::Partial(channel, p)) {
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
    while let Some(first) = pending.pop().or_else(|| rx.recv().ok()) {
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
        let mut finals: Vec<Final> = Vec::new();
        for job in &mut batch {
            if let Job::Final(ch, f) = job {
                hub.assign_seq(*ch, f);
                finals.push(f.clone());
            }
        }
        if let (Some((a, meeting)), false) = (&mut archive, finals.is_empty()) {
            let written = if off {
                a.note_seqs(meeting, &finals)
            } else {
                a.append(meeting, &finals)
            };
            match written {
                Ok(()) => {
                    if let Ok(mut e) = stats.archive_error.lock() {
                        *e = None;
                    }
                }
                Err(e) => {
                    stats.archive_failures.fetch_add(1, Relaxed);
                    tracing::error!(error = %e, finals = finals.len(), "archive write failed; captions still go out live");
                    if let Ok(mut slot) = stats.archive_error.lock() {
                        *slot = Some(e.to_string());
                    }
                }
            }
        }
        for job in batch {
            match job {
                Job::Final(ch, f) => {
                    stats.finals.fetch_add(1, Relaxed);
                    hub.publish_final(ch, f);
                }
                Job::Partial(ch, p) => {
                    stats.partials.fetch_add(1, Relaxed);
                    hub.publish_partial(ch, p);
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
