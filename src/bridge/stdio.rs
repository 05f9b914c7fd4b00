//! The bridge's stdio: reads the client's lines from stdin and writes
//! one JSON-RPC message per line to stdout, one writer at a time. It never
//! writes anything but protocol messages to stdout (logs go to stderr), and
//! a closed stdout ends the bridge.

use super::Bridge;
use crate::mcp::jsonrpc::{self, Line, LineReader};
use crate::mcp::message::{Message, Parsed};
use crate::pool::lock;
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const STDIN_BUFFER: usize = 16 * 1024;

/// Standard output, one writer at a time. A lock with a timed wait, so an
/// exiting bridge never waits for long on a client that stopped reading.
#[derive(Default)]
pub(super) struct Out {
    state: Mutex<OutState>,
    free: Condvar,
}

#[derive(Default)]
struct OutState {
    busy: bool,
    /// Threads waiting for their turn: only then is a wake-up worth its syscall.
    waiting: usize,
}

/// The right to write to stdout, given back when dropped.
pub(super) struct OutTurn<'a>(&'a Out);

impl Out {
    /// Wait for the turn to write, for at most `wait` when given.
    pub(super) fn turn(&self, wait: Option<Duration>) -> Option<OutTurn<'_>> {
        let mut st = lock(&self.state);
        if st.busy {
            st.waiting += 1;
            let deadline = wait.map(|w| Instant::now() + w);
            while st.busy {
                st = match deadline {
                    None => self.free.wait(st).unwrap_or_else(|p| p.into_inner()),
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            st.waiting -= 1;
                            return None;
                        }
                        self.free
                            .wait_timeout(st, left)
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                };
            }
            st.waiting -= 1;
        }
        st.busy = true;
        Some(OutTurn(self))
    }
}

impl OutTurn<'_> {
    /// Write one message of our own as one line; false when stdout is closed.
    pub(super) fn write(&self, msg: &Value) -> bool {
        self.write_text(&msg.to_string())
    }

    /// Write one line of JSON text (a [`Message`] is always one line), in
    /// one write: stdout's line buffer passes a long line straight through.
    pub(super) fn write_text(&self, text: &str) -> bool {
        let mut line = Vec::with_capacity(text.len() + 1);
        line.extend_from_slice(text.as_bytes());
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        out.write_all(&line).and_then(|()| out.flush()).is_ok()
    }
}

impl Drop for OutTurn<'_> {
    fn drop(&mut self) {
        let mut st = lock(&self.0.state);
        st.busy = false;
        if st.waiting > 0 {
            self.0.free.notify_one();
        }
    }
}

impl Bridge {
    /// Read the client's messages from stdin until it ends, and hand each on:
    /// to `dispatch`, or `batch`; a line that is not JSON-RPC is answered here.
    pub(super) fn read_input(self: &Arc<Self>) {
        // A buffer larger than stdin's own, so reads bypass that one and
        // `has_buffered` sees all input read but not yet handled.
        let stdin = std::io::BufReader::with_capacity(STDIN_BUFFER, std::io::stdin().lock());
        let mut lines = LineReader::new(stdin, self.max);
        loop {
            match lines.next_line() {
                Ok(Some(Line::Text(bytes))) => {
                    if bytes.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match Message::parse_batch(bytes) {
                        Ok(Parsed::Batch(items)) => self.batch(items),
                        Ok(Parsed::One(msg)) => self.dispatch(msg, !lines.has_buffered()),
                        Err(e) => self.write(&jsonrpc::error(
                            Value::Null,
                            jsonrpc::PARSE_ERROR,
                            format!("Parse error: {e}"),
                        )),
                    }
                }
                // Answered with the request's own id when its ends show it:
                // clients wait for an answer to that id, and ignore id null.
                Ok(Some(Line::TooLong(n))) => self.write(&jsonrpc::error(
                    lines.too_long_id().unwrap_or(Value::Null),
                    jsonrpc::INVALID_REQUEST,
                    format!(
                        "message of {n} bytes exceeds the limit of {} bytes; raise it with \
                         MCPSHARE_MAX_MESSAGE_BYTES in the environment of mcpshare run",
                        self.max
                    ),
                )),
                Ok(None) => break,
                Err(e) => {
                    crate::log!("reading stdin: {e}");
                    break;
                }
            }
        }
    }

    /// Write one message of our own to stdout as one line. A closed
    /// stdout ends the bridge.
    pub(super) fn write(&self, msg: &Value) {
        self.write_text(&msg.to_string());
    }

    /// Write a message from the daemon to stdout, as its bytes.
    pub(super) fn write_message(&self, msg: &Message) {
        self.write_text(msg.text());
    }

    pub(super) fn write_text(&self, text: &str) {
        let turn = self.out.turn(None);
        if !turn.is_some_and(|t| t.write_text(text)) {
            self.exit("stdout is closed");
        }
    }
}
