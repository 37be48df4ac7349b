//! Mel filter bank as Whisper uses it: 80 (or 128) bins for a 400-point FFT at 16 kHz, on the
//! Slaney mel scale with Slaney area normalisation. This is what
//! `librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)` computes and what OpenAI ships as
//! `mel_filters.npz`; whisper.cpp reads it from the model file.

/// FFT size Whisper uses (25 ms at 16 kHz).
pub const N_FFT: usize = 400;
/// Frequency bins of a real FFT of `N_FFT` points.
pub const N_FREQ: usize = N_FFT / 2 + 1;

fn hz_to_mel(hz: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// The filter bank, row-major `n_mels × N_FREQ`, for a 16 kHz sample rate.
pub fn filters(n_mels: usize) -> Vec<f32> {
    let sr = 16_000.0f64;
    let fft_freqs: Vec<f64> = (0..N_FREQ)
        .map(|i| i as f64 * (sr / 2.0) / (N_FREQ - 1) as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut out = vec![0f32; n_mels * N_FREQ];
    for m in 0..n_mels {
        let fdiff_lo = mel_f[m + 1] - mel_f[m];
        let fdiff_hi = mel_f[m + 2] - mel_f[m + 1];
        let enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = -(mel_f[m] - f) / fdiff_lo;
            let upper = (mel_f[m + 2] - f) / fdiff_hi;
            // librosa stores the triangle in f32 first, then scales it in f64: do the same so
            // the values match its output bit for bit.
            let tri = lower.min(upper).max(0.0) as f32;
            out[m * N_FREQ + k] = (tri as f64 * enorm) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values read from OpenAI's `whisper/assets/mel_filters.npz` (`mel_80`), in the
    /// `openai-whisper==20250625` source distribution: (mel bin, FFT bin, value).
    const OPENAI_MEL_80: &[(usize, usize, f64)] = &[
        (0, 1, 0.02486259490251541),
        (1, 2, 0.022871771827340126),
        (20, 23, 0.0),
        (20, 24, 0.0),
        (40, 42, 0.005411104764789343),
        (40, 43, 0.014735566452145576),
        (40, 44, 0.006518189795315266),
        (60, 83, 0.0),
        (79, 186, 0.000366741674952209),
        (79, 187, 0.0008330700220540166),
        (79, 199, 0.0004487590049393475),
    ];

    #[test]
    fn matches_openai_mel_filters() {
        let f = filters(80);
        assert_eq!(f.len(), 80 * 201);
        for &(m, k, want) in OPENAI_MEL_80 {
            let got = f[m * N_FREQ + k] as f64;
            assert!(
                (got - want).abs() <= 2e-9,
                "mel[{m}][{k}] = {got}, OpenAI has {want}"
            );
        }
        // The sum of the whole bank and of single rows, also from mel_filters.npz.
        let total: f64 = f.iter().map(|&v| v as f64).sum();
        assert!((total - 1.999024092387117).abs() < 1e-6, "sum {total}");
        let row40: f64 = f[40 * N_FREQ..41 * N_FREQ].iter().map(|&v| v as f64).sum();
        assert!(
            (row40 - 0.026664861012250185).abs() < 1e-8,
            "row 40 sum {row40}"
        );
    }

    #[test]
    fn mel_scale_round_trips() {
        for hz in [0.0, 440.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
    }
}
