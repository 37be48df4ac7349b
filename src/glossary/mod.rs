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

pub mod annotate;
mod cache;
pub mod fold;
pub mod interchange;
mod lint;
mod parse;
pub mod schema;
pub mod sound;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use serde::{Deserialize, Serialize};

pub use annotate::{
    AnnotateOptions, Annotated, ChannelAnnotator, Correction, Equivalent, Flag, Hit, Verification,
    RECENT_TERMS_SECS,
};
pub use lint::lint;
pub use parse::parse;
pub use schema::*;

use fold::fold_text;

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

    /// A session's topic as Whisper's prompt terms for a channel in `lang`: each term the
    /// organizer listed (in any of the glossary's languages) as the glossary writes its
    /// concept in `lang` — the preferred term, or for an organisation the name people say
    /// there — and as listed where the glossary has no such term (a name, a term it lacks).
    /// A flagged term gives its concept's preferred term, never itself. In the listed order,
    /// each once.
    pub fn topic(&self, topic: &[String], lang: &str) -> Vec<String> {
        let base = fold::base_lang(lang);
        let mut out: Vec<String> = Vec::new();
        for listed in topic {
            let listed = listed.trim();
            if listed.is_empty() {
                continue;
            }
            let concept = self.file.concepts.iter().find(|c| {
                c.terms
                    .iter()
                    .any(|t| fold_text(&t.text, &t.lang) == fold_text(listed, &t.lang))
            });
            let term = match concept {
                Some(c) if c.category == Category::Flag => None,
                Some(c) => c
                    .terms
                    .iter()
                    .filter(|t| t.status != Status::Flagged)
                    .find(|t| fold::base_lang(&t.lang) == base && t.status == Status::Preferred)
                    .or_else(|| {
                        c.terms.iter().find(|t| {
                            t.status != Status::Flagged && fold::base_lang(&t.lang) == base
                        })
                    })
                    .map(|t| t.text.clone())
                    .or_else(|| {
                        // No term in this language: an organisation's own name stays as
                        // listed; a flagged one is dropped.
                        let flagged = c.terms.iter().any(|t| {
                            t.status == Status::Flagged
                                && fold_text(&t.text, &t.lang) == fold_text(listed, &t.lang)
                        });
                        (!flagged).then(|| listed.to_string())
                    }),
                None => Some(listed.to_string()),
            };
            if let Some(term) = term {
                if !out.iter().any(|o| o == &term) {
                    out.push(term);
                }
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
}

#[cfg(test)]
mod tests;

fn read(path: &Path) -> Result<String, GlossaryError> {
    std::fs::read_to_string(path).map_err(|source| GlossaryError::Read {
        path: path.to_path_buf(),
        source,
    })
}
