//! The multi-channel streaming engine: one model, one decoder thread, the floor first.

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::util::*;
use tolk::stream::decoder::{Decoding, Emitted};
use tolk::stream::lang::LanguageMode;
use tolk::stream::policy::{Event, PolicyConfig};
use tolk::stream::scheduler::{ChannelId, ChannelSpec, ChannelStats, Engine, Fault, Health};

fn spec(name: &str, lang: &str, floor: bool) -> ChannelSpec {
    ChannelSpec {
        name: name.into(),
        language: LanguageMode::Fixed(lang.into()),
        floor,
        policy: PolicyConfig::default(),
        hints: Vec::new(),
        translate: false,
        revise: false,
        fault: None,
    }
}

/// What [`two_channels`] saw: every event with its channel, each channel's numbers at the end.
struct Run {
    events: Vec<(ChannelId, Emitted)>,
    stats: Vec<ChannelStats>,
    ids: (ChannelId, ChannelId),
    /// The engine's health at the end, and whether it was ever down on the way.
    health: Health,
    was_down: bool,
}

impl Run {
    /// A channel's finals: text, media start, engine time emitted.
    fn finals(&self, id: ChannelId) -> Vec<(String, f64, f64)> {
        self.events
            .iter()
            .filter(|(c, _)| *c == id)
            .filter_map(|(_, e)| match &e.event {
                Event::Final { text, start, .. } => Some((text.clone(), *start, e.at)),
                _ => None,
            })
            .collect()
    }
}

/// An engine with two channels: the floor (jfk.wav, English) and `es` (as long, of
/// es-demo-congrats.wav, Spanish), both fed in real time, 100 ms at a time, to the end.
fn two_channels(model: &Arc<tolk::transcribe::Model>, es_spec: ChannelSpec) -> Run {
    two_channels_with(model, spec("floor", "en", true), es_spec, None)
}

/// [`two_channels`] with the floor's spec too, and a sink that panics on the `es` channel's
/// final number N.
fn two_channels_with(
    model: &Arc<tolk::transcribe::Model>,
    floor_spec: ChannelSpec,
    es_spec: ChannelSpec,
    sink_panics_at_final: Option<usize>,
) -> Run {
    let floor_audio = tolk::audio::decode_file(&testdata("jfk.wav"))
        .unwrap()
        .samples;
    let es_audio = tolk::audio::decode_file(&testdata("es-demo-congrats.wav"))
        .unwrap()
        .samples;
    let es_audio = &es_audio[..floor_audio.len()];

    let (tx, rx) = mpsc::channel::<(ChannelId, Emitted)>();
    let mut es_finals = 0;
    let engine = Engine::start(
        model.clone(),
        Decoding::threads(tolk::transcribe::default_threads()),
        Box::new(move |id, e| {
            if id == 1 && matches!(e.event, Event::Final { .. }) {
                es_finals += 1;
                if sink_panics_at_final == Some(es_finals) {
                    panic!("fault injected in the sink");
                }
            }
            let _ = tx.send((id, e));
        }),
    )
    .unwrap();
    let floor = engine.open(floor_spec).unwrap();
    let es = engine.open(es_spec).unwrap();

    let start = Instant::now();
    let chunk = 1600;
    let mut fed = 0;
    let mut was_down = false;
    while fed < floor_audio.len() {
        was_down |= engine.health().down.is_some();
        let due = ((start.elapsed().as_secs_f64() * 16_000.0) as usize).min(floor_audio.len());
        while fed + chunk <= due || (due == floor_audio.len() && fed < due) {
            let end = (fed + chunk).min(floor_audio.len());
            floor.push_audio(&floor_audio[fed..end]).unwrap();
            es.push_audio(&es_audio[fed..end]).unwrap();
            fed = end;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    floor.finish();
    es.finish();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !engine.stats().iter().all(|s| s.done) {
        was_down |= engine.health().down.is_some();
        assert!(Instant::now() < deadline, "channels never finished");
        assert!(engine.stopped().is_none(), "{:?}", engine.stopped());
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = engine.stats();
    let health = engine.health();
    engine.shutdown();
    Run {
        events: rx.try_iter().collect(),
        stats,
        ids: (floor.id(), es.id()),
        health,
        was_down,
    }
}

/// The floor's captions are right: jfk.wav at a WER of at most 8 %.
fn assert_floor_ok(run: &Run) {
    let floor_text: Vec<String> = run.finals(run.ids.0).into_iter().map(|f| f.0).collect();
    let w = tolk::eval::wer(&reference("jfk.txt"), &floor_text.join(" "), "en");
    assert!(
        w.rate() <= 0.08,
        "floor WER {:.3}: {}",
        w.rate(),
        floor_text.join(" | ")
    );
}

/// Two live channels share one loaded model: the floor (English) and a second one (Spanish),
/// both fed in real time. Both get their captions; the floor's keep coming while the audio
/// plays; each channel reports its lag in seconds.
#[test]
fn two_channels_share_one_model_and_the_floor_keeps_flowing() {
    let _guard = whisper_lock();
    let model = Arc::new(tolk::transcribe::Model::load(&model("base")).unwrap());
    let run = two_channels(&model, spec("es", "es", false));
    assert_floor_ok(&run);
    let floor_finals = run.finals(run.ids.0);
    assert!(
        floor_finals[0].2 < 11.0,
        "the floor's first caption came at {:.1} s, after the audio ended",
        floor_finals[0].2
    );
    let es_text: Vec<String> = run.finals(run.ids.1).into_iter().map(|f| f.0).collect();
    let es_text = es_text.join(" ").to_lowercase();
    assert!(
        ["felicidades", "instalado", "exitosamente"]
            .iter()
            .any(|w| es_text.contains(w)),
        "the second channel was served: {es_text}"
    );
    assert_eq!(run.stats.len(), 2);
    for s in &run.stats {
        assert!(s.decodes > 0, "{s:?}");
        assert!(
            s.lag.is_finite() && s.lag >= 0.0 && s.max_lag < 30.0,
            "{s:?}"
        );
        assert!((s.audio_secs - 11.0).abs() < 0.01, "{s:?}");
        assert_eq!(s.audio_lost_secs, 0.0);
        assert_eq!(s.restarts, 0);
    }
    // One model: the engine's thread has let go of it, only this test holds it.
    assert_eq!(Arc::strong_count(&model), 1);
}

/// A fault in one channel's recognition (a panic injected in its third decode) restarts
/// that channel only: it is captioned again afterwards, its times go on in order, the fault
/// is counted and named; the floor is transcribed as well as without the fault.
#[test]
fn a_panic_in_one_channel_restarts_it_and_spares_the_others() {
    let _guard = whisper_lock();
    let model = Arc::new(tolk::transcribe::Model::load(&model("base")).unwrap());
    let run = two_channels(
        &model,
        ChannelSpec {
            fault: Some(Fault::Recognition(3)),
            ..spec("es", "es", false)
        },
    );
    assert_floor_ok(&run);
    let es = &run.stats[1];
    assert_eq!(es.restarts, 1, "{es:?}");
    let (why, at) = es.last_fault.clone().unwrap();
    assert!(why.contains("fault injected at decode 3"), "{why}");
    // The window being decoded when it failed (0.3 s and more of speech) is counted as
    // untranscribed; the floor gave up nothing.
    assert!(es.untranscribed_secs >= 0.3, "{es:?}");
    assert_eq!(run.stats[0].untranscribed_secs, 0.0, "{:?}", run.stats[0]);
    let es_finals = run.finals(run.ids.1);
    assert!(
        es_finals.iter().any(|f| f.2 > at),
        "the channel is captioned again after its restart at {at:.1} s: {es_finals:?}"
    );
    for w in es_finals.windows(2) {
        assert!(w[1].1 >= w[0].1, "times go on in order: {es_finals:?}");
    }
    assert!((es.audio_secs - 11.0).abs() < 0.01, "{es:?}");
    assert_eq!(run.stats[0].restarts, 0);
}

/// A panic in the sink (the server's glossary, redaction and queue run there) loses that one
/// event, counted and named for its channel; recognition goes on for every channel, that
/// one included.
#[test]
fn a_panic_in_the_sink_loses_one_event_not_the_engine() {
    let _guard = whisper_lock();
    let model = Arc::new(tolk::transcribe::Model::load(&model("base")).unwrap());
    let run = two_channels_with(
        &model,
        spec("floor", "en", true),
        spec("es", "es", false),
        Some(1),
    );
    assert_floor_ok(&run);
    let es = &run.stats[1];
    assert_eq!((es.events_lost, es.finals_lost), (1, 1), "{es:?}");
    assert_eq!(es.restarts, 0, "{es:?}");
    let (why, at) = es.last_fault.clone().unwrap();
    assert!(
        why.contains("a final was lost in caption delivery"),
        "{why}"
    );
    assert!(why.contains("fault injected in the sink"), "{why}");
    assert!(
        run.finals(run.ids.1).iter().any(|f| f.2 > at),
        "the channel is captioned after the fault at {at:.1} s"
    );
    assert_eq!(run.health, Health::default(), "the thread never died");
    assert_eq!(run.stats[0].events_lost, 0);
}

/// A panic in the decoder thread outside any channel's guard: the thread is started again
/// (after [`tolk::stream::scheduler::RESTART_PAUSE`]), its health says recognition is down
/// meanwhile, and both channels are captioned again, their times going on in order.
#[test]
fn a_dead_decoder_thread_is_started_again() {
    let _guard = whisper_lock();
    let model = Arc::new(tolk::transcribe::Model::load(&model("base")).unwrap());
    let run = two_channels_with(
        &model,
        ChannelSpec {
            fault: Some(Fault::Thread(3)),
            ..spec("floor", "en", true)
        },
        spec("es", "es", false),
        None,
    );
    assert!(run.was_down, "the health never said recognition was down");
    assert_eq!(run.health.down, None, "it is up again");
    assert_eq!(run.health.thread_restarts, 1);
    let why = run.health.last_thread_fault.clone().unwrap();
    assert!(
        why.contains("fault injected in the decoder thread"),
        "{why}"
    );
    // Both channels captioned after the restart (the fault came at the floor's third decode,
    // a few seconds in; its speech goes on to 11 s), in order, all their audio accounted for.
    let floor = run.finals(run.ids.0);
    assert!(
        floor.iter().any(|f| f.1 > 5.0),
        "the floor is captioned after the restart: {floor:?}"
    );
    assert!(!run.finals(run.ids.1).is_empty(), "es is captioned");
    for (id, s) in [(run.ids.0, &run.stats[0]), (run.ids.1, &run.stats[1])] {
        let finals = run.finals(id);
        for w in finals.windows(2) {
            assert!(w[1].1 >= w[0].1, "times go on in order: {finals:?}");
        }
        assert!((s.audio_secs - 11.0).abs() < 0.01, "{s:?}");
    }
}

/// The decoder thread dies while the floor's record has finals not yet revised (its chunk
/// open): the reviser and its queue go with the thread, and what it would have revised is
/// counted given up in the channel's stats (the organizer's page, `/metrics`), not lost
/// without a word.
#[test]
fn a_dead_decoder_thread_counts_the_record_it_could_not_revise() {
    let _guard = whisper_lock();
    let model = Arc::new(tolk::transcribe::Model::load(&model("base")).unwrap());
    let run = two_channels_with(
        &model,
        ChannelSpec {
            // At its eighth decode, seconds after its first finals.
            fault: Some(Fault::Thread(8)),
            revise: true,
            ..spec("floor", "en", true)
        },
        spec("es", "es", false),
        None,
    );
    assert_eq!(run.health.thread_restarts, 1);
    assert!(
        run.stats[0].revisions_given_up >= 1,
        "the open chunk is counted: {:?}",
        run.stats[0]
    );
}

/// Feeding a channel of an engine that stopped is an error, not a hang or a panic.
#[test]
fn a_stopped_engine_says_so() {
    let _guard = whisper_lock();
    let model = Arc::new(tolk::transcribe::Model::load(&model("tiny.en")).unwrap());
    let engine = Engine::start(model, Decoding::threads(1), Box::new(|_, _| {})).unwrap();
    let ch = engine.open(spec("floor", "en", true)).unwrap();
    ch.push_audio(&[0.0; 1600]).unwrap();
    engine.shutdown();
    let err = ch.push_audio(&[0.0; 1600]).unwrap_err();
    assert!(err.to_string().contains("stopped"), "{err}");
}

/// whisper.cpp's no-speech probability, read from the start-of-transcript token's logits
/// (vendor/README.md; it read a row no decode wrote, near 0 whatever the audio): high over
/// a pause with only the room's hiss in it, prompted or not, and low over speech.
#[test]
fn whisper_says_where_there_is_no_speech() {
    let _guard = whisper_lock();
    let model = tolk::transcribe::Model::load(&model("base")).unwrap();
    let mut decoder =
        tolk::stream::decoder::Decoder::new(&model, LanguageMode::Fixed("en".into()), 2).unwrap();
    let speech = tolk::audio::decode_file(&testdata("jfk.wav"))
        .unwrap()
        .samples;
    // Hiss: a deterministic noise at about -60 dBFS, as a quiet room's microphone gives.
    let mut x: u32 = 1;
    let hiss: Vec<f32> = (0..16_000 * 3)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 - 0.5) * 0.002
        })
        .collect();
    // What a channel's prompt holds: the text said before (not this audio's words).
    let prompt = "Welcome, everyone, to the second session of the meeting.";
    let mut job = |audio: &[f32], prompt: &str| {
        decoder
            .decode(&tolk::stream::policy::DecodeJob {
                id: 0,
                start: 0.0,
                audio: audio.to_vec(),
                prompt: prompt.into(),
                hints: Vec::new(),
                closing: true,
                beam: false,
            })
            .unwrap()
    };
    for p in ["", prompt] {
        let h = job(&speech[..16_000 * 4], p);
        assert!(
            h.no_speech_prob < 0.2 && !h.words.is_empty(),
            "speech, prompted: {}: {h:?}",
            !p.is_empty()
        );
        let h = job(&hiss, p);
        assert!(
            h.no_speech_prob > 0.6,
            "hiss, prompted: {}: {h:?}",
            !p.is_empty()
        );
    }
}
