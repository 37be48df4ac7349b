//! Where a channel's audio comes from. Each source runs on its own thread and pushes 16 kHz
//! mono samples into its engine channel (which never blocks: see the scheduler's inbox).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::audio::capture::{Capture, Next};
use crate::audio::{decode_file, StreamResampler, SAMPLE_RATE};
use crate::stream::scheduler::{Channel, EngineError};

use super::config::SourceConfig;

/// How often a file source releases audio.
const FILE_TICK: Duration = Duration::from_millis(50);

/// Silence between two plays of a looped file, so the last utterance closes.
const LOOP_GAP_SECS: f64 = 2.0;

/// Why a source could not start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
    #[error(transparent)]
    Capture(#[from] crate::audio::capture::CaptureError),
    #[error("cannot start the source thread: {0}")]
    Thread(std::io::Error),
}

/// The engine channels a source's audio goes to: its own, then any that translate it
/// (`kind = "translate"`), each with its own inbox and its organizer's stop switch. With a
/// `[cluster]`, the channel's one outlet to NATS instead (workers decode it and its
/// translations from there).
#[derive(Clone)]
pub struct Feed {
    channels: Vec<(Target, Stopped)>,
}

/// Where a channel's audio is decoded.
#[derive(Clone)]
pub enum Target {
    Local(Channel),
    Remote(crate::cluster::room::Outlet),
}

impl Target {
    fn push_audio(&self, samples: &[f32]) -> Result<(), EngineError> {
        match self {
            Target::Local(c) => c.push_audio(samples),
            Target::Remote(o) => {
                o.push_audio(samples);
                Ok(())
            }
        }
    }

    fn finish(&self) {
        match self {
            Target::Local(c) => c.finish(),
            Target::Remote(o) => o.finish(),
        }
    }
}

/// A channel the organizer stopped: its audio is not transcribed. The source goes on (a file
/// plays on, a booth stays connected) and the channel is fed silence of the same length, so
/// the open utterance closes as after a pause, Whisper decodes nothing (silence costs no
/// decode) and the media clock stays the meeting's.
pub type Stopped = Arc<AtomicBool>;

impl Feed {
    pub fn new(own: (Target, Stopped), translations: Vec<(Target, Stopped)>) -> Feed {
        let mut channels = vec![own];
        channels.extend(translations);
        Feed { channels }
    }

    /// A feed to nothing: a channel whose audio is another's (a translation decoded by a
    /// worker from the channel it translates).
    pub fn new_silent() -> Feed {
        Feed {
            channels: Vec::new(),
        }
    }

    /// Adds 16 kHz mono audio to every channel (never blocks: see the engine's inboxes);
    /// a stopped channel gets silence instead.
    pub fn push_audio(&self, samples: &[f32]) -> Result<(), EngineError> {
        let mut silence = Vec::new();
        for (c, stopped) in &self.channels {
            if stopped.load(Relaxed) {
                silence.resize(samples.len(), 0.0);
                c.push_audio(&silence)?;
            } else {
                c.push_audio(samples)?;
            }
        }
        Ok(())
    }

    /// The audio ended: every channel closes what it has open.
    pub fn finish(&self) {
        for (c, _) in &self.channels {
            c.finish();
        }
    }
}

/// A booth's frames (`/ingest/{channel}`) to 16 kHz mono samples: Opus packets, or 16-bit
/// little-endian PCM, at the rate its hello said. Bad frames are errors, never panics
/// (fuzzed: `fuzz/fuzz_targets/ingest_frames.rs`).
pub struct FrameDecoder {
    opus: Option<opus::Decoder>,
    resampler: StreamResampler,
    /// 120 ms at 48 kHz: the largest Opus frame.
    pcm: Vec<f32>,
}

impl FrameDecoder {
    /// Refuses (saying why) a rate the format cannot have or tolk does not take.
    pub fn new(format: super::wire::AudioFormat, rate: u32) -> Result<FrameDecoder, String> {
        use super::wire::{AudioFormat, OPUS_RATES};
        let opus = match format {
            AudioFormat::Opus if OPUS_RATES.contains(&rate) => {
                Some(opus::Decoder::new(rate, opus::Channels::Mono).map_err(|e| e.to_string())?)
            }
            AudioFormat::Opus => {
                return Err(format!(
                    "Opus runs at 8, 12, 16, 24 or 48 kHz, not {rate} Hz"
                ))
            }
            AudioFormat::Pcm16 => None,
        };
        // The range first: a resampler for an absurd rate takes minutes to build (found by
        // the fuzz run: a hello saying 160009999 Hz stalled its thread for 89 s).
        if !(8_000..=192_000).contains(&rate) {
            return Err(format!(
                "{rate} Hz is not a sample rate tolk takes (8000 to 192000)"
            ));
        }
        let resampler = StreamResampler::new(rate)
            .map_err(|e| format!("cannot resample {rate} Hz audio: {e}"))?;
        Ok(FrameDecoder {
            opus,
            resampler,
            pcm: vec![0f32; 5760],
        })
    }

    /// One frame's audio at 16 kHz (possibly none yet: the resampler works in blocks).
    pub fn decode(&mut self, frame: &[u8]) -> Result<Vec<f32>, String> {
        let samples: Vec<f32> = match &mut self.opus {
            Some(d) => {
                let n = d
                    .decode_float(frame, &mut self.pcm, false)
                    .map_err(|e| format!("undecodable Opus packet: {e}"))?;
                self.pcm[..n].to_vec()
            }
            None => frame
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
                .collect(),
        };
        self.resampler
            .push(&samples)
            .map_err(|e| format!("cannot resample the booth's audio: {e}"))
    }
}

/// A running source: its state in words for `status` events, and a stop switch.
pub struct Source {
    pub state: Arc<Mutex<String>>,
    pub ended: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// A network source: its token, and the channel the ingest connection feeds.
    pub network: Option<Network>,
}

/// A channel fed over the network (`/ingest/{channel}`).
pub struct Network {
    pub token: String,
    pub channel: Feed,
    /// A sender is connected (one at a time).
    pub busy: Arc<AtomicBool>,
}

impl Source {
    /// Starts feeding `channel` from `cfg`. A file that cannot be read or a sound card that
    /// cannot be opened is an error now, before the meeting opens.
    pub fn start(cfg: &SourceConfig, channel: Feed) -> Result<Source, SourceError> {
        let state = Arc::new(Mutex::new(String::from("starting")));
        let ended = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = match cfg {
            SourceConfig::File {
                path,
                looped,
                speed,
            } => {
                let audio = decode_file(path)?;
                let (st, en, sp) = (state.clone(), ended.clone(), stop.clone());
                let (looped, speed) = (*looped, *speed);
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                std::thread::Builder::new()
                    .name("tolk-source".into())
                    .spawn(move || {
                        play_file(&audio.samples, &name, looped, speed, &channel, &st, &sp);
                        channel.finish();
                        en.store(true, Relaxed);
                    })
                    .map_err(SourceError::Thread)?
            }
            SourceConfig::Device { name } => {
                let capture = Capture::open(name.as_deref())?;
                let (st, en, sp) = (state.clone(), ended.clone(), stop.clone());
                let name = name.clone();
                std::thread::Builder::new()
                    .name("tolk-source".into())
                    .spawn(move || {
                        follow_device(
                            capture,
                            || Capture::open(name.as_deref()),
                            |s: &[f32]| channel.push_audio(s).is_ok(),
                            &st,
                            &sp,
                            REOPEN_EVERY,
                        );
                        channel.finish();
                        en.store(true, Relaxed);
                    })
                    .map_err(SourceError::Thread)?
            }
            SourceConfig::Translate { from } => {
                // The audio comes through `from`'s feed; nothing runs here.
                drop(channel);
                set(&state, format!("translating {from}"));
                return Ok(Source {
                    state,
                    ended,
                    stop,
                    handle: None,
                    network: None,
                });
            }
            SourceConfig::Network { token } => {
                set(&state, "waiting for the booth to connect".into());
                return Ok(Source {
                    state,
                    ended,
                    stop,
                    handle: None,
                    network: Some(Network {
                        token: token.clone(),
                        channel,
                        busy: Arc::new(AtomicBool::new(false)),
                    }),
                });
            }
        };
        Ok(Source {
            state,
            ended,
            stop,
            handle: Some(handle),
            network: None,
        })
    }

    /// The source's state in words.
    pub fn describe(&self) -> String {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops the source and waits for its thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn set(state: &Mutex<String>, s: String) {
    if let Ok(mut g) = state.lock() {
        *g = s;
    }
}

/// Releases `samples` at `speed` × real time, as a sound card would.
fn play_file(
    samples: &[f32],
    name: &str,
    looped: bool,
    speed: f64,
    channel: &Feed,
    state: &Mutex<String>,
    stop: &AtomicBool,
) {
    let gap = vec![0.0f32; (LOOP_GAP_SECS * SAMPLE_RATE as f64) as usize];
    let mut round = 0u64;
    loop {
        round += 1;
        set(
            state,
            if looped {
                format!("playing {name} (round {round})")
            } else {
                format!("playing {name}")
            },
        );
        let t0 = Instant::now();
        let mut fed = 0usize;
        let all: Vec<&[f32]> = if looped {
            vec![samples, &gap[..]]
        } else {
            vec![samples]
        };
        let total: usize = all.iter().map(|s| s.len()).sum();
        while fed < total {
            if stop.load(Relaxed) {
                return;
            }
            let due =
                ((t0.elapsed().as_secs_f64() * speed * SAMPLE_RATE as f64) as usize).min(total);
            while fed < due {
                // The piece of `all` that holds sample `fed`.
                let (mut k, mut off) = (0usize, fed);
                while off >= all[k].len() {
                    off -= all[k].len();
                    k += 1;
                }
                let n = (due - fed).min(all[k].len() - off);
                if channel.push_audio(&all[k][off..off + n]).is_err() {
                    set(state, "stopped: the transcription engine stopped".into());
                    return;
                }
                fed += n;
            }
            std::thread::sleep(FILE_TICK);
        }
        if !looped {
            set(state, format!("ended: {name} played"));
            return;
        }
    }
}

/// How often a sound card that went away is looked for again.
pub const REOPEN_EVERY: Duration = Duration::from_secs(2);

/// A sound card's capture as [`follow_device`] reads it (a trait, so that the reopening is
/// tested without a sound card).
pub trait Input {
    fn name(&self) -> &str;
    /// Its sample rate.
    fn rate(&self) -> u32;
    fn next(&self, timeout: Duration) -> Next;
}

impl Input for Capture {
    fn name(&self) -> &str {
        &self.name
    }
    fn rate(&self) -> u32 {
        self.rate
    }
    fn next(&self, timeout: Duration) -> Next {
        Capture::next(self, timeout)
    }
}

/// Feeds a sound card's audio, resampled to 16 kHz, through `push`, until stopped. When the
/// device goes away (unplugged, its driver failed) the channel is fed silence at real-time
/// pace (its clock goes on with the meeting's), the state says so, and the device is looked
/// for again every `every`; when it is back, its audio flows again.
pub fn follow_device<I: Input>(
    first: I,
    mut reopen: impl FnMut() -> Result<I, crate::audio::capture::CaptureError>,
    mut push: impl FnMut(&[f32]) -> bool,
    state: &Mutex<String>,
    stop: &AtomicBool,
    every: Duration,
) {
    let mut input = first;
    loop {
        if !record(&input, &mut push, state, stop) {
            return;
        }
        let name = input.name().to_string();
        drop(input);
        tracing::warn!(device = %name, "the sound device went away; looking for it again");
        set(
            state,
            format!(
                "{name} went away: looking for it every {} s",
                every.as_secs_f64()
            ),
        );
        let (lost_at, mut fed) = (Instant::now(), 0usize);
        input = loop {
            if stop.load(Relaxed) {
                return;
            }
            let due = (lost_at.elapsed().as_secs_f64() * SAMPLE_RATE as f64) as usize;
            if due > fed {
                if !push(&vec![0.0; due - fed]) {
                    set(state, "stopped: the transcription engine stopped".into());
                    return;
                }
                fed = due;
            }
            match reopen() {
                Ok(i) => break i,
                Err(_) => std::thread::sleep(every),
            }
        };
        tracing::info!(device = %input.name(), away_secs = lost_at.elapsed().as_secs(), "the sound device is back");
    }
}

/// Feeds an input until stopped (`false`) or the device goes away (`true`).
fn record<I: Input>(
    capture: &I,
    push: &mut impl FnMut(&[f32]) -> bool,
    state: &Mutex<String>,
    stop: &AtomicBool,
) -> bool {
    let mut resampler = match StreamResampler::new(capture.rate()) {
        Ok(r) => r,
        Err(e) => {
            set(state, format!("failed: {e}"));
            return false;
        }
    };
    let recording = format!("recording from {}", capture.name());
    set(state, recording.clone());
    // Said "no audio" (a quiet spell, or a sound server slow to start): said "recording"
    // again when audio comes.
    let mut quiet = false;
    while !stop.load(Relaxed) {
        match capture.next(Duration::from_millis(200)) {
            Next::Block(block) => {
                if quiet {
                    quiet = false;
                    set(state, recording.clone());
                }
                if !feed(&mut resampler, &block, push, state) {
                    return false;
                }
            }
            Next::Quiet => {
                quiet = true;
                set(
                    state,
                    format!("no audio from {} (is it muted?)", capture.name()),
                );
            }
            Next::Gone => return true,
        }
    }
    false
}

/// Resamples a block and feeds it on; `false` (with the state said) when it cannot.
fn feed(
    resampler: &mut StreamResampler,
    block: &[f32],
    push: &mut impl FnMut(&[f32]) -> bool,
    state: &Mutex<String>,
) -> bool {
    match resampler.push(block) {
        Ok(out) if !out.is_empty() => {
            if !push(&out) {
                set(state, "stopped: the transcription engine stopped".into());
                return false;
            }
            true
        }
        Ok(_) => true,
        Err(e) => {
            set(state, format!("failed: {e}"));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::capture::CaptureError;
    use crate::server::wire::AudioFormat;
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// A sound card that gives these blocks (16 kHz), then goes away.
    struct Scripted(RefCell<VecDeque<Vec<f32>>>);

    impl Input for Scripted {
        fn name(&self) -> &str {
            "USB mic"
        }
        fn rate(&self) -> u32 {
            16_000
        }
        fn next(&self, _: Duration) -> Next {
            match self.0.borrow_mut().pop_front() {
                Some(b) => Next::Block(b),
                None => Next::Gone,
            }
        }
    }

    /// A sound server slow to start: quiet at first, then audio.
    struct SlowStart(RefCell<VecDeque<Option<Vec<f32>>>>);

    impl Input for SlowStart {
        fn name(&self) -> &str {
            "default"
        }
        fn rate(&self) -> u32 {
            16_000
        }
        fn next(&self, _: Duration) -> Next {
            match self.0.borrow_mut().pop_front() {
                Some(Some(b)) => Next::Block(b),
                Some(None) => Next::Quiet,
                None => Next::Gone,
            }
        }
    }

    /// A device quiet for its first reads (PulseAudio starting up) says "no audio" then, and
    /// "recording" again once audio comes: it used to say "is it muted?" for as long as it
    /// ran (seen in the sound-card test under load).
    #[test]
    fn a_device_quiet_at_first_says_recording_once_audio_comes() {
        let stop = AtomicBool::new(false);
        let state = Mutex::new(String::new());
        let input = SlowStart(RefCell::new(
            [None, None, Some(vec![0.25; 1600]), Some(vec![0.25; 1600])].into(),
        ));
        let mut said = Vec::new();
        let gone = record(
            &input,
            &mut |_: &[f32]| {
                said.push(state.lock().unwrap().clone());
                true
            },
            &state,
            &stop,
        );
        assert!(gone);
        assert_eq!(said, ["recording from default", "recording from default"]);
    }

    fn blocks(n: usize) -> Scripted {
        Scripted(RefCell::new((0..n).map(|_| vec![0.25; 1600]).collect()))
    }

    /// The microphone is unplugged after 3 blocks, is not there for two looks, comes back
    /// for 2 more blocks: all 5 blocks reach the channel, with silence for the time it was
    /// away, and the state said where it was.
    #[test]
    fn a_sound_card_that_goes_away_is_found_again() {
        let stop = AtomicBool::new(false);
        let state = Mutex::new(String::new());
        let mut looks = 0;
        let mut states = Vec::new();
        let mut pushed: Vec<f32> = Vec::new();
        follow_device(
            blocks(3),
            || {
                looks += 1;
                states.push(state.lock().unwrap().clone());
                match looks {
                    1 | 2 => Err(CaptureError::NoDevice(None)),
                    3 => Ok(blocks(2)),
                    _ => {
                        stop.store(true, Relaxed);
                        Err(CaptureError::NoDevice(None))
                    }
                }
            },
            |s: &[f32]| {
                pushed.extend_from_slice(s);
                true
            },
            &state,
            &stop,
            Duration::from_millis(20),
        );
        assert_eq!(looks, 4);
        assert!(states[0].contains("USB mic went away"), "{states:?}");
        let sound = pushed.iter().filter(|s| **s != 0.0).count();
        assert_eq!(sound, 5 * 1600, "every block got through");
        assert!(pushed.len() > sound, "silence while it was away");
        // The sound before and after the gap, in order.
        let first_gap = pushed.iter().position(|s| *s == 0.0).unwrap();
        assert_eq!(first_gap, 3 * 1600);
    }

    /// Found by the fuzz run in `make test`: a hello saying 160009999 Hz built a resampler
    /// for 89 s before being refused. Now refused at once.
    #[test]
    fn an_absurd_rate_is_refused_at_once() {
        let t = std::time::Instant::now();
        let e = FrameDecoder::new(AudioFormat::Pcm16, 160_009_999)
            .err()
            .unwrap();
        assert!(e.contains("160009999 Hz"), "{e}");
        // A stall, not a speed: before the fix this took 89 s.
        assert!(t.elapsed().as_secs_f64() < 1.0);
        assert!(FrameDecoder::new(AudioFormat::Pcm16, 44_100).is_ok());
    }
}
