//! The terminology glossary: one TOML file per domain (`glossaries/*.toml`, schema in
//! `glossaries/README.md`), compiled into one matcher per language.
//!
//! Its four jobs, each visible in the [`Annotated`] result of [`Glossary::annotate`]:
//! 1. **Correct** known misrecognitions to the canonical term when the entry's context rule
//!    holds; the raw text is kept and every correction carries its span.
//! 2. **Bias**: [`Glossary::bias`] gives the terms for Whisper's prompt, most valuable first,
//!    within a token budget, never a flagged term.
//! 3. **Hint**: every hit carries the concept's equivalents in the requested target
//!    languages, each *sourced* (with its source id) or a *proposal*.
//! 4. **Flag** stigmatising or loaded terms with the preferred term and a reason, never
//!    rewriting them; whitelisted names (a flagged word inside an organisation's or a
//!    statute's name) are not flagged, and flagging can be switched off.
//!
//! Pure: no I/O beyond [`Glossary::load`] and [`Glossary::load_cached`], no clock. Loading a
//! large glossary uses scoped threads (parsing pieces of the file, folding each language's
//! patterns), joined before it returns; [`Glossary::prepare`] builds the languages' matchers
//! the same way, else each is built on its first use.

pub mod fold;
pub mod interchange;
pub mod sound;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use serde::{Deserialize, Serialize};

use fold::{fold, fold_text, Folded};

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

/// Why a glossary could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum GlossaryError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

/// Whether a translation is attested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "source", rename_all = "lowercase")]
pub enum Verification {
    Sourced(String),
    Proposal,
}

/// A concept's term in a target language, for interpreters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Equivalent {
    pub lang: String,
    pub text: String,
    #[serde(flatten)]
    pub verification: Verification,
}

/// A correction applied to the caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    /// Byte span in the corrected text.
    pub start: usize,
    pub end: usize,
    /// Byte span in the raw text.
    pub raw_start: usize,
    pub raw_end: usize,
    pub from: String,
    pub to: String,
    pub concept: String,
    /// For a sound-alike correction (no listed misrecognition: the words heard sound and are
    /// spelled like the term, with domain context nearby): how alike, 0–1. None for a listed
    /// misrecognition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
}

/// A glossary term found in the caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// Byte span in the corrected text.
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub concept: String,
    pub category: Category,
    pub equivalents: Vec<Equivalent>,
}

/// A flagged term: shown to interpreters, never rewritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub concept: String,
    pub prefer: String,
    pub reason: String,
}

/// A caption with its glossary annotations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Annotated {
    pub raw: String,
    pub text: String,
    pub corrections: Vec<Correction>,
    pub hits: Vec<Hit>,
    pub flags: Vec<Flag>,
}

/// Options for [`Glossary::annotate`].
#[derive(Debug, Clone, Default)]
pub struct AnnotateOptions {
    /// Languages to give equivalents in (the interpreters' booths).
    pub targets: Vec<String>,
    /// Flag stigmatising terms (a meeting may turn it off).
    pub flags: bool,
    /// The channel's recent captions held terms of this glossary ([`RECENT_TERMS_SECS`]):
    /// that is evidence enough for a sound-alike correction in a caption with no other term
    /// (a live final is often a few words of a longer sentence).
    pub in_domain: bool,
}

/// How long (seconds of a channel's audio) a caption with a glossary term makes the next
/// captions [`AnnotateOptions::in_domain`].
pub const RECENT_TERMS_SECS: f64 = 60.0;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(into = "[usize; 3]", from = "[usize; 3]")]
enum Kind {
    Term { concept: usize, term: usize },
    Asr { concept: usize, rule: usize },
    Exception,
}

/// In the cache, a kind is three numbers (what, concept, term or rule): the entry holds one
/// per pattern.
impl From<Kind> for [usize; 3] {
    fn from(k: Kind) -> [usize; 3] {
        match k {
            Kind::Term { concept, term } => [0, concept, term],
            Kind::Asr { concept, rule } => [1, concept, rule],
            Kind::Exception => [2, 0, 0],
        }
    }
}

impl From<[usize; 3]> for Kind {
    fn from([what, concept, n]: [usize; 3]) -> Kind {
        match what {
            0 => Kind::Term { concept, term: n },
            1 => Kind::Asr { concept, rule: n },
            _ => Kind::Exception,
        }
    }
}

impl Kind {
    /// Whether what the kind points at is in `file` (a cache entry is checked so).
    fn is_in(self, file: &GlossaryFile) -> bool {
        match self {
            Kind::Term { concept, term } => file
                .concepts
                .get(concept)
                .is_some_and(|c| term < c.terms.len()),
            Kind::Asr { concept, rule } => file
                .concepts
                .get(concept)
                .is_some_and(|c| rule < c.misrecognitions.len()),
            Kind::Exception => true,
        }
    }
}

/// The patterns of one language, folded once, each with what it stands for (the first entry
/// of a folded form wins: terms before misrecognitions before exceptions, file order within).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Patterns {
    folded: Vec<String>,
    kinds: Vec<Kind>,
}

/// One language: its patterns, and their matcher, built on first use (or by
/// [`Glossary::prepare`]): a meeting annotates in a few of a glossary's languages.
struct Lang {
    patterns: Patterns,
    matcher: OnceLock<Result<AhoCorasick, String>>,
    /// The terms sound-alike correction may correct to, built with the matcher.
    sound: OnceLock<sound::Targets>,
}

/// A loaded glossary.
pub struct Glossary {
    pub file: GlossaryFile,
    /// Per language (base tag, "en"), plus org names matched in every language.
    langs: HashMap<String, Lang>,
}

/// What the glossary cache holds for one glossary file, in a directory named after the file
/// and its [`cache_key`]: the file as parsed and checked (`file.json`) and its folded
/// patterns (`patterns.json`), read at once on two cores. JSON parses about ten times faster
/// than the TOML.
#[derive(Serialize, Deserialize)]
struct CachedFile {
    format: u32,
    key: u64,
    file: GlossaryFile,
}

type CachedPatterns = BTreeMap<String, Patterns>;

/// Bumped whenever [`CacheEntry`] or what it holds changes meaning.
const CACHE_FORMAT: u32 = 1;

/// Files larger than this are parsed in pieces, one per core.
const PIECEWISE_BYTES: usize = 512 * 1024;

/// A piece of a glossary file: any of the top-level tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Piece {
    glossary: Option<Header>,
    #[serde(default, rename = "source")]
    sources: Vec<Source>,
    #[serde(default, rename = "exception")]
    exceptions: Vec<Exception>,
    #[serde(default, rename = "concept")]
    concepts: Vec<Concept>,
}

/// Parses a glossary file's TOML; the error has the byte offset where it is, if known.
///
/// A large file is cut at its `[[concept]]` header lines into one piece per core, parsed in
/// parallel, and put back together in order: the same result as one parse (every
/// `[[concept.term]]` follows its `[[concept]]` in the same piece), about as many times
/// faster as there are cores. Files with multi-line strings (where such a line could be text)
/// are parsed whole.
pub fn parse(text: &str) -> Result<GlossaryFile, (Option<usize>, String)> {
    const HEAD: &str = "[[concept]]";
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let whole = |t: &str| {
        toml::from_str::<Piece>(t).map_err(|e| (e.span().map(|s| s.start), e.message().to_string()))
    };
    let mut cuts: Vec<usize> = Vec::new();
    let multiline = text.contains("\"\"\"") || text.contains("'''");
    if text.len() >= PIECEWISE_BYTES && workers > 1 && !multiline {
        let size = text.len() / workers;
        for k in 1..workers {
            // The first header line at or after the k-th share of the file.
            let mut from = k * size;
            while !text.is_char_boundary(from) {
                from += 1;
            }
            let head = text[from..]
                .match_indices(&format!("\n{HEAD}"))
                .map(|(i, _)| from + i + 1)
                .find(|&i| {
                    let rest = text[i + HEAD.len()..].split('\n').next().unwrap_or("");
                    rest.split('#').next().unwrap_or("").trim().is_empty()
                });
            if let Some(h) = head {
                if cuts.last().is_none_or(|&c| c < h) {
                    cuts.push(h);
                }
            }
        }
    }
    let mut bounds = vec![0];
    bounds.extend(&cuts);
    bounds.push(text.len());
    let parsed: Vec<Result<Piece, (Option<usize>, String)>> = if cuts.is_empty() {
        vec![whole(text)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = bounds
                .windows(2)
                .map(|w| {
                    let (start, piece) = (w[0], &text[w[0]..w[1]]);
                    scope.spawn(move || whole(piece).map_err(|(at, m)| (at.map(|a| a + start), m)))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err((None, "the parser failed".into())))
                })
                .collect()
        })
    };
    let mut file = GlossaryFile::default();
    let mut header = None;
    for p in parsed {
        let p = p?;
        if let Some(h) = p.glossary {
            if header.replace(h).is_some() {
                return Err((None, "the [glossary] table is given twice".into()));
            }
        }
        file.sources.extend(p.sources);
        file.exceptions.extend(p.exceptions);
        file.concepts.extend(p.concepts);
    }
    file.glossary = header.ok_or((None, "missing field `glossary`".to_string()))?;
    Ok(file)
}

/// Folds a language's patterns, dropping empty and repeated folded forms.
fn fold_patterns(lang: &str, pats: &[(&str, Kind)]) -> Patterns {
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut out = Patterns::default();
    for (text, kind) in pats {
        let f = fold_text(text, lang);
        if f.is_empty() || seen.contains(&f) {
            continue;
        }
        seen.insert(f.clone());
        out.folded.push(f);
        out.kinds.push(*kind);
    }
    out
}

/// The matcher of one language's folded patterns.
fn compile(lang: &str, p: &Patterns) -> Result<AhoCorasick, String> {
    // A contiguous NFA: a few bytes per pattern byte, where a DFA over tens of thousands of
    // patterns would take hundreds of megabytes. No prefilter: with thousands of patterns it
    // would find candidates at nearly every byte.
    AhoCorasickBuilder::new()
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .match_kind(MatchKind::LeftmostLongest)
        .prefilter(false)
        .build(&p.folded)
        .map_err(|e| format!("cannot build the matcher for {lang}: {e}"))
}

/// Runs `job` on every item, on as many threads as there are cores, results in order.
fn on_every_core<T: Sync, R: Send>(items: &[T], job: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(job).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            break;
                        };
                        out.push((i, job(item)));
                    }
                    out
                })
            })
            .collect();
        // A worker only panics if `job` does; the items it had are then missing below.
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

impl Glossary {
    /// Reads a glossary file. Each language's matcher is built on first use; see
    /// [`Glossary::prepare`].
    pub fn load(path: &Path) -> Result<Glossary, GlossaryError> {
        let text = read(path)?;
        Glossary::parse_checked(path, &text)
    }

    /// Reads a glossary file through a cache in `dir`: the file parsed, checked and its
    /// patterns folded, kept as JSON under a hash of the file's text and this tolk's version.
    /// A missing, stale or unreadable entry means parsing the TOML (and writing the entry,
    /// best effort: a read-only or full disk costs only the time); the result is the same.
    pub fn load_cached(path: &Path, dir: &Path) -> Result<Glossary, GlossaryError> {
        let text = read(path)?;
        let key = cache_key(&text);
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("glossary");
        let entry = dir.join(format!("{stem}-{key:016x}"));
        let (file, patterns) = std::thread::scope(|scope| {
            let patterns = scope.spawn(|| {
                let json = std::fs::read_to_string(entry.join("patterns.json")).ok()?;
                serde_json::from_str::<CachedPatterns>(&json).ok()
            });
            let file = std::fs::read_to_string(entry.join("file.json"))
                .ok()
                .and_then(|json| serde_json::from_str::<CachedFile>(&json).ok())
                .filter(|c| c.format == CACHE_FORMAT && c.key == key);
            (file, patterns.join().ok().flatten())
        });
        if let (Some(c), Some(patterns)) = (file, patterns) {
            let whole = patterns.values().all(|p| {
                p.folded.len() == p.kinds.len() && p.kinds.iter().all(|k| k.is_in(&c.file))
            });
            if whole {
                return Ok(Glossary::from_parts(c.file, patterns));
            }
        }
        let g = Glossary::parse_checked(path, &text)?;
        let _ = write_cache_entry(dir, stem, &entry, &g, key);
        Ok(g)
    }

    fn parse_checked(path: &Path, text: &str) -> Result<Glossary, GlossaryError> {
        let file = parse(text).map_err(|(at, message)| GlossaryError::Syntax {
            path: path.to_path_buf(),
            line: at.map_or(0, |a| text[..a.min(text.len())].lines().count().max(1)),
            message,
        })?;
        Glossary::new(file).map_err(|message| GlossaryError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    fn from_parts(file: GlossaryFile, patterns: BTreeMap<String, Patterns>) -> Glossary {
        let langs = patterns
            .into_iter()
            .map(|(lang, patterns)| {
                let (matcher, sound) = (OnceLock::new(), OnceLock::new());
                (
                    lang,
                    Lang {
                        patterns,
                        matcher,
                        sound,
                    },
                )
            })
            .collect();
        Glossary { file, langs }
    }

    /// Checks a glossary and folds its patterns; `Err` says what is wrong with it.
    pub fn new(file: GlossaryFile) -> Result<Glossary, String> {
        let known: BTreeSet<&str> = file.sources.iter().map(|s| s.id.as_str()).collect();
        let mut ids = BTreeSet::new();
        for c in &file.concepts {
            if c.id.trim().is_empty() {
                return Err("a concept has an empty id".into());
            }
            if !ids.insert(c.id.as_str()) {
                return Err(format!("concept {}: the id is used twice", c.id));
            }
            for t in &c.terms {
                if t.text.trim().is_empty() || t.lang.trim().is_empty() {
                    return Err(format!("concept {}: a term with no text or no lang", c.id));
                }
                if let Some(s) = &t.source {
                    if !known.contains(s.as_str()) {
                        return Err(format!(
                            "concept {}: term \"{}\" cites source {s}, which is not in [[source]]",
                            c.id, t.text
                        ));
                    }
                }
            }
            for s in &c.sources {
                if !known.contains(s.as_str()) {
                    return Err(format!("concept {}: unknown source {s}", c.id));
                }
            }
        }
        // Patterns per language. Organisation names are said as they are in every language.
        let mut per_lang: BTreeMap<String, Vec<(&str, Kind)>> = BTreeMap::new();
        let mut langs: BTreeSet<String> = BTreeSet::new();
        for c in &file.concepts {
            for t in &c.terms {
                langs.insert(fold::base_lang(&t.lang).to_string());
            }
        }
        for (ci, c) in file.concepts.iter().enumerate() {
            for (ti, t) in c.terms.iter().enumerate() {
                let kind = Kind::Term {
                    concept: ci,
                    term: ti,
                };
                let targets: Vec<String> = if c.category == Category::Org {
                    langs.iter().cloned().collect()
                } else {
                    vec![fold::base_lang(&t.lang).to_string()]
                };
                for l in targets {
                    per_lang.entry(l).or_default().push((&t.text, kind));
                }
            }
            for (ri, r) in c.misrecognitions.iter().enumerate() {
                per_lang
                    .entry(fold::base_lang(&r.lang).to_string())
                    .or_default()
                    .push((
                        &r.heard,
                        Kind::Asr {
                            concept: ci,
                            rule: ri,
                        },
                    ));
            }
        }
        for e in &file.exceptions {
            per_lang
                .entry(fold::base_lang(&e.lang).to_string())
                .or_default()
                .push((&e.text, Kind::Exception));
        }
        // Each language's patterns folded on as many threads as there are cores (a
        // 10,000-concept glossary has tens of thousands of patterns per language).
        let jobs: Vec<(String, Vec<(&str, Kind)>)> = per_lang.into_iter().collect();
        let folded = on_every_core(&jobs, |(lang, pats)| fold_patterns(lang, pats));
        if folded.len() != jobs.len() {
            return Err("folding the patterns failed".into());
        }
        let patterns = jobs.iter().map(|(l, _)| l.clone()).zip(folded).collect();
        drop(jobs);
        Ok(Glossary::from_parts(file, patterns))
    }

    /// Builds the matchers of these languages now (all of them with `None`), in parallel,
    /// so that the first caption does not wait for them; `Err` names a language whose
    /// matcher cannot be built. Languages the glossary lacks are skipped.
    pub fn prepare(&self, langs: Option<&[&str]>) -> Result<(), String> {
        let mut chosen: Vec<(&String, &Lang)> = self
            .langs
            .iter()
            .filter(|(l, _)| langs.is_none_or(|ls| ls.iter().any(|x| fold::base_lang(x) == *l)))
            .collect();
        // The largest first, so that the cores finish together.
        chosen.sort_by_key(|(_, l)| {
            std::cmp::Reverse(l.patterns.folded.iter().map(String::len).sum::<usize>())
        });
        on_every_core(&chosen, |(lang, l)| self.built(lang, l).map(|_| ()))
            .into_iter()
            .collect()
    }

    fn built<'a>(&self, lang: &str, l: &'a Lang) -> Result<&'a AhoCorasick, String> {
        l.matcher
            .get_or_init(|| compile(lang, &l.patterns))
            .as_ref()
            .map_err(|e| e.clone())
    }

    /// The concept's preferred term in `lang` (or its first non-flagged one).
    pub fn preferred(&self, concept: &Concept, lang: &str) -> Option<String> {
        let base = fold::base_lang(lang);
        let of_lang = |t: &&Term| fold::base_lang(&t.lang) == base && t.status != Status::Flagged;
        concept
            .terms
            .iter()
            .filter(of_lang)
            .find(|t| t.status == Status::Preferred)
            .or_else(|| concept.terms.iter().find(of_lang))
            .map(|t| t.text.clone())
    }

    fn equivalents(&self, concept: &Concept, targets: &[String]) -> Vec<Equivalent> {
        let mut out = Vec::new();
        for target in targets {
            let base = fold::base_lang(target);
            for t in &concept.terms {
                let matches_lang = t.lang == *target || fold::base_lang(&t.lang) == base;
                if matches_lang && t.status != Status::Flagged {
                    out.push(Equivalent {
                        lang: t.lang.clone(),
                        text: t.text.clone(),
                        verification: match &t.source {
                            Some(s) => Verification::Sourced(s.clone()),
                            None => Verification::Proposal,
                        },
                    });
                }
            }
        }
        out
    }

    /// Annotates a caption in `lang`: corrections applied (raw kept), term hits with
    /// equivalents in the target languages, flags.
    pub fn annotate(&self, text: &str, lang: &str, opts: &AnnotateOptions) -> Annotated {
        let mut out = Annotated {
            raw: text.to_string(),
            ..Annotated::default()
        };
        let base = fold::base_lang(lang);
        // No patterns in this language, or (never seen: it takes billions of states) no
        // matcher for them: the text as it is, with no annotation.
        let Some((l, ac)) = self
            .langs
            .get(base)
            .and_then(|l| self.built(base, l).ok().map(|ac| (l, ac)))
        else {
            out.text = text.to_string();
            return out;
        };
        let f = fold(text, base);
        let mut corrected = String::with_capacity(text.len() + 16);
        let mut copied = 0usize; // raw bytes copied so far
        for hit in ac.find_iter(&f.text) {
            let (a, b) = (hit.start(), hit.end());
            if !fold::on_boundaries(&f.text, a, b) {
                continue;
            }
            let (rs, re) = f.original_span(text, a, b);
            if rs < copied {
                continue;
            }
            let kind = l.patterns.kinds[hit.pattern().as_usize()];
            let (ci, replacement, flagged_term) = match kind {
                Kind::Exception => continue,
                Kind::Asr { concept, rule } => {
                    let c = &self.file.concepts[concept];
                    let r = &c.misrecognitions[rule];
                    if !context_holds(&f, a, b, r, base) {
                        continue;
                    }
                    let to = if r.to.is_empty() {
                        self.preferred(c, lang)
                    } else {
                        Some(r.to.clone())
                    };
                    match to {
                        Some(p) => (concept, Some(p), None),
                        None => continue,
                    }
                }
                Kind::Term { concept, term } => {
                    let t = &self.file.concepts[concept].terms[term];
                    if t.match_case && !text[rs..re].starts_with(t.text.as_str()) {
                        continue;
                    }
                    let flagged = (t.status == Status::Flagged).then_some(term);
                    (concept, None, flagged)
                }
            };
            let c = &self.file.concepts[ci];
            corrected.push_str(&text[copied..rs]);
            let start = corrected.len();
            let shown = match &replacement {
                Some(p) => p.clone(),
                None => text[rs..re].to_string(),
            };
            corrected.push_str(&shown);
            let end = corrected.len();
            copied = re;
            if let Some(p) = replacement {
                out.corrections.push(Correction {
                    start,
                    end,
                    raw_start: rs,
                    raw_end: re,
                    from: text[rs..re].to_string(),
                    to: p,
                    concept: c.id.clone(),
                    confidence: None,
                });
            }
            if let Some(ti) = flagged_term {
                if opts.flags {
                    let t = &c.terms[ti];
                    out.flags.push(Flag {
                        start,
                        end,
                        text: shown.clone(),
                        concept: c.id.clone(),
                        prefer: if t.prefer.is_empty() {
                            self.preferred(c, lang).unwrap_or_default()
                        } else {
                            t.prefer.clone()
                        },
                        reason: t.reason.clone(),
                    });
                }
                continue;
            }
            out.hits.push(Hit {
                start,
                end,
                text: shown,
                concept: c.id.clone(),
                category: c.category,
                equivalents: self.equivalents(c, &opts.targets),
            });
        }
        corrected.push_str(&text[copied..]);
        out.text = corrected;
        let targets = l.sound.get_or_init(|| self.sound_targets(base, l));
        sound::correct(self, targets, &mut out, lang, opts);
        out
    }

    /// The terms of a language sound-alike correction may correct to: its terms (and the
    /// organisations' names), never a flagged or case-sensitive one.
    fn sound_targets(&self, lang: &str, l: &Lang) -> sound::Targets {
        let mut seen = BTreeSet::new();
        let list = l
            .patterns
            .kinds
            .iter()
            .filter_map(|k| match *k {
                Kind::Term { concept, term } => Some((concept, term)),
                _ => None,
            })
            .filter(|&(c, t)| {
                let t = &self.file.concepts[c].terms[t];
                t.status != Status::Flagged && !t.match_case
            })
            .filter(|&k| seen.insert(k))
            .filter_map(|(c, t)| {
                sound::Target::new(c, t, &self.file.concepts[c].terms[t].text, lang)
            })
            .collect();
        sound::Targets::new(list)
    }

    /// Terms to bias Whisper towards for a channel in `lang`, most valuable first
    /// (organisation names and acronyms, then core terms by category and priority), as many
    /// as fit in `budget` as `count` measures them (joined with ", "). Never a flagged term.
    pub fn bias(&self, lang: &str, budget: usize, count: impl Fn(&str) -> usize) -> Vec<String> {
        let base = fold::base_lang(lang);
        let mut concepts: Vec<&Concept> = self
            .file
            .concepts
            .iter()
            .filter(|c| c.category != Category::Flag)
            .collect();
        concepts.sort_by_key(|c| (c.category, c.priority));
        let mut out: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        for c in concepts {
            let candidates: Vec<&Term> = if c.category == Category::Org {
                // The short form people say; a local-language name if the channel has one.
                c.terms
                    .iter()
                    .filter(|t| t.status != Status::Flagged)
                    .filter(|t| {
                        fold::base_lang(&t.lang) == base
                            || (t.lang == "en" && t.status == Status::Preferred)
                    })
                    .take(1)
                    .collect()
            } else {
                c.terms
                    .iter()
                    .filter(|t| fold::base_lang(&t.lang) == base && t.status == Status::Preferred)
                    .take(1)
                    .collect()
            };
            for t in candidates {
                if !seen.insert(t.text.clone()) {
                    continue;
                }
                let mut next = out.clone();
                next.push(t.text.clone());
                if count(&next.join(", ")) > budget {
                    return out;
                }
                out = next;
            }
        }
        out
    }

    /// Every flagged form in a language (for checks).
    pub fn flagged_forms(&self, lang: &str) -> BTreeSet<String> {
        let base = fold::base_lang(lang);
        self.file
            .concepts
            .iter()
            .flat_map(|c| c.terms.iter())
            .filter(|t| t.status == Status::Flagged && fold::base_lang(&t.lang) == base)
            .map(|t| fold_text(&t.text, base))
            .collect()
    }

    /// Problems a human should fix: see [`lint`].
    pub fn lint(&self) -> Vec<String> {
        lint(self)
    }
}

/// Whether a misrecognition's context rule holds for the match at `folded[a..b]`.
fn context_holds(f: &Folded, a: usize, b: usize, rule: &Misrecognition, lang: &str) -> bool {
    let text = &f.text;
    for phrase in &rule.unless {
        let p = fold_text(phrase, lang);
        if p.is_empty() {
            continue;
        }
        let mut from = 0;
        while let Some(i) = text[from..].find(&p) {
            let (s, e) = (from + i, from + i + p.len());
            if s <= a && e >= b && fold::on_boundaries(text, s, e) {
                return false;
            }
            from = s + p.chars().next().map_or(1, char::len_utf8);
        }
    }
    if rule.near.is_empty() {
        return true;
    }
    // The words around the match, `window` on each side.
    let before: Vec<&str> = text[..a].split(' ').filter(|w| !w.is_empty()).collect();
    let after: Vec<&str> = text[b..].split(' ').filter(|w| !w.is_empty()).collect();
    let lo = before.len().saturating_sub(rule.window);
    let context = format!(
        " {} {} {} ",
        before[lo..].join(" "),
        &text[a..b],
        after[..after.len().min(rule.window)].join(" ")
    );
    rule.near.iter().any(|n| {
        let n = fold_text(n, lang);
        !n.is_empty() && context.contains(&format!(" {n} ")) || {
            // Unspaced scripts: plain containment.
            n.chars().next().is_some_and(fold::unspaced) && context.contains(&n)
        }
    })
}

/// Lint: schema problems a loader accepts but a human should fix.
/// - duplicates (the same folded term twice in a language),
/// - a misrecognition equal to another concept's term without a context rule (it would
///   rewrite a real word everywhere),
/// - a term equal to another concept's term (which concept does a hit mean?),
/// - concepts missing one of the header's languages,
/// - a flagged term in the prompt list (it would bias Whisper towards it),
/// - translations citing no source are counted (proposals), not errors.
pub fn lint(g: &Glossary) -> Vec<String> {
    let mut problems = Vec::new();
    let mut owner: HashMap<(String, String), &str> = HashMap::new();
    for c in &g.file.concepts {
        let mut mine = BTreeSet::new();
        for t in &c.terms {
            let lang = fold::base_lang(&t.lang).to_string();
            let key = (lang.clone(), fold_text(&t.text, &lang));
            if !mine.insert(key.clone()) {
                problems.push(format!(
                    "concept {}: \"{}\" ({}) is listed twice",
                    c.id, t.text, t.lang
                ));
                continue;
            }
            match owner.get(&key) {
                Some(other) if *other != c.id => problems.push(format!(
                    "concept {}: \"{}\" ({}) is also a term of concept {other}",
                    c.id, t.text, t.lang
                )),
                _ => {
                    owner.insert(key, &c.id);
                }
            }
        }
    }
    for c in &g.file.concepts {
        for r in &c.misrecognitions {
            let lang = fold::base_lang(&r.lang).to_string();
            let key = (lang.clone(), fold_text(&r.heard, &lang));
            if let Some(other) = owner.get(&key) {
                if r.near.is_empty() {
                    problems.push(format!(
                        "concept {}: misrecognition \"{}\" is a term of concept {other} and has no context rule (`near`)",
                        c.id, r.heard
                    ));
                }
            }
        }
        if c.category != Category::Org {
            let missing: Vec<&str> = g
                .file
                .glossary
                .languages
                .iter()
                .filter(|l| {
                    !c.terms
                        .iter()
                        .any(|t| fold::base_lang(&t.lang) == fold::base_lang(l))
                })
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "concept {}: no term in {}",
                    c.id,
                    missing.join(", ")
                ));
            }
        }
    }
    for lang in &g.file.glossary.languages {
        let flagged = g.flagged_forms(lang);
        for t in g.bias(lang, usize::MAX, |s| s.len()) {
            if flagged.contains(&fold_text(&t, lang)) {
                problems.push(format!(
                    "prompt list for {lang} holds the flagged term \"{t}\""
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests;

fn read(path: &Path) -> Result<String, GlossaryError> {
    std::fs::read_to_string(path).map_err(|source| GlossaryError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The cache key of a glossary's text: a 64-bit hash of it, the cache format and this
/// tolk's version (std's hasher may change between Rust releases: a new build then only
/// misses the cache).
fn cache_key(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    CACHE_FORMAT.hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    text.hash(&mut h);
    h.finish()
}

/// Writes a cache entry atomically (a temporary directory renamed to it) and removes the
/// entries of earlier versions of the same file.
fn write_cache_entry(
    dir: &Path,
    stem: &str,
    entry: &Path,
    g: &Glossary,
    key: u64,
) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct File<'a> {
        format: u32,
        key: u64,
        file: &'a GlossaryFile,
    }
    let patterns: BTreeMap<&String, &Patterns> =
        g.langs.iter().map(|(k, l)| (k, &l.patterns)).collect();
    let file = File {
        format: CACHE_FORMAT,
        key,
        file: &g.file,
    };
    let tmp = dir.join(format!(".{stem}-{key:016x}.{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let written = std::fs::write(tmp.join("patterns.json"), serde_json::to_vec(&patterns)?)
        .and_then(|_| std::fs::write(tmp.join("file.json"), serde_json::to_vec(&file)?))
        .and_then(|_| {
            // An entry that is there but was not read (damaged) is replaced.
            if entry.exists() {
                std::fs::remove_dir_all(entry)?;
            }
            std::fs::rename(&tmp, entry)
        });
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        return written;
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let stale = name
            .strip_prefix(stem)
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if stale && e.path() != entry {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    Ok(())
}
