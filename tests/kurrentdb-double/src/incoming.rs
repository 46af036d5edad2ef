// The double's accept loop: a stream of connections for tonic, at most a
// fixed number open at once, each with TCP_NODELAY on and TCP_QUICKACK
// re-armed after every read (see `QuickAckStream`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_stream::Stream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Connections open at once; one more is accepted and closed at once.
pub(crate) const CONNECTIONS_MAX: usize = 1024;

/// The pause after an accept error other than a connection's own (out of
/// file descriptors, say), so as not to spin on it.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The listener as a stream of connections. tonic stops polling it when the
/// server stops, and drops it (the listener with it) when serving ends.
#[derive(Debug)]
pub(crate) struct Incoming {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    pause: Option<Pin<Box<Sleep>>>,
}

impl Incoming {
    pub(crate) fn new(listener: TcpListener, connections_max: usize) -> Incoming {
        Incoming {
            listener,
            permits: Arc::new(Semaphore::new(connections_max)),
            pause: None,
        }
    }
}

impl Stream for Incoming {
    type Item = io::Result<QuickAckStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(pause) = this.pause.as_mut() {
            ready!(pause.as_mut().poll(cx));
            this.pause = None;
        }
        loop {
            let (stream, _) = match ready!(this.listener.poll_accept(cx)) {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    this.pause = Some(Box::pin(tokio::time::sleep(ACCEPT_ERROR_PAUSE)));
                    return Poll::Ready(Some(Err(error)));
                }
            };
            let Ok(permit) = this.permits.clone().try_acquire_owned() else {
                // Over the cap: closing it tells the client at once, where
                // leaving it in the backlog would leave it waiting.
                drop(stream);
                continue;
            };
            return Poll::Ready(Some(Ok(QuickAckStream::new(stream, permit))));
        }
    }
}

/// Errors of one connection (gone before it was accepted), not of the
/// listener: the next accept may well succeed.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// An accepted connection that acknowledges what it receives at once.
///
/// The `kurrentdb` client 1.2.0 leaves Nagle's algorithm on: it holds back
/// the second small write of a call (the request's body after its headers)
/// until the first is acknowledged, and Linux delays that ACK up to 40 ms
/// once the connection looks interactive. Setting `TCP_QUICKACK` sends a
/// pending ACK now, but the kernel leaves quick-ack mode again on its own
/// (it is not sticky), so the stream sets it after every read that returned
/// data. Elsewhere than Linux it does nothing. Holds one of the listener's
/// permits while open.
#[derive(Debug)]
pub(crate) struct QuickAckStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl QuickAckStream {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit) -> QuickAckStream {
        // Best effort, as tonic's own listener: a connection without them
        // still works, only slower.
        let _ = stream.set_nodelay(true);
        quick_ack(&stream);
        QuickAckStream {
            stream,
            _permit: permit,
        }
    }
}

#[cfg(target_os = "linux")]
fn quick_ack(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

#[cfg(not(target_os = "linux"))]
fn quick_ack(_stream: &TcpStream) {}

impl AsyncRead for QuickAckStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            quick_ack(&this.stream);
        }
        read
    }
}

impl AsyncWrite for QuickAckStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Connected for QuickAckStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        TcpConnectInfo {
            local_addr: self.stream.local_addr().ok(),
            remote_addr: self.stream.peer_addr().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_stream::StreamExt;

    use super::*;

    const WAIT_MAX: Duration = Duration::from_secs(10);

    async fn listening(connections_max: usize) -> (Incoming, SocketAddr) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
        let address = listener.local_addr().expect("address");
        (Incoming::new(listener, connections_max), address)
    }

    async fn accept(incoming: &mut Incoming) -> QuickAckStream {
        let next = tokio::time::timeout(WAIT_MAX, incoming.next())
            .await
            .expect("a connection");
        next.expect("the listener goes on").expect("accepted")
    }

    /// Whether the server closed the connection: EOF, or a reset.
    async fn closed_by_server(client: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(WAIT_MAX, client.read(&mut byte)).await {
            Ok(Ok(0) | Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        }
    }

    #[tokio::test]
    async fn bytes_go_both_ways_with_nodelay_on() {
        let (mut incoming, address) = listening(4).await;
        let mut client = TcpStream::connect(address).await.expect("connect");
        let mut server = accept(&mut incoming).await;
        assert!(server.stream.nodelay().expect("nodelay"));
        let info = server.connect_info();
        assert_eq!(info.remote_addr, Some(client.local_addr().expect("local")));
        assert_eq!(info.local_addr, Some(address));

        for round in 0..3u8 {
            client.write_all(&[round; 5]).await.expect("client writes");
            let mut got = [0u8; 5];
            server.read_exact(&mut got).await.expect("server reads");
            assert_eq!(got, [round; 5]);
            server.write_all(&[round + 10; 3]).await.expect("server writes");
            server.flush().await.expect("flush");
            let mut back = [0u8; 3];
            client.read_exact(&mut back).await.expect("client reads");
            assert_eq!(back, [round + 10; 3]);
        }
        server.shutdown().await.expect("shutdown");
        assert!(closed_by_server(&mut client).await);
    }

    #[tokio::test]
    async fn connections_past_the_cap_are_closed_until_one_ends() {
        let (mut incoming, address) = listening(2).await;
        let mut first = TcpStream::connect(address).await.expect("connect");
        let kept_first = accept(&mut incoming).await;
        let _second = TcpStream::connect(address).await.expect("connect");
        let _kept_second = accept(&mut incoming).await;

        // The third is accepted and closed while the stream waits for a
        // fourth.
        let mut third = TcpStream::connect(address).await.expect("connect");
        let waiting = tokio::time::timeout(Duration::from_millis(200), incoming.next()).await;
        assert!(waiting.is_err(), "no connection past the cap is handed on");
        assert!(closed_by_server(&mut third).await);

        // Ending one frees its place.
        drop(kept_first);
        assert!(closed_by_server(&mut first).await);
        let mut fourth = TcpStream::connect(address).await.expect("connect");
        let mut kept_fourth = accept(&mut incoming).await;
        fourth.write_all(b"hello").await.expect("write");
        let mut got = [0u8; 5];
        kept_fourth.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"hello");
    }
}
