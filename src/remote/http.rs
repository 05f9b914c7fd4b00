//! Streamable HTTP: each message is POSTed; a request's answer comes back
//! as JSON or as an event stream (its progress and the server's own
//! requests first); the GET stream, opened after `notifications/
//! initialized`, carries the server's unsolicited messages; DELETE ends
//! the session when stdin closes.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

type Response = ureq::http::Response<ureq::Body>;

/// Notifications and responses waiting to be POSTed, in order.
const NOTIFY_QUEUE: usize = 1024;
/// A GET stream that lasted this long starts the backoff anew.
const STREAM_STEADY: Duration = Duration::from_secs(60);

struct Relay {
    url: String,
    headers: BTreeMap<String, String>,
    agent: ureq::Agent,
    session: Mutex<Session>,
    in_flight: AtomicUsize,
}

#[derive(Default, Clone)]
struct Session {
    id: Option<String>,
    version: Option<String>,
}

/// Why a message's POST did not give what it should have.
enum Failure {
    /// The remote server forgot the session (404 to a message that had it).
    Expired,
    Other(String),
}

pub fn run(remote: &Remote, agent: ureq::Agent) -> i32 {
    let relay = Arc::new(Relay {
        url: remote.url.clone(),
        headers: remote.headers.clone(),
        agent,
        session: Mutex::new(Session::default()),
        in_flight: AtomicUsize::new(0),
    });
    // Dropped when stdin ends: the GET stream's backoff stops waiting.
    let (stopping, stop) = channel::<()>();
    let mut stop = Some(stop);
    let notes = match relay.clone().start_notifier() {
        Ok(n) => n,
        Err(e) => {
            say(&e);
            return 1;
        }
    };
    let mut stdin = Stdin::new();
    while let Some(msg) = stdin.next() {
        match kind(&msg) {
            Kind::Request if msg["method"] == "initialize" => relay.initialize(&msg),
            Kind::Request => relay.clone().spawn_request(msg),
            Kind::Notification if msg["method"] == "notifications/initialized" => {
                // Inline, so that the stream opens on an initialized session.
                relay.notify(&msg);
                if let Some(stop) = stop.take() {
                    relay.clone().open_stream(stop);
                }
            }
            Kind::Notification | Kind::Response => match notes.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    say("too many notifications waiting to be sent; one dropped")
                }
                Err(TrySendError::Disconnected(_)) => return 1,
            },
            Kind::Invalid => say("stdin: not a JSON-RPC message; dropped"),
        }
    }
    drop(stopping);
    relay.delete();
    0
}

impl Relay {
    fn session(&self) -> Session {
        crate::pool::lock(&self.session).clone()
    }

    fn post(&self, msg: &Value, timeout: Duration) -> Result<Response, String> {
        let s = self.session();
        let mut req = self
            .agent
            .post(&self.url)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json");
        req = with_headers(req, &self.headers, &s);
        req.config()
            .timeout_global(Some(timeout))
            .build()
            .send(msg.to_string())
            .map_err(|e| self.unreachable("POST", e, timeout))
    }

    fn unreachable(&self, method: &str, e: ureq::Error, timeout: Duration) -> String {
        match e {
            ureq::Error::Timeout(ureq::Timeout::Connect) => format!(
                "cannot connect to the remote server {} within {} s",
                self.url,
                CONNECT_TIMEOUT.as_secs()
            ),
            ureq::Error::Timeout(_) => format!(
                "no answer to {method} from the remote server {} within {} s",
                self.url,
                timeout.as_secs()
            ),
            e => format!("cannot reach the remote server {}: {e}", self.url),
        }
    }

    /// The POST of `initialize`, on the stdin thread: nothing else is sent
    /// before the session's id and version are known.
    fn initialize(&self, msg: &Value) {
        let id = jsonrpc::id(msg);
        let timeout = crate::state::settings::start_timeout() + POST_SLACK;
        let resp = match self.post(msg, timeout) {
            Ok(r) => r,
            Err(e) => {
                say(&e);
                return fail(&id, e);
            }
        };
        if (200..300).contains(&resp.status().as_u16()) {
            let session = header(&resp, "mcp-session-id");
            crate::pool::lock(&self.session).id = session;
        }
        match self.relay_reply(Some(&id), resp) {
            Ok(answer) => {
                let version = answer
                    .as_ref()
                    .and_then(|a| a.pointer("/result/protocolVersion"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let mut s = crate::pool::lock(&self.session);
                if version.is_some() {
                    s.version = version;
                    say(&format!(
                        "connected to {} (Streamable HTTP, protocol {}, {})",
                        self.url,
                        s.version.as_deref().unwrap_or("?"),
                        if s.id.is_some() {
                            "with a session"
                        } else {
                            "no session"
                        }
                    ));
                }
            }
            Err(Failure::Expired) => self.expired(Some(&id)),
            Err(Failure::Other(e)) => {
                say(&format!("initialize: {e}"));
                fail(&id, e);
            }
        }
    }

    /// A request's POST on a thread of its own: a long call holds up none.
    fn spawn_request(self: Arc<Self>, msg: Value) {
        let id = jsonrpc::id(&msg);
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return fail(
                &id,
                format!("more than {MAX_IN_FLIGHT} requests to {} at once", self.url),
            );
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("remote-request".into())
            .spawn(move || {
                me.request(&msg);
                me.in_flight.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            fail(&id, format!("cannot start a thread: {e}"));
        }
    }

    fn request(&self, msg: &Value) {
        let id = jsonrpc::id(msg);
        let timeout = crate::state::settings::request_timeout() + POST_SLACK;
        let resp = match self.post(msg, timeout) {
            Ok(r) => r,
            Err(e) => {
                say(&e);
                return fail(&id, e);
            }
        };
        match self.relay_reply(Some(&id), resp) {
            Ok(_) => {}
            Err(Failure::Expired) => self.expired(Some(&id)),
            Err(Failure::Other(e)) => {
                say(&format!("{}: {e}", msg["method"].as_str().unwrap_or("?")));
                fail(&id, e);
            }
        }
    }

    /// POST a notification or a response: nothing comes back but a status.
    fn notify(&self, msg: &Value) {
        let what = msg["method"].as_str().unwrap_or("a response").to_string();
        match self.post(msg, NOTIFY_TIMEOUT) {
            Err(e) => say(&format!("{what}: {e}")),
            Ok(resp) => match self.relay_reply(None, resp) {
                Ok(_) => {}
                Err(Failure::Expired) => self.expired(None),
                Err(Failure::Other(e)) => say(&format!("{what}: {e}")),
            },
        }
    }

    /// The thread that POSTs notifications and responses in their order.
    fn start_notifier(self: Arc<Self>) -> Result<SyncSender<Value>, String> {
        let (tx, rx) = sync_channel::<Value>(NOTIFY_QUEUE);
        std::thread::Builder::new()
            .name("remote-notify".into())
            .spawn(move || {
                for msg in rx {
                    self.notify(&msg);
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(tx)
    }

    /// Write what the remote server answered a POST with; the answer to
    /// request `id`, which must be in it.
    fn relay_reply(&self, id: Option<&Value>, resp: Response) -> Result<Option<Value>, Failure> {
        let status = resp.status().as_u16();
        let had_session = self.session().id.is_some();
        match status {
            202 | 204 if id.is_none() => return Ok(None),
            202 | 204 => {
                return Err(Failure::Other(format!(
                    "the remote server {} answered a request with HTTP {status} and no response",
                    self.url
                )));
            }
            404 if had_session => return Err(Failure::Expired),
            200..=299 => {}
            _ => {
                return Err(Failure::Other(status_error(
                    &self.url,
                    status,
                    resp.into_body().into_reader(),
                )));
            }
        }
        let sse = header(&resp, "content-type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/event-stream"));
        let body = resp.into_body().into_reader();
        let mut answer = None;
        let mut deliver = |msg: Value| {
            if id.is_some_and(|id| answers(&msg, id)) {
                answer = Some(msg.clone());
            }
            emit(&msg);
        };
        let ended = if sse {
            let mut events = Events::new(body);
            loop {
                match events.next() {
                    Ok(None) => break None,
                    Err(e) => break Some(e.to_string()),
                    Ok(Some(ev)) => {
                        if let Some(m) = event_message(&ev.data) {
                            deliver(m);
                        }
                    }
                }
            }
        } else {
            let max = jsonrpc::max_message();
            let mut b = Vec::new();
            match body.take(max as u64 + 1).read_to_end(&mut b) {
                Err(e) => Some(e.to_string()),
                Ok(_) if b.len() > max => Some(format!(
                    "its answer exceeds MCPSHARE_MAX_MESSAGE_BYTES ({max})"
                )),
                Ok(_) if id.is_none() => None,
                Ok(_) => match serde_json::from_slice::<Value>(&b) {
                    Ok(Value::Array(batch)) => {
                        batch.into_iter().for_each(&mut deliver);
                        None
                    }
                    Ok(m) => {
                        deliver(m);
                        None
                    }
                    Err(e) => Some(format!("its answer is not JSON: {e}")),
                },
            }
        };
        match (id, answer) {
            (Some(_), None) => Err(Failure::Other(format!(
                "the remote server {} gave no response to the request{}",
                self.url,
                ended.map(|e| format!(" ({e})")).unwrap_or_default()
            ))),
            (_, answer) => {
                if let Some(e) = ended {
                    say(&format!("reading from {}: {e}", self.url));
                }
                Ok(answer)
            }
        }
    }

    /// The remote server forgot the session. Starting a new one here would
    /// lose what the client set up on the old one unseen: answer, say so,
    /// and exit, so the daemon restarts this upstream as after a crash
    /// (its handshake again, and `list_changed` to every client).
    fn expired(&self, id: Option<&Value>) -> ! {
        let e = format!(
            "the remote server {} ended the session (HTTP 404); the upstream restarts",
            self.url
        );
        say(&e);
        if let Some(id) = id {
            fail(id, e);
        }
        std::process::exit(1);
    }

    /// The GET stream of the server's own messages, on a thread of its own,
    /// reopened with a bounded backoff until `stop` says stdin ended.
    fn open_stream(self: Arc<Self>, stop: Receiver<()>) {
        let spawned = std::thread::Builder::new()
            .name("remote-stream".into())
            .spawn(move || self.stream_loop(&stop));
        if let Err(e) = spawned {
            say(&format!("cannot start the stream's thread: {e}"));
        }
    }

    fn stream_loop(&self, stop: &Receiver<()>) {
        let mut backoff = REOPEN_FIRST;
        loop {
            let opened = Instant::now();
            if !self.stream_once() {
                return;
            }
            if opened.elapsed() >= STREAM_STEADY {
                backoff = REOPEN_FIRST;
            }
            say(&format!(
                "reopening the stream of {} in {} s",
                self.url,
                backoff.as_secs()
            ));
            if !pause(stop, backoff) {
                return;
            }
            backoff = (backoff * 2).min(REOPEN_MAX);
        }
    }

    /// One GET stream, read to its end; false when there is none to reopen.
    fn stream_once(&self) -> bool {
        let s = self.session();
        let req = with_headers(
            self.agent
                .get(&self.url)
                .header("Accept", "text/event-stream"),
            &self.headers,
            &s,
        );
        let resp = match req
            .config()
            .timeout_per_read(Some(STREAM_SILENCE))
            .build()
            .call()
        {
            Ok(r) => r,
            Err(e) => {
                say(&format!(
                    "stream: {}",
                    self.unreachable("GET", e, STREAM_SILENCE)
                ));
                return true;
            }
        };
        match resp.status().as_u16() {
            405 => {
                say("the remote server has no stream of its own messages (HTTP 405 to GET)");
                return false;
            }
            404 if s.id.is_some() => self.expired(None),
            200 => {}
            status => {
                say(&format!(
                    "stream: {}",
                    status_error(&self.url, status, resp.into_body().into_reader())
                ));
                return true;
            }
        }
        say(&format!("stream of {} open", self.url));
        let mut events = Events::new(resp.into_body().into_reader());
        loop {
            match events.next() {
                Ok(Some(ev)) => {
                    if let Some(m) = event_message(&ev.data) {
                        emit(&m);
                    }
                }
                Ok(None) => {
                    say(&format!("the stream of {} ended", self.url));
                    return true;
                }
                Err(e) => {
                    say(&format!("the stream of {} failed: {e}", self.url));
                    return true;
                }
            }
        }
    }

    /// End the session at the remote server (bounded); stdin has ended.
    fn delete(&self) {
        let s = self.session();
        if s.id.is_none() {
            return;
        }
        let req = with_headers(self.agent.delete(&self.url), &self.headers, &s);
        match req
            .config()
            .timeout_global(Some(DELETE_TIMEOUT))
            .build()
            .call()
        {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 405 => {}
            Ok(r) => say(&format!(
                "DELETE of the session: {}",
                status_error(&self.url, r.status().as_u16(), r.into_body().into_reader())
            )),
            Err(e) => say(&format!(
                "DELETE of the session: {}",
                self.unreachable("DELETE", e, DELETE_TIMEOUT)
            )),
        }
    }
}

/// The configured headers (never the protocol's own, which this relay
/// sets), then the session's.
fn with_headers<B>(
    mut req: ureq::RequestBuilder<B>,
    headers: &BTreeMap<String, String>,
    s: &Session,
) -> ureq::RequestBuilder<B> {
    const OURS: [&str; 4] = [
        "accept",
        "content-type",
        "mcp-session-id",
        "mcp-protocol-version",
    ];
    for (k, v) in headers {
        if !OURS.contains(&k.to_ascii_lowercase().as_str()) {
            req = req.header(k, v);
        }
    }
    if let Some(id) = &s.id {
        req = req.header("Mcp-Session-Id", id);
    }
    if let Some(v) = &s.version {
        req = req.header("MCP-Protocol-Version", v);
    }
    req
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
