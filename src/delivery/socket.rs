//! The TCP transport under ureq, in place of ureq's own, for fewer system calls per
//! request (issue 22; figures in docs/benchmarks.md). ureq's writes a request's head
//! and body in two `send`s, each its own packet and wake-up of the receiver; sets the
//! socket's timeout before every read and write, though the time left moves by
//! microseconds between them; and checks a pooled connection with three calls
//! (non-blocking on, read, off), twice per request. This one keeps what ureq writes
//! until it waits for the answer and sends it in one `send`, sets a timeout only when
//! the time left has moved by more than [`TIMEOUT_SLACK`], and checks a connection with
//! one non-blocking peek. TLS (rustls) runs on top of it, as on ureq's.
//!
//! A connection writes as ureq's did until it has been back in the pool once: its
//! first request then goes out after the TLS handshake's last message rather than in
//! the same packet (a server that has not turned Nagle's algorithm off would otherwise
//! hold its answer back for the client's delayed ACK, 40 ms).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle,
    Transport,
};
use ureq::Timeout;

/// How far a socket's timeout may be from the time left before it is set again: a
/// thirty-second of the time left, at most this. A hook's timeout is thus kept to
/// within 20 ms, and a run of requests on one connection sets it once.
const TIMEOUT_SLACK: Duration = Duration::from_millis(20);

/// Opens TCP connections to the addresses the resolver allowed, one after another:
/// each address but the last gets half the time left, so that a host whose first
/// address does not answer has its others tried (ureq's own gives a geometric share).
#[derive(Debug, Default)]
pub struct SocketConnector;

impl<In: Transport> Connector<In> for SocketConnector {
    type Out = Either<In, Socket>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(chained) = chained {
            return Ok(Some(Either::A(chained)));
        }
        let stream = connect(details)?;
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let socket = Socket::new(
            stream,
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        // ureq's Agent::shutdown interrupts I/O through this handle.
        let handle: Weak<dyn ShutdownHandle> = Arc::downgrade(&socket.stream) as _;
        (details.register_shutdown)(handle)?;
        Ok(Some(Either::B(socket)))
    }
}

fn connect(details: &ConnectionDetails) -> Result<TcpStream, ureq::Error> {
    let started = Instant::now();
    let budget = if details.timeout.after.is_not_happening() {
        None
    } else {
        Some(*details.timeout.after)
    };
    let addresses: Vec<_> = details.addrs.iter().copied().collect();
    let mut last_error = None;
    for (index, address) in addresses.iter().enumerate() {
        let attempt = match budget {
            None => TcpStream::connect(address),
            Some(budget) => {
                let left = budget.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(ureq::Error::Timeout(Timeout::Connect));
                }
                let share = if index + 1 == addresses.len() {
                    left
                } else {
                    (left / 2).max(Duration::from_millis(10))
                };
                TcpStream::connect_timeout(address, share)
            }
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                // Named as the connect's, whichever deadline it was: the message says
                // the target could not be reached, not that it did not answer.
                last_error = Some(ureq::Error::Timeout(Timeout::Connect));
            }
            // Refused or unroutable concerns this address alone: try the next one.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::HostUnreachable
                        | io::ErrorKind::NetworkUnreachable
                        | io::ErrorKind::NetworkDown
                        | io::ErrorKind::AddrNotAvailable
                ) =>
            {
                last_error = Some(ureq::Error::Io(error));
            }
            Err(error) => return Err(ureq::Error::Io(error)),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        ureq::Error::Io(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "no address to connect to",
        ))
    }))
}

/// One TCP connection.
#[derive(Debug)]
pub struct Socket {
    /// Shared (weakly) with ureq's shutdown handle.
    stream: Arc<TcpStream>,
    buffers: SocketBuffers,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// Back from the pool at least once: requests are kept and sent whole.
    pooled: bool,
}

/// ureq's input buffer, and an output buffer that keeps what ureq transmits until the
/// answer is awaited: [`Buffers::output`] is the free part after what is kept.
#[derive(Debug)]
struct SocketBuffers {
    input: LazyBuffers,
    output: Vec<u8>,
    /// ureq's configured output buffer size: at least this much is always free, and
    /// what is kept is sent once it reaches it.
    output_size: usize,
    kept: usize,
}

impl SocketBuffers {
    fn output_allocated(&mut self) {
        if self.output.is_empty() {
            self.output = vec![0; 2 * self.output_size];
        }
    }
}

impl Buffers for SocketBuffers {
    fn output(&mut self) -> &mut [u8] {
        self.output_allocated();
        &mut self.output[self.kept..]
    }

    fn input(&self) -> &[u8] {
        self.input.input()
    }

    fn input_append_buf(&mut self) -> &mut [u8] {
        self.input.input_append_buf()
    }

    fn input_appended(&mut self, amount: usize) {
        self.input.input_appended(amount)
    }

    fn input_consume(&mut self, amount: usize) {
        self.input.input_consume(amount)
    }

    fn tmp_and_output(&mut self) -> (&mut [u8], &mut [u8]) {
        self.output_allocated();
        let (tmp, _) = self.input.tmp_and_output();
        (tmp, &mut self.output[self.kept..])
    }

    fn can_use_input(&self) -> bool {
        self.input.can_use_input()
    }
}

impl Socket {
    fn new(stream: TcpStream, input_size: usize, output_size: usize) -> Socket {
        Socket {
            stream: Arc::new(stream),
            buffers: SocketBuffers {
                // Its own output buffer goes unused.
                input: LazyBuffers::new(input_size, 1),
                output: Vec::new(),
                output_size,
                kept: 0,
            },
            read_timeout: None,
            write_timeout: None,
            pooled: false,
        }
    }

    /// Sends what is kept.
    fn flush(&mut self, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if self.buffers.kept == 0 {
            return Ok(());
        }
        let timeout = timeout.for_write();
        let left = time_left(&timeout)?;
        let stream = &*self.stream;
        set_timeout(&mut self.write_timeout, left, |t| {
            stream.set_write_timeout(t)
        })?;
        let kept = &self.buffers.output[..self.buffers.kept];
        self.buffers.kept = 0;
        (&*self.stream)
            .write_all(kept)
            .map_err(|error| io_error(error, timeout.reason))
    }
}

impl Transport for Socket {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        time_left(&timeout.for_write())?;
        self.buffers.kept += amount;
        if !self.pooled || self.buffers.kept >= self.buffers.output_size {
            self.flush(timeout)?;
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.flush(timeout)?;
        let timeout = timeout.for_read();
        let left = time_left(&timeout)?;
        let started = Instant::now();
        let stream = &*self.stream;
        set_timeout(&mut self.read_timeout, left, |t| stream.set_read_timeout(t))?;
        let read = loop {
            match (&*self.stream).read(self.buffers.input_append_buf()) {
                // A signal: read again for the time that is left.
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {
                    let Some(left) = left else { continue };
                    let left = left.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(ureq::Error::Timeout(timeout.reason));
                    }
                    stream.set_read_timeout(Some(left))?;
                    self.read_timeout = Some(left);
                }
                result => break result.map_err(|error| io_error(error, timeout.reason))?,
            }
        };
        self.buffers.input_appended(read);
        Ok(read > 0)
    }

    /// Open when a peek finds nothing waiting: a closed connection reads as its end,
    /// and bytes nobody asked for mean the connection cannot be trusted with the next
    /// request.
    fn is_open(&mut self) -> bool {
        // ureq asks when a connection goes back to the pool and when it comes out.
        self.pooled = true;
        let mut byte = 0u8;
        loop {
            // SAFETY: recv writes at most one byte into `byte`, which outlives the call.
            let read = unsafe {
                libc::recv(
                    self.stream.as_raw_fd(),
                    (&mut byte as *mut u8).cast(),
                    1,
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                )
            };
            if read >= 0 {
                return false;
            }
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return true,
                _ => return false,
            }
        }
    }
}

/// The time left, None for none set; a timeout error when it has run out.
fn time_left(timeout: &NextTimeout) -> Result<Option<Duration>, ureq::Error> {
    if timeout.after.is_not_happening() {
        Ok(None)
    } else if timeout.after.is_zero() {
        Err(ureq::Error::Timeout(timeout.reason))
    } else {
        Ok(Some(*timeout.after))
    }
}

/// Sets a socket timeout unless the one set is within [`TIMEOUT_SLACK`] of it.
fn set_timeout(
    current: &mut Option<Duration>,
    wanted: Option<Duration>,
    set: impl FnOnce(Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    if !close_enough(*current, wanted) {
        set(wanted)?;
        *current = wanted;
    }
    Ok(())
}

fn close_enough(current: Option<Duration>, wanted: Option<Duration>) -> bool {
    match (current, wanted) {
        (Some(current), Some(wanted)) => {
            current.abs_diff(wanted) <= (wanted / 32).min(TIMEOUT_SLACK)
        }
        (None, None) => true,
        _ => false,
    }
}

/// A socket timeout reads as "would block" on Linux.
fn io_error(error: io::Error, reason: Timeout) -> ureq::Error {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ureq::Error::Timeout(reason),
        _ => ureq::Error::Io(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use ureq::unversioned::transport::time::Duration as UreqDuration;

    /// A socket connected to a peer on loopback, with buffers of `size` bytes.
    fn pair(size: usize) -> (Socket, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (peer, _) = listener.accept().unwrap();
        (Socket::new(stream, size, size), peer)
    }

    fn within(ms: u64) -> NextTimeout {
        NextTimeout {
            after: UreqDuration::from_millis(ms),
            ..NextTimeout::default()
        }
    }

    /// Writes `bytes` into the socket's output as ureq does, and transmits them.
    fn transmit(socket: &mut Socket, bytes: &[u8]) {
        socket.buffers().output()[..bytes.len()].copy_from_slice(bytes);
        socket.transmit_output(bytes.len(), within(1000)).unwrap();
    }

    fn waiting(peer: &TcpStream) -> Vec<u8> {
        peer.set_nonblocking(true).unwrap();
        let mut buffer = vec![0; 1 << 20];
        let read = match (&*peer).read(&mut buffer) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
            Err(error) => panic!("{error}"),
        };
        buffer.truncate(read);
        buffer
    }

    #[test]
    fn a_request_goes_out_whole_when_its_answer_is_awaited() {
        let (mut socket, mut peer) = pair(1024);
        // A new connection writes at once, as ureq's (a TLS handshake's last message
        // goes out alone).
        transmit(&mut socket, b"first");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(waiting(&peer), b"first");
        // Back from the pool, it keeps the request until the answer is awaited.
        assert!(socket.is_open());
        transmit(&mut socket, b"POST / HTTP/1.1\r\ncontent-length: 4\r\n\r\n");
        transmit(&mut socket, b"body");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            waiting(&peer),
            b"",
            "nothing is sent before the answer is awaited"
        );
        peer.set_nonblocking(false).unwrap();
        peer.write_all(b"HTTP/1.1 200 OK\r\n").unwrap();
        assert!(socket.await_input(within(1000)).unwrap());
        assert_eq!(socket.buffers().input(), b"HTTP/1.1 200 OK\r\n");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            waiting(&peer),
            b"POST / HTTP/1.1\r\ncontent-length: 4\r\n\r\nbody"
        );
    }

    #[test]
    fn a_body_larger_than_the_buffer_goes_out_as_it_is_written_and_in_order() {
        let (mut socket, peer) = pair(1024);
        assert!(socket.is_open());
        let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for chunk in body.chunks(700) {
            transmit(&mut socket, chunk);
            assert!(socket.buffers.kept < 1024, "kept at most a buffer's worth");
        }
        let reader = std::thread::spawn(move || {
            let mut received = vec![0; 5000];
            (&peer).read_exact(&mut received).unwrap();
            (&peer).write_all(b"x").unwrap();
            received
        });
        assert!(socket.await_input(within(1000)).unwrap());
        assert_eq!(reader.join().unwrap(), body);
    }

    #[test]
    fn an_answer_that_does_not_come_times_out_near_the_time_left() {
        let (mut socket, _peer) = pair(1024);
        transmit(&mut socket, b"GET / HTTP/1.1\r\n\r\n");
        let started = Instant::now();
        let error = socket.await_input(within(200)).unwrap_err();
        let took = started.elapsed();
        assert!(matches!(error, ureq::Error::Timeout(_)), "{error:?}");
        assert!(took >= Duration::from_millis(190), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
        let error = socket.await_input(within(0)).unwrap_err();
        assert!(matches!(error, ureq::Error::Timeout(_)), "{error:?}");
    }

    #[test]
    fn a_connection_is_open_until_its_peer_closes_or_says_something_unasked() {
        let (mut socket, peer) = pair(1024);
        assert!(socket.is_open());
        assert!(socket.is_open(), "a check reads nothing");
        drop(peer);
        std::thread::sleep(Duration::from_millis(20));
        assert!(!socket.is_open());

        let (mut socket, peer) = pair(1024);
        (&peer).write_all(b"unasked").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(!socket.is_open());
    }

    #[test]
    fn a_timeout_is_set_again_only_when_it_moved_by_more_than_the_slack() {
        let ms = Duration::from_millis;
        assert!(close_enough(Some(ms(10_000)), Some(ms(9_990))));
        assert!(close_enough(Some(ms(9_990)), Some(ms(10_000))));
        assert!(!close_enough(Some(ms(10_000)), Some(ms(9_970))));
        // Short timeouts keep a thirty-second of themselves: 100 ms within 3 ms.
        assert!(close_enough(Some(ms(100)), Some(ms(97))));
        assert!(!close_enough(Some(ms(100)), Some(ms(96))));
        assert!(!close_enough(None, Some(ms(100))));
        assert!(!close_enough(Some(ms(100)), None));
        assert!(close_enough(None, None));
    }
}
