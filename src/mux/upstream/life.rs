//! An upstream's life: start the child and do the handshake once (bounded),
//! wait for a start in progress, restart after a crash with backoff, mark it
//! `crashed` after a crash loop, and stop it. Every start and end is tied to
//! a generation, so a late report of an old child changes nothing.

use super::*;

impl Upstream {
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
    pub(super) fn ensure_started(self: &Arc<Self>) -> Result<(), String> {
        self.until_running(false, |_| (), |_| ())
    }

    /// The start-or-wait loop; `running` reads the state of a running
    /// child, `started` gets the result of a handshake this call did.
    pub(super) fn until_running<T>(
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
                Phase::Running if st.exited != st.generation => return Ok(running(&st)),
                Phase::Stopping if !st.pausing => {
                    return Err(format!("upstream {} is stopping", self.id));
                }
                Phase::Crashed if fresh => {
                    st.history.forgive();
                    st.phase = Phase::Idle;
                }
                Phase::Crashed => return Err(self.crashed_message(&st)),
                // A child that exited and is being read out, a start or a
                // stop under way: wait for it to be over.
                Phase::Running | Phase::Starting | Phase::Stopping => {
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

    pub(super) fn crashed_message(&self, st: &State) -> String {
        format!(
            "upstream {} crashed {} times within {} s and is not restarted; see 'mcpshare logs {}', \
             then 'mcpshare restart {}' (a newly connecting client also retries)",
            self.id,
            st.history.recent(),
            CRASH_WINDOW.as_secs(),
            self.id,
            self.id
        )
    }

    pub(super) fn start_timeout_message(&self) -> String {
        format!(
            "upstream {} did not finish its MCP handshake within {} s (MCPSHARE_START_TIMEOUT_SECS); \
             see 'mcpshare logs {}'",
            self.id,
            self.tuning.start_timeout.as_secs(),
            self.id,
        )
    }

    pub(super) fn start(
        self: &Arc<Self>,
        generation: u64,
        deadline: Instant,
    ) -> Result<Value, String> {
        let (cmd, unenforced) = crate::supervisor::child::command(
            &self.spec.command,
            &self.spec.args,
            std::path::Path::new(&self.spec.cwd),
            &self.spec.env,
            &self.tuning.limits,
        );
        if let Some(why) = unenforced {
            crate::log!("upstream {}: {why}", self.id);
        }
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
        // Its exit is seen even while a grandchild keeps stdout open, but
        // only once what it wrote before exiting was read: an answer sent
        // just before the exit reaches its caller.
        let state = Arc::new(ReaderState::default());
        let (reader_alive, reader_ended) = channel::<()>();
        let watch = platform::PipeWatch::of(&stdout);
        let me = self.clone();
        let reader = state.clone();
        spawn(
            format!("wait-{}", self.id),
            Box::new(move || {
                if platform::child_exited(pid, true).is_ok() {
                    me.lock().exited = generation;
                    read_out(&reader_ended, &reader, watch.as_ref());
                    me.on_exit(generation);
                }
            }),
        )?;
        let me = self.clone();
        spawn(
            format!("read-{}", self.id),
            Box::new(move || {
                me.read_loop(
                    generation,
                    Watched {
                        inner: stdout,
                        state,
                    },
                );
                drop(reader_alive);
            }),
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
    pub(super) fn exit_report(
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
        let how = match (status.code(), exit_signal(&status)) {
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
    pub(super) fn after_restart(&self, generation: u64) {
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

    /// The child closed stdout: it is gone (or useless). Fail everything in
    /// flight at once, reap it, and restart it with backoff while sessions
    /// remain, unless it crashes in a loop.
    pub(super) fn on_exit(self: &Arc<Self>, generation: u64) {
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
                match st.history.crashed(Instant::now()) {
                    AfterCrash::GiveUp => {
                        st.phase = Phase::Crashed;
                        st.last_error = Some(self.crashed_message(&st));
                    }
                    AfterCrash::RestartIn(delay) => {
                        st.restart_at = Some(Instant::now() + delay);
                        backoff = Some(delay);
                    }
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
    pub(super) fn restart_later(self: &Arc<Self>, generation: u64, delay: Duration) {
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

    /// Stop the child: answer every call in flight with an error naming
    /// `reason`, close stdin, then SIGTERM its process group, then SIGKILL.
    pub fn stop(&self, reason: &str) {
        self.stop_when(reason, false, |_| true);
    }

    /// Stop a running child that has had no call in flight for `quiet`,
    /// deciding under the same lock that no call can start meanwhile; a
    /// call that comes while it stops waits and starts a new child. True
    /// when it stopped one.
    pub fn pause_if_quiet(&self, quiet: Duration) -> bool {
        self.stop_when("no call for its idle time", true, |st| {
            st.phase == Phase::Running && inflight(st) == 0 && st.last_call.elapsed() >= quiet
        })
    }

    fn stop_when(&self, reason: &str, pause: bool, wanted: impl FnOnce(&State) -> bool) -> bool {
        let (child, record, pending, generation) = {
            let mut st = self.lock();
            if !wanted(&st) {
                return false;
            }
            st.pausing = pause;
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
        // Only the stop this call began: a restart meanwhile may already
        // have started the next generation, which is not ours to touch.
        if st.generation == generation && st.phase == Phase::Stopping {
            st.phase = Phase::Idle;
            st.pausing = false;
            st.restart_at = None;
        }
        drop(st);
        self.changed.notify_all();
        true
    }

    /// `mcpshare restart`: stop it, forget its crash history, start it again.
    pub fn restart(self: &Arc<Self>) -> Result<Value, String> {
        self.stop("restart requested");
        {
            let mut st = self.lock();
            st.history.forgive();
            st.last_error = None;
        }
        self.ensure_running(true)
    }

    pub(super) fn kill_generation(&self, generation: u64) {
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

/// The longest an exited child's stdout is read on before its calls in
/// flight fail: the reader may be busy with a large last answer.
const READ_OUT_FOR: Duration = Duration::from_secs(5);

/// How often the end of that reading is checked for.
const READ_OUT_CHECK: Duration = Duration::from_millis(10);

/// Wait, at most [`READ_OUT_FOR`], until the reader of an exited child's
/// stdout has read all of it: it ended (end of file), or it waits in a read
/// of a pipe that holds nothing (a grandchild keeps the pipe open), twice in
/// a row with no read returning in between (a read that took the last bytes
/// from the pipe may not have returned them yet at the first look).
fn read_out(ended: &Receiver<()>, reader: &ReaderState, watch: Option<&platform::PipeWatch>) {
    let until = Instant::now() + READ_OUT_FOR;
    let mut quiet_at: Option<u64> = None;
    while Instant::now() < until {
        if !matches!(
            ended.recv_timeout(READ_OUT_CHECK),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        ) {
            return;
        }
        let reads = reader.reads.load(Ordering::Acquire);
        let quiet = reader.reading.load(Ordering::Acquire)
            && watch.is_none_or(platform::PipeWatch::drained);
        match (quiet, quiet_at) {
            (true, Some(before)) if before == reads => return,
            (true, _) => quiet_at = Some(reads),
            (false, _) => quiet_at = None,
        }
    }
}

/// What the reader of a child's stdout is doing.
#[derive(Default)]
pub(super) struct ReaderState {
    /// Waiting in a read: every line read before was handled (a
    /// `BufReader` reads only when it has nothing left).
    reading: AtomicBool,
    /// Reads that returned.
    reads: std::sync::atomic::AtomicU64,
}

/// A child's stdout that keeps its [`ReaderState`].
pub(super) struct Watched {
    inner: std::process::ChildStdout,
    state: Arc<ReaderState>,
}

impl std::io::Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.state.reading.store(true, Ordering::Release);
        let n = self.inner.read(buf);
        self.state.reading.store(false, Ordering::Release);
        self.state.reads.fetch_add(1, Ordering::AcqRel);
        n
    }
}
