//! Glossary speed and memory (criterion): loading a 10,000-concept glossary, annotating a
//! 40-word segment with it and with the real sex-work-rights glossary.
//!
//! ```sh
//! cargo bench --bench glossary
//! ```
//!
//! The 10,000-concept file is generated: every concept with terms in the seven required
//! languages, a misrecognition with a context rule and a flagged variant, the shape of the
//! real glossary at 57 times its size.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use tolk::glossary::{AnnotateOptions, Glossary};

const SEGMENT: &str = "We met the police after the raid and rescue operation, and the sex \
workers who were detained asked NSWP and Legalife for help with deportation, PrEP and the \
full discrimination of sex work under the Nordic model in Kenya today.";

fn big_glossary() -> String {
    let mut s = String::from(
        "[glossary]\nid = \"big\"\ntitle = \"synthetic\"\nlanguages = [\"en\", \"es\", \"ru\", \"zh-Hant\", \"th\", \"bn\", \"hi\"]\n\n[[source]]\nid = \"S1\"\ntitle = \"synthetic\"\n\n",
    );
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    ];
    for i in 0..10_000 {
        let w = |k: usize| words[(i / 10usize.pow(k as u32)) % 10];
        let en = format!("{} {} {} {}", w(0), w(1), w(2), w(3));
        s.push_str(&format!(
            "[[concept]]\nid = \"X{i}\"\ncategory = \"law\"\ndefinition = \"synthetic concept {i}\"\n"
        ));
        for (lang, text) in [
            ("en", en.clone()),
            ("es", format!("{en} es")),
            ("ru", format!("термин {i}")),
            ("zh-Hant", format!("術語{i}")),
            ("th", format!("คำศัพท์{i}")),
            ("bn", format!("পরিভাষা {i}")),
            ("hi", format!("शब्द {i}")),
        ] {
            s.push_str(&format!(
                "[[concept.term]]\nlang = \"{lang}\"\ntext = \"{text}\"\nsource = \"S1\"\n"
            ));
        }
        s.push_str(&format!(
            "[[concept.term]]\nlang = \"en\"\ntext = \"{en} bad\"\nstatus = \"flagged\"\nreason = \"synthetic\"\n"
        ));
        s.push_str(&format!(
            "[[concept.asr]]\nlang = \"en\"\nheard = \"{} {} {} {} x\"\nnear = [\"law\", \"police\"]\n\n",
            w(0),
            w(1),
            w(2),
            w(3)
        ));
    }
    s
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    std::fs::write(&big, big_glossary()).unwrap();
    let real = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("glossaries/sex-work-rights.toml");

    // Memory: resident size grown by loading the big glossary once.
    let before = rss_kb();
    let g_big = Glossary::load(&big).unwrap();
    let after = rss_kb();
    eprintln!(
        "10,000-concept glossary: {} concepts, resident memory +{:.1} MB",
        g_big.file.concepts.len(),
        (after.saturating_sub(before)) as f64 / 1024.0
    );
    let g_real = Glossary::load(&real).unwrap();
    let opts = AnnotateOptions {
        targets: vec!["es".into(), "ru".into()],
        flags: true,
    };
    assert_eq!(SEGMENT.split_whitespace().count(), 40);
    eprintln!(
        "real glossary on the segment: {:?}",
        g_real
            .annotate(SEGMENT, "en", &opts)
            .hits
            .iter()
            .map(|h| h.concept.as_str())
            .collect::<Vec<_>>()
    );

    let mut group = c.benchmark_group("glossary");
    group.sample_size(10);
    group.bench_function("load 10,000 concepts", |b| {
        b.iter(|| Glossary::load(black_box(&big)).unwrap())
    });
    group.finish();
    c.bench_function("annotate 40 words, real glossary", |b| {
        b.iter(|| g_real.annotate(black_box(SEGMENT), "en", &opts))
    });
    c.bench_function("annotate 40 words, 10,000 concepts", |b| {
        b.iter(|| g_big.annotate(black_box(SEGMENT), "en", &opts))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
