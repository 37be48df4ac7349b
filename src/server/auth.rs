//! Who may do what: the attendees' PIN, the interpreters' and the organizer's tokens, a
//! booth's ingest token, and pages of other sites. Wrong tries are limited per address
//! ([`super::limits`]); keys are compared in constant time; addresses are not logged.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::listener::Audience;
use super::net::Peer;
use super::{now_ms, App};

/// New caption connections a minute from one address (not loopback: a local process
/// already has the machine); over it, `429`. A phone reconnecting with backoff opens a few.
pub(super) const JOINS_PER_MINUTE: u32 = 60;

/// Wrong meeting PINs a minute from one address; then every try is `429` until the minute
/// ends (a 4-digit PIN would take over 30 hours to guess from one address).
pub(super) const PIN_TRIES_PER_MINUTE: u32 = 5;
/// Wrong organizer or ingest tokens an address may give in a minute (a token is 16
/// characters or more: at this rate, guessing one takes longer than any meeting).
pub(super) const KEY_TRIES_PER_MINUTE: u32 = 10;

/// A browser's WebSocket from a page of another site (its `Origin` is not this server) is
/// refused: a page elsewhere cannot read the captions or feed a booth through a visitor's
/// browser. Clients that are not browsers send no `Origin` and are not affected.
#[allow(clippy::result_large_err)]
pub(super) fn same_origin(headers: &HeaderMap) -> Result<(), Response> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    tracing::info!(origin, "a cross-origin WebSocket refused");
    Err((
        StatusCode::FORBIDDEN,
        format!("connections from pages of another site ({origin}) are refused\n"),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct PinQuery {
    #[serde(default)]
    pub(super) pin: Option<String>,
    /// The interpreter token (`/ws?interpreter=`): protected names as said.
    #[serde(default)]
    pub(super) interpreter: Option<String>,
}

/// With a meeting PIN: `Err` with the answer for a missing or wrong one, or for an address
/// that tried too many. Only a PIN given counts as a try (pages first ask without one, to
/// learn whether the meeting has one). Addresses are not logged.
#[allow(clippy::result_large_err)]
pub(super) fn check_pin(app: &Audience, ip: IpAddr, given: Option<&str>) -> Result<(), Response> {
    let Some(pin) = &app.pin else {
        return Ok(());
    };
    let now = now_ms();
    if !app.pin_failures.allows(ip, now) {
        return Err(too_many_wrong("PINs"));
    }
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), pin.as_bytes())) {
        return Ok(());
    }
    if given.is_some() {
        app.pin_failures.hit(ip, now);
        tracing::info!("a wrong meeting PIN");
    }
    Err((
        StatusCode::UNAUTHORIZED,
        if given.is_some() {
            "wrong meeting PIN\n"
        } else {
            "this meeting needs its PIN (?pin=)\n"
        },
    )
        .into_response())
}

/// The answer to an address over its wrong tries this minute (PINs and interpreter tokens
/// count together).
pub(super) fn too_many_wrong(what: &str) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many wrong {what} from this address: wait a minute\n"),
    )
        .into_response()
}

/// Whether a listener is an interpreter: no token given, no; the right one, yes; a wrong
/// one (or one where the meeting has none) is refused, and counts as a wrong PIN does.
#[allow(clippy::result_large_err)]
pub(super) fn check_interpreter(
    app: &Audience,
    ip: IpAddr,
    given: Option<&str>,
) -> Result<bool, Response> {
    let Some(given) = given else {
        return Ok(false);
    };
    let now = now_ms();
    if !app.pin_failures.allows(ip, now) {
        return Err(too_many_wrong("tokens"));
    }
    match &app.interpreter_token {
        Some(t) if constant_time_eq(given.as_bytes(), t.as_bytes()) => Ok(true),
        _ => {
            app.pin_failures.hit(ip, now);
            tracing::info!("a wrong interpreter token");
            Err((StatusCode::UNAUTHORIZED, "wrong interpreter token\n").into_response())
        }
    }
}

/// The organizer, proven by the organizer's token (`Authorization: Bearer TOKEN` or
/// `?token=`, see [`check_key`]): a handler that takes one runs only for the organizer; any
/// other request is answered `401` (or `429` after too many wrong tokens from its address).
pub(super) struct Organizer;

impl FromRequestParts<Arc<App>> for Organizer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        #[derive(serde::Deserialize)]
        struct TokenOnly {
            #[serde(default)]
            token: Option<String>,
        }
        let ip = parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0 .0.ip());
        let token = Query::<TokenOnly>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|q| q.0.token);
        match check_key(
            app,
            ip,
            &parts.headers,
            token.as_deref(),
            &app.organizer_token,
        ) {
            Key::Right => Ok(Organizer),
            Key::Wrong => Err((
                StatusCode::UNAUTHORIZED,
                format!(
                    "{} needs the organizer token (Authorization: Bearer TOKEN)\n",
                    parts.uri.path()
                ),
            )
                .into_response()),
            Key::TooMany => Err(too_many_wrong("tokens")),
        }
    }
}

/// What a request's key (the organizer's or a channel's ingest token) turned out to be.
#[derive(Debug, PartialEq)]
pub(super) enum Key {
    Right,
    Wrong,
    /// The address gave [`KEY_TRIES_PER_MINUTE`] wrong keys this minute: even the right one
    /// waits.
    TooMany,
}

/// Whether the request carries `token`, in `Authorization: Bearer` or `?token=`. A wrong or
/// missing key counts against the address — every address, loopback included: a local user
/// is not the organizer. Addresses are not logged.
pub(super) fn check_key(
    app: &App,
    ip: IpAddr,
    headers: &HeaderMap,
    query: Option<&str>,
    token: &str,
) -> Key {
    let now = now_ms();
    if !app.key_failures.allows(ip, now) {
        return Key::TooMany;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let given = bearer.or(query).unwrap_or("");
    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
        return Key::Right;
    }
    app.key_failures.hit(ip, now);
    Key::Wrong
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
