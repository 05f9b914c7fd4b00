//! `mcpshare remote URL`: the upstream child the daemon runs for a remote
//! server of the config. It speaks newline-delimited JSON-RPC on its stdio,
//! as a stdio MCP server does, and relays each message to a Streamable HTTP
//! (`http`) or legacy HTTP+SSE (`sse`) server, so sharing, supervision and
//! logs are the daemon's as for any upstream. It never re-initializes a
//! session on its own (the client's state would be lost: it exits and the
//! daemon restarts it, saying so), never follows a redirect (the headers
//! could go to another host), and every wait has a deadline.

mod http;
mod sse;

use crate::mcp::jsonrpc::{self, Kind, Line, LineReader};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// The variable the daemon passes a remote server's headers in, as a JSON
/// object (values expanded): the environment, unlike argv, is not shown
/// to other processes by `ps`.
pub const HEADERS_VAR: &str = "MCPSHARE_REMOTE_HEADERS";
/// How long a connection to the remote server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A stream of server messages with no byte for this long is reopened.
const STREAM_SILENCE: Duration = Duration::from_secs(300);
/// Beyond the daemon's request timeout, how long a request's POST may take
/// (the daemon gives the client its error at its own timeout).
const POST_SLACK: Duration = Duration::from_secs(30);
/// How long a notification's or response's POST may take.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the DELETE of the session may take once stdin closed.
const DELETE_TIMEOUT: Duration = Duration::from_secs(2);
/// The backoff of a stream that is reopened: from the first to the last.
const REOPEN_FIRST: Duration = Duration::from_secs(1);
const REOPEN_MAX: Duration = Duration::from_secs(30);
/// Requests relayed at once; beyond, a request is answered with an error.
const MAX_IN_FLIGHT: usize = 256;
/// How much of an HTTP error's body goes into the message.
const ERROR_BODY_BYTES: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP.
    Http,
    /// The older HTTP+SSE transport.
    Sse,
}

/// What `mcpshare remote` was asked to relay to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub url: String,
    pub transport: Transport,
    pub headers: BTreeMap<String, String>,
}

/// Can this build connect to `url`? `https://` needs TLS, which this build
/// does not have: the error names the URL and the ways around it.
pub fn check_url(url: &str) -> Result<(), String> {
    if url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        return Err(format!(
            "cannot connect to {url}: this build of mcpshare has no TLS, so it reaches only \
             http:// servers; hint: run a local proxy that serves it over http://, or add the \
             server with `mcpshare add NAME -- npx -y mcp-remote {url}`"
        ));
    }
    if !url
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        || url.len() == 7
    {
        return Err(format!("'{url}' is not an http:// URL"));
    }
    Ok(())
}

/// The headers of [`HEADERS_VAR`]'s value: a JSON object of strings.
pub fn parse_headers(text: &str) -> Result<BTreeMap<String, String>, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("{HEADERS_VAR} is not a JSON object of strings: {e}"))
}

/// Relay stdio to the remote server until stdin closes; the exit status.
pub fn run(remote: Remote) -> i32 {
    if let Err(e) = check_url(&remote.url) {
        say(&e);
        return 1;
    }
    let agent = agent();
    match remote.transport {
        Transport::Http => http::run(&remote, agent),
        Transport::Sse => sse::run(&remote, agent),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .user_agent(concat!("mcpshare/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// One line on stderr, which the daemon keeps as this upstream's log.
fn say(line: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "mcpshare remote: {line}");
}

/// Write one message to stdout as one line, in one write. A closed stdout
/// means the daemon is gone: exit.
fn emit(msg: &Value) {
    let mut line = msg.to_string().into_bytes();
    line.push(b'\n');
    let mut out = io::stdout().lock();
    if out.write_all(&line).and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Answer request `id` with an error: the daemon passes it to the client.
fn fail(id: &Value, message: String) {
    emit(&jsonrpc::error(id.clone(), jsonrpc::UNAVAILABLE, message));
}

/// The messages of stdin, one per line, bounded: an over-long request is
/// answered with an error, other bad lines are logged and skipped. None at
/// the end of stdin.
struct Stdin {
    lines: LineReader<BufReader<io::Stdin>>,
}

impl Stdin {
    fn new() -> Stdin {
        Stdin {
            lines: LineReader::new(BufReader::new(io::stdin()), jsonrpc::max_message()),
        }
    }

    fn next(&mut self) -> Option<Value> {
        loop {
            match self.lines.next_line() {
                Ok(None) => return None,
                Err(e) => {
                    say(&format!("cannot read stdin: {e}"));
                    return None;
                }
                Ok(Some(Line::TooLong(n))) => {
                    let why = format!(
                        "a message of {n} bytes exceeds MCPSHARE_MAX_MESSAGE_BYTES ({})",
                        jsonrpc::max_message()
                    );
                    match self.lines.too_long_id() {
                        Some(id) if !self.lines.too_long_is_response() => fail(&id, why),
                        _ => say(&format!("{why}; dropped")),
                    }
                }
                Ok(Some(Line::Text(t))) if t.iter().all(u8::is_ascii_whitespace) => {}
                Ok(Some(Line::Text(t))) => match serde_json::from_slice::<Value>(&t) {
                    Ok(v) => return Some(v),
                    Err(e) => say(&format!("stdin: not JSON ({e}); dropped")),
                },
            }
        }
    }
}

/// What a message is, for relaying.
fn kind(msg: &Value) -> Kind {
    jsonrpc::classify(msg)
}

/// Does `msg` answer request `id`?
fn answers(msg: &Value, id: &Value) -> bool {
    msg.get("method").is_none() && msg.get("id") == Some(id)
}

/// The first bytes of an error reply's body, on one line, for a message.
fn body_excerpt(body: impl Read) -> String {
    let mut b = Vec::new();
    let _ = body.take(ERROR_BODY_BYTES).read_to_end(&mut b);
    let text: String = String::from_utf8_lossy(&b)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// "HTTP 401 from URL: body" with the hint a status calls for.
fn status_error(url: &str, status: u16, body: impl Read) -> String {
    let hint = match status {
        401 | 403 => "; hint: check the server's headers in mcpshare's config (its token?)",
        _ => "",
    };
    format!(
        "the remote server {url} answered HTTP {status}{}{hint}",
        body_excerpt(body)
    )
}

/// Wait `d`, or less when `stop` says the relay is ending (its sender
/// dropped). False when it is ending.
fn pause(stop: &Receiver<()>, d: Duration) -> bool {
    matches!(stop.recv_timeout(d), Err(RecvTimeoutError::Timeout))
}

/// The data of each event of a `text/event-stream`, with its name.
struct Event {
    name: String,
    data: String,
}

/// Reads events from an SSE body, each line bounded by the message limit.
struct Events<R: Read> {
    lines: LineReader<BufReader<R>>,
}

impl<R: Read> Events<R> {
    fn new(body: R) -> Events<R> {
        Events {
            lines: LineReader::new(BufReader::new(body), jsonrpc::max_message()),
        }
    }

    /// The next event with data, or None at the end of the stream.
    fn next(&mut self) -> io::Result<Option<Event>> {
        let (mut name, mut data): (String, Option<String>) = (String::new(), None);
        loop {
            let line = match self.lines.next_line()? {
                None => return Ok(data.map(|data| Event { name, data })),
                Some(Line::TooLong(n)) => {
                    return Err(io::Error::other(format!(
                        "an event line of {n} bytes exceeds MCPSHARE_MAX_MESSAGE_BYTES"
                    )));
                }
                Some(Line::Text(t)) => String::from_utf8_lossy(&t).into_owned(),
            };
            if line.is_empty() {
                if let Some(data) = data.take() {
                    return Ok(Some(Event { name, data }));
                }
                name.clear();
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => name = value.to_string(),
                "data" => match &mut data {
                    Some(d) if d.len() + value.len() > jsonrpc::max_message() => {
                        return Err(io::Error::other(
                            "an event exceeds MCPSHARE_MAX_MESSAGE_BYTES",
                        ));
                    }
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(value.to_string()),
                },
                // `id`, `retry` and comments carry nothing used here.
                _ => {}
            }
        }
    }
}

/// An event's data as a message, or None (logged) when it is not JSON.
fn event_message(data: &str) -> Option<Value> {
    match serde_json::from_str::<Value>(data) {
        Ok(v) => Some(v),
        Err(e) => {
            say(&format!("an event's data is not JSON ({e}); dropped"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_refused_with_the_way_around_it() {
        let e = check_url("https://example.com/mcp").unwrap_err();
        assert!(
            e.contains("https://example.com/mcp")
                && e.contains("no TLS")
                && e.contains("mcp-remote"),
            "{e}"
        );
        assert!(check_url("HTTPS://x/").is_err());
        assert!(check_url("ftp://x/").is_err());
        assert!(check_url("http://").is_err());
        assert!(check_url("http://127.0.0.1:8/mcp").is_ok());
    }

    #[test]
    fn events_keep_their_names_and_join_data_lines() {
        let text = ": comment\nevent: endpoint\ndata: /messages?s=1\n\nid: 4\ndata: {\"a\":\ndata: 1}\n\nevent: x\n\ndata: tail";
        let mut ev = Events::new(text.as_bytes());
        let e = ev.next().unwrap().unwrap();
        assert_eq!(
            (e.name.as_str(), e.data.as_str()),
            ("endpoint", "/messages?s=1")
        );
        let e = ev.next().unwrap().unwrap();
        assert_eq!((e.name.as_str(), e.data.as_str()), ("", "{\"a\":\n1}"));
        assert_eq!(event_message(&e.data), Some(serde_json::json!({"a": 1})));
        let e = ev.next().unwrap().unwrap();
        assert_eq!(
            (e.name.as_str(), e.data.as_str()),
            ("", "tail"),
            "a nameless event after an empty one"
        );
        assert!(ev.next().unwrap().is_none());
    }

    #[test]
    fn headers_come_as_a_json_object_of_strings() {
        let h = parse_headers(r#"{"Authorization": "Bearer x"}"#).unwrap();
        assert_eq!(h["Authorization"], "Bearer x");
        let e = parse_headers(r#"{"A": 1}"#).unwrap_err();
        assert!(e.contains(HEADERS_VAR), "{e}");
    }

    #[test]
    fn an_error_reply_is_named_with_its_status_and_the_start_of_its_body() {
        let e = status_error("http://h/mcp", 401, &b"bad\ntoken"[..]);
        assert!(
            e.contains("HTTP 401") && e.contains("bad token") && e.contains("hint"),
            "{e}"
        );
        let long = vec![b'x'; 5000];
        assert!(status_error("http://h/mcp", 500, &long[..]).len() < 400);
    }
}
