//! What each message from the client leads to: answered here (`ping`,
//! `initialize` errors), handed to a worker as a request, forwarded quietly
//! (notifications, responses), or unbatched. It never waits for an attach
//! on the thread reading stdin: a request that needs one goes to a worker.

use super::Bridge;
use super::post::{Early, PostError};
use super::requests::unanswered;
use crate::mcp::jsonrpc::{self, Kind};
use crate::mcp::message::Message;
use crate::pool::lock;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Bridge {
    /// Handle one message from stdin; `input_idle` says no other message
    /// is already waiting behind it.
    pub(super) fn dispatch(self: &Arc<Self>, msg: Message, input_idle: bool) {
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
                    let Some(waiting) = self.admit(msg.text().len()) else {
                        return self.write(&too_many(id));
                    };
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
                        drop(waiting);
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
    pub(super) fn batch(self: &Arc<Self>, items: Vec<Message>) {
        let version = lock(&self.link).conn.as_ref().map(|c| c.version.clone());
        if items.is_empty() || version.as_deref() != Some(jsonrpc::BATCH_VERSION) {
            let text = "Invalid Request: batches are only accepted in protocol 2025-03-26";
            return self.write(&jsonrpc::error(Value::Null, jsonrpc::INVALID_REQUEST, text));
        }
        let Some(waiting) = self.admit(items.iter().map(|m| m.text().len()).sum()) else {
            return self.write(&too_many(Value::Null));
        };
        lock(&self.requests).batches += 1;
        self.spawn(None, move |b| {
            drop(waiting);
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
}

/// The answer to a request refused because too many wait for a worker.
fn too_many(id: Value) -> Value {
    jsonrpc::error(
        id,
        jsonrpc::UNAVAILABLE,
        format!(
            "mcpshare: {} requests (or {} MiB of them) already wait for the daemon; \
             this one was not taken: send it again when answers come",
            super::MAX_WAITING,
            super::MAX_WAITING_BYTES >> 20
        ),
    )
}
