//! The subcommands: each one's arguments and handler in its own file; `main` only parses,
//! dispatches and prints errors.

pub mod archive;
pub mod edge;
pub mod glossary;
pub mod models;
pub mod send;
pub mod serve;
pub mod stream;
pub mod transcribe;
pub mod wer;
pub mod worker;

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes a command's output to `path` (whole or not at all, see [`write_atomically`]) or,
/// without one, to standard output (a reader that stops reading, `| head`, is no error).
pub fn write_output(path: Option<&Path>, text: &str) -> Result<()> {
    match path {
        Some(path) => write_atomically(path, text.as_bytes()),
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => Ok(r?),
            }
        }
    }
}

/// Writes a whole file or nothing: a temporary file beside it, renamed into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tolk-")
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot create the output", path.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("{}: cannot write the output", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("{}: cannot write the output", path.display()))?;
    Ok(())
}
