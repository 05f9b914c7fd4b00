//! One upstream MCP server: a child process the daemon owns, shared by many
//! sessions. This module spawns it (own process group, dies with the
//! daemon), does the handshake once, supervises it (restart with backoff,
//! `crashed` after a crash loop, health pings), rewrites request ids and
//! progress tokens per session, and routes what the child sends back:
//! answers to their callers, progress to its request, log messages by each
//! session's level, resource updates to subscribers. It never forwards a
//! client's id to the child and never shares an id map between sessions.

use crate::mcp::jsonrpc::{self, Kind};
use crate::mcp::message::Message;
use crate::mux::identity::Spec;
use crate::mux::session::{self, Session};
use crate::platform;
use crate::pool::{QueueRx, QueueTx, lock, queue};
use crate::state::registry::{Record, Registration};
use crate::supervisor::logbook::Logbook;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError, channel, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How long a stopping upstream gets after its stdin closes, before SIGTERM.
const STDIN_CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long it gets after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);
/// How long a child that closed its stdout gets to exit on its own.
const EXIT_GRACE: Duration = Duration::from_millis(200);
/// How long a failed start waits to learn how the child ended (its exit
/// status, the end of its stderr) for the error message.
const EXIT_REPORT_WAIT: Duration = Duration::from_secs(2);
/// Stderr lines quoted in the message of a child that exited during its start.
const EXIT_REPORT_LINES: usize = 5;
const REAP_POLL: Duration = Duration::from_millis(10);
/// Messages waiting for the child's stdin. The writer thread alone blocks
/// on the pipe; everyone else queues here and never waits: a full queue
/// means the child stopped reading, and the write fails at once.
const STDIN_QUEUE: usize = 1024;
/// This many crashes within CRASH_WINDOW mark the upstream `crashed`.
pub const CRASH_LIMIT: usize = 5;
pub const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// Automatic restarts wait 1 s, doubling per recent crash, at most 30 s.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Health pings: this many missed in a row restart the upstream.
pub const PING_FAILURES: u32 = 3;
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a client's progress token is in its request.
const PROGRESS_TOKEN: [&str; 3] = ["params", "_meta", "progressToken"];

/// The lists the daemon answers from cache, and the notification that
/// invalidates each.
const CACHED_LISTS: [(&str, &str); 4] = [
    ("tools/list", "notifications/tools/list_changed"),
    ("prompts/list", "notifications/prompts/list_changed"),
    ("resources/list", "notifications/resources/list_changed"),
    (
        "resources/templates/list",
        "notifications/resources/list_changed",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not running; the next request starts it.
    Idle,
    Starting,
    Running,
    Stopping,
    /// Crashed CRASH_LIMIT times within CRASH_WINDOW: requests are refused
    /// until a client connects anew or `mcpshare restart`.
    Crashed,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Crashed => "crashed",
        }
    }
}

/// Supervision settings, from the daemon's environment.
#[derive(Clone, Debug)]
pub struct Tuning {
    pub start_timeout: Duration,
    pub ping_every: Duration,
    /// Where the child's registry record goes.
    pub processes_dir: PathBuf,
    /// How long a forwarded request may take; also how long a call waits
    /// for other clients' calls on an upstream that asks its clients.
    pub request_timeout: Duration,
    /// One empty file per upstream id known to ask its clients, so a new
    /// daemon knows it too.
    pub asking_dir: PathBuf,
    /// Its log file rotates past this size (MCPSHARE_LOG_MAX_BYTES).
    pub log_max_bytes: u64,
}

/// What a session's request became.
pub enum Reply {
    /// Answered by the daemon itself.
    Local(Message),
    /// Sent to the child; the receiver yields what belongs to the request
    /// and ends with its response (or disconnects if it was cancelled).
    Forwarded(QueueRx<Message>),
}

/// URL-mode elicitations remembered for routing their completion.
const ELICITATIONS_KEPT: usize = 256;

/// How long the child's `roots/list` waits for the first client's roots
/// (the child often asks during its handshake, before any client is
/// attached); then it is answered with the roots known, possibly none, and
/// told `roots/list_changed` when more arrive.
const ROOTS_WAIT: Duration = Duration::from_secs(5);

/// The roots of each attached roots-capable client, in the order they
/// attached, and the list the child was last given.
#[derive(Default)]
struct RootsBook {
    by_session: Vec<(String, Vec<Value>)>,
    told: Option<Vec<Value>>,
}

impl RootsBook {
    /// Every client's roots, each URI once, in the order first seen; None
    /// while no client has said.
    fn union(&self) -> Option<Vec<Value>> {
        if self.by_session.is_empty() {
            return None;
        }
        let mut seen = std::collections::HashSet::new();
        let mut all = Vec::new();
        for root in self.by_session.iter().flat_map(|(_, r)| r) {
            let uri = root.get("uri").map(Value::to_string).unwrap_or_default();
            if seen.insert(uri) {
                all.push(root.clone());
            }
        }
        Some(all)
    }
}

/// Where the answer to a request sent to the child goes.
/// Writes a request's answer straight to its caller, on the thread that
/// read it from the child, when nothing else went to the caller first: one
/// thread hand-off fewer on every plain call.
pub trait Answerer: Send + Sync {
    /// Deliver `answer` now if it can; otherwise the caller takes it from
    /// the channel, where it goes in any case.
    fn answer(&self, answer: &Message);
    /// Something other than the answer is on its way: from now on the
    /// caller takes everything from the channel.
    fn streaming(&self);
}

/// Messages one request may have waiting for its caller (progress, log
/// messages, the child's requests, the answer). A caller that lets more
/// pile up is not reading: its session is closed, the upstream never waits.
pub const ROUTE_QUEUE: usize = 1024;

/// Where what belongs to one request goes: its bounded channel, the
/// caller's direct answerer if it offered one, and the session to close if
/// the caller stops draining the channel.
#[derive(Clone)]
struct Route {
    tx: QueueTx<Message>,
    direct: Option<Arc<dyn Answerer>>,
    owner: Option<Weak<Session>>,
}

impl Route {
    fn new() -> (Route, QueueRx<Message>) {
        let (tx, rx) = queue(ROUTE_QUEUE);
        let route = Route {
            tx,
            direct: None,
            owner: None,
        };
        (route, rx)
    }

    /// A message before the answer (progress, a log message, a request of
    /// the child's): it goes through the channel.
    fn send(&self, msg: Message) -> bool {
        if let Some(d) = &self.direct {
            d.streaming();
        }
        self.queue(msg)
    }

    /// The answer: written directly if it can be; the channel gets it either
    /// way, so the caller learns the request is done.
    fn answer(&self, msg: Message) {
        if let Some(d) = &self.direct {
            d.answer(&msg);
        }
        self.queue(msg);
    }

    fn queue(&self, msg: Message) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                if let Some(s) = self.owner.as_ref().and_then(Weak::upgrade) {
                    s.stall();
                }
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

struct Pending {
    /// None for the daemon's own requests (handshake, pings, re-applied state).
    session: Option<Arc<Session>>,
    orig_id: Value,
    /// The client's progress token, as the text it sent.
    orig_token: Option<String>,
    /// Cache the result under this key if the cache epoch is unchanged.
    cache: Option<(String, u64)>,
    to: Route,
}

struct State {
    phase: Phase,
    generation: u64,
    child: Option<Child>,
    pid: Option<u32>,
    /// The child's `initialize` result.
    init: Option<Value>,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    restarts: u32,
    crashes: VecDeque<Instant>,
    last_error: Option<String>,
    /// The child has asked its clients something (sampling, elicitation):
    /// from then on calls of different sessions do not overlap, so each
    /// such request has exactly one session it can belong to.
    asks_clients: bool,
    /// Tickets of the calls waiting for their session's turn, in order
    /// (while `asks_clients`).
    waiting: VecDeque<u64>,
    next_ticket: u64,
    /// URL-mode elicitations in progress, by id, and the session asked:
    /// their `notifications/elicitation/complete` goes there alone.
    elicitations: VecDeque<(String, Weak<Session>)>,
    /// Cached list results (their JSON text, as the child sent it) by
    /// method and cursor.
    cache: HashMap<String, String>,
    cache_epoch: u64,
    /// The level last sent with `logging/setLevel`.
    applied_level: Option<String>,
    /// Sessions subscribed to each resource URI.
    subscribers: HashMap<String, usize>,
    /// Since when no session is attached.
    idle_since: Instant,
    /// The running child's registry record, removed when it is reaped.
    record: Option<Registration>,
    /// The newest generation whose end was dealt with (exit, stop or a
    /// failed start): a second report of the same end does nothing.
    ended: u64,
    /// How the newest reaped child ended, by its generation.
    exit: Option<(u64, std::process::ExitStatus)>,
    /// When a crashed child is started again (its backoff), while idle.
    restart_at: Option<Instant>,
}
/// Starts child processes from one long-lived thread, because Linux sends
/// the parent-death signal when the *thread* that forked the child exits.
#[derive(Clone)]
pub struct Spawner {
    tx: Sender<(Command, Sender<std::io::Result<Child>>)>,
}

impl Spawner {
    pub fn start() -> std::io::Result<Spawner> {
        let (tx, rx) = channel::<(Command, Sender<std::io::Result<Child>>)>();
        std::thread::Builder::new()
            .name("spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })?;
        Ok(Spawner { tx })
    }

    fn spawn(&self, cmd: Command) -> std::io::Result<Child> {
        let (tx, rx) = channel();
        self.tx
            .send((cmd, tx))
            .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
        rx.recv()
            .map_err(|_| std::io::Error::other("spawner thread is gone"))?
    }
}

/// A snapshot for `mcpshare status`.
#[derive(serde::Serialize)]
pub struct Status {
    pub id: String,
    pub pid: Option<u32>,
    pub command: Vec<String>,
    pub cwd: String,
    pub sessions: usize,
    pub state: &'static str,
    pub restarts: u32,
    /// Requests of clients waiting for the child's answer.
    pub inflight: usize,
    pub isolated: bool,
    /// It asks its clients: calls of different clients run one at a time.
    pub asks_clients: bool,
    /// Sessions waiting for their turn (while it asks its clients).
    pub queued: usize,
    pub last_error: Option<String>,
    pub log: String,
    /// In backoff after a crash (state `restarting`): the restart is due in this long.
    pub restart_in_ms: Option<u64>,
}

pub struct Upstream {
    pub id: String,
    pub spec: Spec,
    pub logbook: Arc<Logbook>,
    spawner: Spawner,
    tuning: Tuning,
    state: Mutex<State>,
    changed: Condvar,
    /// The queue to the running child's stdin writer, tagged with its generation.
    stdin: Mutex<Option<(u64, SyncSender<Vec<u8>>)>>,
    sessions: Mutex<HashMap<String, Weak<Session>>>,
    /// Each attached client's roots; the child is answered from their union.
    roots: Mutex<RootsBook>,
    roots_known: Condvar,
    /// Removed from the daemon for idleness: never start again.
    retired: AtomicBool,
}

impl Upstream {
    pub fn new(
        id: String,
        spec: Spec,
        log_path: PathBuf,
        spawner: Spawner,
        tuning: Tuning,
    ) -> Upstream {
        // Known by an earlier daemon, too.
        let asks_clients = tuning.asking_dir.join(&id).exists();
        Upstream {
            id,
            spec,
            logbook: Arc::new(Logbook::new(log_path, tuning.log_max_bytes)),
            spawner,
            tuning,
            state: Mutex::new(State {
                phase: Phase::Idle,
                generation: 0,
                child: None,
                pid: None,
                init: None,
                next_id: 1,
                pending: HashMap::new(),
                restarts: 0,
                crashes: VecDeque::new(),
                last_error: None,
                asks_clients,
                waiting: VecDeque::new(),
                next_ticket: 0,
                elicitations: VecDeque::new(),
                cache: HashMap::new(),
                cache_epoch: 0,
                applied_level: None,
                subscribers: HashMap::new(),
                idle_since: Instant::now(),
                record: None,
                ended: 0,
                exit: None,
                restart_at: None,
            }),
            changed: Condvar::new(),
            stdin: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
            roots: Mutex::new(RootsBook::default()),
            roots_known: Condvar::new(),
            retired: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The child asked a client something: remember it, here and on disk.
    fn mark_asks_clients(&self) {
        let first = !std::mem::replace(&mut self.lock().asks_clients, true);
        if !first {
            return;
        }
        crate::log!(
            "upstream {} asks its clients: its calls from different clients now run one at a time",
            self.id
        );
        let marked = std::fs::create_dir_all(&self.tuning.asking_dir)
            .and_then(|()| std::fs::File::create(self.tuning.asking_dir.join(&self.id)));
        if let Err(e) = marked {
            crate::log!(
                "upstream {}: cannot record that it asks its clients: {e}",
                self.id
            );
        }
    }

    /// A call of another session ended or a waiter left: let waiters look.
    fn wake_waiters(&self, st: &State) {
        if st.asks_clients {
            self.changed.notify_all();
        }
    }

    pub fn status(&self) -> Status {
        let sessions = self.session_count();
        let st = self.lock();
        let mut command = vec![self.spec.command.clone()];
        command.extend(self.spec.args.iter().cloned());
        let restart_in = st
            .restart_at
            .filter(|_| st.phase == Phase::Idle)
            .map(|at| at.saturating_duration_since(Instant::now()));
        Status {
            id: self.id.clone(),
            pid: st.pid,
            command,
            cwd: self.spec.cwd.clone(),
            sessions,
            state: match restart_in {
                Some(_) => "restarting",
                None => st.phase.name(),
            },
            restarts: st.restarts,
            inflight: inflight(&st),
            isolated: self.spec.isolated,
            asks_clients: st.asks_clients,
            queued: st.waiting.len(),
            last_error: st.last_error.clone(),
            log: self.logbook.path().display().to_string(),
            restart_in_ms: restart_in.map(|d| d.as_millis() as u64),
        }
    }

    /// Requests of clients waiting for the child's answer.
    pub fn inflight(&self) -> usize {
        inflight(&self.lock())
    }

    pub fn pid(&self) -> Option<u32> {
        self.lock().pid
    }

    pub fn session_count(&self) -> usize {
        let mut s = lock(&self.sessions);
        s.retain(|_, w| w.strong_count() > 0);
        s.len()
    }

    pub fn attach(&self, session: &Arc<Session>) {
        lock(&self.sessions).insert(session.id.clone(), Arc::downgrade(session));
    }

    /// A session ended: release its subscriptions, its log level and its
    /// roots here.
    pub fn detach(&self, session: &Session) {
        self.forget_roots(&session.id);
        let now_idle = {
            let mut s = lock(&self.sessions);
            s.remove(&session.id);
            s.retain(|_, w| w.strong_count() > 0);
            s.is_empty()
        };
        let mut st = self.lock();
        if now_idle {
            st.idle_since = Instant::now();
        }
        let generation = st.generation;
        let mut release = Vec::new();
        for uri in session.subscriptions() {
            if let Some(n) = st.subscribers.get_mut(&uri) {
                *n -= 1;
                if *n == 0 {
                    st.subscribers.remove(&uri);
                    release.push(uri);
                }
            }
        }
        let running = st.phase == Phase::Running;
        drop(st);
        if running {
            for uri in release {
                let _ =
                    self.send_internal("resources/unsubscribe", json!({"uri": uri}), generation);
            }
            self.apply_level(Some(&session.id));
        }
    }

    /// How long no session has been attached, if none is.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.session_count() > 0 {
            return None;
        }
        let st = self.lock();
        matches!(st.phase, Phase::Idle | Phase::Running | Phase::Crashed)
            .then(|| st.idle_since.elapsed())
    }

    /// Mark as removed from the daemon; it will not start again.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    fn live_sessions(&self) -> Vec<Arc<Session>> {
        lock(&self.sessions)
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Start the child if needed and wait (bounded) for its handshake.
    /// Returns the child's `initialize` result. A new client (`fresh`) may
    /// start a `crashed` upstream again; a request may not.
    pub fn ensure_running(self: &Arc<Self>, fresh: bool) -> Result<Value, String> {
        self.until_running(
            fresh,
            |st| st.init.clone().unwrap_or(Value::Null),
            |init| init,
        )
    }

    /// As `ensure_running`, without copying the `initialize` result: for
    /// the per-request path.
    fn ensure_started(self: &Arc<Self>) -> Result<(), String> {
        self.until_running(false, |_| (), |_| ())
    }

    /// The start-or-wait loop; `running` reads the state of a running
    /// child, `started` gets the result of a handshake this call did.
    fn until_running<T>(
        self: &Arc<Self>,
        fresh: bool,
        running: impl FnOnce(&State) -> T,
        started: impl FnOnce(Value) -> T,
    ) -> Result<T, String> {
        let deadline = Instant::now() + self.tuning.start_timeout;
        let mut st = self.lock();
        loop {
            if self.is_retired() {
                return Err(format!("upstream {} was retired", self.id));
            }
            if self.session_count() == 0 {
                st.idle_since = Instant::now();
            }
            match st.phase {
                Phase::Running => return Ok(running(&st)),
                Phase::Stopping => return Err(format!("upstream {} is stopping", self.id)),
                Phase::Crashed if fresh => {
                    st.crashes.clear();
                    st.phase = Phase::Idle;
                }
                Phase::Crashed => return Err(self.crashed_message(&st)),
                Phase::Starting => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(self.start_timeout_message());
                    }
                    st = self
                        .changed
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                Phase::Idle => {
                    st.restart_at = None;
                    st.phase = Phase::Starting;
                    st.generation += 1;
                    let generation = st.generation;
                    drop(st);
                    let mut result = self.start(generation, deadline);
                    let mut st = self.lock();
                    if result.is_ok() && st.phase != Phase::Starting {
                        // Stopped (or its exit handled) while it started:
                        // this child is not the running one; it goes.
                        result = Err(format!("upstream {} was stopped while it started", self.id));
                    }
                    if st.generation == generation && st.phase == Phase::Starting {
                        match &result {
                            Ok(init) => {
                                st.phase = Phase::Running;
                                st.init = Some(init.clone());
                                st.last_error = None;
                            }
                            Err(e) => {
                                st.phase = Phase::Idle;
                                st.last_error = Some(e.clone());
                            }
                        }
                    } else if let Err(e) = &result
                        && st.generation == generation
                    {
                        // The child's exit was handled first (it set the phase).
                        st.last_error = Some(e.clone());
                    }
                    drop(st);
                    self.changed.notify_all();
                    match &result {
                        Ok(_) => {
                            // Only now, with the phase Running, may the health
                            // loop start: it ends as soon as the phase is not.
                            self.start_health(generation);
                            if generation > 1 {
                                self.after_restart(generation);
                            }
                        }
                        Err(_) => self.kill_generation(generation),
                    }
                    return result.map(started);
                }
            }
        }
    }

    fn crashed_message(&self, st: &State) -> String {
        format!(
            "upstream {} crashed {} times within {} s and is not restarted; see 'mcpshare logs {}', \
             then 'mcpshare restart {}' (a newly connecting client also retries)",
            self.id,
            st.crashes.len(),
            CRASH_WINDOW.as_secs(),
            self.id,
            self.id
        )
    }

    fn start_timeout_message(&self) -> String {
        format!(
            "upstream {} did not finish its MCP handshake within {} s (MCPSHARE_START_TIMEOUT_SECS); \
             see 'mcpshare logs {}'",
            self.id,
            self.tuning.start_timeout.as_secs(),
            self.id,
        )
    }

    fn start(self: &Arc<Self>, generation: u64, deadline: Instant) -> Result<Value, String> {
        let mut cmd = Command::new(&self.spec.command);
        cmd.args(&self.spec.args)
            .current_dir(&self.spec.cwd)
            .env_clear()
            .envs(&self.spec.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        platform::die_with_parent(&mut cmd);
        let mut child = self.spawner.spawn(cmd).map_err(|e| {
            format!(
                "cannot start upstream command '{}' in {}: {e}",
                self.spec.command, self.spec.cwd
            )
        })?;
        let pid = child.id();
        if let Err(e) = platform::contain_child(&child) {
            crate::log!("upstream {}: cannot contain pid {pid}: {e}", self.id);
        }
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("child has no stdio pipes".into());
        };
        let record = Record {
            upstream: Some(self.id.clone()),
            ..Record::for_pid(pid, "upstream", "stdio")
        };
        let record = Registration::write(&self.tuning.processes_dir, record)
            .inspect_err(|e| {
                crate::log!(
                    "upstream {}: cannot write its registry record: {e}",
                    self.id
                )
            })
            .ok();
        {
            let mut st = self.lock();
            st.child = Some(child);
            st.pid = Some(pid);
            st.record = record;
        }
        crate::log!(
            "upstream {} started: pid {pid}, generation {generation}",
            self.id
        );
        let mark = self
            .logbook
            .push(format!("started pid {pid}, start {generation}"));

        let book = self.logbook.clone();
        // Closed once stderr has been read to its end.
        let (captured, stderr_ended) = channel::<()>();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map(|_| ())
                .map_err(|e| format!("cannot start a thread: {e}"))
        };
        spawn(
            format!("stderr-{}", self.id),
            Box::new(move || {
                book.capture(stderr);
                drop(captured);
            }),
        )?;
        let (queue, lines) = sync_channel::<Vec<u8>>(STDIN_QUEUE);
        spawn(
            format!("write-{}", self.id),
            Box::new(move || write_loop(stdin, lines)),
        )?;
        *lock(&self.stdin) = Some((generation, queue));
        // Its exit is seen even while a grandchild keeps stdout open.
        let me = self.clone();
        spawn(
            format!("wait-{}", self.id),
            Box::new(move || {
                if platform::child_exited(pid, true).is_ok() {
                    me.on_exit(generation);
                }
            }),
        )?;
        let me = self.clone();
        spawn(
            format!("read-{}", self.id),
            Box::new(move || me.read_loop(generation, stdout)),
        )?;

        let init = json!({
            "protocolVersion": jsonrpc::LATEST_VERSION,
            "capabilities": {
                // Every client capability the daemon can route, so a shared
                // server offers what it would offer its clients directly.
                "roots": {"listChanged": true},
                "sampling": {"tools": {}},
                "elicitation": {"form": {}, "url": {}}
            },
            "clientInfo": {"name": "mcpshare", "version": env!("CARGO_PKG_VERSION")}
        });
        // A child that ended before it answered is reported by how it ended.
        let exited = |otherwise: String| {
            self.exit_report(generation, mark, &stderr_ended, deadline)
                .unwrap_or(otherwise)
        };
        let (rx, _) = self
            .send_internal("initialize", init, generation)
            .map_err(exited)?;
        let left = deadline.saturating_duration_since(Instant::now());
        let reply = rx.recv_timeout(left).map_err(|e| match e {
            std::sync::mpsc::RecvTimeoutError::Timeout => self.start_timeout_message(),
            std::sync::mpsc::RecvTimeoutError::Disconnected => exited(format!(
                "upstream {} exited during its handshake; see 'mcpshare logs {}'",
                self.id, self.id
            )),
        })?;
        if let Some(err) = reply.value_at(&["error"]) {
            let text = err["message"].as_str().unwrap_or("no message");
            return Err(exited(format!(
                "upstream {} refused initialize: {text} (code {}); see 'mcpshare logs {}'",
                self.id, err["code"], self.id
            )));
        }
        // Not passed through: the daemon answers each client's
        // `initialize` from it, amended (see endpoint.rs).
        let result = reply.value_at(&["result"]).unwrap_or(Value::Null);
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !jsonrpc::is_supported(version) {
            return Err(format!(
                "upstream {} answered with unsupported protocol version {version:?}",
                self.id
            ));
        }
        self.write(
            generation,
            &jsonrpc::notification("notifications/initialized", None),
        )?;
        crate::log!("upstream {} ready (protocol {version})", self.id);
        // A `#!/usr/bin/env` script or a wrapper has exec'd into the server
        // by now: the record names what runs, for doctor's executable check.
        if let Some(exe) = platform::exe(pid).map(|p| p.display().to_string())
            && let Some(record) = self.lock().record.as_mut()
        {
            record.update(|r| r.executable = exe);
        }
        Ok(result)
    }

    /// "upstream ID exited with status 3 before answering initialize; its
    /// last stderr lines: ...": once child `generation` is reaped and its
    /// stderr read (both bounded), or None if it has not ended.
    fn exit_report(
        &self,
        generation: u64,
        mark: u64,
        stderr_ended: &Receiver<()>,
        deadline: Instant,
    ) -> Option<String> {
        let until = deadline.min(Instant::now() + EXIT_REPORT_WAIT);
        let status = {
            let st = self.lock();
            let left = until.saturating_duration_since(Instant::now());
            let (st, _) = self
                .changed
                .wait_timeout_while(
                    st,
                    left,
                    |st| !matches!(st.exit, Some((g, _)) if g == generation),
                )
                .unwrap_or_else(|p| p.into_inner());
            st.exit.filter(|(g, _)| *g == generation)?.1
        };
        let _ = stderr_ended.recv_timeout(until.saturating_duration_since(Instant::now()));
        let said = self.logbook.said_after(mark, EXIT_REPORT_LINES);
        let how = match (status.code(), sys_signal(&status)) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            (None, None) => "exited".to_string(),
        };
        let said = if said.is_empty() {
            "it wrote nothing on stderr".to_string()
        } else {
            format!("its last stderr lines: {}", said.join(" | "))
        };
        Some(format!(
            "upstream {} {how} before answering initialize; {said}; see 'mcpshare logs {}'",
            self.id, self.id
        ))
    }

    /// The child came back after a crash or a restart: re-apply what the
    /// sessions asked of it, and tell them its lists may have changed.
    fn after_restart(&self, generation: u64) {
        let (uris, lists) = {
            let st = self.lock();
            let caps = st
                .init
                .as_ref()
                .and_then(|i| i.get("capabilities"))
                .cloned()
                .unwrap_or(Value::Null);
            let lists: Vec<&str> = ["tools", "prompts", "resources"]
                .into_iter()
                .filter(|l| caps.get(l).is_some())
                .collect();
            (st.subscribers.keys().cloned().collect::<Vec<_>>(), lists)
        };
        for uri in uris {
            let _ = self.send_internal("resources/subscribe", json!({"uri": uri}), generation);
        }
        self.apply_level(None);
        for s in self.live_sessions() {
            for l in &lists {
                s.push(Message::from_value(&jsonrpc::notification(
                    &format!("notifications/{l}/list_changed"),
                    None,
                )));
            }
        }
    }

    /// Send the child the lowest level any session asked for, if it changed.
    fn apply_level(&self, leaving: Option<&str>) {
        let min = self
            .live_sessions()
            .iter()
            .filter(|s| Some(s.id.as_str()) != leaving)
            .filter_map(|s| s.level())
            .min_by_key(|l| session::severity(l));
        let Some(min) = min else { return };
        let generation = {
            let mut st = self.lock();
            if st.applied_level.as_deref() == Some(min.as_str()) || st.phase != Phase::Running {
                return;
            }
            st.applied_level = Some(min.clone());
            st.generation
        };
        let _ = self.send_internal("logging/setLevel", json!({"level": min}), generation);
    }

    fn start_health(self: &Arc<Self>, generation: u64) {
        if self.tuning.ping_every.is_zero() {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("health-{}", self.id))
            .spawn(move || me.health_loop(generation));
        if let Err(e) = spawned {
            crate::log!("upstream {}: no health pings: {e}", self.id);
        }
    }

    fn health_loop(self: Arc<Self>, generation: u64) {
        let mut failures = 0;
        loop {
            if !self.wait_unchanged(generation, Phase::Running, self.tuning.ping_every) {
                return;
            }
            let timeout = PING_TIMEOUT.min(self.tuning.ping_every.max(Duration::from_millis(100)));
            // A ping that cannot even be queued (the child stopped reading
            // its stdin) is a missed ping too.
            let answered = match self.send_internal("ping", json!({}), generation) {
                Ok((rx, id)) => {
                    let answered = rx
                        .recv_timeout(timeout)
                        .is_ok_and(|m| m.raw_at(&["result"]).is_some());
                    self.lock().pending.remove(&id);
                    answered
                }
                Err(_) => {
                    if !self.wait_unchanged(generation, Phase::Running, timeout) {
                        return;
                    }
                    false
                }
            };
            if answered {
                failures = 0;
                continue;
            }
            failures += 1;
            crate::log!(
                "upstream {} missed a health ping ({failures}/{PING_FAILURES})",
                self.id
            );
            if failures >= PING_FAILURES {
                crate::log!(
                    "upstream {} does not answer pings; killing it so it restarts",
                    self.id
                );
                // Only a running child still unreaped (its pid is cleared
                // before anyone reaps it) is signalled.
                let st = self.lock();
                if st.generation == generation
                    && st.phase == Phase::Running
                    && let Some(pid) = st.pid
                {
                    let _ = platform::signal_group(pid, platform::Signal::Kill);
                }
                return;
            }
        }
    }

    /// Wait `for_`, waking early on state changes; false as soon as the
    /// child's generation or phase is no longer the given one (or it retired).
    fn wait_unchanged(&self, generation: u64, phase: Phase, for_: Duration) -> bool {
        let deadline = Instant::now() + for_;
        let mut st = self.lock();
        loop {
            if st.generation != generation || st.phase != phase || self.is_retired() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Send one of the daemon's own requests to the child.
    fn send_internal(
        &self,
        method: &str,
        params: Value,
        generation: u64,
    ) -> Result<(QueueRx<Message>, u64), String> {
        let (to, rx) = Route::new();
        let id = {
            let mut st = self.lock();
            let id = st.next_id;
            st.next_id += 1;
            st.pending.insert(
                id,
                Pending {
                    session: None,
                    orig_id: Value::Null,
                    orig_token: None,
                    cache: None,
                    to,
                },
            );
            id
        };
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.write(generation, &msg).inspect_err(|_| {
            self.lock().pending.remove(&id);
        })?;
        Ok((rx, id))
    }

    /// Handle a session's request: answered here (ping, a cached list, a
    /// log level, a subscription another session already holds) or
    /// forwarded to the child.
    /// `direct`, if given, may write the answer itself (see [`Answerer`]).
    pub fn request(
        self: &Arc<Self>,
        session: &Arc<Session>,
        msg: Message,
        direct: Option<Arc<dyn Answerer>>,
    ) -> Result<Reply, String> {
        let id = msg.id();
        let method = msg.method().unwrap_or("").to_string();
        let local = |result: Value| {
            Ok(Reply::Local(Message::from_value(&jsonrpc::result(
                id.clone(),
                result,
            ))))
        };
        match method.as_str() {
            "ping" => return local(json!({})),
            "logging/setLevel" => {
                let level = msg.str_at(&["params", "level"]).unwrap_or_default();
                let level = level.as_str();
                if session::severity(level).is_none() {
                    let e = jsonrpc::error(
                        id,
                        jsonrpc::INVALID_PARAMS,
                        format!("unknown log level {level:?}"),
                    );
                    return Ok(Reply::Local(Message::from_value(&e)));
                }
                let init = self.ensure_running(false)?;
                if init.pointer("/capabilities/logging").is_none() {
                    let e = jsonrpc::error(
                        id,
                        jsonrpc::METHOD_NOT_FOUND,
                        "the server does not support logging",
                    );
                    return Ok(Reply::Local(Message::from_value(&e)));
                }
                session.set_level(level);
                self.apply_level(None);
                return local(json!({}));
            }
            "resources/subscribe" | "resources/unsubscribe" => {
                let Some(uri) = msg.str_at(&["params", "uri"]) else {
                    return Ok(Reply::Local(Message::from_value(&jsonrpc::error(
                        id,
                        jsonrpc::INVALID_PARAMS,
                        "missing uri",
                    ))));
                };
                self.ensure_started()?;
                let subscribe = method == "resources/subscribe";
                let first_or_last = {
                    let mut st = self.lock();
                    if subscribe {
                        if !session.subscribe(&uri) {
                            return local(json!({}));
                        }
                        let n = st.subscribers.entry(uri.clone()).or_insert(0);
                        *n += 1;
                        *n == 1
                    } else {
                        if !session.unsubscribe(&uri) {
                            return local(json!({}));
                        }
                        let n = st.subscribers.entry(uri.clone()).or_insert(1);
                        *n -= 1;
                        let last = *n == 0;
                        if last {
                            st.subscribers.remove(&uri);
                        }
                        last
                    }
                };
                if !first_or_last {
                    return local(json!({}));
                }
            }
            _ => {}
        }
        let mut cache = None;
        if CACHED_LISTS.iter().any(|(m, _)| *m == method) {
            self.ensure_started()?;
            let cursor = msg.str_at(&["params", "cursor"]).unwrap_or_default();
            let key = format!("{method}\n{cursor}");
            let st = self.lock();
            if let Some(result) = st.cache.get(&key) {
                return Ok(Reply::Local(Message::result(&id, result)));
            }
            cache = Some((key, st.cache_epoch));
        }
        self.call(session, msg, cache, direct).map(Reply::Forwarded)
    }

    fn call(
        self: &Arc<Self>,
        session: &Arc<Session>,
        mut msg: Message,
        cache: Option<(String, u64)>,
        direct: Option<Arc<dyn Answerer>>,
    ) -> Result<QueueRx<Message>, String> {
        self.ensure_started()?;
        let (mut to, rx) = Route::new();
        to.direct = direct;
        to.owner = Some(Arc::downgrade(session));
        let orig_id = msg.id();
        let orig_token = msg.raw_at(&PROGRESS_TOKEN).map(str::to_string);
        let (id, generation) = {
            let mut st = self.wait_turn(session)?;
            let id = st.next_id;
            st.next_id += 1;
            let pending = Pending {
                session: Some(session.clone()),
                orig_id: orig_id.clone(),
                orig_token: orig_token.clone(),
                cache,
                to,
            };
            st.pending.insert(id, pending);
            (id, st.generation)
        };
        session.track(&orig_id, id);
        msg.set_id(&json!(id));
        if orig_token.is_some() {
            // Unique among this child's active requests: the request id itself.
            msg.set_at(&PROGRESS_TOKEN, &id.to_string());
        }
        if let Err(e) = self.write_message(generation, msg) {
            let mut st = self.lock();
            st.pending.remove(&id);
            self.wake_waiters(&st);
            drop(st);
            session.untrack(&orig_id);
            return Err(e);
        }
        Ok(rx)
    }

    /// The state, once this session may send a call: at once, unless the
    /// child asks its clients and another session has calls in flight or
    /// waits ahead of it; then in turn, first come first served, within
    /// the request timeout.
    fn wait_turn(&self, session: &Session) -> Result<MutexGuard<'_, State>, String> {
        let deadline = Instant::now() + self.tuning.request_timeout;
        let mut st = self.lock();
        // This waiter's place in line, once it has one (a session may have
        // several requests waiting at once, each with its own ticket).
        let mut ticket = None;
        let leave = |st: &mut State, ticket: Option<u64>| {
            if let Some(t) = ticket {
                st.waiting.retain(|w| *w != t);
                self.changed.notify_all();
            }
        };
        loop {
            if st.phase != Phase::Running {
                leave(&mut st, ticket);
                return Err(format!("upstream {} is {}", self.id, st.phase.name()));
            }
            let callers = |mine: bool| {
                st.pending.values().any(|p| {
                    p.session
                        .as_ref()
                        .is_some_and(|s| (s.id == session.id) == mine)
                })
            };
            // A session that holds the turn (it has calls in flight) keeps
            // it: its requests run concurrently, as they would directly,
            // and a call made while answering the child's request to it
            // must not wait behind another session.
            let go = !st.asks_clients
                || callers(true)
                || (!callers(false) && st.waiting.front().is_none_or(|w| Some(*w) == ticket));
            if go {
                leave(&mut st, ticket);
                return Ok(st);
            }
            if ticket.is_none() {
                st.next_ticket += 1;
                let t = st.next_ticket;
                st.waiting.push_back(t);
                ticket = Some(t);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                leave(&mut st, ticket);
                return Err(format!(
                    "waited {} s for other clients' calls on upstream {} to finish: it asks its \
                     clients, so calls of different clients run one at a time \
                     (MCPSHARE_REQUEST_TIMEOUT_SECS)",
                    self.tuning.request_timeout.as_secs(),
                    self.id
                ));
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Forward a notification from a session (cancellation is translated).
    pub fn notify(&self, session: &Session, mut msg: Message) -> Result<(), String> {
        if msg.method() == Some("notifications/cancelled") {
            let Some(orig) = msg.value_at(&["params", "requestId"]) else {
                return Ok(());
            };
            let Some(id) = session.untrack(&orig) else {
                return Ok(());
            };
            // A late response from the child is dropped with the pending entry.
            let mut st = self.lock();
            st.pending.remove(&id);
            self.wake_waiters(&st);
            drop(st);
            msg.set_at(&["params", "requestId"], &id.to_string());
        }
        let generation = self.lock().generation;
        self.write_message(generation, msg)
    }

    /// Relay a session's response to a request the child made.
    pub fn respond(
        &self,
        generation: u64,
        child_id: Value,
        mut msg: Message,
    ) -> Result<(), String> {
        msg.set_id(&child_id);
        self.write_message(generation, msg)
    }

    /// Cancel a request the child is working on (its caller timed out).
    pub fn cancel(&self, id: u64, reason: &str) {
        let Some((_, generation)) = self.take_pending(id) else {
            return;
        };
        self.cancel_at_child(id, generation, reason);
    }

    /// A request whose session ended: its caller, if still waiting, gets an
    /// error naming `reason`, and the child is told to cancel it.
    pub fn abandon(&self, id: u64, reason: &str) {
        let Some((p, generation)) = self.take_pending(id) else {
            return;
        };
        let message = format!("request not completed: {reason}");
        p.to.answer(Message::from_value(&jsonrpc::error(
            p.orig_id,
            jsonrpc::UNAVAILABLE,
            message,
        )));
        self.cancel_at_child(id, generation, reason);
    }

    fn take_pending(&self, id: u64) -> Option<(Pending, u64)> {
        let mut st = self.lock();
        let p = st.pending.remove(&id)?;
        self.wake_waiters(&st);
        Some((p, st.generation))
    }

    fn cancel_at_child(&self, id: u64, generation: u64, reason: &str) {
        let msg = jsonrpc::notification(
            "notifications/cancelled",
            Some(json!({"requestId": id, "reason": reason})),
        );
        let _ = self.write(generation, &msg);
    }

    /// Queue a message of the daemon's own for the child's stdin.
    fn write(&self, generation: u64, msg: &Value) -> Result<(), String> {
        let mut line = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.write_line(generation, line)
    }

    /// Queue a client's message for the child's stdin, as its bytes.
    fn write_message(&self, generation: u64, msg: Message) -> Result<(), String> {
        let mut line = msg.into_text().into_bytes();
        line.push(b'\n');
        self.write_line(generation, line)
    }

    /// Queue one line for the child's stdin; never waits on the pipe.
    fn write_line(&self, generation: u64, line: Vec<u8>) -> Result<(), String> {
        let slot = lock(&self.stdin);
        match slot.as_ref() {
            Some((g, queue)) if *g == generation => queue.try_send(line).map_err(|e| match e {
                TrySendError::Full(_) => format!(
                    "upstream {} is not reading its stdin ({STDIN_QUEUE} messages waiting)",
                    self.id
                ),
                TrySendError::Disconnected(_) => format!("upstream {} closed its stdin", self.id),
            }),
            _ => Err(format!("upstream {} is not running", self.id)),
        }
    }

    fn read_loop(self: Arc<Self>, generation: u64, stdout: std::process::ChildStdout) {
        let max = jsonrpc::max_message();
        let mut lines = jsonrpc::LineReader::new(BufReader::with_capacity(64 * 1024, stdout), max);
        loop {
            match lines.next_line() {
                Ok(Some(jsonrpc::Line::Text(bytes))) => {
                    if bytes.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match Message::parse_keeping(bytes) {
                        Ok(msg) => self.route(generation, msg),
                        Err((why, bytes)) => self.not_json(&bytes, &why),
                    }
                }
                Ok(Some(jsonrpc::Line::TooLong(n))) => {
                    crate::log!(
                        "upstream {}: dropped a {n}-byte line over the message limit",
                        self.id
                    );
                    // An answer too large to pass on: its caller learns so now.
                    // (Only an answer: a request of the child's has an id of
                    // its own, which may equal one of ours.)
                    if let Some(id) = lines
                        .too_long_is_response()
                        .then(|| lines.too_long_id())
                        .flatten()
                        .as_ref()
                        .and_then(Value::as_u64)
                    {
                        let text = format!(
                            "upstream {}'s answer of {n} bytes exceeds the message limit of \
                             {max} bytes (MCPSHARE_MAX_MESSAGE_BYTES)",
                            self.id
                        );
                        let error = jsonrpc::error(json!(id), jsonrpc::INTERNAL_ERROR, text);
                        self.route_response(Message::from_value(&error));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    crate::log!("upstream {}: reading stdout: {e}", self.id);
                    break;
                }
            }
        }
        self.on_exit(generation);
    }

    /// A line of the child's that is not JSON is dropped; when it is an
    /// answer to one of ours (its start says so, and shows the id), its
    /// caller gets an error now instead of waiting for its timeout.
    fn not_json(&self, bytes: &[u8], why: &str) {
        crate::log!(
            "upstream {}: ignoring non-JSON line on stdout ({why}): {}",
            self.id,
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        );
        let head = &bytes[..bytes.len().min(jsonrpc::ID_SCAN_BYTES)];
        let tail = &bytes[bytes.len().saturating_sub(jsonrpc::ID_SCAN_BYTES)..];
        if !matches!(jsonrpc::scan::first_kind(head), Some("result" | "error")) {
            return;
        }
        if let Some(id) = jsonrpc::id_in_ends(head, tail)
            .as_ref()
            .and_then(Value::as_u64)
        {
            let text = format!(
                "upstream {} sent an answer that is not valid JSON ({why})",
                self.id
            );
            let error = jsonrpc::error(json!(id), jsonrpc::INTERNAL_ERROR, text);
            self.route_response(Message::from_value(&error));
        }
    }

    /// The child closed stdout: it is gone (or useless). Fail everything in
    /// flight at once, reap it, and restart it with backoff while sessions
    /// remain, unless it crashes in a loop.
    fn on_exit(self: &Arc<Self>, generation: u64) {
        let (pending, child, crashed, backoff, record) = {
            let mut st = self.lock();
            if st.generation != generation || st.ended >= generation {
                return;
            }
            st.ended = generation;
            let crashed = st.phase != Phase::Stopping;
            let mut backoff = None;
            if crashed {
                st.phase = Phase::Idle;
                st.restarts += 1;
                let now = Instant::now();
                st.crashes.push_back(now);
                while st
                    .crashes
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW)
                {
                    st.crashes.pop_front();
                }
                if st.crashes.len() >= CRASH_LIMIT {
                    st.phase = Phase::Crashed;
                    st.last_error = Some(self.crashed_message(&st));
                } else {
                    let doublings = (st.crashes.len() as u32).saturating_sub(1).min(5);
                    let delay = BACKOFF_FIRST
                        .saturating_mul(1 << doublings)
                        .min(BACKOFF_MAX);
                    st.restart_at = Some(now + delay);
                    backoff = Some(delay);
                }
            }
            forget_child(&mut st);
            let pending: Vec<Pending> = st.pending.drain().map(|(_, p)| p).collect();
            (pending, st.child.take(), crashed, backoff, st.record.take())
        };
        {
            let mut slot = lock(&self.stdin);
            if matches!(slot.as_ref(), Some((g, _)) if *g == generation) {
                *slot = None;
            }
        }
        self.changed.notify_all();
        let status = child.map(|c| reap(c, EXIT_GRACE));
        if let Some(status) = status {
            self.lock().exit = Some((generation, status));
            self.changed.notify_all();
        }
        drop(record);
        let how = status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "stopped".into());
        crate::log!(
            "upstream {} exited ({how}); failing {} request(s) in flight",
            self.id,
            pending.len()
        );
        let message = format!(
            "upstream {} exited ({how}) before answering; see 'mcpshare logs {}'",
            self.id, self.id
        );
        fail_all(pending, &message);
        for s in self.live_sessions() {
            s.forget_server_requests(generation);
        }
        if crashed {
            match backoff {
                Some(delay) => self.restart_later(generation, delay),
                None => crate::log!(
                    "upstream {} marked crashed: {CRASH_LIMIT} crashes within {} s",
                    self.id,
                    CRASH_WINDOW.as_secs()
                ),
            }
        }
    }

    /// Restart after `delay`, unless something else started or stopped it
    /// meanwhile, or no session is left to want it.
    fn restart_later(self: &Arc<Self>, generation: u64, delay: Duration) {
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("restart-{}", self.id))
            .spawn(move || {
                if !me.wait_unchanged(generation, Phase::Idle, delay) || me.is_retired() {
                    return;
                }
                if me.session_count() == 0 {
                    me.lock().restart_at = None;
                    return;
                }
                crate::log!("upstream {}: restarting after {delay:?}", me.id);
                if let Err(e) = me.ensure_running(false) {
                    crate::log!("upstream {}: restart failed: {e}", me.id);
                }
            });
        if let Err(e) = spawned {
            crate::log!("cannot start a restart thread: {e}");
        }
    }

    fn route(self: &Arc<Self>, generation: u64, msg: Message) {
        match msg.kind() {
            Kind::Response => self.route_response(msg),
            Kind::Request => self.route_request(generation, msg),
            Kind::Notification => self.route_notification(msg),
            Kind::Invalid => crate::log!(
                "upstream {}: ignoring invalid message {}",
                self.id,
                msg.text()
            ),
        }
    }

    fn route_response(&self, mut msg: Message) {
        let Some(id) = msg.id().as_u64() else {
            return;
        };
        let p = {
            let mut st = self.lock();
            let Some(p) = st.pending.remove(&id) else {
                return;
            };
            self.wake_waiters(&st);
            if let Some((key, epoch)) = &p.cache
                && *epoch == st.cache_epoch
                && let Some(result) = msg.raw_at(&["result"])
            {
                st.cache.insert(key.clone(), result.to_string());
            }
            p
        };
        if let Some(s) = &p.session {
            s.untrack(&p.orig_id);
            msg.set_id(&p.orig_id);
        }
        p.to.answer(msg);
    }

    fn route_notification(&self, mut msg: Message) {
        let method = msg.method().unwrap_or("").to_string();
        match method.as_str() {
            "notifications/progress" => {
                let Some(token) = msg
                    .value_at(&["params", "progressToken"])
                    .as_ref()
                    .and_then(Value::as_u64)
                else {
                    return;
                };
                let st = self.lock();
                // Progress for a finished (or foreign) request is dropped.
                if let Some(p) = st.pending.get(&token)
                    && let (Some(_), Some(orig)) = (&p.session, &p.orig_token)
                {
                    msg.set_at(&["params", "progressToken"], orig);
                    p.to.send(msg);
                }
            }
            "notifications/elicitation/complete" => {
                // Only to the session that was asked.
                let Some(eid) = msg.str_at(&["params", "elicitationId"]) else {
                    return;
                };
                let asked = {
                    let mut st = self.lock();
                    let at = st.elicitations.iter().position(|(e, _)| *e == eid);
                    at.and_then(|i| st.elicitations.remove(i))
                        .and_then(|(_, s)| s.upgrade())
                };
                match asked {
                    Some(s) => s.push(msg),
                    None => crate::log!(
                        "upstream {}: dropping elicitation/complete for unknown elicitation {eid}",
                        self.id
                    ),
                }
            }
            "notifications/cancelled" => {
                // The child cancels one of its own requests to a client.
                let Some(child_id) = msg.value_at(&["params", "requestId"]) else {
                    return;
                };
                for s in self.live_sessions() {
                    if let Some(client_id) = s.server_request_id(&child_id) {
                        msg.set_at(&["params", "requestId"], &client_id.to_string());
                        s.push(msg);
                        return;
                    }
                }
            }
            "notifications/message" => {
                let level = msg.str_at(&["params", "level"]);
                // A log message during exactly one session's calls belongs to that call.
                if let Some((s, to)) = self.sole_caller() {
                    if s.wants_log(level.as_deref()) {
                        to.send(msg);
                    }
                    return;
                }
                for s in self
                    .live_sessions()
                    .into_iter()
                    .filter(|s| s.wants_log(level.as_deref()))
                {
                    s.push(msg.clone());
                }
            }
            "notifications/resources/updated" => {
                let uri = msg.str_at(&["params", "uri"]).unwrap_or_default();
                for s in self
                    .live_sessions()
                    .into_iter()
                    .filter(|s| s.is_subscribed(&uri))
                {
                    s.push(msg.clone());
                }
            }
            _ => {
                if CACHED_LISTS.iter().any(|(_, n)| *n == method) {
                    let mut st = self.lock();
                    st.cache.retain(|key, _| {
                        !CACHED_LISTS
                            .iter()
                            .any(|(m, n)| *n == method && key.starts_with(m))
                    });
                    st.cache_epoch += 1;
                }
                for s in self.live_sessions() {
                    s.push(msg.clone());
                }
            }
        }
    }

    /// How many sessions have calls in flight.
    fn callers(&self) -> usize {
        let st = self.lock();
        let mut ids: Vec<&str> = st
            .pending
            .values()
            .filter_map(|p| p.session.as_ref().map(|s| s.id.as_str()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// The one session with calls in flight, and its newest call's stream.
    fn sole_caller(&self) -> Option<(Arc<Session>, Route)> {
        let st = self.lock();
        let mut callers = st.pending.values().filter_map(|p| p.session.as_ref());
        let first = callers.next()?.clone();
        if callers.any(|s| s.id != first.id) {
            return None;
        }
        let tx = newest_call(&st, &first.id)?;
        Some((first, tx))
    }

    fn route_request(self: &Arc<Self>, generation: u64, msg: Message) {
        let child_id = msg.id();
        let method = msg.method().unwrap_or("").to_string();
        if method == "ping" {
            let _ = self.write(generation, &jsonrpc::result(child_id, json!({})));
            return;
        }
        if method == "roots/list" {
            return self.answer_roots(generation, child_id);
        }
        // What the calling client must have declared to be asked this.
        let capability = match method.as_str() {
            "sampling/createMessage" if msg.raw_at(&["params", "tools"]).is_some() => {
                Some("sampling.tools")
            }
            "sampling/createMessage" => Some("sampling"),
            "elicitation/create" if msg.str_at(&["params", "mode"]).as_deref() == Some("url") => {
                Some("elicitation.url")
            }
            "elicitation/create" => Some("elicitation.form"),
            _ => None,
        };
        if capability.is_some() {
            self.mark_asks_clients();
        }
        // Over stdio nothing ties this request to the call that caused it:
        // it goes to the one session with calls in flight, or to nobody.
        let (session, stream) = match self.sole_caller() {
            Some((s, to)) if capability.is_some_and(|c| s.has_capability(c)) => (s, Some(to)),
            Some(_) => {
                let e = format!(
                    "the calling client did not declare the {} capability",
                    capability.unwrap_or(&method)
                );
                let reply = jsonrpc::error(child_id, jsonrpc::METHOD_NOT_FOUND, e);
                let _ = self.write(generation, &reply);
                return;
            }
            None => {
                let n = self.callers();
                let e = if n == 0 {
                    format!(
                        "mcpshare: no client call is in flight on this shared server to tie {method} to; not guessing which client to ask"
                    )
                } else {
                    format!(
                        "mcpshare: {n} clients have calls in flight on this shared server and {method} \
                         does not say which call it belongs to; not guessing which client to ask \
                         (from now on this server's calls from different clients run one at a time)"
                    )
                };
                let reply = jsonrpc::error(child_id, jsonrpc::INTERNAL_ERROR, e);
                let _ = self.write(generation, &reply);
                return;
            }
        };
        if method == "elicitation/create"
            && let Some(eid) = msg.str_at(&["params", "elicitationId"])
        {
            let mut st = self.lock();
            if st.elicitations.len() >= ELICITATIONS_KEPT {
                st.elicitations.pop_front();
            }
            st.elicitations.push_back((eid, Arc::downgrade(&session)));
        }
        let forwarded = session.server_request(generation, msg);
        match stream {
            Some(to) if to.send(forwarded.clone()) => {}
            _ => session.push(forwarded),
        }
    }

    /// A client said what its roots are (on attaching or after its
    /// `roots/list_changed`): they join the union, replacing only its own.
    pub fn set_roots(&self, session: &Session, roots: Vec<Value>) {
        let mut book = lock(&self.roots);
        // Closed meanwhile: its roots left with it (close marks it closed
        // before it takes this lock to forget them).
        if session.is_closed() {
            return;
        }
        match book.by_session.iter_mut().find(|(s, _)| *s == session.id) {
            Some((_, r)) => *r = roots,
            None => book.by_session.push((session.id.clone(), roots)),
        }
        self.roots_known.notify_all();
        self.tell_roots_changed(book);
    }

    fn forget_roots(&self, session_id: &str) {
        let mut book = lock(&self.roots);
        let before = book.by_session.len();
        book.by_session.retain(|(s, _)| s != session_id);
        if book.by_session.len() != before {
            self.tell_roots_changed(book);
        }
    }

    /// Tell the child `roots/list_changed` if the union differs from what
    /// it was last given (it asks again and gets the new union).
    fn tell_roots_changed(&self, book: MutexGuard<'_, RootsBook>) {
        let now = book.union().unwrap_or_default();
        if book.told.as_ref().is_none_or(|told| *told == now) {
            return;
        }
        drop(book);
        let generation = {
            let st = self.lock();
            if st.phase != Phase::Running {
                return;
            }
            st.generation
        };
        let changed = jsonrpc::notification("notifications/roots/list_changed", None);
        if let Err(e) = self.write(generation, &changed) {
            crate::log!("upstream {}: roots/list_changed not sent: {e}", self.id);
        }
    }

    /// The child asks for its roots: the union of the attached clients'
    /// roots. Until the first client has said, the answer waits (bounded,
    /// on a thread of its own: the reader never waits).
    fn answer_roots(self: &Arc<Self>, generation: u64, child_id: Value) {
        if lock(&self.roots).union().is_some() || !self.roots_may_come() {
            return self.give_roots(generation, child_id);
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("roots-{}", self.id))
            .spawn(move || {
                let deadline = Instant::now() + ROOTS_WAIT;
                let mut book = lock(&me.roots);
                while book.union().is_none() && me.roots_may_come() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    book = me
                        .roots_known
                        .wait_timeout(book, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                drop(book);
                me.give_roots(generation, child_id);
            });
        if let Err(e) = spawned {
            crate::log!("upstream {}: cannot wait for roots: {e}", self.id);
        }
    }

    /// Can a client's roots still arrive: none attached yet (the child asked
    /// during its handshake), or one that declared roots has not said yet?
    fn roots_may_come(&self) -> bool {
        let sessions = self.live_sessions();
        sessions.is_empty() || sessions.iter().any(|s| s.has_capability("roots"))
    }

    fn give_roots(&self, generation: u64, child_id: Value) {
        let roots = {
            let mut book = lock(&self.roots);
            let roots = book.union().unwrap_or_default();
            book.told = Some(roots.clone());
            roots
        };
        let reply = jsonrpc::result(child_id, json!({"roots": roots}));
        if let Err(e) = self.write(generation, &reply) {
            crate::log!("upstream {}: roots/list not answered: {e}", self.id);
        }
    }

    /// Stop the child: answer every call in flight with an error naming
    /// `reason`, close stdin, then SIGTERM its process group, then SIGKILL.
    pub fn stop(&self, reason: &str) {
        let (child, record, pending, generation) = {
            let mut st = self.lock();
            st.phase = Phase::Stopping;
            st.ended = st.generation;
            // Nobody else may signal the group from now on (it is reaped
            // below), and nothing of this child's is kept for the next.
            forget_child(&mut st);
            let pending: Vec<Pending> = st.pending.drain().map(|(_, p)| p).collect();
            (st.child.take(), st.record.take(), pending, st.generation)
        };
        self.changed.notify_all();
        for s in self.live_sessions() {
            s.forget_server_requests(generation);
        }
        fail_all(
            pending,
            &format!("upstream {} stopped before answering: {reason}", self.id),
        );
        lock(&self.stdin).take();
        if let Some(child) = child {
            let pid = child.id();
            let status = reap(child, STDIN_CLOSE_GRACE);
            crate::log!("upstream {} (pid {pid}) stopped: {status}", self.id);
        }
        drop(record);
        let mut st = self.lock();
        st.phase = Phase::Idle;
        st.restart_at = None;
        drop(st);
        self.changed.notify_all();
    }

    /// `mcpshare restart`: stop it, forget its crash history, start it again.
    pub fn restart(self: &Arc<Self>) -> Result<Value, String> {
        self.stop("restart requested");
        {
            let mut st = self.lock();
            st.crashes.clear();
            st.last_error = None;
        }
        self.ensure_running(true)
    }

    fn kill_generation(&self, generation: u64) {
        let child = {
            let mut st = self.lock();
            if st.generation != generation {
                return;
            }
            st.ended = generation;
            st.pid = None;
            (st.child.take(), st.record.take())
        };
        lock(&self.stdin).take();
        if let Some(child) = child.0 {
            reap(child, Duration::ZERO);
        }
        drop(child.1);
    }
}

/// The child is gone (or going): what the daemon knew of it no longer holds
/// for the next one (its handshake, cached lists, the level it was sent).
fn forget_child(st: &mut State) {
    st.pid = None;
    st.init = None;
    st.cache.clear();
    st.cache_epoch += 1;
    st.applied_level = None;
}

fn inflight(st: &State) -> usize {
    st.pending.values().filter(|p| p.session.is_some()).count()
}

/// The stream of a session's newest call in flight.
fn newest_call(st: &State, session_id: &str) -> Option<Route> {
    st.pending
        .iter()
        .filter(|(_, p)| p.session.as_ref().is_some_and(|s| s.id == session_id))
        .max_by_key(|(id, _)| **id)
        .map(|(_, p)| p.to.clone())
}

/// Wait for `child` to exit: `grace` on its own, then SIGTERM to its group,
/// then SIGKILL. The group goes too: the real server is often a grandchild
/// behind npx or uvx. The leader is waited for without being reaped, so its
/// group id stays reserved (a zombie's pid is not reused) until the final
/// SIGKILL to the group has gone out; only then is it reaped. No signal is
/// ever sent after that.
fn reap(mut child: Child, grace: Duration) -> std::process::ExitStatus {
    let pgid = child.id();
    if !exited_by(pgid, Instant::now() + grace) {
        let _ = platform::signal_group(pgid, platform::Signal::Term);
        if !exited_by(pgid, Instant::now() + TERM_GRACE) {
            let _ = child.kill();
        }
    }
    let _ = platform::signal_group(pgid, platform::Signal::Kill);
    child.wait().unwrap_or_else(|_| exit_unknown())
}

/// Has our unreaped child exited by `deadline`? An error (it cannot be
/// waited for) counts as exited: there is nothing left to wait for.
fn exited_by(pid: u32, deadline: Instant) -> bool {
    loop {
        match platform::child_exited(pid, false) {
            Ok(true) | Err(_) => return true,
            Ok(false) if Instant::now() < deadline => std::thread::sleep(REAP_POLL),
            Ok(false) => return false,
        }
    }
}

/// Answer each of these requests with an error; the daemon's own requests
/// just end (their receivers see the channel close).
fn fail_all(pending: Vec<Pending>, message: &str) {
    for p in pending {
        if let Some(s) = &p.session {
            s.untrack(&p.orig_id);
            p.to.answer(Message::from_value(&jsonrpc::error(
                p.orig_id,
                jsonrpc::UNAVAILABLE,
                message.to_string(),
            )));
        }
    }
}

/// The child's stdin writer: the one thread that may block on the pipe.
/// It ends when the queue's sender is dropped (stdin then closes) or the
/// child closes the pipe.
fn write_loop(mut stdin: ChildStdin, lines: Receiver<Vec<u8>>) {
    for line in lines {
        if stdin.write_all(&line).and_then(|()| stdin.flush()).is_err() {
            return;
        }
    }
}

#[cfg(unix)]
fn sys_signal(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn sys_signal(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

#[cfg(unix)]
fn exit_unknown() -> std::process::ExitStatus {
    std::os::unix::process::ExitStatusExt::from_raw(0)
}

#[cfg(not(unix))]
fn exit_unknown() -> std::process::ExitStatus {
    std::os::windows::process::ExitStatusExt::from_raw(0)
}
