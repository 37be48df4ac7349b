//! Protected names: people a transcript must not name (a sex worker's name in the wrong
//! hands can cost a livelihood, a visa, a child). The meeting lists them
//! (`protected_names`); every final and partial is redacted before the archive and before
//! attendees' channels, and only interpreters (`interpreter_token`) get the words as said,
//! live. The list is never written anywhere by tolk, nor the unredacted text.
//!
//! What counts as an occurrence of a listed name:
//!
//! - **Folded alike.** Names and text are compared after the same folding ([`fold`]):
//!   compatibility decomposition (NFKD), lower case in every script (Unicode's mapping, so
//!   "МАРИЯ" is "мария", "ÉLODIE" is "élodie"), accents of Latin, Greek and Cyrillic letters
//!   dropped either way ("María" and "Maria" are one name, whichever is listed; "Ёлка" and
//!   "Елка" too), final sigma as sigma, "ß" as "ss", and every run of spaces, hyphens and
//!   dashes as one space ("Jean-Pierre" is "Jean Pierre").
//! - **Whole words.** Neither side of an occurrence may touch a letter: "Ana" is withheld
//!   in "Ana's", "(Ana)", "Ana2" and "Ana—", not in "Anatoly" or "Juliana". Digits and
//!   punctuation are boundaries; letters and their combining marks are not.
//! - **Scripts written without spaces** (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar,
//!   Tibetan): a name that begins (ends) with such a character needs no boundary before
//!   (after) it, since the text has none to check: "王芳" is withheld in "我们和王芳说话".
//! - **Every occurrence of every name**, overlapping and nested ones included: with
//!   "Sam" and "Sam Ray" listed, "Sam Rayburn" loses "Sam"; with "Ana Silva" and "Silva",
//!   "Juliana Silva" loses "Silva". Overlapping occurrences are withheld as one span.
//!
//! A glossary annotation that touches a redacted name is dropped; the others are moved to
//! their place in the redacted text.

use aho_corasick::AhoCorasick;
use unicode_normalization::UnicodeNormalization;

use super::wire::{Annotations, Final, Partial};

/// What stands in for a protected name.
pub const WITHHELD: &str = "[name withheld]";

pub struct Redactor {
    /// Every folded name, matched overlapping.
    names: AhoCorasick,
    /// Per pattern: whether its first and last characters need a word boundary beside them.
    bounded: Vec<(bool, bool)>,
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
        let mut bounded = Vec::new();
        for n in names {
            let folded = fold(n).text;
            let folded = folded.trim();
            if folded.is_empty() {
                return Err("protected_names has an empty name".into());
            }
            let first = folded.chars().next().is_some_and(|c| !unspaced(c));
            let last = folded.chars().next_back().is_some_and(|c| !unspaced(c));
            patterns.push(folded.to_string());
            bounded.push((first, last));
        }
        let names = AhoCorasick::new(&patterns).map_err(|e| format!("protected_names: {e}"))?;
        Ok(Some(Redactor { names, bounded }))
    }

    /// `text` with every protected name withheld, and where.
    pub fn redact(&self, text: &str) -> (String, Edits) {
        let folded = fold(text);
        let f = &folded.text;
        // Occurrences as byte ranges of `text`, in order of start.
        let mut found: Vec<(usize, usize)> = Vec::new();
        for m in self.names.find_overlapping_iter(f) {
            let (first, last) = self.bounded[m.pattern().as_usize()];
            let before = f[..m.start()].chars().next_back();
            let after = f[m.end()..].chars().next();
            if (first && word(before)) || (last && word(after)) {
                continue;
            }
            found.push(folded.source(m.start(), m.end()));
        }
        found.sort_unstable();
        // Overlapping or touching occurrences become one.
        let mut edits: Edits = Vec::new();
        for (s, e) in found {
            match edits.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => edits.push((s, e)),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for &(s, e) in &edits {
            out.push_str(&text[at..s]);
            out.push_str(WITHHELD);
            at = e;
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

/// A text folded for matching names, with each folded character's place in the source.
struct Folded {
    text: String,
    /// Per folded character, in order: its byte offset in `text`, and the source bytes it
    /// came from (several folded characters may share one source character: "ß" is "ss").
    map: Vec<(usize, usize, usize)>,
}

impl Folded {
    /// The source bytes that the folded bytes `start..end` came from.
    fn source(&self, start: usize, end: usize) -> (usize, usize) {
        let first = self.map.partition_point(|&(at, _, _)| at < start);
        let last = self.map.partition_point(|&(at, _, _)| at < end) - 1;
        (self.map[first].1, self.map[last].2)
    }
}

/// The folding names and text both go through (see the module's documentation).
fn fold(text: &str) -> Folded {
    let mut out = Folded {
        text: String::with_capacity(text.len()),
        map: Vec::with_capacity(text.len()),
    };
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        let pushed = out.map.len();
        if c.is_whitespace() || matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}') {
            if out.text.ends_with(' ') {
                out.map.last_mut().expect("a space was pushed").2 = end;
                continue;
            }
            out.map.push((out.text.len(), i, end));
            out.text.push(' ');
            continue;
        }
        for d in c.nfkd() {
            for l in d.to_lowercase() {
                if accent(l) {
                    continue;
                }
                let folded: &[char] = match l {
                    'ς' => &['σ'],
                    'ß' => &['s', 's'],
                    _ => &[l],
                };
                for &f in folded {
                    out.map.push((out.text.len(), i, end));
                    out.text.push(f);
                }
            }
        }
        // A character that folds to nothing (an accent on its own) joins the one before.
        if out.map.len() == pushed {
            if let Some(last) = out.map.last_mut() {
                last.2 = end;
            }
        }
    }
    out
}

/// A combining accent of Latin, Greek or Cyrillic letters, dropped by the folding. Other
/// scripts' marks (Indic vowel signs, say) change the word and are kept.
fn accent(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}')
}

/// A character of a script written without spaces between words.
fn unspaced(c: char) -> bool {
    matches!(c,
        '\u{0E00}'..='\u{0EFF}'          // Thai, Lao
        | '\u{0F00}'..='\u{0FFF}'        // Tibetan
        | '\u{1000}'..='\u{109F}'        // Myanmar
        | '\u{1780}'..='\u{17FF}'        // Khmer
        | '\u{2E80}'..='\u{2FDF}'        // CJK radicals
        | '\u{3005}'..='\u{3007}'
        | '\u{3021}'..='\u{3029}'
        | '\u{3040}'..='\u{30FF}'        // Hiragana, Katakana
        | '\u{31F0}'..='\u{31FF}'
        | '\u{3400}'..='\u{4DBF}'        // Han
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{3FFFF}')
}

/// Whether `c` continues a word of a script written with spaces (a name beside it is part
/// of a longer word).
fn word(c: Option<char>) -> bool {
    c.is_some_and(|c| {
        (c.is_alphabetic() || unicode_normalization::char::is_combining_mark(c)) && !unspaced(c)
    })
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

    const W: &str = WITHHELD;

    #[test]
    fn whole_names_any_case_with_or_without_accents() {
        let r = r(&["María José", "Ana"]);
        assert_eq!(
            r.redact("maria josé and MARIA JOSE met Ana; Anatoly did not.")
                .0,
            format!("{W} and {W} met {W}; Anatoly did not.")
        );
        assert_eq!(r.redact("María José, Ana.").0, format!("{W}, {W}."));
        // Decomposed accents (NFD) are the same name, and the accent goes with it.
        assert_eq!(
            r.redact("Mari\u{301}a Jose\u{301} spoke").0,
            format!("{W} spoke")
        );
        // Listed without accents, written with them.
        let r = super::tests::r(&["Maria"]);
        assert_eq!(r.redact("MARÍA and María").0, format!("{W} and {W}"));
    }

    /// The cases the review found leaking.
    #[test]
    fn nested_and_overlapping_names_are_all_withheld() {
        let r1 = r(&["Sam", "Sam Ray"]);
        assert_eq!(
            r1.redact("Sam Rayburn spoke").0,
            format!("{W} Rayburn spoke")
        );
        assert_eq!(r1.redact("Sam Ray spoke").0, format!("{W} spoke"));
        let r2 = r(&["Ana Silva", "Silva"]);
        assert_eq!(
            r2.redact("Juliana Silva spoke").0,
            format!("Juliana {W} spoke")
        );
        let r3 = r(&["Ana Maria", "Maria Silva"]);
        assert_eq!(r3.redact("Ana Maria Silva spoke").0, format!("{W} spoke"));
    }

    #[test]
    fn any_script_any_case() {
        let r = r(&["Мария", "Élodie", "Σωκράτης", "Weiß"]);
        assert_eq!(
            r.redact("МАРИЯ, мария и Марияна").0,
            format!("{W}, {W} и Марияна")
        );
        assert_eq!(r.redact("ÉLODIE et elodie").0, format!("{W} et {W}"));
        assert_eq!(r.redact("ΣΩΚΡΆΤΗΣ είπε").0, format!("{W} είπε"));
        assert_eq!(r.redact("Frau WEISS").0, format!("Frau {W}"));
    }

    #[test]
    fn word_boundaries() {
        let r = r(&["Ana", "Jean-Pierre"]);
        for (text, want) in [
            ("Ana's work", format!("{W}'s work")),
            ("(Ana)", format!("({W})")),
            ("Ana2 and 3Ana", format!("{W}2 and 3{W}")),
            ("Ana—who", format!("{W}—who")),
            (
                "Anatoly, Juliana, banana",
                "Anatoly, Juliana, banana".into(),
            ),
            ("jean pierre and JEAN–PIERRE", format!("{W} and {W}")),
            // An accent is no boundary: "Aná" is "Ana", accent and all.
            ("Ana\u{301} spoke", format!("{W} spoke")),
        ] {
            assert_eq!(r.redact(text).0, want, "{text}");
        }
    }

    /// Han, kana, Thai: no spaces between words, so a listed name is withheld wherever it
    /// stands; a Latin name beside such a character still counts as a whole word.
    #[test]
    fn scripts_without_spaces() {
        let r = r(&["王芳", "สมชาย", "Ana"]);
        assert_eq!(r.redact("我们和王芳说话").0, format!("我们和{W}说话"));
        assert_eq!(r.redact("คุณสมชายพูด").0, format!("คุณ{W}พูด"));
        assert_eq!(r.redact("和Ana说").0, format!("和{W}说"));
    }

    /// Random texts around listed names, in every case and accent variant, touching
    /// punctuation, digits and each other: no listed name is left as a whole word (checked
    /// by splitting the output into words, not by the matcher), and every other word is
    /// kept, in order.
    #[test]
    fn no_listed_name_survives_random_text() {
        use proptest::prelude::*;
        let names = [
            "Sam",
            "Sam Ray",
            "Ana Silva",
            "Silva",
            "Мария",
            "María José",
            "Élodie",
            "王芳",
            "Ana Maria",
            "Maria Silva",
        ];
        let fillers = [
            "Rayburn",
            "Juliana",
            "Anatoly",
            "Samuel",
            "Silvana",
            "Марияна",
            "spoke",
            "police",
            "raid",
            "我们",
            "说话",
            "josefina",
            "jean-luc",
        ];
        let seps = [
            " ", ", ", ". ", " (", ") ", "-", " 3", "'s ", "\n", "—", "", "2",
        ];
        let redactor = r(&names);
        let plain = |s: &str| -> String {
            s.nfd()
                .filter(|c| !accent(*c))
                .flat_map(char::to_lowercase)
                .collect()
        };
        let variant = |name: &str, v: u8| -> String {
            match v % 4 {
                0 => name.to_string(),
                1 => name.to_uppercase(),
                2 => plain(name),
                _ => name.nfd().collect(),
            }
        };
        let token = prop_oneof![
            (0..names.len(), any::<u8>()).prop_map(move |(i, v)| (true, variant(names[i], v))),
            (0..fillers.len()).prop_map(move |i| (false, fillers[i].to_string())),
        ];
        let text = proptest::collection::vec((token, 0..seps.len()), 1..12);
        let config = ProptestConfig {
            cases: 2000,
            ..ProptestConfig::default()
        };
        proptest!(config, |(tokens in text)| {
            let mut input = String::new();
            for ((_, t), s) in &tokens {
                input.push_str(t);
                input.push_str(seps[*s]);
            }
            let (out, _) = redactor.redact(&input);
            // Every filler word that stood as a whole word is still there, in order.
            let mut rest = out.as_str();
            let letter = |c: Option<char>| c.is_some_and(|c| c.is_alphabetic() && !unspaced(c));
            for ((_, t), s) in tokens.iter().filter(|((name, _), _)| !name) {
                let alone = !letter(seps[*s].chars().next());
                if let Some(at) = rest.find(t.as_str()) {
                    rest = &rest[at + t.len()..];
                } else {
                    prop_assert!(!alone, "{t:?} lost from {input:?}: {out:?}");
                }
            }
            // No listed name stands in the output as a whole word (or, in Han, anywhere).
            let words: Vec<String> = plain(&out)
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect();
            for name in names {
                let name = plain(name);
                if name.chars().all(unspaced) {
                    prop_assert!(!plain(&out).contains(&name), "{name} in {out:?}");
                    continue;
                }
                let want: Vec<&str> = name.split(' ').collect();
                prop_assert!(
                    !words.windows(want.len()).any(|w| w == want.as_slice()),
                    "{name:?} left in {out:?} (from {input:?})"
                );
            }
        });
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
