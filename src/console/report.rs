//! The bridge's side of [`super::events`]: tell the daemon what this
//! bridge met (its start, the errors it answered its client with, its
//! stop). Reporting never fails the bridge and never delays an answer:
//! errors are noted, and sent with the next report that has a daemon to go
//! to (the error was often that the daemon was lost), bounded in count and
//! in time.

use super::events::Report;
use crate::net::client::Client;
use crate::pool::lock;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the reports sent at once may take; the daemon is on loopback.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(1);
/// Reports kept while no daemon takes them; more evict the oldest.
const PENDING_MAX: usize = 20;

#[derive(Default)]
struct ClientInfo {
    name: Option<String>,
    version: Option<String>,
}

pub struct Reporter {
    pid: u32,
    client: Mutex<ClientInfo>,
    pending: Mutex<VecDeque<Report>>,
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter {
            pid: std::process::id(),
            client: Mutex::new(ClientInfo::default()),
            pending: Mutex::new(VecDeque::new()),
        }
    }
}

impl Reporter {
    /// Keep a report for the next [`Reporter::flush`].
    pub fn note(&self, kind: &str, message: Option<String>) {
        let c = lock(&self.client);
        let report = Report {
            pid: self.pid,
            kind: kind.into(),
            client_name: c.name.clone(),
            client_version: c.version.clone(),
            cwd: std::env::current_dir()
                .ok()
                .map(|d| d.display().to_string()),
            message,
        };
        drop(c);
        let mut pending = lock(&self.pending);
        if pending.len() >= PENDING_MAX {
            pending.pop_front();
        }
        pending.push_back(report);
    }

    /// Note the error in a JSON-RPC answer the bridge made up for its client.
    pub fn note_answer(&self, answer: &Value) {
        if let Some(m) = answer.pointer("/error/message").and_then(Value::as_str) {
            self.note("error", Some(m.to_string()));
        }
    }

    /// The bridge's client introduced itself (`params.clientInfo` of its
    /// `initialize`) and the daemon took the session: report the start.
    pub fn started(&self, daemon: &Client, init: &Value) {
        {
            let info = |k: &str| {
                init.pointer(&format!("/params/clientInfo/{k}"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let mut c = lock(&self.client);
            c.name = info("name");
            c.version = info("version");
        }
        self.note("started", None);
        self.flush(daemon, REPORT_TIMEOUT);
    }

    /// Send what is noted, oldest first, within `budget`; what the daemon
    /// did not take stays for the next flush.
    pub fn flush(&self, daemon: &Client, budget: Duration) {
        let deadline = Instant::now() + budget;
        let mut pending = lock(&self.pending);
        while let Some(r) = pending.front() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Ok(body) = serde_json::to_value(r) else {
                pending.pop_front();
                continue;
            };
            match daemon.call("POST", "/api/events", Some(&body), left) {
                // Taken, or refused for good (an older daemon, a bad
                // report): sending it again cannot help.
                Ok(_) => {
                    pending.pop_front();
                }
                Err(_) => break,
            }
        }
    }

    /// Reports still waiting for a daemon that takes them.
    pub fn pending(&self) -> usize {
        lock(&self.pending).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_bounded_and_carry_the_client() {
        let r = Reporter::default();
        lock(&r.client).name = Some("cursor".into());
        for i in 0..PENDING_MAX + 5 {
            r.note("error", Some(format!("e{i}")));
        }
        assert_eq!(r.pending(), PENDING_MAX);
        let p = lock(&r.pending);
        assert_eq!(p[0].message.as_deref(), Some("e5"));
        assert_eq!(p[0].client_name.as_deref(), Some("cursor"));
        assert_eq!(p[0].pid, std::process::id());
    }

    #[test]
    fn only_error_answers_are_noted() {
        let r = Reporter::default();
        r.note_answer(&serde_json::json!({"id": 1, "result": {}}));
        assert_eq!(r.pending(), 0);
        r.note_answer(&serde_json::json!({"id": 1, "error": {"code": -32000, "message": "lost"}}));
        assert_eq!(lock(&r.pending)[0].message.as_deref(), Some("lost"));
    }
}
