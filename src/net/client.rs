//! The HTTP client side of the daemon's API, used by the bridge and the
//! CLI: loopback only, bearer token on every call but health, bounded
//! timeouts, and an SSE reader that yields one event's data at a time.

use crate::mcp::jsonrpc::{Line, LineReader};
use crate::mcp::message::Message;
use crate::net::h1::{Conns, Sent};
use crate::net::wire::{self, Before};
use crate::state::manifest::Manifest;
use serde_json::Value;
use std::io::{self, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
/// A GET stream with no byte for this long is lost (the daemon writes a
/// keepalive every 15 s).
pub const STREAM_SILENCE: Duration = Duration::from_secs(45);
/// Beyond the daemon's own request timeout, how long a POST may take.
const POST_SLACK: Duration = Duration::from_secs(30);
/// On loopback a connect is refused at once when nothing listens; it waits
/// only while the daemon's accept queue is full (a burst beyond its
/// connection limit), which drains as idle connections close.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Kept-alive connections a client keeps idle: enough for a bridge's usual
/// few concurrent calls, few enough that bridges do not hoard the daemon's
/// connections, which they all share.
pub const IDLE_CONNECTIONS: usize = 8;

/// Each of a ureq connection's two buffers (what it reads, what it writes),
/// zero-filled when it connects: ureq's default of 128 KiB made a bridge's
/// GET stream alone hold a quarter of a MiB. A head must fit in one, and
/// the daemon's heads are a few hundred bytes; bodies pass through in pieces.
const BUFFER_BYTES: usize = 16 * 1024;

#[derive(Debug)]
pub enum SendError {
    /// The request never reached the daemon: safe to retry elsewhere.
    NotReached(String),
    /// The connection failed after the request may have been acted on.
    Broken(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::NotReached(s) | SendError::Broken(s) => f.write_str(s),
        }
    }
}

fn classify(e: ureq::Error) -> SendError {
    use io::ErrorKind::*;
    match &e {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            SendError::NotReached(e.to_string())
        }
        ureq::Error::Timeout(ureq::Timeout::Connect) => SendError::NotReached(e.to_string()),
        ureq::Error::Io(io)
            if matches!(io.kind(), ConnectionRefused | AddrNotAvailable | NotFound) =>
        {
            SendError::NotReached(e.to_string())
        }
        // The daemon closed the connection with the request not (wholly)
        // read (see `wire::may_resend`).
        ureq::Error::Io(io) if wire::may_resend(Before::Failed(io.kind())) => {
            SendError::NotReached(e.to_string())
        }
        _ => SendError::Broken(e.to_string()),
    }
}

#[cfg(test)]
mod classify_tests {
    use super::*;

    #[test]
    fn a_request_the_daemon_never_read_is_not_reached() {
        for kind in [
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionRefused,
        ] {
            let e = classify(ureq::Error::Io(io::Error::from(kind)));
            assert!(matches!(e, SendError::NotReached(_)), "{kind:?}: {e}");
        }
        let e = classify(ureq::Error::Io(io::Error::from(
            io::ErrorKind::UnexpectedEof,
        )));
        assert!(matches!(e, SendError::Broken(_)), "{e}");
    }
}

/// Why a reply's body was not had.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the limit it was read with.
    TooLarge,
    Failed(SendError),
}

pub struct Reply {
    pub status: u16,
    pub session: Option<String>,
    pub content_type: String,
    body: Box<dyn Read + Send>,
}

impl Reply {
    pub fn new(
        status: u16,
        session: Option<String>,
        content_type: String,
        body: Box<dyn Read + Send>,
    ) -> Reply {
        Reply {
            status,
            session,
            content_type,
            body,
        }
    }

    pub fn is_sse(&self) -> bool {
        self.content_type.starts_with("text/event-stream")
    }

    pub fn bytes(self, max: usize) -> Result<Vec<u8>, SendError> {
        let mut b = Vec::new();
        self.body
            .take(max as u64 + 1)
            .read_to_end(&mut b)
            .map_err(|e| SendError::Broken(e.to_string()))?;
        if b.len() > max {
            return Err(SendError::Broken(format!(
                "the daemon's answer exceeds {max} bytes"
            )));
        }
        Ok(b)
    }

    pub fn json(self, max: usize) -> Result<Value, SendError> {
        let bytes = self.bytes(max)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| SendError::Broken(format!("bad JSON from daemon: {e}")))
    }

    /// The body as one message, its bytes kept, telling a body over `max`
    /// bytes apart from a failed read: the bridge answers the one and
    /// drops its attachment for the other.
    pub fn message_within(self, max: usize) -> Result<Message, BodyError> {
        let mut b = Vec::new();
        self.body
            .take(max as u64 + 1)
            .read_to_end(&mut b)
            .map_err(|e| BodyError::Failed(SendError::Broken(e.to_string())))?;
        if b.len() > max {
            return Err(BodyError::TooLarge);
        }
        Message::parse(b)
            .map_err(|e| BodyError::Failed(SendError::Broken(format!("bad JSON from daemon: {e}"))))
    }

    pub fn events(self, max: usize) -> Events {
        Events {
            lines: LineReader::new(BufReader::new(self.body), max),
            too_long: false,
        }
    }
}

/// Reads `text/event-stream`, yielding each event's data.
pub struct Events {
    lines: LineReader<BufReader<Box<dyn Read + Send>>>,
    too_long: bool,
}

impl Events {
    /// Did the stream end on a line over the limit (not a failed read)?
    pub fn was_too_long(&self) -> bool {
        self.too_long
    }

    /// The next event's data, or None when the stream ends.
    pub fn next_data(&mut self) -> io::Result<Option<String>> {
        let mut data: Option<String> = None;
        loop {
            let line = match self.lines.next_line()? {
                None => return Ok(data),
                Some(Line::TooLong(n)) => {
                    self.too_long = true;
                    return Err(io::Error::other(format!(
                        "an event line of {n} bytes exceeds the limit"
                    )));
                }
                Some(Line::Text(t)) => String::from_utf8_lossy(&t).into_owned(),
            };
            if line.is_empty() {
                // An event with empty data (a priming event) dispatches nothing.
                match data.take() {
                    Some(d) if !d.is_empty() => return Ok(Some(d)),
                    _ => continue,
                }
            }
            if let Some(v) = line.strip_prefix("data:") {
                let v = v.strip_prefix(' ').unwrap_or(v);
                match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(v);
                    }
                    None => data = Some(v.to_string()),
                }
            }
            // `event:`, `id:`, `retry:` and `:` comments carry nothing we use.
        }
    }
}

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    /// The MCP endpoint's POSTs, on the hot path, bypass ureq.
    conns: Arc<Conns>,
    port: u16,
    pub base: String,
    token: String,
}

/// The header a bridge names its own pid in when it opens a session.
pub const CLIENT_PID_HEADER: &str = "Mcpshare-Client-Pid";

/// Per-request headers of the MCP endpoint.
#[derive(Default)]
pub struct McpHeaders<'a> {
    pub session: Option<&'a str>,
    pub version: Option<&'a str>,
}

impl McpHeaders<'_> {
    fn apply<B>(&self, mut req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        if let Some(s) = self.session {
            req = req.header("Mcp-Session-Id", s);
        }
        if let Some(v) = self.version {
            req = req.header("MCP-Protocol-Version", v);
        }
        req
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .max_idle_connections_per_host(IDLE_CONNECTIONS)
        .input_buffer_size(BUFFER_BYTES)
        .output_buffer_size(BUFFER_BYTES)
        .user_agent(concat!("mcpshare/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

impl Client {
    pub fn new(m: &Manifest) -> Client {
        // Only receive-phase timeouts bound a POST: its answer may take as
        // long as the daemon's request (or start) timeout allows.
        let limit = crate::state::settings::request_timeout()
            .max(crate::state::settings::start_timeout())
            + POST_SLACK;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, m.port));
        Client {
            agent: agent(),
            conns: Conns::new(addr, CONNECT_TIMEOUT, limit, IDLE_CONNECTIONS),
            port: m.port,
            base: m.url.clone(),
            token: m.token.clone(),
        }
    }

    fn reply(resp: ureq::http::Response<ureq::Body>) -> Reply {
        let header = |k: &str| {
            resp.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let session = header("mcp-session-id");
        let content_type = header("content-type").unwrap_or_default();
        let status = resp.status().as_u16();
        Reply::new(
            status,
            session,
            content_type,
            Box::new(resp.into_body().into_reader()),
        )
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A control-API call with a JSON body (or none) and a total timeout.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<(u16, Value), SendError> {
        let url = format!("{}{path}", self.base);
        let resp = again_if_unused(|| match body {
            Some(b) => self
                .agent
                .post(&url)
                .header("Authorization", &self.auth())
                .header("Content-Type", "application/json")
                .config()
                .timeout_global(Some(timeout))
                .build()
                .send(serde_json::to_vec(b).unwrap_or_default()),
            None if method == "POST" => self
                .agent
                .post(&url)
                .header("Authorization", &self.auth())
                .config()
                .timeout_global(Some(timeout))
                .build()
                .send_empty(),
            None => self
                .agent
                .get(&url)
                .header("Authorization", &self.auth())
                .config()
                .timeout_global(Some(timeout))
                .build()
                .call(),
        })
        .map_err(|e| match e {
            // Say what timed out and after how long, not "timeout: global".
            ureq::Error::Timeout(t) if t != ureq::Timeout::Connect => SendError::Broken(format!(
                "no answer to {method} {path} within {}",
                human_wait(timeout)
            )),
            e => classify(e),
        })?;
        let reply = Client::reply(resp);
        let status = reply.status;
        Ok((
            status,
            reply.json(crate::mcp::jsonrpc::DEFAULT_MAX_MESSAGE)?,
        ))
    }

    /// POST one message to the MCP endpoint and read the reply's head.
    pub fn mcp_post(&self, path: &str, h: &McpHeaders, body: &[u8]) -> Result<Reply, SendError> {
        self.mcp_send(path, h, body)?.receive()
    }

    /// Write a POST to the MCP endpoint; its reply is read with
    /// [`Sent::receive`], on this thread or another.
    pub fn mcp_send(&self, path: &str, h: &McpHeaders, body: &[u8]) -> Result<Sent, SendError> {
        self.conns.send(self.mcp_request(path, h, body))
    }

    /// Like [`Client::mcp_send`], but only on an idle connection, so it never
    /// waits: None when there is none (or it had been closed).
    pub fn mcp_send_reusing(&self, path: &str, h: &McpHeaders, body: &[u8]) -> Option<Sent> {
        self.conns.send_reusing(&self.mcp_request(path, h, body))
    }

    fn mcp_request(&self, path: &str, h: &McpHeaders, body: &[u8]) -> Vec<u8> {
        use std::fmt::Write;
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\
             Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n",
            self.port,
            self.token,
            body.len()
        );
        if let Some(s) = h.session {
            let _ = write!(head, "Mcp-Session-Id: {s}\r\n");
        }
        if let Some(v) = h.version {
            let _ = write!(head, "MCP-Protocol-Version: {v}\r\n");
        }
        if h.session.is_none() {
            // A new session: the daemon ends it as soon as this process dies.
            let _ = write!(head, "{CLIENT_PID_HEADER}: {}\r\n", std::process::id());
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        request
    }

    pub fn mcp_get(&self, path: &str, h: &McpHeaders) -> Result<Reply, SendError> {
        again_if_unused(|| {
            let req = self
                .agent
                .get(format!("{}{path}", self.base))
                .header("Authorization", &self.auth())
                .header("Accept", "text/event-stream");
            h.apply(req)
                .config()
                .timeout_per_read(Some(STREAM_SILENCE))
                .build()
                .call()
        })
        .map(Client::reply)
        .map_err(classify)
    }

    /// DELETE the session (ends it at the daemon), bounded by `timeout`.
    pub fn mcp_delete(
        &self,
        path: &str,
        h: &McpHeaders,
        timeout: Duration,
    ) -> Result<u16, SendError> {
        again_if_unused(|| {
            let req = self
                .agent
                .delete(format!("{}{path}", self.base))
                .header("Authorization", &self.auth());
            h.apply(req)
                .config()
                .timeout_global(Some(timeout))
                .build()
                .call()
        })
        .map(|r| r.status().as_u16())
        .map_err(classify)
    }
}

/// Send a request again while its reply's status allows by the resend rule
/// (a 408: the daemon closed the kept-alive connection as unused before
/// reading the request), up to `wire::MAX_SENDS` times in all.
fn again_if_unused(
    send: impl Fn() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    let mut tries = 1;
    loop {
        let resp = send()?;
        let status = Before::Status(resp.status().as_u16());
        if !wire::may_resend(status) || tries == wire::MAX_SENDS {
            return Ok(resp);
        }
        tries += 1;
    }
}

/// What `/health` says.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Health {
    pub status: String,
    pub pid: u32,
    pub version: String,
    pub protocol: u32,
}

/// "1 s", "250 ms": a wait as messages state it.
pub fn human_wait(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// GET /health on the daemon's port, bounded by `timeout`; the error says
/// what went wrong.
pub fn health(port: u16, timeout: Duration) -> Result<Health, String> {
    let resp = agent()
        .get(format!("http://127.0.0.1:{port}/health"))
        .config()
        .timeout_global(Some(timeout))
        .build()
        .call()
        .map_err(|e| match e {
            ureq::Error::Timeout(_) => format!(
                "no answer to GET /health on port {port} within {}",
                human_wait(timeout)
            ),
            e => format!("GET /health on port {port}: {e}"),
        })?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(format!("GET /health on port {port} answered HTTP {status}"));
    }
    let bytes = resp
        .into_body()
        .into_with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    let h: Health = serde_json::from_slice(&bytes).map_err(|e| format!("bad answer: {e}"))?;
    if h.status != "ok" {
        return Err(format!("status {:?}", h.status));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &'static str) -> Events {
        let body: Box<dyn Read + Send> = Box::new(text.as_bytes());
        Events {
            lines: LineReader::new(BufReader::new(body), 1024),
            too_long: false,
        }
    }

    #[test]
    fn a_priming_event_with_empty_data_dispatches_nothing() {
        let mut e = events(
            "id: p1/1\nretry: 1000\ndata: \n\n: keepalive\n\nid: p1/2\nevent: message\ndata: {\"a\":1}\n\n",
        );
        assert_eq!(e.next_data().unwrap().as_deref(), Some("{\"a\":1}"));
        assert_eq!(e.next_data().unwrap(), None);
    }
}
