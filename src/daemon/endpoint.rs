//! The daemon's per-upstream MCP endpoint, `/u/<id>/mcp`, speaking
//! Streamable HTTP: sessions minted on `initialize` and answered from the
//! upstream's cached handshake, POST answered with JSON or SSE, the GET
//! stream for unsolicited messages, DELETE to end a session.

use crate::daemon::Daemon;
use crate::mcp::jsonrpc::{self, Kind};
use crate::mcp::message::Message;
use crate::mux::session::{Asker, Session};
use crate::mux::upstream::{Answerer, Reply};
use crate::net::http::{self, Request, Sse};
use crate::pool::lock;
use serde_json::{Value, json};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A comment on an idle GET stream this often; a failed write ends the session.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(15);
/// How often an idle GET stream checks that its client is still connected.
const LIVENESS_EVERY: Duration = Duration::from_secs(1);

const SESSION_HEADER: &str = "Mcp-Session-Id";
const VERSION_HEADER: &str = "MCP-Protocol-Version";

fn rpc_error(req: Request, status: u16, id: Value, code: i64, message: &str) {
    http::json(req, status, &jsonrpc::error(id, code, message), &[]);
}

pub fn handle(d: &Arc<Daemon>, req: Request, upstream_id: &str) {
    match req.method() {
        "POST" => post(d, req, upstream_id),
        "GET" => get(d, req, upstream_id),
        "DELETE" => delete(d, req, upstream_id),
        _ => http::empty(req, 405, &[("Allow", "GET, POST, DELETE")]),
    }
}

/// The session a request names, or the HTTP error already sent.
fn session_of(d: &Daemon, req: Request, upstream_id: &str) -> Result<(Request, Arc<Session>), ()> {
    let Some(sid) = http::header(&req, SESSION_HEADER).map(str::to_string) else {
        rpc_error(
            req,
            400,
            Value::Null,
            -32000,
            "Bad Request: missing Mcp-Session-Id header",
        );
        return Err(());
    };
    let session = match d.session(&sid) {
        Some(s) if s.upstream.id == upstream_id && !s.upstream.is_retired() => s,
        Some(s) if s.upstream.id == upstream_id => {
            // Attached just as its upstream was retired for idleness: the
            // 404 makes the client initialize anew, on a fresh upstream.
            d.end_session(&s.id, "its upstream was retired");
            rpc_error(req, 404, Value::Null, -32001, "Session not found");
            return Err(());
        }
        _ => {
            rpc_error(req, 404, Value::Null, -32001, "Session not found");
            return Err(());
        }
    };
    if let Some(v) = http::header(&req, VERSION_HEADER)
        && (!jsonrpc::is_supported(v) || v != session.version)
    {
        let msg = format!(
            "Bad Request: MCP-Protocol-Version {v} does not match the session's {}",
            session.version
        );
        rpc_error(req, 400, Value::Null, -32000, &msg);
        return Err(());
    }
    session.seen();
    Ok((req, session))
}

fn post(d: &Arc<Daemon>, mut req: Request, upstream_id: &str) {
    if !http::accepts(&req, &["application/json", "text/event-stream"]) {
        return rpc_error(
            req,
            406,
            Value::Null,
            -32000,
            "Not Acceptable: Accept must list application/json and text/event-stream",
        );
    }
    let ct = http::header(&req, "Content-Type").unwrap_or("");
    if ct.split(';').next().map(str::trim) != Some("application/json") {
        return rpc_error(
            req,
            415,
            Value::Null,
            -32000,
            "Unsupported Media Type: Content-Type must be application/json",
        );
    }
    let msg = match Message::parse(req.take_body()) {
        Ok(m) => m,
        Err(e) => {
            return rpc_error(
                req,
                400,
                Value::Null,
                jsonrpc::PARSE_ERROR,
                &format!("Parse error: {e}"),
            );
        }
    };
    if msg.is_array() {
        let text = "Invalid Request: batches are not accepted on this endpoint";
        return rpc_error(req, 400, Value::Null, jsonrpc::INVALID_REQUEST, text);
    }
    let kind = msg.kind();
    let method = msg.method().unwrap_or("");
    if http::header(&req, SESSION_HEADER).is_none() {
        return match (kind, method) {
            (Kind::Request, "initialize") => initialize(d, req, upstream_id, msg),
            // A modern-era probe: a non-modern error makes dual-era clients fall back.
            _ => rpc_error(
                req,
                400,
                msg.id(),
                -32000,
                "Bad Request: Server not initialized",
            ),
        };
    }
    let Ok((req, session)) = session_of(d, req, upstream_id) else {
        return;
    };
    match kind {
        Kind::Request => match method {
            "initialize" => rpc_error(
                req,
                400,
                msg.id(),
                jsonrpc::INVALID_REQUEST,
                "session is already initialized",
            ),
            _ => forward(d, req, &session, msg),
        },
        Kind::Notification => {
            match method {
                // The daemon answers the upstream's roots/list itself, from
                // every client's roots: it asks this client for its own.
                "notifications/initialized" => session.ask_roots_once(),
                "notifications/roots/list_changed" => {
                    if session.has_capability("roots") {
                        session.ask_roots();
                    }
                }
                _ => {
                    if let Err(e) = session.upstream.notify(&session, msg) {
                        crate::log!("session {}: notification not delivered: {e}", session.id);
                    }
                }
            }
            http::empty(req, 202, &[])
        }
        Kind::Response => {
            match session.take_server_request(&msg.id()) {
                Some(Asker::Child { generation, id }) => {
                    if let Err(e) = session.upstream.respond(generation, id, msg) {
                        crate::log!("session {}: response not delivered: {e}", session.id);
                    }
                }
                Some(Asker::Roots) => {
                    // Not passed through: the daemon answers the
                    // upstream's roots/list with the union of these.
                    let roots = msg.value_at(&["result", "roots"]);
                    let roots = roots.as_ref().and_then(Value::as_array);
                    if roots.is_none() {
                        crate::log!(
                            "session {}: its roots/list answer holds no roots",
                            session.id
                        );
                    }
                    session
                        .upstream
                        .set_roots(&session, roots.cloned().unwrap_or_default());
                }
                None => crate::log!(
                    "session {}: dropping a response to an unknown request",
                    session.id
                ),
            }
            http::empty(req, 202, &[])
        }
        Kind::Invalid => rpc_error(
            req,
            400,
            msg.id(),
            jsonrpc::INVALID_REQUEST,
            "Invalid Request",
        ),
    }
}

fn initialize(d: &Arc<Daemon>, req: Request, upstream_id: &str, msg: Message) {
    let id = msg.id();
    let Some(upstream) = d.upstream(upstream_id) else {
        return rpc_error(
            req,
            404,
            id,
            -32001,
            &format!("unknown upstream {upstream_id}"),
        );
    };
    if d.is_stopping() {
        return rpc_error(
            req,
            503,
            id,
            jsonrpc::UNAVAILABLE,
            "daemon is shutting down or handing over",
        );
    }
    let mut upstream = upstream;
    let init = loop {
        match upstream.ensure_running(true) {
            Ok(init) => break init,
            // Stopped for idleness just now: the daemon registers it anew.
            Err(_) if upstream.is_retired() => upstream = d.register(upstream.spec.clone()),
            Err(e) => {
                return http::json(req, 200, &jsonrpc::error(id, jsonrpc::UNAVAILABLE, e), &[]);
            }
        }
    };
    let params = msg.value_at(&["params"]).unwrap_or(Value::Null);
    let version = jsonrpc::negotiate(params.get("protocolVersion").and_then(Value::as_str));
    let mut result = init;
    result["protocolVersion"] = json!(version);
    if let Some(caps) = result
        .get_mut("capabilities")
        .and_then(Value::as_object_mut)
    {
        // Task ids are not isolated per session here; do not offer them.
        caps.remove("tasks");
        // The daemon itself announces list changes after an upstream restart.
        for list in ["tools", "prompts", "resources"] {
            if let Some(obj) = caps.get_mut(list).and_then(Value::as_object_mut) {
                obj.insert("listChanged".into(), json!(true));
            }
        }
    }
    let capabilities = params.get("capabilities").cloned().unwrap_or(json!({}));
    let session = d.new_session(
        &upstream,
        version.to_string(),
        capabilities,
        client_process(&req),
        params
            .pointer("/clientInfo/name")
            .and_then(Value::as_str)
            .map(String::from),
    );
    let sid = session.id.clone();
    http::json(
        req,
        200,
        &jsonrpc::result(id, result),
        &[(SESSION_HEADER, &sid), (VERSION_HEADER, version)],
    );
}

/// The process a bridge names as the session's client, if it is alive.
fn client_process(req: &Request) -> Option<crate::platform::ProcessId> {
    let pid = http::header(req, crate::net::client::CLIENT_PID_HEADER)?
        .parse::<u32>()
        .ok()
        .filter(|p| *p > 1)?;
    let start_time = crate::platform::start_time(pid)?;
    Some(crate::platform::ProcessId { pid, start_time })
}

/// The HTTP request of a call in flight, until its answer is written: by
/// the upstream's reader thread when the answer is all there is (see
/// [`Answerer`]), else by the connection's own thread.
struct Pending {
    state: Mutex<Slot>,
}

struct Slot {
    /// The request, until one thread takes it to answer.
    req: Option<Request>,
    /// Something came before the answer, or the connection's thread took
    /// the request back: the reader thread must not answer.
    taken_back: bool,
    /// What of the reader's answer the socket did not take at once: the
    /// connection's thread writes it, so the reader never waits on a client.
    unsent: Option<http::Unsent>,
}

/// Answers larger than this go through the connection's own thread, so the
/// upstream's reader never waits on a slow client's socket.
const DIRECT_MAX: usize = 64 * 1024;
/// How long a timed-out call waits for an answer the reader is writing.
const DIRECT_WRITE_WAIT: Duration = Duration::from_secs(5);

impl Pending {
    /// Take the request back; the reader thread will no longer answer it.
    /// None if it already has.
    fn reclaim(&self) -> Option<Request> {
        let mut slot = lock(&self.state);
        slot.taken_back = true;
        slot.req.take()
    }
}

impl Answerer for Pending {
    fn answer(&self, answer: &Message) {
        let bytes = answer.text().as_bytes();
        if bytes.len() > DIRECT_MAX {
            return;
        }
        let req = {
            let mut slot = lock(&self.state);
            if slot.taken_back {
                return;
            }
            slot.req.take()
        };
        if let Some(req) = req
            && let Some(unsent) = http::json_bytes_now(req, 200, bytes)
        {
            lock(&self.state).unsent = Some(unsent);
        }
    }

    fn streaming(&self) {
        lock(&self.state).taken_back = true;
    }
}

/// Send a request to the upstream and stream back what belongs to it:
/// plain JSON when the answer is all there is, SSE when progress, log
/// messages or the upstream's own requests come first.
fn forward(d: &Arc<Daemon>, req: Request, session: &Arc<Session>, msg: Message) {
    let _answering = d.calls.acquire();
    let id = msg.id();
    let pending = Arc::new(Pending {
        state: Mutex::new(Slot {
            req: Some(req),
            taken_back: false,
            unsent: None,
        }),
    });
    let direct: Arc<dyn Answerer> = pending.clone();
    let sent = session.upstream.request(session, msg, Some(direct));
    let rx = match sent {
        Ok(Reply::Forwarded(rx)) => rx,
        Ok(Reply::Local(answer)) => {
            if let Some(req) = pending.reclaim() {
                http::json_bytes(req, 200, answer.text().as_bytes(), &[]);
            }
            return;
        }
        Err(e) => {
            if let Some(req) = pending.reclaim() {
                http::json(req, 200, &jsonrpc::error(id, jsonrpc::UNAVAILABLE, e), &[]);
            }
            return;
        }
    };
    let deadline = Instant::now() + d.request_timeout;
    let timeout = |session: &Session| {
        if let Some(child) = session.untrack(&id) {
            session.upstream.cancel(child, "mcpshare request timeout");
        }
        let text = format!(
            "request timed out after {} s (MCPSHARE_REQUEST_TIMEOUT_SECS)",
            d.request_timeout.as_secs()
        );
        Message::from_value(&jsonrpc::error(id.clone(), jsonrpc::TIMEOUT, text))
    };
    let first = rx.recv_timeout(d.request_timeout);
    let Some(req) = pending.reclaim() else {
        // The reader thread took the answer; it sends it on once written,
        // and the connection must not be reused before.
        if first.is_err() {
            let _ = rx.recv_timeout(DIRECT_WRITE_WAIT);
        }
        let unsent = lock(&pending.state).unsent.take();
        if let Some(unsent) = unsent {
            unsent.finish();
        }
        return;
    };
    let first = match first {
        Ok(m) => m,
        Err(RecvTimeoutError::Timeout) => {
            let answer = timeout(session);
            return http::json_bytes(req, 200, answer.text().as_bytes(), &[]);
        }
        // Cancelled by the client: no response is owed.
        Err(RecvTimeoutError::Disconnected) => {
            if let Ok(s) = Sse::start(req, &[]) {
                let _ = s.finish();
            }
            return;
        }
    };
    if first.kind() == Kind::Response {
        return http::json_bytes(req, 200, first.text().as_bytes(), &[]);
    }
    let Ok(mut sse) = Sse::start(req, &[]) else {
        return;
    };
    let mut next = Some(first);
    while let Some(m) = next.take() {
        let last = m.kind() == Kind::Response;
        // A client that went away is not a cancellation: the upstream keeps
        // working and its answer is dropped with the pending entry.
        if sse.event(m.text()).is_err() || last {
            break;
        }
        next = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => Some(timeout(session)),
            Err(RecvTimeoutError::Disconnected) => None,
        };
    }
    let _ = sse.finish();
}

fn get(d: &Arc<Daemon>, req: Request, upstream_id: &str) {
    if !http::accepts(&req, &["text/event-stream"]) {
        return rpc_error(
            req,
            406,
            Value::Null,
            -32000,
            "Not Acceptable: Accept must list text/event-stream",
        );
    }
    let Ok((req, session)) = session_of(d, req, upstream_id) else {
        return;
    };
    let (tx, rx) = crate::pool::queue(crate::mux::session::STREAM_QUEUE);
    if !session.open_stream(tx) {
        return rpc_error(
            req,
            409,
            Value::Null,
            -32000,
            "Conflict: this session already has a GET stream",
        );
    }
    let Ok(mut sse) = Sse::start(req, &[]) else {
        session.close_stream();
        return;
    };
    session.ask_roots_once();
    let mut last_write = Instant::now();
    let client_gone = loop {
        let sent = match rx.recv_timeout(LIVENESS_EVERY) {
            Ok(m) => sse.event(m.text()),
            Err(RecvTimeoutError::Timeout) if session.is_closed() => break false,
            Err(RecvTimeoutError::Timeout) if sse.client_gone() => break true,
            Err(RecvTimeoutError::Timeout) if last_write.elapsed() >= KEEPALIVE_EVERY => {
                sse.comment("keepalive")
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break false,
        };
        if sent.is_err() {
            break true;
        }
        last_write = Instant::now();
    };
    session.close_stream();
    if client_gone {
        d.end_session(&session.id, "client disconnected");
    } else {
        let _ = sse.finish();
    }
}

fn delete(d: &Arc<Daemon>, req: Request, upstream_id: &str) {
    let Ok((req, session)) = session_of(d, req, upstream_id) else {
        return;
    };
    d.end_session(&session.id, "session deleted by client");
    http::empty(req, 200, &[])
}
