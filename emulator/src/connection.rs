//! Connections a handler can drop or truncate, to emulate a network that fails mid-answer.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Per-connection control: a handler can make the connection fail.
#[derive(Debug, Default)]
pub(crate) struct ConnControl {
    killed: AtomicBool,
}

impl ConnControl {
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

/// The connection info handlers receive: the connection's control.
#[derive(Debug, Clone)]
pub(crate) struct ConnTag {
    pub(crate) control: Arc<ConnControl>,
}

impl Connected<IncomingStream<'_, ControlledListener>> for ConnTag {
    fn connect_info(stream: IncomingStream<'_, ControlledListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// The emulator's listener: every connection it accepts can be killed by its handler.
#[derive(Debug)]
pub(crate) struct ControlledListener {
    pub(crate) inner: TcpListener,
}

impl Listener for ControlledListener {
    type Io = ControlledStream;
    type Addr = ConnTag;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let control = Arc::new(ConnControl::default());
                    return (
                        ControlledStream {
                            inner: stream,
                            control: control.clone(),
                        },
                        ConnTag { control },
                    );
                }
                Err(e) => {
                    // E.g. too many open files: wait instead of spinning.
                    tracing::debug!(error = %e, "graph emulator: accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnTag {
            control: Arc::default(),
        })
    }
}

/// A TCP stream that fails every operation once its connection has been killed, so that the
/// server closes it without writing anything more.
#[derive(Debug)]
pub(crate) struct ControlledStream {
    inner: TcpStream,
    control: Arc<ConnControl>,
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection dropped by the graph emulator",
    )
}

impl AsyncRead for ControlledStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.control.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ControlledStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.control.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.control.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A body that sends one chunk, pauses so the server flushes it, then ends early (the
/// `Content-Length` promised more) and kills the connection.
#[derive(Debug)]
pub(crate) struct TruncatedStream {
    chunk: Option<Bytes>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    control: Arc<ConnControl>,
}

impl TruncatedStream {
    /// A body that sends `chunk`, then kills the connection through `control`.
    pub(crate) fn new(chunk: Bytes, control: Arc<ConnControl>) -> Self {
        Self {
            chunk: Some(chunk),
            pause: None,
            control,
        }
    }
}

impl hyper::body::Body for TruncatedStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if let Some(chunk) = this.chunk.take() {
            this.pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(50))));
            return Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))));
        }
        if let Some(pause) = this.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.pause = None;
        }
        this.control.kill();
        Poll::Ready(None)
    }
}
