//! Exports of a channel's archived finals: WebVTT, SRT, plain text, JSON, Markdown, and a
//! side-by-side bilingual Markdown table (the floor and one channel aligned by time).
//! Times are the channel's media times (seconds since its audio began).

use std::fmt::Write;
use std::str::FromStr;

use super::wire::Final;
use std::path::Path;

use super::archive::{Archive, ArchiveError};
use crate::subtitles::{self, clock as stamp, one_line, Cue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Vtt,
    Srt,
    Txt,
    Json,
    Md,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s {
            "vtt" => Format::Vtt,
            "srt" => Format::Srt,
            "txt" | "text" => Format::Txt,
            "json" => Format::Json,
            "md" | "markdown" => Format::Md,
            other => {
                return Err(format!(
                    "unknown export format `{other}`: use vtt, srt, txt, json or md"
                ))
            }
        })
    }
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Vtt => "text/vtt; charset=utf-8",
            Format::Srt => "application/x-subrip; charset=utf-8",
            Format::Txt => "text/plain; charset=utf-8",
            Format::Json => "application/json",
            Format::Md => "text/markdown; charset=utf-8",
        }
    }
}

/// A cue's end: when the next cue begins, if that is sooner (Whisper often stretches a
/// last word to its window's end, and two captions would share the screen), and after its
/// start (a cue of no length is refused by players).
fn cue_end(f: &Final, next: Option<&Final>) -> f64 {
    let end = next.map_or(f.end, |n| f.end.min(n.start));
    end.max(f.start + 0.2)
}

/// The finals as cues, each ending where the next begins ([`cue_end`]).
fn cues(finals: &[Final]) -> impl Iterator<Item = Cue<'_>> {
    finals.iter().enumerate().map(|(i, f)| Cue {
        id: Some(f.seq),
        start: f.start,
        end: cue_end(f, finals.get(i + 1)),
        text: &f.text,
    })
}

/// A channel's finals in `format`.
pub fn render(finals: &[Final], format: Format) -> String {
    let mut s = String::new();
    match format {
        Format::Vtt => s = subtitles::vtt(cues(finals)),
        Format::Srt => s = subtitles::srt(cues(finals)),
        Format::Txt => {
            for f in finals {
                let _ = writeln!(s, "{}", f.text.trim());
            }
        }
        Format::Json => {
            s = serde_json::to_string_pretty(finals).unwrap_or_else(|_| "[]".into());
            s.push('\n');
        }
        Format::Md => {
            for f in finals {
                let _ = writeln!(s, "**{}** {}\n", stamp(f.start, '.'), md(&f.text));
            }
        }
    }
    s
}

fn md(t: &str) -> String {
    one_line(t).replace('|', "\\|")
}

/// A channel's archived finals of meeting `meeting` in `format`, or beside those of channel
/// `with` (a Markdown table): the one export behind `tolk export` and the organizer's page.
pub fn from_archive(
    path: &Path,
    meeting: &str,
    channel: &str,
    with: Option<&str>,
    format: Format,
) -> Result<String, ArchiveError> {
    let a = Archive::open(path)?;
    let main = a.finals(Some(meeting), channel)?;
    Ok(match with {
        Some(w) => side_by_side(channel, &main, w, &a.finals(Some(meeting), w)?),
        None => render(&main, format),
    })
}

/// The floor and one channel side by side: one row per final of `a`, with the finals of `b`
/// that began before the next one of `a` (an interpreter follows the floor by a few seconds).
pub fn side_by_side(a_id: &str, a: &[Final], b_id: &str, b: &[Final]) -> String {
    let mut s = format!("| time | {a_id} | {b_id} |\n|---|---|---|\n");
    let mut j = 0;
    // `b`'s finals before `a`'s first one open the table.
    let first_a = a.first().map(|f| f.start).unwrap_or(f64::MAX);
    let mut lead = Vec::new();
    while j < b.len() && b[j].start < first_a {
        lead.push(md(&b[j].text));
        j += 1;
    }
    if !lead.is_empty() {
        let _ = writeln!(s, "| {} |  | {} |", stamp(b[0].start, '.'), lead.join(" "));
    }
    for (i, f) in a.iter().enumerate() {
        let next = a.get(i + 1).map(|n| n.start).unwrap_or(f64::MAX);
        let mut other = Vec::new();
        while j < b.len() && b[j].start < next {
            other.push(md(&b[j].text));
            j += 1;
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            stamp(f.start, '.'),
            md(&f.text),
            other.join(" ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(seq: u64, start: f64, end: f64, text: &str) -> Final {
        Final {
            start,
            end,
            ..Final::test("floor", seq, text)
        }
    }

    #[test]
    fn vtt_and_srt_cues() {
        let finals = [
            f(1, 0.5, 2.25, "ask not"),
            f(2, 3661.0, 3661.0, "a --> b\n\nc"),
            f(3, 3700.0, 3701.0, "Q&A: <b> & more"),
        ];
        let vtt = render(&finals, Format::Vtt);
        assert!(vtt.starts_with("WEBVTT\n\n1\n00:00:00.500 --> 00:00:02.250\nask not\n"));
        assert!(
            vtt.contains("01:01:01.000 --> 01:01:01.200\na → b c\n"),
            "{vtt}"
        );
        // WebVTT's reserved characters are escaped, `&` as well as `<`.
        assert!(vtt.contains("\nQ&amp;A: &lt;b> &amp; more\n"), "{vtt}");
        let srt = render(&finals, Format::Srt);
        assert!(srt.starts_with("1\n00:00:00,500 --> 00:00:02,250\nask not\n\n2\n"));
    }

    /// The floor's first finals of a CI run: Whisper stretched "raid." to 5.52 s, and the
    /// next final began at 3.79 s. On screen, a caption gives way to the next one.
    #[test]
    fn a_cue_ends_where_the_next_begins() {
        let finals = [
            f(
                1,
                0.06,
                5.52,
                "Today, sex workers were arrested in a police raid.",
            ),
            f(2, 3.79, 5.23, "They want rights, not"),
            f(3, 5.12, 7.03, "rescue. The network"),
        ];
        let vtt = render(&finals, Format::Vtt);
        assert!(vtt.contains("00:00:00.060 --> 00:00:03.790\n"), "{vtt}");
        assert!(vtt.contains("00:00:03.790 --> 00:00:05.120\n"), "{vtt}");
        assert!(vtt.contains("00:00:05.120 --> 00:00:07.030\n"), "{vtt}");
    }

    #[test]
    fn side_by_side_rows_follow_the_floor() {
        let a = [
            f(1, 0.0, 2.0, "ask not"),
            f(2, 5.0, 7.0, "what your country"),
        ];
        let b = [
            f(1, 1.5, 3.0, "no preguntes"),
            f(2, 6.0, 8.0, "qué tu país"),
        ];
        let t = side_by_side("floor", &a, "es", &b);
        let rows: Vec<&str> = t.lines().collect();
        assert_eq!(rows[2], "| 00:00:00.000 | ask not | no preguntes |");
        assert_eq!(
            rows[3],
            "| 00:00:05.000 | what your country | qué tu país |"
        );
    }

    #[test]
    fn unknown_formats_are_named() {
        assert!("pdf".parse::<Format>().unwrap_err().contains("pdf"));
    }
}
