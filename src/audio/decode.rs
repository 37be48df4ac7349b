//! File decoding with symphonia (WAV, FLAC, Vorbis, MP3) and libopus (Ogg Opus, which
//! symphonia demuxes but does not decode).

use std::fs::File;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CodecParameters, DecoderOptions, CODEC_TYPE_NULL, CODEC_TYPE_OPUS};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::{resample, Audio, AudioError};

/// Packets that fail to decode are skipped (a scratch in a recording should not lose the
/// rest), but a file where most fail is corrupt, not scratched.
const MAX_BAD_PACKET_SHARE: f64 = 0.5;

/// Decodes an audio file to 16 kHz mono.
pub fn decode_file(path: &Path) -> Result<Audio, AudioError> {
    let file = File::open(path).map_err(|source| AudioError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Err(AudioError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| probe_error(path, e))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::unsupported(path, "no audio track"))?;
    let params = track.codec_params.clone();
    let track_id = track.id;
    let rate = params
        .sample_rate
        .ok_or_else(|| AudioError::corrupt(path, "no sample rate in the header"))?;
    // A resampler for an absurd rate takes minutes to build: such a header is corrupt.
    if !(1_000..=768_000).contains(&rate) {
        return Err(AudioError::corrupt(
            path,
            format!("a sample rate of {rate} Hz in the header"),
        ));
    }
    let (mono, channels, codec) = if params.codec == CODEC_TYPE_OPUS {
        let (mono, ch) = decode_opus(path, format.as_mut(), track_id, &params)?;
        (mono, ch, "opus".to_string())
    } else {
        decode_symphonia(path, format.as_mut(), track_id, &params)?
    };
    if mono.is_empty() {
        return Err(AudioError::NoSamples {
            path: path.to_path_buf(),
        });
    }
    Ok(Audio {
        samples: resample(&mono, rate)?,
        source_rate: rate,
        source_channels: channels,
        codec,
    })
}

/// Containers whose first bytes tolk recognises. A file that starts like one of these but
/// cannot be probed is cut short; any other is not audio tolk knows.
const MAGICS: &[&[u8]] = &[b"RIFF", b"RIFX", b"fLaC", b"OggS", b"ID3"];

fn probe_error(path: &Path, e: SymError) -> AudioError {
    let mut head = [0u8; 4];
    let known = File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map(|n| MAGICS.iter().any(|m| n >= m.len() && head.starts_with(m)))
        .unwrap_or(false);
    match e {
        SymError::Unsupported(what) => {
            AudioError::unsupported(path, format!("unsupported container or codec: {what}"))
        }
        SymError::IoError(_) if known => AudioError::corrupt(path, "the header is truncated"),
        SymError::IoError(_) => {
            AudioError::unsupported(path, "no WAV, FLAC, Ogg (Vorbis, Opus) or MP3 header found")
        }
        other => AudioError::corrupt(path, other.to_string()),
    }
}

/// Appends the mean of each interleaved frame.
fn downmix_into(out: &mut Vec<f32>, interleaved: &[f32], channels: usize) {
    let channels = channels.max(1);
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|f| f.iter().sum::<f32>() / channels as f32),
    );
}

#[derive(Default)]
struct PacketStats {
    good: usize,
    bad: usize,
    last_error: String,
}

impl PacketStats {
    fn check(&self, path: &Path) -> Result<(), AudioError> {
        let total = self.good + self.bad;
        if total > 0 && self.bad as f64 / total as f64 > MAX_BAD_PACKET_SHARE {
            return Err(AudioError::corrupt(
                path,
                format!(
                    "{} of {total} packets failed to decode ({})",
                    self.bad, self.last_error
                ),
            ));
        }
        if self.bad > 0 {
            tracing::warn!(path = %path.display(), bad = self.bad, total, "skipped undecodable packets");
        }
        Ok(())
    }
}

/// Reads packets until the end of the stream. A stream that ends mid-packet (a cut file) ends
/// the audio there, as a player would; other errors are returned.
fn next_packet(
    path: &Path,
    format: &mut dyn FormatReader,
) -> Result<Option<symphonia::core::formats::Packet>, AudioError> {
    match format.next_packet() {
        Ok(p) => Ok(Some(p)),
        Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(SymError::ResetRequired) => Ok(None),
        Err(e) => Err(AudioError::corrupt(path, e.to_string())),
    }
}

fn decode_symphonia(
    path: &Path,
    format: &mut dyn FormatReader,
    track_id: u32,
    params: &CodecParameters,
) -> Result<(Vec<f32>, usize, String), AudioError> {
    let mut decoder = symphonia::default::get_codecs()
        .make(params, &DecoderOptions::default())
        .map_err(|e| AudioError::unsupported(path, format!("codec: {e}")))?;
    let codec = symphonia::default::get_codecs()
        .get_codec(params.codec)
        .map(|d| d.short_name.to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut mono = Vec::new();
    let mut channels = params.channels.map(|c| c.count()).unwrap_or(1);
    let mut buf: Option<SampleBuffer<f32>> = None;
    let mut stats = PacketStats::default();
    while let Some(packet) = next_packet(path, format)? {
        if packet.track_id() != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(decoded) => {
                stats.good += 1;
                let spec = *decoded.spec();
                channels = spec.channels.count();
                let need = decoded.capacity() as u64;
                if buf
                    .as_ref()
                    .map(|b| b.capacity() < need as usize * channels)
                    .unwrap_or(true)
                {
                    buf = Some(SampleBuffer::new(need, spec));
                }
                let b = buf.as_mut().expect("allocated above");
                b.copy_interleaved_ref(decoded);
                downmix_into(&mut mono, b.samples(), channels);
            }
            Err(SymError::DecodeError(e)) => {
                stats.bad += 1;
                stats.last_error = e.to_string();
            }
            Err(SymError::IoError(_)) => break,
            Err(e) => return Err(AudioError::corrupt(path, e.to_string())),
        }
    }
    stats.check(path)?;
    Ok((mono, channels, codec))
}

/// Ogg Opus: symphonia gives the packets and the OpusHead, libopus decodes at 48 kHz.
fn decode_opus(
    path: &Path,
    format: &mut dyn FormatReader,
    track_id: u32,
    params: &CodecParameters,
) -> Result<(Vec<f32>, usize), AudioError> {
    let channels = params.channels.map(|c| c.count()).unwrap_or(1);
    let layout = match channels {
        1 => opus::Channels::Mono,
        2 => opus::Channels::Stereo,
        n => {
            return Err(AudioError::unsupported(
                path,
                format!("Ogg Opus with {n} channels (mono and stereo are supported)"),
            ))
        }
    };
    let mut decoder = opus::Decoder::new(48_000, layout)
        .map_err(|e| AudioError::corrupt(path, format!("opus decoder: {e}")))?;
    let pre_skip = params.delay.unwrap_or(0) as usize;
    // 120 ms is the longest Opus frame.
    let mut pcm = vec![0f32; 5760 * channels];
    let mut mono = Vec::new();
    let mut stats = PacketStats::default();
    while let Some(packet) = next_packet(path, format)? {
        if packet.track_id() != track_id {
            continue;
        }
        match decoder.decode_float(&packet.data, &mut pcm, false) {
            Ok(n) => {
                stats.good += 1;
                downmix_into(&mut mono, &pcm[..n * channels], channels);
            }
            Err(e) => {
                stats.bad += 1;
                stats.last_error = e.to_string();
            }
        }
    }
    stats.check(path)?;
    mono.drain(..pre_skip.min(mono.len()));
    Ok((mono, channels))
}
