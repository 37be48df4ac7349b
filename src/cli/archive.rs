//! `tolk export` and `tolk purge`: a meeting's archive, outside the meeting.

use std::path::{Path, PathBuf};

use anyhow::Result;

use tolk::server::archive::Archive;
use tolk::server::config::MeetingConfig;
use tolk::server::export;

use super::write_output;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The channel id (`floor`, `es`, …).
    pub channel: String,
    #[arg(long, short, default_value = "meeting.toml")]
    pub config: PathBuf,
    #[arg(long, short, default_value = "vtt")]
    pub format: String,
    /// A second channel, side by side with the first (Markdown table).
    #[arg(long)]
    pub with: Option<String>,
    /// Output file (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct PurgeArgs {
    #[arg(long, short, default_value = "meeting.toml")]
    pub config: PathBuf,
    #[arg(long)]
    pub older_than_days: u32,
}

/// Writes a channel's archived captions (the same export as the organizer's page).
pub fn export(args: ExportArgs) -> Result<()> {
    let config = &args.config;
    let cfg = MeetingConfig::load(config)?;
    let known = |c: &str| cfg.channels.iter().any(|x| x.id == c);
    for c in std::iter::once(args.channel.as_str()).chain(args.with.as_deref()) {
        if !known(c) {
            anyhow::bail!("{}: no channel `{c}` in this meeting", config.display());
        }
    }
    if cfg.meeting.off_record {
        anyhow::bail!(
            "{}: the meeting is off the record: nothing was archived",
            config.display()
        );
    }
    let format: export::Format = args.format.parse().map_err(anyhow::Error::msg)?;
    let path = &cfg.meeting.archive;
    if !path.exists() {
        anyhow::bail!(
            "{}: no archive yet (the meeting has not run)",
            path.display()
        );
    }
    let text = export::from_archive(
        path,
        &cfg.meeting.id,
        &args.channel,
        args.with.as_deref(),
        format,
    )?;
    write_output(args.output.as_deref(), &text)
}

/// Deletes archived captions older than a number of days (0: all).
pub fn purge(args: PurgeArgs) -> Result<()> {
    let cfg = MeetingConfig::load(&args.config)?;
    let path: &Path = &cfg.meeting.archive;
    if !path.exists() {
        println!("{}: no archive, nothing to purge", path.display());
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let before = if args.older_than_days == 0 {
        u64::MAX / 2
    } else {
        now.saturating_sub(u64::from(args.older_than_days) * 86_400_000)
    };
    let n = Archive::open(path)?.purge(before)?;
    println!("{}: {n} captions purged", path.display());
    Ok(())
}
