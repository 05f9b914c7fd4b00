//! The attachment's GET stream: what the upstream sends unasked, relayed to
//! the client on a thread of its own, at most one per attachment. A lost
//! stream drops the attachment; it never re-attaches by itself.

use super::Bridge;
use super::attach::Conn;
use crate::mcp::message::Message;
use crate::net::client::Reply;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Bridge {
    /// Open the GET stream of this attachment: the reply carrying it, or
    /// None when there is none to relay (a lost one drops the attachment).
    pub(super) fn open_stream(&self, conn: &Conn) -> Option<Reply> {
        match conn.client.mcp_get(&conn.path, &conn.headers()) {
            Ok(r) if r.status == 200 && r.is_sse() => Some(r),
            // 405: the endpoint offers no stream; nothing is lost.
            Ok(r) if r.status != 404 => None,
            _ => {
                self.invalidate(conn.generation);
                None
            }
        }
    }

    /// Relay what the GET stream of this attachment carries until it ends,
    /// on a thread of its own: `opened`, the stream already open, else the
    /// thread opens it. A lost stream drops the attachment; the next
    /// request re-attaches.
    pub(super) fn start_listener(self: &Arc<Self>, conn: Arc<Conn>, opened: Option<Reply>) {
        if conn.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("listen-{}", conn.generation))
            .spawn(move || {
                let Some(reply) = opened.or_else(|| me.open_stream(&conn)) else {
                    return;
                };
                let mut events = reply.events(me.max);
                while let Ok(Some(data)) = events.next_data() {
                    match Message::parse(data.into_bytes()) {
                        Ok(m) => me.write_message(&m),
                        Err(e) => crate::log!("ignoring a bad event from the daemon: {e}"),
                    }
                }
                me.invalidate(conn.generation);
            });
        if let Err(e) = spawned {
            crate::log!("cannot start the stream thread: {e}");
        }
    }
}
