//! The daemon's MCP endpoints, speaking Streamable HTTP, written once over
//! a [`Door`]: sessions minted on `initialize`, POST answered with JSON or
//! SSE, the GET stream for unsolicited messages, DELETE to end a session.
//! Two doors: one upstream (`/u/<id>/mcp`, here, answered from the
//! upstream's cached handshake) and the hub (`/mcp`, see `hub`).

use crate::daemon::Daemon;
use crate::daemon::replay;
use crate::mcp::jsonrpc::{self, Kind};
use crate::mcp::message::Message;
use crate::mux::session::Session;
use crate::mux::upstream::{Answerer, Reply};
use crate::net::http::{self, Request, Sse};
use crate::pool::QueueTx;
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
const LAST_EVENT_ID_HEADER: &str = "Last-Event-ID";

pub(super) fn rpc_error(req: Request, status: u16, id: Value, code: i64, message: &str) {
    http::json(req, status, &jsonrpc::error(id, code, message), &[]);
}

/// A refusal: HTTP status, JSON-RPC code and message.
pub type Refusal = (u16, i64, String);

/// What an endpoint serves sessions of.
pub trait Door {
    /// Session `sid` of this door, or why not (404 "Session not found").
    fn session(&self, d: &Arc<Daemon>, sid: &str) -> Result<Arc<dyn Front>, Refusal>;
    /// Open a session for `initialize` (`msg`): the result to answer with
    /// and the session, or the HTTP status and JSON-RPC error to answer.
    fn open(
        &self,
        d: &Arc<Daemon>,
        req: &Request,
        msg: &Message,
    ) -> Result<(Value, Arc<dyn Front>), (u16, Value)>;
    /// End session `sid` (DELETE, or its client went away).
    fn end(&self, d: &Arc<Daemon>, sid: &str, reason: &str);
}

/// One session as the endpoint drives it.
pub trait Front: Send + Sync {
    fn id(&self) -> &str;
    fn version(&self) -> &str;
    /// Its client sent something.
    fn seen(&self);
    /// A request: answered at once, or forwarded (see [`Reply`]).
    fn request(
        self: Arc<Self>,
        msg: Message,
        direct: Option<Arc<dyn Answerer>>,
    ) -> Result<Reply, String>;
    /// Request `id` timed out here: forget it and cancel it downstream.
    fn timed_out(&self, id: &Value);
    /// How long its requests may take, when its server says (a configured
    /// server's `request_timeout_secs`); never past the daemon's own.
    fn request_timeout(&self) -> Option<Duration> {
        None
    }
    /// A notification from the client.
    fn notification(&self, msg: Message);
    /// The client's answer to a request sent to it.
    fn response(&self, msg: Message);
    /// Attach the GET stream; false while one is open.
    fn open_stream(&self, tx: QueueTx<Message>) -> bool;
    /// The GET stream is up: ask the client what the servers need (roots).
    fn stream_opened(&self);
    fn close_stream(&self);
    fn is_closed(&self) -> bool;
}

/// Serve one request on `door`'s endpoint.
pub fn serve(d: &Arc<Daemon>, req: Request, door: &dyn Door) {
    match req.method() {
        "POST" => post(d, req, door),
        "GET" => get(d, req, door),
        "DELETE" => delete(d, req, door),
        _ => http::empty(req, 405, &[("Allow", "GET, POST, DELETE")]),
    }
}

pub fn handle(d: &Arc<Daemon>, req: Request, upstream_id: &str) {
    serve(
        d,
        req,
        &UpstreamDoor {
            upstream_id: upstream_id.to_string(),
        },
    )
}

/// The endpoint of one upstream.
struct UpstreamDoor {
    upstream_id: String,
}

impl Door for UpstreamDoor {
    fn session(&self, d: &Arc<Daemon>, sid: &str) -> Result<Arc<dyn Front>, Refusal> {
        let not_found = || (404, -32001, "Session not found".to_string());
        match d.session(sid) {
            Some(s) if s.upstream.id == self.upstream_id && !s.upstream.is_retired() => Ok(s),
            Some(s) if s.upstream.id == self.upstream_id => {
                // Attached just as its upstream was retired for idleness: the
                // 404 makes the client initialize anew, on a fresh upstream.
                d.end_session(&s.id, "its upstream was retired");
                Err(not_found())
            }
            _ => Err(not_found()),
        }
    }

    fn open(
        &self,
        d: &Arc<Daemon>,
        req: &Request,
        msg: &Message,
    ) -> Result<(Value, Arc<dyn Front>), (u16, Value)> {
        initialize(d, req, &self.upstream_id, msg)
    }

    fn end(&self, d: &Arc<Daemon>, sid: &str, reason: &str) {
        d.end_session(sid, reason);
    }
}

impl Front for Session {
    fn id(&self) -> &str {
        &self.id
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn seen(&self) {
        Session::seen(self);
    }

    fn request(
        self: Arc<Self>,
        msg: Message,
        direct: Option<Arc<dyn Answerer>>,
    ) -> Result<Reply, String> {
        self.upstream.clone().request(&self, msg, direct)
    }

    fn request_timeout(&self) -> Option<Duration> {
        Some(self.upstream.tuning().request_timeout)
    }

    fn timed_out(&self, id: &Value) {
        if let Some(child) = self.untrack(id) {
            self.upstream.cancel(child, "mcpshare request timeout");
        }
    }

    fn notification(&self, msg: Message) {
        self.deliver_notification(msg);
    }

    fn response(&self, msg: Message) {
        if !self.deliver_response(msg) {
            crate::log!(
                "session {}: dropping a response to an unknown request",
                self.id
            );
        }
    }

    fn open_stream(&self, tx: QueueTx<Message>) -> bool {
        Session::open_stream(self, tx)
    }

    fn stream_opened(&self) {
        self.ask_roots_once();
    }

    fn close_stream(&self) {
        Session::close_stream(self);
    }

    fn is_closed(&self) -> bool {
        Session::is_closed(self)
    }
}

/// The session a request names, or the HTTP error already sent.
fn session_of(
    d: &Arc<Daemon>,
    req: Request,
    door: &dyn Door,
) -> Result<(Request, Arc<dyn Front>), ()> {
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
    let session = match door.session(d, &sid) {
        Ok(s) => s,
        Err((status, code, message)) => {
            rpc_error(req, status, Value::Null, code, &message);
            return Err(());
        }
    };
    // Any supported version is accepted, as the spec asks and the SDK's
    // server does (the conformance suite's SSE scenarios send 2025-03-26 on
    // 2025-11-25 sessions); the session's negotiated version still decides
    // what it gets.
    if let Some(v) = http::header(&req, VERSION_HEADER)
        && !jsonrpc::is_supported(v)
    {
        let msg = format!("Bad Request: unsupported MCP-Protocol-Version {v}");
        rpc_error(req, 400, Value::Null, -32000, &msg);
        return Err(());
    }
    session.seen();
    Ok((req, session))
}

fn post(d: &Arc<Daemon>, mut req: Request, door: &dyn Door) {
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
            (Kind::Request, "initialize") => open(d, req, door, msg),
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
    let Ok((req, session)) = session_of(d, req, door) else {
        return;
    };
    if kind == Kind::Request && d.is_stopping() {
        // Not acted on: a bridge sends it again to the next daemon.
        return rpc_error(
            req,
            503,
            msg.id(),
            jsonrpc::UNAVAILABLE,
            "daemon is shutting down or handing over; the request was not run",
        );
    }
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
            session.notification(msg);
            http::empty(req, 202, &[])
        }
        Kind::Response => {
            session.response(msg);
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

/// `initialize` on `door`: a new session, its id and version in headers.
fn open(d: &Arc<Daemon>, req: Request, door: &dyn Door, msg: Message) {
    let id = msg.id();
    if d.is_stopping() {
        return rpc_error(
            req,
            503,
            id,
            jsonrpc::UNAVAILABLE,
            "daemon is shutting down or handing over",
        );
    }
    match door.open(d, &req, &msg) {
        Ok((result, session)) => {
            let sid = session.id().to_string();
            let version = session.version().to_string();
            http::json(
                req,
                200,
                &jsonrpc::result(id, result),
                &[(SESSION_HEADER, &sid), (VERSION_HEADER, &version)],
            );
        }
        Err((status, error)) => {
            let mut e = error;
            e["id"] = id;
            http::json(req, status, &e, &[]);
        }
    }
}

/// A session on one upstream, answered from its cached handshake.
fn initialize(
    d: &Arc<Daemon>,
    req: &Request,
    upstream_id: &str,
    msg: &Message,
) -> Result<(Value, Arc<dyn Front>), (u16, Value)> {
    let fail =
        |status: u16, code: i64, text: String| (status, jsonrpc::error(Value::Null, code, text));
    let Some(upstream) = d.upstream(upstream_id) else {
        return Err(fail(404, -32001, format!("unknown upstream {upstream_id}")));
    };
    let mut upstream = upstream;
    let init = loop {
        match upstream.ensure_running(true) {
            Ok(init) => break init,
            // Stopped for idleness just now: the daemon registers it anew.
            Err(_) if upstream.is_retired() => upstream = d.register(upstream.spec.clone()),
            Err(e) => return Err(fail(200, jsonrpc::UNAVAILABLE, e)),
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
        client_process(req),
        params
            .pointer("/clientInfo/name")
            .and_then(Value::as_str)
            .map(String::from),
    );
    Ok((result, session))
}

/// The process a bridge names as the session's client, if it is alive.
pub(super) fn client_process(req: &Request) -> Option<crate::platform::ProcessId> {
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
fn forward(d: &Arc<Daemon>, req: Request, session: &Arc<dyn Front>, msg: Message) {
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
    let sent = session.clone().request(msg, Some(direct));
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
    let limit = session
        .request_timeout()
        .map_or(d.request_timeout, |t| t.min(d.request_timeout));
    let deadline = Instant::now() + limit;
    let timeout = |session: &Arc<dyn Front>| {
        session.timed_out(&id);
        let which = if limit < d.request_timeout {
            "the server's request_timeout_secs"
        } else {
            "MCPSHARE_REQUEST_TIMEOUT_SECS"
        };
        let text = format!("request timed out after {} s ({which})", limit.as_secs());
        Message::from_value(&jsonrpc::error(id.clone(), jsonrpc::TIMEOUT, text))
    };
    let first = rx.recv_timeout(limit);
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
    // An SSE stream: every event is kept for a reconnect (`Last-Event-ID`)
    // before it is written.
    let streams = d.replay.of(session.id());
    let key = streams.open_post();
    let mut out = Sse::start(req, &[]).ok();
    if replay::primes(session.version())
        && let Some(sse) = out.as_mut()
    {
        let at = streams.prime(&key);
        if sse
            .prime(&replay::event_id(&key, at), replay::RETRY_MS)
            .is_err()
        {
            out = None;
        }
    }
    let mut next = Some(first);
    while let Some(m) = next.take() {
        let last = m.kind() == Kind::Response;
        let (seq, mine) = streams.push(&key, m.text(), 0);
        if let Some(sse) = out.as_mut() {
            // A client that went away is not a cancellation: the upstream
            // keeps working, and what it sends, its answer included, waits
            // here for the client's reconnect.
            if !mine {
                // A reconnect took the stream over and writes it now.
                if let Some(sse) = out.take() {
                    let _ = sse.finish();
                }
            } else if sse
                .event_with_id(&replay::event_id(&key, seq), m.text())
                .is_err()
            {
                out = None;
            }
        }
        if last {
            break;
        }
        next = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => Some(timeout(session)),
            Err(RecvTimeoutError::Disconnected) => None,
        };
    }
    streams.end(&key);
    if let Some(sse) = out {
        let _ = sse.finish();
    }
}

/// A `Last-Event-ID` this session can resume: the stream and position, or
/// the refusal already sent.
fn resume_point(
    req: Request,
    streams: &replay::Streams,
) -> Result<(Request, Option<(String, u64)>), ()> {
    let Some(text) = http::header(&req, LAST_EVENT_ID_HEADER) else {
        return Ok((req, None));
    };
    match replay::parse_event_id(text) {
        Some((key, after)) if streams.knows(&key, after) => Ok((req, Some((key, after)))),
        _ => {
            rpc_error(
                req,
                400,
                Value::Null,
                -32000,
                "Bad Request: Last-Event-ID names no stream of this session that can be resumed",
            );
            Err(())
        }
    }
}

/// GET with the `Last-Event-ID` of a POST stream: what followed it, then
/// the rest of that stream, its answer included, on this connection.
fn resume_post(
    req: Request,
    session: &Arc<dyn Front>,
    streams: &replay::Streams,
    key: &str,
    mut after: u64,
) {
    let Ok(token) = streams.take_over(key, after) else {
        return rpc_error(
            req,
            400,
            Value::Null,
            -32000,
            "Bad Request: Last-Event-ID names no stream of this session that can be resumed",
        );
    };
    let Ok(mut sse) = Sse::start(req, &[]) else {
        return;
    };
    let mut last_write = Instant::now();
    loop {
        match streams.next(key, after, token, LIVENESS_EVERY) {
            replay::Next::Events(events) => {
                for (seq, data) in events {
                    if sse
                        .event_with_id(&replay::event_id(key, seq), &data)
                        .is_err()
                    {
                        return;
                    }
                    after = seq;
                }
                last_write = Instant::now();
            }
            replay::Next::Ended | replay::Next::Replaced => break,
            replay::Next::Idle if session.is_closed() => break,
            replay::Next::Idle if sse.client_gone() => return,
            replay::Next::Idle if last_write.elapsed() >= KEEPALIVE_EVERY => {
                if sse.comment("keepalive").is_err() {
                    return;
                }
                last_write = Instant::now();
            }
            replay::Next::Idle => {}
        }
    }
    let _ = sse.finish();
}

fn get(d: &Arc<Daemon>, req: Request, door: &dyn Door) {
    if !http::accepts(&req, &["text/event-stream"]) {
        return rpc_error(
            req,
            406,
            Value::Null,
            -32000,
            "Not Acceptable: Accept must list text/event-stream",
        );
    }
    let Ok((req, session)) = session_of(d, req, door) else {
        return;
    };
    let streams = d.replay.of(session.id());
    let Ok((req, resume)) = resume_point(req, &streams) else {
        return;
    };
    let resumed = match resume {
        Some((key, after)) if key != replay::GET_KEY => {
            return resume_post(req, &session, &streams, &key, after);
        }
        Some((_, after)) => Some(after),
        None => None,
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
    let key = replay::GET_KEY;
    let Ok(mut sse) = Sse::start(req, &[]) else {
        session.close_stream();
        return;
    };
    streams.open_get();
    // What the last connection may have missed comes first (queued
    // messages were never written, so are not among it), then a fresh
    // stream's priming event.
    let mut written = Ok(());
    match resumed {
        Some(after) => {
            for (seq, data) in streams.after(key, after) {
                written =
                    written.and_then(|()| sse.event_with_id(&replay::event_id(key, seq), &data));
            }
        }
        None if replay::primes(session.version()) => {
            let at = streams.prime(key);
            written = sse.prime(&replay::event_id(key, at), replay::RETRY_MS);
        }
        None => {}
    }
    if written.is_ok() {
        session.stream_opened();
    }
    let mut last_write = Instant::now();
    let client_gone = written.is_err()
        || loop {
            let sent = match rx.recv_timeout(LIVENESS_EVERY) {
                Ok(m) => {
                    let (seq, _) = streams.push(key, m.text(), 0);
                    sse.event_with_id(&replay::event_id(key, seq), m.text())
                }
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
    // Ended before the session lets another GET stream open.
    streams.end(key);
    session.close_stream();
    // A client that closed its GET stream may resume it (`Last-Event-ID`):
    // its session lives on until DELETE, its client process exits, or it
    // has been idle too long.
    if !client_gone {
        let _ = sse.finish();
    }
}

fn delete(d: &Arc<Daemon>, req: Request, door: &dyn Door) {
    let Ok((req, session)) = session_of(d, req, door) else {
        return;
    };
    door.end(d, session.id(), "session deleted by client");
    d.replay.forget(session.id());
    http::empty(req, 200, &[])
}
