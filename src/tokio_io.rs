//! `tokio::io::AsyncWrite` for [`RetentionWriter`] (feature `tokio`): every poll holds the
//! capability for its duration, as the blocking writes do (G8).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::retention::{Capability, RetentionWriter};

impl<C: Capability + Unpin, W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite
    for RetentionWriter<C, W>
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .through(|inner| Pin::new(inner).poll_write(cx, buf))?
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .through(|inner| Pin::new(inner).poll_flush(cx))?
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .through(|inner| Pin::new(inner).poll_shutdown(cx))?
    }
}

impl<C: Capability, W: tokio::io::AsyncWrite + Unpin> RetentionWriter<C, W> {
    /// Flushes the inner async writer and returns it with the capability.
    ///
    /// # Errors
    /// The flush failed.
    pub async fn finish_async(mut self) -> io::Result<(W, C)>
    where
        C: Unpin,
    {
        tokio::io::AsyncWriteExt::flush(&mut self).await?;
        Ok(self.into_parts())
    }
}
