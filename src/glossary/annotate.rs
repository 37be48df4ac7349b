//! Annotating a caption: corrections (listed misrecognitions, then sound-alikes), term
//! hits with their equivalents in the interpreters' languages, flags; and a channel's
//! annotation ([`ChannelAnnotator`]).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::fold::{self, fold, fold_text, Folded};
use super::schema::{Category, Concept, Misrecognition, Status, Term};
use super::{sound, Glossary, Kind, Lang};

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

impl Glossary {
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

    pub(super) fn equivalents(&self, concept: &Concept, targets: &[String]) -> Vec<Equivalent> {
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

/// One channel's annotation, the same in a meeting (the server's sink) and in `tolk
/// stream`: the language a caption is in, the languages to give equivalents in, and the
/// evidence of the meeting's domain (a term in the channel's last [`RECENT_TERMS_SECS`]).
#[derive(Debug, Clone)]
pub struct ChannelAnnotator {
    /// The channel's language: a caption's when the engine does not say.
    language: String,
    /// Whisper's translate task: the text is English whatever was heard.
    translate: bool,
    /// The languages to give equivalents in (a caption's own and `auto` are left out).
    targets: Vec<String>,
    flags: bool,
    /// Media seconds of the end of the channel's last final with a term.
    last_term: Option<f64>,
}

impl ChannelAnnotator {
    pub fn new(language: &str, translate: bool, targets: &[String], flags: bool) -> Self {
        ChannelAnnotator {
            language: language.to_string(),
            translate,
            targets: targets.to_vec(),
            flags,
            last_term: None,
        }
    }

    /// The language of a caption heard in `heard` (empty: the engine did not say): English
    /// for a translation, else `heard`, else the channel's.
    pub fn language(&self, heard: &str) -> String {
        match (self.translate, heard) {
            (true, _) => "en".into(),
            (false, "") => self.language.clone(),
            (false, h) => h.to_string(),
        }
    }

    /// Annotates a caption in `language` (see [`ChannelAnnotator::language`]) over media
    /// seconds `start..end`; a final with a term makes the next minute of the channel's
    /// captions [`AnnotateOptions::in_domain`].
    pub fn annotate(
        &mut self,
        g: &Glossary,
        text: &str,
        language: &str,
        start: f64,
        end: f64,
        final_: bool,
    ) -> Annotated {
        let targets = self
            .targets
            .iter()
            .filter(|l| l.as_str() != language && l.as_str() != "auto")
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let opts = AnnotateOptions {
            targets,
            flags: self.flags,
            in_domain: self
                .last_term
                .is_some_and(|t| start - t < RECENT_TERMS_SECS),
        };
        let a = g.annotate(text, language, &opts);
        if final_ && !a.hits.is_empty() {
            self.last_term = Some(end);
        }
        a
    }
}
