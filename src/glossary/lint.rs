//! Lint: what a loader accepts but a human should fix (`tolk glossary lint`).

use std::collections::{BTreeSet, HashMap};

use super::fold::{self, fold_text};
use super::schema::Category;
use super::Glossary;

impl Glossary {
    /// Problems a human should fix: see [`lint`].
    pub fn lint(&self) -> Vec<String> {
        lint(self)
    }
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
