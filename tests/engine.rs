//! The multi-channel streaming engine: one model, one decoder thread, the floor first.

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::util::*;
use tolk::stream::engine::Emitted;
use tolk::stream::lang::LanguageMode;
use tolk::stream::policy::{Event, PolicyConfig};
use tolk::stream::scheduler::{ChannelId, ChannelSpec, Engine};

fn spec(name: &str, lang: &str, floor: bool) -> ChannelSpec {
    ChannelSpec {
        name: name.into(),
        language: LanguageMode::Fixed(lang.into()),
        floor,
        policy: PolicyConfig::default(),
        hints: Vec::new(),
        translate: false,
    }
}

/// Two live channels share one loaded model: the floor (English) and a second one (Spanish),
/// both fed in real time. Both get their captions; the floor's keep coming while the audio
/// plays; each channel reports its lag in seconds.
#[test]
fn two_channels_share_one_model_and_the_floor_keeps_flowing() {
    let _guard = whisper_lock();
    let model = Arc::new(tolk::transcribe::Model::load(&model("base")).unwrap());
    let floor_audio = tolk::audio::decode_file(&testdata("jfk.wav"))
        .unwrap()
        .samples;
    let es_audio = tolk::audio::decode_file(&testdata("es-demo-congrats.wav"))
        .unwrap()
        .samples;
    let es_audio = &es_audio[..floor_audio.len()];

    let (tx, rx) = mpsc::channel::<(ChannelId, Emitted)>();
    let engine = Engine::start(
        model.clone(),
        tolk::transcribe::default_threads(),
        Box::new(move |id, e| {
            let _ = tx.send((id, e));
        }),
    )
    .unwrap();
    let floor = engine.open(spec("floor", "en", true)).unwrap();
    let es = engine.open(spec("es", "es", false)).unwrap();

    // Real-time pacing, 100 ms at a time, on both channels.
    let start = Instant::now();
    let chunk = 1600;
    let mut fed = 0;
    while fed < floor_audio.len() {
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
        assert!(Instant::now() < deadline, "channels never finished");
        assert!(engine.stopped().is_none(), "{:?}", engine.stopped());
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = engine.stats();
    engine.shutdown();

    let events: Vec<(ChannelId, Emitted)> = rx.try_iter().collect();
    let finals = |id: ChannelId| -> Vec<(String, f64)> {
        events
            .iter()
            .filter(|(c, _)| *c == id)
            .filter_map(|(_, e)| match &e.event {
                Event::Final { text, .. } => Some((text.clone(), e.at)),
                _ => None,
            })
            .collect()
    };
    let floor_finals = finals(floor.id());
    let es_finals = finals(es.id());
    let floor_text: Vec<&str> = floor_finals.iter().map(|f| f.0.as_str()).collect();
    let w = tolk::eval::wer(&reference("jfk.txt"), &floor_text.join(" "), "en");
    assert!(
        w.rate() <= 0.08,
        "floor WER {:.3}: {}",
        w.rate(),
        floor_text.join(" | ")
    );
    assert!(
        floor_finals[0].1 < 11.0,
        "the floor's first caption came at {:.1} s, after the audio ended",
        floor_finals[0].1
    );
    let es_text: Vec<&str> = es_finals.iter().map(|f| f.0.as_str()).collect();
    let es_text = es_text.join(" ").to_lowercase();
    assert!(
        ["felicidades", "instalado", "exitosamente"]
            .iter()
            .any(|w| es_text.contains(w)),
        "the second channel was served: {es_text}"
    );
    assert_eq!(stats.len(), 2);
    for s in &stats {
        assert!(s.decodes > 0, "{s:?}");
        assert!(
            s.lag.is_finite() && s.lag >= 0.0 && s.max_lag < 30.0,
            "{s:?}"
        );
        assert!((s.audio_secs - 11.0).abs() < 0.01, "{s:?}");
        assert_eq!(s.audio_lost_secs, 0.0);
    }
    // One model: the engine's thread has let go of it, only this test holds it.
    assert_eq!(Arc::strong_count(&model), 1);
}

/// Feeding a channel of an engine that stopped is an error, not a hang or a panic.
#[test]
fn a_stopped_engine_says_so() {
    let _guard = whisper_lock();
    let model = Arc::new(tolk::transcribe::Model::load(&model("tiny.en")).unwrap());
    let engine = Engine::start(model, 1, Box::new(|_, _| {})).unwrap();
    let ch = engine.open(spec("floor", "en", true)).unwrap();
    ch.push_audio(&[0.0; 1600]).unwrap();
    engine.shutdown();
    let err = ch.push_audio(&[0.0; 1600]).unwrap_err();
    assert!(err.to_string().contains("stopped"), "{err}");
}
