//! The attachment to the daemon: the election, the upstream's
//! registration and a session opened with the client's own `initialize`,
//! one attach at a time. It never holds the link lock during an attach,
//! and never attaches once the bridge is exiting or its input ended.

use super::Bridge;
use crate::election;
use crate::error::Error;
use crate::mcp::jsonrpc;
use crate::mcp::message::Message;
use crate::net::client::{Client, McpHeaders, SendError};
use crate::pool::lock;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a request waiting for another's attach checks whether the
/// bridge is exiting (it is also woken when the attach ends).
const ATTACH_RECHECK: Duration = Duration::from_millis(250);

const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// Registrations one attach tries when the upstream keeps going away.
const MAX_REGISTRATIONS: usize = 3;

/// One attachment to one daemon: a session on the upstream's endpoint.
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) upstream: String,
    pub(super) path: String,
    pub(super) session: String,
    pub(super) version: String,
    pub(super) capabilities: Value,
    pub(super) generation: u64,
    /// Its GET stream was opened (or is being opened): at most one each.
    pub(super) listening: AtomicBool,
}

impl Conn {
    pub(super) fn headers(&self) -> McpHeaders<'_> {
        McpHeaders {
            session: Some(&self.session),
            version: Some(&self.version),
        }
    }
}

/// The attachment, and the attach in progress. Its lock is only ever held
/// briefly: an attach (election included, up to tens of seconds) runs with
/// `attaching` set, and other callers wait on `Bridge::link_changed`.
#[derive(Default)]
pub(super) struct Link {
    pub(super) conn: Option<Arc<Conn>>,
    /// A re-attached session being restored (see `Bridge::restore`): the
    /// client's notifications and answers may use it, its requests wait.
    pub(super) restoring: Option<Arc<Conn>>,
    pub(super) generation: u64,
    /// The client's own `initialize` has been answered with a session.
    pub(super) answered: bool,
    pub(super) attaching: bool,
    /// Attach attempts begun, and how the last failed one ended.
    pub(super) attempts: u64,
    pub(super) failed: Option<(u64, ConnectError)>,
}

/// Why a connection attempt failed.
#[derive(Clone)]
pub(super) enum ConnectError {
    /// The daemon answered `initialize` with a JSON-RPC error: relay it.
    Rpc(Value),
    /// The daemon found by the election did not take our call (it went away).
    Gone(String),
    Other(String),
}

impl ConnectError {
    /// The error as an answer to request `id`.
    pub(super) fn answer(&self, id: Value) -> Value {
        match self {
            ConnectError::Rpc(e) => {
                let mut e = e.clone();
                e["id"] = id;
                e
            }
            ConnectError::Gone(s) | ConnectError::Other(s) => {
                jsonrpc::error(id, jsonrpc::UNAVAILABLE, s.clone())
            }
        }
    }
}

/// How often the bridge says it still waits for its upstream to start.
const START_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Log "waiting for ID to start: N s" every [`START_PROGRESS_EVERY`] until
/// the returned sender sends how the start ended (or is dropped); then log
/// a failure, or a success after a wait that was reported. A client's log
/// then shows why its server is slow (an npx or uvx install can take a
/// while) and why it failed.
fn report_wait(upstream: &str) -> std::sync::mpsc::Sender<Result<(), String>> {
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let id = upstream.to_string();
    let started = Instant::now();
    let _ = std::thread::Builder::new()
        .name("start-progress".into())
        .spawn(move || {
            let mut said = false;
            let ended = loop {
                match rx.recv_timeout(START_PROGRESS_EVERY) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        said = true;
                        crate::log!(
                            "waiting for {id} to start: {} s",
                            started.elapsed().as_secs()
                        );
                    }
                    Ok(ended) => break Some(ended),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break None,
                }
            };
            let secs = started.elapsed().as_secs();
            match ended {
                Some(Err(why)) => crate::log!("{id} did not start: {why}"),
                Some(Ok(())) if said => crate::log!("{id} started after {secs} s"),
                _ => {}
            }
        });
    tx
}

impl Bridge {
    pub(super) fn invalidate(&self, generation: u64) {
        let mut link = lock(&self.link);
        let Link {
            conn, restoring, ..
        } = &mut *link;
        for slot in [conn, restoring] {
            if slot.as_ref().is_some_and(|c| c.generation == generation) {
                *slot = None;
            }
        }
    }

    /// The current attachment, attaching (election included) if there is
    /// none. One caller attaches at a time, without holding the link lock;
    /// the others wait for its outcome, or return at once when the bridge
    /// exits. The first attach answers the client's `initialize`; when it
    /// fails, `initialize` may be sent again for a fresh attempt.
    pub(super) fn connection(self: &Arc<Self>) -> Result<Arc<Conn>, ConnectError> {
        let exiting = || ConnectError::Other("mcpshare run is exiting".into());
        let mut link = lock(&self.link);
        let mut waited_for = None;
        loop {
            if let Some(c) = &link.conn {
                return Ok(c.clone());
            }
            if self.stopping.load(Ordering::Acquire) || self.closing.load(Ordering::Acquire) {
                return Err(exiting());
            }
            if let (Some(seen), Some((attempt, e))) = (waited_for, &link.failed)
                && *attempt >= seen
            {
                return Err(e.clone());
            }
            if !link.attaching {
                break;
            }
            waited_for = Some(link.attempts);
            link = self
                .link_changed
                .wait_timeout(link, ATTACH_RECHECK)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let Some(init) = lock(&self.init).clone() else {
            return Err(ConnectError::Other("server not initialized".into()));
        };
        link.attaching = true;
        link.attempts += 1;
        let attempt = link.attempts;
        let generation = link.generation + 1;
        let first = !link.answered;
        drop(link);

        // A panic in the attach must not leave the others waiting for it.
        let attached = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.attach(&init, generation)
        }))
        .unwrap_or_else(|_| Err(ConnectError::Other("mcpshare: the attach failed".into())));

        let mut link = lock(&self.link);
        let init_id = jsonrpc::id(&init);
        let (conn, answer) = match attached {
            Ok(pair) => pair,
            Err(e) => {
                link.attaching = false;
                link.failed = Some((attempt, e.clone()));
                drop(link);
                self.link_changed.notify_all();
                if first {
                    // A fresh `initialize` may try again.
                    *lock(&self.init) = None;
                    let answer = Message::from_value(&e.answer(init_id.clone()));
                    self.settle(&init_id, Some(answer));
                }
                return Err(e);
            }
        };
        if let Some(r) = lock(&self.registration).as_mut() {
            r.update(|r| {
                r.upstream = Some(conn.upstream.clone());
                r.session = Some(conn.session.clone());
            });
        }
        let conn = Arc::new(conn);
        link.generation = generation;
        let restore = !first && self.client_initialized.load(Ordering::Acquire);
        if restore {
            // Still attaching: the client's requests wait until the new
            // session is as the client left the old one.
            link.restoring = Some(conn.clone());
            drop(link);
            // A panic here must not leave the others waiting either.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.restore(&conn)));
            link = lock(&self.link);
        }
        link.attaching = false;
        // Gone when its stream ended during the restore: the next request
        // attaches anew (this one fails as stale, and is retried).
        let live = !restore || link.restoring.take().is_some();
        if live {
            link.conn = Some(conn.clone());
        }
        link.answered = true;
        link.failed = None;
        drop(link);
        self.link_changed.notify_all();
        if first {
            self.settle(&init_id, Some(Message::from_value(&answer)));
            self.reporter.started(&conn.client, &init);
            // The client may have sent `initialized` before this answer
            // arrived, while there was no session yet to open a stream on.
            if self.client_initialized.load(Ordering::Acquire) {
                self.start_listener(conn.clone(), None);
            }
        } else if live {
            self.reattached(&conn);
            let text = "re-attached: the daemon was lost, a new session was opened";
            self.reporter.note("error", Some(text.into()));
            self.reporter
                .flush(&conn.client, crate::console::report::REPORT_TIMEOUT);
        }
        Ok(conn)
    }

    /// Elect or find the daemon, ask for our upstream, and open a session
    /// with the client's own `initialize`. A daemon that went away just
    /// after the election (it was stopping) is waited for, bounded, and the
    /// election run once more.
    fn attach(&self, init: &Value, generation: u64) -> Result<(Conn, Value), ConnectError> {
        match self.attach_once(init, generation) {
            Err(ConnectError::Gone(why)) if !self.stopping.load(Ordering::Acquire) => {
                crate::log!("{why}; electing a daemon again once that one is gone");
                let until = Instant::now() + election::HANDOFF_WAIT;
                let _ = crate::state::lock::wait_free(&self.home.daemon_lock(), until);
                self.attach_once(init, generation)
            }
            attached => attached,
        }
    }

    fn attach_once(&self, init: &Value, generation: u64) -> Result<(Conn, Value), ConnectError> {
        // The client's error, and the bridge's stderr for the client's log:
        // the hint on a line of its own (the error may end with log lines).
        let other = |e: Error| {
            let mut text = e.to_string();
            if let Some(h) = e.hint() {
                text.push_str("\nhint: ");
                text.push_str(&h);
            }
            crate::log!("{text}");
            ConnectError::Other(format!("mcpshare: {text}"))
        };
        let manifest =
            election::ensure_daemon(&self.home, Instant::now() + election::STARTUP_TIMEOUT)
                .map_err(other)?;
        let client = Client::new(&manifest);
        let bytes = serde_json::to_vec(init).unwrap_or_default();
        let mut registrations = 0;
        let (upstream, path, reply, waited) = loop {
            let (status, body) = client
                .call(
                    "POST",
                    "/api/upstreams",
                    Some(&self.target),
                    CONTROL_TIMEOUT,
                )
                // Registering changes nothing that outlives a dying daemon.
                .map_err(|e| match e {
                    SendError::NotReached(e) | SendError::Broken(e) => {
                        ConnectError::Gone(format!("mcpshare daemon: {e}"))
                    }
                })?;
            if status == 503 {
                return Err(ConnectError::Gone(
                    "mcpshare daemon: it is stopping".to_string(),
                ));
            }
            let Some(upstream) = body
                .get("id")
                .and_then(Value::as_str)
                .filter(|_| status == 200)
            else {
                return Err(ConnectError::Other(format!(
                    "mcpshare daemon refused the upstream: HTTP {status} {body}"
                )));
            };
            registrations += 1;
            // The hub answers with its own path; an upstream with its id.
            let path = body
                .get("path")
                .and_then(Value::as_str)
                .map_or_else(|| format!("/u/{upstream}/mcp"), str::to_string);
            // The daemon answers once the upstream has started: say why we wait.
            let waiting = report_wait(upstream);
            // A daemon that went away before answering `initialize` opened
            // nothing that outlives it: elect again, as when unreachable.
            let reply = client
                .mcp_post(&path, &McpHeaders::default(), &bytes)
                .map_err(|e| match e {
                    SendError::NotReached(e) | SendError::Broken(e) => {
                        ConnectError::Gone(format!("mcpshare daemon: {e}"))
                    }
                })?;
            // 404: the upstream was stopped for idleness between its
            // registration and this `initialize`: register it anew.
            if reply.status != 404 || registrations == MAX_REGISTRATIONS {
                break (upstream.to_string(), path, reply, waiting);
            }
            crate::log!(
                "upstream {upstream} went away before its session opened; registering it again"
            );
        };
        let (status, session) = (reply.status, reply.session.clone());
        if status == 503 && !self.stopping.load(Ordering::Acquire) {
            // The daemon is stopping or handing over: wait for it to go, then attach anew.
            let lock_path = self.home.daemon_lock();
            let until = Instant::now() + election::HANDOFF_WAIT;
            if crate::state::lock::wait_free(&lock_path, until).unwrap_or(false) {
                return self.attach(init, generation);
            }
        }
        let answer = reply
            .json(self.max)
            .map_err(|e| ConnectError::Other(format!("mcpshare daemon: {e}")))?;
        if let Some(e) = answer.get("error") {
            let text = e["message"].as_str().unwrap_or("no message").to_string();
            let _ = waited.send(Err(text));
            return Err(ConnectError::Rpc(answer));
        }
        let _ = waited.send(Ok(()));
        let Some(session) = session.filter(|_| status == 200) else {
            return Err(ConnectError::Other(format!(
                "mcpshare daemon: initialize failed: HTTP {status} {answer}"
            )));
        };
        let result = answer.get("result").cloned().unwrap_or(Value::Null);
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(jsonrpc::LATEST_VERSION);
        let conn = Conn {
            client,
            upstream,
            path,
            session,
            version: version.to_string(),
            capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
            generation,
            listening: AtomicBool::new(false),
        };
        Ok((conn, answer))
    }
}
