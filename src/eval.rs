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
    pub substitutions: usize,
    /// Reference words the hypothesis does not have.
    pub deletions: usize,
    /// Hypothesis words the reference does not have.
    pub insertions: usize,
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

/// One step of a minimum-edit alignment of reference words (`r`) to hypothesis words (`h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Match {
        r: usize,
        h: usize,
    },
    Substitute {
        r: usize,
        h: usize,
    },
    /// The reference word `r` is missing from the hypothesis.
    Delete {
        r: usize,
    },
    /// The hypothesis word `h` is not in the reference.
    Insert {
        h: usize,
    },
}

/// A minimum-edit alignment of `reference` to `hypothesis`, in order. Among alignments of
/// equal cost, matches are preferred to a substitution with a deletion and an insertion.
pub fn align(reference: &[String], hypothesis: &[String]) -> Vec<Step> {
    let (n, m) = (reference.len(), hypothesis.len());
    // d[i][j]: the cost of aligning reference[i..] with hypothesis[j..].
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..=n).rev() {
        for j in (0..=m).rev() {
            d[i][j] = if i == n {
                m - j
            } else if j == m {
                n - i
            } else {
                let sub = d[i + 1][j + 1] + usize::from(reference[i] != hypothesis[j]);
                sub.min(d[i + 1][j] + 1).min(d[i][j + 1] + 1)
            };
        }
    }
    let mut steps = Vec::with_capacity(n.max(m));
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && reference[i] == hypothesis[j] && d[i][j] == d[i + 1][j + 1] {
            steps.push(Step::Match { r: i, h: j });
            (i, j) = (i + 1, j + 1);
        } else if i < n && d[i][j] == d[i + 1][j] + 1 {
            steps.push(Step::Delete { r: i });
            i += 1;
        } else if j < m && d[i][j] == d[i][j + 1] + 1 {
            steps.push(Step::Insert { h: j });
            j += 1;
        } else {
            steps.push(Step::Substitute { r: i, h: j });
            (i, j) = (i + 1, j + 1);
        }
    }
    steps
}

/// Edit distance (Levenshtein) between two sequences: normalised words for WER, letters
/// for the glossary's sound-alikes.
pub fn edit_distance<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> usize {
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

/// WER of `hypothesis` against `reference`, both normalised for `lang`, with its
/// substitutions, deletions and insertions.
pub fn wer(reference: &str, hypothesis: &str, lang: &str) -> Wer {
    let r = normalize(reference, lang);
    let h = normalize(hypothesis, lang);
    let mut w = Wer {
        errors: 0,
        reference_words: r.len(),
        substitutions: 0,
        deletions: 0,
        insertions: 0,
    };
    for step in align(&r, &h) {
        match step {
            Step::Match { .. } => {}
            Step::Substitute { .. } => w.substitutions += 1,
            Step::Delete { .. } => w.deletions += 1,
            Step::Insert { .. } => w.insertions += 1,
        }
    }
    w.errors = w.substitutions + w.deletions + w.insertions;
    w
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
        let w = wer("a b c d e", "a x c e f g", "en");
        assert_eq!(
            (w.substitutions, w.deletions, w.insertions, w.errors),
            (1, 1, 2, 4)
        );
    }

    #[test]
    fn the_alignment_has_the_edit_distance_and_covers_both_sides() {
        let words = |s: &str| normalize(s, "en");
        for (r, h) in [
            ("the cat sat on the mat", "the cat sat on mat"),
            ("ask not what your country", "ask what your country can do"),
            ("", "noise words"),
            ("one two three", ""),
            ("a b a b a", "b a b a b"),
        ] {
            let (r, h) = (words(r), words(h));
            let steps = align(&r, &h);
            let cost = steps
                .iter()
                .filter(|s| !matches!(s, Step::Match { .. }))
                .count();
            assert_eq!(cost, edit_distance(&r, &h), "{r:?} {h:?}");
            let rs: Vec<usize> = steps
                .iter()
                .filter_map(|s| match s {
                    Step::Match { r, .. } | Step::Substitute { r, .. } | Step::Delete { r } => {
                        Some(*r)
                    }
                    Step::Insert { .. } => None,
                })
                .collect();
            assert_eq!(rs, (0..r.len()).collect::<Vec<_>>());
        }
        let steps = align(&words("ask not what"), &words("ask what"));
        assert_eq!(
            steps,
            [
                Step::Match { r: 0, h: 0 },
                Step::Delete { r: 1 },
                Step::Match { r: 2, h: 1 }
            ]
        );
    }
}
