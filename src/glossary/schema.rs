//! The glossary file's schema, as written (`glossaries/README.md`): concepts, their terms
//! per language, the ways Whisper mishears them, sources and exceptions.

use serde::{Deserialize, Serialize};

/// The glossary file, as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GlossaryFile {
    pub glossary: Header,
    #[serde(default, rename = "source")]
    pub sources: Vec<Source>,
    /// Names in which a flagged word is not flagged (organisations, statutes).
    #[serde(default, rename = "exception")]
    pub exceptions: Vec<Exception>,
    #[serde(default, rename = "concept")]
    pub concepts: Vec<Concept>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub id: String,
    pub title: String,
    /// The languages every concept should cover (BCP-47); `lint` reports gaps.
    #[serde(default)]
    pub languages: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub url: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    pub lang: String,
    pub text: String,
}

/// Concept categories. Organisations and acronyms come first in the prompt.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Org,
    #[default]
    People,
    Law,
    Enforcement,
    Health,
    Events,
    /// Loaded terms whose concept is the flag itself.
    Flag,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Concept {
    pub id: String,
    pub category: Category,
    #[serde(default)]
    pub definition: String,
    #[serde(default)]
    pub sources: Vec<String>,
    /// Lower comes first in the prompt (within the category order).
    #[serde(default = "default_priority")]
    pub priority: u32,
    #[serde(default, rename = "term")]
    pub terms: Vec<Term>,
    #[serde(default, rename = "asr")]
    pub misrecognitions: Vec<Misrecognition>,
}

fn default_priority() -> u32 {
    100
}

/// How a term stands in its concept.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Preferred,
    Admitted,
    Abbreviation,
    /// Stigmatising or loaded: flagged, never rewritten.
    Flagged,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Term {
    pub lang: String,
    pub text: String,
    #[serde(default)]
    pub status: Status,
    /// The source attesting this term (an id from `[[source]]`); none = a proposal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// For flagged terms: why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// For flagged terms: what to say instead (default: the concept's preferred term).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefer: String,
    /// Match only as written (case included): acronyms that are also ordinary words
    /// ("WHO", "SWING", "PROUD").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub match_case: bool,
}

/// A way Whisper mishears a term, corrected when the context rule holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Misrecognition {
    pub lang: String,
    pub heard: String,
    /// The correction (default: the concept's preferred term in that language).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to: String,
    /// Correct only if one of these occurs within `window` words (empty: always).
    #[serde(default)]
    pub near: Vec<String>,
    /// Never correct inside one of these phrases ("stigma and discrimination").
    #[serde(default)]
    pub unless: Vec<String>,
    #[serde(default = "default_window")]
    pub window: usize,
}

fn default_window() -> usize {
    10
}
