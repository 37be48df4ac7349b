//! Connections as they are accepted: each one's kernel send buffer bounded, and the
//! client's address kept for the per-address limits ([`Peer`]).

use std::net::SocketAddr;

use super::tls;

/// The kernel's send buffer of every accepted connection, bytes. Left alone, Linux grows it
/// up to 4 MiB for a client that stops reading: a phone in a pocket would hold half an hour
/// of stale captions in the kernel before [`SEND_TIMEOUT`] or a resync could notice, and a
/// few hundred of them gigabytes. Captions are a few kilobytes a second and pages a few
/// hundred kilobytes: 64 KiB sends both at full speed over a local network.
pub const SOCKET_SEND_BUFFER: usize = 64 * 1024;

/// Bounds an accepted connection's kernel send buffer ([`SOCKET_SEND_BUFFER`]).
pub(crate) fn bound_send_buffer(tcp: &tokio::net::TcpStream) {
    if let Err(e) = socket2::SockRef::from(tcp).set_send_buffer_size(SOCKET_SEND_BUFFER) {
        tracing::debug!("cannot bound a socket's send buffer: {e}");
    }
}

/// The client's address, over plain TCP or TLS (rate limits are per address).
#[derive(Clone, Copy, Debug)]
pub(super) struct Peer(pub(super) SocketAddr);

/// Plain HTTP's listener: each connection's send buffer bounded ([`bound_send_buffer`]).
pub(super) struct PlainListener(pub(super) tokio::net::TcpListener);

impl axum::serve::Listener for PlainListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's accept: it waits out errors such as running out of file descriptors.
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.0).await;
        bound_send_buffer(&tcp);
        (tcp, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, PlainListener>>
    for Peer
{
    fn connect_info(s: axum::serve::IncomingStream<'_, PlainListener>) -> Peer {
        Peer(*s.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tls::TlsListener>>
    for Peer
{
    fn connect_info(s: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Peer {
        Peer(*s.remote_addr())
    }
}
