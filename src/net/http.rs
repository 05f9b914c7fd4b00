//! HTTP/1.1 for the daemon, on std alone: one named thread per connection
//! reads requests (head and body bounded in size and in time, keep-alive,
//! chunked bodies, `Expect: 100-continue`) and runs the handler on that
//! same thread, so a long SSE stream occupies only its own connection. It
//! never waits on a client without a deadline before a request is whole:
//! anyone on the machine can connect before authenticating. Also the loopback
//! checks (Host, Origin, bearer token in constant time), JSON responses, and
//! SSE streams written as explicit chunks so each event leaves at once. It
//! knows nothing of MCP.
//!
//! (tiny_http 0.12 was used first; its connection pool can lose a wakeup
//! when two connections arrive together, leaving one queued behind
//! long-lived streams. One thread per connection has no such queue.)

use crate::net::wire::{self, Framing, Side, WireError};
use crate::pool::Limit;
use serde_json::Value;
use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One request, its body already read. Answering it (with one of the
/// functions below, or an [`Sse`] stream) consumes it.
pub struct Request {
    head: wire::Head,
    body: Vec<u8>,
    out: Arc<TcpStream>,
    keep_alive: bool,
    answered: Arc<std::sync::atomic::AtomicBool>,
}

impl Request {
    pub fn method(&self) -> &str {
        self.head.method()
    }
    /// Path and query, as sent.
    pub fn url(&self) -> &str {
        self.head.target()
    }
    pub fn body(&self) -> &[u8] {
        &self.body
    }
    /// The body, taken out whole (no copy on the message path).
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name)
}

type Handler = Arc<dyn Fn(Request) + Send + Sync>;

/// What the server accepts, and how long it waits for a client.
#[derive(Clone)]
pub struct Config {
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Connections served at once.
    pub max_conns: usize,
    /// How long a request head may take: from the connection's accept for
    /// its first request, from the head's first byte for later ones.
    pub head_timeout: Duration,
    /// How long a request body may take, from the end of its head.
    pub body_timeout: Duration,
    /// Checks a request by its head, before its body is read: a refusal
    /// is sent and the connection closed.
    pub guard: Option<Guard>,
}

/// See [`Config::guard`].
pub type Guard = Arc<dyn Fn(&Request) -> Option<Refusal> + Send + Sync>;

/// An answer that refuses a request before its body is read.
pub struct Refusal {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

/// How long a request head may take by default (MCPSHARE_HEAD_TIMEOUT_MS).
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request body may take by default (MCPSHARE_BODY_TIMEOUT_MS).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// [`serve_with`] the default head and body deadlines.
pub fn serve(
    listener: TcpListener,
    max_body: usize,
    max_conns: usize,
    handler: Handler,
) -> io::Result<()> {
    let config = Config {
        max_body,
        max_conns,
        head_timeout: DEFAULT_HEAD_TIMEOUT,
        body_timeout: DEFAULT_BODY_TIMEOUT,
        guard: None,
    };
    serve_with(listener, config, handler)
}

/// Accept connections on `listener` forever, one thread each, at most
/// `config.max_conns` at a time: beyond that, new connections wait in the
/// kernel's queue until one closes, rather than failing for want of
/// descriptors.
pub fn serve_with(listener: TcpListener, config: Config, handler: Handler) -> io::Result<()> {
    static CONN: AtomicU64 = AtomicU64::new(1);
    let open = Limit::new(config.max_conns);
    std::thread::Builder::new()
        .name("http-accept".into())
        .spawn(move || {
            let mut failing = false;
            loop {
                let permit = open.acquire();
                let stream = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) => {
                        // Out of descriptors or memory elsewhere in the
                        // process: the connection stays queued; try again soon.
                        if !std::mem::replace(&mut failing, true) {
                            crate::log!("cannot accept a connection: {e}");
                        }
                        drop(permit);
                        std::thread::sleep(ACCEPT_RETRY);
                        continue;
                    }
                };
                let accepted = Instant::now();
                failing = false;
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let id = CONN.fetch_add(1, Ordering::Relaxed);
                let limit = open.clone();
                let config = config.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("http-conn-{id}"))
                    .spawn(move || {
                        let _permit = permit;
                        connection(stream, accepted, &limit, &config, handler);
                    });
                if let Err(e) = spawned {
                    crate::log!("cannot start a connection thread: {e}");
                }
            }
        })?;
    Ok(())
}

/// How long a write to a client may wait for it to read: a client that
/// stops reading loses its connection (and a GET stream its session).
const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// How long the accept loop pauses after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// How often a connection that waits for a client checks whether a new
/// connection is waiting for its place; if one is, a connection that sent
/// nothing for this long closes.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The longest a closing connection reads what the client still sends, so
/// that the client gets our last answer rather than a reset.
const DRAIN_FOR: Duration = Duration::from_secs(1);

/// Why a [`Patient`] reader stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// Idle between requests while the connection limit was reached.
    Reaped,
    /// Silent for IDLE_CHECK inside a request while the limit was reached.
    Stalled,
    /// The head or body deadline passed.
    Late,
}

/// Reads from a connection, sitting out read timeouts except: while idle
/// between requests with the connection limit reached the timeout ends the
/// connection (`Reaped`), so kept-alive connections cannot starve new ones;
/// inside a request the same goes for a client silent for IDLE_CHECK
/// (`Stalled`), and past `deadline` for any client (`Late`), so that a
/// client sending a request slowly, or half of one, holds a thread for a
/// bounded time only.
struct Patient<'a> {
    stream: &'a TcpStream,
    limit: &'a Limit,
    /// No byte of the next request yet.
    idle: bool,
    /// When the part being read must be in; None while idle between requests.
    deadline: Option<Instant>,
    /// The deadline a head gets from its first byte.
    head_timeout: Duration,
    /// The socket's read timeout now, to set it only when it changes.
    timeout: Duration,
    cut: Option<Cut>,
}

impl Patient<'_> {
    fn stop(&mut self, cut: Cut) -> io::Result<usize> {
        self.cut = Some(cut);
        match cut {
            Cut::Reaped => Ok(0),
            Cut::Stalled | Cut::Late => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request not received in time",
            )),
        }
    }
}

impl Read for Patient<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // Checked before every read, so a client trickling bytes
            // cannot push the deadline back.
            let wait = match self.deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(IDLE_CHECK),
                    _ => return self.stop(Cut::Late),
                },
                None => IDLE_CHECK,
            };
            if wait != self.timeout && self.stream.set_read_timeout(Some(wait)).is_ok() {
                self.timeout = wait;
            }
            match self.stream.read(buf) {
                Ok(n) => {
                    if self.idle && n > 0 {
                        self.idle = false;
                        self.deadline
                            .get_or_insert(Instant::now() + self.head_timeout);
                    }
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.limit.contended() {
                        return self.stop(if self.idle { Cut::Reaped } else { Cut::Stalled });
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn connection(
    stream: TcpStream,
    accepted: Instant,
    limit: &Limit,
    config: &Config,
    handler: Handler,
) {
    let max_body = config.max_body;
    // One descriptor per connection: the reader and every response share it.
    let stream = Arc::new(stream);
    let _ = stream.set_read_timeout(Some(IDLE_CHECK));
    let _ = stream.set_write_timeout(Some(WRITE_DEADLINE));
    let mut reader = BufReader::new(Patient {
        stream: &stream,
        limit,
        idle: false,
        // The first request is due from the accept: a connection opened
        // and left silent is not kept.
        deadline: Some(accepted + config.head_timeout),
        head_timeout: config.head_timeout,
        timeout: IDLE_CHECK,
        cut: None,
    });
    loop {
        // Idle until the next request's first byte (unless it is buffered).
        let idle = reader.buffer().is_empty();
        let p = reader.get_mut();
        p.idle = idle;
        if p.deadline.is_none() && !idle {
            p.deadline = Some(Instant::now() + config.head_timeout);
        }
        let head = match wire::read_head(&mut reader, Side::Request) {
            Ok(Some(h)) => h,
            Ok(None) if reader.get_ref().cut == Some(Cut::Reaped) => {
                return close_unused(&stream);
            }
            Ok(None) => return,
            Err(e) if reader.get_ref().cut.is_some() => return too_slow(&stream, "head", &e),
            Err(e) => return refuse(&stream, &e),
        };
        let framing = match wire::framing(&head, Side::Request) {
            Ok(f) => f,
            Err(e) => return refuse(&stream, &e),
        };
        let expects_continue = head
            .header("Expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        let keep_alive = head.keep_alive();
        let mut req = Request {
            head,
            body: Vec::new(),
            out: stream.clone(),
            keep_alive,
            answered: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        // Host, Origin and the token are checked before any body is read
        // (or asked for with 100 Continue): a refused client sends nothing
        // more that the daemon reads.
        if let Some(refuse) = &config.guard
            && let Some(r) = refuse(&req)
        {
            let extra: Vec<(&str, &str)> =
                r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let _ = raw_response(&stream, r.status, &extra, r.content_type, &r.body, false);
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        if expects_continue {
            let _ = (&*stream).write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        reader.get_mut().deadline = Some(Instant::now() + config.body_timeout);
        let body = match framing {
            Framing::Chunked => wire::read_chunked(&mut reader, max_body),
            Framing::Length(n) if n <= max_body as u64 => {
                let mut b = vec![0; n as usize];
                reader.read_exact(&mut b).map(|()| b).map_err(WireError::Io)
            }
            Framing::Length(_) => Err(WireError::BodyTooLarge),
            // Only a response's framing; a request's never reads so.
            Framing::UntilClose => Err(WireError::Malformed("a request body needs a length")),
        };
        // The handler reads nothing more; the next request's clock starts
        // with its first byte.
        reader.get_mut().deadline = None;
        let body = match body {
            Ok(b) => b,
            Err(WireError::BodyTooLarge) => {
                let msg = format!(
                    "{{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{{\"code\":-32600,\"message\":\"message exceeds {max_body} bytes (MCPSHARE_MAX_MESSAGE_BYTES)\"}}}}"
                );
                let _ = raw_response(&stream, 413, &[], "application/json", msg.as_bytes(), false);
                return;
            }
            Err(e) if reader.get_ref().cut.is_some() => return too_slow(&stream, "body", &e),
            // Closed by the client: nobody to answer.
            Err(WireError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return,
            Err(e) => {
                let why = format!("malformed body: {e}");
                let _ = raw_response(&stream, 400, &[], "text/plain", why.as_bytes(), false);
                return;
            }
        };
        req.body = body;
        let answered = req.answered.clone();
        let keep_alive = req.keep_alive;
        handler(req);
        // A request left unanswered, or a stream cut short, ends the connection.
        if !keep_alive || !answered.load(Ordering::Acquire) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// Close a kept-alive connection that carried no request since its last
/// answer. A client may have sent one at this very moment: the 408 tells it
/// that request was not read (ours send it again), and reading until the
/// client closes keeps its copy of the 408 from being lost to a reset.
fn close_unused(stream: &TcpStream) {
    let _ = raw_response(stream, 408, &[], "", b"", false);
    drain(stream);
}

/// Answer a request whose head or framing the wire refused, and close.
fn refuse(stream: &TcpStream, e: &WireError) {
    let _ = raw_response(
        stream,
        e.status(),
        &[],
        "text/plain",
        e.to_string().as_bytes(),
        false,
    );
}

/// Close a connection whose request did not arrive in time (see [`Cut`]).
fn too_slow(stream: &TcpStream, part: &str, e: &WireError) {
    let msg = format!("request {part}: {e}\n");
    let _ = raw_response(stream, 408, &[], "text/plain", msg.as_bytes(), false);
    drain(stream);
}

/// End our side, then read what the client still sends until it closes,
/// for DRAIN_FOR at most: a client that keeps sending cannot keep us.
fn drain(stream: &TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let until = Instant::now() + DRAIN_FOR;
    let mut sink = [0u8; 4096];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        if !matches!((&*stream).read(&mut sink), Ok(n) if n > 0) {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        415 => "Unsupported Media Type",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn head_text(status: u16, extra: &[(&str, &str)], keep_alive: bool) -> String {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head
}

fn raw_response(
    mut out: &TcpStream,
    status: u16,
    extra: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    out.write_all(&response_bytes(
        status,
        extra,
        content_type,
        body,
        keep_alive,
    ))?;
    out.flush()
}

fn response_bytes(
    status: u16,
    extra: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> Vec<u8> {
    let mut msg = head_text(status, extra, keep_alive);
    if !content_type.is_empty() {
        msg.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    msg.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = msg.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A response the socket did not take at once; [`Unsent::finish`] writes
/// the rest within the connection's write deadline.
pub struct Unsent {
    req: Request,
    rest: Vec<u8>,
}

impl Unsent {
    pub fn finish(self) {
        let mut out = &*self.req.out;
        if out.write_all(&self.rest).and_then(|()| out.flush()).is_ok() {
            self.req.answered.store(true, Ordering::Release);
        }
    }
}

/// Respond with a JSON body already serialized, writing only what the
/// socket takes without waiting: for a thread that must never block on a
/// client (the upstream's reader). What is left comes back as [`Unsent`].
pub fn json_bytes_now(req: Request, status: u16, body: &[u8]) -> Option<Unsent> {
    let bytes = response_bytes(status, &[], "application/json", body, req.keep_alive);
    let out = &*req.out;
    if out.set_nonblocking(true).is_err() {
        return Some(Unsent { req, rest: bytes });
    }
    let mut sent = 0;
    let broken = loop {
        match (&*req.out).write(&bytes[sent..]) {
            Ok(0) => break true,
            Ok(n) => {
                sent += n;
                if sent == bytes.len() {
                    break false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break e.kind() != io::ErrorKind::WouldBlock,
        }
    };
    let blocking = out.set_nonblocking(false).is_ok();
    if broken || !blocking {
        // Left unanswered, the connection is closed by its own thread.
        return None;
    }
    if sent == bytes.len() {
        req.answered.store(true, Ordering::Release);
        return None;
    }
    Some(Unsent {
        rest: bytes[sent..].to_vec(),
        req,
    })
}

fn respond(req: Request, status: u16, extra: &[(&str, &str)], content_type: &str, body: &[u8]) {
    if raw_response(&req.out, status, extra, content_type, body, req.keep_alive).is_ok() {
        req.answered.store(true, Ordering::Release);
    }
}

/// Respond with a JSON body and extra headers.
pub fn json(req: Request, status: u16, body: &Value, extra: &[(&str, &str)]) {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    json_bytes(req, status, &bytes, extra);
}

/// Respond with a JSON body already serialized.
pub fn json_bytes(req: Request, status: u16, body: &[u8], extra: &[(&str, &str)]) {
    respond(req, status, extra, "application/json", body);
}

/// Respond with a body of any type (the console's page and its assets).
pub fn bytes(req: Request, status: u16, content_type: &str, body: &[u8], extra: &[(&str, &str)]) {
    respond(req, status, extra, content_type, body);
}

/// Respond with a status and no body.
pub fn empty(req: Request, status: u16, extra: &[(&str, &str)]) {
    respond(req, status, extra, "", b"");
}

pub fn text(req: Request, status: u16, body: &str) {
    respond(req, status, &[], "text/plain", body.as_bytes());
}

/// A `text/event-stream` response in progress. Each event is written as one
/// HTTP chunk and flushed; `finish` writes the last chunk so the connection
/// can be reused.
pub struct Sse {
    req: Request,
}

impl Sse {
    pub fn start(req: Request, extra: &[(&str, &str)]) -> io::Result<Sse> {
        let mut head = head_text(200, extra, req.keep_alive);
        head.push_str(
            "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\
             Transfer-Encoding: chunked\r\n\r\n",
        );
        (&*req.out).write_all(head.as_bytes())?;
        Ok(Sse { req })
    }

    fn chunk(&mut self, payload: &str) -> io::Result<()> {
        let framed = format!("{:x}\r\n{payload}\r\n", payload.len());
        (&*self.req.out).write_all(framed.as_bytes())
    }

    /// One message event; `data` must be one line (see [`crate::mcp::message`]).
    pub fn event(&mut self, data: &str) -> io::Result<()> {
        self.chunk(&format!("event: message\ndata: {data}\n\n"))
    }

    /// One message event with an id a client can resume from
    /// (`Last-Event-ID`).
    pub fn event_with_id(&mut self, id: &str, data: &str) -> io::Result<()> {
        self.chunk(&format!("id: {id}\nevent: message\ndata: {data}\n\n"))
    }

    /// A priming event: an id and empty data, so that a client can resume
    /// the stream before any message, and how many milliseconds it waits
    /// before reconnecting.
    pub fn prime(&mut self, id: &str, retry_ms: u64) -> io::Result<()> {
        self.chunk(&format!("id: {id}\nretry: {retry_ms}\ndata: \n\n"))
    }

    pub fn comment(&mut self, text: &str) -> io::Result<()> {
        self.chunk(&format!(": {text}\n\n"))
    }

    /// Has the client closed its end? Peeks without consuming anything.
    pub fn client_gone(&self) -> bool {
        let s = &self.req.out;
        if s.set_nonblocking(true).is_err() {
            return false;
        }
        let mut b = [0u8; 1];
        let gone = match s.peek(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        let _ = s.set_nonblocking(false);
        gone
    }

    pub fn finish(self) -> io::Result<()> {
        (&*self.req.out).write_all(b"0\r\n\r\n")?;
        self.req.answered.store(true, Ordering::Release);
        Ok(())
    }
}

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// Host must name loopback with our port (DNS-rebinding defence).
pub fn host_ok(req: &Request, port: u16) -> bool {
    let Some(host) = header(req, "Host") else {
        return false;
    };
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    is_loopback_host(&name.to_ascii_lowercase()) && p.parse::<u16>() == Ok(port)
}

/// Origin may be absent (non-browser clients) or a loopback origin.
pub fn origin_ok(req: &Request) -> bool {
    let Some(origin) = header(req, "Origin") else {
        return true;
    };
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = match rest.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => rest,
    };
    is_loopback_host(&host.to_ascii_lowercase())
}

/// Compare two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn authorized(req: &Request, token: &str) -> bool {
    let Some(value) = header(req, "Authorization") else {
        return false;
    };
    // The scheme is case-insensitive (RFC 9110, section 11.1).
    let Some((scheme, given)) = value.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("Bearer")
        && constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

/// Accept must list both JSON and SSE for POST, SSE for GET.
pub fn accepts(req: &Request, kinds: &[&str]) -> bool {
    let accept = header(req, "Accept").unwrap_or("");
    kinds.iter().all(|k| {
        accept.split(',').any(|a| {
            let a = a.split(';').next().unwrap_or("").trim();
            a == *k || a == "*/*"
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::net::wire::{Framing, Head, read_chunked, read_head};

    // The wire's own tests hold the tables; these keep the server's
    // refusals in view where the server is.
    fn parse(raw: &str) -> Result<Option<Head>, WireError> {
        read_head(&mut BufReader::new(raw.as_bytes()), Side::Request)
    }

    #[test]
    fn heads_parse_with_keep_alive_rules() {
        let h = parse("GET /health HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.method(), h.target(), h.keep_alive()),
            ("GET", "/health", true)
        );
        let h = parse("POST /x HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive());
        let h = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive());
        assert!(parse("").unwrap().is_none());
        assert!(parse("GARBAGE\r\n\r\n").is_err());
        assert!(parse("GET / HTTP/1.1\r\nno colon\r\n\r\n").is_err());
        let huge = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(wire::MAX_HEAD_BYTES)
        );
        assert_eq!(parse(&huge).unwrap_err().status(), 431);
    }

    #[test]
    fn chunked_bodies_decode_within_the_limit() {
        let raw = "4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\n\r\n";
        assert_eq!(
            read_chunked(&mut BufReader::new(raw.as_bytes()), 100).unwrap(),
            b"abcdefg"
        );
        let e = read_chunked(&mut BufReader::new(raw.as_bytes()), 5).unwrap_err();
        assert_eq!(e.status(), 413);
    }

    fn chunked(raw: &[u8]) -> Result<Vec<u8>, WireError> {
        read_chunked(&mut BufReader::new(raw), 1 << 20)
    }

    #[test]
    fn malformed_chunks_are_refused_without_a_panic() {
        // A size that overflows once added to what came before.
        assert!(chunked(b"1\r\na\r\nFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n").is_err());
        assert_eq!(
            chunked(b"1\r\na\r\nFFFFFFFFFFFFFFFFFF\r\n")
                .unwrap_err()
                .status(),
            413
        );
        // Data not followed by CRLF.
        assert!(chunked(b"1\r\nabc\r\n0\r\n\r\n").is_err());
        assert!(chunked(b"").is_err());
        assert!(chunked(b"-1\r\n").is_err());
        assert!(chunked(b"+1\r\na\r\n0\r\n\r\n").is_err());
        assert_eq!(chunked(b"1\r\na\r\n0\r\n\r\n").unwrap(), b"a");
    }

    fn framing_of(raw: &str) -> Result<Framing, WireError> {
        wire::framing(&parse(raw).unwrap().unwrap(), Side::Request)
    }

    #[test]
    fn ambiguous_body_framing_is_refused() {
        let head = "POST /x HTTP/1.1\r\nHost: h\r\n";
        let f = |h: &str| framing_of(&format!("{head}{h}\r\n"));
        assert!(matches!(f("Content-Length: 5\r\n"), Ok(Framing::Length(5))));
        assert!(matches!(f(""), Ok(Framing::Length(0))));
        assert!(matches!(
            f("Transfer-Encoding: chunked\r\n"),
            Ok(Framing::Chunked)
        ));
        assert!(matches!(
            f("Transfer-Encoding: Chunked\r\n"),
            Ok(Framing::Chunked)
        ));
        for bad in [
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: chunked, identity\r\n",
            "Content-Length: +5\r\n",
            "Content-Length: -5\r\n",
            "Content-Length: 5a\r\n",
            "Content-Length: \r\n",
            "Content-Length: 99999999999999999999999\r\n",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
        ] {
            assert!(f(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn whitespace_before_a_header_colon_is_refused() {
        assert!(parse("GET / HTTP/1.1\r\nHost : h\r\n\r\n").is_err());
        assert!(parse("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n").is_err());
        assert!(parse("GET / HTTP/1.1\r\n: h\r\n\r\n").is_err());
        assert!(parse("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n").is_err());
        assert!(parse("GET / HTTP/1.1\r\nHost:h\r\n\r\n").is_ok());
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
