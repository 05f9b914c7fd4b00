//! JSON-RPC 2.0 and MCP message vocabulary shared by the bridge and the
//! daemon: classifying messages, building errors, negotiating versions, and
//! reading newline-delimited messages with a bounded line length.

use serde_json::{Value, json};
use std::io::{self, BufRead};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Implementation-defined: the daemon or upstream went away mid-request.
pub const UNAVAILABLE: i64 = -32000;
/// Implementation-defined: a request timed out (the SDKs use -32001 too).
pub const TIMEOUT: i64 = -32001;

/// Protocol revisions mcpshare accepts from clients, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
pub const LATEST_VERSION: &str = "2025-11-25";
/// The only revision in which JSON-RPC batches are legal.
pub const BATCH_VERSION: &str = "2025-03-26";

/// Echo the client's version when supported, otherwise offer the latest.
pub fn negotiate(client: Option<&str>) -> &'static str {
    client
        .and_then(|c| SUPPORTED_VERSIONS.iter().find(|v| **v == c))
        .copied()
        .unwrap_or(LATEST_VERSION)
}

pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
    Invalid,
}

pub fn classify(msg: &Value) -> Kind {
    let Some(obj) = msg.as_object() else {
        return Kind::Invalid;
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Kind::Invalid;
    }
    let id_ok = |id: &Value| id.is_string() || id.is_number();
    match (obj.get("method"), obj.get("id")) {
        (Some(Value::String(_)), None) => Kind::Notification,
        (Some(Value::String(_)), Some(id)) if id_ok(id) => Kind::Request,
        (None, Some(id))
            if (id_ok(id) || id.is_null())
                && (obj.contains_key("result") || obj.contains_key("error")) =>
        {
            Kind::Response
        }
        _ => Kind::Invalid,
    }
}

pub fn method(msg: &Value) -> Option<&str> {
    msg.get("method").and_then(Value::as_str)
}

pub fn id(msg: &Value) -> Value {
    msg.get("id").cloned().unwrap_or(Value::Null)
}

pub fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

pub fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn notification(method: &str, params: Option<Value>) -> Value {
    match params {
        Some(p) => json!({"jsonrpc": "2.0", "method": method, "params": p}),
        None => json!({"jsonrpc": "2.0", "method": method}),
    }
}

/// One line read by [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(Vec<u8>),
    /// The line was longer than the limit; its bytes were discarded.
    TooLong(usize),
}

/// Reads `\n`-terminated lines, never holding more than `max` bytes of one.
pub struct LineReader<R> {
    inner: R,
    max: usize,
}

impl<R: io::Read> LineReader<io::BufReader<R>> {
    /// Is input already read and waiting here?
    pub fn has_buffered(&self) -> bool {
        !self.inner.buffer().is_empty()
    }
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max: usize) -> LineReader<R> {
        LineReader { inner, max }
    }

    /// The next line without its terminator, or None at end of input.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        let mut buf = Vec::new();
        let mut seen = 0usize;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(match seen {
                    0 => None,
                    _ if seen > self.max => Some(Line::TooLong(seen)),
                    _ => Some(Line::Text(buf)),
                });
            }
            let (take, done) = match memchr(chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if seen + take <= self.max {
                buf.extend_from_slice(&chunk[..take]);
            } else {
                buf = Vec::new();
            }
            seen += take;
            self.inner.consume(if done { take + 1 } else { take });
            if done {
                if seen > self.max {
                    return Ok(Some(Line::TooLong(seen)));
                }
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                return Ok(Some(Line::Text(buf)));
            }
        }
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// The default limit on one JSON-RPC line or HTTP body (16 MiB); see
/// MCPSHARE_MAX_MESSAGE_BYTES in mcpshare(1).
pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;

pub fn max_message() -> usize {
    std::env::var("MCPSHARE_MAX_MESSAGE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1024)
        .unwrap_or(DEFAULT_MAX_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(
            classify(&json!({"jsonrpc":"2.0","id":1,"method":"x"})),
            Kind::Request
        );
        assert_eq!(
            classify(&json!({"jsonrpc":"2.0","id":"a","method":"x"})),
            Kind::Request
        );
        assert_eq!(
            classify(&json!({"jsonrpc":"2.0","method":"x"})),
            Kind::Notification
        );
        assert_eq!(
            classify(&json!({"jsonrpc":"2.0","id":1,"result":{}})),
            Kind::Response
        );
        assert_eq!(
            classify(&json!({"jsonrpc":"2.0","id":null,"error":{}})),
            Kind::Response
        );
        assert_eq!(
            classify(&json!({"jsonrpc":"1.0","id":1,"method":"x"})),
            Kind::Invalid
        );
        assert_eq!(
            classify(&json!({"jsonrpc":"2.0","id":{},"method":"x"})),
            Kind::Invalid
        );
        assert_eq!(classify(&json!([1])), Kind::Invalid);
    }

    #[test]
    fn negotiates() {
        assert_eq!(negotiate(Some("2024-11-05")), "2024-11-05");
        assert_eq!(negotiate(Some("1999-01-01")), LATEST_VERSION);
        assert_eq!(negotiate(None), LATEST_VERSION);
    }

    #[test]
    fn line_reader_bounds_memory_and_recovers() {
        let input = b"short\r\nxxxxxxxxxxxxxxxxxxxx\nok\nlast".to_vec();
        let mut r = LineReader::new(io::BufReader::with_capacity(4, &input[..]), 8);
        assert_eq!(r.next_line().unwrap(), Some(Line::Text(b"short".to_vec())));
        assert_eq!(r.next_line().unwrap(), Some(Line::TooLong(20)));
        assert_eq!(r.next_line().unwrap(), Some(Line::Text(b"ok".to_vec())));
        assert_eq!(r.next_line().unwrap(), Some(Line::Text(b"last".to_vec())));
        assert_eq!(r.next_line().unwrap(), None);
    }
}
