//! HTTP plumbing for the daemon on top of tiny_http: the loopback checks
//! (Host, Origin, bearer token in constant time), bounded request bodies,
//! JSON responses, and SSE streams written as explicit chunks so each event
//! leaves at once. It knows nothing of MCP.

use serde_json::Value;
use std::io::{self, Read, Write};
use tiny_http::{Header, Request, Response};

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
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
    let Some(given) = value.strip_prefix("Bearer ") else {
        return false;
    };
    constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

pub enum Body {
    Bytes(Vec<u8>),
    TooLarge,
}

/// Read the request body, refusing more than `max` bytes.
pub fn read_body(req: &mut Request, max: usize) -> io::Result<Body> {
    let mut buf = Vec::new();
    req.as_reader().take(max as u64 + 1).read_to_end(&mut buf)?;
    Ok(if buf.len() > max {
        Body::TooLarge
    } else {
        Body::Bytes(buf)
    })
}

fn h(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header names are valid")
}

/// Respond with a JSON body and extra headers.
pub fn json(req: Request, status: u16, body: &Value, extra: &[(&str, &str)]) {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::from_data(bytes)
        .with_status_code(status)
        .with_header(h("Content-Type", "application/json"));
    for (k, v) in extra {
        resp.add_header(h(k, v));
    }
    let _ = req.respond(resp);
}

/// Respond with a status and no body.
pub fn empty(req: Request, status: u16, extra: &[(&str, &str)]) {
    let mut resp = Response::empty(status);
    for (k, v) in extra {
        resp.add_header(h(k, v));
    }
    let _ = req.respond(resp);
}

pub fn text(req: Request, status: u16, body: &str) {
    let resp = Response::from_string(body)
        .with_status_code(status)
        .with_header(h("Content-Type", "text/plain"));
    let _ = req.respond(resp);
}

/// A `text/event-stream` response in progress. Each event is written as one
/// HTTP chunk and flushed; `finish` writes the last chunk so the connection
/// can be reused.
pub struct Sse {
    w: Box<dyn Write + Send>,
}

impl Sse {
    pub fn start(req: Request, extra: &[(&str, &str)]) -> io::Result<Sse> {
        let mut head = String::from(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
             X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n",
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut w = req.into_writer();
        w.write_all(head.as_bytes())?;
        w.flush()?;
        Ok(Sse { w })
    }

    fn chunk(&mut self, payload: &str) -> io::Result<()> {
        let framed = format!("{:x}\r\n{payload}\r\n", payload.len());
        self.w.write_all(framed.as_bytes())?;
        self.w.flush()
    }

    pub fn event(&mut self, msg: &Value) -> io::Result<()> {
        self.chunk(&format!("event: message\ndata: {msg}\n\n"))
    }

    pub fn comment(&mut self, text: &str) -> io::Result<()> {
        self.chunk(&format!(": {text}\n\n"))
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.w.write_all(b"0\r\n\r\n")?;
        self.w.flush()
    }
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

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
