//! Protected names: people a transcript must not name (a sex worker's name in the wrong
//! hands can cost a livelihood, a visa, a child). The meeting lists them
//! (`protected_names`); every final and partial is redacted before the archive and before
//! attendees' channels, and only interpreters (`interpreter_token`) get the words as said,
//! live. The list is never written anywhere by tolk, nor the unredacted text.
//!
//! Matching is on whole words, ignoring ASCII case; a name listed with accents ("María")
//! also matches without them ("Maria"), not the other way round: list every spelling
//! Whisper may write. A glossary annotation that touches a redacted name is dropped; the
//! others are moved to their place in the redacted text.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use unicode_normalization::UnicodeNormalization;

use super::wire::{Annotations, Final, Partial};

/// What stands in for a protected name.
pub const WITHHELD: &str = "[name withheld]";

pub struct Redactor {
    names: AhoCorasick,
}

/// Byte ranges of the input that were replaced by [`WITHHELD`], in order.
type Edits = Vec<(usize, usize)>;

impl Redactor {
    /// `None` when no name is listed. An empty or blank name is refused.
    pub fn new(names: &[String]) -> Result<Option<Redactor>, String> {
        if names.is_empty() {
            return Ok(None);
        }
        let mut patterns = Vec::new();
        for n in names {
            let n = n.split_whitespace().collect::<Vec<_>>().join(" ");
            if n.is_empty() {
                return Err("protected_names has an empty name".into());
            }
            let plain: String = n
                .nfd()
                .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
                .collect();
            if plain != n {
                patterns.push(plain);
            }
            patterns.push(n);
        }
        let names = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .map_err(|e| format!("protected_names: {e}"))?;
        Ok(Some(Redactor { names }))
    }

    /// `text` with every protected name withheld, and where.
    pub fn redact(&self, text: &str) -> (String, Edits) {
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
        let mut out = String::with_capacity(text.len());
        let mut edits = Vec::new();
        let mut at = 0;
        for m in self.names.find_iter(text) {
            let before = text[..m.start()].chars().next_back();
            let after = text[m.end()..].chars().next();
            if word(before) || word(after) {
                continue;
            }
            out.push_str(&text[at..m.start()]);
            out.push_str(WITHHELD);
            edits.push((m.start(), m.end()));
            at = m.end();
        }
        out.push_str(&text[at..]);
        (out, edits)
    }

    /// The final as attendees and the archive get it, if it names anyone.
    pub fn final_(&self, f: &Final) -> Option<Final> {
        let (text, edits) = self.redact(&f.text);
        let (raw_text, raw_edits) = self.redact(&f.raw_text);
        if edits.is_empty() && raw_edits.is_empty() {
            return None;
        }
        let g = &f.glossary;
        let moved = |s: usize, e: usize| span(s, e, &edits);
        let glossary = Annotations {
            corrections: g
                .corrections
                .iter()
                .filter_map(|c| {
                    let (start, end) = moved(c.start, c.end)?;
                    let (raw_start, raw_end) = span(c.raw_start, c.raw_end, &raw_edits)?;
                    Some(crate::glossary::Correction {
                        start,
                        end,
                        raw_start,
                        raw_end,
                        ..c.clone()
                    })
                })
                .collect(),
            hits: g
                .hits
                .iter()
                .filter_map(|h| {
                    let (start, end) = moved(h.start, h.end)?;
                    Some(crate::glossary::Hit {
                        start,
                        end,
                        ..h.clone()
                    })
                })
                .collect(),
            flags: g
                .flags
                .iter()
                .filter_map(|x| {
                    let (start, end) = moved(x.start, x.end)?;
                    Some(crate::glossary::Flag {
                        start,
                        end,
                        ..x.clone()
                    })
                })
                .collect(),
        };
        Some(Final {
            text,
            raw_text,
            glossary,
            ..f.clone()
        })
    }

    /// The partial as attendees get it, if it names anyone.
    pub fn partial(&self, p: &Partial) -> Option<Partial> {
        let (text, edits) = self.redact(&p.text);
        (!edits.is_empty()).then(|| Partial { text, ..p.clone() })
    }
}

/// A span of the input moved to its place in the redacted text; `None` if it touches a
/// redacted name.
fn span(start: usize, end: usize, edits: &Edits) -> Option<(usize, usize)> {
    let mut shift: isize = 0;
    for &(a, b) in edits {
        if start < b && a < end {
            return None;
        }
        if b <= start {
            shift += WITHHELD.len() as isize - (b - a) as isize;
        }
    }
    Some((
        (start as isize + shift) as usize,
        (end as isize + shift) as usize,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glossary::{Category, Hit};

    fn r(names: &[&str]) -> Redactor {
        Redactor::new(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn whole_names_any_case_and_the_unaccented_spelling() {
        let r = r(&["María José", "Ana"]);
        assert_eq!(
            r.redact("maria josé and MARIA JOSE met Ana; Anatoly did not.")
                .0,
            "maria josé and [name withheld] met [name withheld]; Anatoly did not."
        );
        // "maria josé" (accent on one name only) is neither listed spelling.
        assert_eq!(
            r.redact("María José, Ana.").0,
            "[name withheld], [name withheld]."
        );
    }

    #[test]
    fn no_names_no_redactor_and_blank_names_refused() {
        assert!(Redactor::new(&[]).unwrap().is_none());
        assert!(Redactor::new(&["  ".into()]).is_err());
    }

    /// Annotations after a name move with the text; one on the name is dropped.
    #[test]
    fn annotations_follow_the_redacted_text() {
        let r = r(&["Ana"]);
        let text = "Ana was arrested in a police raid";
        let hit = |start: usize, end: usize| Hit {
            start,
            end,
            text: text[start..end].into(),
            concept: "c".into(),
            category: Category::Enforcement,
            equivalents: Vec::new(),
        };
        let raid = text.find("police raid").unwrap();
        let f = Final {
            glossary: Annotations {
                hits: vec![hit(0, 3), hit(raid, raid + 11)],
                ..Annotations::default()
            },
            ..Final::test("floor", 1, text)
        };
        let g = r.final_(&f).unwrap();
        assert_eq!(g.text, "[name withheld] was arrested in a police raid");
        assert_eq!(g.raw_text, g.text);
        assert_eq!(g.glossary.hits.len(), 1);
        let h = &g.glossary.hits[0];
        assert_eq!(&g.text[h.start..h.end], "police raid");
        assert!(r
            .final_(&Final {
                text: "no one".into(),
                raw_text: "no one".into(),
                ..f
            })
            .is_none());
    }
}
