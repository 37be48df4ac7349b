//! Caption protocol v1: every message that crosses the WebSocket, in one place.
//! `docs/protocol.md` is the reader's version, with examples.
//!
//! JSON text frames, one message each, tagged by `type`. Client messages are parsed
//! strictly: an unknown type or field is an `error` message back, never a dropped
//! connection.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::glossary::{Correction, Flag, Hit};

/// The protocol version in the `meeting` message; a client built for another one can say so.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Start receiving these channels (added to any already subscribed). With `since`, for a
    /// channel: the last `seq` the client has; it gets every final after it, then live
    /// events (no gap, no duplicate). Without: a snapshot of recent finals and the current
    /// partial.
    Subscribe {
        channels: Vec<String>,
        #[serde(default)]
        since: BTreeMap<String, u64>,
    },
    /// Stop receiving these channels.
    Unsubscribe { channels: Vec<String> },
    /// Answered by `pong` with the same id.
    Ping {
        #[serde(default)]
        id: u64,
    },
}

/// The first message of an ingest connection (`/ingest/{channel}`, a remote booth's audio);
/// after it, every binary frame is audio: one Opus packet (mono, a 20 ms frame is usual), or
/// 16-bit little-endian mono PCM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum IngestMessage {
    Hello { format: AudioFormat, rate: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormat {
    Opus,
    Pcm16,
}

/// The Opus sample rates (the decoder runs at the sender's).
pub const OPUS_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

/// A channel as listeners see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub id: String,
    pub language: String,
    pub label: String,
    pub floor: bool,
    /// A machine translation (Whisper's translate task) of this channel's speech, not an
    /// interpreter: pages say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translates: Option<String>,
}

/// A committed caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Final {
    pub channel: String,
    /// 1, 2, 3… per channel, for the meeting's whole life (continued after a restart).
    pub seq: u64,
    /// Media seconds of the words in the channel's audio (after a restart, counted on from
    /// the archive's last final, so a meeting's times only go forward).
    pub start: f64,
    pub end: f64,
    /// When the server emitted it, Unix milliseconds.
    pub wall_ms: u64,
    pub language: String,
    /// The text after glossary corrections.
    pub text: String,
    /// What Whisper wrote.
    pub raw_text: String,
    #[serde(default)]
    pub glossary: Annotations,
}

/// Glossary annotations of a final (spans are byte offsets in `text`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Annotations {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<Correction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hits: Vec<Hit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
}

/// The tentative text of a channel's open segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    pub channel: String,
    pub segment: u64,
    pub revision: u64,
    /// Empty: the tentative text is withdrawn.
    pub text: String,
    pub start: f64,
    pub end: f64,
}

/// A channel's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    /// Speech is being transcribed on time.
    Live,
    /// The source is running, nobody is speaking.
    Silent,
    /// Transcription is behind by more than the lag threshold.
    Lagging,
    /// The source has ended (a file that does not loop) or failed.
    Ended,
    /// The organizer stopped the channel: its audio is not transcribed until started again.
    Stopped,
    /// Speech on this channel is not all being captioned now (recognition is down and
    /// restarting, say); `source` says why.
    Incomplete,
}

/// How fully a channel is being captioned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelMode {
    /// Partials about every second, finals as the speaker goes.
    #[default]
    Full,
    /// The machine is busy with other channels (or too slow): this channel is decoded in
    /// pieces of a few seconds (cut at breaths), without partials, so its captions come in
    /// larger pieces, later.
    Reduced,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// On connect, and when the meeting changes.
    Meeting {
        protocol: u32,
        title: String,
        /// Captions flow, nothing is stored.
        off_record: bool,
        /// A demo meeting replaying recordings.
        demo: bool,
        /// Attendees may download their channel's transcript (`GET /transcript/{channel}`);
        /// false while the meeting is off the record.
        #[serde(default)]
        downloads: bool,
        channels: Vec<ChannelInfo>,
    },
    /// A channel's recent finals and current partial: on subscribe without `since`, and
    /// instead of the missed events when a client fell too far behind (`resync`).
    Snapshot {
        channel: String,
        finals: Vec<Final>,
        partial: Option<Partial>,
        resync: bool,
    },
    Partial(Partial),
    Final(Final),
    /// A final sent before (same channel and seq), its text revised by a decode of the whole
    /// stretch of speech around it, about half a minute later: replaces that final.
    Revised(Final),
    Status {
        channel: String,
        state: ChannelState,
        /// Seconds the transcription is behind the audio.
        lag: f64,
        /// Full, or reduced when the machine cannot decode this channel every second.
        #[serde(default)]
        mode: ChannelMode,
        /// The source's own state in words ("playing", "looping", "ended", an error).
        source: String,
    },
    /// Every few seconds, so a client can tell a quiet meeting from a dead connection.
    Heartbeat {
        wall_ms: u64,
    },
    Pong {
        id: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    /// To an ingest sender, after its `hello`: send audio.
    Ready {
        channel: String,
    },
}

/// Why a client message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a message of this protocol.
    BadMessage,
    /// A channel id the meeting does not have.
    UnknownChannel,
    /// A binary frame where text was expected, or a message too large.
    Unsupported,
    /// Ingest: audio that cannot be decoded.
    BadAudio,
}

/// Parses a client message; the error says what is wrong, in words for the client.
pub fn parse_client(text: &str) -> Result<ClientMessage, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Finals for the unit tests.
#[cfg(test)]
impl Final {
    /// Final `seq` of `channel`: `text` (raw the same), media seconds `seq` to `seq + 1`,
    /// English, no annotations.
    pub(crate) fn test(channel: &str, seq: u64, text: &str) -> Final {
        Final {
            channel: channel.into(),
            seq,
            start: seq as f64,
            end: seq as f64 + 1.0,
            wall_ms: seq,
            language: "en".into(),
            text: text.into(),
            raw_text: text.into(),
            glossary: Annotations::default(),
        }
    }
}

impl ServerMessage {
    /// The JSON text of the message.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and vectors always serializes.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"type":"error","code":"bad_message","message":"{e}"}}"#)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_strictly() {
        assert_eq!(
            parse_client(r#"{"type":"subscribe","channels":["floor","es"],"since":{"floor":4}}"#),
            Ok(ClientMessage::Subscribe {
                channels: vec!["floor".into(), "es".into()],
                since: [("floor".to_string(), 4)].into_iter().collect(),
            })
        );
        assert_eq!(
            parse_client(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping { id: 0 })
        );
        for bad in [
            "",
            "{",
            "[]",
            r#"{"type":"shout"}"#,
            r#"{"type":"subscribe"}"#,
            r#"{"type":"subscribe","channels":"floor"}"#,
            r#"{"type":"ping","id":1,"extra":true}"#,
        ] {
            assert!(parse_client(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_messages_are_tagged_json() {
        let m = ServerMessage::Status {
            channel: "floor".into(),
            state: ChannelState::Lagging,
            lag: 2.5,
            mode: ChannelMode::Reduced,
            source: "playing".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(v["type"], "status");
        assert_eq!(v["state"], "lagging");
        assert_eq!(v["mode"], "reduced");
        let back: ServerMessage = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(back, m);
    }
    /// Every message type, field and enumerated value that crosses the WebSocket (each
    /// variant with every optional part filled in) is named in `docs/protocol.md`, as
    /// `"name"` in an example or `` `name` `` in the text: the doc cannot fall behind the code.
    #[test]
    fn the_protocol_doc_names_every_message_field_and_value() {
        use crate::glossary::{Category, Equivalent, Verification};
        let doc = include_str!("../../docs/protocol.md");
        let final_ = Final {
            glossary: Annotations {
                corrections: vec![Correction {
                    start: 0,
                    end: 1,
                    raw_start: 0,
                    raw_end: 1,
                    from: "a".into(),
                    to: "b".into(),
                    concept: "c".into(),
                    confidence: Some(0.8),
                }],
                hits: vec![Hit {
                    start: 0,
                    end: 1,
                    text: "b".into(),
                    concept: "c".into(),
                    category: Category::Law,
                    equivalents: vec![
                        Equivalent {
                            lang: "es".into(),
                            text: "b".into(),
                            verification: Verification::Sourced("s".into()),
                        },
                        Equivalent {
                            lang: "fr".into(),
                            text: "b".into(),
                            verification: Verification::Proposal,
                        },
                    ],
                }],
                flags: vec![Flag {
                    start: 0,
                    end: 1,
                    text: "b".into(),
                    concept: "c".into(),
                    prefer: "d".into(),
                    reason: "e".into(),
                }],
            },
            ..Final::test("floor", 1, "b")
        };
        let partial = Partial {
            channel: "floor".into(),
            segment: 1,
            revision: 1,
            text: "a".into(),
            start: 0.0,
            end: 1.0,
        };
        let mut messages = vec![
            ServerMessage::Meeting {
                protocol: PROTOCOL_VERSION,
                title: "t".into(),
                off_record: false,
                demo: false,
                downloads: false,
                channels: vec![ChannelInfo {
                    id: "mt".into(),
                    language: "en".into(),
                    label: "l".into(),
                    floor: false,
                    translates: Some("floor".into()),
                }],
            },
            ServerMessage::Snapshot {
                channel: "floor".into(),
                finals: vec![final_.clone()],
                partial: Some(partial.clone()),
                resync: true,
            },
            ServerMessage::Partial(partial),
            ServerMessage::Final(final_),
            ServerMessage::Heartbeat { wall_ms: 1 },
            ServerMessage::Pong { id: 1 },
            ServerMessage::Ready {
                channel: "floor".into(),
            },
        ];
        for state in [
            ChannelState::Live,
            ChannelState::Silent,
            ChannelState::Lagging,
            ChannelState::Ended,
            ChannelState::Stopped,
            ChannelState::Incomplete,
        ] {
            for mode in [ChannelMode::Full, ChannelMode::Reduced] {
                messages.push(ServerMessage::Status {
                    channel: "floor".into(),
                    state,
                    lag: 0.0,
                    mode,
                    source: "s".into(),
                });
            }
        }
        for code in [
            ErrorCode::BadMessage,
            ErrorCode::UnknownChannel,
            ErrorCode::Unsupported,
            ErrorCode::BadAudio,
        ] {
            messages.push(ServerMessage::Error {
                code,
                message: "m".into(),
            });
        }
        let mut names = std::collections::BTreeSet::new();
        fn collect(v: &serde_json::Value, names: &mut std::collections::BTreeSet<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        names.insert(k.clone());
                        // Tags and enumerated values (not free text).
                        if matches!(
                            k.as_str(),
                            "type" | "state" | "mode" | "code" | "category" | "status"
                        ) {
                            if let Some(s) = v.as_str() {
                                names.insert(s.to_string());
                            }
                        }
                        collect(v, names);
                    }
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| collect(v, names)),
                _ => {}
            }
        }
        for m in &messages {
            collect(&serde_json::from_str(&m.to_json()).unwrap(), &mut names);
        }
        // What clients send.
        for json in [
            r#"{"type":"subscribe","channels":["floor"],"since":{"floor":1}}"#,
            r#"{"type":"unsubscribe","channels":["floor"]}"#,
            r#"{"type":"ping","id":1}"#,
        ] {
            assert!(parse_client(json).is_ok(), "{json}");
            collect(&serde_json::from_str(json).unwrap(), &mut names);
        }
        let hello = IngestMessage::Hello {
            format: AudioFormat::Pcm16,
            rate: 16_000,
        };
        collect(&serde_json::to_value(&hello).unwrap(), &mut names);
        names.insert("opus".into());
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !doc.contains(&format!("\"{n}\"")) && !doc.contains(&format!("`{n}`")))
            .collect();
        assert!(missing.is_empty(), "not in docs/protocol.md: {missing:?}");
    }
}
