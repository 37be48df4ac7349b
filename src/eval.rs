//! Text normalisation and word error rate (WER), for tests and benchmarks.
//!
//! Both sides are normalised the same way before they are compared, as Whisper's own
//! evaluation does: lower case, accents and punctuation removed, hyphens as spaces, and numbers
//! written digit by digit in words (`500` and `5-0-0` both become `five zero zero` in English,
//! `cinco cero cero` in Spanish), because references and Whisper disagree on how to write them.

use unicode_normalization::UnicodeNormalization;

const DIGITS_EN: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const DIGITS_ES: [&str; 10] = [
    "cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve",
];

/// Normalises text into words for scoring. `lang` is an ISO 639-1 code; numbers are spelled
/// out for `en` and `es`, and kept as digits for other languages.
pub fn normalize(text: &str, lang: &str) -> Vec<String> {
    let digits = match lang {
        "es" => Some(&DIGITS_ES),
        "en" => Some(&DIGITS_EN),
        _ => None,
    };
    let mut cleaned = String::with_capacity(text.len());
    for c in text.nfkd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        if c.is_ascii_digit() {
            match digits {
                Some(words) => {
                    cleaned.push(' ');
                    cleaned.push_str(words[(c as u8 - b'0') as usize]);
                    cleaned.push(' ');
                }
                None => cleaned.push(c),
            }
        } else if c == '\'' || c == '’' {
            // "light's" and "lights" are the same word to a listener.
        } else if c.is_alphanumeric() {
            cleaned.extend(c.to_lowercase());
        } else {
            cleaned.push(' ');
        }
    }
    cleaned.split_whitespace().map(str::to_string).collect()
}

/// The outcome of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Wer {
    /// Substitutions + deletions + insertions.
    pub errors: usize,
    /// Words in the reference.
    pub reference_words: usize,
}

impl Wer {
    /// The rate, errors / reference words (0 for an empty reference and hypothesis).
    pub fn rate(&self) -> f64 {
        if self.reference_words == 0 {
            return if self.errors == 0 { 0.0 } else { 1.0 };
        }
        self.errors as f64 / self.reference_words as f64
    }
}

/// Word-level edit distance between normalised words.
pub fn edit_distance(reference: &[String], hypothesis: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    let mut cur = vec![0; hypothesis.len() + 1];
    for (i, r) in reference.iter().enumerate() {
        cur[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let sub = prev[j] + usize::from(r != h);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[hypothesis.len()]
}

/// WER of `hypothesis` against `reference`, both normalised for `lang`.
pub fn wer(reference: &str, hypothesis: &str, lang: &str) -> Wer {
    let r = normalize(reference, lang);
    let h = normalize(hypothesis, lang);
    Wer {
        errors: edit_distance(&r, &h),
        reference_words: r.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_punctuation_accents_and_numbers() {
        assert_eq!(
            normalize("Ask not, what—your Country!", "en"),
            ["ask", "not", "what", "your", "country"]
        );
        assert_eq!(
            normalize("información técnica", "es"),
            ["informacion", "tecnica"]
        );
        assert_eq!(
            normalize("marque 500", "es"),
            normalize("marque 5-0-0", "es")
        );
        assert_eq!(
            normalize("marque 500", "es"),
            ["marque", "cinco", "cero", "cero"]
        );
        assert_eq!(normalize("1.", "en"), ["one"]);
        assert_eq!(normalize("Light's", "en"), ["lights"]);
        assert_eq!(normalize("Привет, мир", "ru"), ["привет", "мир"]);
    }

    #[test]
    fn counts_substitutions_deletions_insertions() {
        let w = wer("the cat sat on the mat", "the cat sat on mat", "en");
        assert_eq!((w.errors, w.reference_words), (1, 6));
        let w = wer("a b c", "a x c d", "en");
        assert_eq!(w.errors, 2);
        assert_eq!(wer("same words", "Same, words.", "en").rate(), 0.0);
        assert_eq!(wer("", "", "en").rate(), 0.0);
        assert_eq!(wer("", "noise", "en").rate(), 1.0);
    }
}
