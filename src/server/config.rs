//! The meeting file (`meeting.toml`): channels, their sources, the glossary, the archive.
//! An example with every key: `docs/meeting.example.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The shortest secret tolk accepts (organizer, interpreter and ingest tokens): wrong tries
/// are limited per address, and 16 characters outlast any guessing at that rate.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The meeting, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingConfig {
    pub meeting: MeetingSection,
    #[serde(rename = "channel")]
    pub channels: Vec<ChannelConfig>,
    /// Recognition on other machines (`tolk worker`) over NATS; without it, all here.
    #[serde(default)]
    pub cluster: Option<ClusterSection>,
}

/// `[cluster]`: the channels' audio goes out to recognition workers over NATS and their
/// captions come back (`crate::cluster`). The room server decodes `decode_here` channels
/// itself, the same way.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// The NATS server: `nats://HOST:4222`, or `tls://HOST:4222` (TLS required).
    pub nats: String,
    /// A NATS credentials file (`.creds`: a user JWT and its NKey seed); relative paths
    /// from the meeting file's folder.
    #[serde(default)]
    pub credentials: Option<PathBuf>,
    /// The certificate authority (PEM) that signed nats-server's certificate, if the system
    /// does not trust it (a room's own); TLS is then required. Relative paths from the
    /// meeting file's folder.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Channels this server decodes itself, as a worker would (under a lease, failing over
    /// the same way). Default: as many as its start-up calibration says it captions fully
    /// (none on a machine too busy to caption one); 0: workers only.
    #[serde(default)]
    pub decode_here: Option<usize>,
}

impl ClusterSection {
    pub fn endpoint(&self) -> crate::cluster::Endpoint {
        crate::cluster::Endpoint {
            url: self.nats.clone(),
            credentials: self.credentials.clone(),
            ca: self.ca.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingSection {
    /// Names the meeting in the archive: a restarted server continues its numbering.
    #[serde(default = "default_id")]
    pub id: String,
    pub title: String,
    /// Captions flow live; nothing is written anywhere.
    #[serde(default)]
    pub off_record: bool,
    /// The SQLite archive (relative paths: from the meeting file's folder).
    #[serde(default = "default_archive")]
    pub archive: PathBuf,
    /// Finals older than this many days are purged at start (0: kept).
    #[serde(default)]
    pub retention_days: u32,
    /// A model name from the catalog or the path of a ggml file.
    #[serde(default = "default_model")]
    pub model: String,
    /// Whisper threads (default: the cores).
    #[serde(default)]
    pub threads: Option<usize>,
    /// A glossary file (relative paths: from the meeting file's folder).
    #[serde(default)]
    pub glossary: Option<PathBuf>,
    /// Put the glossary's terms in Whisper's prompt. Off unless asked: measured on the term
    /// benchmark (benches/README.md, "Terms") it found no more terms than the corrections
    /// alone and rewrote sentences as lists of capitalised names.
    #[serde(default)]
    pub bias: bool,
    /// The session's terms and names, most expected first (in any of the glossary's
    /// languages): every channel's prompt starts with them, each as the glossary writes it
    /// in the channel's language, instead of the glossary's general list (`bias`). Only what
    /// the session will say: measured on the term benchmark (benches/README.md, "A
    /// session's topic"), its own terms find terms the corrections cannot; a list padded
    /// with terms it never says makes recognition worse.
    #[serde(default)]
    pub topic: Vec<String>,
    /// Revise the record: each stretch of committed speech decoded again, whole, when a
    /// core is idle, and its finals replaced in place (archive, exports, pages) about half
    /// a minute later (`stream::revise`). On by default: it takes only idle cores.
    #[serde(default = "yes")]
    pub revise: bool,
    /// Flag stigmatising terms in captions.
    #[serde(default = "yes")]
    pub flags: bool,
    /// A demo meeting (shown as such to everyone).
    #[serde(default)]
    pub demo: bool,
    /// Attendees (and interpreters) need this PIN to read captions: the pages ask for it.
    /// Wrong tries are limited per address.
    #[serde(default)]
    pub pin: Option<String>,
    /// Attendees may download their channel's transcript from the archive (`/transcript/…`,
    /// no token). Off by default: a transcript on a phone can be found there.
    #[serde(default)]
    pub downloads: bool,
    /// Names no transcript may carry (see `server::redact`): withheld in the archive and in
    /// attendees' channels; interpreters with `interpreter_token` get them live.
    #[serde(default)]
    pub protected_names: Vec<String>,
    /// Opens the interpreter's desk to the words as said (`/interpreter#k=TOKEN`). Without
    /// it, protected names are withheld from everyone. At least 16 characters.
    #[serde(default)]
    pub interpreter_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Short and URL-safe: `floor`, `es`, `ru-booth`.
    pub id: String,
    /// ISO 639-1, or `auto` (with `allowed`).
    pub language: String,
    #[serde(default)]
    pub allowed: Vec<String>,
    #[serde(default)]
    pub label: String,
    /// The speaker's channel (served first).
    #[serde(default)]
    pub floor: bool,
    pub source: SourceConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// A recording replayed at real-time pace (times `speed`), looped if asked.
    File {
        path: PathBuf,
        #[serde(default, rename = "loop")]
        looped: bool,
        #[serde(default = "one")]
        speed: f64,
    },
    /// A sound card input, by name (`tolk devices`), or the default one.
    Device {
        #[serde(default)]
        name: Option<String>,
    },
    /// A remote booth: `tolk send` (or any client of `docs/protocol.md`'s ingest) sends the
    /// audio over WebSocket to `/ingest/{channel}` with this token.
    Network { token: String },
    /// Another channel's audio (`from`, usually the floor) through Whisper's translate task:
    /// English captions of a speaker in any language, with no interpreter. Whisper
    /// translates into English only, so the channel's language is `en`; the model must be a
    /// multilingual one. It costs a second stream of decoding.
    Translate { from: String },
}

fn default_id() -> String {
    "meeting".into()
}
fn default_archive() -> PathBuf {
    "tolk-archive.sqlite".into()
}
fn default_model() -> String {
    crate::model::DEFAULT_MODEL.into()
}
fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}

/// Why a meeting file was refused; names the file (and the line for syntax errors).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl MeetingConfig {
    /// Reads a meeting file; relative paths in it become relative to its folder.
    pub fn load(path: &Path) -> Result<MeetingConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg: MeetingConfig = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
                .unwrap_or(0);
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                message: e.message().to_string(),
            }
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        cfg.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(cfg)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.meeting.archive);
        if let Some(g) = &mut self.meeting.glossary {
            fix(g);
        }
        for c in &mut self.channels {
            if let SourceConfig::File { path, .. } = &mut c.source {
                fix(path);
            }
        }
        if let Some(c) = self.cluster.as_mut() {
            for p in [&mut c.credentials, &mut c.ca].into_iter().flatten() {
                fix(p);
            }
        }
    }

    /// What is wrong with the meeting, in words.
    pub fn validate(&self) -> Result<(), String> {
        if self.channels.is_empty() {
            return Err("a meeting needs at least one [[channel]]".into());
        }
        if self
            .meeting
            .interpreter_token
            .as_ref()
            .is_some_and(|t| t.chars().count() < MIN_TOKEN_CHARS)
        {
            return Err(format!(
                "the interpreter_token must be at least {MIN_TOKEN_CHARS} characters"
            ));
        }
        super::redact::Redactor::new(&self.meeting.protected_names)?;
        super::topic::check(&self.meeting.topic).map_err(|e| e.to_string())?;
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.channels {
            let ok = !c.id.is_empty()
                && c.id.len() <= 32
                && c.id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
            if !ok {
                return Err(format!(
                    "channel id `{}`: use 1 to 32 letters, digits, - or _",
                    c.id
                ));
            }
            if !seen.insert(c.id.as_str()) {
                return Err(format!("channel id `{}` is used twice", c.id));
            }
            match &c.source {
                SourceConfig::File { speed, .. } if !(*speed > 0.0 && speed.is_finite()) => {
                    return Err(format!(
                        "channel `{}`: speed {speed} is not a positive number",
                        c.id
                    ));
                }
                SourceConfig::Network { token } if token.chars().count() < MIN_TOKEN_CHARS => {
                    return Err(format!(
                        "channel `{}`: the ingest token must be at least {MIN_TOKEN_CHARS} characters",
                        c.id
                    ));
                }
                SourceConfig::Translate { from } => {
                    if c.language != "en" {
                        return Err(format!(
                            "channel `{}`: Whisper translates into English only: set language = \"en\"",
                            c.id
                        ));
                    }
                    let Some(source) = self.channels.iter().find(|o| &o.id == from) else {
                        return Err(format!(
                            "channel `{}` translates `{from}`, which is not a channel of this meeting",
                            c.id
                        ));
                    };
                    if matches!(source.source, SourceConfig::Translate { .. }) {
                        return Err(format!(
                            "channel `{}` translates `{from}`, which is itself a translation",
                            c.id
                        ));
                    }
                }
                SourceConfig::File { .. }
                | SourceConfig::Device { .. }
                | SourceConfig::Network { .. } => {}
            }
        }
        if self.channels.iter().filter(|c| c.floor).count() > 1 {
            return Err("only one channel can be the floor".into());
        }
        if self.cluster.is_some() {
            // The meeting's id names its NATS subjects and keys: one token, no dots.
            crate::cluster::check_name("meeting id", &self.meeting.id)?;
        }
        Ok(())
    }

    /// The default sound card as the floor, language detected among `allowed` (empty: any).
    pub fn sound_card(model: &str, glossary: Option<PathBuf>) -> MeetingConfig {
        let mut m = MeetingConfig::demo(Path::new("."), model);
        m.meeting.id = "meeting".into();
        m.meeting.title = "tolk: the default sound card".into();
        m.meeting.demo = false;
        m.meeting.glossary = glossary;
        m.channels = vec![ChannelConfig {
            id: "floor".into(),
            language: "auto".into(),
            allowed: Vec::new(),
            label: "Floor".into(),
            floor: true,
            source: SourceConfig::Device { name: None },
        }];
        m
    }

    /// The demo meeting: real recordings from `testdata/` replayed in a loop, an English floor
    /// and a Spanish channel, clearly labelled.
    pub fn demo(testdata: &Path, model: &str) -> MeetingConfig {
        let file = |name: &str| SourceConfig::File {
            path: testdata.join(name),
            looped: true,
            speed: 1.0,
        };
        MeetingConfig {
            meeting: MeetingSection {
                id: "demo".into(),
                title: "tolk demo: recordings replayed in a loop".into(),
                off_record: true,
                archive: default_archive(),
                retention_days: 0,
                model: model.into(),
                threads: None,
                glossary: Some(PathBuf::from("glossaries/sex-work-rights.toml")),
                bias: false,
                topic: Vec::new(),
                revise: true,
                flags: true,
                demo: true,
                downloads: false,
                pin: None,
                protected_names: Vec::new(),
                interpreter_token: None,
            },
            channels: vec![
                ChannelConfig {
                    id: "floor".into(),
                    language: "en".into(),
                    allowed: Vec::new(),
                    label: "Floor (English, demo recording)".into(),
                    floor: true,
                    source: file("en-demo-instruct.wav"),
                },
                ChannelConfig {
                    id: "es".into(),
                    language: "es".into(),
                    allowed: Vec::new(),
                    label: "Español (demo recording)".into(),
                    floor: false,
                    source: file("es-demo-instruct.wav"),
                },
            ],
            cluster: None,
        }
    }
}
