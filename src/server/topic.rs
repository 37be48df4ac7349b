//! The session's topic while the meeting runs: a meeting has sessions, each with its own
//! names and terms, and the organizer lists the next one's (`POST /api/topic`, the
//! organizer's page) without restarting anything. Each channel's prompts carry them, in the
//! channel's language ([`prompt_terms`]), from its next decode on; an empty topic goes back
//! to what the meeting file says without one (`bias`, or nothing).
//!
//! The terms are the organizer's words: they may hold names, so they are never logged
//! (counts only) and are shown only on the organizer's endpoints (with a `[cluster]`, the
//! workers get them as prompt terms in the channels' offers, as at start). A topic set here
//! lasts until the next one or the end of the process; a restart starts from the meeting
//! file's.

use std::sync::{Arc, Mutex};

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::glossary::Glossary;
use crate::stream::decoder::PROMPT_TOKENS;
use crate::stream::scheduler::Channel;
use crate::transcribe::Model;

use super::auth::Organizer;
use super::config::ChannelConfig;
use super::App;

/// At most this many terms in a topic: a few names and terms the session will say (a list
/// padded with terms never said made recognition worse, benches/README.md, "A session's
/// topic"); the prompt holds about 30 short terms anyway.
pub const MAX_TOPIC_TERMS: usize = 40;

/// At most this many characters in one term (the glossary's longest names are about 60).
pub const MAX_TERM_CHARS: usize = 80;

/// Why a topic was refused. Terms are named by their place in the list, never quoted: the
/// message may reach a log.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TopicError {
    #[error("a topic lists at most {MAX_TOPIC_TERMS} terms (the names and terms the session will say); this one has {0}")]
    TooMany(usize),
    #[error("topic term {0} is empty")]
    Empty(usize),
    #[error("topic term {index} has {chars} characters; at most {MAX_TERM_CHARS}")]
    TooLong { index: usize, chars: usize },
    #[error("topic term {0} holds a control character (a line break, a tab…): one term per entry")]
    Control(usize),
}

/// A topic as the organizer wrote it, checked: each term trimmed, the same term listed twice
/// kept once (first place). Terms are numbered from 1 in errors.
pub fn check(terms: &[String]) -> Result<Vec<String>, TopicError> {
    if terms.len() > MAX_TOPIC_TERMS {
        return Err(TopicError::TooMany(terms.len()));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, t) in terms.iter().enumerate() {
        let index = i + 1;
        let t = t.trim();
        if t.is_empty() {
            return Err(TopicError::Empty(index));
        }
        if t.chars().any(char::is_control) {
            return Err(TopicError::Control(index));
        }
        let chars = t.chars().count();
        if chars > MAX_TERM_CHARS {
            return Err(TopicError::TooLong { index, chars });
        }
        if !out.iter().any(|o| o.to_lowercase() == t.to_lowercase()) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// The terms a channel's prompts start with: the session's `topic` in the channel's language
/// ([`Glossary::topic`]), or (`bias`) the glossary's general list. None for a translation
/// (Whisper then writes the names it is primed with, "SWAN, AMMAR", over speech it is
/// translating) or a channel whose language is detected.
pub(super) fn prompt_terms(
    topic: &[String],
    bias: bool,
    c: &ChannelConfig,
    translate: bool,
    glossary: Option<&Glossary>,
    tokens: &dyn Fn(&str) -> usize,
) -> Vec<String> {
    if c.language == "auto" || translate {
        return Vec::new();
    }
    match glossary {
        _ if topic.is_empty() && !bias => Vec::new(),
        Some(g) if !topic.is_empty() => g.topic(topic, &c.language),
        None => topic.to_vec(),
        Some(g) => g.bias(&c.language, PROMPT_TOKENS / 2, tokens),
    }
}

/// A channel of the meeting, as the topic reaches it.
pub(super) struct Primed {
    pub config: ChannelConfig,
    pub translate: bool,
    /// The engine's channel when this process decodes it; `None` with a `[cluster]` (the
    /// room offers the channel again with the new terms, [`crate::cluster::room::Room::set_hints`]).
    pub channel: Option<Channel>,
}

/// The topic now, and the channels it primes.
pub(super) struct Topic {
    current: Mutex<Vec<String>>,
    bias: bool,
    glossary: Option<Arc<Glossary>>,
    model: Arc<Model>,
    /// Every channel, in the meeting's order.
    channels: Vec<Primed>,
}

impl Topic {
    pub(super) fn new(
        topic: Vec<String>,
        bias: bool,
        glossary: Option<Arc<Glossary>>,
        model: Arc<Model>,
        channels: Vec<Primed>,
    ) -> Topic {
        Topic {
            current: Mutex::new(topic),
            bias,
            glossary,
            model,
            channels,
        }
    }

    /// The topic now.
    pub(super) fn current(&self) -> Vec<String> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the topic (checked): each channel this process decodes is primed with its terms;
    /// returns every channel's terms, in the meeting's order.
    pub(super) fn set(&self, topic: Vec<String>) -> Vec<Vec<String>> {
        let hints: Vec<Vec<String>> = self
            .channels
            .iter()
            .map(|p| {
                prompt_terms(
                    &topic,
                    self.bias,
                    &p.config,
                    p.translate,
                    self.glossary.as_deref(),
                    &|t| self.model.token_count(t),
                )
            })
            .collect();
        for (p, h) in self.channels.iter().zip(&hints) {
            if let Some(c) = &p.channel {
                c.set_hints(h.clone());
            }
        }
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = topic;
        hints
    }
}

/// What `POST /api/topic` takes: `{"topic": ["term", …]}` (an empty list: no topic).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TopicRequest {
    topic: Vec<String>,
}

/// `POST /api/topic` (organizer): the next session's names and terms, in every channel's
/// prompts from its next decode on (with a `[cluster]`, from the workers' next look at the
/// offers, within [`crate::cluster::RENEW`]). Answers the topic as kept and how many channels
/// carry it; `400` saying why for a bad list (nothing changes).
pub(super) async fn set_topic(
    _: Organizer,
    State(app): State<Arc<App>>,
    body: Result<Json<TopicRequest>, JsonRejection>,
) -> Response {
    let bad = |why: String| (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response();
    let request = match body {
        Ok(Json(r)) => r,
        Err(e) => {
            return bad(format!(
                "the topic is JSON: {{\"topic\": [\"term\", …]}} ({})",
                e.body_text()
            ))
        }
    };
    let topic = match check(&request.topic) {
        Ok(t) => t,
        Err(e) => return bad(e.to_string()),
    };
    let a = app.clone();
    let kept = topic.clone();
    // Counting tokens and the glossary's lookups are short, but not the runtime's work.
    let Ok(hints) = tokio::task::spawn_blocking(move || a.topic.set(kept)).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the topic was not set\n").into_response();
    };
    if let Some(room) = &app.room {
        if let Err(e) = room.set_hints(hints.clone()).await {
            // Kept here (a reconnection offers the channels again with it).
            tracing::warn!("session topic not yet offered to the workers: {e}");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the topic is kept, but the workers could not be told yet ({e}): they will be when NATS is back\n"),
            )
                .into_response();
        }
    }
    let primed = hints.iter().filter(|h| !h.is_empty()).count();
    // Counts only: a topic may hold names.
    tracing::info!(
        terms = topic.len(),
        primed,
        "session topic set by the organizer"
    );
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "topic": topic, "channels_primed": primed }).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_topic_is_trimmed_and_listed_once() {
        assert_eq!(
            check(&terms(&[" Tais Plus ", "PrEP", "tais plus", "Legalife"])),
            Ok(terms(&["Tais Plus", "PrEP", "Legalife"]))
        );
        assert_eq!(check(&[]), Ok(Vec::new()));
    }

    #[test]
    fn a_bad_topic_says_which_term_and_why_without_quoting_it() {
        assert_eq!(check(&terms(&["PrEP", "  "])), Err(TopicError::Empty(2)));
        assert_eq!(
            check(&terms(&["Maria\nLopez"])),
            Err(TopicError::Control(1))
        );
        let long = "x".repeat(MAX_TERM_CHARS + 1);
        let e = check(&[long]).unwrap_err();
        assert_eq!(
            e,
            TopicError::TooLong {
                index: 1,
                chars: MAX_TERM_CHARS + 1
            }
        );
        let many: Vec<String> = (0..=MAX_TOPIC_TERMS).map(|i| format!("t{i}")).collect();
        let e = check(&many).unwrap_err();
        assert!(e.to_string().contains("at most 40"), "{e}");
        assert!(!check(&terms(&["Maria\tLopez"]))
            .unwrap_err()
            .to_string()
            .contains("Maria"));
    }

    /// A meeting's topic, listed in English, starts each channel's prompt in the channel's
    /// language; the general list only when asked (`bias`) and no topic is given; nothing
    /// for a translation or a detected language.
    #[test]
    fn each_channel_is_primed_with_the_topic_in_its_language() {
        use super::super::config::MeetingConfig;
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let g = Glossary::load(&root.join("glossaries/sex-work-rights.toml")).unwrap();
        let mut config = MeetingConfig::demo(&root.join("testdata"), "base");
        let tokens = |t: &str| t.split_whitespace().count();
        let terms = |config: &MeetingConfig, i: usize, translate: bool| {
            let m = &config.meeting;
            prompt_terms(
                &m.topic,
                m.bias,
                &config.channels[i],
                translate,
                Some(&g),
                &tokens,
            )
        };
        assert!(terms(&config, 0, false).is_empty(), "no topic, no bias");
        config.meeting.bias = true;
        let general = terms(&config, 1, false);
        assert!(general.len() > 10, "{general:?}");
        config.meeting.topic = vec!["decriminalisation".into(), "Empower Foundation".into()];
        assert_eq!(
            terms(&config, 0, false),
            ["decriminalisation", "Empower Foundation"]
        );
        assert_eq!(
            terms(&config, 1, false),
            ["despenalización", "Empower Foundation"]
        );
        assert!(terms(&config, 1, true).is_empty(), "a translation");
        config.channels[1].language = "auto".into();
        assert!(terms(&config, 1, false).is_empty(), "a detected language");
        // Without a glossary, the topic as listed.
        let m = &config.meeting;
        assert_eq!(
            prompt_terms(&m.topic, m.bias, &config.channels[0], false, None, &tokens),
            ["decriminalisation", "Empower Foundation"]
        );
    }
}
