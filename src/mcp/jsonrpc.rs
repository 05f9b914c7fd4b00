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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// The first and last bytes of the last line that was too long, where
    /// its id is looked for (see [`LineReader::too_long_id`]).
    head: Vec<u8>,
    tail: Vec<u8>,
}

/// How many bytes at each end of an over-long line are kept to find its id.
pub const ID_SCAN_BYTES: usize = 4096;

impl<R: io::Read> LineReader<io::BufReader<R>> {
    /// Is input already read and waiting here?
    pub fn has_buffered(&self) -> bool {
        !self.inner.buffer().is_empty()
    }
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max: usize) -> LineReader<R> {
        LineReader {
            inner,
            max,
            head: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// The JSON-RPC id of the last line that was too long, when one of its
    /// ends shows it (see [`id_in_ends`]).
    pub fn too_long_id(&self) -> Option<Value> {
        id_in_ends(&self.head, &self.tail)
    }

    /// Does the start of the last line that was too long show it to be a
    /// response (`result` or `error` before any `method` member)? False
    /// when it shows a request or notification, or nothing.
    pub fn too_long_is_response(&self) -> bool {
        matches!(scan::first_kind(&self.head), Some("result" | "error"))
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
                if seen <= self.max {
                    // Just past the limit: keep only the ends, for the id.
                    let mut so_far = buf;
                    self.tail = so_far[so_far.len().saturating_sub(ID_SCAN_BYTES)..].to_vec();
                    so_far.truncate(ID_SCAN_BYTES);
                    self.head = so_far;
                }
                let room = ID_SCAN_BYTES.saturating_sub(self.head.len());
                self.head.extend_from_slice(&chunk[..take.min(room)]);
                self.tail.extend_from_slice(&chunk[..take]);
                let cut = self.tail.len().saturating_sub(ID_SCAN_BYTES);
                self.tail.drain(..cut);
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

/// The id of a JSON-RPC object seen only by its two ends (the line was too
/// long to keep): the top-level `"id"` member read forward from the start
/// of `head`, else backward from the end of `tail`. Strings (escapes
/// included) and nested values are skipped, so an `"id"` inside `params`
/// never counts; None when neither end shows a number or string id.
pub fn id_in_ends(head: &[u8], tail: &[u8]) -> Option<Value> {
    scan::forward(head).or_else(|| scan::backward(tail))
}

/// Bounded scans for [`id_in_ends`], and for the members of a whole
/// message (see the message module): each gives up (None) at the end of its
/// bytes or at anything it does not expect. They never allocate.
pub(crate) mod scan {
    use serde_json::Value;
    use std::ops::Range;

    /// The members of the object that opens at `open` in `b`: each key's
    /// span (its quotes included) and its value's span.
    pub struct Members<'a> {
        b: &'a [u8],
        i: usize,
        first: bool,
    }

    pub fn members(b: &[u8], open: usize) -> Members<'_> {
        Members {
            b,
            i: open + 1,
            first: true,
        }
    }

    impl Iterator for Members<'_> {
        type Item = (Range<usize>, Range<usize>);

        fn next(&mut self) -> Option<Self::Item> {
            let b = self.b;
            let mut i = skip_ws(b, self.i);
            if self.first {
                self.first = false;
            } else {
                if b.get(i) != Some(&b',') {
                    return None;
                }
                i = skip_ws(b, i + 1);
            }
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let key_end = string_end(b, i)?;
            let key = i..key_end;
            i = skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            let end = value_end(b, i)?;
            self.i = end;
            Some((key, i..end))
        }
    }

    /// Is the key at `key` (quotes included) `name`? Escapes are decoded.
    pub fn key_is(b: &[u8], key: Range<usize>, name: &str) -> bool {
        let raw = &b[key];
        if !raw.contains(&b'\\') {
            return raw.len() >= 2 && &raw[1..raw.len() - 1] == name.as_bytes();
        }
        serde_json::from_slice::<String>(raw).is_ok_and(|k| k == name)
    }

    /// The span of the value at `path` (object keys, from the top), the
    /// first member of each name; None if a step is missing or not an object.
    pub fn find(b: &[u8], path: &[&str]) -> Option<Range<usize>> {
        let mut open = skip_ws(b, 0);
        let mut found = None;
        for name in path {
            if b.get(open) != Some(&b'{') {
                return None;
            }
            let (_, value) = members(b, open).find(|(k, _)| key_is(b, k.clone(), name))?;
            open = value.start;
            found = Some(value);
        }
        found
    }

    fn ws(b: u8) -> bool {
        matches!(b, b' ' | b'\t' | b'\r' | b'\n')
    }

    /// An id value: a whole string or number, as JSON.
    fn id_value(token: &[u8]) -> Option<Value> {
        match serde_json::from_slice::<Value>(token).ok()? {
            v @ (Value::String(_) | Value::Number(_)) => Some(v),
            _ => None,
        }
    }

    pub fn skip_ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        i
    }

    /// The index just past the string that opens at `i`.
    fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
        i += 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => return Some(i + 1),
                _ => i += 1,
            }
        }
        None
    }

    /// The index just past the value that starts at `i`.
    fn value_end(b: &[u8], i: usize) -> Option<usize> {
        match *b.get(i)? {
            b'"' => string_end(b, i),
            b'{' | b'[' => {
                let (mut depth, mut j) = (0usize, i);
                while j < b.len() {
                    match b[j] {
                        b'"' => {
                            j = string_end(b, j)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                None
            }
            _ => {
                let mut j = i;
                while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !ws(b[j]) {
                    j += 1;
                }
                // A number cut off by the end of the bytes is not whole.
                (j < b.len()).then_some(j)
            }
        }
    }

    /// The first of the members `method`, `result` and `error` at the top
    /// level of the object these bytes start.
    pub fn first_kind(b: &[u8]) -> Option<&'static str> {
        let mut i = skip_ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i += 1;
        loop {
            i = skip_ws(b, i);
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let key_end = string_end(b, i)?;
            match &b[i..key_end] {
                b"\"method\"" => return Some("method"),
                b"\"result\"" => return Some("result"),
                b"\"error\"" => return Some("error"),
                _ => {}
            }
            i = skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            i = skip_ws(b, value_end(b, i)?);
            if b.get(i) != Some(&b',') {
                return None;
            }
            i += 1;
        }
    }

    pub fn forward(b: &[u8]) -> Option<Value> {
        let open = skip_ws(b, 0);
        if b.get(open) != Some(&b'{') {
            return None;
        }
        let (_, value) = members(b, open).find(|(k, _)| &b[k.clone()] == b"\"id\"")?;
        id_value(&b[value])
    }

    /// Is the quote at `i` a delimiter, not escaped? Backslashes before it
    /// must be all in view to tell.
    fn unescaped_quote(b: &[u8], i: usize) -> Option<bool> {
        let run = b[..i].iter().rev().take_while(|c| **c == b'\\').count();
        (run < i).then_some(run % 2 == 0)
    }

    /// The index of the quote that opens the string closing at `end`.
    fn string_start(b: &[u8], end: usize) -> Option<usize> {
        let mut j = end;
        while j > 0 {
            j -= 1;
            if b[j] == b'"' && unescaped_quote(b, j)? {
                return Some(j);
            }
        }
        None
    }

    /// The index where the value ending at `end` (inclusive) starts.
    fn value_start(b: &[u8], end: usize) -> Option<usize> {
        match b[end] {
            b'"' => string_start(b, end),
            b'}' | b']' => {
                let (mut depth, mut j) = (0usize, end + 1);
                while j > 0 {
                    j -= 1;
                    match b[j] {
                        b'"' if unescaped_quote(b, j)? => j = string_start(b, j)?,
                        b'}' | b']' => depth += 1,
                        b'{' | b'[' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(j);
                            }
                        }
                        _ => {}
                    }
                }
                None
            }
            _ => {
                let mut j = end;
                while j > 0 && !matches!(b[j - 1], b',' | b':' | b'{' | b'[') && !ws(b[j - 1]) {
                    j -= 1;
                }
                // A token that runs into the start of the bytes may be cut.
                (j > 0).then_some(j)
            }
        }
    }

    fn skip_ws_back(b: &[u8], mut i: usize) -> Option<usize> {
        while ws(*b.get(i)?) {
            i = i.checked_sub(1)?;
        }
        Some(i)
    }

    pub fn backward(b: &[u8]) -> Option<Value> {
        let mut i = skip_ws_back(b, b.len().checked_sub(1)?)?;
        if b[i] != b'}' {
            return None;
        }
        loop {
            i = skip_ws_back(b, i.checked_sub(1)?)?;
            let start = value_start(b, i)?;
            let value = &b[start..=i];
            i = skip_ws_back(b, start.checked_sub(1)?)?;
            if b[i] != b':' {
                return None;
            }
            i = skip_ws_back(b, i.checked_sub(1)?)?;
            if b[i] != b'"' {
                return None;
            }
            let key_start = string_start(b, i)?;
            if &b[key_start..=i] == b"\"id\"" {
                return id_value(value);
            }
            i = skip_ws_back(b, key_start.checked_sub(1)?)?;
            if b[i] != b',' {
                return None;
            }
        }
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// The default limit on one JSON-RPC line or HTTP body (16 MiB); see
/// The strings of a JSON array (others, and a value that is no array,
/// give nothing).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

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
mod kind_tests {
    use super::scan::first_kind;

    #[test]
    fn the_head_of_a_line_tells_a_response_from_a_request() {
        assert_eq!(
            first_kind(br#"{"jsonrpc":"2.0","id":3,"result":{"x":"#),
            Some("result")
        );
        assert_eq!(
            first_kind(br#"{"result":{"content":[{"a":"#),
            Some("result")
        );
        assert_eq!(
            first_kind(br#"{"jsonrpc":"2.0","id":3,"error":{"#),
            Some("error")
        );
        assert_eq!(
            first_kind(br#"{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage","params":{"#),
            Some("method")
        );
        assert_eq!(
            first_kind(br#"{"method":"x","params":{"result":1"#),
            Some("method")
        );
        assert_eq!(first_kind(br#"{"id":{"result":1},"#), None);
        assert_eq!(first_kind(br#"{"jsonrpc":"2.0","id":3,"#), None);
        assert_eq!(first_kind(b"[1,2"), None);
    }
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

    fn ends(line: &str) -> Option<Value> {
        let b = line.as_bytes();
        let head = &b[..b.len().min(64)];
        let tail = &b[b.len().saturating_sub(64)..];
        id_in_ends(head, tail)
    }

    #[test]
    fn the_id_of_an_over_long_line_is_found_at_either_end() {
        let long = "x".repeat(500);
        // Numbers and strings, at the start.
        let l = format!(r#"{{"jsonrpc":"2.0","id":7,"method":"m","params":{{"a":"{long}"}}}}"#);
        assert_eq!(ends(&l), Some(json!(7)));
        let l = format!(r#"{{ "id" : -12.5e3 , "params":"{long}"}}"#);
        assert_eq!(ends(&l), Some(json!(-12.5e3)));
        let l = format!(r#"{{"id":"a\"b\\","params":"{long}"}}"#);
        assert_eq!(ends(&l), Some(json!("a\"b\\")));
        // After a long params (the TypeScript SDK's order), strings with
        // escaped quotes and braces in the way.
        let l = format!(
            r#"{{"method":"m","params":{{"t":"{long}","u":"\"}}{{\\\\","v":[1,{{"id":3}}]}},"jsonrpc":"2.0","id":"k\"1"}}"#
        );
        assert_eq!(ends(&l), Some(json!("k\"1")));
        let l = format!(r#"{{"method":"m","params":{{"t":"{long}"}},"id":99}}  "#);
        assert_eq!(ends(&l), Some(json!(99)));
        // An "id" inside params never counts.
        let l = format!(r#"{{"params":{{"id":5,"t":"{long}"}},"method":"m"}}"#);
        assert_eq!(ends(&l), None);
        let l = format!(r#"{{"method":"m","params":{{"t":"{long}","id":5}}}}"#);
        assert_eq!(ends(&l), None);
        // No id, or none in view.
        let l = format!(r#"{{"jsonrpc":"2.0","method":"n","params":"{long}"}}"#);
        assert_eq!(ends(&l), None);
        let l = format!(r#"{{"method":"m","params":"{long}","id":4,"more":"{long}"}}"#);
        assert_eq!(ends(&l), None);
        // Ids that are not numbers or strings are not ids.
        let l = format!(r#"{{"id":null,"params":"{long}"}}"#);
        assert_eq!(ends(&l), None);
        assert_eq!(id_in_ends(b"", b""), None);
        // A number cut at the edge of the bytes in view is not whole.
        assert_eq!(id_in_ends(b"{\"id\":12", b"34}"), None);
        assert_eq!(id_in_ends(b"{\"p\":1", b",\"id\":34}"), Some(json!(34)));
    }

    #[test]
    fn line_reader_keeps_the_ends_of_a_line_too_long() {
        let long = "y".repeat(3 * ID_SCAN_BYTES);
        let input = format!(
            "{{\"method\":\"m\",\"params\":\"{long}\",\"id\":8}}\n{{\"id\":9,\"p\":\"{long}\"}}\nok\n"
        );
        let mut r = LineReader::new(io::BufReader::with_capacity(100, input.as_bytes()), 1024);
        assert!(matches!(r.next_line().unwrap(), Some(Line::TooLong(_))));
        assert_eq!(r.too_long_id(), Some(json!(8)));
        assert!(matches!(r.next_line().unwrap(), Some(Line::TooLong(_))));
        assert_eq!(r.too_long_id(), Some(json!(9)));
        assert_eq!(r.next_line().unwrap(), Some(Line::Text(b"ok".to_vec())));
        // The same, each line read in one piece.
        let mut r = LineReader::new(
            io::BufReader::with_capacity(1 << 16, input.as_bytes()),
            1024,
        );
        assert!(matches!(r.next_line().unwrap(), Some(Line::TooLong(_))));
        assert_eq!(r.too_long_id(), Some(json!(8)));
        assert!(matches!(r.next_line().unwrap(), Some(Line::TooLong(_))));
        assert_eq!(r.too_long_id(), Some(json!(9)));
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
