//! Term benchmark: the glossary's terms and names in domain sentences (`benches/terms.toml`),
//! spoken by espeak-ng's voice for each language, streamed through the live engine (virtual
//! clock, greedy decodes as live), and the share of the expected terms a reader finds in the
//! captions: with no glossary, with the glossary's corrections, and with its terms also in
//! Whisper's prompt (`--bias`).
//!
//! ```sh
//! cargo bench --bench terms -- [--model base] [--langs en,es,zh-Hant]
//! ```
//!
//! Also counts what the bias must never do: a caption that is mostly prompt terms (an echo),
//! a repetition loop, a U+FFFD; and the glossary's false corrections on ordinary speech: the
//! long-form programs of the streaming benchmark (no term of the meeting in them), transcribed
//! offline, each segment annotated — every correction there is one that should not have been
//! made. Prints Markdown rows for `benches/README.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tolk::glossary::{AnnotateOptions, Glossary};
use tolk::stream::engine::{self, Pacing};
use tolk::stream::lang::LanguageMode;
use tolk::stream::policy::{Event, PolicyConfig};

mod common;
use common::{arg, program};

#[derive(serde::Deserialize)]
struct Sentences {
    sentence: Vec<Sentence>,
}

#[derive(serde::Deserialize)]
struct Sentence {
    lang: String,
    text: String,
    /// Each: the forms a reader would accept, `|`-separated.
    terms: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Setup {
    NoGlossary,
    Corrections,
    Bias,
    Topic,
    /// The topic and as many of the glossary's first terms the session does not say.
    TopicWide,
}

impl Setup {
    fn label(self) -> &'static str {
        match self {
            Setup::NoGlossary => "no glossary",
            Setup::Corrections => "corrections",
            Setup::Bias => "corrections + bias",
            Setup::Topic => "corrections + topic",
            Setup::TopicWide => "corrections + topic, doubled with terms not said",
        }
    }
}

/// Whisper's code for a glossary language tag ("zh-Hant" → "zh").
fn whisper_lang(lang: &str) -> &str {
    lang.split('-').next().unwrap_or(lang)
}

/// espeak-ng's voice for a glossary language tag (Chinese: its Mandarin voice).
fn voice(lang: &str) -> &str {
    match whisper_lang(lang) {
        "zh" => "cmn",
        l => l,
    }
}

/// Speaks `text` in `lang` into a WAV file.
fn say(path: &Path, text: &str, lang: &str) {
    let out = std::process::Command::new("espeak-ng")
        .args(["-v", voice(lang), "-s", "150", "-w"])
        .arg(path)
        .arg(text)
        .output()
        .expect("espeak-ng (make bench installs it)");
    assert!(
        out.status.success(),
        "espeak-ng: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether one of the `|`-separated forms is in `text`, as whole words from its start
/// (`задержани` finds `задержанием`), compared as the WER scorer compares words; in Chinese
/// and Thai, written without spaces between words, anywhere.
fn found(text: &str, forms: &str, lang: &str) -> bool {
    // As the glossary decides it: by the script of the expected forms.
    let unspaced = forms.chars().any(tolk::glossary::fold::unspaced);
    let words = |t: &str| {
        let w = tolk::eval::normalize(t, lang);
        if unspaced {
            w.concat()
        } else {
            w.join(" ")
        }
    };
    let hay = format!(" {} ", words(text));
    forms.split('|').any(|f| {
        let needle = words(f);
        !needle.is_empty()
            && if unspaced {
                hay.contains(&needle)
            } else {
                hay.contains(&format!(" {needle}"))
            }
    })
}

/// A phrase of 1–4 words said three times or more in a row, or a word of 3+ repeated
/// syllables run together ("pampampampam").
fn looped(text: &str) -> bool {
    let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
    for n in 1..=4 {
        for i in 0..words.len() {
            if i + 3 * n <= words.len()
                && words[i..i + n] == words[i + n..i + 2 * n]
                && words[i..i + n] == words[i + 2 * n..i + 3 * n]
            {
                return true;
            }
        }
    }
    words.iter().any(|w| {
        let c: Vec<char> = w.chars().collect();
        (2..=4).any(|n| {
            c.len() >= 4 * n
                && c.windows(n)
                    .enumerate()
                    .any(|(i, s)| (1..4).all(|k| c.get(i + k * n..i + (k + 1) * n) == Some(s)))
        })
    })
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("term benchmark: run it with `cargo bench --bench terms`");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model_name = arg("--model", "base");
    let model = Arc::new(common::model(&model_name));
    let glossary = Glossary::load(&root.join("glossaries/sex-work-rights.toml")).expect("glossary");
    let sentences: Sentences =
        toml::from_str(&std::fs::read_to_string(root.join("benches/terms.toml")).unwrap())
            .expect("benches/terms.toml");
    // `--langs en,es`: only these languages' sentences (and false-correction counts).
    let langs = arg("--langs", "");
    let wanted = |l: &str| langs.is_empty() || langs.split(',').any(|w| w == l);
    let dir = tempfile::tempdir().unwrap();
    let threads = tolk::transcribe::default_threads();
    let opts = AnnotateOptions {
        targets: Vec::new(),
        flags: true,
        in_domain: false,
    };

    // (setup, lang) → (terms found, terms expected, echoes, loops, broken characters)
    let mut tally: BTreeMap<(Setup, String), [usize; 6]> = BTreeMap::new();
    let mut printed = std::collections::BTreeSet::new();
    for (n, s) in sentences.sentence.iter().enumerate() {
        if !wanted(&s.lang) {
            continue;
        }
        let wav = dir.path().join(format!("{n}.wav"));
        say(&wav, &s.text, &s.lang);
        let audio = tolk::audio::decode_file(&wav)
            .expect("espeak-ng wrote it")
            .samples;
        // How many of Whisper's tokens a second of this speech needs (a live decode is capped
        // at `stream::decoder::max_tokens_per_sec` of its audio).
        println!(
            "{} sentence {n}: {:.1} tokens a second of speech",
            s.lang,
            model.token_count(&s.text) as f64 / (audio.len() as f64 / 16_000.0)
        );
        let bias = glossary.bias(&s.lang, tolk::stream::decoder::PROMPT_TOKENS / 2, |t| {
            model.token_count(t)
        });
        // The session's topic as an organizer would list it: every term and name of this
        // language's sentences (the session's vocabulary, not this sentence's alone).
        let topic = glossary.topic(&common::session_topic(&root, &s.lang), &s.lang);
        // An organizer's list is not exact: the same topic, and as many terms again that the
        // session never says (the glossary's general list, in its order), one of each pair
        // after the other.
        let unsaid: Vec<&String> = bias
            .iter()
            .filter(|b| {
                !topic.contains(b)
                    && !sentences
                        .sentence
                        .iter()
                        .any(|x| x.lang == s.lang && found(&x.text, b, &s.lang))
            })
            .take(topic.len())
            .collect();
        let wide: Vec<String> = topic
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                std::iter::once(t.clone()).chain(unsaid.get(i).map(|u| (*u).clone()))
            })
            .collect();
        if printed.insert(s.lang.clone()) {
            println!("{} topic: {}", s.lang, topic.join(", "));
            println!("{} topic, doubled: {}", s.lang, wide.join(", "));
        }
        for setup in [
            Setup::NoGlossary,
            Setup::Corrections,
            Setup::Bias,
            Setup::Topic,
            Setup::TopicWide,
        ] {
            let hints = match setup {
                Setup::Bias => bias.clone(),
                Setup::Topic => topic.clone(),
                Setup::TopicWide => wide.clone(),
                _ => Vec::new(),
            };
            let cfg = PolicyConfig {
                hints: hints.clone(),
                ..PolicyConfig::default()
            };
            let mut finals = Vec::new();
            engine::run(
                &model,
                &audio,
                LanguageMode::Fixed(whisper_lang(&s.lang).to_string()),
                false,
                cfg,
                threads,
                Pacing::Virtual,
                |e| {
                    if let Event::Final { text, .. } = e.event {
                        finals.push(text);
                    }
                },
            )
            .expect("stream");
            let raw = finals.join(" ");
            let text = match setup {
                Setup::NoGlossary => raw.clone(),
                _ => glossary.annotate(&raw, &s.lang, &opts).text,
            };
            let hit = s.terms.iter().filter(|t| found(&text, t, &s.lang)).count();
            // An echo: most of the caption's words are prompt terms the speaker did not say.
            let said = tolk::eval::normalize(&s.text, &s.lang).join(" ");
            let echoed: usize = hints
                .iter()
                .filter(|h| found(&text, h, &s.lang) && !found(&said, h, &s.lang))
                .map(|h| tolk::eval::normalize(h, &s.lang).len())
                .sum();
            let words = tolk::eval::normalize(&text, &s.lang).len();
            let echo = echoed * 2 > words.max(1);
            // Prompt terms in the caption that the sentence does not have.
            let unsaid: Vec<&String> = hints
                .iter()
                .filter(|h| found(&text, h, &s.lang) && !found(&said, h, &s.lang))
                .collect();
            let t = tally.entry((setup, s.lang.clone())).or_default();
            t[0] += hit;
            t[1] += s.terms.len();
            t[2] += echo as usize;
            t[3] += looped(&text) as usize;
            t[4] += text.contains('\u{FFFD}') as usize;
            t[5] += unsaid.len();
            println!("{:?} {} {}/{}: {text}", setup, s.lang, hit, s.terms.len());
            if !unsaid.is_empty() {
                println!("    (prompt terms written, not said: {unsaid:?})");
            }
            if text != raw {
                println!("    (Whisper wrote: {raw})");
            }
        }
    }

    // False corrections on ordinary speech.
    let mut false_rows = Vec::new();
    for lang in ["en", "es"].into_iter().filter(|l| wanted(l)) {
        let (audio, _) = program(&root, lang, 1e9);
        let transcript = common::offline(&model, &audio, lang, threads);
        // As one caption alone, and as a caption of a meeting whose recent captions held
        // terms (`in_domain`: the evidence rule then always holds — the worst case).
        for in_domain in [false, true] {
            let opts = AnnotateOptions {
                in_domain,
                ..opts.clone()
            };
            let (mut words, mut changed) = (0, 0);
            for seg in &transcript.segments {
                let a = glossary.annotate(&seg.text, lang, &opts);
                words += tolk::eval::normalize(&seg.text, lang).len();
                for c in &a.corrections {
                    changed += 1;
                    println!(
                        "false correction ({lang}, in domain: {in_domain}): {} → {} in {:?}",
                        c.from, c.to, seg.text
                    );
                }
            }
            false_rows.push(format!(
                "| {lang} | {} | {:.0} s | {words} | {changed} | {:.2} |",
                if in_domain { "yes" } else { "no" },
                audio.len() as f64 / 16_000.0,
                1000.0 * changed as f64 / words.max(1) as f64
            ));
        }
    }
    println!(
        "\n| language | recent terms (in domain) | ordinary speech | words | corrections made | per 1,000 words |\n|---|---|---|---|---|---|"
    );
    for r in false_rows {
        println!("{r}");
    }
    println!(
        "\n| setup | language | term recall | prompt terms written, not said | echoes | loops | U+FFFD |\n|---|---|---|---|---|---|---|"
    );
    for ((setup, lang), t) in &tally {
        println!(
            "| {} | {lang} | {:.2} ({}/{}) | {} | {} | {} | {} |",
            setup.label(),
            t[0] as f64 / t[1].max(1) as f64,
            t[0],
            t[1],
            t[5],
            t[2],
            t[3],
            t[4]
        );
    }
}
