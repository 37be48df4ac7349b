//! Caption files — WebVTT and SRT — and the clock they write: the one writer of both, for
//! `tolk transcribe` ([`crate::transcribe::format`]) and a meeting's exports
//! ([`crate::server::export`], behind `tolk export` and the organizer's page).

use std::fmt::Write;

/// One caption on screen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cue<'a> {
    /// The cue's identifier in WebVTT (a final's number); SRT numbers cues 1, 2, 3….
    pub id: Option<u64>,
    pub start: f64,
    pub end: f64,
    pub text: &'a str,
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

/// A cue's text on one line: a caption never carries a blank line (it would end the cue)
/// or the `-->` arrow (it would start one).
pub fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("-->", "→")
}

/// WebVTT reserves `&` and `<` in cue text: escaped (`&` first).
fn vtt_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;")
}

/// A WebVTT file of `cues`.
pub fn vtt<'a>(cues: impl IntoIterator<Item = Cue<'a>>) -> String {
    let mut s = String::from("WEBVTT\n");
    for c in cues {
        s.push('\n');
        if let Some(id) = c.id {
            let _ = writeln!(s, "{id}");
        }
        let _ = writeln!(
            s,
            "{} --> {}\n{}",
            clock(c.start, '.'),
            clock(c.end, '.'),
            vtt_escape(&one_line(c.text))
        );
    }
    s
}

/// An SRT file of `cues`, numbered from 1.
pub fn srt<'a>(cues: impl IntoIterator<Item = Cue<'a>>) -> String {
    let mut s = String::new();
    for (i, c) in cues.into_iter().enumerate() {
        let _ = write!(
            s,
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            clock(c.start, ','),
            clock(c.end, ','),
            one_line(c.text)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_in_both_formats() {
        let cues = [
            Cue {
                id: Some(7),
                start: 0.5,
                end: 2.25,
                text: "ask not",
            },
            Cue {
                id: None,
                start: 3661.25,
                end: 3662.0,
                text: "Q&A: <b> --> c\n\nd",
            },
        ];
        let v = vtt(cues);
        assert_eq!(
            v,
            "WEBVTT\n\n7\n00:00:00.500 --> 00:00:02.250\nask not\n\n01:01:01.250 --> 01:01:02.000\nQ&amp;A: &lt;b> → c d\n"
        );
        let s = srt(cues);
        assert_eq!(
            s,
            "1\n00:00:00,500 --> 00:00:02,250\nask not\n\n2\n01:01:01,250 --> 01:01:02,000\nQ&A: <b> → c d\n\n"
        );
    }
}
