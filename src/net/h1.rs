//! The bridge's own HTTP/1.1 client for the one call on its hot path, POST
//! to the daemon's MCP endpoint: the request leaves in one write on a
//! kept-alive connection, and sending is apart from receiving, so the thread
//! that reads the client's request can send it and leave the wait for the
//! answer to another. It speaks only what the daemon answers with: a body
//! of known length, or chunks (SSE).

use crate::net::client::{Reply, SendError};
use crate::net::wire::{self, Before, Chunks, Side};
use crate::pool::lock;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Kept-alive connections to one daemon, idle ones ready for reuse.
pub struct Conns {
    addr: SocketAddr,
    connect_timeout: Duration,
    /// How long a reply may keep us waiting for its next byte.
    read_timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<TcpStream>>,
}

/// A request written on a connection; its reply not yet read.
pub struct Sent {
    stream: TcpStream,
    request: Vec<u8>,
    conns: Arc<Conns>,
}

impl Conns {
    pub fn new(
        addr: SocketAddr,
        connect_timeout: Duration,
        read_timeout: Duration,
        max_idle: usize,
    ) -> Arc<Conns> {
        Arc::new(Conns {
            addr,
            connect_timeout,
            read_timeout,
            max_idle,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<TcpStream>> {
        lock(&self.idle)
    }

    /// An idle connection the daemon has not closed, if there is one.
    fn reuse(&self) -> Option<TcpStream> {
        loop {
            let s = self.idle().pop()?;
            // Nothing to read is the one healthy state of an idle connection:
            // an end of stream, an error or a stray byte (a 408) retires it.
            if crate::platform::nothing_to_read(&s) {
                return Some(s);
            }
        }
    }

    fn connect(&self) -> Result<TcpStream, SendError> {
        let s = TcpStream::connect_timeout(&self.addr, self.connect_timeout)
            .map_err(|e| SendError::NotReached(format!("cannot connect to the daemon: {e}")))?;
        let _ = s.set_nodelay(true);
        s.set_read_timeout(Some(self.read_timeout))
            .map_err(|e| SendError::NotReached(e.to_string()))?;
        Ok(s)
    }

    fn put_back(&self, s: TcpStream) {
        let mut idle = self.idle();
        if idle.len() < self.max_idle {
            idle.push(s);
        }
    }

    /// Write `request` (head and body) on an idle connection or a new one.
    /// A reused connection that fails the write was closed by the daemon
    /// before it read anything: the request goes out again on a new one.
    pub fn send(self: &Arc<Self>, request: Vec<u8>) -> Result<Sent, SendError> {
        if let Some(mut s) = self.reuse()
            && s.write_all(&request).is_ok()
        {
            return Ok(self.sent(s, request));
        }
        let s = self.connect_and_write(&request)?;
        Ok(self.sent(s, request))
    }

    /// Write `request` only if an idle connection takes it at once: for a
    /// thread that must not wait on a connect.
    pub fn send_reusing(self: &Arc<Self>, request: &[u8]) -> Option<Sent> {
        let mut s = self.reuse()?;
        s.write_all(request).ok()?;
        Some(self.sent(s, request.to_vec()))
    }

    fn connect_and_write(&self, request: &[u8]) -> Result<TcpStream, SendError> {
        let mut s = self.connect()?;
        s.write_all(request)
            .map_err(|e| before_reply("sending to the daemon", e))?;
        Ok(s)
    }

    fn sent(self: &Arc<Self>, stream: TcpStream, request: Vec<u8>) -> Sent {
        Sent {
            stream,
            request,
            conns: self.clone(),
        }
    }
}

/// A failure before any byte of the reply: not reached when the resend
/// rule says the daemon did not read the request.
fn before_reply(doing: &str, e: io::Error) -> SendError {
    if wire::may_resend(Before::Failed(e.kind())) {
        SendError::NotReached(format!(
            "the daemon closed the connection without reading the request: {e}"
        ))
    } else {
        SendError::Broken(format!("{doing}: {e}"))
    }
}

impl Sent {
    /// Wait up to `timeout` for the first byte of the reply, unless
    /// standard input has something first: true when the reply came first.
    pub fn answers_before_stdin(&self, timeout: Duration) -> bool {
        crate::platform::readable_before_stdin(&self.stream, timeout)
    }

    /// Read the reply's head. A 408 means the daemon closed this connection
    /// as unused without reading the request: it is sent again, on a new
    /// connection, up to `wire::MAX_SENDS` times in all.
    pub fn receive(self) -> Result<Reply, SendError> {
        match self.receive_head() {
            Head::Reply(reply) => reply,
            Head::Unused(again) => again.receive(),
        }
    }

    /// Read the reply's head, leaving a 408's resend (a connect, and a wait
    /// for the answer) to the caller.
    pub fn receive_head(self) -> Head {
        match read_reply(self.stream, &self.conns) {
            Ok(r) if wire::may_resend(Before::Status(r.status)) => Head::Unused(Again {
                request: self.request,
                conns: self.conns,
            }),
            reply => Head::Reply(reply),
        }
    }
}

/// The head of a reply: the reply, or a 408 that calls for sending again.
pub enum Head {
    Reply(Result<Reply, SendError>),
    Unused(Again),
}

/// A request to send again on a new connection.
pub struct Again {
    request: Vec<u8>,
    conns: Arc<Conns>,
}

impl Again {
    /// Send again and read the reply's head, while the resend rule allows
    /// and the request has gone out fewer than `wire::MAX_SENDS` times.
    pub fn receive(self) -> Result<Reply, SendError> {
        for attempt in 2..=wire::MAX_SENDS {
            let s = self.conns.connect_and_write(&self.request)?;
            let reply = read_reply(s, &self.conns)?;
            if !wire::may_resend(Before::Status(reply.status)) || attempt == wire::MAX_SENDS {
                return Ok(reply);
            }
        }
        unreachable!("the last attempt returns")
    }
}

/// Read a reply's head from `stream`, which carried a request just now.
fn read_reply(stream: TcpStream, conns: &Arc<Conns>) -> Result<Reply, SendError> {
    let mut r = BufReader::new(stream);
    // Before any byte of the reply, the resend rule tells a request the
    // daemon never read (not reached) from one it may have acted on.
    match r.fill_buf() {
        Ok([]) => {
            let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed");
            return Err(before_reply("reading the daemon's answer", eof));
        }
        Ok(_) => {}
        Err(e) => return Err(before_reply("reading the daemon's answer", e)),
    }
    let (head, rest) = reply_head(&mut r)?;
    let keep_alive = head.keep_alive() && !matches!(rest, Rest::UntilClose);
    let session = head.header("Mcp-Session-Id").map(str::to_string);
    let content_type = head.header("Content-Type").unwrap_or("").to_string();
    let mut body = Body {
        r: Some(r),
        rest,
        conns: conns.clone(),
        keep_alive,
    };
    if body.rest.ended() {
        // Nothing to read (a 202): the connection is free at once.
        body.done();
    }
    Ok(Reply::new(
        head.status(),
        session,
        content_type,
        Box::new(body),
    ))
}

/// A reply's head, read with the wire's limits and strictness, and what
/// its body holds. Apart from the socket, so the fuzzer reads replies alike.
pub(crate) fn reply_head(r: &mut impl BufRead) -> Result<(wire::Head, Rest), SendError> {
    let head = wire::read_head(r, Side::Response)
        .map_err(broken)?
        .ok_or_else(|| broken("connection closed"))?;
    let rest = match wire::framing(&head, Side::Response).map_err(broken)? {
        wire::Framing::Length(n) => Rest::Length(n),
        wire::Framing::Chunked => Rest::Chunked(Chunks::new()),
        wire::Framing::UntilClose => Rest::UntilClose,
    };
    Ok((head, rest))
}

/// What remains of a reply's body.
pub(crate) enum Rest {
    Length(u64),
    Chunked(Chunks),
    UntilClose,
}

impl Rest {
    /// Is the body wholly read?
    pub(crate) fn ended(&self) -> bool {
        match self {
            Rest::Length(left) => *left == 0,
            Rest::Chunked(c) => c.ended(),
            Rest::UntilClose => false,
        }
    }

    /// Read body bytes into `buf`: 0 at its end (or for an empty `buf`).
    pub(crate) fn read(&mut self, r: &mut impl BufRead, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Rest::Length(left) => {
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                if want == 0 {
                    return Ok(0);
                }
                let n = r.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                *left -= n as u64;
                Ok(n)
            }
            Rest::Chunked(c) => Ok(c.read(r, buf)?),
            Rest::UntilClose => r.read(buf),
        }
    }
}

fn broken(e: impl std::fmt::Display) -> SendError {
    SendError::Broken(format!("reading the daemon's answer: {e}"))
}

/// A reply's body. Read to its end, it hands a kept-alive connection back
/// for reuse; dropped before that, the connection closes.
struct Body {
    r: Option<BufReader<TcpStream>>,
    rest: Rest,
    conns: Arc<Conns>,
    keep_alive: bool,
}

impl Body {
    fn done(&mut self) {
        if let Some(r) = self.r.take()
            && self.keep_alive
            && r.buffer().is_empty()
        {
            self.conns.put_back(r.into_inner());
        }
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(r) = self.r.as_mut() else {
            return Ok(0);
        };
        let n = self.rest.read(r, buf)?;
        if self.rest.ended() {
            self.done();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::net::TcpListener;
    use std::sync::mpsc::channel;

    fn post(conns: &Arc<Conns>) -> Result<(u16, Vec<u8>), SendError> {
        let port = conns.addr.port();
        let req =
            format!("POST /x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 2\r\n\r\n{{}}");
        let reply = conns.send(req.into_bytes())?.receive()?;
        let status = reply.status;
        Ok((status, reply.bytes(1024)?))
    }

    /// With room for one connection, a kept-alive idle one is closed (408)
    /// for a newcomer, and its owner's next request still gets through.
    #[test]
    fn an_idle_connection_yields_to_a_waiting_one() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = Arc::new(|req| crate::net::http::json(req, 200, &json!({"ok": true}), &[]));
        crate::net::http::serve(listener, 1024, 1, handler).unwrap();
        let t = Duration::from_secs(10);
        let a = Conns::new(addr, t, t, 8);
        assert_eq!(post(&a).unwrap(), (200, br#"{"ok":true}"#.to_vec()));
        assert_eq!(a.idle().len(), 1, "the connection is kept alive");

        let (done_tx, done_rx) = channel();
        std::thread::spawn(move || {
            let b = Conns::new(addr, t, t, 8);
            let _ = done_tx.send(post(&b).map(|r| r.0));
        });
        let b = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("B was starved");
        assert_eq!(b.unwrap(), 200);
        // A's idle connection was closed with a 408: A notices and reconnects.
        assert_eq!(post(&a).unwrap().0, 200);
    }

    /// A connection reset before the reply's first byte means the daemon
    /// closed it with the request unread (a daemon exiting): the request
    /// never reached it, and the caller may send it anew.
    #[test]
    fn a_reset_before_the_reply_is_not_reached() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            // Wait for the request, then close with it unread: a reset.
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.peek(&mut [0u8; 1]).unwrap();
        });
        let t = Duration::from_secs(10);
        let conns = Conns::new(addr, t, t, 8);
        let r = post(&conns);
        server.join().unwrap();
        assert!(matches!(r, Err(SendError::NotReached(_))), "{r:?}");
    }

    /// A server that answers each connection with `answers` in turn, after
    /// reading a request; what it read comes back from the join.
    fn scripted(answers: Vec<Vec<u8>>) -> (SocketAddr, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for answer in answers {
                let (mut s, _) = listener.accept().unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                s.write_all(&answer).unwrap();
            }
            seen
        });
        (addr, server)
    }

    /// The client reads replies as strictly as the server reads requests.
    #[test]
    fn an_ambiguous_or_oversized_reply_head_is_refused() {
        let many: String = (0..=wire::MAX_HEADER_LINES)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok"
                .to_string(),
            "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok".to_string(),
            "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok".to_string(),
            format!("HTTP/1.1 200 OK\r\n{many}Content-Length: 2\r\n\r\nok"),
        ] {
            let (addr, server) = scripted(vec![bad.clone().into_bytes()]);
            let t = Duration::from_secs(10);
            let r = post(&Conns::new(addr, t, t, 8));
            server.join().unwrap();
            assert!(matches!(r, Err(SendError::Broken(_))), "{bad:?}: {r:?}");
        }
        // A chunk not followed by its CRLF fails the body's read.
        let (addr, server) = scripted(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n".to_vec(),
        ]);
        let t = Duration::from_secs(10);
        let r = post(&Conns::new(addr, t, t, 8));
        server.join().unwrap();
        assert!(matches!(r, Err(SendError::Broken(_))), "{r:?}");
    }

    /// A connection closed after the request went out, before any byte of
    /// the reply, may follow a request the daemon read (it was killed
    /// mid-call): not sent again, and not called unread.
    #[test]
    fn an_end_of_stream_before_the_reply_is_broken_and_not_resent() {
        let (addr, server) = scripted(vec![Vec::new()]);
        let t = Duration::from_secs(10);
        let r = post(&Conns::new(addr, t, t, 8));
        let seen = server.join().unwrap();
        assert!(matches!(r, Err(SendError::Broken(_))), "{r:?}");
        assert_eq!(seen.len(), 1, "sent once");
    }

    /// A request that meets a 408 (the daemon closed the connection as
    /// unused just as it went out) is sent again on a new connection.
    #[test]
    fn a_request_that_meets_a_408_goes_out_again() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for answer in [
                "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            ] {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                s.write_all(answer.as_bytes()).unwrap();
            }
            seen
        });
        let t = Duration::from_secs(10);
        let conns = Conns::new(addr, t, t, 8);
        assert_eq!(post(&conns).unwrap(), (200, b"ok".to_vec()));
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], seen[1], "the same request, sent twice");
    }

    /// An empty reply (202 to a notification) frees its connection at once,
    /// unread, and the next request reuses it.
    #[test]
    fn an_empty_reply_frees_its_connection_for_the_next_request() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = Arc::new(|req| crate::net::http::empty(req, 202, &[]));
        crate::net::http::serve(listener, 1024, 4, handler).unwrap();
        let t = Duration::from_secs(10);
        let conns = Conns::new(addr, t, t, 8);
        let req = format!("POST /x HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\n\r\n{{}}");
        let reply = conns
            .send(req.clone().into_bytes())
            .unwrap()
            .receive()
            .unwrap();
        assert_eq!(reply.status, 202);
        assert_eq!(
            conns.idle().len(),
            1,
            "back in the pool before the reply is dropped"
        );
        let first = conns.idle()[0].local_addr().unwrap();
        drop(reply);
        let again = conns.send(req.into_bytes()).unwrap();
        assert_eq!(
            again.stream.local_addr().unwrap(),
            first,
            "the same connection"
        );
        assert_eq!(again.receive().unwrap().status, 202);
    }
}
