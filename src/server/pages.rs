//! The pages, embedded in the binary (`web/`): no build step, no external resource.
//!
//! Every page goes out with headers that keep it to itself and leave no trace: a content
//! security policy that allows only this server (no inline script, no framing), no
//! referrer, no caching.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("../../web/index.html");
const INTERPRETER_HTML: &str = include_str!("../../web/interpreter.html");
const COMMON_JS: &str = include_str!("../../web/common.js");
const APP_JS: &str = include_str!("../../web/app.js");
const INTERPRETER_JS: &str = include_str!("../../web/interpreter.js");
const ORGANIZER_HTML: &str = include_str!("../../web/organizer.html");
const ORGANIZER_JS: &str = include_str!("../../web/organizer.js");
const BOOTH_HTML: &str = include_str!("../../web/booth.html");
const BOOTH_JS: &str = include_str!("../../web/booth.js");
const STYLE_CSS: &str = include_str!("../../web/style.css");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Only this server: its pages, its script, its styles, its WebSocket.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Every response, not only the pages: not cached, not sniffed, no referrer, not framed
/// (headers a handler set already are kept).
pub async fn private(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.entry(name)
            .or_insert(axum::http::HeaderValue::from_static(value));
    }
    response
}

/// `GET /`: the attendee page.
pub async fn index() -> Response {
    page(HTML, INDEX_HTML)
}

/// `GET /interpreter`: the interpreter's desk.
pub async fn interpreter() -> Response {
    page(HTML, INTERPRETER_HTML)
}

/// `GET /organizer`: the organizer's page (its data needs the token).
pub async fn organizer() -> Response {
    page(HTML, ORGANIZER_HTML)
}

pub async fn organizer_js() -> Response {
    page(JS, ORGANIZER_JS)
}

/// `GET /booth`: a remote interpreter's microphone to a network channel.
pub async fn booth() -> Response {
    page(HTML, BOOTH_HTML)
}

pub async fn booth_js() -> Response {
    page(JS, BOOTH_JS)
}

pub async fn common_js() -> Response {
    page(JS, COMMON_JS)
}

pub async fn app_js() -> Response {
    page(JS, APP_JS)
}

pub async fn interpreter_js() -> Response {
    page(JS, INTERPRETER_JS)
}

pub async fn style_css() -> Response {
    page("text/css; charset=utf-8", STYLE_CSS)
}
