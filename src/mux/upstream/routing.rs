//! What the child sends back: answers to their callers, progress to its
//! request, log messages by each session's level, resource updates to
//! subscribers, and the child's own requests to the session they belong to.

use super::*;

impl Upstream {
    pub(super) fn read_loop(self: Arc<Self>, generation: u64, stdout: super::life::Watched) {
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
    pub(super) fn not_json(&self, bytes: &[u8], why: &str) {
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

    pub(super) fn route(self: &Arc<Self>, generation: u64, msg: Message) {
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

    pub(super) fn route_response(&self, mut msg: Message) {
        let Some(id) = msg.id().as_u64() else {
            return;
        };
        let mut viewed = None;
        let p = {
            let mut st = self.lock();
            let Some(p) = st.pending.remove(&id) else {
                return;
            };
            if p.session.is_some() {
                st.last_call = Instant::now();
            }
            self.wake_waiters(&st);
            if let Some((key, epoch)) = &p.cache
                && *epoch == st.cache_epoch
                && let Some(result) = msg.raw_at(&["result"])
            {
                st.cache.insert(key.clone(), result.to_string());
            }
            if let Some((key, _)) = &p.cache
                && key.starts_with("tools/list\n")
                && let Some(result) = msg.raw_at(&["result"])
            {
                let view = self.view();
                if !view.is_plain() {
                    viewed = Some(view.present(result));
                }
            }
            p
        };
        if let Some(result) = viewed {
            msg = Message::result(&msg.id(), &result);
        }
        if let Some(s) = &p.session {
            s.untrack(&p.orig_id);
            msg.set_id(&p.orig_id);
        }
        p.to.answer(msg);
    }

    pub(super) fn route_notification(&self, mut msg: Message) {
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
    pub(super) fn callers(&self) -> usize {
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
    pub(super) fn sole_caller(&self) -> Option<(Arc<Session>, Route)> {
        let st = self.lock();
        let mut callers = st.pending.values().filter_map(|p| p.session.as_ref());
        let first = callers.next()?.clone();
        if callers.any(|s| s.id != first.id) {
            return None;
        }
        let tx = newest_call(&st, &first.id)?;
        Some((first, tx))
    }

    pub(super) fn route_request(self: &Arc<Self>, generation: u64, msg: Message) {
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
}
