//! `mcpshare run`: the command MCP clients launch. It relays JSON-RPC lines
//! between its stdio and the daemon's Streamable HTTP endpoint for one
//! upstream. stdout carries protocol messages only, one per line; every log
//! goes to stderr. It never hangs on a dead daemon: in-flight requests get
//! errors, and the next request re-runs the election and re-attaches,
//! restoring the session (log level, subscriptions, stream) before it.
//! Every client request gets exactly one answer, on exit too; reading
//! stdin, `ping` and exiting never wait behind an election or an attach.

use crate::election;
use crate::error::Error;
use crate::mcp::jsonrpc::{self, Kind, Line, LineReader};
use crate::mcp::message::{Message, Parsed};
use crate::mux::identity::Spec;
use crate::net::client::{BodyError, Client, McpHeaders, Reply, SendError};
use crate::net::h1::{Again, Head, Sent};
use crate::pool::{Pool, Reservation, lock};
use crate::state::home::Home;
use crate::state::registry::{Record, Registration};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long requests still in flight at stdin EOF get to finish.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Short enough that a bridge told to stop is gone within a second.
const DELETE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long an exiting bridge waits for a write to stdout in progress
/// before it answers what is still open.
const EXIT_WRITE_WAIT: Duration = Duration::from_millis(200);
/// How often a request waiting for another's attach checks whether the
/// bridge is exiting (it is also woken when the attach ends).
const ATTACH_RECHECK: Duration = Duration::from_millis(250);
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the thread reading stdin waits for an answer itself before a
/// worker takes over the wait (more input ends the wait at once).
const INLINE_WAIT: Duration = Duration::from_millis(50);
const STDIN_BUFFER: usize = 16 * 1024;
/// Requests one bridge has open at the daemon at once, each on a worker
/// thread of its own; more wait their turn in a queue. Notifications and
/// responses (cancellations, answers to the server's own requests) never
/// wait, so a full set of calls cannot block its own answers.
pub const MAX_OPEN_REQUESTS: usize = 64;

/// One attachment to one daemon: a session on the upstream's endpoint.
struct Conn {
    client: Client,
    upstream: String,
    path: String,
    session: String,
    version: String,
    capabilities: Value,
    generation: u64,
    /// Its GET stream was opened (or is being opened): at most one each.
    listening: AtomicBool,
}

impl Conn {
    fn headers(&self) -> McpHeaders<'_> {
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
struct Link {
    conn: Option<Arc<Conn>>,
    /// A re-attached session being restored (see `Bridge::restore`): the
    /// client's notifications and answers may use it, its requests wait.
    restoring: Option<Arc<Conn>>,
    generation: u64,
    /// The client's own `initialize` has been answered with a session.
    answered: bool,
    attaching: bool,
    /// Attach attempts begun, and how the last failed one ended.
    attempts: u64,
    failed: Option<(u64, ConnectError)>,
}

/// What the client set on its session that a new session must be told
/// again after a re-attach, as the daemon's successful answers left it.
#[derive(Default)]
struct Settings {
    /// The level of the last `logging/setLevel`.
    level: Option<String>,
    /// The resource URIs subscribed to and not unsubscribed.
    subscriptions: BTreeSet<String>,
}

/// A client request not yet answered, by its id.
#[derive(Default)]
struct Open {
    /// Requests with this id (a client may reuse one; each is answered).
    count: usize,
    /// The client sent `notifications/cancelled` for it: no answer is owed.
    cancelled: bool,
    /// Sent to the daemon: worth waiting for at end of input.
    sent: bool,
}

#[derive(Default)]
struct Requests {
    open: HashMap<String, Open>,
    /// Batches being handled (their answers go out as one array).
    batches: usize,
}

fn key(id: &Value) -> String {
    id.to_string()
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

/// Why a connection attempt failed.
#[derive(Clone)]
enum ConnectError {
    /// The daemon answered `initialize` with a JSON-RPC error: relay it.
    Rpc(Value),
    /// The daemon found by the election did not take our call (it went away).
    Gone(String),
    Other(String),
}

impl ConnectError {
    /// The error as an answer to request `id`.
    fn answer(&self, id: Value) -> Value {
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

/// Registrations one attach tries when the upstream keeps going away.
const MAX_REGISTRATIONS: usize = 3;

/// The answer to a request whose reply ended without one, which the client
/// did not cancel (the daemon stopped, or dropped the call).
fn unanswered(id: Value) -> Value {
    let text = "the mcpshare daemon ended this request without an answer \
                (it may have stopped); it may or may not have run";
    jsonrpc::error(id, jsonrpc::UNAVAILABLE, text)
}

/// The answer to a request whose answer (or a message streamed before it)
/// is longer than this bridge takes.
fn too_large(id: Value, max: usize) -> Value {
    let text = format!(
        "the answer exceeds the limit of {max} bytes of this mcpshare run; raise it with \
         MCPSHARE_MAX_MESSAGE_BYTES in the environment of mcpshare run (and of the daemon)"
    );
    jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, text)
}

/// A request sent by the thread reading stdin, handed to a worker.
struct Early {
    conn: Arc<Conn>,
    stage: Stage,
    worker: Reservation,
}

enum Stage {
    Sent(Sent),
    /// The reply's head is read (or reading it failed).
    Received(Result<Reply, SendError>),
    /// The daemon answered 408: to send again.
    Again(Again),
}

enum PostError {
    /// Never reached this attachment (dead daemon, unknown session): reconnect and retry.
    Stale(String),
    Broken(String),
}

pub struct Bridge {
    home: Home,
    spec: Spec,
    max: usize,
    link: Mutex<Link>,
    link_changed: Condvar,
    init: Mutex<Option<Value>>,
    client_initialized: AtomicBool,
    settings: Mutex<Settings>,
    /// Exiting: set once, by the first caller of `exit`.
    stopping: AtomicBool,
    /// Held by the one thread that exits, until the process ends.
    exiting: Mutex<()>,
    /// The client's input ended: nothing new is attached for.
    closing: AtomicBool,
    requests: Mutex<Requests>,
    /// Signalled when a request or batch ends, for the end-of-input drain.
    settled: Condvar,
    out: Out,
    pool: Pool,
    /// This bridge's registry record, removed on exit.
    registration: Mutex<Option<Registration>>,
}

/// Standard output, one writer at a time. A lock with a timed wait, so an
/// exiting bridge never waits for long on a client that stopped reading.
#[derive(Default)]
struct Out {
    state: Mutex<OutState>,
    free: Condvar,
}

#[derive(Default)]
struct OutState {
    busy: bool,
    /// Threads waiting for their turn: only then is a wake-up worth its syscall.
    waiting: usize,
}

/// The right to write to stdout, given back when dropped.
struct OutTurn<'a>(&'a Out);

impl Out {
    /// Wait for the turn to write, for at most `wait` when given.
    fn turn(&self, wait: Option<Duration>) -> Option<OutTurn<'_>> {
        let mut st = lock(&self.state);
        if st.busy {
            st.waiting += 1;
            let deadline = wait.map(|w| Instant::now() + w);
            while st.busy {
                st = match deadline {
                    None => self.free.wait(st).unwrap_or_else(|p| p.into_inner()),
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            st.waiting -= 1;
                            return None;
                        }
                        self.free
                            .wait_timeout(st, left)
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                };
            }
            st.waiting -= 1;
        }
        st.busy = true;
        Some(OutTurn(self))
    }
}

impl OutTurn<'_> {
    /// Write one message of our own as one line; false when stdout is closed.
    fn write(&self, msg: &Value) -> bool {
        self.write_text(&msg.to_string())
    }

    /// Write one line of JSON text (a [`Message`] is always one line), in
    /// one write: stdout's line buffer passes a long line straight through.
    fn write_text(&self, text: &str) -> bool {
        let mut line = Vec::with_capacity(text.len() + 1);
        line.extend_from_slice(text.as_bytes());
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        out.write_all(&line).and_then(|()| out.flush()).is_ok()
    }
}

impl Drop for OutTurn<'_> {
    fn drop(&mut self) {
        let mut st = lock(&self.0.state);
        st.busy = false;
        if st.waiting > 0 {
            self.0.free.notify_one();
        }
    }
}

/// How often a bridge checks that the client that started it still lives.
pub const WATCHDOG_EVERY: Duration = Duration::from_secs(1);

#[cfg(unix)]
fn watchdog_every() -> Duration {
    crate::state::settings::env_millis("MCPSHARE_WATCHDOG_MS", WATCHDOG_EVERY)
        .max(Duration::from_millis(10))
}

pub fn run(home: Home, spec: Spec) -> i32 {
    let registration =
        Registration::write(&home.processes_dir(), Record::for_self("bridge", "stdio"))
            .inspect_err(|e| crate::log!("cannot write the registry record: {e}"))
            .ok();
    let bridge = Arc::new(Bridge {
        home,
        spec,
        max: jsonrpc::max_message(),
        link: Mutex::new(Link::default()),
        link_changed: Condvar::new(),
        init: Mutex::new(None),
        client_initialized: AtomicBool::new(false),
        settings: Mutex::new(Settings::default()),
        stopping: AtomicBool::new(false),
        exiting: Mutex::new(()),
        closing: AtomicBool::new(false),
        requests: Mutex::new(Requests::default()),
        settled: Condvar::new(),
        out: Out::default(),
        // Each worker holds at most one connection; so do idle ones and the stream.
        pool: Pool::new(
            "bridge",
            MAX_OPEN_REQUESTS.min(
                crate::net::connection_budget(crate::platform::raise_fd_limit())
                    .saturating_sub(crate::net::client::IDLE_CONNECTIONS + 2),
            ),
        ),
        registration: Mutex::new(registration),
    });
    let b = bridge.clone();
    let signalled = move |sig| b.exit(&format!("mcpshare run was stopped by signal {sig}"));
    if let Err(e) = crate::platform::on_termination(signalled) {
        crate::log!("cannot install signal handling: {e}");
    }
    watch_parent(&bridge);
    // A buffer larger than stdin's own, so reads bypass that one and
    // `has_buffered` sees all input read but not yet handled.
    let stdin = std::io::BufReader::with_capacity(STDIN_BUFFER, std::io::stdin().lock());
    let mut lines = LineReader::new(stdin, bridge.max);
    loop {
        match lines.next_line() {
            Ok(Some(Line::Text(bytes))) => {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match Message::parse_batch(bytes) {
                    Ok(Parsed::Batch(items)) => bridge.batch(items),
                    Ok(Parsed::One(msg)) => bridge.dispatch(msg, !lines.has_buffered()),
                    Err(e) => bridge.write(&jsonrpc::error(
                        Value::Null,
                        jsonrpc::PARSE_ERROR,
                        format!("Parse error: {e}"),
                    )),
                }
            }
            // Answered with the request's own id when its ends show it:
            // clients wait for an answer to that id, and ignore id null.
            Ok(Some(Line::TooLong(n))) => bridge.write(&jsonrpc::error(
                lines.too_long_id().unwrap_or(Value::Null),
                jsonrpc::INVALID_REQUEST,
                format!(
                    "message of {n} bytes exceeds the limit of {} bytes; raise it with \
                     MCPSHARE_MAX_MESSAGE_BYTES in the environment of mcpshare run",
                    bridge.max
                ),
            )),
            Ok(None) => break,
            Err(e) => {
                crate::log!("reading stdin: {e}");
                break;
            }
        }
    }
    bridge.drain(DRAIN_TIMEOUT);
    bridge.exit("mcpshare run is exiting: its input ended before the daemon answered")
}

/// Exit when the client that started us is gone: our parent changed.
fn watch_parent(bridge: &Arc<Bridge>) {
    #[cfg(unix)]
    {
        let parent = std::os::unix::process::parent_id();
        let b = bridge.clone();
        let (never, tick) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let _never = never;
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    tick.recv_timeout(watchdog_every())
                {
                    if std::os::unix::process::parent_id() != parent {
                        crate::log!(
                            "the client that started this bridge (pid {parent}) is gone; exiting"
                        );
                        b.exit("mcpshare run is exiting: the client that started it is gone");
                    }
                }
            });
        if let Err(e) = spawned {
            crate::log!("cannot start the parent watchdog: {e}");
        }
    }
    #[cfg(not(unix))]
    let _ = bridge;
}

impl Bridge {
    /// Write one message of our own to stdout as one line. A closed
    /// stdout ends the bridge.
    fn write(&self, msg: &Value) {
        self.write_text(&msg.to_string());
    }

    /// Write a message from the daemon to stdout, as its bytes.
    fn write_message(&self, msg: &Message) {
        self.write_text(msg.text());
    }

    fn write_text(&self, text: &str) {
        let turn = self.out.turn(None);
        if !turn.is_some_and(|t| t.write_text(text)) {
            self.exit("stdout is closed");
        }
    }

    /// Count a client request as open until `settle` answers it.
    fn open(&self, id: &Value) {
        lock(&self.requests).open.entry(key(id)).or_default().count += 1;
    }

    /// The request has reached (or is about to reach) the daemon.
    fn mark_sent(&self, id: &Value) {
        if let Some(o) = lock(&self.requests).open.get_mut(&key(id)) {
            o.sent = true;
        }
    }

    /// The client cancelled request `id`: when its stream ends without an
    /// answer, none is owed.
    fn mark_cancelled(&self, msg: &Message) {
        let Some(id) = msg.value_at(&["params", "requestId"]) else {
            return;
        };
        if let Some(o) = lock(&self.requests).open.get_mut(&key(&id)) {
            o.cancelled = true;
        }
    }

    /// Answer open request `id` exactly once: with `answer`, or when there is
    /// none (its stream ended empty) with an error unless the client
    /// cancelled it. Nothing when it was already answered (by `exit`).
    fn settle(&self, id: &Value, answer: Option<Message>) {
        // Taking the turn first makes the check and the write one step, so
        // `exit` never answers a request whose answer is being written.
        let turn = self.out.turn(None);
        let cancelled = {
            let mut r = lock(&self.requests);
            let k = key(id);
            let Some(o) = r.open.get_mut(&k) else {
                return;
            };
            let cancelled = o.cancelled;
            o.count -= 1;
            if o.count == 0 {
                r.open.remove(&k);
            }
            cancelled
        };
        self.settle_noted();
        let answer =
            answer.or_else(|| (!cancelled).then(|| Message::from_value(&unanswered(id.clone()))));
        if let Some(answer) = answer
            && !turn.is_some_and(|t| t.write_text(answer.text()))
        {
            self.exit("stdout is closed");
        }
    }

    /// Wake the end-of-input drain, the one waiter for requests to settle;
    /// otherwise spare the wake-up (a syscall, on the hot path).
    fn settle_noted(&self) {
        if self.closing.load(Ordering::Acquire) {
            self.settled.notify_all();
        }
    }

    /// End the session at the daemon (best effort, bounded), answer every
    /// request still open with an error saying `why`, remove the registry
    /// record, and exit 0. Bounded: under a second even with a hung daemon
    /// and a client that stopped reading.
    fn exit(&self, why: &str) -> ! {
        if self.stopping.swap(true, Ordering::AcqRel) {
            // Another thread is exiting; it ends the process shortly.
            let _wait = lock(&self.exiting);
            std::process::exit(0)
        }
        let _exiting = lock(&self.exiting);
        self.wake_attach_waiters();
        let conn = {
            let mut link = lock(&self.link);
            link.conn.take().or_else(|| link.restoring.take())
        };
        if let Some(conn) = conn {
            let _ = conn
                .client
                .mcp_delete(&conn.path, &conn.headers(), DELETE_TIMEOUT);
        }
        if let Some(turn) = self.out.turn(Some(EXIT_WRITE_WAIT)) {
            let open = std::mem::take(&mut lock(&self.requests).open);
            for (k, o) in open {
                let Ok(id) = serde_json::from_str::<Value>(&k) else {
                    continue;
                };
                for _ in 0..o.count {
                    if !turn.write(&jsonrpc::error(id.clone(), jsonrpc::UNAVAILABLE, why)) {
                        break;
                    }
                }
            }
        }
        lock(&self.registration).take();
        std::process::exit(0)
    }

    /// Requests waiting for another's attach look again (the bridge may be exiting).
    fn wake_attach_waiters(&self) {
        drop(lock(&self.link));
        self.link_changed.notify_all();
    }

    /// At end of input: give requests (and batches) up to `timeout` to be
    /// answered. Those waiting for an attach are not waited for: no attach
    /// starts after end of input, and `exit` answers them with an error.
    fn drain(&self, timeout: Duration) {
        self.closing.store(true, Ordering::Release);
        self.wake_attach_waiters();
        let r = lock(&self.requests);
        let _ = self.settled.wait_timeout_while(r, timeout, |r| {
            // Attached, queued requests go out too: wait for them as well.
            let attached = lock(&self.link).conn.is_some();
            r.batches > 0 || r.open.values().any(|o| o.sent || attached)
        });
    }

    /// Run `job` on the pool: on a worker reserved for it, else as soon as one is free.
    fn spawn(
        self: &Arc<Self>,
        worker: Option<Reservation>,
        job: impl FnOnce(&Arc<Bridge>) + Send + 'static,
    ) {
        let me = self.clone();
        let job = move || job(&me);
        match worker {
            Some(w) => w.run(job),
            None => self.pool.run(job),
        }
    }

    /// Handle one message from stdin; `input_idle` says no other message
    /// is already waiting behind it.
    fn dispatch(self: &Arc<Self>, msg: Message, input_idle: bool) {
        let id = msg.id();
        match msg.kind() {
            Kind::Request => match msg.method().unwrap_or("") {
                "ping" => self.write(&jsonrpc::result(id, json!({}))),
                // Not a modern-era server: make dual-era clients fall back.
                "server/discover" => self.write(&jsonrpc::error(
                    id,
                    jsonrpc::METHOD_NOT_FOUND,
                    "Method not found",
                )),
                "initialize" => {
                    let Some(value) = msg.to_value() else {
                        let text = "initialize holds a number mcpshare cannot read";
                        return self.write(&jsonrpc::error(id, jsonrpc::INVALID_PARAMS, text));
                    };
                    let mut init = lock(&self.init);
                    if init.is_some() {
                        drop(init);
                        return self.write(&jsonrpc::error(
                            id,
                            jsonrpc::INVALID_REQUEST,
                            "already initialized",
                        ));
                    }
                    // Not passed through: the daemon answers it from the
                    // upstream's handshake, and a re-attach sends it again.
                    *init = Some(value);
                    drop(init);
                    self.open(&id);
                    // The attach answers it (see `connection`).
                    self.spawn(None, |b| {
                        let _ = b.connection();
                    });
                }
                _ => {
                    if lock(&self.init).is_none() {
                        let text = "server not initialized: send initialize first";
                        return self.write(&jsonrpc::error(id, jsonrpc::INVALID_REQUEST, text));
                    }
                    self.open(&id);
                    let mut early = self.send_early(&msg);
                    if input_idle && let Some(e) = early {
                        early = self.answer_inline(&msg, e);
                        if early.is_none() {
                            return;
                        }
                    }
                    let (worker, early) = match early {
                        Some(e) => {
                            let Early {
                                conn,
                                stage,
                                worker,
                            } = e;
                            (Some(worker), Some((conn, stage)))
                        }
                        None => (None, None),
                    };
                    self.spawn(worker, move |b| {
                        let answer = b.request_sent(&msg, &|m| b.write_message(&m), early);
                        b.settle(&msg.id(), answer);
                    });
                }
            },
            Kind::Notification => {
                match msg.method() {
                    Some("notifications/initialized") => {
                        self.client_initialized.store(true, Ordering::Release);
                        let conn = lock(&self.link).conn.clone();
                        if let Some(conn) = conn {
                            self.start_listener(conn, None);
                        }
                        return;
                    }
                    Some("notifications/cancelled") => self.mark_cancelled(&msg),
                    _ => {}
                }
                self.send_quietly(&msg);
            }
            Kind::Response => self.send_quietly(&msg),
            Kind::Invalid => self.write(&jsonrpc::error(
                id,
                jsonrpc::INVALID_REQUEST,
                "Invalid Request",
            )),
        }
    }

    /// JSON-RPC batches are legal only in protocol 2025-03-26: unbatch them
    /// for the daemon and answer with an array of the responses.
    fn batch(self: &Arc<Self>, items: Vec<Message>) {
        let version = lock(&self.link).conn.as_ref().map(|c| c.version.clone());
        if items.is_empty() || version.as_deref() != Some(jsonrpc::BATCH_VERSION) {
            let text = "Invalid Request: batches are only accepted in protocol 2025-03-26";
            return self.write(&jsonrpc::error(Value::Null, jsonrpc::INVALID_REQUEST, text));
        }
        lock(&self.requests).batches += 1;
        self.spawn(None, move |b| {
            let mut answers: Vec<Message> = Vec::new();
            let ours = |v: Value| Message::from_value(&v);
            for msg in items {
                let id = msg.id();
                match (msg.kind(), msg.method()) {
                    (Kind::Request, Some("ping")) => {
                        answers.push(ours(jsonrpc::result(id, json!({}))))
                    }
                    (Kind::Request, Some("initialize")) => answers.push(ours(jsonrpc::error(
                        id,
                        jsonrpc::INVALID_REQUEST,
                        "initialize must not be part of a batch",
                    ))),
                    (Kind::Request, _) => answers.push(
                        b.request_sent(&msg, &|m| b.write_message(&m), None)
                            .unwrap_or_else(|| ours(unanswered(id))),
                    ),
                    (Kind::Notification | Kind::Response, _) => b.send_quietly(&msg),
                    (Kind::Invalid, _) => answers.push(ours(jsonrpc::error(
                        id,
                        jsonrpc::INVALID_REQUEST,
                        "Invalid Request",
                    ))),
                }
            }
            if !answers.is_empty() {
                let texts: Vec<&str> = answers.iter().map(Message::text).collect();
                b.write_text(&format!("[{}]", texts.join(",")));
            }
            lock(&b.requests).batches -= 1;
            b.settle_noted();
        });
    }

    /// Forward a notification or a response; nothing is owed to the client.
    fn send_quietly(&self, msg: &Message) {
        let conn = {
            let link = lock(&self.link);
            link.conn.clone().or_else(|| link.restoring.clone())
        };
        let Some(conn) = conn else {
            return;
        };
        if let Err(PostError::Stale(e) | PostError::Broken(e)) = self.post(&conn, msg, &|_| {}) {
            crate::log!("could not deliver a message to the daemon: {e}");
            self.invalidate(conn.generation);
        }
    }

    /// On the thread reading stdin, send a request at once when nothing can
    /// make that wait: attached, a worker free for it, an idle connection at
    /// hand. The answer is then awaited here (`answer_inline`) or by that worker.
    fn send_early(&self, msg: &Message) -> Option<Early> {
        let conn = lock(&self.link).conn.clone()?;
        let worker = self.pool.try_reserve()?;
        let sent =
            conn.client
                .mcp_send_reusing(&conn.path, &conn.headers(), msg.text().as_bytes())?;
        self.mark_sent(&msg.id());
        Some(Early {
            conn,
            stage: Stage::Sent(sent),
            worker,
        })
    }

    /// On the thread reading stdin, wait for the answer to a request sent
    /// early unless more input comes first, and relay it when it is plain
    /// JSON: then no other thread wakes for the call. Otherwise (input
    /// first, a stream, an error) hand back what there is for a worker.
    fn answer_inline(self: &Arc<Self>, msg: &Message, early: Early) -> Option<Early> {
        let Stage::Sent(sent) = early.stage else {
            return Some(early);
        };
        let stage = if !sent.answers_before_stdin(INLINE_WAIT) {
            Stage::Sent(sent)
        } else {
            match sent.receive_head() {
                Head::Reply(reply) => Stage::Received(reply),
                Head::Unused(again) => Stage::Again(again),
            }
        };
        let plain = matches!(&stage, Stage::Received(Ok(r)) if r.status == 200 && !r.is_sse());
        let early = Early { stage, ..early };
        if !plain {
            return Some(early);
        }
        let answer = self.request_sent(
            msg,
            &|m| self.write_message(&m),
            Some((early.conn, early.stage)),
        );
        self.settle(&msg.id(), answer);
        None
    }

    /// Forward a request, whose first attempt may already be sent; `sink`
    /// gets what streams before the answer, which is returned (None when
    /// the reply ended without one: see `settle`).
    fn request_sent(
        self: &Arc<Self>,
        msg: &Message,
        sink: &dyn Fn(Message),
        mut early: Option<(Arc<Conn>, Stage)>,
    ) -> Option<Message> {
        let id = msg.id();
        let ours = |v: Value| Some(Message::from_value(&v));
        for attempt in 0..2 {
            let (conn, outcome) = match early.take() {
                Some((conn, stage)) => {
                    let reply = match stage {
                        Stage::Sent(sent) => sent.receive(),
                        Stage::Received(reply) => reply,
                        Stage::Again(again) => again.receive(),
                    };
                    (conn, self.relay(reply, &id, sink))
                }
                None => {
                    let conn = match self.connection() {
                        Ok(c) => c,
                        Err(e) => return ours(e.answer(id)),
                    };
                    self.mark_sent(&id);
                    let outcome = self.post(&conn, msg, sink);
                    (conn, outcome)
                }
            };
            match outcome {
                Ok(answer) => {
                    if let Some(a) = &answer {
                        self.remember(msg, a);
                    }
                    return answer;
                }
                Err(PostError::Stale(e)) => {
                    self.invalidate(conn.generation);
                    if attempt == 1 {
                        return ours(jsonrpc::error(
                            id,
                            jsonrpc::UNAVAILABLE,
                            format!("mcpshare daemon: {e}"),
                        ));
                    }
                }
                Err(PostError::Broken(e)) => {
                    self.invalidate(conn.generation);
                    let text = format!(
                        "connection to the mcpshare daemon was lost during this request ({e}); \
                         it may or may not have run"
                    );
                    return ours(jsonrpc::error(id, jsonrpc::UNAVAILABLE, text));
                }
            }
        }
        None
    }

    /// POST one message on an attachment, as its bytes, and relay what
    /// comes back.
    fn post(
        &self,
        conn: &Conn,
        msg: &Message,
        sink: &dyn Fn(Message),
    ) -> Result<Option<Message>, PostError> {
        let reply = conn
            .client
            .mcp_post(&conn.path, &conn.headers(), msg.text().as_bytes());
        self.relay(reply, &msg.id(), sink)
    }

    /// Relay the daemon's reply to a message with this `id`: its answer is
    /// returned, what streams before it goes to `sink`.
    fn relay(
        &self,
        reply: Result<Reply, SendError>,
        id: &Value,
        sink: &dyn Fn(Message),
    ) -> Result<Option<Message>, PostError> {
        let ours = |v: Value| Ok(Some(Message::from_value(&v)));
        let reply = reply.map_err(|e| match e {
            SendError::NotReached(s) => PostError::Stale(s),
            SendError::Broken(s) => PostError::Broken(s),
        })?;
        match reply.status {
            202 => Ok(None),
            404 => Err(PostError::Stale(
                "session not found (the daemon restarted)".into(),
            )),
            200 if reply.is_sse() => self.relay_events(reply, id, sink),
            200 => match reply.message_within(self.max) {
                Ok(answer) => Ok(Some(answer)),
                // The attachment is sound: only this answer is refused.
                Err(BodyError::TooLarge) => ours(too_large(id.clone(), self.max)),
                Err(BodyError::Failed(e)) => Err(PostError::Broken(e.to_string())),
            },
            status => {
                let body = reply.json(self.max).ok();
                let text = body
                    .as_ref()
                    .and_then(|b| b.pointer("/error/message").or_else(|| b.get("error")))
                    .map(|m| {
                        m.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| m.to_string())
                    })
                    .unwrap_or_else(|| format!("HTTP {status}"));
                let code = body
                    .as_ref()
                    .and_then(|b| b.pointer("/error/code"))
                    .and_then(Value::as_i64);
                ours(jsonrpc::error(
                    id.clone(),
                    code.unwrap_or(jsonrpc::UNAVAILABLE),
                    format!("mcpshare daemon: {text}"),
                ))
            }
        }
    }

    fn relay_events(
        &self,
        reply: Reply,
        id: &Value,
        sink: &dyn Fn(Message),
    ) -> Result<Option<Message>, PostError> {
        let mut events = reply.events(self.max);
        let mut answer = None;
        loop {
            match events.next_data() {
                Ok(Some(data)) => match Message::parse(data.into_bytes()) {
                    Ok(m) if m.kind() == Kind::Response && &m.id() == id => answer = Some(m),
                    Ok(m) => sink(m),
                    Err(e) => crate::log!("ignoring a bad event from the daemon: {e}"),
                },
                Ok(None) => return Ok(answer),
                Err(e) if answer.is_some() => {
                    crate::log!("stream ended badly after the answer: {e}");
                    return Ok(answer);
                }
                Err(_) if events.was_too_long() => {
                    return Ok(Some(Message::from_value(&too_large(id.clone(), self.max))));
                }
                Err(e) => return Err(PostError::Broken(e.to_string())),
            }
        }
    }

    fn invalidate(&self, generation: u64) {
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
    fn connection(self: &Arc<Self>) -> Result<Arc<Conn>, ConnectError> {
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
            // The client may have sent `initialized` before this answer
            // arrived, while there was no session yet to open a stream on.
            if self.client_initialized.load(Ordering::Acquire) {
                self.start_listener(conn.clone(), None);
            }
        } else if live {
            self.reattached(&conn);
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
        let spec = serde_json::to_value(&self.spec).unwrap_or(Value::Null);
        let bytes = serde_json::to_vec(init).unwrap_or_default();
        let failed = |e: SendError| match e {
            SendError::NotReached(e) => ConnectError::Gone(format!("mcpshare daemon: {e}")),
            SendError::Broken(e) => ConnectError::Other(format!("mcpshare daemon: {e}")),
        };
        let mut registrations = 0;
        let (upstream, path, reply, waited) = loop {
            let (status, body) = client
                .call("POST", "/api/upstreams", Some(&spec), CONTROL_TIMEOUT)
                .map_err(failed)?;
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
            let path = format!("/u/{upstream}/mcp");
            // The daemon answers once the upstream has started: say why we wait.
            let waiting = report_wait(upstream);
            let reply = client
                .mcp_post(&path, &McpHeaders::default(), &bytes)
                .map_err(failed)?;
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

    /// Keep what a successful `logging/setLevel` or resource
    /// (un)subscription of the client set on its session, for `restore`.
    fn remember(&self, msg: &Message, answer: &Message) {
        if answer.raw_at(&["result"]).is_none() {
            return;
        }
        let param = |name: &str| msg.str_at(&["params", name]);
        let mut settings = lock(&self.settings);
        match msg.method() {
            Some("logging/setLevel") => settings.level = param("level"),
            Some("resources/subscribe") => settings.subscriptions.extend(param("uri")),
            Some("resources/unsubscribe") => {
                if let Some(uri) = param("uri") {
                    settings.subscriptions.remove(&uri);
                }
            }
            _ => {}
        }
    }

    /// After re-attaching to a new daemon, before any request of the client
    /// is sent on the new session: complete its handshake, open its stream
    /// (what the upstream sends from then on reaches the client unasked),
    /// and set again the log level and the subscriptions the client set on
    /// the old one. Best effort: a failure is logged, and a dead session is
    /// found stale by the next request.
    fn restore(self: &Arc<Self>, conn: &Arc<Conn>) {
        let note = Message::from_value(&jsonrpc::notification("notifications/initialized", None));
        if let Err(PostError::Stale(e) | PostError::Broken(e)) = self.post(conn, &note, &|_| {}) {
            self.invalidate(conn.generation);
            return crate::log!("re-attach: {e}");
        }
        if let Some(stream) = self.open_stream(conn) {
            self.start_listener(conn.clone(), Some(stream));
        }
        let replay = {
            let settings = lock(&self.settings);
            let level = settings
                .level
                .iter()
                .map(|level| ("logging/setLevel", json!({ "level": level })));
            let uris = settings
                .subscriptions
                .iter()
                .map(|uri| ("resources/subscribe", json!({ "uri": uri })));
            level.chain(uris).collect::<Vec<_>>()
        };
        for (n, (method, params)) in replay.into_iter().enumerate() {
            // No request of the client is open on this session yet: no id clashes.
            let msg = Message::from_value(&json!({"jsonrpc": "2.0",
                "id": format!("mcpshare-restore-{n}"), "method": method, "params": params}));
            match self.post(conn, &msg, &|m| self.write_message(&m)) {
                Ok(Some(a)) if a.raw_at(&["result"]).is_some() => {}
                Ok(a) => {
                    let why = a.map_or_else(
                        || "no answer".into(),
                        |a| a.raw_at(&["error"]).unwrap_or("null").to_string(),
                    );
                    crate::log!("re-attach: {method} {params} was not restored: {why}");
                }
                Err(PostError::Stale(e) | PostError::Broken(e)) => {
                    self.invalidate(conn.generation);
                    return crate::log!("re-attach: {e}");
                }
            }
        }
    }

    /// After re-attaching to a new daemon: tell the client its lists may differ.
    fn reattached(self: &Arc<Self>, conn: &Arc<Conn>) {
        crate::log!(
            "re-attached to the mcpshare daemon (session generation {})",
            conn.generation
        );
        if !self.client_initialized.load(Ordering::Acquire) {
            return;
        }
        for list in ["tools", "prompts", "resources"] {
            if conn.capabilities.pointer(&format!("/{list}/listChanged"))
                == Some(&Value::Bool(true))
            {
                self.write(&jsonrpc::notification(
                    &format!("notifications/{list}/list_changed"),
                    None,
                ));
            }
        }
    }

    /// Open the GET stream of this attachment: the reply carrying it, or
    /// None when there is none to relay (a lost one drops the attachment).
    fn open_stream(&self, conn: &Conn) -> Option<Reply> {
        match conn.client.mcp_get(&conn.path, &conn.headers()) {
            Ok(r) if r.status == 200 && r.is_sse() => Some(r),
            // 405: the endpoint offers no stream; nothing is lost.
            Ok(r) if r.status != 404 => None,
            _ => {
                self.invalidate(conn.generation);
                None
            }
        }
    }

    /// Relay what the GET stream of this attachment carries until it ends,
    /// on a thread of its own: `opened`, the stream already open, else the
    /// thread opens it. A lost stream drops the attachment; the next
    /// request re-attaches.
    fn start_listener(self: &Arc<Self>, conn: Arc<Conn>, opened: Option<Reply>) {
        if conn.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("listen-{}", conn.generation))
            .spawn(move || {
                let Some(reply) = opened.or_else(|| me.open_stream(&conn)) else {
                    return;
                };
                let mut events = reply.events(me.max);
                while let Ok(Some(data)) = events.next_data() {
                    match Message::parse(data.into_bytes()) {
                        Ok(m) => me.write_message(&m),
                        Err(e) => crate::log!("ignoring a bad event from the daemon: {e}"),
                    }
                }
                me.invalidate(conn.generation);
            });
        if let Err(e) = spawned {
            crate::log!("cannot start the stream thread: {e}");
        }
    }
}
