//! The caption fan-out under load: `tolk serve` transcribes a live floor (a real recording
//! at real-time pace, looped) while N listeners on loopback, tokio-tungstenite clients in
//! this process, receive it. For each N: delivery latency of finals (server emit → client
//! receive, from the final's `wall_ms`), finals lost or out of order, and the server's
//! resident memory before and with the listeners.
//!
//! ```sh
//! ulimit -n 20000   # 5,000 sockets on each side
//! cargo bench --bench fanout -- [--listeners 100,1000,5000] [--secs 60] [--model base] [--threads 2]
//! ```
//!
//! With `--edge`: the same meeting with a `[cluster]` (a `nats-server -js` started here on a
//! free loopback port; the room server decodes the floor itself) and a `tolk edge` serving
//! it: the listeners connect to the edge, latency is still from the room server's `wall_ms`
//! (the NATS hop included), memory is the edge's.
//!
//! With `--churn SECS`: 1,000 listeners (`--listeners`) connect, subscribe, read for 0.2 to
//! 3 s and leave (half close properly, half drop the socket), again and again for SECS; the
//! server's resident memory, open file descriptors and runtime tasks are sampled every
//! 30 s, and once more after everyone has left. No leak: descriptors and tasks back where
//! they were, memory flat after warming up.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::arg;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The process the listeners connect to (the room server, or the edge), and the others it
/// needs (nats-server and the room server with `--edge`); all killed when dropped.
struct Server {
    child: Child,
    addr: String,
    others: Vec<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for c in std::iter::once(&mut self.child).chain(&mut self.others) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The first line of `child`'s standard output that starts with `prefix`, without it.
fn printed(child: &mut Child, prefix: &'static str) -> String {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(prefix) {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("`{prefix}` printed"))
}

/// A `nats-server -js` on a free loopback port, its store in `dir`; returns it and its URL.
fn nats(dir: &std::path::Path) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (Debian's package; `make` installs it)");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "nats-server started");
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, format!("nats://127.0.0.1:{port}"))
}

fn serve(
    root: &std::path::Path,
    dir: &std::path::Path,
    model: &str,
    threads: usize,
    edge: bool,
) -> Server {
    let mut others = Vec::new();
    let mut nats_url = String::new();
    let cluster = if edge {
        let (child, url) = nats(dir);
        others.push(child);
        nats_url = url;
        format!("\n[cluster]\nnats = \"{nats_url}\"\ndecode_here = 1\n")
    } else {
        String::new()
    };
    let meeting = format!(
        r#"[meeting]
id = "fanout"
title = "fan-out benchmark"
off_record = true
model = "{model}"
threads = {threads}
glossary = "{glossary}"
{cluster}
[[channel]]
id = "floor"
language = "en"
floor = true
source = {{ kind = "file", path = "{audio}", loop = true }}
"#,
        glossary = root.join("glossaries/sex-work-rights.toml").display(),
        audio = root.join("testdata/en-demo-instruct.wav").display(),
    );
    std::fs::write(dir.join("meeting.toml"), meeting).unwrap();
    let cache = std::env::var_os("TOLK_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".cache/tolk"));
    let mut child = Command::new(root.join("target/release/tolk"))
        .args([
            "serve",
            "--config",
            "meeting.toml",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir)
        .env("TOLK_CACHE_DIR", cache)
        .stdout(Stdio::piped())
        .spawn()
        .expect("target/release/tolk (run `make build`)");
    let addr = printed(&mut child, "listening on http://");
    if !edge {
        return Server {
            child,
            addr,
            others,
        };
    }
    others.push(child);
    let mut edge = Command::new(root.join("target/release/tolk"))
        .args(["edge", "--nats", &nats_url, "--meeting", "fanout"])
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("target/release/tolk");
    let addr = printed(&mut edge, "tolk edge: listening on http://");
    Server {
        child: edge,
        addr,
        others,
    }
}

/// The fields of a final the benchmark measures.
#[derive(serde::Deserialize)]
struct Stamp {
    seq: u64,
    wall_ms: u64,
}

/// What one listener saw.
#[derive(Default)]
struct Listener {
    latencies_ms: Vec<i64>,
    seqs: Vec<u64>,
}

async fn listen(
    addr: String,
    until: Instant,
    connected: Arc<AtomicUsize>,
) -> Result<Listener, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .map_err(|e| e.to_string())?;
    ws.send(Message::text(
        r#"{"type":"subscribe","channels":["floor"]}"#,
    ))
    .await
    .map_err(|e| e.to_string())?;
    connected.fetch_add(1, Relaxed);
    let mut me = Listener::default();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let msg = match tokio::time::timeout(left, ws.next()).await {
            Err(_) => break,
            Ok(None) => return Err("closed by the server".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(m))) => m,
        };
        let Message::Text(t) = msg else { continue };
        let at = now_ms();
        // The 5,000 listeners share this process's one thread, where 5,000 phones would each
        // parse on their own: only finals are parsed (the tag comes first), and only the two
        // fields measured, so that the generator's own work delays the later sockets little.
        if !t.as_str().starts_with(r#"{"type":"final""#) {
            continue;
        }
        let f: Stamp = serde_json::from_str(t.as_str()).map_err(|e| e.to_string())?;
        me.latencies_ms.push(at as i64 - f.wall_ms as i64);
        me.seqs.push(f.seq);
    }
    Ok(me)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A gauge from the server's `/metrics`.
fn gauge(addr: &str, name: &str) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

/// One churning listener: connect, subscribe, read a while, leave; again until `until`.
/// Returns how many sessions it had and how many failed to connect.
async fn churn_one(addr: String, until: Instant, mut rng: u64) -> (u64, u64) {
    let (mut sessions, mut failed) = (0, 0);
    while Instant::now() < until {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let stay = Duration::from_millis(200 + rng % 2800);
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await
        else {
            failed += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let _ = ws
            .send(Message::text(
                r#"{"type":"subscribe","channels":["floor"]}"#,
            ))
            .await;
        let end = Instant::now() + stay;
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(end.into(), ws.next()).await {}
        if rng % 2 == 0 {
            let _ = ws.close(None).await;
        }
        drop(ws);
        sessions += 1;
    }
    (sessions, failed)
}

/// `--churn SECS`: see the module doc.
fn churn(rt: &tokio::runtime::Runtime, server: &Server, n: usize, secs: u64) {
    let pid = server.child.id();
    let sample = |label: &str, t0: Instant| {
        println!(
            "| {label} | {:.0} | {} | {:.1} | {} | {} |",
            t0.elapsed().as_secs_f64(),
            gauge(&server.addr, "tolk_connections"),
            rss_mb(pid),
            fds(pid),
            gauge(&server.addr, "tolk_tasks"),
        );
    };
    std::thread::sleep(Duration::from_secs(20));
    let t0 = Instant::now();
    println!("| moment | s | connections | RSS (MB) | file descriptors | tasks |");
    println!("|---|---|---|---|---|---|");
    sample("before", t0);
    let until = t0 + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            rt.spawn(churn_one(
                server.addr.clone(),
                until,
                0x9e37_79b9 + i as u64 * 7919,
            ))
        })
        .collect();
    while Instant::now() < until {
        std::thread::sleep(
            Duration::from_secs(30).min(until.saturating_duration_since(Instant::now())),
        );
        if Instant::now() < until {
            sample("churning", t0);
        }
    }
    let (mut sessions, mut failed) = (0, 0);
    for t in tasks {
        let (s, f) = rt.block_on(t).unwrap();
        sessions += s;
        failed += f;
    }
    std::thread::sleep(Duration::from_secs(10));
    sample("after, all gone", t0);
    println!("\n{sessions} sessions by {n} listeners in {secs} s; {failed} connections refused or failed");
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("fan-out benchmark: run it with `cargo bench --bench fanout`");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let counts: Vec<usize> = arg("--listeners", "100,1000,5000")
        .split(',')
        .map(|n| n.trim().parse().expect("--listeners 100,1000"))
        .collect();
    let secs: u64 = arg("--secs", "60").parse().expect("--secs N");
    let model = arg("--model", "base");
    let threads: usize = arg("--threads", "2").parse().expect("--threads N");
    let edge = std::env::args().any(|a| a == "--edge");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    if let Ok(secs) = arg("--churn", "").parse::<u64>() {
        let dir = tempfile::tempdir().unwrap();
        let server = serve(&root, dir.path(), &model, threads, edge);
        churn(&rt, &server, counts[0], secs);
        return;
    }
    println!("| listeners | finals sent | received by all | lost or out of order | latency p50 / p99 / max (ms) | server RSS before → with listeners (MB) | per listener (KB) |");
    println!("|---|---|---|---|---|---|---|");
    for n in counts {
        let dir = tempfile::tempdir().unwrap();
        let server = serve(&root, dir.path(), &model, threads, edge);
        // The server's own memory before listeners: the highest over 20 s of transcription
        // (Whisper's working memory grows over its first decodes).
        let mut before = 0f64;
        for _ in 0..20 {
            std::thread::sleep(Duration::from_secs(1));
            before = before.max(rss_mb(server.child.id()));
        }
        let connected = Arc::new(AtomicUsize::new(0));
        let until = Instant::now() + Duration::from_secs(secs);
        let peak = Arc::new(Mutex::new(0f64));
        let results: Vec<Result<Listener, String>> = rt.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..n {
                tasks.push(tokio::spawn(listen(
                    server.addr.clone(),
                    until,
                    connected.clone(),
                )));
            }
            // Memory once everyone is connected.
            let (pid, c, pk) = (server.child.id(), connected.clone(), peak.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if c.load(Relaxed) == n {
                        let mut p = pk.lock().unwrap();
                        *p = p.max(rss_mb(pid));
                    }
                }
            });
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap_or_else(|e| Err(e.to_string())));
            }
            out
        });
        let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        let ok: Vec<&Listener> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        // Every listener should see the same finals: the union is what was sent in the window
        // they all had (from the latest first seq to the earliest last seq).
        let first = ok
            .iter()
            .filter_map(|l| l.seqs.first())
            .max()
            .copied()
            .unwrap_or(0);
        let last = ok
            .iter()
            .filter_map(|l| l.seqs.last())
            .min()
            .copied()
            .unwrap_or(0);
        let mut bad = 0usize;
        let mut complete = 0usize;
        for l in &ok {
            let window: Vec<u64> = l
                .seqs
                .iter()
                .copied()
                .filter(|s| (first..=last).contains(s))
                .collect();
            let want: Vec<u64> = (first..=last).collect();
            if window == want {
                complete += 1;
            } else {
                bad += 1;
            }
        }
        let mut all: Vec<i64> = ok
            .iter()
            .flat_map(|l| l.latencies_ms.iter().copied())
            .collect();
        all.sort_unstable();
        let with = *peak.lock().unwrap();
        let mut by_err: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &failed {
            *by_err.entry(e.as_str()).or_default() += 1;
        }
        println!(
            "| {n} | {} | {complete}/{n} | {} | {} / {} / {} | {before:.0} → {with:.0} | {:.1} |",
            last.saturating_sub(first) + 1,
            bad + failed.len(),
            pct(&all, 0.5),
            pct(&all, 0.99),
            all.last().copied().unwrap_or(-1),
            (with - before) * 1024.0 / n as f64,
        );
        if !failed.is_empty() {
            eprintln!("listeners that failed: {by_err:?}");
        }
        drop(server);
    }
}
