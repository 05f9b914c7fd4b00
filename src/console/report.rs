//! The bridge's side of [`super::events`]: tell the daemon what this
//! bridge met (its start, the errors it answered its client with, its
//! stop). Reporting never fails the bridge: a report the daemon did not
//! take (it is gone, say) waits, bounded, and goes with the next one.

use super::events::Report;
use crate::net::client::Client;
use crate::pool::lock;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// How long one report may take; the daemon is on loopback.
const REPORT_TIMEOUT: Duration = Duration::from_secs(1);
/// Reports kept while the daemon cannot take them; more evict the oldest.
const PENDING_MAX: usize = 20;

pub struct Reporter {
    pid: u32,
    client_name: Mutex<Option<String>>,
    client_version: Mutex<Option<String>>,
    pending: Mutex<VecDeque<Report>>,
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter::new()
    }
}

impl Reporter {
    pub fn new() -> Reporter {
        Reporter {
            pid: std::process::id(),
            client_name: Mutex::new(None),
            client_version: Mutex::new(None),
            pending: Mutex::new(VecDeque::new()),
        }
    }

    fn report(&self, kind: &str, message: Option<String>) -> Report {
        Report {
            pid: self.pid,
            kind: kind.into(),
            client_name: lock(&self.client_name).clone(),
            client_version: lock(&self.client_version).clone(),
            cwd: std::env::current_dir()
                .ok()
                .map(|d| d.display().to_string()),
            message,
        }
    }

    /// The bridge's client introduced itself (`clientInfo` of its
    /// `initialize`): report the start with its name and version.
    pub fn started(&self, client: &Client, name: Option<&str>, version: Option<&str>) {
        *lock(&self.client_name) = name.map(str::to_string);
        *lock(&self.client_version) = version.map(str::to_string);
        self.send(client, self.report("started", None));
    }

    /// The bridge answered its client with an error: say which.
    pub fn error(&self, client: &Client, message: &str) {
        self.send(client, self.report("error", Some(message.to_string())));
    }

    pub fn stopped(&self, client: &Client, why: &str) {
        self.send(client, self.report("stopped", Some(why.to_string())));
    }

    fn send(&self, client: &Client, report: Report) {
        let mut pending = lock(&self.pending);
        if pending.len() >= PENDING_MAX {
            pending.pop_front();
        }
        pending.push_back(report);
        while let Some(r) = pending.front() {
            let Ok(body) = serde_json::to_value(r) else {
                pending.pop_front();
                continue;
            };
            match client.call("POST", "/api/events", Some(&body), REPORT_TIMEOUT) {
                Ok((202, _)) => {
                    pending.pop_front();
                }
                // Refused for good (400): resending cannot help.
                Ok((400, _)) => {
                    pending.pop_front();
                }
                _ => break,
            }
        }
    }

    /// Reports still waiting for a daemon that takes them.
    pub fn pending(&self) -> usize {
        lock(&self.pending).len()
    }
}
