//! Requests to the child: ids rewritten per session, progress tokens,
//! the turn of each session on an upstream that asks its clients,
//! cancellation, and the writes to the child's stdin queue. Every request
//! ends with exactly one answer to its caller.

use super::*;

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
pub(super) struct Route {
    pub(super) tx: QueueTx<Message>,
    pub(super) direct: Option<Arc<dyn Answerer>>,
    pub(super) owner: Option<Weak<Session>>,
}

impl Route {
    pub(super) fn new() -> (Route, QueueRx<Message>) {
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
    pub(super) fn send(&self, msg: Message) -> bool {
        if let Some(d) = &self.direct {
            d.streaming();
        }
        self.queue(msg)
    }

    /// The answer: written directly if it can be; the channel gets it either
    /// way, so the caller learns the request is done.
    pub(super) fn answer(&self, msg: Message) {
        if let Some(d) = &self.direct {
            d.answer(&msg);
        }
        self.queue(msg);
    }

    pub(super) fn queue(&self, msg: Message) -> bool {
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

pub(super) struct Pending {
    /// None for the daemon's own requests (handshake, pings, re-applied state).
    pub(super) session: Option<Arc<Session>>,
    pub(super) orig_id: Value,
    /// The client's progress token, as the text it sent.
    pub(super) orig_token: Option<String>,
    /// Cache the result under this key if the cache epoch is unchanged.
    pub(super) cache: Option<(String, u64)>,
    pub(super) to: Route,
}

impl Upstream {
    /// Send one of the daemon's own requests to the child.
    pub(super) fn send_internal(
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
        let mut msg = msg;
        let id = msg.id();
        let method = msg.method().unwrap_or("").to_string();
        let view = self.view();
        let local = |result: Value| {
            Ok(Reply::Local(Message::from_value(&jsonrpc::result(
                id.clone(),
                result,
            ))))
        };
        match method.as_str() {
            "ping" => return local(json!({})),
            "tools/call" if !view.is_plain() => {
                let called = msg.str_at(&["params", "name"]).unwrap_or_default();
                match view.resolve(&called) {
                    Ok(name) if name == called => {}
                    Ok(name) => {
                        msg.set_at(&["params", "name"], &json!(name).to_string());
                    }
                    Err(crate::mux::view::Refused::Hidden(name)) => {
                        let e = jsonrpc::error(
                            id,
                            jsonrpc::INVALID_PARAMS,
                            format!("unknown tool: {name}"),
                        );
                        return Ok(Reply::Local(Message::from_value(&e)));
                    }
                }
            }
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
                if method == "tools/list" && !view.is_plain() {
                    return Ok(Reply::Local(Message::result(&id, &view.present(result))));
                }
                return Ok(Reply::Local(Message::result(&id, result)));
            }
            cache = Some((key, st.cache_epoch));
        }
        self.call(session, msg, cache, direct).map(Reply::Forwarded)
    }

    pub(super) fn call(
        self: &Arc<Self>,
        session: &Arc<Session>,
        mut msg: Message,
        cache: Option<(String, u64)>,
        direct: Option<Arc<dyn Answerer>>,
    ) -> Result<QueueRx<Message>, String> {
        let (mut to, rx) = Route::new();
        to.direct = direct;
        to.owner = Some(Arc::downgrade(session));
        let orig_id = msg.id();
        let orig_token = msg.raw_at(&PROGRESS_TOKEN).map(str::to_string);
        let (id, generation) = {
            // A child paused for want of calls just after it was found
            // running starts again for this call (once).
            let mut retried = false;
            let mut st = loop {
                self.ensure_started()?;
                match self.wait_turn(session) {
                    Ok(st) => break st,
                    Err(e) => {
                        let paused = {
                            let st = self.lock();
                            st.pausing || st.phase == Phase::Idle
                        };
                        if retried || !paused {
                            return Err(e);
                        }
                        retried = true;
                    }
                }
            };
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
            st.last_call = Instant::now();
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
    pub(super) fn wait_turn(&self, session: &Session) -> Result<MutexGuard<'_, State>, String> {
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

    pub(super) fn take_pending(&self, id: u64) -> Option<(Pending, u64)> {
        let mut st = self.lock();
        let p = st.pending.remove(&id)?;
        self.wake_waiters(&st);
        Some((p, st.generation))
    }

    pub(super) fn cancel_at_child(&self, id: u64, generation: u64, reason: &str) {
        let msg = jsonrpc::notification(
            "notifications/cancelled",
            Some(json!({"requestId": id, "reason": reason})),
        );
        let _ = self.write(generation, &msg);
    }

    /// Queue a message of the daemon's own for the child's stdin.
    pub(super) fn write(&self, generation: u64, msg: &Value) -> Result<(), String> {
        let mut line = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.write_line(generation, line)
    }

    /// Queue a client's message for the child's stdin, as its bytes.
    pub(super) fn write_message(&self, generation: u64, msg: Message) -> Result<(), String> {
        let mut line = msg.into_text().into_bytes();
        line.push(b'\n');
        self.write_line(generation, line)
    }

    /// Queue one line for the child's stdin; never waits on the pipe.
    pub(super) fn write_line(&self, generation: u64, line: Vec<u8>) -> Result<(), String> {
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
}

pub(super) fn inflight(st: &State) -> usize {
    st.pending.values().filter(|p| p.session.is_some()).count()
}

/// The stream of a session's newest call in flight.
pub(super) fn newest_call(st: &State, session_id: &str) -> Option<Route> {
    st.pending
        .iter()
        .filter(|(_, p)| p.session.as_ref().is_some_and(|s| s.id == session_id))
        .max_by_key(|(id, _)| **id)
        .map(|(_, p)| p.to.clone())
}

/// Answer each of these requests with an error; the daemon's own requests
/// just end (their receivers see the channel close).
pub(super) fn fail_all(pending: Vec<Pending>, message: &str) {
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
