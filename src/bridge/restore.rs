//! What the client set on its session (log level, resource subscriptions),
//! kept from the daemon's successful answers, and set again on a new session
//! after a re-attach, before any request of the client is sent on it. It
//! never replays anything the daemon refused.

use super::Bridge;
use super::attach::Conn;
use super::post::PostError;
use crate::mcp::jsonrpc;
use crate::mcp::message::Message;
use crate::pool::lock;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What the client set on its session that a new session must be told
/// again after a re-attach, as the daemon's successful answers left it.
#[derive(Default)]
pub(super) struct Settings {
    /// The level of the last `logging/setLevel`.
    level: Option<String>,
    /// The resource URIs subscribed to and not unsubscribed.
    subscriptions: BTreeSet<String>,
}

impl Bridge {
    /// Keep what a successful `logging/setLevel` or resource
    /// (un)subscription of the client set on its session, for `restore`.
    pub(super) fn remember(&self, msg: &Message, answer: &Message) {
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
    pub(super) fn restore(self: &Arc<Self>, conn: &Arc<Conn>) {
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
    pub(super) fn reattached(self: &Arc<Self>, conn: &Arc<Conn>) {
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
}
