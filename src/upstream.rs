//! One upstream MCP server: a child process the daemon owns, shared by many
//! sessions. This module spawns it (own process group, dies with the
//! daemon), does the handshake once, rewrites request ids and progress
//! tokens per session, and routes what the child sends back. It never
//! forwards a client's id to the child and never shares an id map between
//! sessions.

use crate::identity::Spec;
use crate::jsonrpc::{self, Kind};
use crate::session::Session;
use crate::sys;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How long a stopping upstream gets after its stdin closes, before SIGTERM.
const STDIN_CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long it gets after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);
/// How long a child that closed its stdout gets to exit on its own.
const EXIT_GRACE: Duration = Duration::from_millis(200);
const REAP_POLL: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not running; the next request starts it.
    Idle,
    Starting,
    Running,
    Stopping,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
        }
    }
}

/// Where the answer to a request sent to the child goes.
struct Pending {
    /// None for the daemon's own requests (the handshake).
    session: Option<Arc<Session>>,
    orig_id: Value,
    orig_token: Option<Value>,
    tx: Sender<Value>,
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
    last_error: Option<String>,
    /// Session that most recently sent a request, for routing the child's
    /// own requests when several sessions have calls in flight.
    last_caller: Option<Weak<Session>>,
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
    pub last_error: Option<String>,
}

pub struct Upstream {
    pub id: String,
    pub spec: Spec,
    log_path: PathBuf,
    spawner: Spawner,
    start_timeout: Duration,
    state: Mutex<State>,
    changed: Condvar,
    /// The running child's stdin, tagged with its generation.
    stdin: Mutex<Option<(u64, ChildStdin)>>,
    sessions: Mutex<HashMap<String, Weak<Session>>>,
}

impl Upstream {
    pub fn new(
        id: String,
        spec: Spec,
        log_path: PathBuf,
        spawner: Spawner,
        start_timeout: Duration,
    ) -> Upstream {
        Upstream {
            id,
            spec,
            log_path,
            spawner,
            start_timeout,
            state: Mutex::new(State {
                phase: Phase::Idle,
                generation: 0,
                child: None,
                pid: None,
                init: None,
                next_id: 1,
                pending: HashMap::new(),
                restarts: 0,
                last_error: None,
                last_caller: None,
            }),
            changed: Condvar::new(),
            stdin: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn status(&self) -> Status {
        let st = self.lock();
        let mut command = vec![self.spec.command.clone()];
        command.extend(self.spec.args.iter().cloned());
        Status {
            id: self.id.clone(),
            pid: st.pid,
            command,
            cwd: self.spec.cwd.clone(),
            sessions: self.session_count(),
            state: st.phase.name(),
            restarts: st.restarts,
            inflight: st.pending.values().filter(|p| p.session.is_some()).count(),
            isolated: self.spec.isolated,
            last_error: st.last_error.clone(),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.lock().pid
    }

    pub fn session_count(&self) -> usize {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.retain(|_, w| w.strong_count() > 0);
        s.len()
    }

    pub fn attach(&self, session: &Arc<Session>) {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.insert(session.id.clone(), Arc::downgrade(session));
    }

    pub fn detach(&self, session_id: &str) {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.remove(session_id);
    }

    fn live_sessions(&self) -> Vec<Arc<Session>> {
        let s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.values().filter_map(Weak::upgrade).collect()
    }

    /// Start the child if needed and wait (bounded) for its handshake.
    /// Returns the child's `initialize` result.
    pub fn ensure_running(self: &Arc<Self>) -> Result<Value, String> {
        let deadline = Instant::now() + self.start_timeout;
        let mut st = self.lock();
        loop {
            match st.phase {
                Phase::Running => return Ok(st.init.clone().unwrap_or(Value::Null)),
                Phase::Stopping => return Err(format!("upstream {} is stopping", self.id)),
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
                    st.phase = Phase::Starting;
                    st.generation += 1;
                    let generation = st.generation;
                    drop(st);
                    let result = self.start(generation, deadline);
                    let mut st = self.lock();
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
                    }
                    drop(st);
                    self.changed.notify_all();
                    if result.is_err() {
                        self.kill_generation(generation);
                    }
                    return result;
                }
            }
        }
    }

    fn start_timeout_message(&self) -> String {
        format!(
            "upstream {} did not finish its MCP handshake within {} s (MCPSHARE_START_TIMEOUT_SECS); \
             see 'mcpshare logs {}' or {}",
            self.id,
            self.start_timeout.as_secs(),
            self.id,
            self.log_path.display()
        )
    }

    fn start(self: &Arc<Self>, generation: u64, deadline: Instant) -> Result<Value, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| format!("cannot open {}: {e}", self.log_path.display()))?;
        let mut cmd = Command::new(&self.spec.command);
        cmd.args(&self.spec.args)
            .current_dir(&self.spec.cwd)
            .env_clear()
            .envs(&self.spec.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        sys::die_with_parent(&mut cmd);
        let mut child = self.spawner.spawn(cmd).map_err(|e| {
            format!(
                "cannot start upstream command '{}' in {}: {e}",
                self.spec.command, self.spec.cwd
            )
        })?;
        let pid = child.id();
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("child has no stdio pipes".into());
        };
        {
            let mut st = self.lock();
            st.child = Some(child);
            st.pid = Some(pid);
        }
        *self.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, stdin));
        crate::log!(
            "upstream {} started: pid {pid}, generation {generation}",
            self.id
        );

        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("read-{}", self.id))
            .spawn(move || me.read_loop(generation, stdout))
            .map_err(|e| format!("cannot start reader thread: {e}"))?;

        let init = json!({
            "protocolVersion": jsonrpc::LATEST_VERSION,
            "capabilities": {
                "roots": {"listChanged": true},
                "sampling": {},
                "elicitation": {"form": {}}
            },
            "clientInfo": {"name": "mcpshare", "version": env!("CARGO_PKG_VERSION")}
        });
        let rx = self.send_internal("initialize", init, generation)?;
        let left = deadline.saturating_duration_since(Instant::now());
        let reply = rx.recv_timeout(left).map_err(|e| match e {
            std::sync::mpsc::RecvTimeoutError::Timeout => self.start_timeout_message(),
            std::sync::mpsc::RecvTimeoutError::Disconnected => {
                format!(
                    "upstream {} exited during its handshake; see {}",
                    self.id,
                    self.log_path.display()
                )
            }
        })?;
        if let Some(err) = reply.get("error") {
            return Err(format!("upstream {} refused initialize: {err}", self.id));
        }
        let result = reply.get("result").cloned().unwrap_or(Value::Null);
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
        Ok(result)
    }

    /// Send one of the daemon's own requests to the child.
    fn send_internal(
        &self,
        method: &str,
        params: Value,
        generation: u64,
    ) -> Result<Receiver<Value>, String> {
        let (tx, rx) = channel();
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
                    tx,
                },
            );
            id
        };
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.write(generation, &msg).inspect_err(|_| {
            self.lock().pending.remove(&id);
        })?;
        Ok(rx)
    }

    /// Forward a session's request. The receiver yields the messages that
    /// belong to this request (progress, server→client requests) and ends
    /// with its response; it disconnects without a response if cancelled.
    pub fn call(
        self: &Arc<Self>,
        session: &Arc<Session>,
        mut msg: Value,
    ) -> Result<Receiver<Value>, String> {
        self.ensure_running()?;
        let (tx, rx) = channel();
        let orig_id = jsonrpc::id(&msg);
        let orig_token = msg.pointer("/params/_meta/progressToken").cloned();
        let (id, generation) = {
            let mut st = self.lock();
            if st.phase != Phase::Running {
                return Err(format!("upstream {} is {}", self.id, st.phase.name()));
            }
            let id = st.next_id;
            st.next_id += 1;
            st.pending.insert(
                id,
                Pending {
                    session: Some(session.clone()),
                    orig_id: orig_id.clone(),
                    orig_token: orig_token.clone(),
                    tx,
                },
            );
            st.last_caller = Some(Arc::downgrade(session));
            (id, st.generation)
        };
        session.track(&orig_id, id);
        msg["id"] = json!(id);
        if orig_token.is_some() {
            // Unique among this child's active requests: the request id itself.
            msg["params"]["_meta"]["progressToken"] = json!(id);
        }
        if let Err(e) = self.write(generation, &msg) {
            self.lock().pending.remove(&id);
            session.untrack(&orig_id);
            return Err(e);
        }
        Ok(rx)
    }

    /// Forward a notification from a session (cancellation is translated).
    pub fn notify(&self, session: &Session, mut msg: Value) -> Result<(), String> {
        if jsonrpc::method(&msg) == Some("notifications/cancelled") {
            let Some(orig) = msg.pointer("/params/requestId").cloned() else {
                return Ok(());
            };
            let Some(id) = session.untrack(&orig) else {
                return Ok(());
            };
            // A late response from the child is dropped with the pending entry.
            self.lock().pending.remove(&id);
            msg["params"]["requestId"] = json!(id);
        }
        let generation = self.lock().generation;
        self.write(generation, &msg)
    }

    /// Relay a session's response to a request the child made.
    pub fn respond(&self, generation: u64, child_id: Value, mut msg: Value) -> Result<(), String> {
        msg["id"] = child_id;
        self.write(generation, &msg)
    }

    /// Cancel a request the child is working on for a session that ended.
    pub fn cancel(&self, id: u64, reason: &str) {
        let generation = {
            let mut st = self.lock();
            if st.pending.remove(&id).is_none() {
                return;
            }
            st.generation
        };
        let msg = jsonrpc::notification(
            "notifications/cancelled",
            Some(json!({"requestId": id, "reason": reason})),
        );
        let _ = self.write(generation, &msg);
    }

    fn write(&self, generation: u64, msg: &Value) -> Result<(), String> {
        let mut line = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let mut slot = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_mut() {
            Some((g, stdin)) if *g == generation => stdin
                .write_all(&line)
                .and_then(|()| stdin.flush())
                .map_err(|e| format!("upstream {} stdin: {e}", self.id)),
            _ => Err(format!("upstream {} is not running", self.id)),
        }
    }

    fn read_loop(self: Arc<Self>, generation: u64, stdout: std::process::ChildStdout) {
        let mut lines = jsonrpc::LineReader::new(
            BufReader::with_capacity(64 * 1024, stdout),
            jsonrpc::max_message(),
        );
        loop {
            match lines.next_line() {
                Ok(Some(jsonrpc::Line::Text(bytes))) => {
                    match serde_json::from_slice::<Value>(&bytes) {
                        Ok(msg) => self.route(generation, msg),
                        Err(_) if bytes.iter().all(u8::is_ascii_whitespace) => {}
                        Err(_) => crate::log!(
                            "upstream {}: ignoring non-JSON line on stdout: {}",
                            self.id,
                            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                        ),
                    }
                }
                Ok(Some(jsonrpc::Line::TooLong(n))) => {
                    crate::log!(
                        "upstream {}: dropped a {n}-byte line over the message limit",
                        self.id
                    )
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

    /// The child closed stdout: it is gone (or useless). Fail everything in
    /// flight at once, reap it, and go idle so the next request restarts it.
    fn on_exit(&self, generation: u64) {
        let (pending, child, sessions) = {
            let mut st = self.lock();
            if st.generation != generation {
                return;
            }
            let stopping = st.phase == Phase::Stopping;
            if !stopping {
                st.phase = Phase::Idle;
                st.restarts += 1;
            }
            st.pid = None;
            st.init = None;
            let pending: Vec<Pending> = st.pending.drain().map(|(_, p)| p).collect();
            (pending, st.child.take(), !stopping)
        };
        {
            let mut slot = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(slot.as_ref(), Some((g, _)) if *g == generation) {
                *slot = None;
            }
        }
        self.changed.notify_all();
        let status = child.map(|c| reap(c, EXIT_GRACE));
        let how = status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "stopped".into());
        crate::log!(
            "upstream {} exited ({how}); failing {} request(s) in flight",
            self.id,
            pending.len()
        );
        let message = format!(
            "upstream {} exited ({how}) before answering; it restarts on the next request (see 'mcpshare logs {}')",
            self.id, self.id
        );
        for p in pending {
            if let Some(s) = &p.session {
                s.untrack(&p.orig_id);
            }
            let _ = p.tx.send(jsonrpc::error(
                p.orig_id,
                jsonrpc::UNAVAILABLE,
                message.clone(),
            ));
        }
        if sessions {
            self.forget_server_requests(generation);
        }
    }

    fn forget_server_requests(&self, generation: u64) {
        for s in self.live_sessions() {
            s.forget_server_requests(generation);
        }
    }

    fn route(&self, generation: u64, msg: Value) {
        match jsonrpc::classify(&msg) {
            Kind::Response => self.route_response(msg),
            Kind::Request => self.route_request(generation, msg),
            Kind::Notification => self.route_notification(msg),
            Kind::Invalid => crate::log!("upstream {}: ignoring invalid message {msg}", self.id),
        }
    }

    fn route_response(&self, mut msg: Value) {
        let Some(id) = msg.get("id").and_then(Value::as_u64) else {
            return;
        };
        let Some(p) = self.lock().pending.remove(&id) else {
            return;
        };
        if let Some(s) = &p.session {
            s.untrack(&p.orig_id);
            msg["id"] = p.orig_id;
        }
        let _ = p.tx.send(msg);
    }

    fn route_notification(&self, mut msg: Value) {
        let method = jsonrpc::method(&msg).unwrap_or("").to_string();
        if method == "notifications/progress" {
            let Some(token) = msg.pointer("/params/progressToken").and_then(Value::as_u64) else {
                return;
            };
            let st = self.lock();
            // Progress for a finished (or foreign) request is dropped.
            if let Some(p) = st.pending.get(&token)
                && let (Some(_), Some(orig)) = (&p.session, &p.orig_token)
            {
                msg["params"]["progressToken"] = orig.clone();
                let _ = p.tx.send(msg);
            }
            return;
        }
        if method == "notifications/cancelled" {
            // The child cancels one of its own requests to a client.
            if let Some(child_id) = msg.pointer("/params/requestId").cloned() {
                for s in self.live_sessions() {
                    if let Some(client_id) = s.server_request_id(&child_id) {
                        msg["params"]["requestId"] = client_id;
                        s.push(msg);
                        return;
                    }
                }
            }
            return;
        }
        if method == "notifications/message" {
            // A log message during exactly one session's call belongs to that call.
            if let Some(tx) = self.sole_caller_stream() {
                let _ = tx.send(msg);
                return;
            }
        }
        for s in self.live_sessions() {
            s.push(msg.clone());
        }
    }

    /// The session a server→client request goes to: the only session with a
    /// call in flight, else the most recent caller. With it, the stream of
    /// that session's newest call if it has one.
    fn pick_session(&self) -> Option<(Arc<Session>, Option<Sender<Value>>)> {
        let st = self.lock();
        let mut callers: HashMap<&str, (u64, &Pending)> = HashMap::new();
        for (id, p) in &st.pending {
            if let Some(s) = &p.session {
                let e = callers.entry(s.id.as_str()).or_insert((*id, p));
                if *id > e.0 {
                    *e = (*id, p);
                }
            }
        }
        if callers.len() == 1 {
            let (_, p) = callers.into_values().next()?;
            return Some((p.session.clone()?, Some(p.tx.clone())));
        }
        let s = st.last_caller.as_ref()?.upgrade()?;
        let tx = callers.get(s.id.as_str()).map(|(_, p)| p.tx.clone());
        Some((s, tx))
    }

    fn sole_caller_stream(&self) -> Option<Sender<Value>> {
        let st = self.lock();
        let mut it = st.pending.values().filter(|p| p.session.is_some());
        let first = it.next()?;
        let sid = first.session.as_ref()?.id.clone();
        if st
            .pending
            .values()
            .filter_map(|p| p.session.as_ref())
            .all(|s| s.id == sid)
        {
            let newest = st
                .pending
                .iter()
                .filter(|(_, p)| p.session.as_ref().is_some_and(|s| s.id == sid))
                .max_by_key(|(id, _)| **id)?;
            return Some(newest.1.tx.clone());
        }
        None
    }

    fn route_request(&self, generation: u64, msg: Value) {
        let child_id = jsonrpc::id(&msg);
        let method = jsonrpc::method(&msg).unwrap_or("").to_string();
        if method == "ping" {
            let _ = self.write(generation, &jsonrpc::result(child_id, json!({})));
            return;
        }
        let capability = match method.as_str() {
            "roots/list" => Some("roots"),
            "sampling/createMessage" => Some("sampling"),
            "elicitation/create" => Some("elicitation"),
            _ => None,
        };
        let target = self
            .pick_session()
            .filter(|(s, _)| capability.is_some_and(|c| s.has_capability(c)));
        let Some((session, stream)) = target else {
            let reply = if method == "elicitation/create" {
                jsonrpc::result(child_id, json!({"action": "decline"}))
            } else {
                jsonrpc::error(
                    child_id,
                    jsonrpc::METHOD_NOT_FOUND,
                    format!("no attached client can answer {method}"),
                )
            };
            let _ = self.write(generation, &reply);
            return;
        };
        let forwarded = session.server_request(generation, msg);
        match stream {
            Some(tx) if tx.send(forwarded.clone()).is_ok() => {}
            _ => session.push(forwarded),
        }
    }

    /// Stop the child: close stdin, then SIGTERM its process group, then SIGKILL.
    pub fn stop(&self) {
        let child = {
            let mut st = self.lock();
            st.phase = Phase::Stopping;
            st.child.take()
        };
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(child) = child {
            let pid = child.id();
            let status = reap(child, STDIN_CLOSE_GRACE);
            crate::log!("upstream {} (pid {pid}) stopped: {status}", self.id);
        }
        let mut st = self.lock();
        st.phase = Phase::Idle;
        st.pid = None;
        st.init = None;
        drop(st);
        self.changed.notify_all();
    }

    fn kill_generation(&self, generation: u64) {
        let child = {
            let mut st = self.lock();
            if st.generation != generation {
                return;
            }
            st.pid = None;
            st.child.take()
        };
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(child) = child {
            reap(child, Duration::ZERO);
        }
    }
}

/// Wait for `child` to exit: `grace` on its own, then SIGTERM to its group,
/// then SIGKILL. The group goes too: the real server is often a grandchild
/// behind npx or uvx. The group id stays reserved while any member lives,
/// and the leader is unreaped until it exits, so the signal cannot reach a
/// stranger's group.
fn reap(mut child: Child, grace: Duration) -> std::process::ExitStatus {
    let pgid = child.id();
    if let Some(status) = wait_until(&mut child, Instant::now() + grace) {
        let _ = sys::signal_group(pgid, sys::Signal::Kill);
        return status;
    }
    let _ = sys::signal_group(pgid, sys::Signal::Term);
    if let Some(status) = wait_until(&mut child, Instant::now() + TERM_GRACE) {
        let _ = sys::signal_group(pgid, sys::Signal::Kill);
        return status;
    }
    let _ = sys::signal_group(pgid, sys::Signal::Kill);
    let _ = child.kill();
    child.wait().unwrap_or_else(|_| exit_unknown())
}

fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(REAP_POLL),
            Ok(None) => return None,
            Err(_) => return Some(exit_unknown()),
        }
    }
}

#[cfg(unix)]
fn exit_unknown() -> std::process::ExitStatus {
    std::os::unix::process::ExitStatusExt::from_raw(0)
}

#[cfg(not(unix))]
fn exit_unknown() -> std::process::ExitStatus {
    std::os::windows::process::ExitStatusExt::from_raw(0)
}
