//! One upstream MCP server shared by many sessions: its life (start with
//! the handshake once, restart with backoff, `crashed` after a crash loop,
//! stop), here; requests and their ids in `calls`, what the child sends
//! back in `routing`, roots in `roots`, levels and pings in `health`. The
//! child process itself is `crate::supervisor`'s. It never forwards a
//! client's id to the child and never shares an id map between sessions.

mod calls;
mod health;
mod life;
mod roots;
mod routing;

pub use calls::{Answerer, ROUTE_QUEUE};
use calls::{Pending, Route, fail_all, inflight, newest_call};
use roots::RootsBook;

use crate::mcp::jsonrpc::{self, Kind};
use crate::mcp::message::Message;
use crate::mux::identity::Spec;
use crate::mux::session::{self, Session};
use crate::mux::view::ToolView;
use crate::platform;
use crate::pool::{QueueRx, QueueTx, lock, queue};
use crate::state::registry::{Record, Registration};
use crate::supervisor::child::{
    EXIT_GRACE, Limits, STDIN_CLOSE_GRACE, STDIN_QUEUE, Spawner, exit_signal, reap, write_loop,
};
use crate::supervisor::lifecycle::{
    AfterCrash, CRASH_LIMIT, CRASH_WINDOW, CrashHistory, PING_FAILURES, PING_TIMEOUT, Phase,
};
use crate::supervisor::logbook::Logbook;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::io::BufReader;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, channel, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How long a failed start waits to learn how the child ended (its exit
/// status, the end of its stderr) for the error message.
const EXIT_REPORT_WAIT: Duration = Duration::from_secs(2);
/// Stderr lines quoted in the message of a child that exited during its start.
const EXIT_REPORT_LINES: usize = 5;

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
    /// A configured server's idle time: its child stops after this long
    /// with no call in flight (zero: never). None for the drop-in path,
    /// whose upstreams stop once no session is left (see the daemon).
    pub idle: Option<Duration>,
    /// What the child may use.
    pub limits: Limits,
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

struct State {
    phase: Phase,
    generation: u64,
    child: Option<Child>,
    pid: Option<u32>,
    /// The child's `initialize` result.
    init: Option<Value>,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    history: CrashHistory,
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
    /// When the last call of a session began or ended.
    last_call: Instant,
    /// Stopping for want of calls, not for good: a call waits, then starts
    /// a new child.
    pausing: bool,
    /// The running child's registry record, removed when it is reaped.
    record: Option<Registration>,
    /// The newest generation whose end was dealt with (exit, stop or a
    /// failed start): a second report of the same end does nothing.
    ended: u64,
    /// The newest generation whose child exited; its end is dealt with
    /// once what it wrote was read. Meanwhile calls wait for the restart
    /// rather than go to a child that is gone.
    exited: u64,
    /// How the newest reaped child ended, by its generation.
    exit: Option<(u64, std::process::ExitStatus)>,
    /// When a crashed child is started again (its backoff), while idle.
    restart_at: Option<Instant>,
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
    /// Which tools clients see, and by what names (configured servers).
    view: Mutex<Arc<ToolView>>,
    /// Bumped each time the view changes (see `list_version`).
    view_version: std::sync::atomic::AtomicU64,
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
                history: CrashHistory::default(),
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
                last_call: Instant::now(),
                pausing: false,
                record: None,
                ended: 0,
                exited: 0,
                exit: None,
                restart_at: None,
            }),
            changed: Condvar::new(),
            stdin: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
            roots: Mutex::new(RootsBook::default()),
            roots_known: Condvar::new(),
            retired: AtomicBool::new(false),
            view: Mutex::new(Arc::new(ToolView::default())),
            view_version: std::sync::atomic::AtomicU64::new(0),
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
        match &self.spec.server {
            // Expanded `${VAR}` values are never shown: `mcpshare list`
            // shows the arguments as written instead.
            Some(name) if self.spec.secret_args => {
                command.push(format!("(arguments of configured server {name})"))
            }
            _ => command.extend(self.spec.args.iter().cloned()),
        }
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
            restarts: st.history.restarts,
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

    /// How long its running child has had no call in flight; None when a
    /// call is in flight or no child runs.
    pub fn quiet_for(&self) -> Option<Duration> {
        let st = self.lock();
        (st.phase == Phase::Running && inflight(&st) == 0).then(|| st.last_call.elapsed())
    }

    /// What its list answers depend on: they are the same while this is
    /// (the cache's epoch, bumped by a restart or a `list_changed`, and
    /// the tool view in force).
    pub fn list_version(&self) -> (u64, u64) {
        let epoch = self.lock().cache_epoch;
        (epoch, self.view_version.load(Ordering::Acquire))
    }

    /// What clients see of its tools.
    pub fn view(&self) -> Arc<ToolView> {
        lock(&self.view).clone()
    }

    /// Show clients its tools through `view` from now on; sessions are told
    /// their tool list changed when it did.
    pub fn set_view(&self, view: ToolView) {
        {
            let mut current = lock(&self.view);
            if **current == view {
                return;
            }
            *current = Arc::new(view);
            self.view_version.fetch_add(1, Ordering::AcqRel);
        }
        for s in self.live_sessions() {
            s.push(Message::from_value(&jsonrpc::notification(
                "notifications/tools/list_changed",
                None,
            )));
        }
    }

    /// The settings it was created with.
    pub fn tuning(&self) -> &Tuning {
        &self.tuning
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
