//! The engine's sink: each caption event of each channel, on the decoder thread, made into
//! what listeners get — glossary annotations on finals ([`ChannelAnnotator`], the same as
//! `tolk stream`'s), protected names withheld ([`super::redact`]), times continued after a
//! restart — and queued for the writer ([`Captions`]; the writer archives, then publishes).
//!
//! It runs inline on the decoder thread: a caption costs microseconds here, and the queue
//! it hands to never waits (see [`super::pipeline`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::glossary::{ChannelAnnotator, Glossary};
use crate::stream::decoder::Emitted;
use crate::stream::policy::Event;

use super::now_ms;
use super::pipeline::PipelineTx;
use super::redact::Redactor;
use super::wire::{Annotations, Final, Partial};

/// Where the sink's captions go: the writer's queue ([`PipelineTx`]) in a server. With
/// each, the words as said for interpreters when protected names were withheld from it.
pub trait Captions {
    fn partial(&self, channel: usize, p: Partial, said: Option<Partial>);
    /// `segment`: the engine's number of the final in its channel (a revision names it).
    fn final_(&self, channel: usize, segment: u64, f: Final, said: Option<Box<Final>>);
    /// A final sent before, revised (`f.seq` is 0: the writer finds it by `segment`).
    fn revised(&self, channel: usize, segment: u64, f: Final, said: Option<Box<Final>>);
}

impl Captions for PipelineTx {
    fn partial(&self, channel: usize, p: Partial, said: Option<Partial>) {
        PipelineTx::partial(self, channel, p, said)
    }

    fn final_(&self, channel: usize, segment: u64, f: Final, said: Option<Box<Final>>) {
        PipelineTx::final_(self, channel, segment, f, said)
    }

    fn revised(&self, channel: usize, segment: u64, f: Final, said: Option<Box<Final>>) {
        PipelineTx::revised(self, channel, segment, f, said)
    }
}

/// One channel, as the sink knows it.
pub struct SinkChannel {
    pub id: String,
    /// Its glossary annotation (language, target languages, recent terms).
    pub annotator: ChannelAnnotator,
    /// Media seconds added to its times: the archive's last end after a restart, so a
    /// meeting's times only go forward.
    pub time_base: f64,
    /// A test's injected panic (`TOLK_FAULT_PANIC=sink:CHANNEL:N`): at the channel's final N.
    pub panic_at: Option<u64>,
}

/// The sink of a meeting's engine.
pub struct Sink<C> {
    channels: Vec<SinkChannel>,
    /// Finals seen per channel (for [`SinkChannel::panic_at`]).
    finals: Vec<u64>,
    glossary: Option<Arc<Glossary>>,
    redactor: Option<Redactor>,
    /// Wall ms of each channel's last caption event (a channel without any for a while is
    /// `silent`).
    last_event: Arc<Vec<AtomicU64>>,
    out: C,
}

impl<C: Captions> Sink<C> {
    pub fn new(
        channels: Vec<SinkChannel>,
        glossary: Option<Arc<Glossary>>,
        redactor: Option<Redactor>,
        last_event: Arc<Vec<AtomicU64>>,
        out: C,
    ) -> Sink<C> {
        Sink {
            finals: vec![0; channels.len()],
            channels,
            glossary,
            redactor,
            last_event,
            out,
        }
    }

    /// One event of channel `ch` (traces are not captions: dropped).
    pub fn on_event(&mut self, ch: usize, e: Emitted) {
        if ch >= self.channels.len() || matches!(e.event, Event::Trace(_)) {
            return;
        }
        if let Some(t) = self.last_event.get(ch) {
            t.store(now_ms(), Relaxed);
        }
        match e.event {
            Event::Trace(_) => {}
            Event::Partial {
                segment,
                revision,
                text,
                start,
                end,
                ..
            } => {
                let c = &self.channels[ch];
                self.on_partial(
                    ch,
                    Partial {
                        channel: c.id.clone(),
                        segment,
                        revision,
                        text,
                        start: c.time_base + start,
                        end: c.time_base + end,
                    },
                )
            }
            Event::Final {
                segment,
                start,
                end,
                raw_text,
                language,
                ..
            } => self.on_final(ch, segment, (start, end), raw_text, &language),
            Event::Revised(r) => {
                for p in r.pieces {
                    self.on_revised(ch, p.segment, (p.start, p.end), p.text, &r.language);
                }
            }
        }
    }

    /// A partial, its times already based: withheld names withheld, queued (partials are
    /// not annotated: they change several times a second).
    pub fn on_partial(&mut self, ch: usize, p: Partial) {
        match self.redactor.as_ref().and_then(|r| r.partial(&p)) {
            Some(withheld) => self.out.partial(ch, withheld, Some(p)),
            None => self.out.partial(ch, p, None),
        }
    }

    /// A final as the engine gave it (media times of the channel's audio, the language it
    /// was heard in, empty if unknown): annotated, names withheld, queued.
    pub fn on_final(
        &mut self,
        ch: usize,
        segment: u64,
        (start, end): (f64, f64),
        raw_text: String,
        heard: &str,
    ) {
        self.finals[ch] += 1;
        if self.channels[ch].panic_at == Some(self.finals[ch]) {
            panic!("fault injected in the sink (TOLK_FAULT_PANIC)");
        }
        let (f, said) = self.caption(ch, start, end, raw_text, heard, true);
        self.out.final_(ch, segment, f, said);
    }

    /// A final's revised text (the same media times as the final it revises): annotated,
    /// names withheld, queued — as the final was.
    pub fn on_revised(
        &mut self,
        ch: usize,
        segment: u64,
        (start, end): (f64, f64),
        raw_text: String,
        heard: &str,
    ) {
        let (f, said) = self.caption(ch, start, end, raw_text, heard, false);
        self.out.revised(ch, segment, f, said);
    }

    /// A final's text made into what listeners get: glossary annotations (`live`: it counts
    /// as the channel's latest, for domain context), protected names withheld (then the
    /// words as said beside it, for interpreters).
    fn caption(
        &mut self,
        ch: usize,
        start: f64,
        end: f64,
        raw_text: String,
        heard: &str,
        live: bool,
    ) -> (Final, Option<Box<Final>>) {
        let c = &mut self.channels[ch];
        let (start, end) = (c.time_base + start, c.time_base + end);
        let language = c.annotator.language(heard);
        let (text, glossary) = match &self.glossary {
            Some(g) => {
                let a = c
                    .annotator
                    .annotate(g, &raw_text, &language, start, end, live);
                (
                    a.text,
                    Annotations {
                        corrections: a.corrections,
                        hits: a.hits,
                        flags: a.flags,
                    },
                )
            }
            None => (raw_text.clone(), Annotations::default()),
        };
        let f = Final {
            channel: c.id.clone(),
            seq: 0,
            start,
            end,
            wall_ms: now_ms(),
            language,
            text,
            raw_text,
            glossary,
        };
        match self.redactor.as_ref().and_then(|r| r.final_(&f)) {
            Some(withheld) => (withheld, Some(Box::new(f))),
            None => (f, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// What the sink queued, in order.
    #[derive(Default)]
    struct Queued(Mutex<Vec<(usize, String, Option<String>)>>);

    impl Captions for &Queued {
        fn partial(&self, ch: usize, p: Partial, said: Option<Partial>) {
            self.0
                .lock()
                .unwrap()
                .push((ch, p.text, said.map(|s| s.text)));
        }

        fn final_(&self, ch: usize, _: u64, f: Final, said: Option<Box<Final>>) {
            let text = format!("{} [{} {}..{}]", f.text, f.language, f.start, f.end);
            self.0
                .lock()
                .unwrap()
                .push((ch, text, said.map(|s| s.text)));
        }

        fn revised(&self, ch: usize, _: u64, f: Final, said: Option<Box<Final>>) {
            let text = format!("revised {} [{} {}..{}]", f.text, f.language, f.start, f.end);
            self.0
                .lock()
                .unwrap()
                .push((ch, text, said.map(|s| s.text)));
        }
    }

    fn channel(id: &str, language: &str, time_base: f64) -> SinkChannel {
        SinkChannel {
            id: id.into(),
            annotator: ChannelAnnotator::new(language, false, &[], true),
            time_base,
            panic_at: None,
        }
    }

    fn final_(text: &str, language: &str, start: f64, end: f64) -> Emitted {
        Emitted {
            event: Event::Final {
                seq: 1,
                segment: 1,
                start,
                end,
                text: text.into(),
                raw_text: text.into(),
                language: language.into(),
                words: Vec::new(),
                emitted: end,
            },
            at: end,
        }
    }

    #[test]
    fn finals_are_corrected_withheld_and_continued_in_time_partials_withheld_only() {
        let glossary = Glossary::new(
            crate::glossary::parse(
                r#"
[glossary]
id = "t"
title = "t"
languages = ["en"]

[[concept]]
id = "nswp"
category = "org"
[[concept.term]]
lang = "en"
text = "NSWP"
[[concept.asr]]
lang = "en"
heard = "NSW P"
"#,
            )
            .unwrap(),
        )
        .unwrap();
        let redactor = Redactor::new(&["Maria Lopez".to_string()]).unwrap();
        let queued = Queued::default();
        let last_event = Arc::new(vec![AtomicU64::new(0), AtomicU64::new(0)]);
        let mut sink = Sink::new(
            vec![channel("floor", "en", 100.0), channel("es", "es", 0.0)],
            Some(Arc::new(glossary)),
            redactor,
            last_event.clone(),
            &queued,
        );
        sink.on_event(0, final_("Maria Lopez spoke for NSW P.", "", 1.0, 3.0));
        sink.on_event(
            1,
            Emitted {
                event: Event::Partial {
                    segment: 1,
                    revision: 1,
                    text: "con Maria Lopez".into(),
                    start: 0.5,
                    end: 1.5,
                    emitted: 1.5,
                },
                at: 1.5,
            },
        );
        // Not a channel of this meeting: nothing queued, nothing panics.
        sink.on_event(7, final_("lost", "en", 0.0, 1.0));
        let q = queued.0.lock().unwrap();
        assert_eq!(q.len(), 2, "{q:?}");
        let (ch, text, said) = &q[0];
        assert_eq!(*ch, 0);
        assert!(!text.contains("Maria"), "a protected name withheld: {text}");
        assert!(
            text.contains("NSWP"),
            "a listed misrecognition corrected: {text}"
        );
        assert!(
            text.ends_with("[en 101..103]"),
            "channel's language, times based: {text}"
        );
        assert!(said.as_deref().is_some_and(|s| s.contains("Maria Lopez")));
        let (ch, text, said) = &q[1];
        assert_eq!(*ch, 1);
        assert!(!text.contains("Maria"), "{text}");
        assert_eq!(said.as_deref(), Some("con Maria Lopez"));
        assert!(last_event.iter().all(|t| t.load(Relaxed) > 0));
    }

    /// A revision names what it revises by the final's times as the final went out (based
    /// the same way), and is redacted and corrected as a final is: a protected name the
    /// long decode heard, and the stream did not, is still withheld.
    #[test]
    fn a_revision_is_withheld_and_timed_as_its_finals_were() {
        let redactor = Redactor::new(&["Maria Lopez".to_string()]).unwrap();
        let queued = Queued::default();
        let mut sink = Sink::new(
            vec![channel("floor", "en", 100.0)],
            None,
            redactor,
            Arc::new(vec![AtomicU64::new(0)]),
            &queued,
        );
        sink.on_event(0, final_("thanks to", "en", 1.0, 3.0));
        sink.on_event(
            0,
            Emitted {
                event: Event::Revised(crate::stream::revise::Revision {
                    from: 0.5,
                    to: 4.0,
                    language: "en".into(),
                    pieces: vec![crate::stream::revise::Piece {
                        segment: 1,
                        start: 1.0,
                        end: 3.0,
                        text: "thanks to Maria Lopez".into(),
                    }],
                }),
                at: 30.0,
            },
        );
        let q = queued.0.lock().unwrap();
        assert_eq!(q.len(), 2, "{q:?}");
        let (_, text, said) = &q[1];
        assert!(text.starts_with("revised thanks to"), "{text}");
        assert!(!text.contains("Maria"), "a protected name withheld: {text}");
        assert!(text.ends_with("[en 101..103]"), "the final's times: {text}");
        assert_eq!(q[0].1, "thanks to [en 101..103]");
        assert_eq!(said.as_deref(), Some("thanks to Maria Lopez"));
    }
}
