//! Glossary import: any text as the TOML glossary, a CSV or a TBX file parses or is refused
//! with a message; what parses builds its matchers and annotates a caption without panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tolk::glossary::{interchange, parse, AnnotateOptions, Glossary};

fuzz_target!(|data: &[u8]| {
    let [which, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let file = match which % 3 {
        0 => parse(text).ok(),
        1 => interchange::from_csv(text).ok(),
        _ => interchange::from_tbx(text).ok(),
    };
    let Some(file) = file else {
        return;
    };
    if let Ok(g) = Glossary::new(file) {
        let opts = AnnotateOptions {
            targets: vec!["es".into()],
            flags: true,
        };
        let _ = g.annotate("the sex workers said decriminalisation now", "en", &opts);
        let _ = g.lint();
    }
});
