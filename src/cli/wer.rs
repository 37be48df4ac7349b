//! `tolk wer`: the word error rate of a hypothesis against a reference, as the tests and
//! benchmarks score.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct WerArgs {
    pub reference: PathBuf,
    pub hypothesis: PathBuf,
    /// Language of both texts (decides how numbers are spelled out).
    #[arg(long, short, default_value = "en")]
    pub language: String,
}

pub fn run(args: WerArgs) -> Result<()> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))
    };
    let w = tolk::eval::wer(
        &read(&args.reference)?,
        &read(&args.hypothesis)?,
        &args.language,
    );
    println!(
        "WER {:.2}% ({} errors / {} reference words)",
        100.0 * w.rate(),
        w.errors,
        w.reference_words
    );
    Ok(())
}
