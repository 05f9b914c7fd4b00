//! The bridge's own HTTP/1.1 client for the one call on its hot path, POST
//! to the daemon's MCP endpoint: the request leaves in one write on a
//! kept-alive connection, and sending is apart from receiving, so the thread
//! that reads the client's request can send it and leave the wait for the
//! answer to another. It speaks only what the daemon answers with: a body
//! of known length, or chunks (SSE).

use crate::net::client::{Reply, SendError};
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

/// Answers sent this many times over are given up on (see `receive`).
const MAX_SENDS: usize = 3;

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
        let mut s = self.connect()?;
        s.write_all(&request)
            .map_err(|e| SendError::Broken(format!("sending to the daemon: {e}")))?;
        Ok(self.sent(s, request))
    }

    /// Write `request` only if an idle connection takes it at once: for a
    /// thread that must not wait on a connect.
    pub fn send_reusing(self: &Arc<Self>, request: &[u8]) -> Option<Sent> {
        let mut s = self.reuse()?;
        s.write_all(request).ok()?;
        Some(self.sent(s, request.to_vec()))
    }

    fn sent(self: &Arc<Self>, stream: TcpStream, request: Vec<u8>) -> Sent {
        Sent {
            stream,
            request,
            conns: self.clone(),
        }
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
    /// connection, up to `MAX_SENDS` times in all.
    pub fn receive(self) -> Result<Reply, SendError> {
        match self.receive_head() {
            Head::Reply(reply) => reply,
            Head::Unused(again) => again.receive(),
        }
    }

    /// Read the reply's head, leaving a 408's resend (a connect, and a wait
    /// for the answer) to the caller.
    pub fn receive_head(self) -> Head {
        match read_head(self.stream, &self.conns) {
            Ok(r) if r.status == 408 => Head::Unused(Again {
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
    /// Send again and read the reply's head, while it is a 408 and the
    /// request has gone out fewer than `MAX_SENDS` times.
    pub fn receive(self) -> Result<Reply, SendError> {
        for attempt in 2..=MAX_SENDS {
            let mut s = self.conns.connect()?;
            s.write_all(&self.request)
                .map_err(|e| SendError::Broken(format!("sending to the daemon: {e}")))?;
            let reply = read_head(s, &self.conns)?;
            if reply.status != 408 || attempt == MAX_SENDS {
                return Ok(reply);
            }
        }
        unreachable!("the last attempt returns")
    }
}

fn broken(e: impl std::fmt::Display) -> SendError {
    SendError::Broken(format!("reading the daemon's answer: {e}"))
}

fn read_line(r: &mut impl BufRead) -> Result<String, SendError> {
    let mut line = String::new();
    match r.take(64 * 1024).read_line(&mut line) {
        Ok(0) => Err(broken("connection closed")),
        Ok(_) if !line.ends_with('\n') => Err(broken("header line too long or cut short")),
        Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_string()),
        Err(e) => Err(broken(e)),
    }
}

fn read_head(stream: TcpStream, conns: &Arc<Conns>) -> Result<Reply, SendError> {
    let mut r = BufReader::new(stream);
    // A reset before any byte of the reply: the daemon closed the
    // connection with the request unread (it was exiting), so the request
    // never reached it. An end of stream instead may follow a request that
    // was read, and stays `Broken`.
    if let Err(e) = r.fill_buf()
        && e.kind() == io::ErrorKind::ConnectionReset
    {
        return Err(SendError::NotReached(format!(
            "the daemon closed the connection without reading the request: {e}"
        )));
    }
    let status_line = read_line(&mut r)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| broken(format!("bad status line {status_line:?}")))?;
    let (mut length, mut chunked, mut keep_alive) = (None, false, true);
    let (mut session, mut content_type) = (None, String::new());
    for _ in 0..100 {
        let line = read_line(&mut r)?;
        if line.is_empty() {
            let framing = match (chunked, length) {
                (true, _) => Framing::Chunked { left: 0 },
                (false, Some(n)) => Framing::Length(n),
                (false, None) => {
                    keep_alive = false;
                    Framing::UntilClose
                }
            };
            let mut body = Body {
                r: Some(r),
                framing,
                conns: conns.clone(),
                keep_alive,
            };
            if matches!(body.framing, Framing::Length(0)) {
                // Nothing to read (a 202): the connection is free at once.
                body.done();
            }
            return Ok(Reply::new(status, session, content_type, Box::new(body)));
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(broken(format!("bad header line {line:?}")));
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = Some(v.parse::<u64>().map_err(broken)?),
            "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
            "connection" => keep_alive = !v.eq_ignore_ascii_case("close"),
            "mcp-session-id" => session = Some(v.to_string()),
            "content-type" => content_type = v.to_string(),
            _ => {}
        }
    }
    Err(broken("too many headers"))
}

enum Framing {
    Length(u64),
    /// `left` bytes remain of the current chunk; 0 before the next size line.
    Chunked {
        left: u64,
    },
    UntilClose,
}

/// A reply's body. Read to its end, it hands a kept-alive connection back
/// for reuse; dropped before that, the connection closes.
struct Body {
    r: Option<BufReader<TcpStream>>,
    framing: Framing,
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

    fn chunk_line(r: &mut BufReader<TcpStream>) -> io::Result<String> {
        read_line(r).map_err(|e| io::Error::other(e.to_string()))
    }
}

/// Read at most `left` bytes (at least one) and count them off `left`.
fn read_within(r: &mut impl Read, buf: &mut [u8], left: &mut u64) -> io::Result<usize> {
    let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
    let n = r.read(&mut buf[..want])?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    *left -= n as u64;
    Ok(n)
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(r) = self.r.as_mut() else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.framing {
            Framing::Length(0) => {
                self.done();
                Ok(0)
            }
            Framing::Length(left) => {
                let n = read_within(r, buf, left)?;
                if *left == 0 {
                    self.done();
                }
                Ok(n)
            }
            Framing::Chunked { left } => {
                if *left == 0 {
                    let line = Body::chunk_line(r)?;
                    let size = crate::net::http::chunk_size(&line)
                        .ok_or_else(|| io::Error::other(format!("bad chunk size {line:?}")))?;
                    if size == 0 {
                        while !Body::chunk_line(r)?.is_empty() {}
                        self.done();
                        return Ok(0);
                    }
                    *left = size;
                }
                let n = read_within(r, buf, left)?;
                if *left == 0 {
                    let mut crlf = [0u8; 2];
                    r.read_exact(&mut crlf)?;
                }
                Ok(n)
            }
            Framing::UntilClose => r.read(buf),
        }
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
