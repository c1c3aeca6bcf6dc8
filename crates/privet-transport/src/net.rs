//! Connections: TLS 1.3 (rustls) under tonic on both sides, or plain TCP in insecure dev mode.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::TransportError;
use crate::tls::{self, Security};

/// Bytes moved through connections made by [`connect`] (TLS records included), for benchmarks.
#[derive(Debug, Default)]
pub struct WireCounter {
    /// Bytes read from the socket.
    pub read: AtomicU64,
    /// Bytes written to the socket.
    pub written: AtomicU64,
}

/// Opens a gRPC channel to `url` (`https://host:port`).
pub async fn connect(
    url: &str,
    security: &Security,
    counter: Option<Arc<WireCounter>>,
) -> Result<Channel, TransportError> {
    let fail = |reason: String| TransportError::Connect {
        url: url.to_string(),
        reason,
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| fail("the address must start with https://".into()))?;
    // TLS is done by our connector, so tonic sees a plain http:// endpoint.
    let endpoint = Endpoint::from_shared(format!("http://{rest}"))
        .map_err(|e| fail(e.to_string()))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .http2_adaptive_window(true);
    let tls_config = match security {
        Security::Tls(files) => Some(tls::client_config(files)?),
        Security::InsecureDev => None,
    };
    let connector = tower::service_fn(move |uri: Uri| {
        let tls_config = tls_config.clone();
        let counter = counter.clone();
        async move {
            let host = uri.host().unwrap_or("localhost").to_string();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let tcp = counting::Counted::new(tcp, counter);
            match tls_config {
                Some(config) => {
                    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                    let tls = TlsConnector::from(config).connect(name, tcp).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(Either::Tls(Box::new(tls))))
                }
                None => Ok(TokioIo::new(Either::Plain(tcp))),
            }
        }
    });
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| fail(error_chain(&e)))
}

/// An error and its causes on one line (tonic's transport errors hide the TLS reason in the
/// source chain).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A plain or TLS client stream.
enum Either {
    Plain(counting::Counted<TcpStream>),
    Tls(Box<tokio_rustls::client::TlsStream<counting::Counted<TcpStream>>>),
}

impl tokio::io::AsyncRead for Either {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Either::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Either::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Either {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Either::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Either::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Either::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Either::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Either::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Either::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

mod counting {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use super::WireCounter;

    /// A stream that counts the bytes through it.
    pub struct Counted<S> {
        inner: S,
        counter: Option<Arc<WireCounter>>,
    }

    impl<S> Counted<S> {
        pub fn new(inner: S, counter: Option<Arc<WireCounter>>) -> Self {
            Counted { inner, counter }
        }
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let this = self.get_mut();
            let before = buf.filled().len();
            let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
            if let (Some(c), Poll::Ready(Ok(()))) = (&this.counter, &poll) {
                let n = (buf.filled().len() - before) as u64;
                c.read.fetch_add(n, Ordering::Relaxed);
            }
            poll
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let this = self.get_mut();
            let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
            if let (Some(c), Poll::Ready(Ok(n))) = (&this.counter, &poll) {
                c.written.fetch_add(*n as u64, Ordering::Relaxed);
            }
            poll
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
        }
    }
}

/// Serves `router` on `listener` (through [`tls_incoming`] when `tls` is given, plain TCP
/// otherwise) until `stop` turns true. Every privet gRPC service starts this way.
pub async fn serve(
    router: tonic::transport::server::Router,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error> {
    let signal = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    match tls {
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(tls_incoming(listener, tls), signal)
                .await
        }
        None => {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            router.serve_with_incoming_shutdown(incoming, signal).await
        }
    }
}

/// Accepts TCP connections and completes TLS handshakes off the accept loop; a failed handshake
/// (foreign CA, expired certificate, no certificate, wrong protocol) is logged with the peer's
/// address and never reaches the service.
pub fn tls_incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> tokio_stream::wrappers::ReceiverStream<
    Result<tokio_rustls::server::TlsStream<TcpStream>, std::io::Error>,
> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            // Stop (and free the port) as soon as the server drops the stream, not at the next
            // connection attempt.
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = tx.closed() => break,
            };
            let (tcp, peer) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let conn_tx = tx.clone();
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
                match handshake {
                    Ok(Ok(tls)) => {
                        let _ = conn_tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => {
                        HANDSHAKE_FAILURES.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%peer, "TLS handshake refused: {e}");
                    }
                    Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// TLS handshakes refused since the process started.
pub static HANDSHAKE_FAILURES: AtomicU64 = AtomicU64::new(0);
