//! One client session on one upstream: its negotiated version and
//! capabilities, the map from its request ids to the child's, the ids of
//! the child's requests forwarded to it, and the queue feeding its GET
//! stream. Nothing here is shared with another session.

use crate::mcp::message::Message;
use crate::mux::upstream::Upstream;
use crate::pool::QueueTx;
use crate::pool::lock;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::TrySendError;
use std::sync::{Arc, Mutex};

/// Messages kept for a session with no GET stream open; older ones drop.
const OUTBOX_LIMIT: usize = 1024;
/// Messages waiting for an open GET stream's writer; a client that lets
/// more pile up is not reading, and its session is closed.
pub const STREAM_QUEUE: usize = 4096;

/// A JSON id as a map key that keeps its type: `1` and `"1"` differ.
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

/// Who sent a request this client is to answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Asker {
    /// The upstream's child: its generation and its own request id.
    Child { generation: u64, id: Value },
    /// The daemon, asking for this client's roots.
    Roots,
}

struct Outbox {
    stream: Option<QueueTx<Message>>,
    queue: VecDeque<Message>,
}

pub struct Session {
    pub id: String,
    pub upstream: Arc<Upstream>,
    pub version: String,
    capabilities: Value,
    /// Client request id (as key) → child request id.
    inflight: Mutex<HashMap<String, u64>>,
    /// Client-side id (as key) → who asked: the child or the daemon.
    server_requests: Mutex<HashMap<String, Asker>>,
    next_server_request: AtomicU64,
    outbox: Mutex<Outbox>,
    closed: AtomicBool,
    /// Its client stopped draining what is sent to it: the daemon closes it.
    stalled: AtomicBool,
    /// The daemon has asked this client for its roots.
    asked_roots: AtomicBool,
    /// When its client last sent anything.
    last_seen: Mutex<std::time::Instant>,
    /// The level this client asked for with `logging/setLevel`.
    level: Mutex<Option<String>>,
    /// Resource URIs this client subscribed to.
    subscriptions: Mutex<HashSet<String>>,
    /// The bridge process that opened this session, if one did: the
    /// session ends as soon as that process is gone.
    pub client: Option<crate::platform::ProcessId>,
    /// The `clientInfo.name` its client gave in `initialize`.
    pub client_name: Option<String>,
}

/// Log levels from least to most severe (RFC 5424, as MCP names them).
pub const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

pub fn severity(level: &str) -> Option<usize> {
    LEVELS.iter().position(|l| *l == level)
}

impl Session {
    pub fn new(
        id: String,
        upstream: Arc<Upstream>,
        version: String,
        capabilities: Value,
        client: Option<crate::platform::ProcessId>,
        client_name: Option<String>,
    ) -> Session {
        Session {
            id,
            upstream,
            version,
            capabilities,
            inflight: Mutex::new(HashMap::new()),
            server_requests: Mutex::new(HashMap::new()),
            next_server_request: AtomicU64::new(1),
            outbox: Mutex::new(Outbox {
                stream: None,
                queue: VecDeque::new(),
            }),
            closed: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            last_seen: Mutex::new(std::time::Instant::now()),
            asked_roots: AtomicBool::new(false),
            level: Mutex::new(None),
            subscriptions: Mutex::new(HashSet::new()),
            client,
            client_name,
        }
    }

    pub fn level(&self) -> Option<String> {
        lock(&self.level).clone()
    }

    pub fn set_level(&self, level: &str) {
        *lock(&self.level) = Some(level.to_string());
    }

    /// Does this client want a log message of `level`?
    pub fn wants_log(&self, level: Option<&str>) -> bool {
        match (
            self.level().as_deref().and_then(severity),
            level.and_then(severity),
        ) {
            (Some(min), Some(l)) => l >= min,
            _ => true,
        }
    }

    /// Record a subscription; false if this session had it already.
    pub fn subscribe(&self, uri: &str) -> bool {
        lock(&self.subscriptions).insert(uri.to_string())
    }

    /// Drop a subscription; false if this session did not have it.
    pub fn unsubscribe(&self, uri: &str) -> bool {
        lock(&self.subscriptions).remove(uri)
    }

    pub fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.subscriptions).contains(uri)
    }

    pub fn subscriptions(&self) -> Vec<String> {
        lock(&self.subscriptions).iter().cloned().collect()
    }

    /// Did the client declare `name` (`sampling`, or a part of one such as
    /// `sampling.tools`)? Elicitation declared as `{}` means form mode, as
    /// the 2025-06-18 revision had it.
    pub fn has_capability(&self, name: &str) -> bool {
        let (top, part) = name.split_once('.').unwrap_or((name, ""));
        let Some(cap) = self.capabilities.get(top).filter(|v| !v.is_null()) else {
            return false;
        };
        match (top, part) {
            (_, "") => true,
            ("elicitation", "form") => {
                cap.get("form").is_some() || cap.as_object().is_some_and(|o| o.is_empty())
            }
            _ => cap.get(part).is_some_and(|v| !v.is_null()),
        }
    }

    pub fn track(&self, orig: &Value, child_id: u64) {
        lock(&self.inflight).insert(id_key(orig), child_id);
    }

    pub fn untrack(&self, orig: &Value) -> Option<u64> {
        lock(&self.inflight).remove(&id_key(orig))
    }

    /// A client-side id for a request to this client, remembering who asked.
    fn ask_id(&self, asker: Asker) -> Value {
        // Unique across sessions too: a hub client answers the requests of
        // several member sessions on one stream.
        let client_id = json!(format!(
            "mcpshare-{}-{}",
            &self.id[..self.id.len().min(8)],
            self.next_server_request.fetch_add(1, Ordering::Relaxed)
        ));
        lock(&self.server_requests).insert(id_key(&client_id), asker);
        client_id
    }

    /// Rewrite a child's request for this client, remembering the way back.
    pub fn server_request(&self, generation: u64, mut msg: Message) -> Message {
        let id = msg.id();
        msg.set_id(&self.ask_id(Asker::Child { generation, id }));
        msg
    }

    /// Ask a roots-capable client for its roots once it is ready (it sent
    /// `initialized`, or opened its stream: a bridge keeps `initialized` to
    /// itself), unless already asked.
    pub fn ask_roots_once(&self) {
        if self.has_capability("roots") && !self.asked_roots.swap(true, Ordering::AcqRel) {
            self.ask_roots();
        }
    }

    /// Ask this client for its roots (on its stream); the answer comes back
    /// through [`Session::take_server_request`] as [`Asker::Roots`].
    pub fn ask_roots(&self) {
        self.asked_roots.store(true, Ordering::Release);
        // One question outstanding at most: a client that keeps saying its
        // roots changed and never answers cannot grow the map.
        lock(&self.server_requests).retain(|_, a| *a != Asker::Roots);
        let id = self.ask_id(Asker::Roots);
        self.push(Message::from_value(
            &json!({"jsonrpc": "2.0", "id": id, "method": "roots/list"}),
        ));
    }

    /// A notification from this client: `initialized` and a change of its
    /// roots make the daemon ask for its roots (it answers the upstream's
    /// `roots/list` itself, from every client's); the rest go to the child.
    pub fn deliver_notification(&self, msg: Message) {
        match msg.method().unwrap_or("") {
            "notifications/initialized" => self.ask_roots_once(),
            "notifications/roots/list_changed" => {
                if self.has_capability("roots") {
                    self.ask_roots();
                }
            }
            _ => {
                if let Err(e) = self.upstream.notify(self, msg) {
                    crate::log!("session {}: notification not delivered: {e}", self.id);
                }
            }
        }
    }

    /// This client's answer to a request sent to it, delivered to who
    /// asked; false when nobody here asked (the id is not ours).
    pub fn deliver_response(&self, msg: Message) -> bool {
        match self.take_server_request(&msg.id()) {
            Some(Asker::Child { generation, id }) => {
                if let Err(e) = self.upstream.respond(generation, id, msg) {
                    crate::log!("session {}: response not delivered: {e}", self.id);
                }
            }
            Some(Asker::Roots) => {
                // Not passed through: the daemon answers the upstream's
                // roots/list with the union of these.
                let roots = msg.value_at(&["result", "roots"]);
                let roots = roots.as_ref().and_then(Value::as_array);
                if roots.is_none() {
                    crate::log!("session {}: its roots/list answer holds no roots", self.id);
                }
                self.upstream
                    .set_roots(self, roots.cloned().unwrap_or_default());
            }
            None => return false,
        }
        true
    }

    /// Has this client a call in flight here?
    pub fn has_calls(&self) -> bool {
        !lock(&self.inflight).is_empty()
    }

    /// Is this client's request `orig` in flight here?
    pub fn tracks(&self, orig: &Value) -> bool {
        lock(&self.inflight).contains_key(&id_key(orig))
    }

    /// The client's answer to a request sent to it: who asked.
    pub fn take_server_request(&self, client_id: &Value) -> Option<Asker> {
        lock(&self.server_requests).remove(&id_key(client_id))
    }

    /// The client-side id of a child's request forwarded here, if any.
    pub fn server_request_id(&self, child_id: &Value) -> Option<Value> {
        let map = lock(&self.server_requests);
        map.iter()
            .find(|(_, a)| matches!(a, Asker::Child { id, .. } if id == child_id))
            .and_then(|(k, _)| serde_json::from_str(k).ok())
    }

    /// The child restarted: its pending requests to this client are void.
    pub fn forget_server_requests(&self, generation: u64) {
        lock(&self.server_requests)
            .retain(|_, a| !matches!(a, Asker::Child { generation: g, .. } if *g == generation));
    }

    /// Deliver an unsolicited message on the GET stream, or keep it until
    /// one opens.
    pub fn push(&self, msg: Message) {
        let mut out = lock(&self.outbox);
        if let Some(tx) = &out.stream {
            match tx.try_send(msg) {
                Ok(()) => return,
                Err(TrySendError::Full(_)) => {
                    self.stall();
                    return;
                }
                Err(TrySendError::Disconnected(m)) => {
                    out.stream = None;
                    out.queue.push_back(m);
                }
            }
        } else {
            out.queue.push_back(msg);
        }
        if out.queue.len() > OUTBOX_LIMIT {
            out.queue.pop_front();
        }
    }

    /// Attach a GET stream; queued messages go to it first. Refused (false)
    /// while another GET stream is open: a message is never sent twice.
    pub fn open_stream(&self, tx: QueueTx<Message>) -> bool {
        let mut out = lock(&self.outbox);
        if out.stream.is_some() {
            return false;
        }
        while let Some(m) = out.queue.pop_front() {
            if let Err(e) = tx.try_send(m) {
                let (TrySendError::Full(m) | TrySendError::Disconnected(m)) = e;
                out.queue.push_front(m);
                return false;
            }
        }
        out.stream = Some(tx);
        true
    }

    pub fn close_stream(&self) {
        lock(&self.outbox).stream = None;
    }

    /// End the session: answer what it has in flight with an error naming
    /// `reason` and cancel it at the child, and release its subscriptions
    /// and log level there.
    pub fn close(&self, reason: &str) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let inflight: Vec<u64> = lock(&self.inflight).drain().map(|(_, v)| v).collect();
        for id in inflight {
            self.upstream.abandon(id, reason);
        }
        self.close_stream();
        self.upstream.detach(self);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Its client let a bounded queue fill: mark it for the daemon to close
    /// (from its reaper, never from the thread that found the queue full).
    pub fn stall(&self) {
        if !self.stalled.swap(true, Ordering::AcqRel) {
            crate::log!(
                "session {}: its client stopped reading; closing it",
                self.id
            );
        }
    }

    pub fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::Acquire)
    }

    /// Its client sent something.
    pub fn seen(&self) {
        *lock(&self.last_seen) = std::time::Instant::now();
    }

    /// How long its client has been idle: nothing sent, no GET stream open,
    /// nothing in flight. None while it is not idle.
    pub fn idle_for(&self) -> Option<std::time::Duration> {
        if lock(&self.outbox).stream.is_some() || !lock(&self.inflight).is_empty() {
            return None;
        }
        Some(lock(&self.last_seen).elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_filter_by_severity() {
        assert!(severity("debug") < severity("emergency"));
        assert_eq!(severity("loud"), None);
    }

    fn session() -> Session {
        let spec = crate::mux::identity::Spec {
            command: "true".into(),
            args: vec![],
            cwd: "/".into(),
            env: Default::default(),
            global: false,
            isolated: false,
            server: None,
            secret_args: false,
        };
        let tuning = crate::mux::upstream::Tuning {
            start_timeout: std::time::Duration::from_secs(1),
            ping_every: std::time::Duration::ZERO,
            processes_dir: std::env::temp_dir(),
            request_timeout: std::time::Duration::from_secs(1),
            asking_dir: "/nonexistent".into(),
            log_max_bytes: crate::log::DEFAULT_LOG_MAX_BYTES,
            idle: None,
            limits: Default::default(),
        };
        let spawner = crate::supervisor::child::Spawner::start().unwrap();
        let up = Upstream::new("t".into(), spec, "/nonexistent".into(), spawner, tuning);
        Session::new(
            "s".into(),
            Arc::new(up),
            "2025-06-18".into(),
            json!({}),
            None,
            None,
        )
    }

    #[test]
    fn a_stream_that_is_not_drained_stalls_the_session() {
        let s = session();
        let (tx, _undrained) = crate::pool::queue(STREAM_QUEUE);
        assert!(s.open_stream(tx));
        for n in 0..STREAM_QUEUE {
            s.push(Message::from_value(&json!(n)));
        }
        assert!(!s.is_stalled(), "a full queue is not yet an overflow");
        s.push(Message::from_value(&json!("one more")));
        assert!(s.is_stalled());
    }

    #[test]
    fn without_a_stream_the_outbox_keeps_the_newest() {
        let s = session();
        for n in 0..OUTBOX_LIMIT + 5 {
            s.push(Message::from_value(&json!(n)));
        }
        assert!(!s.is_stalled());
        let (tx, rx) = crate::pool::queue(STREAM_QUEUE);
        assert!(s.open_stream(tx));
        assert_eq!(rx.try_recv().unwrap().text(), "5");
        assert_eq!(
            std::iter::from_fn(|| rx.try_recv().ok()).count(),
            OUTBOX_LIMIT - 1
        );
    }

    #[test]
    fn id_keys_keep_json_types_apart() {
        assert_ne!(id_key(&json!(1)), id_key(&json!("1")));
        assert_eq!(id_key(&json!("a")), id_key(&json!("a")));
    }
}
