//! What each bridge met, as it reported it (`POST /api/events`): its
//! start (client name and version, working directory, pid), the errors it
//! answered its client with, and its stop. A bounded ring per bridge,
//! evicting the oldest event, and a bounded number of bridges, evicting
//! the one heard from longest ago. It never trusts a report: fields are
//! bounded and anything unknown is refused.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Events kept per bridge; one more evicts the oldest.
pub const EVENTS_PER_BRIDGE: usize = 50;
/// Bridges remembered at once; one more forgets the least recent.
pub const MAX_BRIDGES: usize = 256;
/// Largest `POST /api/events` body, in bytes.
pub const MAX_EVENT_BODY: usize = 8 * 1024;
/// Longest text field kept, in characters; the rest is cut.
const MAX_FIELD: usize = 512;

/// What a bridge reports, as sent.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The bridge's own pid.
    pub pid: u32,
    /// `started`, `error` or `stopped`.
    pub kind: String,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub client_version: Option<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    /// For `error`: what the bridge answered its client with.
    #[serde(default)]
    pub message: Option<String>,
}

pub const KINDS: [&str; 3] = ["started", "error", "stopped"];

/// A report as kept: bounded, and stamped with when it arrived.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Event {
    pub at_ms: u64,
    #[serde(flatten)]
    pub report: Report,
}

#[derive(Default)]
pub struct Rings {
    /// Per bridge pid, least recently heard first.
    bridges: VecDeque<(u32, VecDeque<Event>)>,
    /// Counts every event kept, so a watcher can tell something changed.
    seq: u64,
}

fn cut(s: Option<String>) -> Option<String> {
    s.map(|s| s.chars().take(MAX_FIELD).collect())
}

/// Check and bound a report's body.
pub fn parse(body: &[u8]) -> Result<Report, String> {
    if body.len() > MAX_EVENT_BODY {
        return Err(format!("event body over {MAX_EVENT_BODY} bytes"));
    }
    let r: Report = serde_json::from_slice(body).map_err(|e| format!("bad event: {e}"))?;
    if !KINDS.contains(&r.kind.as_str()) {
        return Err(format!(
            "bad event: kind {:?} is none of {}",
            r.kind,
            KINDS.join(", ")
        ));
    }
    if r.pid <= 1 {
        return Err(format!("bad event: pid {} is not a bridge's", r.pid));
    }
    Ok(Report {
        pid: r.pid,
        kind: r.kind,
        client_name: cut(r.client_name),
        client_version: cut(r.client_version),
        cwd: cut(r.cwd),
        message: cut(r.message),
    })
}

impl Rings {
    pub fn push(&mut self, report: Report, at_ms: u64) {
        let pid = report.pid;
        let mut ring = match self.bridges.iter().position(|(p, _)| *p == pid) {
            Some(i) => self.bridges.remove(i).map(|(_, r)| r).unwrap_or_default(),
            None => VecDeque::new(),
        };
        if ring.len() >= EVENTS_PER_BRIDGE {
            ring.pop_front();
        }
        ring.push_back(Event { at_ms, report });
        if self.bridges.len() >= MAX_BRIDGES {
            self.bridges.pop_front();
        }
        self.bridges.push_back((pid, ring));
        self.seq += 1;
    }

    /// The events of bridge `pid`, oldest first.
    pub fn of(&self, pid: u32) -> Vec<Event> {
        self.bridges
            .iter()
            .find(|(p, _)| *p == pid)
            .map(|(_, r)| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every bridge heard from, with its events, most recent last.
    pub fn all(&self) -> Vec<(u32, Vec<Event>)> {
        self.bridges
            .iter()
            .map(|(p, r)| (*p, r.iter().cloned().collect()))
            .collect()
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(pid: u32, kind: &str, message: &str) -> Report {
        Report {
            pid,
            kind: kind.into(),
            client_name: None,
            client_version: None,
            cwd: None,
            message: Some(message.into()),
        }
    }

    #[test]
    fn a_ring_keeps_the_newest_events() {
        let mut rings = Rings::default();
        for i in 0..EVENTS_PER_BRIDGE + 3 {
            rings.push(report(7, "error", &format!("e{i}")), i as u64);
        }
        let kept = rings.of(7);
        assert_eq!(kept.len(), EVENTS_PER_BRIDGE);
        assert_eq!(kept[0].report.message.as_deref(), Some("e3"));
        assert_eq!(
            kept.last().unwrap().report.message.as_deref(),
            Some(format!("e{}", EVENTS_PER_BRIDGE + 2).as_str())
        );
        assert!(rings.of(8).is_empty());
    }

    #[test]
    fn the_least_recent_bridge_is_forgotten_first() {
        let mut rings = Rings::default();
        for pid in 2..(MAX_BRIDGES as u32 + 2) {
            rings.push(report(pid, "started", ""), 0);
        }
        // Bridge 2 speaks again: bridge 3 is now the least recent.
        rings.push(report(2, "stopped", ""), 1);
        rings.push(report(9999, "started", ""), 2);
        assert_eq!(rings.all().len(), MAX_BRIDGES);
        assert_eq!(rings.of(2).len(), 2);
        assert!(rings.of(3).is_empty());
        assert_eq!(rings.of(9999).len(), 1);
    }

    #[test]
    fn reports_are_checked_and_bounded() {
        let long = "x".repeat(MAX_FIELD * 2);
        let body = serde_json::json!({"pid": 42, "kind": "error", "message": long});
        let r = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.message.unwrap().len(), MAX_FIELD);
        for bad in [
            r#"{"pid": 42, "kind": "hello"}"#,
            r#"{"pid": 1, "kind": "started"}"#,
            r#"{"pid": 42, "kind": "started", "extra": 1}"#,
            r#"{"kind": "started"}"#,
            "not json",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad} was accepted");
        }
        let huge = vec![b' '; MAX_EVENT_BODY + 1];
        assert!(parse(&huge).is_err());
    }
}
