//! Shared helpers for the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A recording fetched by `scripts/fetch-testdata.sh`.
pub fn testdata(name: &str) -> PathBuf {
    let p = root().join("testdata").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `make test` (or `bash scripts/fetch-testdata.sh`) to fetch the test recordings",
        p.display()
    );
    p
}

/// A reference transcript kept in tests/data.
pub fn reference(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/data").join(name)).expect("reference text")
}

/// The model cache `make` fills.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("TOLK_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".cache/tolk"))
}

/// The path of a fetched model; fails with a hint if it is not there.
pub fn model(name: &str) -> PathBuf {
    let p = cache_dir().join("models").join(format!("ggml-{name}.bin"));
    assert!(
        p.exists(),
        "{} is missing: run `make test` (it fetches the models)",
        p.display()
    );
    p
}

/// The `tolk` binary, with the shared cache, run from `cwd`.
pub fn tolk(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tolk"));
    c.current_dir(cwd)
        .env("TOLK_CACHE_DIR", cache_dir())
        .env_remove("TOLK_LOG");
    c
}

static WHISPER: Mutex<()> = Mutex::new(());

/// Serialises Whisper-heavy tests. A test that panicked while holding it does not poison the
/// others.
pub fn whisper_lock() -> MutexGuard<'static, ()> {
    WHISPER.lock().unwrap_or_else(|e| e.into_inner())
}

/// stdout as text; panics with stderr if the command failed.
pub fn success(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Asserts a clean failure: non-zero exit, no panic, and exactly one line on stderr that
/// contains every one of `needles`. Returns that line.
pub fn clean_failure(out: Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected a failure, got success; stderr: {stderr}"
    );
    assert_ne!(
        out.status.code(),
        Some(101),
        "exit code 101 is a panic: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "`{n}` not in: {}", lines[0]);
    }
    lines[0].to_string()
}

/// Runs sox (installed by `make`'s set-up) and asserts it worked.
pub fn sox(args: &[&str]) {
    let out = Command::new("sox")
        .args(args)
        .output()
        .expect("sox is installed by make's set-up");
    assert!(
        out.status.success(),
        "sox {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first `secs` seconds of a test recording, written to `dir/out`.
pub fn trimmed(recording: &str, dir: &Path, out: &str, secs: u32) -> PathBuf {
    let path = dir.join(out);
    sox(&[
        testdata(recording).to_str().unwrap(),
        path.to_str().unwrap(),
        "trim",
        "0",
        &secs.to_string(),
    ]);
    path
}

/// English speech saying `text`, synthesised by espeak-ng (installed by `make`'s set-up)
/// into `path`: what no recording we can fetch says (the glossary's words).
pub fn say(path: &Path, text: &str) {
    say_in(path, text, "en", 140);
}

/// [`say`] in another of espeak-ng's voices (`es`, `ru`…), at `wpm` words a minute.
pub fn say_in(path: &Path, text: &str, voice: &str, wpm: u32) {
    let out = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &wpm.to_string(), "-w"])
        .arg(path)
        .arg(text)
        .output()
        .expect("espeak-ng is installed by make's set-up");
    assert!(
        out.status.success(),
        "espeak-ng: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a 16 kHz mono 16-bit WAV with sox's synthesiser: `what` is `synth …` or `trim …`
/// arguments and effects (for example `["synth", "10", "pinknoise", "vol", "0.3"]`).
pub fn synth(path: &Path, what: &[&str]) {
    // -R: the same noise on every run (a fixed seed), so a test's audio does not change.
    let mut args = vec![
        "-R",
        "-n",
        "-r",
        "16000",
        "-c",
        "1",
        "-b",
        "16",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(what);
    sox(&args);
}

/// The IP sockets of process `pid`, each described, and whether it reaches beyond this
/// machine: connected (TCP or UDP) to, or bound to, an address that is not loopback.
/// Listening on a wildcard address is serving the venue, not leaving it. Read from
/// `/proc/PID/fd` (the process's socket inodes) and `/proc/PID/net/{tcp,tcp6,udp,udp6}`.
pub fn sockets(pid: u32) -> Vec<(String, bool)> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new(); // the process has gone
    };
    let inodes: std::collections::HashSet<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut found = Vec::new();
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || !inodes.contains(f[9]) {
                continue;
            }
            let (local, remote, state) = (f[1], f[2], f[3]);
            let host = |a: &str| a.split(':').next().unwrap_or("").to_string();
            let (lh, rh) = (host(local), host(remote));
            let unconnected = rh.chars().all(|c| c == '0');
            let ok = if unconnected {
                // Bound only: on loopback, or a TCP listener (state 0A) on any address.
                is_loopback(&lh) || lh.chars().all(|c| c == '0') && state == "0A"
            } else {
                is_loopback(&rh)
            };
            found.push((format!("{table} {local} -> {remote} state {state}"), !ok));
        }
    }
    found
}

/// Whether a `/proc/net` hex address is loopback: 127.0.0.0/8, ::1, or ::ffff:127.x.
fn is_loopback(hex: &str) -> bool {
    match hex.len() {
        // IPv4, little-endian: the first octet is the last byte.
        8 => hex.ends_with("7F"),
        // IPv6, four little-endian 32-bit words.
        32 => {
            hex == "00000000000000000000000001000000"
                || (hex.starts_with("0000000000000000FFFF0000") && hex.ends_with("7F"))
        }
        _ => false,
    }
}
