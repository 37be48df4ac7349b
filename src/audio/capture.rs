//! Sound-card capture through cpal (ALSA on Linux).
//!
//! cpal calls back on its own audio thread; the callback only mixes the block down to mono
//! and hands it over a bounded queue of [`CAPTURE_QUEUE`] blocks (a few seconds). If the
//! consumer stalls and the queue is full, blocks are dropped and counted, never waited for:
//! an audio callback must not block.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

/// Blocks the capture queue holds (a block is typically 10–20 ms).
pub const CAPTURE_QUEUE: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no sound input device{}", .0.as_ref().map(|n| format!(" named `{n}` (see `tolk devices`)")).unwrap_or_default())]
    NoDevice(Option<String>),
    #[error("sound device `{device}`: {why}")]
    Device { device: String, why: String },
}

/// An input device as `tolk devices` lists it.
#[derive(Debug, Clone)]
pub struct InputDevice {
    pub name: String,
    pub default: bool,
    /// The default format, e.g. "2 ch, 48000 Hz, f32".
    pub format: String,
}

/// Whether there is nothing to capture from: the kernel knows no sound card and no sound
/// server (PulseAudio, or PipeWire's PulseAudio service) is running for ALSA's `pulse`
/// plugin to reach. ALSA's library, asked for devices on such a machine, prints a screenful
/// of errors on stderr itself: it is not asked.
fn nothing_to_capture_from() -> bool {
    let no_cards = std::fs::read_to_string("/proc/asound/cards")
        .map(|s| s.trim().is_empty() || s.contains("no soundcards"))
        .unwrap_or(true);
    no_cards && !sound_server()
}

/// Whether a PulseAudio-compatible sound server answers where ALSA's `pulse` plugin looks:
/// `PULSE_SERVER`, else the user's runtime directory, else the system-wide socket.
fn sound_server() -> bool {
    use std::path::PathBuf;
    let mut sockets: Vec<PathBuf> = Vec::new();
    if let Ok(server) = std::env::var("PULSE_SERVER") {
        // `unix:/path`, a bare path, or a network address (taken as reachable).
        match server
            .strip_prefix("unix:")
            .or(server.starts_with('/').then_some(&server))
        {
            Some(path) => sockets.push(path.into()),
            None => return !server.trim().is_empty(),
        }
    }
    if let Ok(dir) = std::env::var("XDG_RUNTIME_DIR") {
        sockets.push(PathBuf::from(dir).join("pulse/native"));
    }
    if let Ok(me) = std::fs::metadata("/proc/self") {
        use std::os::unix::fs::MetadataExt;
        sockets.push(format!("/run/user/{}/pulse/native", me.uid()).into());
    }
    sockets.push("/run/pulse/native".into());
    sockets
        .iter()
        .any(|p| std::os::unix::net::UnixStream::connect(p).is_ok())
}

/// The input devices of the default host.
pub fn inputs() -> Vec<InputDevice> {
    if nothing_to_capture_from() {
        return Vec::new();
    }
    let host = cpal::default_host();
    let default = host.default_input_device().and_then(|d| d.name().ok());
    let Ok(devices) = host.input_devices() else {
        return Vec::new();
    };
    devices
        .filter_map(|d| {
            let name = d.name().ok()?;
            let format = d
                .default_input_config()
                .map(|c| {
                    format!(
                        "{} ch, {} Hz, {}",
                        c.channels(),
                        c.sample_rate().0,
                        c.sample_format()
                    )
                })
                .unwrap_or_else(|e| format!("unusable: {e}"));
            Some(InputDevice {
                default: default.as_deref() == Some(name.as_str()),
                name,
                format,
            })
        })
        .collect()
}

/// Whether the machine has a default input device that can say its format (ALSA names a
/// `default` device even on a machine without a sound card or server; it cannot).
pub fn has_default_input() -> bool {
    !nothing_to_capture_from()
        && cpal::default_host()
            .default_input_device()
            .is_some_and(|d| d.default_input_config().is_ok())
}

/// What [`Capture::next`] got.
pub enum Next {
    /// Mono samples at the capture's rate.
    Block(Vec<f32>),
    /// Nothing within the timeout.
    Quiet,
    /// The device went away.
    Gone,
}

/// A running capture: mono blocks at `rate`.
pub struct Capture {
    pub name: String,
    pub rate: u32,
    rx: Receiver<Vec<f32>>,
    /// Blocks dropped because the queue was full.
    pub dropped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Opens the named input device (or the default one) in its default format.
    pub fn open(name: Option<&str>) -> Result<Capture, CaptureError> {
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(String, u32), CaptureError>>(1);
        let (tx, rx) = mpsc::sync_channel::<Vec<f32>>(CAPTURE_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (dropped.clone(), stop.clone());
        // Set by the stream's error callback (the device was unplugged, its driver failed):
        // the thread then ends, and `next` says `Gone`.
        let failed = Arc::new(AtomicBool::new(false));
        let f = failed.clone();
        let wanted = name.map(str::to_string);
        // The stream lives on its own thread (it is not `Send` on every platform).
        let thread = std::thread::Builder::new()
            .name("tolk-capture".into())
            .spawn(move || {
                let stream = match start_stream(wanted, tx, d, failed) {
                    Ok((stream, name, rate)) => {
                        let _ = ready_tx.send(Ok((name, rate)));
                        stream
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while !s.load(Relaxed) && !f.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                drop(stream);
            })
            .map_err(|e| CaptureError::Device {
                device: name.unwrap_or("default").into(),
                why: e.to_string(),
            })?;
        let (name, rate) = ready_rx
            .recv()
            .map_err(|_| CaptureError::NoDevice(name.map(str::to_string)))??;
        Ok(Capture {
            name,
            rate,
            rx,
            dropped,
            stop,
            thread: Some(thread),
        })
    }

    /// The next block, if one comes within `timeout`.
    pub fn next(&self, timeout: Duration) -> Next {
        match self.rx.recv_timeout(timeout) {
            Ok(b) => Next::Block(b),
            Err(RecvTimeoutError::Timeout) => Next::Quiet,
            Err(RecvTimeoutError::Disconnected) => Next::Gone,
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start_stream(
    name: Option<String>,
    tx: mpsc::SyncSender<Vec<f32>>,
    dropped: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
) -> Result<(cpal::Stream, String, u32), CaptureError> {
    if nothing_to_capture_from() {
        return Err(CaptureError::NoDevice(name));
    }
    let host = cpal::default_host();
    let device = match &name {
        None => host.default_input_device(),
        Some(n) => host
            .input_devices()
            .ok()
            .and_then(|mut ds| ds.find(|d| d.name().ok().as_deref() == Some(n.as_str()))),
    }
    .ok_or_else(|| CaptureError::NoDevice(name.clone()))?;
    let dev_name = device.name().unwrap_or_else(|_| "default".into());
    let err = |why: String| CaptureError::Device {
        device: dev_name.clone(),
        why,
    };
    let cfg = device
        .default_input_config()
        .map_err(|e| err(e.to_string()))?;
    let channels = cfg.channels().max(1) as usize;
    let rate = cfg.sample_rate().0;
    let format = cfg.sample_format();
    let config: cpal::StreamConfig = cfg.into();
    let on_error = move |e: cpal::StreamError| {
        tracing::error!(error = %e, "sound device error");
        failed.store(true, Relaxed);
    };
    // Mixes interleaved frames down to mono and queues the block without blocking.
    fn deliver(mono: Vec<f32>, tx: &mpsc::SyncSender<Vec<f32>>, dropped: &AtomicU64) {
        if tx.try_send(mono).is_err() {
            dropped.fetch_add(1, Relaxed);
        }
    }
    let stream = match format {
        cpal::SampleFormat::F32 => device.build_input_stream(
            &config,
            move |data: &[f32], _: &_| {
                let mono = data
                    .chunks(channels)
                    .map(|f| f.iter().sum::<f32>() / channels as f32)
                    .collect();
                deliver(mono, &tx, &dropped);
            },
            on_error,
            None,
        ),
        cpal::SampleFormat::I16 => device.build_input_stream(
            &config,
            move |data: &[i16], _: &_| {
                let mono = data
                    .chunks(channels)
                    .map(|f| f.iter().map(|&s| s as f32 / 32768.0).sum::<f32>() / channels as f32)
                    .collect();
                deliver(mono, &tx, &dropped);
            },
            on_error,
            None,
        ),
        other => return Err(err(format!("sample format {other} is not supported"))),
    }
    .map_err(|e| err(e.to_string()))?;
    stream.play().map_err(|e| err(e.to_string()))?;
    Ok((stream, dev_name, rate))
}
