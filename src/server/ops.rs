//! For whoever runs the machine: `/healthz` (is it working?) and `/metrics` (Prometheus).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::status::{channel_states, engine_state, reduced};
use super::App;

pub(super) async fn healthz(State(app): State<Arc<App>>) -> Response {
    let (running, engine) = engine_state(&app);
    let archive = app.pipeline.archive_error();
    let ok = running && archive.is_none();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "degraded" },
        "engine": engine,
        "archive": match (&app.archive_path, archive) {
            (None, _) => "off the record".to_string(),
            (Some(_), Some(e)) => e,
            (Some(_), None) => "ok".to_string(),
        },
        "archive_waiting": app.pipeline.archive_backlog.load(Relaxed),
        "channels": channel_states(&app).iter().zip(&app.hub.channels).map(|(s, c)| {
            serde_json::json!({"id": c.id, "state": s.state, "mode": s.mode, "lag": s.lag, "source": s.source})
        }).collect::<Vec<_>>(),
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

/// Prometheus text format.
pub(super) async fn metrics(State(app): State<Arc<App>>) -> Response {
    use std::fmt::Write;
    let mut s = String::new();
    let stats = app.engine.stats();
    let cluster = app.room.as_ref().map(|r| r.status.channels());
    let p = &app.pipeline;
    let _ = writeln!(s, "# HELP tolk_connections WebSocket connections open.\n# TYPE tolk_connections gauge\ntolk_connections {}", app.audience.connections.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_listener_resyncs_total Listeners that fell a whole broadcast queue behind and were sent fresh snapshots.\n# TYPE tolk_listener_resyncs_total counter\ntolk_listener_resyncs_total {}", app.audience.resyncs.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_listeners_too_slow_total Listeners disconnected because their socket took no message for 10 s.\n# TYPE tolk_listeners_too_slow_total counter\ntolk_listeners_too_slow_total {}", app.audience.too_slow.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_tasks Tasks alive on the server's async runtime (one per connection and a few of its own).\n# TYPE tolk_tasks gauge\ntolk_tasks {}", tokio::runtime::Handle::current().metrics().num_alive_tasks());
    let _ = writeln!(
        s,
        "# HELP tolk_listeners Listeners subscribed to a channel.\n# TYPE tolk_listeners gauge"
    );
    for (c, n) in app.hub.channels.iter().zip(&app.audience.listening) {
        let _ = writeln!(
            s,
            "tolk_listeners{{channel=\"{}\"}} {}",
            c.id,
            n.load(Relaxed)
        );
    }
    let _ = writeln!(s, "# HELP tolk_finals_total Finals published.\n# TYPE tolk_finals_total counter\ntolk_finals_total {}", p.finals.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_partials_total Partials published.\n# TYPE tolk_partials_total counter\ntolk_partials_total {}", p.partials.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_partials_dropped_total Partials dropped because the writer queue was full.\n# TYPE tolk_partials_dropped_total counter\ntolk_partials_dropped_total {}", p.partials_dropped.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_finals_held_total Finals that found the writer queue full and waited behind it (the decoder did not).\n# TYPE tolk_finals_held_total counter\ntolk_finals_held_total {}", p.finals_held.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_finals_lost_total Finals given up because the writer stalled and its overflow was full.\n# TYPE tolk_finals_lost_total counter\ntolk_finals_lost_total {}", p.finals_lost.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_archive_failures_total Archive writes that failed.\n# TYPE tolk_archive_failures_total counter\ntolk_archive_failures_total {}", p.archive_failures.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_archive_waiting Finals waiting in memory for a failing archive.\n# TYPE tolk_archive_waiting gauge\ntolk_archive_waiting {}", p.archive_backlog.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_archive_lost_total Finals given up because the archive failed too long.\n# TYPE tolk_archive_lost_total counter\ntolk_archive_lost_total {}", p.archive_lost.load(Relaxed));
    let per = |s: &mut String, name: &str, help: &str, kind: &str, f: &dyn Fn(usize) -> f64| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (i, c) in app.hub.channels.iter().enumerate() {
            let _ = writeln!(s, "{name}{{channel=\"{}\"}} {}", c.id, f(i));
        }
    };
    per(
        &mut s,
        "tolk_lag_seconds",
        "How far transcription is behind the audio.",
        "gauge",
        &|i| stats.get(i).map(|x| x.lag).unwrap_or(0.0),
    );
    per(
        &mut s,
        "tolk_decode_step_seconds",
        "Seconds of new audio between a channel's decodes: 1 when captioned fully, wider when the machine is busy (the reduced mode).",
        "gauge",
        &|i| stats.get(i).map(|x| (x.step * 10.0).round() / 10.0).unwrap_or(0.0),
    );
    per(
        &mut s,
        "tolk_channel_reduced",
        "1 while a channel is captioned in the reduced mode (decoded in pieces of a few seconds, without partials, the machine being busy), else 0.",
        "gauge",
        &|i| f64::from(u8::from(stats.get(i).is_some_and(reduced))),
    );
    per(
        &mut s,
        "tolk_asr_seconds_total",
        "Seconds whisper.cpp spent decoding (wall time of the decoder thread, all its threads).",
        "counter",
        &|i| stats.get(i).map(|x| x.decode_secs).unwrap_or(0.0),
    );
    per(
        &mut s,
        "tolk_audio_seconds_total",
        "Seconds of audio received.",
        "counter",
        &|i| stats.get(i).map(|x| x.audio_secs).unwrap_or(0.0),
    );
    per(
        &mut s,
        "tolk_audio_dropped_seconds_total",
        "Seconds of audio dropped because the channel's inbox was full (with a cluster: not sent to NATS, or never received by a worker).",
        "counter",
        &|i| match cluster.as_ref().and_then(|c| c.get(i)) {
            Some(v) => v.audio_dropped_secs + v.missing_secs,
            None => stats.get(i).map(|x| x.audio_lost_secs).unwrap_or(0.0),
        },
    );
    per(
        &mut s,
        "tolk_speech_untranscribed_seconds_total",
        "Seconds of speech given up untranscribed (every decode of it failed, or recognition fell too far behind or restarted).",
        "counter",
        &|i| match cluster.as_ref().and_then(|c| c.get(i)) {
            Some(v) => v.untranscribed_secs,
            None => stats.get(i).map(|x| x.untranscribed_secs).unwrap_or(0.0),
        },
    );
    per(
        &mut s,
        "tolk_revisions_total",
        "Chunks of a channel's finals revised by a decode of the whole passage (revised events follow).",
        "counter",
        &|i| stats.get(i).map_or(0.0, |x| x.revisions as f64),
    );
    per(
        &mut s,
        "tolk_revisions_refused_total",
        "Revisions not used: they read worse than the stream (far fewer words, a loop), or the decode failed.",
        "counter",
        &|i| stats.get(i).map_or(0.0, |x| x.revisions_refused as f64),
    );
    per(
        &mut s,
        "tolk_revisions_given_up_total",
        "Chunks of finals not revised: no idle core in time (the finals stay as sent).",
        "counter",
        &|i| stats.get(i).map_or(0.0, |x| x.revisions_given_up as f64),
    );
    let _ = writeln!(s, "# HELP tolk_revised_finals_total Finals replaced by their revision (archive, snapshots, listeners).\n# TYPE tolk_revised_finals_total counter\ntolk_revised_finals_total {}", p.revisions.load(Relaxed));
    let _ = writeln!(s, "# HELP tolk_revised_finals_dropped_total Final revisions dropped: the writer queue was full, or the final was no longer found.\n# TYPE tolk_revised_finals_dropped_total counter\ntolk_revised_finals_dropped_total {}", p.revisions_dropped.load(Relaxed) + p.revisions_unmatched.load(Relaxed));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s).into_response()
}
