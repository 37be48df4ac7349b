//! Text folding for matching: the same function folds glossary terms and caption text, so a
//! term matches however it is cased, accented, hyphenated or (lightly) inflected.
//!
//! - Unicode compatibility decomposition (NFKD: full-width letters, ligatures, composed
//!   accents all come apart) and lower case.
//! - Accents dropped on Latin letters ("despenalización" = "despenalizacion"); marks are kept
//!   in every other script, where they are letters (Thai and Devanagari vowel signs, Bengali
//!   virama) or change the letter (Cyrillic й).
//! - Anything that is not a letter, digit or mark becomes one space; so word boundaries are
//!   spaces in the folded text.
//! - Light stemming per word for the inflected languages tolk's glossary covers: plural `-s`
//!   in English, `-s`/`-es` in Spanish, Portuguese, French and Dutch, common case and number
//!   endings in Russian and Ukrainian, plural and oblique endings in Hindi (यौनकर्मियों →
//!   यौनकर्मी) and case, plural and classifier suffixes in Bengali (যৌনকর্মীদের → যৌনকর্মী).
//!   Both sides are stemmed the same way, so the stems only need to be consistent, not
//!   linguistically right.
//!
//! Every folded byte remembers the byte range of the original character it came from, so a
//! match in folded text maps back to a span of the original.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Folded text with a map back to the original.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    pub text: String,
    /// For each byte of `text`: the byte range in the original of the character it came from.
    pub map: Vec<(usize, usize)>,
}

/// Whether a character belongs to a script written without spaces between words (Thai, Lao,
/// Khmer, Myanmar, Chinese, Japanese): matches there need no word boundary.
pub fn unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF   // Thai, Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1780..=0x17FF // Khmer
        | 0x3040..=0x30FF // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified
        | 0xF900..=0xFAFF // CJK compatibility
        | 0x20000..=0x2FA1F)
}

fn latin(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c as u32, 0x00C0..=0x024F | 0x1E00..=0x1EFF)
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// The base language of a BCP-47 tag ("es-AR" → "es", "zh-Hant-TW" → "zh").
pub fn base_lang(tag: &str) -> &str {
    tag.split(['-', '_']).next().unwrap_or(tag)
}

/// Folds `text` written in language `lang` (a BCP-47 tag).
pub fn fold(text: &str, lang: &str) -> Folded {
    fold_with(text, lang, true)
}

/// The folded text alone, without the map back (for glossary patterns, which are never
/// mapped back): the same text as [`fold`], less than half the work.
pub fn fold_text(text: &str, lang: &str) -> String {
    fold_with(text, lang, false).text
}

/// The separators inside acronyms spelled out letter by letter ("N S W P", "U.N.", "H-I-V"):
/// byte ranges of `text` that folding drops, so the letters fold to one word ("nswp") as the
/// acronym written whole does. A run is three capital letters or more, each a word alone,
/// separated by spaces, dots or hyphens — or two with dots ("U.N.").
fn spelled_out(text: &str) -> Vec<(usize, usize)> {
    let mut skip = Vec::new();
    // The current run: its letters' count, the separators between them, whether dotted.
    let mut seps: Vec<(usize, usize)> = Vec::new();
    let mut letters = 0;
    let mut dotted = false;
    let mut close = |seps: &mut Vec<(usize, usize)>, letters: usize, dotted: bool| {
        if letters >= 3 || (letters == 2 && dotted) {
            skip.extend_from_slice(&seps[..letters - 1]);
        }
        seps.clear();
    };
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !c.is_alphanumeric() {
            continue;
        }
        // A word: c and the letters after it.
        let mut end = i + c.len_utf8();
        let mut single = true;
        while let Some(&(j, d)) = chars.peek() {
            if !(d.is_alphanumeric() || is_combining_mark(d)) {
                break;
            }
            single = false;
            end = j + d.len_utf8();
            chars.next();
        }
        let letter = single && c.is_uppercase();
        // Separated from the run's last letter by dots, hyphens and spaces only.
        let joins = letter
            && letters > 0
            && seps.last().is_some_and(|&(a, b)| {
                b == i && b - a <= 3 && text[a..b].chars().all(|x| matches!(x, ' ' | '.' | '-'))
            });
        if letter && joins {
            letters += 1;
        } else {
            close(&mut seps, letters, dotted);
            letters = usize::from(letter);
            dotted = false;
        }
        if letter {
            // The separator after this letter, up to the next word (or the text's end).
            let after = text[end..]
                .find(|x: char| x.is_alphanumeric())
                .map_or(text.len(), |k| end + k);
            dotted |= text[end..after].contains('.');
            seps.push((end, after));
        }
    }
    close(&mut seps, letters, dotted);
    skip
}

fn fold_with(text: &str, lang: &str, with_map: bool) -> Folded {
    let lang = base_lang(lang);
    let skip = spelled_out(text);
    let mut out = Folded {
        text: String::with_capacity(text.len()),
        map: Vec::with_capacity(if with_map { text.len() } else { 0 }),
    };
    // Start (in `out.text`) of the word being built, to stem it when it ends.
    let mut word_start: Option<usize> = None;
    let mut last_base_latin = false;
    let mut emit = |out: &mut Folded, l: char, range: (usize, usize)| {
        if word_char(l) {
            if word_start.is_none() {
                word_start = Some(out.text.len());
            }
            push(out, l, range, with_map);
        } else {
            if let Some(s) = word_start.take() {
                stem(out, s, lang);
            }
            if !out.text.is_empty() && !out.text.ends_with(' ') {
                push(out, ' ', range, with_map);
            }
        }
    };
    for (i, c) in text.char_indices() {
        if skip.iter().any(|&(a, b)| a <= i && i < b) {
            continue;
        }
        let range = (i, i + c.len_utf8());
        if c.is_ascii() {
            // ASCII is its own decomposition; most captions and patterns are mostly ASCII.
            last_base_latin = c.is_ascii_alphabetic();
            emit(&mut out, c.to_ascii_lowercase(), range);
            continue;
        }
        for d in std::iter::once(c).nfkd() {
            if is_combining_mark(d) {
                if last_base_latin {
                    continue;
                }
            } else {
                last_base_latin = latin(d);
            }
            for l in d.to_lowercase() {
                emit(&mut out, l, range);
            }
        }
    }
    if let Some(s) = word_start {
        stem(&mut out, s, lang);
    }
    if out.text.ends_with(' ') {
        out.text.pop();
        out.map.pop();
    }
    out
}

fn push(out: &mut Folded, c: char, range: (usize, usize), with_map: bool) {
    out.text.push(c);
    if with_map {
        out.map.extend(std::iter::repeat_n(range, c.len_utf8()));
    }
}

const RU_ENDINGS: &[&str] = &[
    "ями", "ами", "ого", "его", "ому", "ему", "ыми", "ими", "ой", "ей", "ий", "ый", "ая", "яя",
    "ое", "ее", "ые", "ие", "ов", "ев", "ам", "ям", "ах", "ях", "ом", "ем", "ую", "юю", "ів", "ою",
    "єю", "і", "ї", "а", "я", "о", "е", "є", "и", "ы", "у", "ю", "ь", "й",
];

/// Hindi plural and oblique endings, each with the singular ending it stands for: the
/// feminine -ी plural -ियों/-ियाँ, -ा plural -ाओं/-ाएँ, the bare -ों/-ें of consonant stems.
/// Not -ी → nothing: तस्करी (trafficking) would become तस्कर (trafficker).
const HI_ENDINGS: &[(&str, &str)] = &[
    ("ियों", "ी"),
    ("ियाँ", "ी"),
    ("ियां", "ी"),
    ("ाओं", "ा"),
    ("ाएँ", "ा"),
    ("ाएं", "ा"),
    ("ुओं", "ु"),
    ("ों", ""),
    ("ें", ""),
];

/// Bengali suffixes (plural, case, classifier) that are stripped, longest first. Not a lone
/// -র or -ে: অধিকার (rights) ends in one.
const BN_ENDINGS: &[(&str, &str)] = &[
    ("দেরকে", ""),
    ("গুলোর", ""),
    ("গুলো", ""),
    ("গুলি", ""),
    ("দের", ""),
    ("টির", ""),
    ("েরা", ""),
    ("ের", ""),
    ("রা", ""),
    ("টি", ""),
    ("টা", ""),
    ("কে", ""),
];

/// A table of endings in the form folded text has them (NFKD: Bengali ো is ে + া).
fn folded_endings(table: &'static [(&'static str, &'static str)]) -> Vec<(String, String)> {
    table
        .iter()
        .map(|(e, r)| (e.nfkd().collect(), r.nfkd().collect()))
        .collect()
}

/// Strips an inflectional ending from the word at `out.text[start..]`.
fn stem(out: &mut Folded, start: usize, lang: &str) {
    static HI: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    static BN: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    let word = &out.text[start..];
    let chars = word.chars().count();
    let table = match lang {
        "hi" => Some(HI.get_or_init(|| folded_endings(HI_ENDINGS))),
        "bn" => Some(BN.get_or_init(|| folded_endings(BN_ENDINGS))),
        _ => None,
    };
    if let Some(table) = table {
        // At least three characters (letters and their signs) stay.
        let found = table
            .iter()
            .find(|(e, _)| word.ends_with(e.as_str()) && chars >= e.chars().count() + 3);
        if let Some((e, r)) = found {
            let keep = out.text.len() - e.len();
            // The replacement stands for the whole ending in the original.
            let range = out.map.get(keep).copied().map(|(a, _)| {
                let b = out.map.last().map_or(a, |&(_, b)| b);
                (a, b)
            });
            out.text.truncate(keep);
            out.map.truncate(keep);
            out.text.push_str(r);
            if let Some(range) = range {
                out.map.extend(std::iter::repeat_n(range, r.len()));
            }
        }
        return;
    }
    let cut = match lang {
        "en" if chars > 3 => {
            if word.ends_with("ies") && chars > 4 {
                // countries → countr(y): "y" and "ies" both fold to "countr".
                3
            } else if word.ends_with('y') || (word.ends_with('s') && !word.ends_with("ss")) {
                1
            } else {
                0
            }
        }
        "es" | "pt" | "fr" | "nl" if chars > 3 => {
            let b = word.as_bytes();
            if word.ends_with("es") && chars > 4 && b"lrndzj".contains(&b[b.len() - 3]) {
                2
            } else if word.ends_with('s') && !word.ends_with("ss") {
                1
            } else {
                0
            }
        }
        "ru" | "uk" if chars > 4 => RU_ENDINGS
            .iter()
            .find(|e| word.ends_with(*e) && chars - e.chars().count() >= 3)
            .map(|e| e.len())
            .unwrap_or(0),
        _ => 0,
    };
    if cut > 0 {
        let keep = out.text.len() - cut;
        out.text.truncate(keep);
        out.map.truncate(keep);
    }
}

/// Whether `folded[a..b]` stands on word boundaries (or needs none: unspaced scripts).
pub fn on_boundaries(folded: &str, a: usize, b: usize) -> bool {
    let first = folded[a..].chars().next();
    let last = folded[..b].chars().next_back();
    let left_ok = a == 0
        || folded[..a].ends_with(' ')
        || first.is_some_and(unspaced)
        || folded[..a].chars().next_back().is_some_and(unspaced);
    let right_ok = b == folded.len()
        || folded[b..].starts_with(' ')
        || last.is_some_and(unspaced)
        || folded[b..].chars().next().is_some_and(unspaced);
    left_ok && right_ok
}

impl Folded {
    /// The original byte span of `self.text[a..b]`, widened to whole words of the original
    /// (a stemmed ending belongs to the word) unless the script has no spaces.
    pub fn original_span(&self, original: &str, a: usize, b: usize) -> (usize, usize) {
        let start = self.map[a].0;
        let mut end = self.map[b - 1].1;
        let last = original[..end].chars().next_back();
        if !last.is_some_and(unspaced) {
            while let Some(c) = original[end..].chars().next() {
                if !word_char(c) || unspaced(c) {
                    break;
                }
                end += c.len_utf8();
            }
        }
        (start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_accents_and_punctuation_fold_away_in_latin_scripts() {
        assert_eq!(fold("Despenalización", "es").text, "despenalizacion");
        assert_eq!(fold("Sex-Work!", "en").text, "sex work");
        assert_eq!(fold("ＮＳＷＰ", "en").text, "nswp");
        assert_eq!(
            fold("  décriminalisation  ", "fr").text,
            "decriminalisation"
        );
    }

    #[test]
    fn hindi_and_bengali_plurals_fold_to_the_singular() {
        let same = |a: &str, b: &str, lang: &str| {
            assert_eq!(fold_text(a, lang), fold_text(b, lang), "{a} / {b}");
        };
        same("यौनकर्मियों", "यौनकर्मी", "hi");
        same("महिलाओं", "महिला", "hi");
        same("कार्यों", "कार्य", "hi");
        same("যৌনকর্মীদের", "যৌনকর্মী", "bn");
        same("যৌনকর্মীরা", "যৌনকর্মী", "bn");
        same("অধিকারগুলো", "অধিকার", "bn");
        same("অধিকারের", "অধিকার", "bn");
        // Kept apart: trafficking and trafficker; a short word keeps its ending.
        assert_ne!(fold_text("तस्करी", "hi"), fold_text("तस्कर", "hi"));
        assert_eq!(fold_text("ওরা", "bn"), "ওরা".nfkd().collect::<String>());
        // The whole inflected word maps back to the original.
        let text = "সব যৌনকর্মীদের জন্য";
        let f = fold(text, "bn");
        let stem = fold_text("যৌনকর্মী", "bn");
        let a = f.text.find(&stem).unwrap();
        let (rs, re) = f.original_span(text, a, a + stem.len());
        assert_eq!(&text[rs..re], "যৌনকর্মীদের");
    }

    #[test]
    fn marks_are_kept_where_they_are_letters() {
        // Thai vowel sign and tone mark, Devanagari vowel sign, Bengali virama, Cyrillic й.
        assert_eq!(fold("พนักงานบริการ", "th").text, "พนักงานบริการ");
        assert_eq!(
            fold("यौनकर्मी", "hi").text,
            "यौनकर्मी".nfkd().collect::<String>()
        );
        assert!(fold("যৌনকর্মী", "bn").text.contains('\u{09CD}'));
        assert_ne!(fold("чайка", "ru").text, fold("чаика", "ru").text);
    }

    #[test]
    fn inflections_fold_to_the_same_stem() {
        let same =
            |a: &str, b: &str, l: &str| assert_eq!(fold(a, l).text, fold(b, l).text, "{a} / {b}");
        same("sex workers", "sex worker", "en");
        same("raids", "raid", "en");
        same("STIs", "STI", "en");
        same("countries", "country", "en");
        same("trabajadoras sexuales", "trabajadora sexual", "es");
        same("декриминализации", "декриминализация", "ru");
        same("секс-работников", "секс-работники", "ru");
        same("торговли людьми", "торговля людьми", "ru");
        assert_ne!(fold("rate", "en").text, fold("raid", "en").text);
    }

    #[test]
    fn spans_map_back_to_whole_original_words() {
        let t = "Les travailleuses du sexe, décriminalisées.";
        let f = fold(t, "fr");
        let a = f.text.find("decriminalisee").unwrap();
        let b = a + "decriminalisee".len();
        let (s, e) = f.original_span(t, a, b);
        assert_eq!(&t[s..e], "décriminalisées");
    }

    #[test]
    fn acronyms_spelled_out_fold_as_written_whole() {
        assert_eq!(fold_text("the N S W P said", "en"), "the nswp said");
        assert_eq!(
            fold_text("N.S.W.P. and U.N. staff", "en"),
            "nswp and un staff"
        );
        assert_eq!(fold_text("H-I-V test", "en"), fold_text("HIV test", "en"));
        assert_eq!(fold_text("В И Ч", "ru"), fold_text("ВИЧ", "ru"));
        // Not an acronym: two capitals without dots, letters in a list, a lone "I".
        assert_eq!(fold_text("plan B I think", "en"), "plan b i think");
        assert_eq!(fold_text("options A, B, C", "en"), "option a b c");
        assert_eq!(fold_text("I said a b c", "en"), "i said a b c");
        // The joined word maps back to the letters' whole span.
        let text = "ask the N S W P now";
        let f = fold(text, "en");
        let at = f.text.find("nswp").expect("joined");
        assert_eq!(f.map[at].0, text.find('N').unwrap());
        assert_eq!(f.map[at + 3].1, text.find('P').unwrap() + 1);
    }

    /// The text alone is the same text, ASCII or not.
    #[test]
    fn the_text_alone_is_the_same_text() {
        for (t, l) in [
            ("Sex Workers' RIGHTS, décriminalisées", "fr"),
            ("ＮＳＷＰ and Tais Plus", "en"),
            ("секс-работников и торговли людьми", "ru"),
            ("คนทำงานบริการทางเพศ 性工作者", "th"),
            ("  trailing  ", "en"),
        ] {
            assert_eq!(fold_text(t, l), fold(t, l).text, "{t}");
            assert_eq!(fold(t, l).map.len(), fold(t, l).text.len(), "{t}");
        }
    }

    #[test]
    fn boundaries() {
        let f = fold("the sextant", "en").text;
        let a = f.find("sex").unwrap();
        assert!(!on_boundaries(&f, a, a + 3));
        let f = fold("คนทำงานบริการทางเพศ", "th").text;
        let a = f.find("งานบริการ").unwrap();
        assert!(on_boundaries(&f, a, a + "งานบริการ".len()));
    }
}
