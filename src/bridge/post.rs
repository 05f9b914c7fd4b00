//! One request (or notification) POSTed to the daemon and its reply relayed:
//! a plain answer, or an event stream whose messages before the answer go
//! to the client. A stale attachment is retried once on a new one; it never
//! sends a request twice once it may have run.

use super::Bridge;
use super::attach::Conn;
use crate::mcp::jsonrpc::{self, Kind};
use crate::mcp::message::Message;
use crate::net::client::{BodyError, Reply, SendError};
use crate::net::h1::{Again, Head, Sent};
use crate::pool::{Reservation, lock};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// How long the thread reading stdin waits for an answer itself before a
/// worker takes over the wait (more input ends the wait at once).
const INLINE_WAIT: Duration = Duration::from_millis(50);

/// A request sent by the thread reading stdin, handed to a worker.
pub(super) struct Early {
    pub(super) conn: Arc<Conn>,
    pub(super) stage: Stage,
    pub(super) worker: Reservation,
}

pub(super) enum Stage {
    Sent(Sent),
    /// The reply's head is read (or reading it failed).
    Received(Result<Reply, SendError>),
    /// The daemon answered 408: to send again.
    Again(Again),
}

pub(super) enum PostError {
    /// Never reached this attachment (dead daemon, unknown session): reconnect and retry.
    Stale(String),
    Broken(String),
}

/// The answer to a request whose answer (or a message streamed before it)
/// is longer than this bridge takes.
fn too_large(id: Value, max: usize) -> Value {
    let text = format!(
        "the answer exceeds the limit of {max} bytes of this mcpshare run; raise it with \
         MCPSHARE_MAX_MESSAGE_BYTES in the environment of mcpshare run (and of the daemon)"
    );
    jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, text)
}

impl Bridge {
    /// On the thread reading stdin, send a request at once when nothing can
    /// make that wait: attached, a worker free for it, an idle connection at
    /// hand. The answer is then awaited here (`answer_inline`) or by that worker.
    pub(super) fn send_early(&self, msg: &Message) -> Option<Early> {
        let conn = lock(&self.link).conn.clone()?;
        let worker = self.pool.try_reserve()?;
        let sent =
            conn.client
                .mcp_send_reusing(&conn.path, &conn.headers(), msg.text().as_bytes())?;
        self.mark_sent(&msg.id());
        Some(Early {
            conn,
            stage: Stage::Sent(sent),
            worker,
        })
    }

    /// On the thread reading stdin, wait for the answer to a request sent
    /// early unless more input comes first, and relay it when it is plain
    /// JSON: then no other thread wakes for the call. Otherwise (input
    /// first, a stream, an error) hand back what there is for a worker.
    pub(super) fn answer_inline(self: &Arc<Self>, msg: &Message, early: Early) -> Option<Early> {
        let Stage::Sent(sent) = early.stage else {
            return Some(early);
        };
        let stage = if !sent.answers_before_stdin(INLINE_WAIT) {
            Stage::Sent(sent)
        } else {
            match sent.receive_head() {
                Head::Reply(reply) => Stage::Received(reply),
                Head::Unused(again) => Stage::Again(again),
            }
        };
        let plain = matches!(&stage, Stage::Received(Ok(r)) if r.status == 200 && !r.is_sse());
        let early = Early { stage, ..early };
        if !plain {
            return Some(early);
        }
        let answer = self.request_sent(
            msg,
            &|m| self.write_message(&m),
            Some((early.conn, early.stage)),
        );
        self.settle(&msg.id(), answer);
        None
    }

    /// Forward a request, whose first attempt may already be sent; `sink`
    /// gets what streams before the answer, which is returned (None when
    /// the reply ended without one: see `settle`).
    pub(super) fn request_sent(
        self: &Arc<Self>,
        msg: &Message,
        sink: &dyn Fn(Message),
        mut early: Option<(Arc<Conn>, Stage)>,
    ) -> Option<Message> {
        let id = msg.id();
        let ours = |v: Value| {
            self.reporter.note_answer(&v);
            Some(Message::from_value(&v))
        };
        for attempt in 0..2 {
            let (conn, outcome) = match early.take() {
                Some((conn, stage)) => {
                    let reply = match stage {
                        Stage::Sent(sent) => sent.receive(),
                        Stage::Received(reply) => reply,
                        Stage::Again(again) => again.receive(),
                    };
                    (conn, self.relay(reply, &id, sink))
                }
                None => {
                    let conn = match self.connection() {
                        Ok(c) => c,
                        Err(e) => return ours(e.answer(id)),
                    };
                    self.mark_sent(&id);
                    let outcome = self.post(&conn, msg, sink);
                    (conn, outcome)
                }
            };
            match outcome {
                Ok(answer) => {
                    if let Some(a) = &answer {
                        self.remember(msg, a);
                    }
                    return answer;
                }
                Err(PostError::Stale(e)) => {
                    self.invalidate(conn.generation);
                    if attempt == 1 {
                        return ours(jsonrpc::error(
                            id,
                            jsonrpc::UNAVAILABLE,
                            format!("mcpshare daemon: {e}"),
                        ));
                    }
                }
                Err(PostError::Broken(e)) => {
                    self.invalidate(conn.generation);
                    let text = format!(
                        "connection to the mcpshare daemon was lost during this request ({e}); \
                         it may or may not have run"
                    );
                    return ours(jsonrpc::error(id, jsonrpc::UNAVAILABLE, text));
                }
            }
        }
        None
    }

    /// POST one message on an attachment, as its bytes, and relay what
    /// comes back.
    pub(super) fn post(
        &self,
        conn: &Conn,
        msg: &Message,
        sink: &dyn Fn(Message),
    ) -> Result<Option<Message>, PostError> {
        let reply = conn
            .client
            .mcp_post(&conn.path, &conn.headers(), msg.text().as_bytes());
        self.relay(reply, &msg.id(), sink)
    }

    /// Relay the daemon's reply to a message with this `id`: its answer is
    /// returned, what streams before it goes to `sink`.
    fn relay(
        &self,
        reply: Result<Reply, SendError>,
        id: &Value,
        sink: &dyn Fn(Message),
    ) -> Result<Option<Message>, PostError> {
        let ours = |v: Value| Ok(Some(Message::from_value(&v)));
        let reply = reply.map_err(|e| match e {
            SendError::NotReached(s) => PostError::Stale(s),
            SendError::Broken(s) => PostError::Broken(s),
        })?;
        match reply.status {
            202 => Ok(None),
            404 => Err(PostError::Stale(
                "session not found (the daemon restarted)".into(),
            )),
            // The daemon is stopping and did not run it: the next one will.
            503 => Err(PostError::Stale(
                "the daemon is stopping; not run there".into(),
            )),
            200 if reply.is_sse() => self.relay_events(reply, id, sink),
            200 => match reply.message_within(self.max) {
                Ok(answer) => Ok(Some(answer)),
                // The attachment is sound: only this answer is refused.
                Err(BodyError::TooLarge) => ours(too_large(id.clone(), self.max)),
                Err(BodyError::Failed(e)) => Err(PostError::Broken(e.to_string())),
            },
            status => {
                let body = reply.json(self.max).ok();
                let text = body
                    .as_ref()
                    .and_then(|b| b.pointer("/error/message").or_else(|| b.get("error")))
                    .map(|m| {
                        m.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| m.to_string())
                    })
                    .unwrap_or_else(|| format!("HTTP {status}"));
                let code = body
                    .as_ref()
                    .and_then(|b| b.pointer("/error/code"))
                    .and_then(Value::as_i64);
                ours(jsonrpc::error(
                    id.clone(),
                    code.unwrap_or(jsonrpc::UNAVAILABLE),
                    format!("mcpshare daemon: {text}"),
                ))
            }
        }
    }

    fn relay_events(
        &self,
        reply: Reply,
        id: &Value,
        sink: &dyn Fn(Message),
    ) -> Result<Option<Message>, PostError> {
        let mut events = reply.events(self.max);
        let mut answer = None;
        loop {
            match events.next_data() {
                Ok(Some(data)) => match Message::parse(data.into_bytes()) {
                    Ok(m) if m.kind() == Kind::Response && &m.id() == id => answer = Some(m),
                    Ok(m) => sink(m),
                    Err(e) => crate::log!("ignoring a bad event from the daemon: {e}"),
                },
                Ok(None) => return Ok(answer),
                Err(e) if answer.is_some() => {
                    crate::log!("stream ended badly after the answer: {e}");
                    return Ok(answer);
                }
                Err(_) if events.was_too_long() => {
                    return Ok(Some(Message::from_value(&too_large(id.clone(), self.max))));
                }
                Err(e) => return Err(PostError::Broken(e.to_string())),
            }
        }
    }
}
