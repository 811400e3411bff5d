//! Connections a handler can drop or truncate, to emulate a network that fails mid-answer.

use super::*;

/// Per-connection control: a handler can make the connection fail.
#[derive(Debug, Default)]
pub(super) struct ConnControl {
    pub(super) killed: AtomicBool,
}

impl ConnControl {
    pub(super) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }

    pub(super) fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

/// The connection info handlers receive: the peer, and the connection's control.
#[derive(Debug, Clone)]
pub(super) struct ConnTag {
    pub(super) control: Arc<ConnControl>,
}

impl Connected<IncomingStream<'_, ControlledListener>> for ConnTag {
    fn connect_info(stream: IncomingStream<'_, ControlledListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub(super) struct ControlledListener {
    pub(super) inner: TcpListener,
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
pub(super) struct ControlledStream {
    pub(super) inner: TcpStream,
    pub(super) control: Arc<ConnControl>,
}

pub(super) fn killed() -> io::Error {
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
pub(super) struct TruncatedStream {
    pub(super) chunk: Option<Bytes>,
    pub(super) pause: Option<Pin<Box<tokio::time::Sleep>>>,
    pub(super) control: Arc<ConnControl>,
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
