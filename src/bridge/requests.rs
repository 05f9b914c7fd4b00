//! The client's open requests, by id: each is answered exactly once, by
//! its answer, an error when its reply ended without one, or by `exit`.
//! It never sends anything to the daemon.

use super::Bridge;
use crate::mcp::jsonrpc;
use crate::mcp::message::Message;
use crate::pool::lock;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// A client request not yet answered, by its id.
#[derive(Default)]
pub(super) struct Open {
    /// Requests with this id (a client may reuse one; each is answered).
    pub(super) count: usize,
    /// The client sent `notifications/cancelled` for it: no answer is owed.
    pub(super) cancelled: bool,
    /// Sent to the daemon: worth waiting for at end of input.
    pub(super) sent: bool,
}

#[derive(Default)]
pub(super) struct Requests {
    pub(super) open: HashMap<String, Open>,
    /// Batches being handled (their answers go out as one array).
    pub(super) batches: usize,
}

fn key(id: &Value) -> String {
    id.to_string()
}

/// The answer to a request whose reply ended without one, which the client
/// did not cancel (the daemon stopped, or dropped the call).
pub(super) fn unanswered(id: Value) -> Value {
    let text = "the mcpshare daemon ended this request without an answer \
                (it may have stopped); it may or may not have run";
    jsonrpc::error(id, jsonrpc::UNAVAILABLE, text)
}

impl Bridge {
    /// Count a client request as open until `settle` answers it.
    pub(super) fn open(&self, id: &Value) {
        lock(&self.requests).open.entry(key(id)).or_default().count += 1;
    }

    /// The request has reached (or is about to reach) the daemon.
    pub(super) fn mark_sent(&self, id: &Value) {
        if let Some(o) = lock(&self.requests).open.get_mut(&key(id)) {
            o.sent = true;
        }
    }

    /// The client cancelled request `id`: when its stream ends without an
    /// answer, none is owed.
    pub(super) fn mark_cancelled(&self, msg: &Message) {
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
    pub(super) fn settle(&self, id: &Value, answer: Option<Message>) {
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
        let answer = answer.or_else(|| {
            (!cancelled).then(|| {
                let v = unanswered(id.clone());
                self.reporter.note_answer(&v);
                Message::from_value(&v)
            })
        });
        if let Some(answer) = answer
            && !turn.is_some_and(|t| t.write_text(answer.text()))
        {
            self.exit("stdout is closed");
        }
    }

    /// Wake the end-of-input drain, the one waiter for requests to settle;
    /// otherwise spare the wake-up (a syscall, on the hot path).
    pub(super) fn settle_noted(&self) {
        if self.closing.load(Ordering::Acquire) {
            self.settled.notify_all();
        }
    }
}
