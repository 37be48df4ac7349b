//! Sample-rate conversion to 16 kHz with rubato's FFT resampler (band-limited, no aliasing).

use rubato::{FftFixedIn, Resampler};

use super::{AudioError, SAMPLE_RATE};

/// Input frames handed to the resampler at a time.
const CHUNK: usize = 1024;

/// Resamples mono audio from `rate` to 16 kHz. The output is aligned with the input (the
/// resampler's delay is removed) and has `len × 16000 / rate` samples.
pub fn resample(samples: &[f32], rate: u32) -> Result<Vec<f32>, AudioError> {
    if rate == SAMPLE_RATE || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let err = |e: &dyn std::fmt::Display| AudioError::Resample(e.to_string());
    let mut r = FftFixedIn::<f32>::new(rate as usize, SAMPLE_RATE as usize, CHUNK, 2, 1)
        .map_err(|e| err(&e))?;
    let delay = r.output_delay();
    let expected = (samples.len() as u64 * SAMPLE_RATE as u64 / rate as u64) as usize;
    let mut out = Vec::with_capacity(expected + delay + CHUNK);
    let mut chunks = samples.chunks_exact(CHUNK);
    for chunk in chunks.by_ref() {
        let o = r.process(&[chunk], None).map_err(|e| err(&e))?;
        out.extend_from_slice(&o[0]);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let o = r
            .process_partial(Some(&[rest]), None)
            .map_err(|e| err(&e))?;
        out.extend_from_slice(&o[0]);
    }
    // Flush what the resampler still holds until the delayed tail is out.
    while out.len() < expected + delay {
        let o = r
            .process_partial::<&[f32]>(None, None)
            .map_err(|e| err(&e))?;
        if o[0].is_empty() {
            break;
        }
        out.extend_from_slice(&o[0]);
    }
    out.drain(..delay.min(out.len()));
    out.truncate(expected);
    Ok(out)
}

/// Resamples a live stream to 16 kHz, a block at a time (a sound card's callbacks): the
/// same band-limited resampler as [`resample`], with its fixed delay (a few milliseconds)
/// left in.
pub struct StreamResampler {
    r: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
}

impl StreamResampler {
    pub fn new(rate: u32) -> Result<StreamResampler, AudioError> {
        let r = if rate == SAMPLE_RATE {
            None
        } else {
            Some(
                FftFixedIn::<f32>::new(rate as usize, SAMPLE_RATE as usize, CHUNK, 2, 1)
                    .map_err(|e| AudioError::Resample(e.to_string()))?,
            )
        };
        Ok(StreamResampler {
            r,
            pending: Vec::new(),
        })
    }

    /// Takes mono samples at the input rate; returns what is ready at 16 kHz.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, AudioError> {
        let Some(r) = &mut self.r else {
            return Ok(samples.to_vec());
        };
        self.pending.extend_from_slice(samples);
        let mut out = Vec::new();
        let mut used = 0;
        while self.pending.len() - used >= CHUNK {
            let o = r
                .process(&[&self.pending[used..used + CHUNK]], None)
                .map_err(|e| AudioError::Resample(e.to_string()))?;
            out.extend_from_slice(&o[0]);
            used += CHUNK;
        }
        self.pending.drain(..used);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn keeps_length_pitch_and_alignment() {
        for rate in [8_000, 22_050, 44_100, 48_000] {
            let out = resample(&sine(440.0, rate, 1.0), rate).unwrap();
            assert_eq!(out.len(), 16_000, "rate {rate}");
            // A 440 Hz tone at 16 kHz: compare with the ideal tone away from the edges. A shift
            // of one whole output sample would give an error of 0.17; the FFT resampler's
            // delay is whole input samples, so up to a third of an output sample remains.
            let ideal = sine(440.0, 16_000, 1.0);
            let err: f32 = out[2000..14000]
                .iter()
                .zip(&ideal[2000..14000])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 0.1, "rate {rate}: max error {err}");
        }
    }

    #[test]
    fn a_stream_in_blocks_comes_out_at_16khz() {
        let input = sine(440.0, 48_000, 1.0);
        let mut r = StreamResampler::new(48_000).unwrap();
        let mut out = Vec::new();
        for block in input.chunks(480) {
            out.extend(r.push(block).unwrap());
        }
        // All but the last partial block and the resampler's delay.
        assert!((15_000..=16_000).contains(&out.len()), "{}", out.len());
        let mut same = StreamResampler::new(16_000).unwrap();
        assert_eq!(same.push(&[0.5, -0.5]).unwrap(), vec![0.5, -0.5]);
    }

    #[test]
    fn removes_content_above_8khz() {
        // 12 kHz cannot exist at 16 kHz; it must not fold back as a 4 kHz alias.
        let out = resample(&sine(12_000.0, 48_000, 1.0), 48_000).unwrap();
        let rms = (out[1000..15000].iter().map(|v| v * v).sum::<f32>() / 14000.0).sqrt();
        assert!(rms < 0.01, "alias energy {rms}");
    }
}
