//! The glossary cache: a file parsed, checked and its patterns folded, kept as JSON under a
//! hash of the file's text and this tolk's version ([`Glossary::load_cached`]).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::schema::GlossaryFile;
use super::{read, Glossary, GlossaryError, Patterns};

/// What the glossary cache holds for one glossary file, in a directory named after the file
/// and its [`cache_key`]: the file as parsed and checked (`file.json`) and its folded
/// patterns (`patterns.json`), read at once on two cores. JSON parses about ten times faster
/// than the TOML.
#[derive(Serialize, Deserialize)]
struct CachedFile {
    format: u32,
    key: u64,
    file: GlossaryFile,
}

type CachedPatterns = BTreeMap<String, Patterns>;

/// Bumped whenever [`CacheEntry`] or what it holds changes meaning.
/// 2: folding joins acronyms spelled out letter by letter.
const CACHE_FORMAT: u32 = 2;

impl Glossary {
    /// Reads a glossary file through a cache in `dir`: the file parsed, checked and its
    /// patterns folded, kept as JSON under a hash of the file's text and this tolk's version.
    /// A missing, stale or unreadable entry means parsing the TOML (and writing the entry,
    /// best effort: a read-only or full disk costs only the time); the result is the same.
    pub fn load_cached(path: &Path, dir: &Path) -> Result<Glossary, GlossaryError> {
        let text = read(path)?;
        let key = cache_key(&text);
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("glossary");
        let entry = dir.join(format!("{stem}-{key:016x}"));
        let (file, patterns) = std::thread::scope(|scope| {
            let patterns = scope.spawn(|| {
                let json = std::fs::read_to_string(entry.join("patterns.json")).ok()?;
                serde_json::from_str::<CachedPatterns>(&json).ok()
            });
            let file = std::fs::read_to_string(entry.join("file.json"))
                .ok()
                .and_then(|json| serde_json::from_str::<CachedFile>(&json).ok())
                .filter(|c| c.format == CACHE_FORMAT && c.key == key);
            (file, patterns.join().ok().flatten())
        });
        if let (Some(c), Some(patterns)) = (file, patterns) {
            let whole = patterns.values().all(|p| {
                p.folded.len() == p.kinds.len() && p.kinds.iter().all(|k| k.is_in(&c.file))
            });
            if whole {
                return Ok(Glossary::from_parts(c.file, patterns));
            }
        }
        let g = Glossary::parse_checked(path, &text)?;
        let _ = write_cache_entry(dir, stem, &entry, &g, key);
        Ok(g)
    }
}

/// The cache key of a glossary's text: a 64-bit hash of it, the cache format and this
/// tolk's version (std's hasher may change between Rust releases: a new build then only
/// misses the cache).
fn cache_key(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    CACHE_FORMAT.hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    text.hash(&mut h);
    h.finish()
}

/// Writes a cache entry atomically (a temporary directory renamed to it) and removes the
/// entries of earlier versions of the same file.
fn write_cache_entry(
    dir: &Path,
    stem: &str,
    entry: &Path,
    g: &Glossary,
    key: u64,
) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct File<'a> {
        format: u32,
        key: u64,
        file: &'a GlossaryFile,
    }
    let patterns: BTreeMap<&String, &Patterns> =
        g.langs.iter().map(|(k, l)| (k, &l.patterns)).collect();
    let file = File {
        format: CACHE_FORMAT,
        key,
        file: &g.file,
    };
    let tmp = dir.join(format!(".{stem}-{key:016x}.{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let written = std::fs::write(tmp.join("patterns.json"), serde_json::to_vec(&patterns)?)
        .and_then(|_| std::fs::write(tmp.join("file.json"), serde_json::to_vec(&file)?))
        .and_then(|_| {
            // An entry that is there but was not read (damaged) is replaced.
            if entry.exists() {
                std::fs::remove_dir_all(entry)?;
            }
            std::fs::rename(&tmp, entry)
        });
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        return written;
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let stale = name
            .strip_prefix(stem)
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if stale && e.path() != entry {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    Ok(())
}
