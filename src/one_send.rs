//! A connection's socket as hyper writes to it: an answer of a few kilobytes, which hyper
//! hands over as its head and body apart, leaves in one `send`, gathered in a buffer of the
//! thread's. The kernel's two-part `writev` cost more than that copy: fanning out, a delivery
//! took ~7 % less server CPU (BENCHMARKS.md, eighteenth measurement). hyper's own way to do
//! it (`writev(false)`) copies every answer into a buffer of the connection's, which keeps
//! the size of the largest answer it ever wrote for as long as the connection lives, held
//! polls included. Larger answers go out as the two-part write, as before.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes gathered into one `send`: a poll's usual answer and a send's are well below
/// it; a catch-up page, history or a file above it stays a two-part write.
pub const GATHER_MAX: usize = 16 * 1024;

thread_local! {
    /// One buffer per runtime thread, reused by every connection it serves.
    static GATHER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(GATHER_MAX));
}

/// Wraps a socket so that small vectored writes leave as one plain write.
pub struct OneSend<T>(pub T);

impl<T: AsyncRead + Unpin> AsyncRead for OneSend<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for OneSend<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if bufs.len() < 2 || total > GATHER_MAX {
            return Pin::new(&mut self.0).poll_write_vectored(cx, bufs);
        }
        GATHER.with_borrow_mut(|gathered| {
            gathered.clear();
            for b in bufs {
                gathered.extend_from_slice(b);
            }
            // What was written counts from the first slice on, as a vectored write's does.
            Pin::new(&mut self.0).poll_write(cx, gathered)
        })
    }

    /// Vectored, so that hyper hands the head and body over apart rather than copying them
    /// into a buffer of the connection's.
    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// Records each write it is given and accepts at most `accept` bytes of it.
    #[derive(Default)]
    struct Recorder {
        plain: Vec<Vec<u8>>,
        vectored: Vec<Vec<Vec<u8>>>,
        accept: Option<usize>,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let n = self.accept.map_or(buf.len(), |a| a.min(buf.len()));
            self.plain.push(buf.to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.vectored.push(bufs.iter().map(|b| b.to_vec()).collect());
            Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_small_head_and_body_leave_in_one_plain_write() {
        let mut socket = OneSend(Recorder::default());
        let n = socket.write_vectored(&[IoSlice::new(b"HTTP/1.1 200 OK\r\n\r\n"), IoSlice::new(b"{}")]).await.unwrap();
        assert_eq!(n, 21);
        assert_eq!(socket.0.plain, vec![b"HTTP/1.1 200 OK\r\n\r\n{}".to_vec()]);
        assert!(socket.0.vectored.is_empty());
    }

    #[tokio::test]
    async fn a_large_answer_stays_a_vectored_write() {
        let mut socket = OneSend(Recorder::default());
        let body = vec![b'x'; GATHER_MAX];
        let n = socket.write_vectored(&[IoSlice::new(b"head"), IoSlice::new(&body)]).await.unwrap();
        assert_eq!(n, GATHER_MAX + 4);
        assert!(socket.0.plain.is_empty());
        assert_eq!(socket.0.vectored, vec![vec![b"head".to_vec(), body]]);
        assert!(socket.is_write_vectored(), "so hyper keeps handing the parts over apart");
    }

    #[tokio::test]
    async fn a_short_write_reports_what_left_from_the_first_part_on() {
        let mut socket = OneSend(Recorder { accept: Some(6), ..Default::default() });
        let n = socket.write_vectored(&[IoSlice::new(b"head:"), IoSlice::new(b"body")]).await.unwrap();
        assert_eq!(n, 6, "'head:' and the 'b' of the body");
        assert_eq!(socket.0.plain, vec![b"head:body".to_vec()]);
    }
}
