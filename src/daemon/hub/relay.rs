//! What a hub client's servers send it unprompted, on its way to the
//! client's stream: a resource update carries the URI the client knows (a
//! URI two servers share is rewritten), and a server's `list_changed` is
//! passed on only when its list really changed (re-listed and compared
//! whole, a burst taken as one). One thread per member while the client's
//! stream is open; it ends when the member's stream closes.

use super::*;
use crate::pool::QueueRx;
use std::sync::mpsc::RecvTimeoutError;

/// How long a relay waits for a message before it looks again.
const RELAY_POLL: Duration = Duration::from_secs(1);

impl HubSession {
    /// Attach `m`'s stream to the client's `tx` through a relay thread.
    pub(super) fn relay(&self, m: &Member, tx: QueueTx<Message>) {
        let (mtx, mrx) = crate::pool::queue(crate::mux::session::STREAM_QUEUE);
        if !m.session.open_stream(mtx) {
            return;
        }
        let hub = self.me.clone();
        let member = m.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("hub-relay-{}", m.server))
            .spawn(move || relay_loop(&hub, &member, &mrx, &tx));
        if let Err(e) = spawned {
            crate::log!("hub session {}: no relay for {}: {e}", self.id, m.server);
            m.session.close_stream();
        }
    }

    /// The client URI of a server's own, if the hub rewrote it.
    fn client_uri(&self, server: &str, uri: &str) -> Option<String> {
        lock(&self.owners)
            .uris
            .iter()
            .find(|(exposed, (s, u))| s == server && u == uri && exposed.as_str() != uri)
            .map(|(exposed, _)| exposed.clone())
    }

    /// Did `field` of `m`'s list change since the hub last saw it? Lists
    /// it again to know; the catalog keeps the new list.
    fn list_changed(&self, m: &Member, method: &str, field: &str) -> bool {
        let Ok(items) = self.all_pages(m, method, field) else {
            return true;
        };
        let key = (m.server.clone(), field.to_string());
        // What this session saw, else what the hub last saw of the server.
        let before = lock(&self.seen).get(&key).map(|v| json!(**v)).or_else(|| {
            self.daemon
                .upgrade()
                .map(|d| d.catalog.field(&m.server, field))
        });
        let now = json!(items);
        if let Some(d) = self.daemon.upgrade() {
            d.catalog.put(&m.server, field, now.clone());
        }
        lock(&self.seen).insert(key, Arc::new(items));
        before.as_ref() != Some(&now)
    }
}

fn relay_loop(hub: &Weak<HubSession>, m: &Member, rx: &QueueRx<Message>, tx: &QueueTx<Message>) {
    // Messages taken out of order while a burst was read, handled next.
    let mut later: std::collections::VecDeque<Message> = std::collections::VecDeque::new();
    loop {
        let msg = match later.pop_front() {
            Some(msg) => msg,
            None => match rx.recv_timeout(RELAY_POLL) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => {
                    if hub.strong_count() == 0 {
                        return;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        let Some(h) = hub.upgrade() else { return };
        let method = msg.method().unwrap_or("").to_string();
        let out = match method.as_str() {
            "notifications/resources/updated" => {
                let mut msg = msg;
                let uri = msg.str_at(&["params", "uri"]).unwrap_or_default();
                if let Some(exposed) = h.client_uri(&m.server, &uri) {
                    msg.set_at(&["params", "uri"], &json!(exposed).to_string());
                }
                Some(msg)
            }
            "notifications/tools/list_changed" | "notifications/prompts/list_changed" => {
                // A burst is one change; what else came meanwhile is
                // handled after it, in order.
                while let Ok(next) = rx.try_recv() {
                    if next.method() != Some(method.as_str()) {
                        later.push_back(next);
                    }
                }
                let (list, field) = if method.contains("tools") {
                    ("tools/list", "tools")
                } else {
                    ("prompts/list", "prompts")
                };
                h.list_changed(m, list, field).then_some(msg)
            }
            _ => Some(msg),
        };
        if let Some(out) = out {
            match tx.try_send(out) {
                Ok(()) => {}
                // The client stopped reading its stream: the hub session
                // is stalled, and ends (see `reap_hubs`).
                Err(std::sync::mpsc::TrySendError::Full(_)) => {
                    h.stalled.store(true, Ordering::Release);
                    return;
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                    m.session.close_stream();
                    return;
                }
            }
        }
    }
}
