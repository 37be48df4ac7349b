//! HTTPS and WSS: a certificate (self-signed for the machine's addresses, or the organizer's
//! own), and a listener that hands axum connections only once their TLS handshake is done.
//!
//! rustls with the `ring` provider only; no OpenSSL. Phones on the venue network need HTTPS
//! for the booth page's microphone, and TLS keeps the captions and tokens off the air.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A client has this long to finish its handshake (a stalled one holds no other up).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once. When all are taken, the accept loop waits (new connections
/// wait in the kernel's backlog) until one ends: at most [`HANDSHAKE_TIMEOUT`] for a client
/// that never finishes. A flood of connections that never speak costs this many tasks and
/// sockets, no more.
const MAX_HANDSHAKES: usize = 128;

/// Handshaken connections waiting for axum to take them. When full, handshakes wait (the
/// accept loop goes on accepting; each handshake is its own task).
const READY_CONNECTIONS: usize = 64;

/// Why TLS could not be set up; names the file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read the certificate: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("{path}: cannot read the private key: {message}")]
    Key { path: PathBuf, message: String },
    #[error("{path}: no certificate in the file (PEM `BEGIN CERTIFICATE` expected)")]
    NoCert { path: PathBuf },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("{path}: cannot keep the self-signed certificate: {source}")]
    Store {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A server's TLS: its rustls configuration and the certificate's SHA-256 fingerprint
/// (`AA:BB:…`, as browsers show it), to print so people can check what their phone shows.
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    pub fingerprint: String,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Tls, TlsError> {
    let fingerprint = fingerprint(&certs[0]);
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Tls {
        config: Arc::new(config),
        fingerprint,
    })
}

/// SHA-256 of the certificate, as colon-separated upper-case hex.
pub fn fingerprint(cert: &[u8]) -> String {
    Sha256::digest(cert)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The organizer's own certificate chain and key (PEM files).
pub fn from_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert {
            path: cert.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        message: e.to_string(),
    })?;
    build(certs, key)
}

/// A self-signed certificate for `names` (host names and IP addresses), kept in `dir` and
/// used again while it names the same addresses — so phones that accepted it once are not
/// asked again after a restart; a new one when the addresses change.
pub fn self_signed(names: &[String], dir: &Path) -> Result<Tls, TlsError> {
    let mut names = names.to_vec();
    names.sort();
    names.dedup();
    let label = names.join(",");
    let (cert_path, key_path, names_path) = (
        dir.join("self-signed.crt"),
        dir.join("self-signed.key"),
        dir.join("self-signed.names"),
    );
    if std::fs::read_to_string(&names_path).is_ok_and(|n| n == label) {
        if let Ok(tls) = from_files(&cert_path, &key_path) {
            return Ok(tls);
        }
    }
    let made =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let store = |path: &Path, text: &str| {
        write_private(path, text).map_err(|source| TlsError::Store {
            path: path.to_path_buf(),
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Store {
        path: dir.to_path_buf(),
        source,
    })?;
    store(&key_path, &made.signing_key.serialize_pem())?;
    store(&cert_path, &made.cert.pem())?;
    store(&names_path, &label)?;
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    build(vec![made.cert.der().clone()], key)
}

/// Writes a file only its owner can read (the key is in it).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Accepts TCP connections and hands axum those whose TLS handshake succeeded. Each
/// handshake runs in its own task with a timeout, so one slow client holds up no other; a
/// failed handshake (a browser refusing the self-signed certificate, a scanner, plain HTTP)
/// is logged at debug level and forgotten. At most [`MAX_HANDSHAKES`] are in flight.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        Self::with_limits(tcp, config, MAX_HANDSHAKES, HANDSHAKE_TIMEOUT)
    }

    /// [`TlsListener::new`] with at most `handshakes` in flight, each given `timeout`.
    pub fn with_limits(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        handshakes: usize,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_CONNECTIONS);
        let acceptor = TlsAcceptor::from(config);
        let slots = Arc::new(tokio::sync::Semaphore::new(handshakes));
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = async {
                        let slot = slots.clone().acquire_owned().await.expect("never closed");
                        (tcp.accept().await, slot)
                    } => a,
                    // The server stopped: stop accepting.
                    _ = tx.closed() => return,
                };
                let ((socket, peer), slot) = match accepted {
                    (Ok(a), slot) => (a, slot),
                    (Err(e), _) => {
                        // Out of file descriptors, usually: wait for some to be freed.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                super::bound_send_buffer(&socket);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let shaken = tokio::time::timeout(timeout, acceptor.accept(socket)).await;
                    drop(slot);
                    match shaken {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept loop ended: no connection will come again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_kept_for_the_same_addresses_only() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let a = self_signed(&names, dir.path()).unwrap();
        let b = self_signed(&names, dir.path()).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint, "kept across restarts");
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        let mode = std::fs::metadata(dir.path().join("self-signed.key")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            mode.permissions().mode() & 0o777,
            0o600,
            "the key is private"
        );
        let other = vec!["localhost".to_string(), "192.168.1.20".to_string()];
        let c = self_signed(&other, dir.path()).unwrap();
        assert_ne!(
            a.fingerprint, c.fingerprint,
            "new addresses, new certificate"
        );
    }

    #[test]
    fn bad_certificate_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let e = from_files(&cert, &key).err().unwrap().to_string();
        assert!(e.contains("c.pem") && e.contains("no certificate"), "{e}");
        let missing = from_files(&dir.path().join("none.pem"), &key)
            .err()
            .unwrap()
            .to_string();
        assert!(
            missing.contains("none.pem") && missing.contains("cannot read"),
            "{missing}"
        );
    }
    /// Connections that never say a word hold a handshake slot until their timeout, and no
    /// more are taken meanwhile: with two slots and two silent sockets, a third connection
    /// is only handshaken (and, sending no TLS, refused) once a silent one has timed out.
    #[tokio::test]
    async fn handshakes_in_flight_are_bounded() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let tls = self_signed(&["127.0.0.1".to_string()], dir.path()).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let timeout = Duration::from_millis(1500);
        let listener = TlsListener::with_limits(tcp, tls.config, 2, timeout).unwrap();
        let addr = listener.addr;
        let _silent: Vec<TcpStream> = vec![
            TcpStream::connect(addr).await.unwrap(),
            TcpStream::connect(addr).await.unwrap(),
        ];
        tokio::time::sleep(Duration::from_millis(200)).await;
        let began = std::time::Instant::now();
        let mut third = TcpStream::connect(addr).await.unwrap();
        third
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buf)).await;
        let waited = began.elapsed();
        assert!(
            matches!(read, Ok(Ok(_) | Err(_))),
            "the third connection is answered (closed) once a slot is free"
        );
        assert!(
            waited >= Duration::from_millis(1000),
            "the third handshake began only after a silent one timed out: {waited:?}"
        );
        drop(listener);
    }
}
