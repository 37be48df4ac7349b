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

// The one unsafe block in the package: a counting global allocator, to measure the heap.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

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

/// The system allocator, counting the bytes live on the heap and their peak: what the
/// glossary itself holds, apart from what the allocator keeps for reuse after the parse.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn mb(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
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

    // Memory: the heap the loaded glossary holds, the peak while loading, and the resident
    // size grown (which includes what the allocator keeps from the parse for reuse).
    let before = rss_kb();
    let live0 = LIVE.load(Relaxed);
    PEAK.store(live0, Relaxed);
    let t = Instant::now();
    let g_big = Glossary::load(&big).unwrap();
    g_big.prepare(None).unwrap();
    let took = t.elapsed();
    let after = rss_kb();
    eprintln!(
        "10,000-concept glossary ({:.1} MB of TOML): {} concepts, first load with every matcher {:.0} ms, heap held {:.1} MB, heap peak while loading +{:.1} MB, resident memory +{:.1} MB",
        mb(std::fs::metadata(&big).unwrap().len() as usize),
        g_big.file.concepts.len(),
        took.as_secs_f64() * 1000.0,
        mb(LIVE.load(Relaxed) - live0),
        mb(PEAK.load(Relaxed) - live0),
        (after.saturating_sub(before)) as f64 / 1024.0
    );
    // Where a load's time goes: parsing the TOML (one piece, one core), folding the
    // patterns, building each language's matcher (one core each).
    let t = Instant::now();
    let text = std::fs::read_to_string(&big).unwrap();
    let file: tolk::glossary::GlossaryFile = toml::from_str(&text).unwrap();
    let parsed = t.elapsed();
    let t = Instant::now();
    let g = Glossary::new(file).unwrap();
    let folded = t.elapsed();
    let mut builds = Vec::new();
    for lang in ["en", "es", "ru", "zh", "th", "bn", "hi"] {
        let t = Instant::now();
        g.prepare(Some(&[lang])).unwrap();
        builds.push(format!("{lang} {:.0}", t.elapsed().as_secs_f64() * 1000.0));
    }
    drop(g);
    eprintln!(
        "10,000 concepts: parse {:.0} ms, check and fold {:.0} ms, matchers (ms) {}",
        parsed.as_secs_f64() * 1000.0,
        folded.as_secs_f64() * 1000.0,
        builds.join(", ")
    );
    // The cache: its first load parses and writes the entry, later ones read it.
    let cache = dir.path().join("cache");
    Glossary::load_cached(&big, &cache).unwrap();
    let t = Instant::now();
    let g = Glossary::load_cached(&big, &cache).unwrap();
    eprintln!(
        "10,000 concepts from the cache ({:.1} MB of JSON): read {:.0} ms",
        mb(std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .flat_map(|e| std::fs::read_dir(e.path()).unwrap().flatten())
            .map(|e| e.metadata().unwrap().len() as usize)
            .sum()),
        t.elapsed().as_secs_f64() * 1000.0
    );
    drop(g);
    let g_real = Glossary::load(&real).unwrap();
    let opts = AnnotateOptions {
        targets: vec!["es".into(), "ru".into()],
        flags: true,
        in_domain: false,
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
    // A load: from the file to a glossary that annotates in every language it has (each
    // language's matcher built), through the cache (as `tolk serve` and `tolk stream` load)
    // and without it (the first load of a new or edited file). Freeing the glossary of the
    // iteration before is not counted.
    group.bench_function("load 10,000 concepts, cached", |b| {
        b.iter_with_large_drop(|| {
            let g = Glossary::load_cached(black_box(&big), &cache).unwrap();
            g.prepare(None).unwrap();
            g
        })
    });
    group.bench_function("load 10,000 concepts, cached, en and es matchers", |b| {
        b.iter_with_large_drop(|| {
            let g = Glossary::load_cached(black_box(&big), &cache).unwrap();
            g.prepare(Some(&["en", "es"])).unwrap();
            g
        })
    });
    group.bench_function("load 10,000 concepts, TOML", |b| {
        b.iter_with_large_drop(|| {
            let g = Glossary::load(black_box(&big)).unwrap();
            g.prepare(None).unwrap();
            g
        })
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
