//! Parsing a glossary file's TOML, in pieces on every core when it is large.

use serde::Deserialize;

use super::schema::{Concept, Exception, GlossaryFile, Header, Source};

/// Files larger than this are parsed in pieces, one per core.
pub(super) const PIECEWISE_BYTES: usize = 512 * 1024;

/// A piece of a glossary file: any of the top-level tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Piece {
    glossary: Option<Header>,
    #[serde(default, rename = "source")]
    sources: Vec<Source>,
    #[serde(default, rename = "exception")]
    exceptions: Vec<Exception>,
    #[serde(default, rename = "concept")]
    concepts: Vec<Concept>,
}

/// Parses a glossary file's TOML; the error has the byte offset where it is, if known.
///
/// A large file is cut at its `[[concept]]` header lines into one piece per core, parsed in
/// parallel, and put back together in order: the same result as one parse (every
/// `[[concept.term]]` follows its `[[concept]]` in the same piece), about as many times
/// faster as there are cores. Files with multi-line strings (where such a line could be text)
/// are parsed whole.
pub fn parse(text: &str) -> Result<GlossaryFile, (Option<usize>, String)> {
    const HEAD: &str = "[[concept]]";
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let whole = |t: &str| {
        toml::from_str::<Piece>(t).map_err(|e| (e.span().map(|s| s.start), e.message().to_string()))
    };
    let mut cuts: Vec<usize> = Vec::new();
    let multiline = text.contains("\"\"\"") || text.contains("'''");
    if text.len() >= PIECEWISE_BYTES && workers > 1 && !multiline {
        let size = text.len() / workers;
        for k in 1..workers {
            // The first header line at or after the k-th share of the file.
            let mut from = k * size;
            while !text.is_char_boundary(from) {
                from += 1;
            }
            let head = text[from..]
                .match_indices(&format!("\n{HEAD}"))
                .map(|(i, _)| from + i + 1)
                .find(|&i| {
                    let rest = text[i + HEAD.len()..].split('\n').next().unwrap_or("");
                    rest.split('#').next().unwrap_or("").trim().is_empty()
                });
            if let Some(h) = head {
                if cuts.last().is_none_or(|&c| c < h) {
                    cuts.push(h);
                }
            }
        }
    }
    let mut bounds = vec![0];
    bounds.extend(&cuts);
    bounds.push(text.len());
    let parsed: Vec<Result<Piece, (Option<usize>, String)>> = if cuts.is_empty() {
        vec![whole(text)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = bounds
                .windows(2)
                .map(|w| {
                    let (start, piece) = (w[0], &text[w[0]..w[1]]);
                    scope.spawn(move || whole(piece).map_err(|(at, m)| (at.map(|a| a + start), m)))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err((None, "the parser failed".into())))
                })
                .collect()
        })
    };
    let mut file = GlossaryFile::default();
    let mut header = None;
    for p in parsed {
        let p = p?;
        if let Some(h) = p.glossary {
            if header.replace(h).is_some() {
                return Err((None, "the [glossary] table is given twice".into()));
            }
        }
        file.sources.extend(p.sources);
        file.exceptions.extend(p.exceptions);
        file.concepts.extend(p.concepts);
    }
    file.glossary = header.ok_or((None, "missing field `glossary`".to_string()))?;
    Ok(file)
}
