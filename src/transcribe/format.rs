//! Transcript output formats: plain text with timestamps, JSON, WebVTT and SRT.

use super::Transcript;
use crate::subtitles::{self, clock, Cue};

/// An output format of `tolk transcribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per segment: `[00:00:00.000 --> 00:00:11.000]  text`.
    Text,
    /// The whole transcript as one JSON object.
    Json,
    /// WebVTT captions.
    Vtt,
    /// SubRip captions.
    Srt,
}

/// Renders a transcript. `meta` goes into the JSON form only.
pub fn render(t: &Transcript, format: Format, meta: &serde_json::Value) -> String {
    let mut out = String::new();
    match format {
        Format::Text => {
            for s in &t.segments {
                out.push_str(&format!(
                    "[{} --> {}]  {}\n",
                    clock(s.start, '.'),
                    clock(s.end, '.'),
                    s.text
                ));
            }
        }
        Format::Json => {
            let mut v = serde_json::json!({
                "language": t.language,
                "text": t.text(),
                "segments": t.segments,
            });
            if let (Some(obj), Some(m)) = (v.as_object_mut(), meta.as_object()) {
                for (k, val) in m {
                    obj.insert(k.clone(), val.clone());
                }
            }
            out = serde_json::to_string_pretty(&v).unwrap_or_default();
            out.push('\n');
        }
        Format::Vtt => out = subtitles::vtt(cues(t)),
        Format::Srt => out = subtitles::srt(cues(t)),
    }
    out
}

/// A transcript's segments as cues.
fn cues(t: &Transcript) -> impl Iterator<Item = Cue<'_>> {
    t.segments.iter().map(|s| Cue {
        id: None,
        start: s.start,
        end: s.end,
        text: &s.text,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Segment;
    use super::*;

    fn sample() -> Transcript {
        Transcript {
            language: "en".into(),
            segments: vec![
                Segment {
                    start: 0.0,
                    end: 3.5,
                    text: "Ask not.".into(),
                    no_speech_prob: 0.0,
                },
                Segment {
                    start: 3661.25,
                    end: 3662.0,
                    text: "a <b> & c --> d".into(),
                    no_speech_prob: 0.0,
                },
            ],
        }
    }

    #[test]
    fn timestamps_and_layouts() {
        let t = sample();
        let text = render(&t, Format::Text, &serde_json::Value::Null);
        assert!(text.starts_with("[00:00:00.000 --> 00:00:03.500]  Ask not.\n"));
        assert!(text.contains("[01:01:01.250 --> 01:01:02.000]"));
        let vtt = render(&t, Format::Vtt, &serde_json::Value::Null);
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:03.500\nAsk not.\n\n"));
        assert!(vtt.contains("a &lt;b> &amp; c → d"));
        let srt = render(&t, Format::Srt, &serde_json::Value::Null);
        assert!(srt.starts_with("1\n00:00:00,000 --> 00:00:03,500\nAsk not.\n\n2\n01:01:01,250"));
        let json: serde_json::Value = serde_json::from_str(&render(
            &t,
            Format::Json,
            &serde_json::json!({"model": "base"}),
        ))
        .unwrap();
        assert_eq!(json["model"], "base");
        assert_eq!(json["segments"][1]["start"], 3661.25);
        assert_eq!(json["text"], "Ask not. a <b> & c --> d");
    }
}
