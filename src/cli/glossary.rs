//! `tolk glossary`: check a glossary, try it on a sentence, convert it (CSV, TBX).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

use tolk::model::Cache;

use super::write_output;

/// The glossary tolk uses unless told otherwise.
pub const DEFAULT_GLOSSARY: &str = "glossaries/sex-work-rights.toml";

#[derive(Subcommand)]
pub enum GlossaryCmd {
    /// Check a glossary: schema, duplicates, conflicting variants, terms shared between
    /// concepts, missing languages, flagged terms in the prompt list.
    Lint {
        #[arg(default_value = DEFAULT_GLOSSARY)]
        file: PathBuf,
    },
    /// Show what the glossary does to a caption: corrections, hits with equivalents, flags.
    Apply {
        /// The caption text.
        text: String,
        #[arg(long, short, default_value = DEFAULT_GLOSSARY)]
        glossary: PathBuf,
        /// The caption's language.
        #[arg(long, short, default_value = "en")]
        lang: String,
        /// Booth languages to give equivalents in, comma-separated.
        #[arg(long, short, value_delimiter = ',')]
        target: Vec<String>,
        /// Do not flag stigmatising terms.
        #[arg(long)]
        no_flags: bool,
        /// Print the annotations as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a glossary as CSV or TBX-Basic.
    Export {
        #[arg(default_value = DEFAULT_GLOSSARY)]
        file: PathBuf,
        #[arg(long, short, value_parser = ["csv", "tbx"], default_value = "csv")]
        format: String,
        /// Output file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read a CSV or TBX glossary (by extension) and write it as tolk's TOML.
    Import {
        file: PathBuf,
        /// Output TOML file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub fn run(action: GlossaryCmd) -> Result<()> {
    use tolk::glossary::{interchange, AnnotateOptions, Glossary};
    match action {
        GlossaryCmd::Lint { file } => {
            let g = Glossary::load(&file)?;
            let problems = g.lint();
            let concepts = g.file.concepts.len();
            let terms: usize = g.file.concepts.iter().map(|c| c.terms.len()).sum();
            let proposals = g
                .file
                .concepts
                .iter()
                .flat_map(|c| &c.terms)
                .filter(|t| t.source.is_none())
                .count();
            for p in &problems {
                println!("{}: {p}", file.display());
            }
            println!(
                "{}: {concepts} concepts, {terms} terms ({proposals} proposals, not attested by a source), {} problems",
                file.display(),
                problems.len()
            );
            if problems.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("{}: {} problems", file.display(), problems.len())
            }
        }
        GlossaryCmd::Apply {
            text,
            glossary,
            lang,
            target,
            no_flags,
            json,
        } => {
            let g = Glossary::load_cached(&glossary, &Cache::from_env().glossaries())?;
            let a = g.annotate(
                &text,
                &lang,
                &AnnotateOptions {
                    targets: target,
                    flags: !no_flags,
                    in_domain: false,
                },
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&a)?);
                return Ok(());
            }
            println!("raw:       {}", a.raw);
            println!("corrected: {}", a.text);
            for c in &a.corrections {
                println!("  corrected \"{}\" → \"{}\" ({})", c.from, c.to, c.concept);
            }
            for h in &a.hits {
                let eq: Vec<String> = h
                    .equivalents
                    .iter()
                    .map(|e| {
                        let v = match &e.verification {
                            tolk::glossary::Verification::Sourced(s) => format!("source {s}"),
                            tolk::glossary::Verification::Proposal => "PROPOSAL".into(),
                        };
                        format!("{}: {} ({v})", e.lang, e.text)
                    })
                    .collect();
                println!(
                    "  term \"{}\" ({}){}{}",
                    h.text,
                    h.concept,
                    if eq.is_empty() { "" } else { " → " },
                    eq.join("; ")
                );
            }
            for f in &a.flags {
                println!(
                    "  flag \"{}\" ({}): say \"{}\" — {}",
                    f.text, f.concept, f.prefer, f.reason
                );
            }
            Ok(())
        }
        GlossaryCmd::Export {
            file,
            format,
            output,
        } => {
            let g = Glossary::load(&file)?;
            let text = if format == "tbx" {
                interchange::to_tbx(&g.file)
            } else {
                interchange::to_csv(&g.file)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
            };
            write_output(output.as_deref(), &text)
        }
        GlossaryCmd::Import { file, output } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("{}: cannot read", file.display()))?;
            let is_tbx = file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("tbx") || e.eq_ignore_ascii_case("xml"));
            let g = if is_tbx {
                interchange::from_tbx(&text)
            } else {
                interchange::from_csv(&text)
            }
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            // The result must load as a glossary before it is written.
            let checked =
                Glossary::new(g).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let toml = toml::to_string(&checked.file)
                .map_err(|e| anyhow::anyhow!("{}: cannot write TOML: {e}", file.display()))?;
            write_output(output.as_deref(), &toml)
        }
    }
}
