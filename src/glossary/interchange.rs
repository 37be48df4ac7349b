//! Glossary interchange: CSV (one row per concept, one column per BCP-47 language) and
//! TBX-Basic (ISO 30042: `termEntry` / `langSet` / `tig`, administrativeStatus
//! preferred / admitted / deprecated), so interpreters can bring glossaries from their own
//! tools and take ours back. Formats are described in `glossaries/README.md`.

use std::collections::BTreeSet;

use quick_xml::events::Event as XmlEvent;
use quick_xml::Reader;

use super::{Category, Concept, GlossaryFile, Header, Misrecognition, Source, Status, Term};

/// Separator of several terms in one CSV cell.
const SEP: &str = "; ";
/// Separator of several reasons in one CSV cell (reasons may contain ";").
const REASON_SEP: &str = " || ";

/// The languages of a glossary, header languages first.
fn languages(g: &GlossaryFile) -> Vec<String> {
    let mut out: Vec<String> = g.glossary.languages.clone();
    let mut seen: BTreeSet<String> = out.iter().cloned().collect();
    for c in &g.concepts {
        for t in &c.terms {
            if seen.insert(t.lang.clone()) {
                out.push(t.lang.clone());
            }
        }
    }
    out
}

fn category_name(c: Category) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Preferred => "preferred",
        Status::Admitted => "admitted",
        Status::Abbreviation => "abbreviation",
        Status::Flagged => "flagged",
    }
}

/// Writes a glossary as CSV: `id, category, priority, definition, sources, asr`, then per
/// language `L` (terms), `L status`, `L source` ("proposal" when none), `L flagged`,
/// `L reason`. Sources and exceptions go in two extra row kinds (`#source`, `#exception`).
pub fn to_csv(g: &GlossaryFile) -> Result<String, String> {
    let langs = languages(g);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = ["id", "category", "priority", "definition", "sources", "asr"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for l in &langs {
        header.push(l.clone());
        for suffix in ["status", "source", "flagged", "reason"] {
            header.push(format!("{l} {suffix}"));
        }
    }
    let width = header.len();
    w.write_record(&header).map_err(|e| e.to_string())?;
    let row = |first: &[String]| -> Vec<String> {
        let mut r = first.to_vec();
        r.resize(width, String::new());
        r
    };
    w.write_record(row(&[
        "#glossary".into(),
        g.glossary.id.clone(),
        String::new(),
        g.glossary.title.clone(),
        g.glossary.languages.join(SEP),
    ]))
    .map_err(|e| e.to_string())?;
    for s in &g.sources {
        w.write_record(row(&[
            "#source".into(),
            s.id.clone(),
            String::new(),
            s.title.clone(),
            s.url.clone(),
        ]))
        .map_err(|e| e.to_string())?;
    }
    for e in &g.exceptions {
        w.write_record(row(&[
            "#exception".into(),
            e.lang.clone(),
            String::new(),
            e.text.clone(),
        ]))
        .map_err(|e| e.to_string())?;
    }
    for c in &g.concepts {
        let mut r = vec![
            c.id.clone(),
            category_name(c.category),
            c.priority.to_string(),
            c.definition.clone(),
            c.sources.join(SEP),
            if c.misrecognitions.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&c.misrecognitions).map_err(|e| e.to_string())?
            },
        ];
        for l in &langs {
            let terms: Vec<&Term> = c
                .terms
                .iter()
                .filter(|t| &t.lang == l && t.status != Status::Flagged)
                .collect();
            let flagged: Vec<&Term> = c
                .terms
                .iter()
                .filter(|t| &t.lang == l && t.status == Status::Flagged)
                .collect();
            r.push(joined(terms.iter().map(|t| t.text.as_str())));
            r.push(joined(terms.iter().map(|t| status_name(t.status))));
            r.push(joined(
                terms
                    .iter()
                    .chain(flagged.iter())
                    .map(|t| t.source.as_deref().unwrap_or("proposal")),
            ));
            r.push(joined(flagged.iter().map(|t| t.text.as_str())));
            r.push(
                flagged
                    .iter()
                    .map(|t| {
                        if t.prefer.is_empty() {
                            t.reason.clone()
                        } else {
                            format!("{} (say: {})", t.reason, t.prefer)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(REASON_SEP),
            );
        }
        w.write_record(&r).map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// Cells of one CSV column for several terms, `; `-separated.
fn joined<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(SEP)
}

fn split(cell: &str, sep: &str) -> Vec<String> {
    if cell.trim().is_empty() {
        return Vec::new();
    }
    cell.split(sep.trim())
        .map(|s| s.trim().to_string())
        .collect()
}

/// Reads a glossary from CSV as [`to_csv`] writes it. A plain spreadsheet glossary also
/// works: an `id` column (optional: rows are numbered) and one column per language, every
/// term a preferred proposal. Errors name the line.
pub fn from_csv(text: &str) -> Result<GlossaryFile, String> {
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = r
        .headers()
        .map_err(|e| format!("line 1: {e}"))?
        .iter()
        .map(|s| s.trim().to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let fixed = ["id", "category", "priority", "definition", "sources", "asr"];
    let langs: Vec<String> = header
        .iter()
        .filter(|h| !fixed.contains(&h.as_str()) && !h.contains(' '))
        .cloned()
        .collect();
    let mut g = GlossaryFile::default();
    for (n, rec) in r.records().enumerate() {
        let line = n + 2;
        let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
        let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("").trim().to_string();
        let id = get(col("id"));
        match id.as_str() {
            "#glossary" => {
                g.glossary = Header {
                    id: get(col("category")),
                    title: get(col("definition")),
                    languages: split(&get(col("sources")), SEP),
                };
                continue;
            }
            "#source" => {
                g.sources.push(Source {
                    id: get(col("category")),
                    title: get(col("definition")),
                    url: get(col("sources")),
                });
                continue;
            }
            "#exception" => {
                g.exceptions.push(super::Exception {
                    lang: get(col("category")),
                    text: get(col("definition")),
                });
                continue;
            }
            _ => {}
        }
        let category = match get(col("category")).as_str() {
            "" => Category::People,
            c => serde_json::from_value(serde_json::Value::String(c.into()))
                .map_err(|_| format!("line {line}: unknown category \"{c}\""))?,
        };
        let priority = match get(col("priority")).as_str() {
            "" => 100,
            p => p
                .parse()
                .map_err(|_| format!("line {line}: priority \"{p}\" is not a number"))?,
        };
        let asr = get(col("asr"));
        let misrecognitions: Vec<Misrecognition> = if asr.is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&asr).map_err(|e| format!("line {line}: asr: {e}"))?
        };
        let mut c = Concept {
            id: if id.is_empty() {
                format!("row{line}")
            } else {
                id
            },
            category,
            definition: get(col("definition")),
            sources: split(&get(col("sources")), SEP),
            priority,
            terms: Vec::new(),
            misrecognitions,
        };
        for l in &langs {
            let terms = split(&get(col(l)), SEP);
            let statuses = split(&get(col(&format!("{l} status"))), SEP);
            let sources = split(&get(col(&format!("{l} source"))), SEP);
            let flagged = split(&get(col(&format!("{l} flagged"))), SEP);
            let reasons = split(&get(col(&format!("{l} reason"))), REASON_SEP);
            for (i, t) in terms.iter().enumerate() {
                let status = match statuses.get(i).map(String::as_str) {
                    None | Some("") | Some("preferred") => Status::Preferred,
                    Some("admitted") => Status::Admitted,
                    Some("abbreviation") => Status::Abbreviation,
                    Some(s) => return Err(format!("line {line}: {l}: unknown status \"{s}\"")),
                };
                c.terms.push(Term {
                    lang: l.clone(),
                    text: t.clone(),
                    status,
                    source: sources.get(i).filter(|s| *s != "proposal").cloned(),
                    ..Term::default()
                });
            }
            for (i, t) in flagged.iter().enumerate() {
                let reason = reasons.get(i).cloned().unwrap_or_default();
                let (reason, prefer) = match reason.rsplit_once(" (say: ") {
                    Some((r, p)) => (r.to_string(), p.strip_suffix(')').unwrap_or(p).to_string()),
                    None => (reason, String::new()),
                };
                c.terms.push(Term {
                    lang: l.clone(),
                    text: t.clone(),
                    status: Status::Flagged,
                    source: sources
                        .get(terms.len() + i)
                        .filter(|s| *s != "proposal")
                        .cloned(),
                    reason,
                    prefer,
                    match_case: false,
                });
            }
        }
        g.concepts.push(c);
    }
    Ok(g)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn admin_status(s: Status) -> &'static str {
    match s {
        Status::Preferred => "preferredTerm-admn-sts",
        Status::Admitted | Status::Abbreviation => "admittedTerm-admn-sts",
        Status::Flagged => "deprecatedTerm-admn-sts",
    }
}

/// Writes TBX-Basic (the 2008 `martif` dialect most CAT and interpreting tools read): one
/// `termEntry` per concept with its definition, one `langSet` per language, one `tig` per
/// term with `administrativeStatus`, the source id (or "proposal") as a `note`, the reason
/// of a flagged term as a usage note. tolk's own fields (category, priority, misrecognition
/// rules) travel as `descrip type="x-tolk-…"`.
pub fn to_tbx(g: &GlossaryFile) -> String {
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str("<martif type=\"TBX-Basic\" xml:lang=\"en\">\n");
    x.push_str("  <martifHeader>\n    <fileDesc>\n");
    x.push_str(&format!(
        "      <titleStmt><title>{}</title><note>x-tolk-id:{}</note><note>x-tolk-languages:{}</note></titleStmt>\n",
        esc(&g.glossary.title),
        esc(&g.glossary.id),
        esc(&g.glossary.languages.join(" "))
    ));
    x.push_str("      <sourceDesc>\n");
    for s in &g.sources {
        x.push_str(&format!(
            "        <p id=\"{}\">{}</p><p type=\"x-url\" id=\"{}-url\">{}</p>\n",
            esc(&s.id),
            esc(&s.title),
            esc(&s.id),
            esc(&s.url)
        ));
    }
    for e in &g.exceptions {
        x.push_str(&format!(
            "        <p type=\"x-tolk-exception\" xml:lang=\"{}\">{}</p>\n",
            esc(&e.lang),
            esc(&e.text)
        ));
    }
    x.push_str("      </sourceDesc>\n    </fileDesc>\n  </martifHeader>\n  <text>\n    <body>\n");
    for c in &g.concepts {
        x.push_str(&format!("      <termEntry id=\"{}\">\n", esc(&c.id)));
        x.push_str(&format!(
            "        <descrip type=\"subjectField\">{}</descrip>\n",
            category_name(c.category)
        ));
        if !c.definition.is_empty() {
            x.push_str(&format!(
                "        <descrip type=\"definition\">{}</descrip>\n",
                esc(&c.definition)
            ));
        }
        x.push_str(&format!(
            "        <descrip type=\"x-tolk-priority\">{}</descrip>\n",
            c.priority
        ));
        for s in &c.sources {
            x.push_str(&format!(
                "        <admin type=\"source\">{}</admin>\n",
                esc(s)
            ));
        }
        if !c.misrecognitions.is_empty() {
            let json = serde_json::to_string(&c.misrecognitions).unwrap_or_default();
            x.push_str(&format!(
                "        <descrip type=\"x-tolk-asr\">{}</descrip>\n",
                esc(&json)
            ));
        }
        let mut langs: Vec<&str> = Vec::new();
        for t in &c.terms {
            if !langs.contains(&t.lang.as_str()) {
                langs.push(&t.lang);
            }
        }
        for l in langs {
            x.push_str(&format!("        <langSet xml:lang=\"{}\">\n", esc(l)));
            for t in c.terms.iter().filter(|t| t.lang == l) {
                x.push_str("          <tig>\n");
                x.push_str(&format!("            <term>{}</term>\n", esc(&t.text)));
                x.push_str(&format!(
                    "            <termNote type=\"administrativeStatus\">{}</termNote>\n",
                    admin_status(t.status)
                ));
                if t.status == Status::Abbreviation {
                    x.push_str("            <termNote type=\"termType\">abbreviation</termNote>\n");
                }
                x.push_str(&format!(
                    "            <note>{}</note>\n",
                    esc(t
                        .source
                        .as_deref()
                        .map_or("proposal".into(), |s| format!("source:{s}"))
                        .as_str())
                ));
                if !t.reason.is_empty() {
                    x.push_str(&format!(
                        "            <descrip type=\"x-tolk-reason\">{}</descrip>\n",
                        esc(&t.reason)
                    ));
                }
                if !t.prefer.is_empty() {
                    x.push_str(&format!(
                        "            <descrip type=\"x-tolk-prefer\">{}</descrip>\n",
                        esc(&t.prefer)
                    ));
                }
                x.push_str("          </tig>\n");
            }
            x.push_str("        </langSet>\n");
        }
        x.push_str("      </termEntry>\n");
    }
    x.push_str("    </body>\n  </text>\n</martif>\n");
    x
}

/// Reads TBX (the `martif` dialect; also the 2019 names `conceptEntry` / `langSec` /
/// `termSec`). Terms without an administrativeStatus are preferred; without a `source:` note
/// they are proposals. Errors name the byte position.
pub fn from_tbx(text: &str) -> Result<GlossaryFile, String> {
    let mut r = Reader::from_str(text);
    r.config_mut().trim_text(false);
    let mut g = GlossaryFile::default();
    let mut path: Vec<String> = Vec::new();
    let mut attrs_stack: Vec<Vec<(String, String)>> = Vec::new();
    let mut concept: Option<Concept> = None;
    let mut lang = String::new();
    let mut term: Option<Term> = None;
    let mut text_buf = String::new();
    loop {
        let pos = r.buffer_position();
        let ev = r.read_event().map_err(|e| format!("byte {pos}: {e}"))?;
        match ev {
            XmlEvent::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_string();
                let attrs: Vec<(String, String)> = e
                    .attributes()
                    .flatten()
                    .map(|a| {
                        (
                            String::from_utf8_lossy(a.key.as_ref()).to_string(),
                            a.unescape_value()
                                .map(|v| v.to_string())
                                .unwrap_or_default(),
                        )
                    })
                    .collect();
                let attr = |k: &str| {
                    attrs
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                match name.as_str() {
                    "termEntry" | "conceptEntry" => {
                        concept = Some(Concept {
                            id: attr("id"),
                            priority: 100,
                            ..Concept::default()
                        });
                    }
                    "langSet" | "langSec" => lang = attr("xml:lang"),
                    "tig" | "termSec" | "ntig" => {
                        term = Some(Term {
                            lang: lang.clone(),
                            ..Term::default()
                        })
                    }
                    _ => {}
                }
                path.push(name);
                attrs_stack.push(attrs);
                text_buf.clear();
            }
            XmlEvent::Text(t) => {
                let raw = t.decode().map_err(|e| format!("byte {pos}: {e}"))?;
                let text =
                    quick_xml::escape::unescape(&raw).map_err(|e| format!("byte {pos}: {e}"))?;
                text_buf.push_str(&text);
            }
            XmlEvent::GeneralRef(r) => {
                // Entity references come apart from the text around them.
                let ch = match r
                    .resolve_char_ref()
                    .map_err(|e| format!("byte {pos}: {e}"))?
                {
                    Some(ch) => ch,
                    None => match r.decode().map_err(|e| format!("byte {pos}: {e}"))?.as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(format!("byte {pos}: unknown entity &{other};")),
                    },
                };
                text_buf.push(ch);
            }
            XmlEvent::End(_) => {
                let name = path.pop().unwrap_or_default();
                let attrs = attrs_stack.pop().unwrap_or_default();
                let attr = |k: &str| {
                    attrs
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let value = std::mem::take(&mut text_buf).trim().to_string();
                match (name.as_str(), attr("type").as_str()) {
                    ("title", _) => g.glossary.title = value,
                    ("note", _) if term.is_none() && concept.is_none() => {
                        if let Some(id) = value.strip_prefix("x-tolk-id:") {
                            g.glossary.id = id.to_string();
                        } else if let Some(l) = value.strip_prefix("x-tolk-languages:") {
                            g.glossary.languages =
                                l.split_whitespace().map(str::to_string).collect();
                        }
                    }
                    ("p", "x-url") => {
                        if let Some(s) = g.sources.last_mut() {
                            s.url = value;
                        }
                    }
                    ("p", "x-tolk-exception") => g.exceptions.push(super::Exception {
                        lang: attr("xml:lang"),
                        text: value,
                    }),
                    ("p", _) => g.sources.push(Source {
                        id: attr("id"),
                        title: value,
                        url: String::new(),
                    }),
                    ("term", _) => {
                        if let Some(t) = term.as_mut() {
                            t.text = value;
                        }
                    }
                    ("termNote", "administrativeStatus") => {
                        if let Some(t) = term.as_mut() {
                            t.status = match value.as_str() {
                                "preferredTerm-admn-sts" | "preferred" => Status::Preferred,
                                "deprecatedTerm-admn-sts"
                                | "supersededTerm-admn-sts"
                                | "notRecommended"
                                | "obsolete" => Status::Flagged,
                                _ => Status::Admitted,
                            };
                        }
                    }
                    ("termNote", "termType") if value == "abbreviation" => {
                        if let Some(t) = term.as_mut() {
                            if t.status == Status::Admitted {
                                t.status = Status::Abbreviation;
                            }
                        }
                    }
                    ("note", _) => {
                        if let Some(t) = term.as_mut() {
                            t.source = value.strip_prefix("source:").map(str::to_string);
                        }
                    }
                    ("descrip", kind) => match (term.as_mut(), concept.as_mut(), kind) {
                        (Some(t), _, "x-tolk-reason") => t.reason = value,
                        (Some(t), _, "x-tolk-prefer") => t.prefer = value,
                        (None, Some(c), "definition") => c.definition = value,
                        (None, Some(c), "subjectField") => {
                            c.category = serde_json::from_value(serde_json::Value::String(value))
                                .unwrap_or_default()
                        }
                        (None, Some(c), "x-tolk-priority") => {
                            c.priority = value.parse().unwrap_or(100)
                        }
                        (None, Some(c), "x-tolk-asr") => {
                            c.misrecognitions = serde_json::from_str(&value)
                                .map_err(|e| format!("concept {}: x-tolk-asr: {e}", c.id))?
                        }
                        _ => {}
                    },
                    ("admin", "source") => {
                        if let Some(c) = concept.as_mut() {
                            c.sources.push(value);
                        }
                    }
                    ("tig" | "termSec" | "ntig", _) => {
                        if let (Some(t), Some(c)) = (term.take(), concept.as_mut()) {
                            if !t.text.is_empty() {
                                c.terms.push(t);
                            }
                        }
                    }
                    ("termEntry" | "conceptEntry", _) => {
                        if let Some(c) = concept.take() {
                            g.concepts.push(c);
                        }
                    }
                    _ => {}
                }
            }
            XmlEvent::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(format!(
            "unexpected end of file inside <{}>",
            path.join("><")
        ));
    }
    Ok(g)
}
