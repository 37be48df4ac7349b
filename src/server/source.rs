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
/// (`kind = "translate"`), each with its own inbox and its organizer's stop switch.
#[derive(Clone)]
pub struct Feed {
    channels: Vec<(Channel, Stopped)>,
}

/// A channel the organizer stopped: its audio is not transcribed. The source goes on (a file
/// plays on, a booth stays connected) and the channel is fed silence of the same length, so
/// the open utterance closes as after a pause, Whisper decodes nothing (silence costs no
/// decode) and the media clock stays the meeting's.
pub type Stopped = Arc<AtomicBool>;

impl Feed {
    pub fn new(own: (Channel, Stopped), translations: Vec<(Channel, Stopped)>) -> Feed {
        let mut channels = vec![own];
        channels.extend(translations);
        Feed { channels }
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
                std::thread::Builder::new()
                    .name("tolk-source".into())
                    .spawn(move || {
                        record(&capture, &channel, &st, &sp);
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

/// Feeds a sound card's audio, resampled to 16 kHz, until stopped or the device goes away.
fn record(capture: &Capture, channel: &Feed, state: &Mutex<String>, stop: &AtomicBool) {
    let mut resampler = match StreamResampler::new(capture.rate) {
        Ok(r) => r,
        Err(e) => {
            set(state, format!("failed: {e}"));
            return;
        }
    };
    set(state, format!("recording from {}", capture.name));
    while !stop.load(Relaxed) {
        match capture.next(Duration::from_millis(200)) {
            Next::Block(block) => match resampler.push(&block) {
                Ok(out) if !out.is_empty() => {
                    if channel.push_audio(&out).is_err() {
                        set(state, "stopped: the transcription engine stopped".into());
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    set(state, format!("failed: {e}"));
                    return;
                }
            },
            Next::Quiet => set(
                state,
                format!("no audio from {} (is it muted?)", capture.name),
            ),
            Next::Gone => {
                set(state, format!("ended: {} went away", capture.name));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire::AudioFormat;

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
