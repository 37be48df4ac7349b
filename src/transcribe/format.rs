//! Transcript output formats: plain text with timestamps, JSON, WebVTT and SRT.

use super::Transcript;

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

/// `hh:mm:ss.mmm` (WebVTT, `decimal` = `.`) or `hh:mm:ss,mmm` (SRT, `,`).
pub fn clock(secs: f64, decimal: char) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{decimal}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
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
        Format::Vtt => {
            out.push_str("WEBVTT\n\n");
            for s in &t.segments {
                out.push_str(&format!(
                    "{} --> {}\n{}\n\n",
                    clock(s.start, '.'),
                    clock(s.end, '.'),
                    cue_text(&s.text)
                ));
            }
        }
        Format::Srt => {
            for (i, s) in t.segments.iter().enumerate() {
                out.push_str(&format!(
                    "{}\n{} --> {}\n{}\n\n",
                    i + 1,
                    clock(s.start, ','),
                    clock(s.end, ','),
                    cue_text(&s.text)
                ));
            }
        }
    }
    out
}

/// WebVTT reserves `&` and `<` in cue text: escaped (`&` first). The one escaper for both
/// WebVTT writers (this one and the server's export).
pub fn vtt_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;")
}

/// Cue text may not contain a blank line or `-->`; WebVTT also reserves `<` and `&`.
fn cue_text(text: &str) -> String {
    vtt_escape(&text.replace("-->", "->"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
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
        assert!(vtt.contains("a &lt;b> &amp; c -> d"));
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
