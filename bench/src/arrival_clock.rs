//! When an answer reached the client's socket, by the kernel's receive timestamp
//! (`SO_TIMESTAMPNS`), not when the generator got round to reading it.
//!
//! One generator core plays a thousand members: the last of 1,000 answers to the same
//! message is read only after the 999 before it have been read, parsed and polled again,
//! so the time the generator sees it is mostly the generator's own queue. Each member of a
//! real group has a device of its own; what it would see is the answer's arrival, which the
//! kernel stamps as the data enters the receiving side of the connection (by the kernel's
//! code, on loopback that is while the sender's `send` hands it over).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// The receive time of the latest bytes read from one connection, shared with its reader.
#[derive(Clone, Default)]
pub struct LastArrival(Arc<AtomicU64>);

impl LastArrival {
    /// When the latest bytes read had arrived, if the kernel stamped any.
    pub fn get(&self) -> Option<Instant> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(to_instant(Duration::from_nanos(ns))),
        }
    }

    /// Notes a read's receive time; a read without one forgets the time before it.
    fn set(&self, since_unix_epoch: Option<Duration>) {
        self.0.store(since_unix_epoch.map_or(0, |d| d.as_nanos() as u64), Ordering::Relaxed);
    }
}

/// The kernel stamps with the wall clock; the generator measures with `Instant`. Read both
/// now and take the difference: the two do not drift apart within a run.
fn to_instant(since_unix_epoch: Duration) -> Instant {
    let (now, wall) = (Instant::now(), SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default());
    match wall.checked_sub(since_unix_epoch) {
        Some(ago) => now.checked_sub(ago).unwrap_or(now),
        // Stamped "after" now: the clocks' reads a few nanoseconds apart.
        None => now,
    }
}

/// A TCP connection whose reads, if asked, note the kernel's receive time of what they read.
pub struct TimedStream {
    inner: TcpStream,
    last: Option<LastArrival>,
}

impl TimedStream {
    /// With `last`, asks the kernel to stamp what arrives on `inner`, and each read notes its
    /// time there. The kernel turns stamping on a moment later (a deferred switch shared by
    /// all sockets), so the very first bytes may come without a time. Without, reads are
    /// plain reads.
    pub fn new(inner: TcpStream, last: Option<LastArrival>) -> io::Result<Self> {
        if last.is_none() {
            return Ok(TimedStream { inner, last });
        }
        let on: libc::c_int = 1;
        // SAFETY: the descriptor is open (owned by `inner`), and the option's value is a
        // `c_int` that lives through the call, with its size given.
        let set = unsafe {
            libc::setsockopt(
                inner.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if set != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(TimedStream { inner, last })
    }
}

/// One `recvmsg` into `buf`: the bytes read, and their receive time if the kernel gave one.
fn recv_stamped(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<(usize, Option<Duration>)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // Aligned for `cmsghdr`; room for one timestamp message and more.
    let mut control = [0u64; 16];
    // SAFETY: an all-zero `msghdr` is valid (no name, no vectors, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at `iov` (which points at `buf`, writable for its length) and at
    // `control`, writable for its length; all of them outlive the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the kernel filled `msg_controllen` bytes of `control`; the CMSG macros walk
    // only within them, and a timestamp's data is a `timespec` (read unaligned, which is
    // correct whatever the alignment).
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, stamp))
}

impl AsyncRead for TimedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(last) = &this.last else { return Pin::new(&mut this.inner).poll_read(cx, buf) };
        loop {
            ready!(this.inner.poll_read_ready(cx))?;
            let fd = this.inner.as_raw_fd();
            // SAFETY: `recvmsg` only writes into the unfilled part, and only the `n` bytes it
            // reports are marked initialised below.
            let unfilled = unsafe { buf.unfilled_mut() };
            let room = unfilled.len();
            // A read that filled less than the room drained the socket. tokio's own reads then
            // forget the readiness, so the next read waits without a system call; here the
            // only way to forget it is to answer `WouldBlock` from `try_io`, so the short read
            // is kept aside and reported as one. Otherwise hyper's check for an idle
            // connection after each answer made one more `recvmsg`, which found nothing.
            let mut short = None;
            let read = this.inner.try_io(Interest::READABLE, || {
                let (n, stamp) = recv_stamped(fd, unfilled)?;
                if n > 0 && n < room {
                    short = Some((n, stamp));
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok((n, stamp))
            });
            let (n, stamp) = match (read, short) {
                (_, Some(read)) | (Ok(read), None) => read,
                // Readiness was stale; `try_io` forgot it, so the next wait is real.
                (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => continue,
                (Err(e), None) => return Poll::Ready(Err(e)),
            };
            // SAFETY: the kernel wrote these `n` bytes.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            if n > 0 {
                last.set(stamp);
            }
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn a_read_notes_when_its_bytes_arrived_not_when_they_were_read() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let last = LastArrival::default();
        assert!(last.get().is_none(), "nothing read yet");
        let mut stream = TimedStream::new(client.unwrap(), Some(last.clone())).unwrap();
        let mut server = accepted.unwrap().0;

        // Until the kernel's deferred switch is on, bytes arrive without a time.
        let mut probe = [0u8; 1];
        for tries in 0.. {
            server.write_all(b"p").await.unwrap();
            stream.read_exact(&mut probe).await.unwrap();
            if last.get().is_some() {
                break;
            }
            assert!(tries < 100, "the kernel never stamped a read");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let sent = Instant::now();
        server.write_all(b"hello").await.unwrap();
        // Read well after the bytes arrived: the noted time must be the arrival's.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut buf = [0u8; 16];
        let n = stream.read(&mut buf).await.unwrap();
        let read_at = Instant::now();
        assert_eq!(&buf[..n], b"hello");
        let arrived = last.get().expect("the kernel stamped the bytes");
        assert!(arrived + Duration::from_millis(5) >= sent, "not before the write: {:?}", sent - arrived);
        assert!(read_at.duration_since(arrived) >= Duration::from_millis(250), "stamped at arrival, not at the read");

        // Both ways still work through the wrapper.
        stream.write_all(b"back").await.unwrap();
        let mut back = [0u8; 4];
        server.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
        drop(server);
        assert_eq!(stream.read(&mut buf).await.unwrap(), 0, "end of stream reads as 0");
    }

    #[test]
    fn a_read_without_a_time_forgets_the_time_before_it() {
        let last = LastArrival::default();
        last.set(Some(SystemTime::now().duration_since(UNIX_EPOCH).unwrap()));
        assert!(last.get().is_some());
        last.set(None);
        assert!(last.get().is_none(), "an older answer's time is never given for a newer one");
    }

    #[tokio::test]
    async fn without_a_place_for_the_time_reads_are_plain_reads() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut stream = TimedStream::new(client.unwrap(), None).unwrap();
        accepted.unwrap().0.write_all(b"plain").await.unwrap();
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"plain");
    }
}
