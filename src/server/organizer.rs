//! The organizer's endpoints (each needs the organizer's token): the meeting's status, the
//! QR code, going off the record, stopping a channel, exports; and the attendees' own
//! transcript download, which shares the export.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::{check_pin, Organizer};
use super::net::Peer;
use super::status::{channel_states, engine_state};
use super::{export, pipeline, App};

/// `GET /api/organizer` (organizer): everything the organizer's page shows — the meeting,
/// each channel's state, lag, source, listeners and audio level, the engine, the archive,
/// the glossary.
pub(super) async fn organizer_status(_: Organizer, State(app): State<Arc<App>>) -> Response {
    let stats = app.engine.stats();
    let cluster = app.room.as_ref().map(|r| r.status.channels());
    let archive = app.pipeline.archive_error();
    let channels: Vec<serde_json::Value> = channel_states(&app)
        .into_iter()
        .zip(&app.hub.channels)
        .enumerate()
        .map(|(i, (status, c))| {
            let s = stats.get(i).cloned().unwrap_or_default();
            serde_json::json!({
                "id": c.id,
                "label": c.label,
                "language": c.language,
                "state": status.state,
                "mode": status.mode,
                // Seconds of new audio between decodes (1 in full mode; wider when reduced).
                "step": (s.step * 10.0).round() / 10.0,
                "lag": (status.lag * 10.0).round() / 10.0,
                "source": status.source,
                "listeners": app.audience.listening.get(i).map(|l| l.load(Relaxed)).unwrap_or(0),
                "level_db": (s.level_db * 10.0).round() / 10.0,
                "audio_secs": s.audio_secs.round(),
                "audio_lost_secs": s.audio_lost_secs,
                "untranscribed_secs": (cluster.as_ref().and_then(|c| c.get(i)).map_or(s.untranscribed_secs, |v| v.untranscribed_secs) * 10.0).round() / 10.0,
                "restarts": s.restarts,
                // The record revised (`stream::revise`): chunks revised, not used, given up.
                "revisions": s.revisions,
                "revisions_refused": s.revisions_refused,
                "revisions_given_up": s.revisions_given_up,
                "finals_lost": s.finals_lost,
                "last_fault": s.last_fault.as_ref().map(|f| f.0.clone()),
                "last_seq": app.hub.last_seq(i),
                // With a [cluster]: the worker that decodes it, and how often it changed.
                "worker": cluster.as_ref().and_then(|c| c.get(i)).and_then(|v| v.worker.clone()),
                "handovers": cluster.as_ref().and_then(|c| c.get(i)).map(|v| v.handovers),
                "audio_unsent_secs": cluster.as_ref().and_then(|c| c.get(i)).map(|v| (v.audio_dropped_secs * 10.0).round() / 10.0),
                "audio_missing_secs": cluster.as_ref().and_then(|c| c.get(i)).map(|v| (v.missing_secs * 10.0).round() / 10.0),
            })
        })
        .collect();
    let (running, engine) = engine_state(&app);
    let body = serde_json::json!({
        "meeting": app.meeting(None),
        "engine": engine,
        // An alarm for the organizer: no speech is captioned while recognition is down.
        "recognition_alarm": (!running).then(|| format!(
            "Recognition is {engine}. No speech is being captioned on any channel until it runs again; listeners see \"captions incomplete\"."
        )),
        "archive": match (&app.archive_path, &archive) {
            (None, _) => "none: the meeting was started off the record".to_string(),
            (Some(_), Some(e)) => format!("failing: {e}"),
            (Some(p), None) => format!(
                "ok ({}{})",
                p.display(),
                if app.archive_sealed { ", encrypted" } else { "" }
            ),
        },
        // An alarm for the organizer: the archive fails, captions go on, finals wait.
        "archive_alarm": archive.map(|e| {
            let waiting = app.pipeline.archive_backlog.load(Relaxed);
            let lost = app.pipeline.archive_lost.load(Relaxed);
            let mut a = format!(
                "The archive cannot be written ({e}). Captions go on live; {waiting} final(s) wait in memory and will be written when it can be (free space, or make it writable). Do not stop tolk now: what waits would be lost."
            );
            if lost > 0 {
                a.push_str(&format!(" {lost} final(s) were given up (the memory held {})." , pipeline::ARCHIVE_BACKLOG));
            }
            a
        }).or_else(|| {
            let lost = app.pipeline.finals_lost.load(Relaxed);
            (lost > 0).then(|| format!(
                "{lost} final(s) were lost: the archive's disk stalled so long that {} finals waited for it. Check the disk.",
                pipeline::OVERFLOW_FINALS
            ))
        }),
        "archive_waiting": app.pipeline.archive_backlog.load(Relaxed),
        "archive_lost": app.pipeline.archive_lost.load(Relaxed),
        "glossary": app.glossary_info,
        // The session's topic now (`POST /api/topic`).
        "topic": app.topic.current(),
        // From a decode timed at start: how many channels this machine can caption.
        "capacity": app.capacity,
        "cluster": app.room.as_ref().map(|r| r.status.nats.clone()),
        // With a [cluster]: the edges serving listeners elsewhere, as they last said.
        "edges": app.room.as_ref().map(|r| r.status.edges()),
        // The organizer hands it to the interpreters (their page's link).
        "interpreter_key": app.audience.interpreter_token,
        "connections": app.audience.connections.load(Relaxed),
        "channels": channels,
    });
    axum::Json(body).into_response()
}

#[derive(serde::Deserialize)]
pub(super) struct QrQuery {
    text: String,
}

/// `GET /api/qr.svg?text=URL` (organizer): a QR code of the attendee address, drawn here (a
/// page may load nothing from elsewhere).
pub(super) async fn qr_svg(_: Organizer, Query(q): Query<QrQuery>) -> Response {
    match qrcode::QrCode::new(q.text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(240, 240)
                .build();
            ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("no QR code for that text: {e}\n"),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
pub(super) struct RecordQuery {
    /// `true`: off the record from now on; `false`: back on.
    off: bool,
}

/// `POST /api/off-record?off=true|false` (organizer): finals from now on are not stored
/// (captions still flow), or are again. Every listener gets a `meeting` event saying so,
/// in order with the finals (see `pipeline`).
pub(super) async fn switch_record(
    _: Organizer,
    State(app): State<Arc<App>>,
    Query(q): Query<RecordQuery>,
) -> Response {
    if app.archive_path.is_none() {
        return (
            StatusCode::CONFLICT,
            "this meeting was started off the record: it has no archive to go back on\n",
        )
            .into_response();
    }
    let json = app.meeting(Some(q.off)).to_json();
    let a = app.clone();
    // The writer's queue may be full for a moment (a final waits for room the same way).
    let queued = tokio::task::spawn_blocking(move || a.writer.off_record(q.off, json)).await;
    if queued.is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the switch failed\n").into_response();
    }
    tracing::info!(off_record = q.off, "off-record switch requested");
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "off_record": q.off }).to_string(),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
pub(super) struct ChannelSwitchQuery {
    stopped: bool,
}

/// The organizer stops a channel (its audio is no longer transcribed; listeners see
/// `stopped`) or starts it again.
pub(super) async fn switch_channel(
    _: Organizer,
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    Query(q): Query<ChannelSwitchQuery>,
) -> Response {
    let Some(i) = app.hub.index(&channel) else {
        return (StatusCode::NOT_FOUND, "no such channel in this meeting\n").into_response();
    };
    app.stopped[i].store(q.stopped, Relaxed);
    tracing::info!(
        channel,
        stopped = q.stopped,
        "channel switched by the organizer"
    );
    // Listeners hear of it now, not at the next status tick.
    if let Some(status) = channel_states(&app).into_iter().nth(i) {
        app.hub.publish_status(i, status);
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "channel": channel, "stopped": q.stopped }).to_string(),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
pub(super) struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    /// A second channel for the side-by-side export.
    #[serde(default)]
    with: Option<String>,
    /// The meeting PIN (attendees' downloads).
    #[serde(default)]
    pin: Option<String>,
}

pub(super) async fn export_channel(
    _: Organizer,
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Response {
    export(&app, channel, q.format.as_deref().unwrap_or("vtt"), q.with).await
}

/// An attendee downloads their channel's transcript, when the meeting allows it
/// (`downloads = true`) and is on the record; plain text unless `format` says otherwise.
pub(super) async fn attendee_transcript(
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    Query(q): Query<ExportQuery>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
) -> Response {
    if let Err(refused) = check_pin(&app.audience, peer.ip(), q.pin.as_deref()) {
        return refused;
    }
    if !app.downloads || app.off_record(None) {
        return (
            StatusCode::FORBIDDEN,
            "this meeting does not let attendees download transcripts (the organizer can allow \
             it with `downloads = true`; never while off the record)\n",
        )
            .into_response();
    }
    let format = q.format.as_deref().unwrap_or("txt");
    let name = format!("{}-{channel}.{format}", app.meeting_id);
    let mut response = export(&app, channel, format, None).await;
    if response.status().is_success() {
        if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, v);
        }
    }
    response
}

/// A channel's archived finals in `format`, or beside those of channel `with`.
async fn export(app: &App, channel: String, format: &str, with: Option<String>) -> Response {
    let Some(path) = app.archive_path.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "this meeting is off the record: nothing is archived\n",
        )
            .into_response();
    };
    let format = match format.parse::<export::Format>() {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let known = |c: &str| app.hub.index(c).is_some();
    if !known(&channel) || with.as_deref().is_some_and(|w| !known(w)) {
        return (StatusCode::NOT_FOUND, "no such channel in this meeting\n").into_response();
    }
    let meeting = app.meeting_id.clone();
    let side_by_side = with.is_some();
    let result = tokio::task::spawn_blocking(move || {
        export::from_archive(&path, &meeting, &channel, with.as_deref(), format)
    })
    .await;
    match result {
        Ok(Ok(body)) => {
            let ct = if side_by_side {
                "text/markdown; charset=utf-8"
            } else {
                format.content_type()
            };
            ([(header::CONTENT_TYPE, ct)], body).into_response()
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("export failed: {e}\n"),
        )
            .into_response(),
    }
}
