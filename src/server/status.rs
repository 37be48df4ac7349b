//! Each channel's state, as listeners, the organizer and `/healthz` see it: live, silent,
//! lagging, incomplete, stopped or ended, in the full or the reduced mode; and the
//! recognition engine's, in a few words.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use super::hub::ChannelStatus;
use super::wire::{ChannelMode, ChannelState};
use super::{now_ms, App};

/// A channel whose transcription is further behind than this (seconds) is `lagging`.
pub const LAGGING_AFTER: f64 = 3.0;

/// A channel with no caption event for this long (seconds) is `silent`.
const SILENT_AFTER_MS: u64 = 5_000;
/// A channel that gave up speech untranscribed (or dropped audio) says "captions incomplete"
/// for this long afterwards.
const INCOMPLETE_FOR: std::time::Duration = std::time::Duration::from_secs(30);
/// A channel decoded less often than every second because the machine is busy is `reduced`
/// for this long afterwards (its step goes up and down with the load; the mode said to
/// listeners should not flicker).
const REDUCED_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// How often statuses are sent (when they change).
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Whether a channel is in the reduced mode now (or was, within [`REDUCED_FOR`]).
pub(super) fn reduced(s: &crate::stream::scheduler::ChannelStats) -> bool {
    s.reduced_last.is_some_and(|t| t.elapsed() < REDUCED_FOR)
}

/// Each channel's state, from the engine's numbers and the source.
pub(super) fn channel_states(app: &App) -> Vec<ChannelStatus> {
    let stats = app.engine.stats();
    let health = app.engine.health();
    let sources = app.sources.lock().ok();
    let now = now_ms();
    let cluster = app.room.as_ref().map(|r| r.status.channels());
    (0..app.hub.channels.len())
        .map(|i| {
            let view = cluster.as_ref().and_then(|c| c.get(i));
            let lag = match view {
                Some(v) => v.lag,
                None => stats.get(i).map(|s| s.lag).unwrap_or(0.0),
            };
            let (ended, described) = sources
                .as_ref()
                .and_then(|s| s.get(i))
                .map(|s| (s.ended.load(Relaxed), s.describe()))
                .unwrap_or((true, "none".into()));
            // Decoded elsewhere: done when its audio is (the worker's last final follows).
            let done = match &cluster {
                Some(_) => true,
                None => stats.get(i).map(|s| s.done).unwrap_or(false),
            };
            let reduced = stats.get(i).is_some_and(reduced);
            let mode = if reduced {
                ChannelMode::Reduced
            } else {
                ChannelMode::Full
            };
            // A channel not being captioned has no mode but the default.
            let status = |state: ChannelState, source: String| ChannelStatus {
                state,
                mode: match state {
                    ChannelState::Stopped | ChannelState::Ended => ChannelMode::Full,
                    _ => mode,
                },
                lag,
                source,
            };
            let mut described = described;
            if let Some(v) = view {
                let here = app.room.as_ref().and_then(|r| r.status.here.as_deref());
                match &v.worker {
                    Some(w) if Some(w.as_str()) == here => {
                        described.push_str(&format!("; decoded by this server ({w})"))
                    }
                    Some(w) => described.push_str(&format!("; decoded by worker {w}")),
                    None => described.push_str("; waiting for a worker (`tolk worker`) to take it"),
                }
                if v.handovers > 0 {
                    described
                        .push_str(&format!("; handed over {}× to another worker", v.handovers));
                }
                if v.untranscribed_secs >= 0.05 {
                    described.push_str(&format!(
                        "; {:.1} s of speech could not be transcribed",
                        v.untranscribed_secs
                    ));
                }
                if v.missing_secs >= 0.05 {
                    described.push_str(&format!(
                        "; {:.1} s of audio never reached a worker (NATS out of reach)",
                        v.missing_secs
                    ));
                }
                if v.audio_dropped_secs >= 0.05 {
                    described.push_str(&format!(
                        "; {:.1} s of audio could not be sent to the workers",
                        v.audio_dropped_secs
                    ));
                }
            }
            let unserved = view.is_some_and(|v| {
                (v.worker.is_none() && !ended)
                    || v.incomplete_last
                        .is_some_and(|t| t.elapsed() < INCOMPLETE_FOR)
            });
            if let Some(s) = stats.get(i) {
                if s.restarts > 0 {
                    described.push_str(&format!(
                        "; recognition restarted {}× after a fault",
                        s.restarts
                    ));
                }
                if s.finals_lost > 0 {
                    described.push_str(&format!(
                        "; {} caption(s) lost to a fault in delivery",
                        s.finals_lost
                    ));
                }
                if reduced {
                    described.push_str(
                        "; decoded in pieces (at breaths, every few seconds), without partials: \
                         the machine is busy",
                    );
                }
                if s.untranscribed_secs >= 0.05 {
                    described.push_str(&format!(
                        "; {:.1} s of speech could not be transcribed",
                        s.untranscribed_secs
                    ));
                }
                if let Some((fault, _)) = &s.last_fault {
                    described.push_str(&format!(" (last fault: {fault})"));
                }
            }
            let gave_up_lately = stats
                .get(i)
                .and_then(|s| s.untranscribed_last)
                .is_some_and(|t| t.elapsed() < INCOMPLETE_FOR);
            let state = if let Some(why) = app.engine.stopped() {
                return status(ChannelState::Ended, format!("engine stopped: {why}"));
            } else if let Some(why) = &health.down {
                return status(
                    ChannelState::Incomplete,
                    format!("recognition is down ({why}): restarting; {described}"),
                );
            } else if app.stopped[i].load(Relaxed) {
                return status(ChannelState::Stopped, "stopped by the organizer".into());
            } else if ended && done {
                ChannelState::Ended
            } else if gave_up_lately || unserved {
                ChannelState::Incomplete
            } else if lag > LAGGING_AFTER {
                ChannelState::Lagging
            } else if now.saturating_sub(app.last_event[i].load(Relaxed)) > SILENT_AFTER_MS {
                ChannelState::Silent
            } else {
                ChannelState::Live
            };
            status(state, described)
        })
        .collect()
}

/// Publishes each channel's state every [`STATUS_EVERY`] (the hub sends only changes).
pub(super) async fn status_loop(app: Arc<App>) {
    let mut tick = tokio::time::interval(STATUS_EVERY);
    loop {
        tick.tick().await;
        for (i, status) in channel_states(&app).into_iter().enumerate() {
            app.hub.publish_status(i, status);
        }
    }
}

/// The recognition engine in a few words: "running", "running (restarted 1× after …)",
/// "down (…)", "stopped (…)"; and whether it is running now.
pub(super) fn engine_state(app: &App) -> (bool, String) {
    let h = app.engine.health();
    if let Some(why) = app.engine.stopped() {
        return (false, format!("stopped ({why})"));
    }
    if let Some(why) = h.down {
        return (false, format!("down ({why}): restarting"));
    }
    match (h.thread_restarts, h.last_thread_fault) {
        (0, _) => (true, "running".into()),
        (n, fault) => (
            true,
            format!(
                "running (restarted {n}× after a fault; last: {})",
                fault.unwrap_or_default()
            ),
        ),
    }
}
