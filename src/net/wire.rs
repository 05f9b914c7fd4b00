//! HTTP/1.1 as both ends of the loopback wire read it: a head (request or
//! status line and headers) within limits on line length, header count and
//! size, header lookup, the body's framing, chunk decoding, and the one rule
//! for when a request may be sent again. The daemon's server (`http`) and
//! the bridge's client (`h1`, and `client` for its resends) use it alone.
//!
//! It never authenticates or judges what a request asks for (the server's
//! guard does), never reads a body whose size it has not bounded first, and
//! never reads past the end of what it was asked for (the next request or
//! reply on a kept-alive connection stays in the reader).

use std::io::{self, BufRead, Read};
use std::ops::Range;

/// Longest line in a head (the request or status line, or one header),
/// and longest chunk-size line, terminator included.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Longest head, start line and headers together; also what a chunked body
/// may spend on framing (size lines, CRLFs, trailers) beyond its data.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header lines in a head, and trailer lines after a chunked body.
pub const MAX_HEADER_LINES: usize = 100;
/// Times a request goes out in all while [`may_resend`] allows it.
pub const MAX_SENDS: usize = 3;

/// Why a head or a body was not read.
#[derive(Debug)]
pub enum WireError {
    /// The read failed, or the peer closed mid-way (`UnexpectedEof`).
    Io(io::Error),
    /// Not HTTP/1.1 as this side reads it, or readable two ways.
    Malformed(&'static str),
    /// A head past [`MAX_LINE_BYTES`], [`MAX_HEAD_BYTES`] or [`MAX_HEADER_LINES`].
    HeadTooLarge(&'static str),
    /// A body, or a size announcing one, past the limit it is read with.
    BodyTooLarge,
}

impl WireError {
    /// The status a server answers this with.
    pub fn status(&self) -> u16 {
        match self {
            WireError::Io(_) | WireError::Malformed(_) => 400,
            WireError::HeadTooLarge(_) => 431,
            WireError::BodyTooLarge => 413,
        }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Io(e) => write!(f, "{e}"),
            WireError::Malformed(why) | WireError::HeadTooLarge(why) => f.write_str(why),
            WireError::BodyTooLarge => f.write_str("body too large"),
        }
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> WireError {
        WireError::Io(e)
    }
}

impl From<WireError> for io::Error {
    fn from(e: WireError) -> io::Error {
        match e {
            WireError::Io(e) => e,
            e => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        }
    }
}

fn cut_short() -> WireError {
    WireError::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed inside the head",
    ))
}

/// Which end's head is read: a request's (server) or a response's (client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

/// A head, kept as its text with the places of its parts: one allocation
/// for the text and one for the header list, whatever the head holds.
#[derive(Debug)]
pub struct Head {
    text: String,
    /// Request: method, target, version. Response: version, status, reason.
    start: [Range<usize>; 3],
    /// Name and value (trimmed) of each header, in order.
    headers: Vec<(Range<usize>, Range<usize>)>,
    /// A response's status; 0 for a request.
    status: u16,
}

impl Head {
    pub fn method(&self) -> &str {
        &self.text[self.start[0].clone()]
    }
    /// A request's path and query, as sent.
    pub fn target(&self) -> &str {
        &self.text[self.start[1].clone()]
    }
    pub fn version(&self) -> &str {
        match self.status {
            0 => &self.text[self.start[2].clone()],
            _ => &self.text[self.start[0].clone()],
        }
    }
    /// A response's status code.
    pub fn status(&self) -> u16 {
        self.status
    }
    /// The first header of this name (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }
    /// Every header of this name, in order.
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        let text = self.text.as_str();
        self.headers
            .iter()
            .filter(move |(k, _)| text[k.clone()].eq_ignore_ascii_case(name))
            .map(move |(_, v)| &text[v.clone()])
    }
    /// May the connection carry another exchange after this one?
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("Connection").unwrap_or("");
        let has = |token: &str| {
            connection
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        match self.version() {
            "HTTP/1.0" => has("keep-alive"),
            _ => !has("close"),
        }
    }
}

/// Append one line (terminator included) to `buf`, at most `limit` bytes:
/// its length, 0 at the end of the stream before any byte.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> Result<usize, WireError> {
    let n = r.by_ref().take(limit as u64 + 1).read_until(b'\n', buf)?;
    if n > limit {
        return Err(if limit >= MAX_LINE_BYTES {
            WireError::HeadTooLarge("line too long")
        } else {
            WireError::HeadTooLarge("head too large")
        });
    }
    if n > 0 && buf.last() != Some(&b'\n') {
        return Err(cut_short());
    }
    Ok(n)
}

/// The line that ends at `buf`'s end, without its CR LF.
fn content(buf: &[u8], start: usize) -> Range<usize> {
    let mut end = buf.len();
    while end > start && matches!(buf[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    start..end
}

fn trim(buf: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && matches!(buf[r.start], b' ' | b'\t') {
        r.start += 1;
    }
    while r.end > r.start && matches!(buf[r.end - 1], b' ' | b'\t') {
        r.end -= 1;
    }
    r
}

/// Read one head: None when the stream ends before its first byte. A
/// request's may follow blank lines; a response's may not.
pub fn read_head(r: &mut impl BufRead, side: Side) -> Result<Option<Head>, WireError> {
    // Sized for the daemon's and the bridge's heads: one allocation each.
    let mut buf = Vec::with_capacity(512);
    let line = loop {
        let start = buf.len();
        let left = MAX_HEAD_BYTES - start;
        if read_line(r, &mut buf, left.min(MAX_LINE_BYTES))? == 0 {
            if start == 0 {
                return Ok(None);
            }
            return Err(cut_short());
        }
        let line = content(&buf, start);
        if !line.is_empty() || side == Side::Response {
            break line;
        }
    };
    let (start, status) = start_line(&buf, line, side)?;
    let mut headers = Vec::with_capacity(8);
    loop {
        let from = buf.len();
        let left = MAX_HEAD_BYTES - from;
        if read_line(r, &mut buf, left.min(MAX_LINE_BYTES))? == 0 {
            return Err(cut_short());
        }
        let line = content(&buf, from);
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADER_LINES {
            return Err(WireError::HeadTooLarge("too many header lines"));
        }
        let Some(colon) = buf[line.clone()].iter().position(|&b| b == b':') else {
            return Err(WireError::Malformed("malformed header"));
        };
        let name = line.start..line.start + colon;
        // No whitespace before the colon (nor a folded line): two parsers
        // could read such a header two ways.
        if name.is_empty() || buf[name.clone()].iter().any(u8::is_ascii_whitespace) {
            return Err(WireError::Malformed("malformed header name"));
        }
        headers.push((name.clone(), trim(&buf, name.end + 1..line.end)));
    }
    let text = String::from_utf8(buf).map_err(|_| WireError::Malformed("head is not UTF-8"))?;
    Ok(Some(Head {
        text,
        start,
        headers,
        status,
    }))
}

/// The three parts of a start line, and a response's status.
fn start_line(
    buf: &[u8],
    line: Range<usize>,
    side: Side,
) -> Result<([Range<usize>; 3], u16), WireError> {
    let bytes = &buf[line.clone()];
    let mut spaces = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b' ')
        .map(|(i, _)| line.start + i);
    let (a, b) = match (spaces.next(), spaces.next()) {
        (Some(a), Some(b)) => (a, b),
        // A response's reason phrase may be missing, space and all.
        (Some(a), None) if side == Side::Response => (a, line.end),
        _ => return Err(WireError::Malformed("malformed start line")),
    };
    let parts = [line.start..a, a + 1..b, (b + 1).min(line.end)..line.end];
    let part = |i: usize| &buf[parts[i].clone()];
    match side {
        Side::Request => {
            if spaces.next().is_some() {
                return Err(WireError::Malformed("malformed request line"));
            }
            if !part(2).starts_with(b"HTTP/1.") || part(0).is_empty() || !part(1).starts_with(b"/")
            {
                return Err(WireError::Malformed("unsupported request line"));
            }
            Ok((parts, 0))
        }
        Side::Response => {
            let code = part(1);
            if !part(0).starts_with(b"HTTP/1.")
                || code.len() != 3
                || !code.iter().all(u8::is_ascii_digit)
                || code[0] == b'0'
            {
                return Err(WireError::Malformed("malformed status line"));
            }
            let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
            Ok((parts, status))
        }
    }
}

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    /// A response with neither header: its body ends with the connection.
    UntilClose,
}

/// The body's framing, refusing what two parsers could read two ways: both
/// Transfer-Encoding and Content-Length, a Transfer-Encoding other than
/// exactly `chunked`, a Content-Length that is not plain digits, or two of
/// them. The same for requests and responses.
pub fn framing(head: &Head, side: Side) -> Result<Framing, WireError> {
    let mut te = head.all("Transfer-Encoding");
    let mut cl = head.all("Content-Length");
    let framing = match (te.next(), te.next(), cl.next(), cl.next()) {
        (Some(_), _, Some(_), _) => {
            return Err(WireError::Malformed(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        (Some(t), None, None, _) if t.eq_ignore_ascii_case("chunked") => Framing::Chunked,
        (Some(_), ..) => {
            return Err(WireError::Malformed(
                "Transfer-Encoding must be exactly chunked",
            ));
        }
        (None, _, Some(_), Some(_)) => {
            return Err(WireError::Malformed("more than one Content-Length"));
        }
        (None, _, Some(n), None) => {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(WireError::Malformed("Content-Length must be digits"));
            }
            Framing::Length(n.parse().map_err(|_| WireError::BodyTooLarge)?)
        }
        (None, _, None, _) => match side {
            Side::Request => Framing::Length(0),
            Side::Response => Framing::UntilClose,
        },
    };
    // These responses have no body, whatever their headers say.
    if side == Side::Response && matches!(head.status(), 100..=199 | 204 | 304) {
        return Ok(Framing::Length(0));
    }
    Ok(framing)
}

/// The size a chunk-size line announces (hexadecimal, extensions ignored);
/// a size past u64 is past every limit.
fn chunk_size(line: &[u8]) -> Result<u64, WireError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or(b"");
    let digits = &digits[trim(digits, 0..digits.len())];
    // Hexadecimal digits only: from_str_radix would take a leading '+'.
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(WireError::Malformed("bad chunk size"));
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let d = (d as char).to_digit(16).unwrap_or(0);
        n.checked_mul(16)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or(WireError::BodyTooLarge)
    })
}

/// Decodes a chunked body as it is read, in whole (the server,
/// [`read_chunked`]) or piece by piece (the client, [`Chunks::read`]).
#[derive(Debug, Default)]
pub struct Chunks {
    /// Bytes left of the current chunk; 0 before the next size line.
    left: u64,
    /// Data bytes so far, and bytes spent on framing.
    data: u64,
    framing: u64,
    ended: bool,
    /// The size line being read (kept across lines: one allocation).
    line: Vec<u8>,
}

impl Chunks {
    pub fn new() -> Chunks {
        Chunks::default()
    }

    /// Has the last chunk and its trailer been read?
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Read one framing line into `self.line`, charged to the framing
    /// budget: MAX_HEAD_BYTES beyond the data so far.
    fn framing_line(&mut self, r: &mut impl BufRead) -> Result<Range<usize>, WireError> {
        let budget = (MAX_HEAD_BYTES as u64 + self.data).saturating_sub(self.framing);
        let limit = usize::try_from(budget)
            .unwrap_or(usize::MAX)
            .min(MAX_LINE_BYTES);
        self.line.clear();
        let n = match read_line(r, &mut self.line, limit) {
            Ok(0) => return Err(WireError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => n,
            Err(WireError::HeadTooLarge(_)) => {
                return Err(WireError::Malformed("chunk framing too long"));
            }
            Err(WireError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(WireError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            Err(e) => return Err(e),
        };
        self.framing += n as u64;
        Ok(content(&self.line, 0))
    }

    /// Read the next chunk's size line: its size, or None once the last
    /// chunk and the trailer (bounded, and ignored) are read.
    pub fn next_chunk(&mut self, r: &mut impl BufRead) -> Result<Option<u64>, WireError> {
        if self.ended {
            return Ok(None);
        }
        let line = self.framing_line(r)?;
        let size = chunk_size(&self.line[line])?;
        if size > 0 {
            self.left = size;
            return Ok(Some(size));
        }
        for _ in 0..=MAX_HEADER_LINES {
            if self.framing_line(r)?.is_empty() {
                self.ended = true;
                return Ok(None);
            }
        }
        Err(WireError::Malformed("too many trailer lines"))
    }

    /// Count `n` bytes of the current chunk as read; after its last byte,
    /// read the CRLF that must follow.
    fn consumed(&mut self, r: &mut impl BufRead, n: u64) -> Result<(), WireError> {
        self.left -= n;
        self.data += n;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
            self.framing += 2;
            if &crlf != b"\r\n" {
                return Err(WireError::Malformed("chunk data not followed by CRLF"));
            }
        }
        Ok(())
    }

    /// Read body bytes into `buf`: 0 at the body's end (or for an empty `buf`).
    pub fn read(&mut self, r: &mut impl BufRead, buf: &mut [u8]) -> Result<usize, WireError> {
        if buf.is_empty() || self.ended {
            return Ok(0);
        }
        if self.left == 0 && self.next_chunk(r)?.is_none() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(WireError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        self.consumed(r, n as u64)?;
        Ok(n)
    }
}

/// A whole chunked body, refused past `max` bytes before reading the chunk
/// that would take it there.
pub fn read_chunked(r: &mut impl BufRead, max: usize) -> Result<Vec<u8>, WireError> {
    let mut body = Vec::new();
    let mut chunks = Chunks::new();
    while let Some(size) = chunks.next_chunk(r)? {
        let end = usize::try_from(size)
            .ok()
            .and_then(|n| body.len().checked_add(n))
            .filter(|&end| end <= max)
            .ok_or(WireError::BodyTooLarge)?;
        let start = body.len();
        body.resize(end, 0);
        r.read_exact(&mut body[start..])?;
        chunks.consumed(r, size)?;
    }
    Ok(body)
}

/// What a request met before any byte of its reply, or instead of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Before {
    /// A reply began with this status.
    Status(u16),
    /// Writing the request or waiting for the reply failed (an end of the
    /// stream is `UnexpectedEof`).
    Failed(io::ErrorKind),
}

/// The one resend rule: may a request that met `what` go out again,
/// because the daemon certainly did not act on it?
///
/// - 408 as the reply: the daemon closed the connection as unused without
///   reading the request (`http::close_unused`).
/// - A reset or a broken pipe before any byte of the reply: the daemon
///   closed with our bytes unread (exiting); it reads a request whole
///   before acting on it.
///
/// Never an end of stream, even on a reused kept-alive connection: a daemon
/// killed after reading the request closes its end just as one closing an
/// idle connection would, so the request may have run.
pub fn may_resend(what: Before) -> bool {
    use io::ErrorKind::*;
    match what {
        Before::Status(status) => status == 408,
        Before::Failed(ConnectionReset | BrokenPipe) => true,
        Before::Failed(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn head(raw: &[u8], side: Side) -> Result<Option<Head>, WireError> {
        read_head(&mut BufReader::new(raw), side)
    }

    /// The error's kind, as a word a table can hold.
    fn kind(e: &WireError) -> &'static str {
        match e {
            WireError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => "eof",
            WireError::Io(_) => "io",
            WireError::Malformed(_) => "malformed",
            WireError::HeadTooLarge(_) => "too large",
            WireError::BodyTooLarge => "body too large",
        }
    }

    fn long_header(n: usize) -> String {
        format!("X: {}\r\n", "a".repeat(n - 5))
    }

    fn many_headers(n: usize) -> String {
        (0..n).map(|i| format!("X-{i}: v\r\n")).collect()
    }

    /// Refusals and limits every head meets, request or response, after
    /// its start line.
    fn header_refusals() -> Vec<(String, &'static str, u16)> {
        vec![
            ("no colon\r\n\r\n".into(), "malformed", 400),
            ("Host : h\r\n\r\n".into(), "malformed", 400),
            ("Host\t: h\r\n\r\n".into(), "malformed", 400),
            (": h\r\n\r\n".into(), "malformed", 400),
            ("Host: h\r\n folded\r\n\r\n".into(), "malformed", 400),
            ("X: \r\n".into(), "eof", 400),
            ("X: cut".into(), "eof", 400),
            (
                format!("{}\r\n", long_header(MAX_LINE_BYTES + 1)),
                "too large",
                431,
            ),
            (
                format!("{}\r\n", many_headers(MAX_HEADER_LINES + 1)),
                "too large",
                431,
            ),
            (
                format!(
                    "{}\r\n",
                    long_header(MAX_LINE_BYTES).repeat(MAX_HEAD_BYTES / MAX_LINE_BYTES)
                ),
                "too large",
                431,
            ),
        ]
    }

    #[test]
    fn request_heads_are_refused_by_kind_and_status() {
        let mut table: Vec<(String, &str, u16)> = vec![
            ("GARBAGE\r\n\r\n".into(), "malformed", 400),
            ("GET /\r\n\r\n".into(), "malformed", 400),
            ("GET / HTTP/1.1 x\r\n\r\n".into(), "malformed", 400),
            ("GET  / HTTP/1.1\r\n\r\n".into(), "malformed", 400),
            ("GET x HTTP/1.1\r\n\r\n".into(), "malformed", 400),
            ("GET / HTTP/2\r\n\r\n".into(), "malformed", 400),
            (" / HTTP/1.1\r\n\r\n".into(), "malformed", 400),
            ("GET / HTTP/1.1".into(), "eof", 400),
            (
                format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_LINE_BYTES)),
                "too large",
                431,
            ),
            // Blank lines before a request count toward its head.
            ("\r\n".repeat(MAX_HEAD_BYTES / 2 + 1), "too large", 431),
        ];
        for (rest, k, s) in header_refusals() {
            table.push((format!("GET / HTTP/1.1\r\n{rest}"), k, s));
        }
        for (raw, want, status) in table {
            let e = head(raw.as_bytes(), Side::Request).expect_err(&raw[..raw.len().min(60)]);
            assert_eq!(
                (kind(&e), e.status()),
                (want, status),
                "{:?}: {e}",
                &raw[..raw.len().min(60)]
            );
        }
    }

    #[test]
    fn response_heads_are_refused_by_kind() {
        let mut table: Vec<(String, &str)> = vec![
            ("\r\nHTTP/1.1 200 OK\r\n\r\n".into(), "malformed"),
            ("HTTP/1.1\r\n\r\n".into(), "malformed"),
            ("HTTP/1.1 20 OK\r\n\r\n".into(), "malformed"),
            ("HTTP/1.1 2000 OK\r\n\r\n".into(), "malformed"),
            ("HTTP/1.1 +20 OK\r\n\r\n".into(), "malformed"),
            ("HTTP/1.1 099 OK\r\n\r\n".into(), "malformed"),
            ("HTTP/2 200 OK\r\n\r\n".into(), "malformed"),
            ("ICY 200 OK\r\n\r\n".into(), "malformed"),
            ("HTTP/1.1 200 OK".into(), "eof"),
            (
                format!("HTTP/1.1 200 {}\r\n\r\n", "a".repeat(MAX_LINE_BYTES)),
                "too large",
            ),
        ];
        for (rest, k, _) in header_refusals() {
            table.push((format!("HTTP/1.1 200 OK\r\n{rest}"), k));
        }
        for (raw, want) in table {
            let e = head(raw.as_bytes(), Side::Response).expect_err(&raw[..raw.len().min(60)]);
            assert_eq!(kind(&e), want, "{:?}: {e}", &raw[..raw.len().min(60)]);
        }
    }

    #[test]
    fn a_head_that_is_not_utf8_is_refused_on_both_sides() {
        for (raw, side) in [
            (&b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n"[..], Side::Request),
            (b"GET /\xff HTTP/1.1\r\n\r\n", Side::Request),
            (b"HTTP/1.1 200 OK\r\nX: \xff\r\n\r\n", Side::Response),
            (b"HTTP/1.1 200 \xc3\r\n\r\n", Side::Response),
        ] {
            let e = head(raw, side).unwrap_err();
            assert_eq!((kind(&e), e.status()), ("malformed", 400), "{raw:?}");
        }
    }

    #[test]
    fn heads_within_the_limits_are_read() {
        let at_limit = format!(
            "GET / HTTP/1.1\r\n{}{}\r\n",
            long_header(MAX_LINE_BYTES),
            many_headers(MAX_HEADER_LINES - 1)
        );
        let h = head(at_limit.as_bytes(), Side::Request).unwrap().unwrap();
        assert_eq!(h.header("x").map(str::len), Some(MAX_LINE_BYTES - 5));
        assert_eq!(h.header("X-98"), Some("v"));
        assert!(head(b"", Side::Request).unwrap().is_none());
        assert!(head(b"", Side::Response).unwrap().is_none());

        let h = head(
            b"\r\nPOST /x?y HTTP/1.0\r\nHost:h\r\nA:  b c \t\r\n\r\nrest",
            Side::Request,
        )
        .unwrap()
        .unwrap();
        let got = (h.method(), h.target(), h.version(), h.header("host"));
        assert_eq!(got, ("POST", "/x?y", "HTTP/1.0", Some("h")));
        assert_eq!(h.header("A"), Some("b c"));
        assert!(!h.keep_alive());

        for (raw, status, keep) in [
            ("HTTP/1.1 200 OK\r\n\r\n", 200, true),
            ("HTTP/1.1 408\r\nConnection: close\r\n\r\n", 408, false),
            (
                "HTTP/1.1 202 \r\nconnection: Keep-Alive, CLOSE\r\n\r\n",
                202,
                false,
            ),
            ("HTTP/1.0 200 Fine Thanks\r\n\r\n", 200, false),
            (
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
                200,
                true,
            ),
        ] {
            let h = head(raw.as_bytes(), Side::Response).unwrap().unwrap();
            assert_eq!((h.status(), h.keep_alive()), (status, keep), "{raw:?}");
        }
    }

    #[test]
    fn a_head_leaves_what_follows_it_unread() {
        let mut r = BufReader::new(&b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"[..]);
        let a = read_head(&mut r, Side::Request).unwrap().unwrap();
        let b = read_head(&mut r, Side::Request).unwrap().unwrap();
        assert_eq!((a.target(), b.target()), ("/a", "/b"));
        assert!(read_head(&mut r, Side::Request).unwrap().is_none());
    }

    fn framing_of(headers: &str, side: Side) -> Result<Framing, WireError> {
        let start = match side {
            Side::Request => "POST /x HTTP/1.1\r\n",
            Side::Response => "HTTP/1.1 200 OK\r\n",
        };
        let raw = format!("{start}{headers}\r\n");
        framing(&head(raw.as_bytes(), side).unwrap().unwrap(), side)
    }

    #[test]
    fn ambiguous_framing_is_refused_on_both_sides() {
        let table: &[(&str, &str, u16)] = &[
            (
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "malformed",
                400,
            ),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                "malformed",
                400,
            ),
            ("Transfer-Encoding: gzip, chunked\r\n", "malformed", 400),
            ("Transfer-Encoding: chunked, identity\r\n", "malformed", 400),
            ("Transfer-Encoding: gzip\r\n", "malformed", 400),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "malformed",
                400,
            ),
            ("Content-Length: +5\r\n", "malformed", 400),
            ("Content-Length: -5\r\n", "malformed", 400),
            ("Content-Length: 5a\r\n", "malformed", 400),
            ("Content-Length: 0x5\r\n", "malformed", 400),
            ("Content-Length: 5 5\r\n", "malformed", 400),
            ("Content-Length: \r\n", "malformed", 400),
            (
                "Content-Length: 5\r\nContent-Length: 6\r\n",
                "malformed",
                400,
            ),
            (
                "Content-Length: 5\r\nContent-Length: 5\r\n",
                "malformed",
                400,
            ),
            (
                "Content-Length: 99999999999999999999999\r\n",
                "body too large",
                413,
            ),
        ];
        for side in [Side::Request, Side::Response] {
            for (headers, want, status) in table {
                let e = framing_of(headers, side).expect_err(headers);
                assert_eq!(
                    (kind(&e), e.status()),
                    (*want, *status),
                    "{side:?} {headers:?}"
                );
            }
        }
    }

    #[test]
    fn framing_is_read_alike_on_both_sides() {
        use Framing::*;
        for (headers, request, response) in [
            ("Content-Length: 5\r\n", Length(5), Length(5)),
            ("Content-Length: 007\r\n", Length(7), Length(7)),
            ("Transfer-Encoding: chunked\r\n", Chunked, Chunked),
            ("transfer-encoding: Chunked\r\n", Chunked, Chunked),
            ("", Length(0), UntilClose),
        ] {
            assert_eq!(framing_of(headers, Side::Request).unwrap(), request);
            assert_eq!(framing_of(headers, Side::Response).unwrap(), response);
        }
        let raw = b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n";
        let h = head(raw, Side::Response).unwrap().unwrap();
        assert_eq!(framing(&h, Side::Response).unwrap(), Length(0));
    }

    fn whole(raw: &[u8], max: usize) -> Result<Vec<u8>, WireError> {
        read_chunked(&mut BufReader::new(raw), max)
    }

    /// The client's way: small reads through [`Chunks::read`].
    fn streamed(raw: &[u8]) -> Result<Vec<u8>, WireError> {
        let mut r = BufReader::new(raw);
        let mut chunks = Chunks::new();
        let mut body = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            match chunks.read(&mut r, &mut buf)? {
                0 => return Ok(body),
                n => body.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_alike_whole_and_streamed() {
        for (raw, want) in [
            (
                &b"4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\n\r\n"[..],
                &b"abcdefg"[..],
            ),
            (b"1\r\na\r\n0\r\n\r\n", b"a"),
            (
                b"A \r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n",
                b"0123456789",
            ),
            (b"0\r\n\r\n", b""),
        ] {
            assert_eq!(whole(raw, 100).unwrap(), want, "{raw:?}");
            assert_eq!(streamed(raw).unwrap(), want, "{raw:?}");
        }
        // The body's end leaves what follows unread.
        let mut r = BufReader::new(&b"1\r\na\r\n0\r\n\r\nNEXT"[..]);
        assert_eq!(read_chunked(&mut r, 10).unwrap(), b"a");
        assert_eq!(r.fill_buf().unwrap(), b"NEXT");
    }

    #[test]
    fn malformed_chunks_are_refused_whole_and_streamed() {
        let many_trailers = format!("0\r\n{}\r\n", many_headers(MAX_HEADER_LINES + 1));
        let long_size = format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(MAX_LINE_BYTES));
        // Tiny chunks with long extensions: framing far past the data.
        let costly = format!("1;{}\r\na\r\n", "e".repeat(1000)).repeat(100) + "0\r\n\r\n";
        let table: Vec<(&[u8], &str, u16)> = vec![
            (b"1\r\na\r\nFFFFFFFFFFFFFFFFFF\r\n", "body too large", 413),
            (b"1\r\nabc\r\n0\r\n\r\n", "malformed", 400),
            (b"1\r\na\n\n0\r\n\r\n", "malformed", 400),
            (b"", "eof", 400),
            (b"1\r\na", "eof", 400),
            (b"1\r\na\r\n", "eof", 400),
            (b"0\r\n", "eof", 400),
            (b"-1\r\n", "malformed", 400),
            (b"+1\r\na\r\n0\r\n\r\n", "malformed", 400),
            (b"0x1\r\na\r\n0\r\n\r\n", "malformed", 400),
            (b"\r\n", "malformed", 400),
            (b"1 1\r\na\r\n0\r\n\r\n", "malformed", 400),
            (many_trailers.as_bytes(), "malformed", 400),
            (long_size.as_bytes(), "malformed", 400),
            (costly.as_bytes(), "malformed", 400),
        ];
        for (raw, want, status) in table {
            let shown = String::from_utf8_lossy(&raw[..raw.len().min(40)]).into_owned();
            let e = whole(raw, 1 << 20).expect_err(&shown);
            assert_eq!((kind(&e), e.status()), (want, status), "{shown:?}: {e}");
            let e = streamed(raw).expect_err(&shown);
            assert_eq!(kind(&e), want, "streamed {shown:?}: {e}");
        }
    }

    #[test]
    fn a_chunked_body_past_its_limit_is_refused_before_its_data() {
        let raw = b"4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n";
        assert_eq!(whole(raw, 7).unwrap(), b"abcdefg");
        let e = whole(raw, 6).unwrap_err();
        assert_eq!((kind(&e), e.status()), ("body too large", 413));
        // The size alone decides: the data is never there.
        let e = whole(b"FFFFFFFFFFFFFFFF\r\n", 1 << 20).unwrap_err();
        assert_eq!(kind(&e), "body too large");
    }

    #[test]
    fn the_resend_rule() {
        use io::ErrorKind::*;
        for (what, resend) in [
            (Before::Status(408), true),
            (Before::Status(200), false),
            (Before::Status(503), false),
            (Before::Failed(ConnectionReset), true),
            (Before::Failed(BrokenPipe), true),
            (Before::Failed(UnexpectedEof), false),
            (Before::Failed(TimedOut), false),
            (Before::Failed(WouldBlock), false),
            (Before::Failed(InvalidData), false),
        ] {
            assert_eq!(may_resend(what), resend, "{what:?}");
        }
    }
}
