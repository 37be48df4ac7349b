//! Audio decoding of every supported container and sample format, checked against the
//! original recording: same length, same waveform (after resampling back to 16 kHz).

use crate::util::*;
use tolk::audio::{decode_file, SAMPLE_RATE};

/// Normalised cross-correlation at the best lag within ±`max_lag` samples.
fn best_correlation(a: &[f32], b: &[f32], max_lag: usize) -> f64 {
    let mut best = f64::MIN;
    for lag in -(max_lag as isize)..=(max_lag as isize) {
        let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
        for (i, &x) in a.iter().enumerate().step_by(3) {
            let j = i as isize + lag;
            if j < 0 || j as usize >= b.len() {
                continue;
            }
            let y = b[j as usize] as f64;
            ab += x as f64 * y;
            aa += (x as f64).powi(2);
            bb += y * y;
        }
        if aa > 0.0 && bb > 0.0 {
            best = best.max(ab / (aa.sqrt() * bb.sqrt()));
        }
    }
    best
}

#[test]
fn every_supported_format_decodes_to_the_same_speech() {
    let jfk = testdata("jfk.wav");
    let original = decode_file(&jfk).unwrap();
    assert_eq!(original.samples.len(), 176_000, "jfk.wav is 11 s at 16 kHz");
    let dir = tempfile::tempdir().unwrap();
    let src = jfk.to_str().unwrap();
    // (file name, sox output options, lossless?)
    let cases: &[(&str, &[&str], bool)] = &[
        (
            "s16-44k-stereo.wav",
            &["-r", "44100", "-c", "2", "-b", "16"],
            true,
        ),
        ("s24-48k.wav", &["-r", "48000", "-b", "24"], true),
        ("s32.wav", &["-b", "32", "-e", "signed-integer"], true),
        ("u8.wav", &["-b", "8", "-e", "unsigned-integer"], false),
        (
            "f32-22k.wav",
            &["-r", "22050", "-b", "32", "-e", "floating-point"],
            true,
        ),
        ("s16-8k.wav", &["-r", "8000"], false),
        ("six-channels.wav", &["-c", "6"], true),
        ("flac-48k.flac", &["-r", "48000"], true),
        ("vorbis.ogg", &["-C", "3"], false),
        ("mp3.mp3", &["-C", "128"], false),
    ];
    let mut files = Vec::new();
    for (name, opts, lossless) in cases {
        let out = dir.path().join(name);
        let mut args = vec![src];
        args.extend_from_slice(opts);
        args.push(out.to_str().unwrap());
        sox(&args);
        files.push((out, *lossless));
    }
    let opus = dir.path().join("opus.opus");
    let st = std::process::Command::new("opusenc")
        .args(["--quiet", "--bitrate", "32", src, opus.to_str().unwrap()])
        .status()
        .expect("opusenc is installed by make's set-up");
    assert!(st.success());
    files.push((opus, false));

    for (path, lossless) in files {
        let a = decode_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let len_diff = (a.samples.len() as f64 - 176_000.0).abs() / SAMPLE_RATE as f64;
        // Lossy codecs pad the end to a whole frame (MP3: 1152 samples at the source rate).
        assert!(
            len_diff < if lossless { 0.005 } else { 0.12 },
            "{}: length off by {len_diff} s",
            path.display()
        );
        let corr = best_correlation(&original.samples, &a.samples, 1200);
        // Resampling twice leaves a sub-sample shift that integer lags cannot undo: 0.98.
        let want = if lossless { 0.98 } else { 0.85 };
        assert!(
            corr > want,
            "{} ({}): correlation {corr:.4}",
            path.display(),
            a.codec
        );
    }
}
